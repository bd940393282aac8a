// Issuing end-entity certificates: workload (SPIFFE) and serving (DNS/IP) certificates, each
// with a fresh key. The certificate is written directly in DER (der-encoding.ts) and signed
// with node:crypto, off the event loop.
import { sign } from "node:crypto";
import type { CertificateSigner } from "./certificate-signer.js";
import {
  derBitString,
  derBoolean,
  derContext,
  derNamedBits,
  derNull,
  derObjectIdentifier,
  derOctetString,
  derSequence,
  derSmallInteger,
  derTime,
  derUnsignedInteger,
} from "./der-encoding.js";
import { ipAddressBytes } from "./ip-address-bytes.js";
import { generateLeafKeyPair, type CertificateSignatureScheme, type KeyAlgorithm } from "./key-algorithm.js";
import { derToPem, joinPem } from "./pem-blocks.js";
import { randomSerialNumber } from "./serial-number.js";

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

export type SubjectAltName = { type: "uri"; value: string } | { type: "dns"; value: string } | { type: "ip"; value: string };

export const EXTENDED_KEY_USAGE = {
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;
export type ExtendedKeyUsage = (typeof EXTENDED_KEY_USAGE)[keyof typeof EXTENDED_KEY_USAGE];

export interface LeafCertificateRequest {
  identity: string;
  /** The only names in the certificate; there is no subject name. */
  subjectAltNames: readonly SubjectAltName[];
  extendedKeyUsages: readonly ExtendedKeyUsage[];
  /** Whole seconds (certificate times carry no milliseconds). */
  notBefore: Date;
  notAfter: Date;
  keyAlgorithm: KeyAlgorithm;
}

const EXTENSION = {
  subjectAltName: "2.5.29.17",
  keyUsage: "2.5.29.15",
  basicConstraints: "2.5.29.19",
  extendedKeyUsage: "2.5.29.37",
  authorityKeyIdentifier: "2.5.29.35",
} as const;
const KEY_USAGE_BIT = { digitalSignature: 0, keyEncipherment: 2 } as const;
const X509_VERSION_3 = 2;

function extension(oid: string, critical: boolean, value: Uint8Array): Buffer {
  return derSequence(derObjectIdentifier(oid), ...(critical ? [derBoolean(true)] : []), derOctetString(value));
}

function generalName(name: SubjectAltName): Buffer {
  switch (name.type) {
    case "dns": // [2] IMPLICIT IA5String
      return derContext(2, false, Buffer.from(name.value, "ascii"));
    case "uri": // [6] IMPLICIT IA5String
      return derContext(6, false, Buffer.from(name.value, "ascii"));
    case "ip": // [7] IMPLICIT OCTET STRING
      return derContext(7, false, ipAddressBytes(name.value));
  }
}

function algorithmIdentifier(scheme: CertificateSignatureScheme): Buffer {
  return derSequence(derObjectIdentifier(scheme.oid), ...(scheme.nullParameters ? [derNull()] : []));
}

function signAsync(digest: string, data: Uint8Array, signer: CertificateSigner): Promise<Buffer> {
  return new Promise((resolve, reject) => sign(digest, data, signer.key.keyObject, (err, signature) => (err ? reject(err) : resolve(signature))));
}

/**
 * Signs a certificate for a fresh key. The subject is empty, so the subject alternative names
 * carry the identity and that extension is critical (RFC 5280 §4.2.1.6). Key usage
 * digitalSignature + keyEncipherment (critical), the given extended key usages, CA:FALSE
 * (critical), the signer's key identifier as authority key identifier, and a random 128-bit
 * serial number.
 */
export async function issueLeafCertificate(signer: CertificateSigner, request: LeafCertificateRequest): Promise<IssuedCertificate> {
  const keys = await generateLeafKeyPair(request.keyAlgorithm);
  const serial = randomSerialNumber();
  const signatureAlgorithm = algorithmIdentifier(signer.key.signatureScheme);
  const tbsCertificate = derSequence(
    derContext(0, true, derSmallInteger(X509_VERSION_3)),
    derUnsignedInteger(serial),
    signatureAlgorithm,
    signer.subjectDer,
    derSequence(derTime(request.notBefore), derTime(request.notAfter)),
    derSequence(), // empty subject
    keys.publicKeySpkiDer,
    derContext(
      3,
      true,
      derSequence(
        extension(EXTENSION.keyUsage, true, derNamedBits([KEY_USAGE_BIT.digitalSignature, KEY_USAGE_BIT.keyEncipherment])),
        extension(EXTENSION.extendedKeyUsage, false, derSequence(...request.extendedKeyUsages.map(derObjectIdentifier))),
        extension(EXTENSION.basicConstraints, true, derSequence()), // cA defaults to FALSE
        extension(EXTENSION.authorityKeyIdentifier, false, derSequence(derContext(0, false, Buffer.from(signer.keyIdentifier, "hex")))),
        extension(EXTENSION.subjectAltName, true, derSequence(...request.subjectAltNames.map(generalName))),
      ),
    ),
  );
  const signature = await signAsync(signer.key.signatureScheme.digest, tbsCertificate, signer);
  const certificateDer = derSequence(tbsCertificate, signatureAlgorithm, derBitString(signature));
  return {
    certChainPem: joinPem([derToPem(certificateDer, "CERTIFICATE"), ...signer.chainAfterLeaf]),
    privateKeyPem: keys.privateKeyPem,
    serial: serial.toString("hex").replace(/^(00)+(?=.)/, ""),
    notBefore: request.notBefore,
    notAfter: request.notAfter,
    identity: request.identity,
  };
}
