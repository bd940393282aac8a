// Response frames shared between streams: the same resources at the same version are the
// same bytes for every proxy that gets them, nonce included.
//
// A nonce only has to be unique within one stream (it pairs a response with its ACK), so a
// shared response carries one nonce of its own, drawn from a namespace per-stream nonces never
// use ("_" prefix). A stream sends at most one response per type at a time and never re-sends a
// NACKed one, so even the same shared frame sent twice to one stream is answered unambiguously.
// Before, each stream appended its own nonce: one copy of the whole response per stream (a
// 423 KB route configuration to 2000 proxies was 847 MB of copies).
//
// The frames belong to a SharedFrames object, owned by the xDS server (created and dropped with
// it; DESIGN.md rule 8): two servers, or two tests, never see each other's frames.

import { PreframedMessage, preframe } from "./grpc-framing.js";

/** An encoded response and the nonce it carries. */
export interface Frame {
  /** The encoded response message (for a message in pieces, joined on first use: see PreframedMessage). */
  readonly bytes: Buffer;
  /** Bytes of the message. */
  readonly size: number;
  readonly nonce: string;
  /** The same message framed for gRPC once (see grpc-framing.ts), when the server sends such. */
  readonly preframed?: PreframedMessage;
}

/** Bytes of shared frames kept for reuse by default (plus the newest frame). */
export const DEFAULT_RETAINED_FRAME_BYTES = 64 * 1024 * 1024;

/** Bytes of shared response segments (parts of responses: see `segment`) kept by default. */
export const DEFAULT_RETAINED_SEGMENT_BYTES = 16 * 1024 * 1024;

export interface SharedFramesOptions {
  /** Frame shared responses for gRPC once (only when grpc-js sends PreframedMessages: installPreframing()). */
  preframe?: boolean;
  /** Bytes of frames kept for reuse (DEFAULT_RETAINED_FRAME_BYTES). */
  retainedBytes?: number;
  /** Bytes of segments kept for reuse (DEFAULT_RETAINED_SEGMENT_BYTES). */
  retainedSegmentBytes?: number;
}

/**
 * Shared frames, keyed weakly by what was sent (a resource, a whole type's map, a shared
 * subscription: objects that are never modified once built) and then by variant (type,
 * version, ...). Only the most recent frames, up to `retainedBytes`, are kept: a frame is reused
 * by the streams that send it in the same burst, and a frame whose key belongs to one proxy
 * class alone (e.g. its whole CDS) does not stay in memory for as long as its snapshot lives
 * (2000 classes x 1 MB of clusters was 2 GB).
 */
export class SharedFrames {
  private readonly frames = new WeakMap<object, Map<string, Frame>>();
  /** Frames keyed by content (see `frame`): "<content key>\u0000<variant>". */
  private readonly byContent = new Map<string, Frame>();
  private readonly retained: { key: WeakRef<object> | string; variant: string; bytes: number }[] = [];
  private retainedTotal = 0;
  private nonces = 0;
  private readonly preframing: boolean;
  private readonly limit: number;
  /** Segments by content key, least recently used first (Map iteration follows insertion order). */
  private readonly segments = new Map<string, Buffer>();
  private segmentTotal = 0;
  private readonly segmentLimit: number;

  constructor(opts: SharedFramesOptions = {}) {
    this.preframing = opts.preframe ?? false;
    this.limit = opts.retainedBytes ?? DEFAULT_RETAINED_FRAME_BYTES;
    this.segmentLimit = opts.retainedSegmentBytes ?? DEFAULT_RETAINED_SEGMENT_BYTES;
  }

  /**
   * A segment of responses (bytes that several different responses contain, e.g. the encoded
   * resources of a part shared by many proxy classes' snapshots), by a key naming its content
   * (e.g. type and content-hash version): encoded once while it is among the most recently
   * used `retainedSegmentBytes` (plus the newest one).
   */
  segment(contentKey: string, encode: () => Buffer): Buffer {
    let seg = this.segments.get(contentKey);
    if (seg) {
      // Most recently used last.
      this.segments.delete(contentKey);
      this.segments.set(contentKey, seg);
      return seg;
    }
    seg = encode();
    this.segments.set(contentKey, seg);
    this.segmentTotal += seg.length;
    for (const [key, old] of this.segments) {
      if (this.segmentTotal <= this.segmentLimit || this.segments.size <= 1) break;
      this.segments.delete(key);
      this.segmentTotal -= old.length;
    }
    return seg;
  }

  /** Bytes of segments kept for reuse (bounded by `retainedSegmentBytes` plus the newest segment). */
  get retainedSegmentBytes(): number {
    return this.segmentTotal;
  }

  /**
   * The frame for `key` (the resources sent) and `variant` (type, version, ...): encoded once with
   * a shared nonce. Without a key, encoded with the stream's own `nonce`. `encode` may return the
   * message already framed for gRPC (then no copy is made to frame it).
   *
   * A string key says the variant itself names the content (e.g. a whole type at a content-hash
   * version): streams of different proxy classes whose maps are different objects with equal
   * content then share one frame (at 2000 classes, 101 distinct listener sets and 1000 distinct
   * cluster sets were encoded 2000 times each).
   */
  frame(key: object | string | undefined, variant: string, nonce: string, encode: (nonce: string) => Buffer | PreframedMessage): Frame {
    if (!key) return this.toFrame(encode(nonce), nonce);
    if (typeof key === "string") {
      const contentKey = `${key}\u0000${variant}`;
      let frame = this.byContent.get(contentKey);
      if (!frame) {
        frame = this.encodeShared(encode);
        this.byContent.set(contentKey, frame);
        this.retain(contentKey, variant, frame);
      }
      return frame;
    }
    let byVariant = this.frames.get(key);
    if (!byVariant) this.frames.set(key, (byVariant = new Map()));
    let frame = byVariant.get(variant);
    if (!frame) {
      frame = this.encodeShared(encode);
      byVariant.set(variant, frame);
      this.retain(key, variant, frame);
    }
    return frame;
  }

  private encodeShared(encode: (nonce: string) => Buffer | PreframedMessage): Frame {
    const shared = `_${(++this.nonces).toString(36)}`;
    const encoded = encode(shared);
    // Framed for gRPC once here, not by grpc-js once per stream (see grpc-framing.ts).
    return this.toFrame(encoded instanceof PreframedMessage || !this.preframing ? encoded : preframe(encoded), shared);
  }

  private toFrame(encoded: Buffer | PreframedMessage, nonce: string): Frame {
    if (!(encoded instanceof PreframedMessage)) return { bytes: encoded, size: encoded.length, nonce };
    if (!this.preframing) return { bytes: encoded.message, size: encoded.size, nonce };
    // A message in pieces is joined only if someone reads `bytes` (tests, debugging).
    return { get bytes() { return encoded.message; }, size: encoded.size, nonce, preframed: encoded };
  }

  /** Bytes of shared frames kept for reuse (bounded by `retainedBytes` plus the newest frame). */
  get retainedBytes(): number {
    return this.retainedTotal;
  }

  private retain(key: object | string, variant: string, frame: Frame): void {
    this.retained.push({ key: typeof key === "string" ? key : new WeakRef(key), variant, bytes: frame.size });
    this.retainedTotal += frame.size;
    while (this.retainedTotal > this.limit && this.retained.length > 1) {
      const old = this.retained.shift()!;
      this.retainedTotal -= old.bytes;
      if (typeof old.key === "string") {
        this.byContent.delete(old.key);
        continue;
      }
      const k = old.key.deref();
      if (k) this.frames.get(k)?.delete(old.variant);
    }
  }
}
