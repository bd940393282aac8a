// SotW requests repeat every subscribed name on every ACK: an Envoy with 3000 EDS clusters
// sends ~200 KB of names per EDS ACK. Decoding them into strings each time dominated the cost
// of an endpoint push to thousands of proxies, although they almost never change. So requests
// are decoded without their resource_names; the names' raw bytes are fingerprinted, and only
// decoded when the fingerprint differs from the last request of that type.
import { hash } from "node:crypto";
import { DiscoveryRequest } from "../../../generated/envoy/service/discovery/v3/discovery.js";

const RESOURCE_NAMES_FIELD = 3;
/** Below this many bytes of names, a plain decode is cheaper than the bookkeeping. */
const RAW_NAMES_THRESHOLD = 1024;

export interface SotwRequest extends DiscoveryRequest {
  /** Present when the names were left encoded: their fingerprint and a way to decode them. */
  rawNames?: { fingerprint: string; decode: () => string[] };
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

/** Byte ranges [start, end) of each top-level field, with the field number and payload. */
function fields(buf: Buffer): { field: number; start: number; end: number; payload?: [number, number] }[] {
  const out = [];
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const [key, afterKey] = varint(buf, pos);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    pos = afterKey;
    let payload: [number, number] | undefined;
    if (wire === 0) pos = varint(buf, pos)[1];
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const [len, afterLen] = varint(buf, pos);
      payload = [afterLen, afterLen + len];
      pos = afterLen + len;
    } else throw new RangeError(`unsupported wire type ${wire}`);
    if (pos > buf.length) throw new RangeError("truncated field");
    out.push({ field, start, end: pos, payload });
  }
  return out;
}

export function decodeSotwRequest(bytes: Buffer): SotwRequest {
  if (bytes.length < RAW_NAMES_THRESHOLD) return DiscoveryRequest.decode(bytes);
  let parts: ReturnType<typeof fields>;
  try {
    parts = fields(bytes);
  } catch {
    return DiscoveryRequest.decode(bytes); // let the regular decoder report what is wrong
  }
  const names = parts.filter((p) => p.field === RESOURCE_NAMES_FIELD && p.payload);
  const namesBytes = names.reduce((n, p) => n + (p.end - p.start), 0);
  if (namesBytes < RAW_NAMES_THRESHOLD) return DiscoveryRequest.decode(bytes);
  const rest = Buffer.concat(parts.filter((p) => p.field !== RESOURCE_NAMES_FIELD).map((p) => bytes.subarray(p.start, p.end)));
  const req: SotwRequest = DiscoveryRequest.decode(rest);
  const fingerprint = hash("sha1", Buffer.concat(names.map((p) => bytes.subarray(p.start, p.end))), "base64");
  req.rawNames = { fingerprint, decode: () => names.map((p) => bytes.toString("utf8", p.payload![0], p.payload![1])) };
  return req;
}
