// PEM text in and out: splitting a bundle into its certificates and writing DER as PEM.
import { CertificateAuthorityError } from "./certificate-authority-error.js";

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE-----/g;

/**
 * The certificates in a PEM bundle, each as its own normalized PEM block ending in a newline.
 * `source` names where the text came from (a file path) for the error when there are none.
 */
export function splitPemCertificates(pemText: string, source: string): string[] {
  const blocks = [...pemText.matchAll(CERTIFICATE_BLOCK)].map((match) => derToPem(Buffer.from(match[1]!.replace(/\s+/g, ""), "base64"), "CERTIFICATE"));
  if (blocks.length === 0) {
    throw new CertificateAuthorityError(`${source}: no certificate found; expected one or more PEM blocks starting with "-----BEGIN CERTIFICATE-----"`);
  }
  return blocks;
}

/** DER bytes as a PEM block (64-character lines) ending in a newline. */
export function derToPem(der: ArrayBuffer | Uint8Array, label: "CERTIFICATE" | "PRIVATE KEY"): string {
  const base64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString("base64");
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** PEM blocks joined into one bundle. */
export function joinPem(blocks: readonly string[]): string {
  return blocks.map((block) => (block.endsWith("\n") ? block : `${block}\n`)).join("");
}
