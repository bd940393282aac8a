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
import { status as GrpcStatus } from "@grpc/grpc-js";

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

/**
 * A received message left in the pieces it arrived in (views of the HTTP/2 DATA chunks, without
 * the gRPC header): what a deserializer that accepts chunks (`acceptChunks`) gets for a large
 * uncompressed request instead of one Buffer grpc-js would have concatenated.
 *
 * Why: every SotW EDS ACK repeats all the names the proxy subscribes to (~230 KB for 3300
 * clusters), so one endpoint change at 2000 proxies is ~460 MB of requests. grpc-js copied each
 * into a fresh Buffer (`Buffer.concat` of ~15 DATA frames: 17 % of the server's busy time on
 * ACK intake, and most of what its GC then collected: bench/results/sotw-endpoint-2000.md),
 * only for the stream to compare the names with the list it holds. In chunks, that comparison
 * runs over the received views and nothing large is allocated.
 */
export class ChunkedMessage {
  private joinedCopy?: Buffer;

  constructor(
    /** The message's bytes in order (views; at least one). */
    readonly chunks: readonly Buffer[],
    readonly length: number,
  ) {}

  /** The message as one Buffer (a copy made on first use, unless it is one chunk). */
  joined(): Buffer {
    if (this.chunks.length === 1) return this.chunks[0]!;
    return (this.joinedCopy ??= Buffer.concat(this.chunks as Buffer[], this.length));
  }
}

/** Marks a deserializer that takes a ChunkedMessage as well as a Buffer. */
const ACCEPTS_CHUNKS = Symbol.for("weft.accepts-chunked-messages");
const PATCHED_RECEIVE = Symbol.for("weft.grpc-chunked-receive");
/** Below this size a message is joined as grpc-js does (one small copy is cheaper than the bookkeeping). */
export const CHUNKED_MESSAGE_MIN_BYTES = 16 * 1024;

/** Declares that `deserialize` takes a ChunkedMessage for a large request (see installChunkedReceive). */
export function acceptChunks<T extends (input: Buffer | ChunkedMessage) => unknown>(deserialize: T): T {
  (deserialize as unknown as Record<symbol, boolean>)[ACCEPTS_CHUNKS] = true;
  return deserialize;
}

/** What a chunk decoder hands on: a framed message for grpc-js's own path, or a chunked one. */
type Decoded = { framed: Buffer } | { chunked: ChunkedMessage };

/**
 * gRPC's length-prefixed messages from a stream's DATA chunks (gRPC over HTTP/2: 1 byte
 * compressed flag, 4 bytes big-endian length, the message). Large uncompressed messages are
 * handed on as their chunks; the rest as framed Buffers, as grpc-js's own decoder does.
 */
export class ChunkDecoder {
  private header = Buffer.alloc(GRPC_FRAME_HEADER_BYTES);
  private headerHave = 0;
  private body: Buffer[] = [];
  private remaining = 0;

  constructor(private readonly maxMessageBytes: number) {}

  /** The messages completed by `data`; throws when one is over the size bound. */
  write(data: Buffer): Decoded[] {
    const out: Decoded[] = [];
    let at = 0;
    while (at < data.length) {
      if (this.headerHave < GRPC_FRAME_HEADER_BYTES) {
        const n = Math.min(GRPC_FRAME_HEADER_BYTES - this.headerHave, data.length - at);
        data.copy(this.header, this.headerHave, at, at + n);
        this.headerHave += n;
        at += n;
        if (this.headerHave < GRPC_FRAME_HEADER_BYTES) break;
        const size = this.header.readUInt32BE(1);
        if (this.maxMessageBytes !== -1 && size > this.maxMessageBytes) throw new Error(`Received message larger than max (${size} vs ${this.maxMessageBytes})`);
        this.remaining = size;
        this.body = [];
        if (size === 0) out.push(this.finish());
        continue;
      }
      const n = Math.min(this.remaining, data.length - at);
      this.body.push(data.subarray(at, at + n));
      this.remaining -= n;
      at += n;
      if (this.remaining === 0) out.push(this.finish());
    }
    return out;
  }

  private finish(): Decoded {
    const size = this.header.readUInt32BE(1);
    const compressed = this.header[0] !== 0;
    const body = this.body;
    this.headerHave = 0;
    this.body = [];
    if (!compressed && size >= CHUNKED_MESSAGE_MIN_BYTES) return { chunked: new ChunkedMessage(body, size) };
    return { framed: Buffer.concat([this.header, ...body], GRPC_FRAME_HEADER_BYTES + size) };
  }
}

/** The members of grpc-js 1.14.7's BaseServerInterceptingCall the receive patch uses. */
interface ServerCallInternals {
  handler?: { deserialize?: ((input: unknown) => unknown) & { [ACCEPTS_CHUNKS]?: boolean } };
  maxReceiveMessageSize: number;
  stream: { pause(): void };
  readQueue: { type: string; compressedMessage: Buffer | null; parsedMessage: unknown }[];
  callEventTracker?: { addMessageReceived(): void } | null;
  checkCancelled(): boolean;
  sendStatus(status: { code: number; details: string }): void;
  decompressAndMaybePush(entry: ServerCallInternals["readQueue"][number]): unknown;
  maybePushNextMessage(): void;
  [PATCHED_RECEIVE]?: ChunkDecoder;
}

/**
 * Teaches grpc-js to hand large uncompressed requests to deserializers marked with
 * `acceptChunks` as ChunkedMessages (once per process: it patches grpc-js's
 * BaseServerInterceptingCall.prototype.handleDataFrame of the pinned 1.14.7). Other handlers,
 * compressed and small messages take grpc-js's own path. Returns whether grpc-js now does:
 * false when WEFT_GRPC_CHUNKED_RECEIVE=0 or when the installed grpc-js lacks what the patch
 * uses (then deserializers get Buffers, as always). Guarded by grpc-framing.test.ts.
 */
export function installChunkedReceive(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.WEFT_GRPC_CHUNKED_RECEIVE === "0") return false; // for A/B measurements
  try {
    const require = createRequire(import.meta.url);
    const mod = require("@grpc/grpc-js/build/src/server-interceptors.js") as { BaseServerInterceptingCall?: { prototype: Record<string, unknown> } };
    const proto = mod.BaseServerInterceptingCall?.prototype;
    const original = proto?.handleDataFrame as ((this: ServerCallInternals, data: Buffer) => void) & { [PATCHED_RECEIVE]?: true };
    if (!proto || typeof original !== "function") return false;
    if (original[PATCHED_RECEIVE]) return true;
    for (const m of ["checkCancelled", "sendStatus", "decompressAndMaybePush", "maybePushNextMessage"]) if (typeof proto[m] !== "function") return false;
    const patched = function (this: ServerCallInternals, data: Buffer): void {
      const deserialize = this.handler?.deserialize;
      if (!deserialize?.[ACCEPTS_CHUNKS] || !Array.isArray(this.readQueue)) return original.call(this, data);
      if (this.checkCancelled()) return;
      const decoder = (this[PATCHED_RECEIVE] ??= new ChunkDecoder(this.maxReceiveMessageSize));
      let messages: Decoded[];
      try {
        messages = decoder.write(data);
      } catch (err) {
        this.sendStatus({ code: GrpcStatus.RESOURCE_EXHAUSTED, details: (err as Error).message });
        return;
      }
      for (const m of messages) {
        this.stream.pause();
        if ("framed" in m) {
          // grpc-js's own path (decompression, deserialization, ordering).
          const entry = { type: "COMPRESSED", compressedMessage: m.framed, parsedMessage: null as unknown };
          this.readQueue.push(entry);
          void this.decompressAndMaybePush(entry);
        } else {
          let parsed: unknown;
          try {
            parsed = deserialize(m.chunked);
          } catch {
            this.sendStatus({ code: GrpcStatus.INTERNAL, details: "Error deserializing request" });
            return;
          }
          // Queued behind any message still being decompressed: delivered in order.
          this.readQueue.push({ type: "READABLE", compressedMessage: null, parsedMessage: parsed });
          this.maybePushNextMessage();
        }
        this.callEventTracker?.addMessageReceived();
      }
    } as typeof original;
    patched[PATCHED_RECEIVE] = true;
    proto.handleDataFrame = patched;
    return true;
  } catch {
    return false;
  }
}
