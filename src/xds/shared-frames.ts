// Response frames shared between streams: the same resources at the same version are the
// same bytes for every proxy that gets them, nonce included.
//
// A nonce only has to be unique within one stream (it pairs a response with its ACK), so a
// shared response carries one nonce of its own, drawn from a namespace per-stream nonces never
// use ("_" prefix). A stream sends at most one response per type at a time and never re-sends a
// NACKed one, so even the same shared frame sent twice to one stream is answered unambiguously.
// Before, each stream appended its own nonce: one copy of the whole response per stream (a
// 423 KB route configuration to 2000 proxies was 847 MB of copies).

import { framed } from "./grpc-framing.js";

/** An encoded response and the nonce it carries. */
export interface Frame {
  readonly bytes: Buffer;
  readonly nonce: string;
}

/**
 * Shared frames, keyed weakly by what was sent (a resource, a whole type's map, a shared
 * subscription) and then by variant (type, version, ...). Only the most recent frames, up to
 * RETAINED_BYTES, are kept: a frame is reused by the streams that send it in the same burst,
 * and a frame whose key belongs to one proxy class alone (e.g. its whole CDS) does not stay
 * in memory for as long as its snapshot lives (2000 classes x 1 MB of clusters was 2 GB).
 */
const sharedFrames = new WeakMap<object, Map<string, Frame>>();
const RETAINED_BYTES = 64 * 1024 * 1024;
const retained: { key: WeakRef<object>; variant: string; bytes: number }[] = [];
let retainedBytes = 0;
let sharedNonces = 0;

function retain(key: object, variant: string, frame: Frame): void {
  retained.push({ key: new WeakRef(key), variant, bytes: frame.bytes.length });
  retainedBytes += frame.bytes.length;
  while (retainedBytes > RETAINED_BYTES && retained.length > 1) {
    const old = retained.shift()!;
    retainedBytes -= old.bytes;
    const k = old.key.deref();
    if (k) sharedFrames.get(k)?.delete(old.variant);
  }
}

/**
 * The frame for `key` (the resources sent) and `variant` (type, version, ...): encoded once with
 * a shared nonce. Without a key, encoded with the stream's own `nonce`.
 */
export function sharedFrame(key: object | undefined, variant: string, nonce: string, encode: (nonce: string) => Buffer): Frame {
  if (!key) return { bytes: encode(nonce), nonce };
  let byVariant = sharedFrames.get(key);
  if (!byVariant) sharedFrames.set(key, (byVariant = new Map()));
  let frame = byVariant.get(variant);
  if (!frame) {
    const shared = `_${(++sharedNonces).toString(36)}`;
    // Framed for gRPC once here, not by grpc-js once per stream (see grpc-framing.ts).
    frame = { bytes: framed(encode(shared)), nonce: shared };
    byVariant.set(variant, frame);
    retain(key, variant, frame);
  }
  return frame;
}

/** Bytes of shared frames kept for reuse (bounded by RETAINED_BYTES plus the newest frame). */
export function retainedFrameBytes(): number {
  return retainedBytes;
}
