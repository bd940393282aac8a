// Key algorithms the CA generates keys for, and turning PEM private keys into signing keys.
// Roots are made with WebCrypto keys (for @peculiar/x509, rare); workload keys and their
// signatures use node:crypto's callback APIs (every issuance). Both run on the libuv thread
// pool, so concurrent issuances overlap and the event loop stays free.
import { createPrivateKey, generateKeyPair as generateNodeKeyPair, type KeyObject } from "node:crypto";
import { CertificateAuthorityError } from "./certificate-authority-error.js";
import { derToPem } from "./pem-blocks.js";

export type KeyAlgorithm = "ECDSA_P256" | "RSA_2048" | "RSA_4096";

export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ["ECDSA_P256", "RSA_2048", "RSA_4096"];

export function isKeyAlgorithm(value: unknown): value is KeyAlgorithm {
  return typeof value === "string" && (KEY_ALGORITHMS as readonly string[]).includes(value);
}

/** The WebCrypto signature algorithm used with a key, e.g. ECDSA with SHA-256. */
export type SignatureAlgorithm = EcdsaParams | RsaHashedImportParams;

const RSA_PUBLIC_EXPONENT = new Uint8Array([1, 0, 1]);

function keyGenerationParams(algorithm: KeyAlgorithm): EcKeyGenParams | RsaHashedKeyGenParams {
  switch (algorithm) {
    case "ECDSA_P256":
      return { name: "ECDSA", namedCurve: "P-256" };
    case "RSA_2048":
      return { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: RSA_PUBLIC_EXPONENT, hash: "SHA-256" };
    case "RSA_4096":
      return { name: "RSASSA-PKCS1-v1_5", modulusLength: 4096, publicExponent: RSA_PUBLIC_EXPONENT, hash: "SHA-256" };
  }
}

/** How certificates are signed with a key of this algorithm (SHA-256 in every case). */
export function signatureAlgorithmFor(algorithm: KeyAlgorithm): SignatureAlgorithm {
  return algorithm === "ECDSA_P256" ? { name: "ECDSA", hash: "SHA-256" } : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
}

/** A fresh, extractable WebCrypto key pair (for a root; the private half is exported once, as PKCS#8 PEM). */
export async function generateWebCryptoKeyPair(algorithm: KeyAlgorithm): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(keyGenerationParams(algorithm), true, ["sign", "verify"]);
}

/** A private key as PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"). */
export async function exportPrivateKeyPem(privateKey: CryptoKey): Promise<string> {
  return derToPem(await crypto.subtle.exportKey("pkcs8", privateKey), "PRIVATE KEY");
}

/** A fresh key pair for an end-entity certificate: the public key as SPKI DER, the private key as PKCS#8 PEM. */
export function generateLeafKeyPair(algorithm: KeyAlgorithm): Promise<{ publicKeySpkiDer: Buffer; privateKeyPem: string }> {
  const encoding = { publicKeyEncoding: { type: "spki", format: "der" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } } as const;
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKeySpkiDer: Buffer, privateKeyPem: string): void => (err ? reject(err) : resolve({ publicKeySpkiDer, privateKeyPem }));
    if (algorithm === "ECDSA_P256") generateNodeKeyPair("ec", { namedCurve: "P-256", ...encoding }, done);
    else generateNodeKeyPair("rsa", { modulusLength: algorithm === "RSA_2048" ? 2048 : 4096, ...encoding }, done);
  });
}

/** How a key signs certificates: the X.509 signature algorithm and the digest node:crypto uses. */
export interface CertificateSignatureScheme {
  name: "ecdsa-with-SHA256" | "ecdsa-with-SHA384" | "sha256WithRSAEncryption";
  oid: string;
  /** RSA algorithm identifiers carry NULL parameters; ECDSA ones carry none (RFC 5758 §3.2). */
  nullParameters: boolean;
  digest: "sha256" | "sha384";
}

const SIGNATURE_SCHEMES: Record<CertificateSignatureScheme["name"], CertificateSignatureScheme> = {
  "ecdsa-with-SHA256": { name: "ecdsa-with-SHA256", oid: "1.2.840.10045.4.3.2", nullParameters: false, digest: "sha256" },
  "ecdsa-with-SHA384": { name: "ecdsa-with-SHA384", oid: "1.2.840.10045.4.3.3", nullParameters: false, digest: "sha384" },
  sha256WithRSAEncryption: { name: "sha256WithRSAEncryption", oid: "1.2.840.113549.1.1.11", nullParameters: true, digest: "sha256" },
};

/** A private key ready to sign certificates. */
export interface SigningKey {
  /** Signs with node:crypto; also compared with a certificate (X509Certificate.checkPrivateKey). */
  keyObject: KeyObject;
  /** The signature algorithm of what it signs. */
  signatureScheme: CertificateSignatureScheme;
  /** "ECDSA P-256", "RSA 2048", ... for messages and status. */
  description: string;
}

/** EC curves a signing key may use (OpenSSL names), with the signature algorithm for each. */
const SIGNING_CURVES: Record<string, { signatureScheme: CertificateSignatureScheme; description: string }> = {
  prime256v1: { signatureScheme: SIGNATURE_SCHEMES["ecdsa-with-SHA256"], description: "ECDSA P-256" },
  secp384r1: { signatureScheme: SIGNATURE_SCHEMES["ecdsa-with-SHA384"], description: "ECDSA P-384" },
};

/**
 * Reads an unencrypted PEM private key (PKCS#8, PKCS#1 "RSA PRIVATE KEY" or SEC1 "EC PRIVATE
 * KEY") for signing. Supports EC P-256/P-384 and RSA of at least 2048 bits. `file` names the
 * key in errors.
 */
export function importSigningKey(pemText: string, file: string): SigningKey {
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey({ key: pemText, format: "pem" });
  } catch (err) {
    throw new CertificateAuthorityError(
      `${file}: cannot read the private key (${(err as Error).message}); expected an unencrypted PEM private key ` +
        `("PRIVATE KEY", "RSA PRIVATE KEY" or "EC PRIVATE KEY")`,
    );
  }
  const type = keyObject.asymmetricKeyType;
  if (type === "ec") {
    const curveName = keyObject.asymmetricKeyDetails?.namedCurve ?? "(unknown curve)";
    const curve = SIGNING_CURVES[curveName];
    if (!curve) {
      throw new CertificateAuthorityError(`${file}: EC key on curve ${curveName} is not supported; expected P-256 (prime256v1) or P-384 (secp384r1)`);
    }
    return { keyObject, signatureScheme: curve.signatureScheme, description: curve.description };
  }
  if (type === "rsa") {
    const bits = keyObject.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) {
      throw new CertificateAuthorityError(`${file}: RSA key of ${bits} bits is too weak to sign certificates; expected at least 2048 bits`);
    }
    return { keyObject, signatureScheme: SIGNATURE_SCHEMES.sha256WithRSAEncryption, description: `RSA ${bits}` };
  }
  throw new CertificateAuthorityError(`${file}: ${type ?? "unknown"} keys are not supported for signing; expected an EC (P-256 or P-384) or RSA private key`);
}
