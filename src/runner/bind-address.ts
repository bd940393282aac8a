// Which bind addresses only this machine can reach.
import { isIP } from "node:net";

/** True for 127.0.0.0/8, ::1, "localhost" (and IPv4-mapped loopback). 0.0.0.0 and :: are not: they bind every interface. */
export function isLoopbackAddress(address: string): boolean {
  const a = address.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (a === "localhost" || a === "::1") return true;
  const v4 = a.startsWith("::ffff:") ? a.slice(7) : a;
  return isIP(v4) === 4 && v4.startsWith("127.");
}
