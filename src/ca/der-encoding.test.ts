import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  certificateSubjectDer,
  derElement,
  derNamedBits,
  derObjectIdentifier,
  derSequence,
  derTime,
  derUnsignedInteger,
} from "./der-encoding.js";
import { ipAddressBytes } from "./ip-address-bytes.js";

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

describe("DER encoding", () => {
  it("encodes object identifiers, including multi-byte arcs", () => {
    expect(hex(derObjectIdentifier("1.2.840.10045.4.3.2"))).toBe("06082a8648ce3d040302");
    expect(hex(derObjectIdentifier("1.2.840.113549.1.1.11"))).toBe("06092a864886f70d01010b");
    expect(hex(derObjectIdentifier("2.5.29.17"))).toBe("0603551d11");
  });

  it("encodes non-negative integers minimally", () => {
    expect(hex(derUnsignedInteger(Uint8Array.of(0x00, 0x00, 0x7f)))).toBe("02017f");
    expect(hex(derUnsignedInteger(Uint8Array.of(0x80)))).toBe("02020080");
    expect(hex(derUnsignedInteger(Uint8Array.of(0x00, 0x00)))).toBe("020100");
  });

  it("encodes long-form lengths", () => {
    expect(hex(derElement(0x04, new Uint8Array(127))).slice(0, 4)).toBe("047f");
    expect(hex(derElement(0x04, new Uint8Array(128))).slice(0, 6)).toBe("048180");
    expect(hex(derElement(0x04, new Uint8Array(300))).slice(0, 8)).toBe("0482012c");
  });

  it("encodes key usage bits with the trailing zero bits dropped", () => {
    expect(hex(derNamedBits([0, 2]))).toBe("030205a0"); // digitalSignature, keyEncipherment
    expect(hex(derNamedBits([5, 6]))).toBe("03020106"); // keyCertSign, cRLSign
    expect(hex(derNamedBits([0, 8]))).toBe("0303078080"); // decipherOnly spills into a second byte
  });

  it("uses UTCTime through 2049 and GeneralizedTime from 2050", () => {
    expect(Buffer.from(derTime(new Date("2049-12-31T23:59:59Z"))).subarray(2).toString()).toBe("491231235959Z");
    expect(derTime(new Date("2049-12-31T23:59:59Z"))[0]).toBe(0x17);
    expect(Buffer.from(derTime(new Date("2050-01-01T00:00:00Z"))).subarray(2).toString()).toBe("20500101000000Z");
    expect(derTime(new Date("2050-01-01T00:00:00Z"))[0]).toBe(0x18);
  });

  it("finds a certificate's subject bytes", () => {
    const pem = execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null", "-subj", "/O=Example/CN=Subject Test", "-days", "1"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    const der = new X509Certificate(pem).raw;
    const subject = certificateSubjectDer(der);
    expect(subject[0]).toBe(0x30);
    expect(der.includes(subject)).toBe(true);
    expect(subject.toString("latin1")).toContain("Subject Test");
    expect(hex(derSequence())).toBe("3000");
  });
});

describe("ipAddressBytes", () => {
  it.each([
    ["10.0.0.1", "0a000001"],
    ["::1", "00000000000000000000000000000001"],
    ["::", "00000000000000000000000000000000"],
    ["2001:db8::8a2e:370:7334", "20010db80000000000008a2e03707334"],
    ["fd00:1::", "fd000001000000000000000000000000"],
    ["::ffff:192.0.2.1", "00000000000000000000ffffc0000201"],
    ["1:2:3:4:5:6:7:8", "00010002000300040005000600070008"],
    ["fe80::1%eth0", "fe800000000000000000000000000001"],
  ])("%s", (text, expected) => {
    expect(hex(ipAddressBytes(text))).toBe(expected);
  });

  it("refuses what is not an IP address", () => {
    expect(() => ipAddressBytes("10.0.0.300")).toThrow(/not an IP address/);
  });
});
