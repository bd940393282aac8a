// Key algorithms the CA generates keys for, and turning PEM private keys into WebCrypto signing
// keys. WebCrypto (globalThis.crypto.subtle) does the work; Node runs its key generation and
// signing on the libuv thread pool, so concurrent issuances overlap.
import { createPrivateKey, type KeyObject } from "node:crypto";
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

/** A fresh, extractable key pair (the private half is exported once, as PKCS#8 PEM). */
export async function generateKeyPair(algorithm: KeyAlgorithm): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(keyGenerationParams(algorithm), true, ["sign", "verify"]);
}

/** A private key as PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"). */
export async function exportPrivateKeyPem(privateKey: CryptoKey): Promise<string> {
  return derToPem(await crypto.subtle.exportKey("pkcs8", privateKey), "PRIVATE KEY");
}

/** A private key ready to sign certificates, with what Node knows about it. */
export interface SigningKey {
  privateKey: CryptoKey;
  signatureAlgorithm: SignatureAlgorithm;
  /** Node's view of the same key, for comparing it with a certificate (X509Certificate.checkPrivateKey). */
  keyObject: KeyObject;
  /** "ECDSA P-256", "RSA 2048", ... for messages and status. */
  description: string;
}

const CURVES: Record<string, { webCryptoCurve: string; hash: string; description: string }> = {
  prime256v1: { webCryptoCurve: "P-256", hash: "SHA-256", description: "ECDSA P-256" },
  secp384r1: { webCryptoCurve: "P-384", hash: "SHA-384", description: "ECDSA P-384" },
};

/**
 * Reads an unencrypted PEM private key (PKCS#8, PKCS#1 "RSA PRIVATE KEY" or SEC1 "EC PRIVATE
 * KEY") for signing. Supports EC P-256/P-384 and RSA of at least 2048 bits. `file` names the
 * key in errors.
 */
export async function importSigningKey(pemText: string, file: string): Promise<SigningKey> {
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey({ key: pemText, format: "pem" });
  } catch (err) {
    throw new CertificateAuthorityError(
      `${file}: cannot read the private key (${(err as Error).message}); expected an unencrypted PEM private key ` +
        `("PRIVATE KEY", "RSA PRIVATE KEY" or "EC PRIVATE KEY")`,
    );
  }
  const pkcs8 = keyObject.export({ format: "der", type: "pkcs8" });
  const type = keyObject.asymmetricKeyType;
  if (type === "ec") {
    const curveName = keyObject.asymmetricKeyDetails?.namedCurve ?? "(unknown curve)";
    const curve = CURVES[curveName];
    if (!curve) {
      throw new CertificateAuthorityError(`${file}: EC key on curve ${curveName} is not supported; expected P-256 (prime256v1) or P-384 (secp384r1)`);
    }
    const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "ECDSA", namedCurve: curve.webCryptoCurve }, false, ["sign"]);
    return { privateKey, keyObject, signatureAlgorithm: { name: "ECDSA", hash: curve.hash }, description: curve.description };
  }
  if (type === "rsa") {
    const bits = keyObject.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) {
      throw new CertificateAuthorityError(`${file}: RSA key of ${bits} bits is too weak to sign certificates; expected at least 2048 bits`);
    }
    const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["sign"]);
    return { privateKey, keyObject, signatureAlgorithm: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, description: `RSA ${bits}` };
  }
  throw new CertificateAuthorityError(`${file}: ${type ?? "unknown"} keys are not supported for signing; expected an EC (P-256 or P-384) or RSA private key`);
}
