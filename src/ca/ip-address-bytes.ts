// IP addresses as the bytes an X.509 iPAddress name carries (4 for IPv4, 16 for IPv6).
import { isIPv4, isIPv6 } from "node:net";

function ipv4Bytes(text: string): number[] {
  return text.split(".").map(Number);
}

/** The network-order bytes of an IPv4 or IPv6 address (IPv6 may use "::" and an embedded IPv4 tail). */
export function ipAddressBytes(text: string): Uint8Array {
  if (isIPv4(text)) return Uint8Array.from(ipv4Bytes(text));
  if (!isIPv6(text)) throw new Error(`not an IP address: ${JSON.stringify(text)}`);
  const address = text.replace(/%.*$/, ""); // zone index ("fe80::1%eth0") is not part of the address
  const toGroups = (part: string): number[] => {
    if (part === "") return [];
    const words: number[] = [];
    for (const piece of part.split(":")) {
      if (piece.includes(".")) {
        const [a, b, c, d] = ipv4Bytes(piece) as [number, number, number, number];
        words.push((a << 8) | b, (c << 8) | d);
      } else {
        words.push(parseInt(piece, 16));
      }
    }
    return words;
  };
  const [head, tail] = address.split("::") as [string, string | undefined];
  const headWords = toGroups(head);
  const tailWords = tail === undefined ? [] : toGroups(tail);
  const words = tail === undefined ? headWords : [...headWords, ...new Array<number>(8 - headWords.length - tailWords.length).fill(0), ...tailWords];
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    bytes[2 * i] = word >> 8;
    bytes[2 * i + 1] = word & 0xff;
  });
  return bytes;
}
