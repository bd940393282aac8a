import { randomBytes } from "node:crypto";

/**
 * A random 128-bit certificate serial number (big-endian magnitude). Encoded as a DER INTEGER
 * it gains a 0x00 byte when the top bit is set, so it is always positive and at most 17 octets
 * (RFC 5280 §4.1.2.2 allows 20).
 */
export function randomSerialNumber(): Buffer {
  const bytes = randomBytes(16);
  if (bytes.every((b) => b === 0)) bytes[15] = 1; // a serial number must not be zero
  return bytes;
}

/** The same, as hex (for @peculiar/x509). */
export function randomSerialNumberHex(): string {
  return randomSerialNumber().toString("hex");
}
