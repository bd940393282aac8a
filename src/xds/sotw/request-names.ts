// SotW requests repeat every subscribed name on every ACK: an Envoy with 3000 EDS clusters
// sends ~200 KB of names per EDS ACK. Decoding them into strings each time dominated the cost
// of an endpoint push to thousands of proxies, although they almost never change. So requests
// are decoded without their resource_names, and only decoded when they differ from the last
// request of that type.
//
// Two ways to tell "the same names as before", cheapest first:
// - the stream passes the lists it holds (KnownNames: their exact encoded bytes, one copy
//   shared by every stream that sends that list): the request's names are compared with them
//   byte for byte where they start (a memcmp; no scan of the ~3300 fields, no hashing);
// - otherwise the names' byte ranges are found field by field and fingerprinted (SHA-1), and
//   decoded only when the fingerprint differs.
// A 165 KB EDS ACK cost 250-800 µs to scan and fingerprint and ~5-10 µs to compare (loaded
// 2-core machine): with 2000 proxies ACKing one endpoint change, 0.5-1.6 CPU-s per change.
// A large request may arrive as the chunks it was received in (grpc-framing.ts,
// ChunkedMessage): the known-list comparison then runs over the chunks, and only the small
// fields around the names are copied; anything else joins the chunks first.
import { createHash } from "node:crypto";
import { DiscoveryRequest } from "../../../generated/envoy/service/discovery/v3/discovery.js";
import { acceptChunks, ChunkedMessage } from "../grpc-framing.js";

const RESOURCE_NAMES_FIELD = 3;
/** The key byte of a resource_names entry (field 3, length-delimited). */
const RESOURCE_NAMES_KEY = (RESOURCE_NAMES_FIELD << 3) | 2;
/** Below this many bytes of names, a plain decode is cheaper than the bookkeeping. */
export const RAW_NAMES_THRESHOLD = 1024;

/** A list of names as a client encodes it (its resource_names fields, back to back). */
export interface KnownNames {
  /** The encoded fields (a private copy: never a view into a request). */
  readonly bytes: Buffer;
  readonly fingerprint: string;
  readonly count: number;
}

export interface RawNames {
  fingerprint: string;
  decode: () => string[];
  count: number;
  bytes: number;
  /** The names' fields when they are one contiguous run (a view into the request). */
  run?: Buffer;
  /** The known list these names equal byte for byte, when one was given and matched. */
  known?: KnownNames;
}

export interface SotwRequest extends DiscoveryRequest {
  /** Present when the names were left encoded: their fingerprint and a way to decode them. */
  rawNames?: RawNames;
}

/**
 * A large SotW request as received: decoded by the stream that got it, which knows the name
 * lists it holds (see decodeSotwRequest's `known`).
 */
export class EncodedSotwRequest {
  constructor(readonly encoded: Buffer | ChunkedMessage) {}
  decode(known: readonly KnownNames[] = []): SotwRequest {
    const e = this.encoded;
    if (!(e instanceof ChunkedMessage)) return decodeSotwRequest(e, known);
    return (e.chunks.length > 1 ? decodeChunkedKnownNames(e, known) : undefined) ?? decodeSotwRequest(e.joined(), known);
  }
}

/**
 * The gRPC deserializer of SotW requests: small ones decoded at once, large ones left to the
 * stream (also as received chunks: grpc-framing.ts, installChunkedReceive).
 */
export const receiveSotwRequest = acceptChunks((input: Buffer | ChunkedMessage): SotwRequest | EncodedSotwRequest => {
  if (input.length >= RAW_NAMES_THRESHOLD) return new EncodedSotwRequest(input);
  return DiscoveryRequest.decode(input instanceof ChunkedMessage ? input.joined() : input);
});

/** The request itself, decoded when it was left encoded. */
export function sotwRequestOf(input: SotwRequest | EncodedSotwRequest, known: readonly KnownNames[] = []): SotwRequest {
  return input instanceof EncodedSotwRequest ? input.decode(known) : input;
}

/** A private copy of a contiguous names run, to compare later requests with. */
export function knownNames(raw: RawNames): KnownNames | undefined {
  if (!raw.run) return undefined;
  return { bytes: Buffer.from(raw.run), fingerprint: raw.fingerprint, count: raw.count };
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

/** Of `known`, the list whose bytes start at `start` and end where the names end. */
function matchKnown(bytes: Buffer, start: number, known: readonly KnownNames[]): KnownNames | undefined {
  for (const k of known) {
    const end = start + k.bytes.length;
    if (end > bytes.length) continue;
    // The next field must not be one more name (the request's list would be longer).
    if (end < bytes.length && bytes[end] === RESOURCE_NAMES_KEY) continue;
    if (bytes.compare(k.bytes, 0, k.bytes.length, start, end) === 0) return k;
  }
  return undefined;
}

/**
 * Decodes a SotW request leaving large resource_names encoded. `known`: name lists the caller
 * holds; when the request's names are one of them (same bytes), nothing is scanned or hashed.
 */
export function decodeSotwRequest(bytes: Buffer, known: readonly KnownNames[] = []): SotwRequest {
  if (bytes.length < RAW_NAMES_THRESHOLD) return DiscoveryRequest.decode(bytes);
  // One pass: the byte ranges of the names (usually one contiguous run) and of the rest.
  const names: Range[] = [];
  const others: Range[] = [];
  let namesBytes = 0;
  let count = 0;
  let matched: KnownNames | undefined;
  try {
    for (let pos = 0; pos < bytes.length; ) {
      if (matched === undefined && names.length === 0 && known.length > 0 && bytes[pos] === RESOURCE_NAMES_KEY) {
        const k = matchKnown(bytes, pos, known);
        if (k) {
          matched = k;
          names.push([pos, pos + k.bytes.length]);
          namesBytes = k.bytes.length;
          count = k.count;
          pos += k.bytes.length;
          continue;
        }
      }
      const { field, wire, end } = fieldEnd(bytes, pos);
      if (field === RESOURCE_NAMES_FIELD && wire === 2) {
        // More names after a matched list: not that list after all; scan it all.
        if (matched) return decodeSotwRequest(bytes);
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
  const rest = others.length === 0 ? Buffer.alloc(0) : others.length === 1 ? bytes.subarray(others[0]![0], others[0]![1]) : Buffer.concat(others.map(([s, e]) => bytes.subarray(s, e)));
  const req: SotwRequest = DiscoveryRequest.decode(rest);
  const run = names.length === 1 ? bytes.subarray(names[0]![0], names[0]![1]) : undefined;
  if (matched) {
    const k = matched;
    req.rawNames = { fingerprint: k.fingerprint, decode: () => decodeNames(k.bytes, [[0, k.bytes.length]]), count, bytes: namesBytes, run, known: k };
    return req;
  }
  const h = createHash("sha1");
  for (const [s, e] of names) h.update(bytes.subarray(s, e));
  // `bytes` counts each name's field key and length too: an upper bound of the names' bytes.
  req.rawNames = { fingerprint: h.digest("base64"), decode: () => decodeNames(bytes, names), count, bytes: namesBytes, run };
  return req;
}

/** Byte access to a message held in chunks (offsets are the message's). */
class ChunkReader {
  private readonly starts: number[] = [];

  constructor(private readonly msg: ChunkedMessage) {
    let at = 0;
    for (const c of msg.chunks) {
      this.starts.push(at);
      at += c.length;
    }
  }

  /** The index of the chunk holding offset `pos` (< length). */
  private chunkAt(pos: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  byte(pos: number): number {
    if (pos >= this.msg.length) throw new RangeError("truncated field");
    const i = this.chunkAt(pos);
    return this.msg.chunks[i]![pos - this.starts[i]!]!;
  }

  private varint(pos: number): [value: number, next: number] {
    let value = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte(pos++);
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return [value, pos];
      shift += 7;
      if (shift > 63) throw new RangeError("varint too long");
    }
  }

  /** Field number and end of the field whose key is at `pos`; throws on malformed input. */
  field(pos: number): { field: number; end: number } {
    const [key, afterKey] = this.varint(pos);
    const wire = key & 7;
    let end: number;
    if (wire === 0) end = this.varint(afterKey)[1];
    else if (wire === 1) end = afterKey + 8;
    else if (wire === 5) end = afterKey + 4;
    else if (wire === 2) {
      const [len, afterLen] = this.varint(afterKey);
      end = afterLen + len;
    } else throw new RangeError(`unsupported wire type ${wire}`);
    if (end > this.msg.length) throw new RangeError("truncated field");
    return { field: Math.floor(key / 8), end };
  }

  /** Whether the message's bytes from `pos` equal `bytes`. */
  equals(pos: number, bytes: Buffer): boolean {
    if (pos + bytes.length > this.msg.length) return false;
    let i = this.chunkAt(pos);
    let off = pos - this.starts[i]!;
    let done = 0;
    while (done < bytes.length) {
      const c = this.msg.chunks[i]!;
      const n = Math.min(c.length - off, bytes.length - done);
      if (c.compare(bytes, done, done + n, off, off + n) !== 0) return false;
      done += n;
      i++;
      off = 0;
    }
    return true;
  }

  /** A copy of the bytes in `ranges` (each [start, end)), back to back. */
  copy(ranges: readonly Range[]): Buffer {
    const out = Buffer.allocUnsafe(ranges.reduce((n, [s, e]) => n + e - s, 0));
    let w = 0;
    for (const [start, end] of ranges) {
      if (start === end) continue;
      let i = this.chunkAt(start);
      let off = start - this.starts[i]!;
      for (let left = end - start; left > 0; i++, off = 0) {
        const c = this.msg.chunks[i]!;
        const n = Math.min(c.length - off, left);
        w += c.copy(out, w, off, off + n);
        left -= n;
      }
    }
    return out;
  }
}

/**
 * decodeSotwRequest's common case on a chunked request: its names are one run equal to a
 * known list. Only the fields before and after the run are walked and copied; the run is
 * compared chunk by chunk. Undefined when that is not the case (the caller joins the chunks).
 */
function decodeChunkedKnownNames(msg: ChunkedMessage, known: readonly KnownNames[]): SotwRequest | undefined {
  if (known.length === 0) return undefined;
  const r = new ChunkReader(msg);
  try {
    let start = 0;
    while (start < msg.length && r.byte(start) !== RESOURCE_NAMES_KEY) start = r.field(start).end;
    if (start >= msg.length) return undefined;
    const k = known.find((k) => r.equals(start, k.bytes) && (start + k.bytes.length === msg.length || r.byte(start + k.bytes.length) !== RESOURCE_NAMES_KEY));
    if (!k || k.bytes.length < RAW_NAMES_THRESHOLD) return undefined;
    const after = start + k.bytes.length;
    for (let pos = after; pos < msg.length; ) {
      const { field, end } = r.field(pos);
      if (field === RESOURCE_NAMES_FIELD) return undefined; // more names elsewhere: not that list
      pos = end;
    }
    const req: SotwRequest = DiscoveryRequest.decode(r.copy([[0, start], [after, msg.length]]));
    req.rawNames = { fingerprint: k.fingerprint, decode: () => decodeNames(k.bytes, [[0, k.bytes.length]]), count: k.count, bytes: k.bytes.length, known: k };
    return req;
  } catch {
    return undefined; // the joined request's decoder reports what is wrong
  }
}
