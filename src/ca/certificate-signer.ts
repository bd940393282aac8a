// The certificate and key that sign issued certificates (the self-signed root, or a plugged-in
// intermediate), with the chain that follows an issued leaf.
import { X509Certificate as NodeX509Certificate } from "node:crypto";
import { CertificateAuthorityError } from "./certificate-authority-error.js";
import { certificateSubjectDer } from "./der-encoding.js";
import type { SigningKey } from "./key-algorithm.js";
import * as x509 from "./x509-library.js";

export interface CertificateSigner {
  /** The certificate whose key signs issued certificates. */
  certificate: x509.X509Certificate;
  certificatePem: string;
  /** The exact DER of its subject: the issuer name of every certificate it signs. */
  subjectDer: Buffer;
  key: SigningKey;
  /** PEM blocks that follow an issued leaf in its chain: intermediates only, never the root. */
  chainAfterLeaf: readonly string[];
  /** Hex key identifier copied into issued certificates' authority key identifier. */
  keyIdentifier: string;
  /** The earliest expiry on the path from this certificate to its root: no issued certificate outlives it. */
  validUntil: Date;
}

/** The signer's subject key identifier, or (when it has none) one derived from its public key (RFC 5280 §4.2.1.2). */
async function keyIdentifierOf(certificate: x509.X509Certificate): Promise<string> {
  const existing = certificate.getExtension(x509.SubjectKeyIdentifierExtension);
  if (existing) return existing.keyId;
  return (await x509.SubjectKeyIdentifierExtension.create(certificate.publicKey)).keyId;
}

/**
 * Checks that `certificatePem` is a CA certificate whose public key belongs to `key` and that it
 * is valid at `now`, and returns the signer. `certificateFile` and `keyFile` name the two in
 * errors.
 */
export async function createCertificateSigner(opts: {
  certificatePem: string;
  certificateFile: string;
  key: SigningKey;
  keyFile: string;
  chainAfterLeaf: readonly string[];
  /** The earliest expiry of the certificates above this one (default: none). */
  chainValidUntil?: Date;
  /** Added to the "expired" error: what the operator can do about it. */
  expiredRemedy?: string;
  now: Date;
}): Promise<CertificateSigner> {
  const nodeCertificate = new NodeX509Certificate(opts.certificatePem);
  if (!nodeCertificate.checkPrivateKey(opts.key.keyObject)) {
    throw new CertificateAuthorityError(
      `${opts.keyFile} does not match ${opts.certificateFile}: the private key (${opts.key.description}) is not the one for the certificate's public key ` +
        `(subject "${(nodeCertificate.subject ?? "").replace(/\n/g, ", ")}"); put the key that was used to create that certificate in ${opts.keyFile}`,
    );
  }
  const certificate = new x509.X509Certificate(opts.certificatePem);
  const basicConstraints = certificate.getExtension(x509.BasicConstraintsExtension);
  if (!basicConstraints?.ca) {
    throw new CertificateAuthorityError(`${opts.certificateFile}: the certificate (subject "${certificate.subject}") is not a CA certificate; expected basicConstraints CA:TRUE`);
  }
  const keyUsage = certificate.getExtension(x509.KeyUsagesExtension);
  if (keyUsage && (keyUsage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw new CertificateAuthorityError(`${opts.certificateFile}: the certificate (subject "${certificate.subject}") may not sign certificates; its key usage lacks keyCertSign`);
  }
  if (opts.now.getTime() >= certificate.notAfter.getTime()) {
    throw new CertificateAuthorityError(
      `${opts.certificateFile}: the CA certificate (subject "${certificate.subject}") expired at ${certificate.notAfter.toISOString()}; it cannot sign new certificates${opts.expiredRemedy ? `. ${opts.expiredRemedy}` : ""}`,
    );
  }
  if (opts.now.getTime() < certificate.notBefore.getTime()) {
    throw new CertificateAuthorityError(
      `${opts.certificateFile}: the CA certificate (subject "${certificate.subject}") is not valid until ${certificate.notBefore.toISOString()}; check this machine's clock`,
    );
  }
  return {
    certificate,
    certificatePem: opts.certificatePem,
    subjectDer: certificateSubjectDer(new Uint8Array(certificate.rawData)),
    key: opts.key,
    chainAfterLeaf: opts.chainAfterLeaf,
    keyIdentifier: await keyIdentifierOf(certificate),
    validUntil: opts.chainValidUntil && opts.chainValidUntil < certificate.notAfter ? opts.chainValidUntil : certificate.notAfter,
  };
}
