// The self-signed root: CA:TRUE, keyCertSign + cRLSign, valid for ten years, subject
// "O=<trust domain>, CN=Weft Root CA".
import { exportPrivateKeyPem, generateWebCryptoKeyPair, signatureAlgorithmFor, type KeyAlgorithm } from "./key-algorithm.js";
import { derToPem } from "./pem-blocks.js";
import { randomSerialNumberHex } from "./serial-number.js";
import * as x509 from "./x509-library.js";

export const ROOT_COMMON_NAME = "Weft Root CA";
export const ROOT_VALIDITY_YEARS = 10;
/** Validity starts this much before "now", so peers with slightly slow clocks accept it. */
export const CLOCK_SKEW_ALLOWANCE_MS = 5 * 60 * 1000;

export function rootSubject(trustDomain: string, generation?: string): string {
  // The trust domain was checked (lowercase letters, digits, '.', '-', '_'), so it needs no escaping.
  // A rotated root gets its own name: with two trusted roots of the same subject, Envoy's TLS
  // library (BoringSSL) builds the chain to one of them only and rejects leaves of the other
  // (measured in e2e: most requests failed during a rotation before this).
  return `O=${trustDomain}, CN=${ROOT_COMMON_NAME}${generation ? ` ${generation}` : ""}`;
}

/** Whole seconds: certificate times carry no milliseconds. */
export function wholeSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

/** ttlMs: lifetime from now (default ten years; short ones are for tests of automatic rotation). */
export async function createRootCertificate(opts: { trustDomain: string; keyAlgorithm: KeyAlgorithm; now: Date; generation?: string; ttlMs?: number }): Promise<{ certificatePem: string; privateKeyPem: string }> {
  const keys = await generateWebCryptoKeyPair(opts.keyAlgorithm);
  const notBefore = wholeSeconds(opts.now.getTime() - CLOCK_SKEW_ALLOWANCE_MS);
  const notAfter = wholeSeconds(opts.now.getTime() + (opts.ttlMs ?? 0));
  if (opts.ttlMs === undefined) notAfter.setUTCFullYear(notAfter.getUTCFullYear() + ROOT_VALIDITY_YEARS);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialNumberHex(),
    name: rootSubject(opts.trustDomain, opts.generation),
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: signatureAlgorithmFor(opts.keyAlgorithm),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certificatePem: derToPem(certificate.rawData, "CERTIFICATE"), privateKeyPem: await exportPrivateKeyPem(keys.privateKey) };
}
