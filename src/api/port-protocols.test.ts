import { describe, expect, it } from "vitest";
import { protocolFromPortName, servedProtocol, sidecarListenerProtocol } from "./port-protocols.js";

describe("port protocols", () => {
  it("reads Istio's names in any case; unknown or empty means detect, UDP is not proxied", () => {
    expect(servedProtocol("http")).toBe("HTTP");
    expect(servedProtocol("GRPC-Web")).toBe("HTTP2");
    expect(servedProtocol("Redis")).toBe("TCP");
    expect(servedProtocol("UDP")).toBe("skip");
    expect(servedProtocol("")).toBeUndefined();
    expect(servedProtocol("quic")).toBeUndefined();
    expect(servedProtocol("toString")).toBeUndefined(); // not an inherited property
  });

  it("reads a port name's prefix", () => {
    expect(protocolFromPortName("http-web")).toBe("HTTP");
    expect(protocolFromPortName("grpc-web-x")).toBe("HTTP2");
    expect(protocolFromPortName("web")).toBeUndefined();
  });

  it("serves a Sidecar listener port as its protocol, else TCP (none, unknown, UDP)", () => {
    expect(sidecarListenerProtocol("HTTP")).toBe("HTTP");
    expect(sidecarListenerProtocol("tls")).toBe("TLS");
    expect(sidecarListenerProtocol(undefined)).toBe("TCP");
    expect(sidecarListenerProtocol("quic")).toBe("TCP");
    expect(sidecarListenerProtocol("UDP")).toBe("TCP");
  });
});
