// Issuing end-entity certificates: workload (SPIFFE) and serving (DNS/IP) certificates, each
// with a fresh key.
import type { CertificateSigner } from "./certificate-signer.js";
import { exportPrivateKeyPem, generateKeyPair, type KeyAlgorithm } from "./key-algorithm.js";
import { derToPem, joinPem } from "./pem-blocks.js";
import { randomSerialNumberHex } from "./serial-number.js";
import * as x509 from "./x509-library.js";

export interface IssuedCertificate {
  /** Leaf, then intermediates up to (not including) the root. */
  certChainPem: string;
  /** PKCS#8. */
  privateKeyPem: string;
  /** Hex. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** The SPIFFE ID, or the DNS name for serving certificates. */
  identity: string;
}

export type CertificateKind = "workload" | "serving";

export interface LeafCertificateRequest {
  identity: string;
  /** The only names in the certificate; there is no subject name. */
  subjectAltNames: x509.JsonGeneralNames;
  extendedKeyUsages: readonly x509.ExtendedKeyUsage[];
  notBefore: Date;
  notAfter: Date;
  keyAlgorithm: KeyAlgorithm;
}

/**
 * Signs a certificate for a fresh key with an empty subject, so the subject alternative names
 * carry the identity and the extension is critical (RFC 5280 §4.2.1.6). Key usage
 * digitalSignature + keyEncipherment, CA:FALSE, and the signer's key identifier as authority
 * key identifier.
 */
export async function issueLeafCertificate(signer: CertificateSigner, request: LeafCertificateRequest): Promise<IssuedCertificate> {
  const keys = await generateKeyPair(request.keyAlgorithm);
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumberHex(),
    issuer: signer.certificate.subjectName,
    notBefore: request.notBefore,
    notAfter: request.notAfter,
    publicKey: keys.publicKey,
    signingKey: signer.key.privateKey,
    signingAlgorithm: signer.key.signatureAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([...request.extendedKeyUsages]),
      new x509.AuthorityKeyIdentifierExtension(signer.keyIdentifier),
      new x509.SubjectAlternativeNameExtension(request.subjectAltNames, true),
    ],
  });
  return {
    certChainPem: joinPem([derToPem(certificate.rawData, "CERTIFICATE"), ...signer.chainAfterLeaf]),
    privateKeyPem: await exportPrivateKeyPem(keys.privateKey),
    serial: certificate.serialNumber,
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
    identity: request.identity,
  };
}
