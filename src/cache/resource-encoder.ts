// Encodes resources for ResourceSets, remembering what it encoded: a message object shared by
// several sets (the same cluster in every namespace's outbound part) is encoded once, and
// equal bodies built in one generation share one Buffer. The memory belongs to the encoder's
// owner — the mesh controller, or one ResourceSet.build call — and is dropped with it
// (DESIGN.md rule 8); before, the encodings were a module-level WeakMap shared by everyone.
//
// Remembering an encoding by message object is a memo of a pure function, not change
// detection: it is correct because translator output is never modified once built (golden and
// translator tests deep-freeze it, so a late mutation throws).
import { createHash } from "node:crypto";
import type { XdsResourceTypes, XdsTypeUrl } from "../envoy/type-urls.js";
import { runToEnd, type Steps } from "../work/work-steps.js";
import { RouteConfigurationEncoder } from "./route-configuration-encoder.js";
import type { CachedResource } from "./snapshot.js";
import { VirtualHostResources } from "./virtual-host-discovery.js";

/** A short content hash (versions come from content: house rule 4). */
export function contentHash(parts: readonly (string | Buffer)[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("base64url").slice(0, 16);
}

/** Bytes hashed between two steps. */
const HASH_BYTES_PER_STEP = 1 << 20;

/** The hash of one body, in steps of HASH_BYTES_PER_STEP (a route configuration of thousands of virtual hosts is 10+ MB). */
export function* contentHashSteps(body: Buffer): Steps<string> {
  if (body.length <= HASH_BYTES_PER_STEP) return contentHash([body]);
  const h = createHash("sha256");
  for (let at = 0; at < body.length; at += HASH_BYTES_PER_STEP) {
    h.update(body.subarray(at, at + HASH_BYTES_PER_STEP));
    yield;
  }
  return h.digest("base64url").slice(0, 16);
}

/**
 * Encodes one resource (the default: its codec; a caller may splice cached pieces,
 * byte-identically). A large message may be encoded in steps (a generator of the bytes), so
 * time-sliced callers give the event loop back meanwhile.
 */
export type MessageEncoder = <U extends XdsTypeUrl>(typeUrl: U, message: XdsResourceTypes[U]) => Buffer | Steps<Buffer>;

export class ResourceEncoder {
  /** Encodings by message object (weak: they go with the messages). */
  private readonly byMessage = new WeakMap<object, CachedResource>();
  /** Route configurations from per-virtual-host frames (reused virtual hosts are not encoded again). */
  private readonly routes = new RouteConfigurationEncoder();
  /** Virtual hosts renamed for VHDS (one message per virtual host and route configuration, so encodings are reused). */
  readonly virtualHosts = new VirtualHostResources();
  /** Equal bodies share one Buffer (key: type, name, version), until `forgetInterned`. */
  private interned = new Map<string, CachedResource>();

  /** The encoded resource for a message (encoded once per message object). */
  encoded<U extends XdsTypeUrl>(typeUrl: U, name: string, message: XdsResourceTypes[U]): CachedResource {
    return this.byMessage.get(message) ?? runToEnd(this.encodedSteps(typeUrl, name, message));
  }

  /** encoded, in steps (a large route configuration is encoded and hashed a piece at a time). */
  *encodedSteps<U extends XdsTypeUrl>(typeUrl: U, name: string, message: XdsResourceTypes[U]): Steps<CachedResource> {
    let cached = this.byMessage.get(message);
    if (cached) return cached;
    const encoded = this.routes.encode(typeUrl, message);
    const body = Buffer.isBuffer(encoded) ? encoded : yield* encoded;
    const version = yield* contentHashSteps(body);
    const key = `${typeUrl}\u0000${name}\u0000${version}`;
    cached = this.interned.get(key);
    if (!cached) this.interned.set(key, (cached = { name, version, body }));
    this.byMessage.set(message, cached);
    return cached;
  }

  /** Bodies interned now. */
  get internedBodies(): number {
    return this.interned.size;
  }

  /** Starts interning afresh (a new model: bodies of the old one are not looked for again). */
  forgetInterned(): void {
    this.interned = new Map();
  }

  /** Keeps only the interned bodies `live` holds (the others belong to parts that are gone). */
  keepInterned(live: ReadonlySet<CachedResource>): void {
    for (const [k, r] of [...this.interned]) if (!live.has(r)) this.interned.delete(k);
  }
}
