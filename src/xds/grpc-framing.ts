// gRPC message framing done once per shared response instead of once per stream.
//
// grpc-js frames every message it sends (1 byte flags + 4 bytes length + the message) by
// allocating a new Buffer and copying the message into it. For a response shared by thousands
// of streams (a 423 KB route configuration to 2000 proxies) that copy was 40% of the server's
// CPU while pushing (profile: Buffer copy 18.7%, allocation 7.8%, plus the GC it causes). So a
// shared frame is framed once (`preframe`) and grpc-js is taught to send a PreframedMessage
// as it is.
//
// This reaches into grpc-js (BaseServerInterceptingCall.prototype.serializeMessage of the
// exactly pinned 1.14.7; DESIGN.md rule 5): feature-detected (nothing is patched when it is not
// there, and messages are framed by grpc-js as usual), switchable (WEFT_GRPC_PREFRAMING=0, or
// XdsServerOptions.preframing), and guarded by grpc-framing.test.ts, which sends a
// PreframedMessage through a real grpc-js server and fails on an upgrade that changes this.
// No state: the patch recognises a PreframedMessage by a brand; nothing is remembered.
import { createRequire } from "node:module";

/**
 * Brands PreframedMessages (a registered symbol, not `instanceof`: a test runner may load this
 * module more than once while grpc-js, patched once, is shared).
 */
const PREFRAMED = Symbol.for("weft.preframed-message");
/** Marks the patched function, so installing twice patches once. */
const PATCHED = Symbol.for("weft.grpc-preframing");

/** gRPC's message header: 1 byte flags (compressed or not), 4 bytes message length (big-endian). */
export const GRPC_FRAME_HEADER_BYTES = 5;

/**
 * A message already framed for gRPC (header + message): grpc-js writes `framed` as it is.
 *
 * It may come in pieces (`more`): the header and the first bytes, then the rest, written as
 * consecutive writes of the stream (see `pieces`). The gRPC header says how long the message is,
 * and HTTP/2 carries a stream's bytes in order, so the client reads one message. This lets a
 * response share large encoded parts with other responses (e.g. the 3300 outbound clusters of a
 * namespace in 200 different CDS responses) instead of copying them into a new frame each time.
 */
export class PreframedMessage {
  readonly [PREFRAMED] = true;
  private joined?: Buffer;

  constructor(
    /** The 5-byte gRPC header followed by the message (or its first bytes, see `more`). */
    readonly framed: Buffer,
    /** The rest of the message, in order, when it comes in pieces. */
    readonly more: readonly Buffer[] = [],
  ) {}

  /** Bytes of the message (without the header). */
  get size(): number {
    let n = this.framed.length - GRPC_FRAME_HEADER_BYTES;
    for (const b of this.more) n += b.length;
    return n;
  }

  /** The message bytes: a view of `framed` (no copy), or, in pieces, one copy made on first use. */
  get message(): Buffer {
    if (this.more.length === 0) return this.framed.subarray(GRPC_FRAME_HEADER_BYTES);
    return (this.joined ??= Buffer.concat([this.framed.subarray(GRPC_FRAME_HEADER_BYTES), ...this.more]));
  }

  /** What to hand grpc-js, write after write (each written as it is): the message's pieces. */
  get pieces(): readonly PreframedMessage[] {
    return this.more.length === 0 ? [this] : [new PreframedMessage(this.framed), ...this.more.map((b) => new PreframedMessage(b))];
  }
}

type SerializeMessage = ((this: unknown, value: unknown) => Buffer) & { [PATCHED]?: true };

/**
 * Teaches grpc-js to send PreframedMessages as they are (once per process: it patches grpc-js's
 * class). Returns whether grpc-js now does: false when WEFT_GRPC_PREFRAMING=0 or when the
 * installed grpc-js lacks the hook (then do not hand it PreframedMessages).
 */
export function installPreframing(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.WEFT_GRPC_PREFRAMING === "0") return false; // for A/B measurements
  try {
    const require = createRequire(import.meta.url);
    const mod = require("@grpc/grpc-js/build/src/server-interceptors.js") as { BaseServerInterceptingCall?: { prototype: Record<string, unknown> } };
    const proto = mod.BaseServerInterceptingCall?.prototype;
    const original = proto?.serializeMessage as SerializeMessage | undefined;
    if (!proto || typeof original !== "function") return false;
    if (original[PATCHED]) return true;
    const patched: SerializeMessage = function (this: unknown, value: unknown): Buffer {
      const branded = value as { [PREFRAMED]?: unknown; framed?: unknown } | null;
      if (typeof branded === "object" && branded !== null && branded[PREFRAMED] === true && Buffer.isBuffer(branded.framed)) return branded.framed;
      return original.call(this, value);
    };
    patched[PATCHED] = true;
    proto.serializeMessage = patched;
    return true;
  } catch {
    return false;
  }
}

/** Frames a message for gRPC (one allocation and copy, done once for every stream that sends it). */
export function preframe(message: Buffer): PreframedMessage {
  const out = Buffer.allocUnsafe(message.length + GRPC_FRAME_HEADER_BYTES);
  out.writeUInt8(0, 0); // not compressed
  out.writeUInt32BE(message.length, 1);
  message.copy(out, GRPC_FRAME_HEADER_BYTES);
  return new PreframedMessage(out);
}
