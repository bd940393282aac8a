import { execFileSync } from "node:child_process";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync, readFileSync, existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { Registry } from "prom-client";
import { afterAll, describe, expect, it } from "vitest";
import {
  CertificateAuthorityError,
  loadOrCreateCa,
  renewalTime,
  spiffeId,
  type CaOptions,
  type CertificateAuthority,
  type IssuedCertificate,
} from "./certificate-authority.js";
import { splitPemCertificates } from "./pem-blocks.js";
import * as x509 from "./x509-library.js";

const scratch = mkdtempSync(path.join(os.tmpdir(), "weft-ca-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let dirCounter = 0;
function freshDir(name: string): string {
  return path.join(scratch, `${++dirCounter}-${name}`);
}

/** "Now" in whole seconds, so certificate times can be compared exactly. */
function wholeSecondNow(): Date {
  return new Date(Math.floor(Date.now() / 1000) * 1000);
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

function certificates(pem: string): X509Certificate[] {
  return splitPemCertificates(pem, "test").map((block) => new X509Certificate(block));
}

function opensslText(pem: string): string {
  return execFileSync("openssl", ["x509", "-noout", "-text"], { input: pem, encoding: "utf8" });
}

/**
 * `openssl verify -x509_strict -purpose <purpose> -CAfile <bundle> -untrusted <intermediates> <leaf>`;
 * returns its output, or throws with openssl's complaint.
 */
function opensslVerify(issued: IssuedCertificate, trustBundlePem: string, purpose: "sslclient" | "sslserver" = "sslclient"): string {
  const dir = mkdtempSync(path.join(scratch, "verify-"));
  const [leaf, ...intermediates] = splitPemCertificates(issued.certChainPem, "certChainPem");
  writeFileSync(path.join(dir, "bundle.pem"), trustBundlePem);
  writeFileSync(path.join(dir, "leaf.pem"), leaf!);
  const args = ["verify", "-x509_strict", "-purpose", purpose, "-CAfile", path.join(dir, "bundle.pem")];
  if (intermediates.length > 0) {
    writeFileSync(path.join(dir, "intermediates.pem"), intermediates.join(""));
    args.push("-untrusted", path.join(dir, "intermediates.pem"));
  }
  args.push(path.join(dir, "leaf.pem"));
  try {
    return execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const failed = err as { stdout?: string; stderr?: string };
    throw new Error(`openssl verify failed:\n${failed.stdout ?? ""}${failed.stderr ?? ""}`);
  }
}

async function newCa(name: string, extra: Partial<CaOptions> = {}): Promise<{ ca: CertificateAuthority; dir: string }> {
  const dir = freshDir(name);
  return { ca: await loadOrCreateCa({ dir, ...extra }), dir };
}

describe("self-signed root", () => {
  it("is a CA for 10 years with subject O=<trust domain>, CN=Weft Root CA, persisted with key mode 0600", async () => {
    const now = wholeSecondNow();
    const { ca, dir } = await newCa("root", { now: () => now });
    expect(ca.trustDomain).toBe("cluster.local");
    const [root] = certificates(ca.trustBundlePem());
    expect(certificates(ca.trustBundlePem())).toHaveLength(1);
    expect(root!.subject).toBe("O=cluster.local\nCN=Weft Root CA");
    expect(root!.ca).toBe(true);
    expect(root!.checkIssued(root!)).toBe(true);
    expect(root!.verify(root!.publicKey)).toBe(true);
    const tenYearsLater = new Date(now);
    tenYearsLater.setUTCFullYear(now.getUTCFullYear() + 10);
    expect(new Date(root!.validTo).getTime()).toBe(tenYearsLater.getTime());
    const text = opensslText(ca.trustBundlePem());
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(text).toContain("ASN1 OID: prime256v1");
    expect(text).toContain("X509v3 Subject Key Identifier");

    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(dir, "root-key.pem")).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(dir, "root-key.pem"), "utf8")).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(readFileSync(path.join(dir, "root-cert.pem"), "utf8")).toBe(ca.trustBundlePem());

    const [status] = ca.roots();
    expect(status!.subject).toBe("O=cluster.local, CN=Weft Root CA");
    expect(BigInt(`0x${status!.serial}`)).toBe(BigInt(`0x${root!.serialNumber}`));
    expect(status!.notAfter.getTime()).toBe(tenYearsLater.getTime());
  });

  it("is reused on restart: a second loadOrCreateCa on the same dir has the same root", async () => {
    const { ca: first, dir } = await newCa("restart");
    const issued = await first.issueWorkloadCertificate({ namespace: "default", serviceAccount: "web" });
    const second = await loadOrCreateCa({ dir });
    expect(second.trustBundlePem()).toBe(first.trustBundlePem());
    expect(second.roots()).toEqual(first.roots());
    expect(statSync(path.join(dir, "root-key.pem")).mode & 0o777).toBe(0o600);
    // A certificate from before the restart verifies against the bundle after it, and vice versa.
    opensslVerify(issued, second.trustBundlePem());
    opensslVerify(await second.issueWorkloadCertificate({ namespace: "default", serviceAccount: "web" }), first.trustBundlePem());
  });

  it("names the missing file when only one of root-cert.pem and root-key.pem is there", async () => {
    const { dir } = await newCa("half-root");
    rmSync(path.join(dir, "root-key.pem"));
    await expect(loadOrCreateCa({ dir })).rejects.toThrow(/root-key\.pem is missing but .*root-cert\.pem exists/);
  });

  it("refuses a root-key.pem that is not root-cert.pem's key, naming both", async () => {
    const { dir } = await newCa("swapped-key");
    const { dir: otherDir } = await newCa("other");
    writeFileSync(path.join(dir, "root-key.pem"), readFileSync(path.join(otherDir, "root-key.pem")));
    await expect(loadOrCreateCa({ dir })).rejects.toThrow(/root-key\.pem does not match .*root-cert\.pem/);
  });

  it("refuses a root-key.pem readable by group or others (e.g. 0644) and says how to fix it", async () => {
    const { dir } = await newCa("loose-key");
    chmodSync(path.join(dir, "root-key.pem"), 0o644);
    await expect(loadOrCreateCa({ dir })).rejects.toThrow(/root-key\.pem: mode 0644 gives group\/other access.*chmod 600/);
    chmodSync(path.join(dir, "root-key.pem"), 0o600);
    await expect(loadOrCreateCa({ dir })).resolves.toBeDefined();
  });

  it("refuses an expired root and says how to replace it", async () => {
    const { dir } = await newCa("expired");
    const elevenYears = new Date(Date.now() + 11 * 365 * DAY);
    await expect(loadOrCreateCa({ dir, now: () => elevenYears })).rejects.toThrow(/root-cert\.pem: the CA certificate .* expired at .*Remove .*root-cert\.pem and .*root-key\.pem/);
  });

  it("completes a root replacement interrupted between renaming the key and the certificate", async () => {
    const { ca, dir } = await newCa("interrupted");
    const original = ca.trustBundlePem();
    // Simulate the crash: the new key is in place, the new certificate still under its pending name.
    const { dir: otherDir } = await newCa("interrupted-other");
    writeFileSync(path.join(dir, "root-key.pem"), readFileSync(path.join(otherDir, "root-key.pem")));
    writeFileSync(path.join(dir, "root-cert.pem.new"), readFileSync(path.join(otherDir, "root-cert.pem")));
    const reloaded = await loadOrCreateCa({ dir });
    expect(reloaded.trustBundlePem()).not.toBe(original);
    expect(reloaded.trustBundlePem()).toBe(readFileSync(path.join(otherDir, "root-cert.pem"), "utf8"));
    expect(existsSync(path.join(dir, "root-cert.pem.new"))).toBe(false);
  });
});

describe("workload certificates", () => {
  it("carry the SPIFFE ID as the only, critical SAN, with the Istio-like profile, verifying against the root", async () => {
    const now = wholeSecondNow();
    const { ca } = await newCa("workload", { now: () => now });
    const issued = await ca.issueWorkloadCertificate({ namespace: "bookinfo", serviceAccount: "reviews", ttlMs: 2 * HOUR });
    expect(issued.identity).toBe("spiffe://cluster.local/ns/bookinfo/sa/reviews");
    const chain = certificates(issued.certChainPem);
    expect(chain).toHaveLength(1); // signed by the root itself: no intermediates
    const [leaf] = chain;
    const [root] = certificates(ca.trustBundlePem());

    // Node's view.
    expect(leaf!.checkIssued(root!)).toBe(true);
    expect(leaf!.verify(root!.publicKey)).toBe(true);
    expect(leaf!.subjectAltName).toBe("URI:spiffe://cluster.local/ns/bookinfo/sa/reviews");
    expect(leaf!.subject ?? "").toBe("");
    expect(leaf!.ca).toBe(false);
    expect(leaf!.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]); // Node reports the extended key usage here
    expect(leaf!.checkPrivateKey(createPrivateKey(issued.privateKeyPem))).toBe(true);
    expect(issued.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(createPrivateKey(issued.privateKeyPem).asymmetricKeyDetails?.namedCurve).toBe("prime256v1");

    // Times: back-dated five minutes, notAfter exactly now + ttl.
    expect(issued.notBefore.getTime()).toBe(now.getTime() - 5 * MINUTE);
    expect(issued.notAfter.getTime()).toBe(now.getTime() + 2 * HOUR);
    expect(new Date(leaf!.validFrom).getTime()).toBe(issued.notBefore.getTime());
    expect(new Date(leaf!.validTo).getTime()).toBe(issued.notAfter.getTime());

    // Serial: positive, at most 128 bits, what the certificate carries.
    const serial = BigInt(`0x${issued.serial}`);
    expect(serial).toBe(BigInt(`0x${leaf!.serialNumber}`));
    expect(serial > 0n && serial < 1n << 128n).toBe(true);

    // OpenSSL's view of the extensions.
    const text = opensslText(issued.certChainPem);
    expect(text).toMatch(/X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/bookinfo\/sa\/reviews\s*\n/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\s*\n/);
    expect(text).toMatch(/X509v3 Extended Key Usage: \s*TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/Subject: *\n/);

    // The authority key identifier is the root's subject key identifier.
    const leafParsed = new x509.X509Certificate(splitPemCertificates(issued.certChainPem, "chain")[0]!);
    const rootParsed = new x509.X509Certificate(ca.trustBundlePem());
    expect(leafParsed.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(rootParsed.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);

    expect(opensslVerify(issued, ca.trustBundlePem(), "sslclient")).toMatch(/OK/);
    expect(opensslVerify(issued, ca.trustBundlePem(), "sslserver")).toMatch(/OK/);
  });

  it("gets a fresh key and serial each time, and 24 h by default", async () => {
    const now = wholeSecondNow();
    const { ca } = await newCa("fresh", { now: () => now });
    const a = await ca.issueWorkloadCertificate({ namespace: "default", serviceAccount: "web" });
    const b = await ca.issueWorkloadCertificate({ namespace: "default", serviceAccount: "web" });
    expect(a.privateKeyPem).not.toBe(b.privateKeyPem);
    expect(a.serial).not.toBe(b.serial);
    expect(a.notAfter.getTime()).toBe(now.getTime() + DAY);
  });

  it("handles many requests at once: all succeed, all distinct, all verify", async () => {
    const { ca } = await newCa("concurrent");
    const [root] = certificates(ca.trustBundlePem());
    const issued = await Promise.all(Array.from({ length: 300 }, (_, i) => ca.issueWorkloadCertificate({ namespace: "load", serviceAccount: `sa-${i}` })));
    expect(new Set(issued.map((c) => c.serial)).size).toBe(300);
    for (const [i, cert] of issued.entries()) {
      const [leaf] = certificates(cert.certChainPem);
      expect(leaf!.verify(root!.publicKey)).toBe(true);
      expect(leaf!.subjectAltName).toBe(`URI:spiffe://cluster.local/ns/load/sa/sa-${i}`);
    }
  });

  it("uses the configured trust domain and default TTL", async () => {
    const now = wholeSecondNow();
    const { ca } = await newCa("trust-domain", { trustDomain: "prod.example.com", defaultWorkloadTtlMs: 6 * HOUR, now: () => now });
    const issued = await ca.issueWorkloadCertificate({ namespace: "payments", serviceAccount: "api.v2" });
    expect(issued.identity).toBe("spiffe://prod.example.com/ns/payments/sa/api.v2");
    expect(issued.notAfter.getTime()).toBe(now.getTime() + 6 * HOUR);
    expect(ca.roots()[0]!.subject).toBe("O=prod.example.com, CN=Weft Root CA");
    opensslVerify(issued, ca.trustBundlePem());
  });

  it("never outlives the root: a lifetime past the root's expiry ends with it", async () => {
    const { ca, dir } = await newCa("clamp");
    const rootExpiry = ca.roots()[0]!.notAfter;
    const nearTheEnd = new Date(rootExpiry.getTime() - 10 * DAY);
    const late = await loadOrCreateCa({ dir, now: () => nearTheEnd });
    const issued = await late.issueWorkloadCertificate({ namespace: "default", serviceAccount: "web", ttlMs: 30 * DAY });
    expect(issued.notAfter.getTime()).toBe(rootExpiry.getTime());
  });

  it("refuses bad requests with errors that name the field and what was expected", async () => {
    const { ca } = await newCa("invalid");
    const cases: [Parameters<CertificateAuthority["issueWorkloadCertificate"]>[0], RegExp][] = [
      [{ namespace: "Bad_Namespace", serviceAccount: "web" }, /namespace "Bad_Namespace" is not a valid name: expected a DNS-1123 label/],
      [{ namespace: "a".repeat(64), serviceAccount: "web" }, /namespace "a{64}" is not a valid name/],
      [{ namespace: "default", serviceAccount: "" }, /service account "" is not a valid name: expected a DNS-1123 subdomain/],
      [{ namespace: "default", serviceAccount: "web/../admin" }, /service account "web\/\.\.\/admin" is not a valid name/],
      [{ namespace: "default", serviceAccount: "web", ttlMs: 0 }, /issueWorkloadCertificate: ttlMs: expected a number of milliseconds, at least 1000 \(one second\), found 0/],
      [{ namespace: "default", serviceAccount: "web", ttlMs: -5 }, /ttlMs: expected a number of milliseconds, at least 1000/],
      [{ namespace: "default", serviceAccount: "web", ttlMs: Number.NaN }, /ttlMs: expected a number of milliseconds.*found NaN/],
      [{ namespace: "default", serviceAccount: "web", ttlMs: 365 * DAY }, /ttlMs: 365d is longer than the longest lifetime allowed, 90d \(option maxWorkloadTtlMs\)/],
    ];
    for (const [request, message] of cases) {
      const attempt = ca.issueWorkloadCertificate(request);
      await expect(attempt).rejects.toThrow(CertificateAuthorityError);
      await expect(attempt).rejects.toThrow(message);
    }
  });

  it("refuses bad options with errors naming the option", async () => {
    await expect(loadOrCreateCa({ dir: freshDir("bad-td"), trustDomain: "Cluster Local" })).rejects.toThrow(/CA option trustDomain "Cluster Local" is not a valid SPIFFE trust domain/);
    await expect(loadOrCreateCa({ dir: freshDir("bad-alg"), keyAlgorithm: "DSA" as never })).rejects.toThrow(/CA option keyAlgorithm: expected one of ECDSA_P256, RSA_2048, RSA_4096, found "DSA"/);
    await expect(loadOrCreateCa({ dir: freshDir("bad-ttl"), defaultWorkloadTtlMs: 200 * DAY })).rejects.toThrow(/CA option defaultWorkloadTtlMs: 200d is longer than .* 90d/);
    await expect(loadOrCreateCa({ dir: "" })).rejects.toThrow(/CA option dir/);
  });

  it("spiffeId builds and checks the ID", () => {
    expect(spiffeId("cluster.local", "default", "bookinfo-reviews")).toBe("spiffe://cluster.local/ns/default/sa/bookinfo-reviews");
    expect(() => spiffeId("cluster.local", "default", "UPPER")).toThrow(/service account "UPPER"/);
  });
});

describe("RSA keys", () => {
  it("RSA_2048 makes an RSA root and RSA workload keys that verify", async () => {
    const { ca } = await newCa("rsa", { keyAlgorithm: "RSA_2048" });
    expect(opensslText(ca.trustBundlePem())).toMatch(/Public Key Algorithm: rsaEncryption\s+Public-Key: \(2048 bit\)/);
    const issued = await ca.issueWorkloadCertificate({ namespace: "default", serviceAccount: "web" });
    const key = createPrivateKey(issued.privateKeyPem);
    expect(key.asymmetricKeyType).toBe("rsa");
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(opensslText(issued.certChainPem)).toContain("Signature Algorithm: sha256WithRSAEncryption");
    opensslVerify(issued, ca.trustBundlePem());
  });
});

describe("serving certificates", () => {
  it("carry the DNS names and IP addresses, for server authentication only", async () => {
    const { ca } = await newCa("serving");
    const issued = await ca.issueServingCertificate({ dnsNames: ["weft.weft-system.svc", "localhost"], ipAddresses: ["127.0.0.1", "::1"] });
    expect(issued.identity).toBe("weft.weft-system.svc");
    const [leaf] = certificates(issued.certChainPem);
    expect(leaf!.subjectAltName).toBe("DNS:weft.weft-system.svc, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
    expect(leaf!.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
    opensslVerify(issued, ca.trustBundlePem(), "sslserver");
    expect(() => opensslVerify(issued, ca.trustBundlePem(), "sslclient")).toThrow(/unsuitable certificate purpose/);
  });

  it("refuses bad names", async () => {
    const { ca } = await newCa("serving-invalid");
    await expect(ca.issueServingCertificate({ dnsNames: [], ipAddresses: [] })).rejects.toThrow(/at least one DNS name or IP address/);
    await expect(ca.issueServingCertificate({ dnsNames: ["bad name"], ipAddresses: [] })).rejects.toThrow(/dnsNames\[0\] "bad name" is not a valid DNS name/);
    await expect(ca.issueServingCertificate({ dnsNames: [], ipAddresses: ["10.0.0.300"] })).rejects.toThrow(/ipAddresses\[0\] "10\.0\.0\.300" is not an IP address/);
  });
});

// ---------------------------------------------------------------------------------------
// Plugged-in CA, generated with the openssl command line as an operator would.

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
}

/**
 * root (EC P-256, SEC1 key) -> intermediate (EC P-256) -> ca-cert (RSA 2048 with a PKCS#1 key,
 * or EC P-384), in Istio's layout; cert-chain.pem is ca-cert + intermediate + root, as Istio's
 * tooling writes it.
 */
function makePluggedCaDir(name: string, caKey: "rsa-2048" | "ec-p384" = "rsa-2048"): string {
  const dir = freshDir(name);
  execFileSync("mkdir", ["-p", dir]);
  const caExtensions = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n";
  writeFileSync(path.join(dir, "ca.ext"), caExtensions);
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "root-key.pem"], dir);
  openssl(["req", "-x509", "-new", "-key", "root-key.pem", "-subj", "/O=Example Corp/CN=Example Root", "-days", "3650", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "root-cert.pem"], dir);
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "intermediate-key.pem"], dir);
  openssl(["req", "-new", "-key", "intermediate-key.pem", "-subj", "/O=Example Corp/CN=Example Intermediate", "-out", "intermediate.csr"], dir);
  openssl(["x509", "-req", "-in", "intermediate.csr", "-CA", "root-cert.pem", "-CAkey", "root-key.pem", "-CAcreateserial", "-days", "1825", "-extfile", "ca.ext", "-out", "intermediate-cert.pem"], dir);
  if (caKey === "rsa-2048") openssl(["genrsa", "-traditional", "-out", "ca-key.pem", "2048"], dir);
  else openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "ca-key.pem"], dir);
  openssl(["req", "-new", "-key", "ca-key.pem", "-subj", "/O=Example Corp/OU=Mesh/CN=Example Mesh CA", "-out", "ca.csr"], dir);
  openssl(["x509", "-req", "-in", "ca.csr", "-CA", "intermediate-cert.pem", "-CAkey", "intermediate-key.pem", "-CAcreateserial", "-days", "730", "-extfile", "ca.ext", "-out", "ca-cert.pem"], dir);
  const read = (file: string): string => readFileSync(path.join(dir, file), "utf8");
  writeFileSync(path.join(dir, "cert-chain.pem"), read("ca-cert.pem") + read("intermediate-cert.pem") + read("root-cert.pem"));
  return dir;
}

describe("plugged-in CA (Istio's cacerts layout)", () => {
  it("warns (does not refuse: mounted Secrets are 0644 by default) when ca-key.pem is readable by others", async () => {
    const pluggedCaDir = makePluggedCaDir("plugged-loose");
    chmodSync(path.join(pluggedCaDir, "ca-key.pem"), 0o640);
    const warnings: string[] = [];
    await loadOrCreateCa({ dir: freshDir("plugged-loose-unused"), pluggedCaDir, onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual([expect.stringMatching(/ca-key\.pem: mode 0640 gives group\/other access.*chmod 600/)]);
    chmodSync(path.join(pluggedCaDir, "ca-key.pem"), 0o600);
    warnings.length = 0;
    await loadOrCreateCa({ dir: freshDir("plugged-tight-unused"), pluggedCaDir, onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual([]);
  });

  it("issues with the full chain (leaf, ca-cert, intermediate), verifying against root-cert.pem", async () => {
    const pluggedCaDir = makePluggedCaDir("plugged");
    const registry = new Registry();
    const ca = await loadOrCreateCa({ dir: freshDir("plugged-unused"), pluggedCaDir, metrics: registry });
    expect(ca.trustBundlePem()).toBe(readFileSync(path.join(pluggedCaDir, "root-cert.pem"), "utf8"));
    expect(ca.roots().map((r) => r.subject)).toEqual(["O=Example Corp, CN=Example Root"]);

    const issued = await ca.issueWorkloadCertificate({ namespace: "default", serviceAccount: "web" });
    const chain = certificates(issued.certChainPem);
    expect(chain.map((c) => (c.subject ?? "").replace(/\n/g, ", "))).toEqual(["", "O=Example Corp, OU=Mesh, CN=Example Mesh CA", "O=Example Corp, CN=Example Intermediate"]);
    expect(chain[0]!.verify(chain[1]!.publicKey)).toBe(true);
    expect(opensslText(issued.certChainPem)).toContain("Signature Algorithm: sha256WithRSAEncryption"); // signed by the RSA ca-key
    expect(opensslVerify(issued, ca.trustBundlePem())).toMatch(/OK/);
    // The intermediate from cert-chain.pem is needed: without it the chain does not verify.
    const withoutIntermediate = { ...issued, certChainPem: splitPemCertificates(issued.certChainPem, "chain").slice(0, 2).join("") };
    expect(() => opensslVerify(withoutIntermediate, ca.trustBundlePem())).toThrow(/unable to get local issuer certificate/);

    const metrics = await registry.metrics();
    expect(metrics).toContain('weft_ca_certificates_issued_total{kind="workload"} 1');
    const rootExpiry = new X509Certificate(readFileSync(path.join(pluggedCaDir, "root-cert.pem"))).validToDate.getTime() / 1000;
    expect(metrics).toContain(`weft_ca_root_expiry_timestamp_seconds ${rootExpiry}`);
    await expect(ca.beginRootRotation()).rejects.toThrow(/plugged in from .*; rotate its root by replacing the files there/);
  });

  it("signs with ecdsa-with-SHA384 when ca-key.pem is a P-384 key", async () => {
    const pluggedCaDir = makePluggedCaDir("plugged-p384", "ec-p384");
    const ca = await loadOrCreateCa({ dir: freshDir("unused"), pluggedCaDir });
    const issued = await ca.issueServingCertificate({ dnsNames: ["weft.example"], ipAddresses: [] });
    expect(opensslText(issued.certChainPem)).toContain("Signature Algorithm: ecdsa-with-SHA384");
    opensslVerify(issued, ca.trustBundlePem(), "sslserver");
  });

  it("accepts a cert-chain.pem holding only the certificates above ca-cert.pem", async () => {
    const pluggedCaDir = makePluggedCaDir("plugged-short-chain");
    writeFileSync(path.join(pluggedCaDir, "cert-chain.pem"), readFileSync(path.join(pluggedCaDir, "intermediate-cert.pem")));
    const ca = await loadOrCreateCa({ dir: freshDir("unused"), pluggedCaDir });
    const issued = await ca.issueWorkloadCertificate({ namespace: "default", serviceAccount: "web" });
    expect(certificates(issued.certChainPem)).toHaveLength(3);
    opensslVerify(issued, ca.trustBundlePem());
  });

  it("names ca-key.pem when it does not match ca-cert.pem", async () => {
    const pluggedCaDir = makePluggedCaDir("plugged-wrong-key");
    writeFileSync(path.join(pluggedCaDir, "ca-key.pem"), readFileSync(path.join(pluggedCaDir, "intermediate-key.pem")));
    await expect(loadOrCreateCa({ dir: freshDir("unused"), pluggedCaDir })).rejects.toThrow(/ca-key\.pem does not match .*ca-cert\.pem: the private key \(ECDSA P-256\) is not the one for the certificate's public key/);
  });

  it("names the files when ca-cert.pem does not chain to root-cert.pem", async () => {
    const pluggedCaDir = makePluggedCaDir("plugged-foreign-root");
    const other = makePluggedCaDir("plugged-other");
    writeFileSync(path.join(pluggedCaDir, "root-cert.pem"), readFileSync(path.join(other, "root-cert.pem")));
    writeFileSync(path.join(pluggedCaDir, "cert-chain.pem"), readFileSync(path.join(pluggedCaDir, "intermediate-cert.pem")));
    await expect(loadOrCreateCa({ dir: freshDir("unused"), pluggedCaDir })).rejects.toThrow(
      /ca-cert\.pem does not chain to .*root-cert\.pem: no certificate in cert-chain\.pem or root-cert\.pem signed "O=Example Corp, CN=Example Intermediate"/,
    );
  });

  it("names a missing file and says what belongs in it", async () => {
    const pluggedCaDir = makePluggedCaDir("plugged-missing");
    rmSync(path.join(pluggedCaDir, "cert-chain.pem"));
    await expect(loadOrCreateCa({ dir: freshDir("unused"), pluggedCaDir })).rejects.toThrow(/plugged-in CA file .*cert-chain\.pem: missing; expected the PEM certificates from ca-cert\.pem up to the root/);
    writeFileSync(path.join(pluggedCaDir, "cert-chain.pem"), "not a certificate");
    await expect(loadOrCreateCa({ dir: freshDir("unused"), pluggedCaDir })).rejects.toThrow(/cert-chain\.pem: no certificate found/);
  });

  it("refuses a ca-cert.pem that is not a CA", async () => {
    const pluggedCaDir = makePluggedCaDir("plugged-not-ca");
    const ca = await loadOrCreateCa({ dir: freshDir("unused"), pluggedCaDir });
    const leaf = await ca.issueWorkloadCertificate({ namespace: "default", serviceAccount: "web" });
    const [leafPem, caCertPem] = splitPemCertificates(leaf.certChainPem, "chain");
    writeFileSync(path.join(pluggedCaDir, "ca-cert.pem"), leafPem!);
    writeFileSync(path.join(pluggedCaDir, "ca-key.pem"), leaf.privateKeyPem);
    writeFileSync(path.join(pluggedCaDir, "cert-chain.pem"), caCertPem! + readFileSync(path.join(pluggedCaDir, "intermediate-cert.pem"), "utf8"));
    await expect(loadOrCreateCa({ dir: freshDir("unused"), pluggedCaDir })).rejects.toThrow(/ca-cert\.pem: the certificate .* is not a CA certificate; expected basicConstraints CA:TRUE/);
  });
});

describe("root rotation", () => {
  it("signs with the new root while the bundle carries both, then drops the old one; survives restarts", async () => {
    const registry = new Registry();
    const { ca, dir } = await newCa("rotation", { metrics: registry });
    const oldRoot = ca.trustBundlePem();
    const before = await ca.issueWorkloadCertificate({ namespace: "default", serviceAccount: "web" });

    await ca.beginRootRotation();
    expect(ca.rootRotationInProgress()).toBe(true);
    const bundle = certificates(ca.trustBundlePem());
    expect(bundle).toHaveLength(2);
    expect(ca.roots()).toHaveLength(2);
    const newRootPem = splitPemCertificates(ca.trustBundlePem(), "bundle")[0]!;
    expect(newRootPem).not.toBe(oldRoot);
    expect(splitPemCertificates(ca.trustBundlePem(), "bundle")[1]).toBe(oldRoot);

    const during = await ca.issueWorkloadCertificate({ namespace: "default", serviceAccount: "web" });
    const [leaf] = certificates(during.certChainPem);
    expect(leaf!.verify(new X509Certificate(newRootPem).publicKey)).toBe(true);
    expect(leaf!.verify(new X509Certificate(oldRoot).publicKey)).toBe(false);
    opensslVerify(during, newRootPem); // against the new root alone
    opensslVerify(during, ca.trustBundlePem());
    opensslVerify(before, ca.trustBundlePem()); // old certificates still verify during the rotation
    await expect(ca.beginRootRotation()).rejects.toThrow(/a root rotation is already in progress/);
    const rootExpiry = new X509Certificate(newRootPem).validToDate.getTime() / 1000;
    expect(await registry.metrics()).toContain(`weft_ca_root_expiry_timestamp_seconds ${rootExpiry}`);

    // A restart mid-rotation keeps both roots, and signs with the new one.
    const restarted = await loadOrCreateCa({ dir });
    expect(restarted.trustBundlePem()).toBe(ca.trustBundlePem());
    expect(restarted.rootRotationInProgress()).toBe(true);
    expect(statSync(path.join(dir, "root-key.pem")).mode & 0o777).toBe(0o600);

    await ca.finishRootRotation();
    expect(ca.rootRotationInProgress()).toBe(false);
    expect(ca.trustBundlePem()).toBe(newRootPem);
    expect(ca.roots()).toHaveLength(1);
    expect(() => opensslVerify(before, ca.trustBundlePem())).toThrow(/openssl verify failed/);
    opensslVerify(await ca.issueWorkloadCertificate({ namespace: "default", serviceAccount: "web" }), ca.trustBundlePem());
    await expect(ca.finishRootRotation()).rejects.toThrow(/no root rotation is in progress/);

    const afterFinish = await loadOrCreateCa({ dir });
    expect(afterFinish.trustBundlePem()).toBe(newRootPem);
  });

  it("serializes concurrent rotation calls", async () => {
    const { ca } = await newCa("rotation-race");
    const results = await Promise.allSettled([ca.beginRootRotation(), ca.beginRootRotation()]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect(ca.roots()).toHaveLength(2);
  });
});

describe("root rotation in three phases, shared by replicas", () => {
  it("trusting (next root trusted, old signs) -> signing (new signs, both trusted) -> idle; a second CA on the same store follows with reload()", async () => {
    const { ca: leader, dir } = await newCa("phases", { rootTtlMs: 60_000 });
    const follower = await loadOrCreateCa({ dir, rootTtlMs: 60_000 });
    const oldRoot = leader.trustBundlePem();
    expect(follower.trustBundlePem()).toBe(oldRoot);
    expect(new X509Certificate(oldRoot).validToDate.getTime() - Date.now()).toBeLessThanOrEqual(60_000);

    await leader.prepareRootRotation();
    expect(leader.rootRotationPhase()).toBe("trusting");
    const [first, next] = splitPemCertificates(leader.trustBundlePem(), "bundle");
    expect(first).toBe(oldRoot);
    expect(new X509Certificate(next!).subject).not.toBe(new X509Certificate(oldRoot).subject); // distinct subjects (NOTES)
    const issuedWhileTrusting = await leader.issueWorkloadCertificate({ namespace: "default", serviceAccount: "web" });
    opensslVerify(issuedWhileTrusting, oldRoot); // the old root still signs
    expect(await follower.reload()).toEqual({ bundleChanged: true, signingChanged: false });
    expect(follower.trustBundlePem()).toBe(leader.trustBundlePem());
    expect(follower.rootRotationPhase()).toBe("trusting");
    await expect(leader.prepareRootRotation()).rejects.toThrow(/already in progress \(phase trusting\)/);

    await leader.beginRootRotation();
    expect(leader.rootRotationPhase()).toBe("signing");
    expect(splitPemCertificates(leader.trustBundlePem(), "bundle")).toEqual([next, oldRoot]); // the prepared root, not another
    expect(await follower.reload()).toEqual({ bundleChanged: true, signingChanged: true });
    const fromFollower = await follower.issueWorkloadCertificate({ namespace: "default", serviceAccount: "web" });
    opensslVerify(fromFollower, next!);
    opensslVerify(issuedWhileTrusting, follower.trustBundlePem()); // old leaves keep verifying

    await leader.finishRootRotation();
    expect(await follower.reload()).toEqual({ bundleChanged: true, signingChanged: false });
    expect(follower.trustBundlePem()).toBe(next);
    expect(follower.rootRotationPhase()).toBe("idle");
    expect(await follower.reload()).toEqual({ bundleChanged: false, signingChanged: false });
    // A restart in any phase resumes it: here idle, on the new root.
    expect((await loadOrCreateCa({ dir })).trustBundlePem()).toBe(next);
  });

  it("a restart during the trusting phase keeps the next root and promotes that one", async () => {
    const { ca, dir } = await newCa("phases-restart");
    await ca.prepareRootRotation();
    const restarted = await loadOrCreateCa({ dir });
    expect(restarted.rootRotationPhase()).toBe("trusting");
    expect(restarted.trustBundlePem()).toBe(ca.trustBundlePem());
    const next = splitPemCertificates(ca.trustBundlePem(), "bundle")[1];
    await restarted.beginRootRotation();
    expect(splitPemCertificates(restarted.trustBundlePem(), "bundle")[0]).toBe(next);
  });
});

describe("renewalTime", () => {
  const notBefore = new Date("2030-01-01T00:00:00Z");
  const notAfter = new Date("2030-01-02T00:00:00Z");
  const lifetime = notAfter.getTime() - notBefore.getTime();

  it("falls between 50% and 80% of the lifetime for any random value, never after notAfter - 10%", () => {
    let earliest = Infinity;
    let latest = -Infinity;
    for (let i = 0; i < 10_000; i++) {
      const at = renewalTime({ notBefore, notAfter }).getTime() - notBefore.getTime();
      earliest = Math.min(earliest, at);
      latest = Math.max(latest, at);
      expect(at).toBeGreaterThanOrEqual(0.5 * lifetime);
      expect(at).toBeLessThanOrEqual(0.8 * lifetime);
      expect(at).toBeLessThanOrEqual(0.9 * lifetime);
    }
    // The jitter spreads renewals over the window.
    expect(earliest).toBeLessThan(0.52 * lifetime);
    expect(latest).toBeGreaterThan(0.78 * lifetime);
  });

  it("maps the random source onto the window and clamps values outside [0, 1)", () => {
    const at = (value: number): number => (renewalTime({ notBefore, notAfter }, () => value).getTime() - notBefore.getTime()) / lifetime;
    expect(at(0)).toBeCloseTo(0.5, 9);
    expect(at(0.5)).toBeCloseTo(0.65, 9);
    expect(at(0.999999)).toBeCloseTo(0.8, 5);
    expect(at(-3)).toBeCloseTo(0.5, 9);
    expect(at(7)).toBeCloseTo(0.8, 9);
    expect(at(Number.NaN)).toBeCloseTo(0.5, 9);
  });

  it("refuses a certificate whose notAfter is not after notBefore", () => {
    expect(() => renewalTime({ notBefore: notAfter, notAfter: notBefore })).toThrow(/expected notAfter later than notBefore/);
  });
});

// ---------------------------------------------------------------------------------------
// Mutual TLS between two workloads, as their sidecars would do it.

interface HandshakeResult {
  serverSawPeer?: string;
  clientSawPeer?: string;
  error?: string;
}

async function mutualTlsHandshake(server: IssuedCertificate, client: IssuedCertificate, serverTrust: string, clientTrust: string): Promise<HandshakeResult> {
  const result: HandshakeResult = {};
  const tlsServer = tls.createServer({ key: server.privateKeyPem, cert: server.certChainPem, ca: serverTrust, requestCert: true, rejectUnauthorized: true }, (socket) => {
    result.serverSawPeer = socket.getPeerCertificate().subjectaltname;
    socket.end("hello");
  });
  tlsServer.on("tlsClientError", (err) => (result.error ??= `server: ${err.message}`));
  await new Promise<void>((resolve) => tlsServer.listen(0, "127.0.0.1", resolve));
  const { port } = tlsServer.address() as AddressInfo;
  try {
    await new Promise<void>((resolve) => {
      const socket = tls.connect({
        host: "127.0.0.1",
        port,
        key: client.privateKeyPem,
        cert: client.certChainPem,
        ca: clientTrust,
        // Workload certificates name a SPIFFE ID, not a host: check that instead.
        checkServerIdentity: (_host, peer) => (peer.subjectaltname === `URI:${server.identity}` ? undefined : new Error(`unexpected server identity ${peer.subjectaltname}`)),
      });
      socket.on("secureConnect", () => (result.clientSawPeer = socket.getPeerCertificate().subjectaltname));
      socket.on("data", () => undefined);
      socket.on("error", (err) => {
        result.error ??= `client: ${err.message}`;
        resolve();
      });
      socket.on("close", () => resolve());
    });
  } finally {
    await new Promise<void>((resolve) => tlsServer.close(() => resolve()));
  }
  return result;
}

describe("mutual TLS with workload certificates", () => {
  it("server and client authenticate each other; the server sees the client's SPIFFE ID", async () => {
    const { ca } = await newCa("tls");
    const server = await ca.issueWorkloadCertificate({ namespace: "bookinfo", serviceAccount: "reviews" });
    const client = await ca.issueWorkloadCertificate({ namespace: "bookinfo", serviceAccount: "productpage" });
    const result = await mutualTlsHandshake(server, client, ca.trustBundlePem(), ca.trustBundlePem());
    expect(result.error).toBeUndefined();
    expect(result.serverSawPeer).toBe("URI:spiffe://cluster.local/ns/bookinfo/sa/productpage");
    expect(result.clientSawPeer).toBe("URI:spiffe://cluster.local/ns/bookinfo/sa/reviews");
  });

  it("works across a root rotation: old-root server, new-root client, both trusting the bundle", async () => {
    const { ca } = await newCa("tls-rotation");
    const server = await ca.issueWorkloadCertificate({ namespace: "default", serviceAccount: "server" });
    await ca.beginRootRotation();
    const client = await ca.issueWorkloadCertificate({ namespace: "default", serviceAccount: "client" });
    const result = await mutualTlsHandshake(server, client, ca.trustBundlePem(), ca.trustBundlePem());
    expect(result.error).toBeUndefined();
    expect(result.serverSawPeer).toBe("URI:spiffe://cluster.local/ns/default/sa/client");
  });

  it("the server rejects a client whose certificate comes from another CA", async () => {
    const { ca } = await newCa("tls-a");
    const { ca: other } = await newCa("tls-b");
    const server = await ca.issueWorkloadCertificate({ namespace: "default", serviceAccount: "server" });
    const stranger = await other.issueWorkloadCertificate({ namespace: "default", serviceAccount: "client" });
    const result = await mutualTlsHandshake(server, stranger, ca.trustBundlePem(), ca.trustBundlePem() + other.trustBundlePem());
    expect(result.serverSawPeer).toBeUndefined();
    expect(result.error).toBeDefined();
  });
});

describe("metrics", () => {
  it("count issued certificates by kind and time them", async () => {
    const registry = new Registry();
    const { ca } = await newCa("metrics", { metrics: registry });
    await ca.issueWorkloadCertificate({ namespace: "default", serviceAccount: "web" });
    await ca.issueWorkloadCertificate({ namespace: "default", serviceAccount: "web" });
    await ca.issueServingCertificate({ dnsNames: ["weft"], ipAddresses: [] });
    await expect(ca.issueWorkloadCertificate({ namespace: "BAD", serviceAccount: "web" })).rejects.toThrow();
    const text = await registry.metrics();
    expect(text).toContain('weft_ca_certificates_issued_total{kind="workload"} 2');
    expect(text).toContain('weft_ca_certificates_issued_total{kind="serving"} 1');
    expect(text).toContain('weft_ca_issuance_failures_total{kind="workload"} 1');
    expect(text).toContain('weft_ca_issuance_seconds_count{kind="workload"} 2');
    expect(text).toContain(`weft_ca_root_expiry_timestamp_seconds ${ca.roots()[0]!.notAfter.getTime() / 1000}`);
    // A second CA on the same registry shares the metrics instead of failing to register them.
    await loadOrCreateCa({ dir: freshDir("metrics-2"), metrics: registry });
  });
});
