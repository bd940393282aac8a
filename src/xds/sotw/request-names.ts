// SotW requests repeat every subscribed name on every ACK: an Envoy with 3000 EDS clusters
// sends ~200 KB of names per EDS ACK. Decoding them into strings each time dominated the cost
// of an endpoint push to thousands of proxies, although they almost never change. So requests
// are decoded without their resource_names; the names' raw bytes are fingerprinted, and only
// decoded when the fingerprint differs from the last request of that type.
import { createHash } from "node:crypto";
import { DiscoveryRequest } from "../../../generated/envoy/service/discovery/v3/discovery.js";

const RESOURCE_NAMES_FIELD = 3;
/** Below this many bytes of names, a plain decode is cheaper than the bookkeeping. */
const RAW_NAMES_THRESHOLD = 1024;

export interface SotwRequest extends DiscoveryRequest {
  /** Present when the names were left encoded: their fingerprint and a way to decode them. */
  rawNames?: { fingerprint: string; decode: () => string[]; count: number; bytes: number };
}

function varint(buf: Buffer, pos: number): [value: number, next: number] {
  let value = 0;
  let shift = 0;
  for (;;) {
    if (pos >= buf.length) throw new RangeError("truncated varint");
    const b = buf[pos++]!;
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [value, pos];
    shift += 7;
    if (shift > 63) throw new RangeError("varint too long");
  }
}

/** Where a field ends: `pos` is at its key. Throws on malformed input. */
function fieldEnd(buf: Buffer, pos: number): { field: number; wire: number; end: number } {
  const [key, afterKey] = varint(buf, pos);
  const field = Math.floor(key / 8);
  const wire = key & 7;
  let end: number;
  if (wire === 0) end = varint(buf, afterKey)[1];
  else if (wire === 1) end = afterKey + 8;
  else if (wire === 5) end = afterKey + 4;
  else if (wire === 2) {
    const [len, afterLen] = varint(buf, afterKey);
    end = afterLen + len;
  } else throw new RangeError(`unsupported wire type ${wire}`);
  if (end > buf.length) throw new RangeError("truncated field");
  return { field, wire, end };
}

type Range = [start: number, end: number];

/** Appends [start, end) to `ranges`, merging it with the last range when adjacent. */
function addRange(ranges: Range[], start: number, end: number): void {
  const last = ranges[ranges.length - 1];
  if (last && last[1] === start) last[1] = end;
  else ranges.push([start, end]);
}

/** The strings of the resource_names fields within `ranges`. */
function decodeNames(buf: Buffer, ranges: readonly Range[]): string[] {
  const out: string[] = [];
  for (const [start, end] of ranges) {
    let pos = start;
    while (pos < end) {
      const afterKey = varint(buf, pos)[1];
      const [len, afterLen] = varint(buf, afterKey);
      out.push(buf.toString("utf8", afterLen, afterLen + len));
      pos = afterLen + len;
    }
  }
  return out;
}

export function decodeSotwRequest(bytes: Buffer): SotwRequest {
  if (bytes.length < RAW_NAMES_THRESHOLD) return DiscoveryRequest.decode(bytes);
  // One pass: the byte ranges of the names (usually one contiguous run) and of the rest.
  const names: Range[] = [];
  const others: Range[] = [];
  let namesBytes = 0;
  let count = 0;
  try {
    for (let pos = 0; pos < bytes.length; ) {
      const { field, wire, end } = fieldEnd(bytes, pos);
      if (field === RESOURCE_NAMES_FIELD && wire === 2) {
        addRange(names, pos, end);
        namesBytes += end - pos;
        count++;
      } else addRange(others, pos, end);
      pos = end;
    }
  } catch {
    return DiscoveryRequest.decode(bytes); // let the regular decoder report what is wrong
  }
  if (namesBytes < RAW_NAMES_THRESHOLD) return DiscoveryRequest.decode(bytes);
  const rest = others.length === 1 ? bytes.subarray(others[0]![0], others[0]![1]) : Buffer.concat(others.map(([s, e]) => bytes.subarray(s, e)));
  const req: SotwRequest = DiscoveryRequest.decode(rest);
  const h = createHash("sha1");
  for (const [s, e] of names) h.update(bytes.subarray(s, e));
  // `bytes` counts each name's field key and length too: an upper bound of the names' bytes.
  req.rawNames = { fingerprint: h.digest("base64"), decode: () => decodeNames(bytes, names), count, bytes: namesBytes };
  return req;
}
