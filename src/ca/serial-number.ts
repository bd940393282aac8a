import { randomBytes } from "node:crypto";

/**
 * A random 128-bit certificate serial number as hex. The DER encoding adds a 0x00 byte when the
 * top bit is set, so the INTEGER is always positive (RFC 5280 §4.1.2.2: at most 20 octets).
 */
export function randomSerialNumberHex(): string {
  const bytes = randomBytes(16);
  if (bytes.every((b) => b === 0)) bytes[15] = 1; // a serial number must not be zero
  return bytes.toString("hex");
}
