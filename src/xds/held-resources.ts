// What a proxy holds of one resource type, as far as its stream knows, in O(1) memory when
// the proxy is up to date.
//
// Keeping a name -> version map per stream cost O(resources) per proxy: with Istio's load
// shape (3300 clusters and 3300 endpoints per sidecar) that was ~450 KB per connected proxy,
// most of the control plane's memory at 2000 proxies. Almost always a proxy holds exactly
// what some TypeResources map holds, restricted to the names it subscribed to; so the state is
// that map (shared by every stream up to date with it), the subscription(s) that filter it,
// and a small map of exceptions since.
import type { CachedResource } from "../cache/snapshot.js";

/** Every name (a wildcard subscription). */
export const ALL_NAMES = "*";
/** Names matched by a rule rather than listed (VHDS: every name under a subscribed route configuration). */
export interface NameMatcher {
  has(name: string): boolean;
}
export type NameFilter = ReadonlySet<string> | NameMatcher | typeof ALL_NAMES;

export class HeldResources {
  /** The map the proxy was brought up to date with (read only; usually a snapshot's own). */
  private base?: ReadonlyMap<string, CachedResource>;
  /** TypeResources.version of `base` when it is a whole type's map (a content hash). */
  private baseVersion?: string;
  /** A name of `base` is held only if every filter has it (the subscriptions since). */
  private filters: NameFilter[] = [];
  /** Exceptions since: the version held, or null when not held. */
  private readonly overrides = new Map<string, string | null>();

  /** The version of `name` the proxy holds, if it holds it. */
  version(name: string): string | undefined {
    if (this.overrides.size > 0) {
      const o = this.overrides.get(name);
      if (o !== undefined) return o ?? undefined;
    }
    if (!this.base || !this.filtersHave(name)) return undefined;
    return this.base.get(name)?.version;
  }

  /** The resource held, when it is known from the map the proxy was brought up to date with. */
  resource(name: string): CachedResource | undefined {
    if (this.overrides.has(name) || !this.base || !this.filtersHave(name)) return undefined;
    return this.base.get(name);
  }

  /** Whether every filter has `name` (a loop, not `every` with a closure: called per name per push). */
  private filtersHave(name: string): boolean {
    for (const f of this.filters) if (f !== ALL_NAMES && !f.has(name)) return false;
    return true;
  }

  has(name: string): boolean {
    return this.version(name) !== undefined;
  }

  set(name: string, version: string): void {
    this.overrides.set(name, version);
  }

  delete(name: string): void {
    if (this.base?.has(name)) this.overrides.set(name, null);
    else this.overrides.delete(name);
  }

  /**
   * The proxy now holds exactly `resources` restricted to `names`. `version`: the
   * TypeResources.version of `resources` when they are a whole type's map.
   */
  rebase(resources: ReadonlyMap<string, CachedResource>, names: NameFilter, version?: string): void {
    this.base = resources;
    this.baseVersion = version;
    this.filters = [names];
    this.overrides.clear();
  }

  /** The proxy dropped every name not in `names` (it unsubscribed from them). */
  keepOnly(names: ReadonlySet<string> | NameMatcher): void {
    if (this.base) this.filters.push(names);
    for (const [name, v] of this.overrides) if (v !== null && !names.has(name)) this.overrides.delete(name);
  }

  /**
   * True when the proxy is known, without comparing, to hold exactly the whole type at this
   * version (TypeResources.version: equal versions mean equal content, whichever map carries
   * it). False means "not known": the caller compares.
   */
  isExactly(version: string | undefined): boolean {
    return version !== undefined && this.baseVersion === version && this.overrides.size === 0 && this.filters.length === 1 && this.filters[0] === ALL_NAMES;
  }

  /** Whether anything was ever recorded (a first response has been sent or claimed). */
  get empty(): boolean {
    return !this.base && this.overrides.size === 0;
  }

  /** The names held. */
  *names(): Generator<string> {
    for (const [name, v] of this.overrides) if (v !== null) yield name;
    if (!this.base) return;
    const filters = this.filters.filter((f) => f !== ALL_NAMES) as (ReadonlySet<string> | NameMatcher)[];
    // Iterate the smaller of the base and the first subscription (when it lists names).
    const first = filters[0];
    const candidates: Iterable<string> = first instanceof Set && first.size < this.base.size ? (first as ReadonlySet<string>) : this.base.keys();
    for (const name of candidates) {
      if (this.overrides.has(name) || !this.base.has(name)) continue;
      if (filters.every((f) => f.has(name))) yield name;
    }
  }

  get size(): number {
    if (this.base && this.overrides.size === 0 && this.filters.every((f) => f === ALL_NAMES)) return this.base.size;
    let n = 0;
    for (const _ of this.names()) n++;
    return n;
  }
}
