// Equal subscriptions share one immutable Set of names. Every sidecar of a namespace
// subscribes to the same few thousand EDS names; one Set per stream (and one string per name
// per stream, decoded from each request) was a large part of the memory per connected proxy.
// Sets are held weakly: one disappears when no stream uses it any more.
//
// The pool belongs to a SharedNameSets object, owned by the xDS server (created and dropped with
// it; DESIGN.md rule 8).
import { createHash } from "node:crypto";
import type { CachedResource, TypeResources } from "../cache/snapshot.js";
import type { KnownNames } from "./sotw/request-names.js";

/** A subscription list shared by the streams that send it: its names, and its encoding when known. */
export interface SharedNameList {
  readonly names: ReadonlySet<string>;
  /** The encoded names (one copy for all), to recognise the next request without scanning it. */
  readonly known?: KnownNames;
}

/** Smaller sets are not worth the lookup. */
const SHARE_THRESHOLD = 32;

export class SharedNameSets {
  /** Sets (share) and lists (byFingerprint), held weakly. */
  private readonly pool = new Map<string, WeakRef<object>>();
  private readonly finalizer = new FinalizationRegistry<string>((key) => {
    if (this.pool.get(key)?.deref() === undefined) this.pool.delete(key);
  });

  private shared<T extends object>(key: string, make: () => T): T {
    const found = this.pool.get(key)?.deref() as T | undefined;
    if (found) return found;
    const set = make();
    this.pool.set(key, new WeakRef(set));
    this.finalizer.register(set, key);
    return set;
  }

  /**
   * The shared list for names whose encoding has this fingerprint (SotW resource_names bytes,
   * see sotw/request-names.ts); `decode` and `known` run only when no stream holds that list
   * yet. Holders keep the list object (the pool holds it weakly).
   */
  byFingerprint(fingerprint: string, decode: () => string[], known?: () => KnownNames | undefined): SharedNameList {
    return this.shared(`raw:${fingerprint}`, () => ({ names: new Set(decode()), known: known?.() }));
  }

  /** A set equal to `names` (same names in the same order), shared with others equal to it. */
  share(names: ReadonlySet<string>): ReadonlySet<string> {
    if (names.size < SHARE_THRESHOLD) return names;
    // One native call: hashing name by name cost more in call overhead than in hashing.
    const key = createHash("sha1").update([...names].join("\u0000")).digest("base64");
    return this.shared(`set:${key}`, () => names);
  }

  /** Per shared set (weakly) and type: the resources it names at the type's newest version looked up. */
  private readonly lookups = new WeakMap<ReadonlySet<string>, Map<string, { version: string; list: readonly CachedResource[] }>>();

  /**
   * The resources of `typed` that `names` subscribe to, in the order of `names`. For a set shared
   * by many streams (share, byFingerprint) the lookup is made once per version of the type, not
   * once per stream (3300 EDS names for each of 2000 sidecars). Versions are content hashes, so
   * the list found for a version holds for any TypeResources at that version.
   */
  resolve(names: ReadonlySet<string>, typeUrl: string, typed: TypeResources): readonly CachedResource[] {
    const pooled = names.size >= SHARE_THRESHOLD;
    let byType = pooled ? this.lookups.get(names) : undefined;
    const found = byType?.get(typeUrl);
    if (found && found.version === typed.version) return found.list;
    const list: CachedResource[] = [];
    for (const name of names) {
      const r = typed.resources.get(name);
      if (r) list.push(r);
    }
    if (pooled) {
      if (!byType) this.lookups.set(names, (byType = new Map()));
      byType.set(typeUrl, { version: typed.version, list });
    }
    return list;
  }

  /** How many distinct shared sets are alive (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const ref of this.pool.values()) if (ref.deref()) n++;
    return n;
  }
}

/** Total UTF-8 bytes of some names. */
export function utf8Bytes(names: Iterable<string>): number {
  let n = 0;
  for (const name of names) n += Buffer.byteLength(name, "utf8");
  return n;
}
