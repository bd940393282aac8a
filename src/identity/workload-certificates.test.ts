import { describe, expect, it } from "vitest";
import type { CertificateAuthority, IssuedCertificate } from "../ca/certificate-authority.js";
import { silentLogger } from "../log/logger.js";
import { WorkloadCertificates } from "./workload-certificates.js";

/** A CA that back-dates notBefore by 5 minutes, as the real one does, and counts issuances. */
function countingCa(ttlMs: number): { ca: CertificateAuthority; issued: () => number } {
  let n = 0;
  const ca = {
    trustDomain: "cluster.local",
    issueWorkloadCertificate: async (opts: { namespace: string; serviceAccount: string }): Promise<IssuedCertificate> => {
      n++;
      const now = Date.now();
      return { certChainPem: `cert-${n}`, privateKeyPem: "key", serial: String(n), notBefore: new Date(now - 5 * 60_000), notAfter: new Date(now + ttlMs), identity: `spiffe://cluster.local/ns/${opts.namespace}/sa/${opts.serviceAccount}` };
    },
  } as unknown as CertificateAuthority;
  return { ca, issued: () => n };
}

describe("workload certificates", () => {
  it("renews short-lived certificates at 50-80% of their life, not at once (the CA back-dates notBefore)", async () => {
    const { ca, issued } = countingCa(4000);
    const renewed: string[] = [];
    const certs = new WorkloadCertificates(ca, (_key, cert) => renewed.push(cert.serial), silentLogger());
    try {
      await certs.ensure({ namespace: "default", serviceAccount: "a" });
      await new Promise((r) => setTimeout(r, 1500)); // < 50% of 4 s: no renewal yet
      expect(issued()).toBe(1);
      await new Promise((r) => setTimeout(r, 2200)); // past 80% of 4 s (3.2 s), before the next renewal (>= 4 s): renewed exactly once
      expect(issued()).toBe(2);
      expect(renewed).toEqual(["1", "2"]);
      expect(certs.get({ namespace: "default", serviceAccount: "a" })?.serial).toBe("2");
    } finally {
      certs.close();
    }
  });

  it("shares one issuance between concurrent callers", async () => {
    const { ca, issued } = countingCa(60_000);
    const certs = new WorkloadCertificates(ca, () => undefined, silentLogger());
    try {
      const all = await Promise.all(Array.from({ length: 10 }, () => certs.ensure({ namespace: "ns", serviceAccount: "sa" })));
      expect(issued()).toBe(1);
      expect(new Set(all.map((c) => c.serial)).size).toBe(1);
    } finally {
      certs.close();
    }
  });
});
