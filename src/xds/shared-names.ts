// Equal subscriptions share one immutable Set of names. Every sidecar of a namespace
// subscribes to the same few thousand EDS names; one Set per stream (and one string per name
// per stream, decoded from each request) was a large part of the memory per connected proxy.
// Sets are held weakly: one disappears when no stream uses it any more.
import { createHash } from "node:crypto";

/** Smaller sets are not worth the lookup. */
const SHARE_THRESHOLD = 32;

const pool = new Map<string, WeakRef<ReadonlySet<string>>>();
const finalizer = new FinalizationRegistry<string>((key) => {
  if (pool.get(key)?.deref() === undefined) pool.delete(key);
});

function shared(key: string, make: () => ReadonlySet<string>): ReadonlySet<string> {
  const found = pool.get(key)?.deref();
  if (found) return found;
  const set = make();
  pool.set(key, new WeakRef(set));
  finalizer.register(set, key);
  return set;
}

/**
 * The shared Set for names whose encoding has this fingerprint (SotW resource_names bytes,
 * see sotw/request-names.ts); `decode` runs only when no stream holds that set yet.
 */
export function namesByFingerprint(fingerprint: string, decode: () => string[]): ReadonlySet<string> {
  return shared(`raw:${fingerprint}`, () => new Set(decode()));
}

/** A set equal to `names` (same names in the same order), shared with others equal to it. */
export function sharedNames(names: ReadonlySet<string>): ReadonlySet<string> {
  if (names.size < SHARE_THRESHOLD) return names;
  // One native call: hashing name by name cost more in call overhead than in hashing.
  const key = createHash("sha1").update([...names].join("\u0000")).digest("base64");
  return shared(`set:${key}`, () => names);
}

/** How many distinct shared sets are alive (for tests and metrics). */
export function sharedNameSets(): number {
  let n = 0;
  for (const ref of pool.values()) if (ref.deref()) n++;
  return n;
}

/** Total UTF-8 bytes of some names. */
export function utf8Bytes(names: Iterable<string>): number {
  let n = 0;
  for (const name of names) n += Buffer.byteLength(name, "utf8");
  return n;
}
