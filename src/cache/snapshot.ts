// An immutable, consistent set of xDS resources for one proxy class, encoded once.
// Versions come from content (house rule 4): a resource's version is a hash of its encoded
// bytes; a type's version is a hash of its sorted (name, version) pairs.
//
// A snapshot is composed of parts (ResourceSets). A part is encoded once and shared by the
// snapshots of every proxy class that includes it — e.g. the outbound configuration of a
// namespace, shared by all its sidecars — so memory and encoding grow with the number of
// distinct parts, not with services × proxies.
import { createHash } from "node:crypto";
import { runToEnd, type Steps } from "../work/work-steps.js";
import { ResourceEncoder, contentHash as hash } from "./resource-encoder.js";
import { collectReferencesSteps, type Reference, type SnapshotReferences } from "./references.js";
import { PUSH_ORDER, XDS_TYPES, resourceName, type XdsResourceTypes, type XdsTypeUrl } from "../envoy/type-urls.js";
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import { VHDS_ROUTES, vhdsRouteConfiguration, vhdsVirtualHosts } from "./virtual-host-discovery.js";

/**
 * What a snapshot holds: a type of resources, or VHDS_ROUTES (the route configurations as
 * served to VHDS clients, whose virtual hosts are the VirtualHost type).
 */
export type SnapshotView = XdsTypeUrl | typeof VHDS_ROUTES;
/** Every view, in push order (VHDS_ROUTES last: derived). */
export const SNAPSHOT_VIEWS: readonly SnapshotView[] = [...PUSH_ORDER, VHDS_ROUTES];

export interface CachedResource {
  readonly name: string;
  /** Content hash of `body`. */
  readonly version: string;
  /** The encoded message (the value of the Any that carries it). */
  readonly body: Buffer;
}

export interface TypeResources {
  /** Hash over every resource of this type; changes only when one of them does. */
  readonly version: string;
  readonly resources: ReadonlyMap<string, CachedResource>;
  /**
   * When known, how this differs from the content of an earlier version: only `names` changed
   * or were added, none removed. Lets a stream that was up to date with version `since` look
   * at a handful of names instead of all of them (the EDS fast path). A version, not an object:
   * versions come from content, so equal versions mean equal resources whichever objects
   * carry them (house rule 8: change detection by explicit values, not by identity).
   */
  readonly changes?: { readonly since: string; readonly names: ReadonlySet<string> };
  /**
   * A view merged from parts (Snapshot.compose): the parts' own TypeResources, in the order
   * `resources` iterates them. Lets a response encode each part once for every snapshot that
   * shares it (see encodeWholeTypeResponse).
   */
  readonly parts?: readonly TypeResources[];
}

export type SnapshotInput = { [U in XdsTypeUrl]?: readonly XdsResourceTypes[U][] };

/** Version of a set of resources: stable for the same contents, whatever their order. */
export function versionOf(resources: Iterable<CachedResource>): string {
  const pairs = [...resources].map((r) => `${r.name}\u0000${r.version}\n`).sort();
  return pairs.length === 0 ? "empty" : hash(pairs);
}

/** Resources looked at between two steps. */
const RESOURCES_PER_STEP = 2000;

/**
 * versionOf, in steps, for resources given in name order (as a ResourceSet keeps them): the
 * pairs hashed by versionOf sort as their names do ("\u0000" sorts first), so no sort is needed
 * and the result is the same.
 */
function* versionOfSortedSteps(sorted: Iterable<CachedResource>): Steps<string> {
  const h = createHash("sha256");
  let n = 0;
  for (const r of sorted) {
    h.update(`${r.name}\u0000${r.version}\n`);
    if (++n % RESOURCES_PER_STEP === 0) yield;
  }
  return n === 0 ? "empty" : h.digest("base64url").slice(0, 16);
}

/** The entries sorted by name (left as they are when they already are, as translators mostly give them). */
function* sortedByName(resources: Map<string, CachedResource>): Steps<Map<string, CachedResource>> {
  let previous: string | undefined;
  let n = 0;
  let inOrder = true;
  for (const name of resources.keys()) {
    if (previous !== undefined && !(previous < name)) {
      inOrder = false;
      break;
    }
    previous = name;
    if (++n % RESOURCES_PER_STEP === 0) yield;
  }
  if (inOrder) return resources;
  const entries = [...resources.entries()];
  yield;
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  yield;
  return new Map(entries);
}

const EMPTY: TypeResources = { version: "empty", resources: new Map() };
const REFERENCED_TYPE: Record<keyof SnapshotReferences, XdsTypeUrl> = {
  endpoints: XDS_TYPES.endpoint,
  routes: XDS_TYPES.route,
  secrets: XDS_TYPES.secret,
  clusters: XDS_TYPES.cluster,
};
const REFERENCE_KINDS = Object.keys(REFERENCED_TYPE) as (keyof SnapshotReferences)[];

/** Which names changed (or are new) since `before`, when nothing was removed. */
function changesFrom(before: TypeResources, after: ReadonlyMap<string, CachedResource>): Pick<TypeResources, "changes"> {
  if (before.resources.size === 0) return {};
  const names = new Set<string>();
  let kept = 0;
  for (const r of after.values()) {
    const old = before.resources.get(r.name);
    if (old) kept++;
    if (old?.version !== r.version) names.add(r.name);
  }
  return kept === before.resources.size ? { changes: { since: before.version, names } } : {};
}

export interface BuildOptions {
  /**
   * Encodes the resources and remembers them (owned by the caller, e.g. the mesh controller,
   * so sets built with it share encodings and equal bodies). Default: a new one for this call.
   */
  encoder?: ResourceEncoder;
  /** The set this one replaces: its unchanged types are kept, changed ones say which names changed. */
  previous?: ResourceSet;
  /**
   * Also derive the VHDS views of the route configurations (VHDS_ROUTES and the VirtualHost
   * type; see virtual-host-discovery.ts), served to delta ADS clients. Default: off.
   */
  virtualHostDiscovery?: boolean;
}

/** Resources encoded once, with what they reference; the building block of snapshots. */
export class ResourceSet {
  private constructor(
    private readonly byType: ReadonlyMap<SnapshotView, TypeResources>,
    /** The decoded resources, kept for consistency checks and debugging. */
    readonly input: SnapshotInput,
    /** EDS names fetched over ADS by this set's clusters. */
    readonly endpointReferences: readonly Reference[],
    /** References this set does not satisfy itself (resolved by the other parts of a snapshot). */
    readonly external: SnapshotReferences,
  ) {}

  /**
   * Encodes the resources (with `opts.encoder`: sets built with one encoder share encodings
   * and equal bodies, one Buffer for a cluster that several namespaces' parts contain).
   */
  static build(input: SnapshotInput, opts: BuildOptions = {}): ResourceSet {
    return runToEnd(ResourceSet.buildSteps(input, opts));
  }

  /** build in steps (one per 200 resources, or less of a large one), for time-sliced callers. */
  static *buildSteps(input: SnapshotInput, opts: BuildOptions = {}): Steps<ResourceSet> {
    const encoder = opts.encoder ?? new ResourceEncoder();
    const previous = opts.previous;
    let n = 0;
    const byType = new Map<SnapshotView, TypeResources>();
    const typeResources = function* (view: SnapshotView, resources: Map<string, CachedResource>): Steps<void> {
      const sorted = yield* sortedByName(resources);
      yield;
      const version = yield* versionOfSortedSteps(sorted.values());
      yield;
      const before = previous?.resources(view);
      // Unchanged content: the previous object itself (its maps are shared, not copied).
      if (before && before.version === version) byType.set(view, before);
      else byType.set(view, { version, resources: sorted, ...(before ? changesFrom(before, sorted) : {}) });
    };
    const encodeAll = function* <U extends XdsTypeUrl>(typeUrl: U, list: readonly XdsResourceTypes[U][], resources = new Map<string, CachedResource>()): Steps<Map<string, CachedResource>> {
      for (const message of list) {
        const name = resourceName(typeUrl, message);
        if (!name) throw new SnapshotError(`a ${shortType(typeUrl)} resource has no name`);
        if (resources.has(name)) throw new SnapshotError(`duplicate ${shortType(typeUrl)} resource "${name}"`);
        resources.set(name, yield* encoder.encodedSteps(typeUrl, name, message));
        if (++n % 200 === 0) yield;
      }
      return resources;
    };
    for (const typeUrl of PUSH_ORDER) {
      const list = (input[typeUrl] ?? []) as readonly XdsResourceTypes[typeof typeUrl][];
      if (list.length === 0) continue;
      yield* typeResources(typeUrl, yield* encodeAll(typeUrl, list));
    }
    const routes = (input[XDS_TYPES.route] ?? []) as readonly RouteConfiguration[];
    if (opts.virtualHostDiscovery && routes.length > 0) {
      // The VHDS views (virtual-host-discovery.ts): route configurations without their
      // virtual hosts, and the virtual hosts as resources of their own.
      yield* typeResources(VHDS_ROUTES, yield* encodeAll(XDS_TYPES.route, routes.map(vhdsRouteConfiguration)));
      const virtualHosts = new Map<string, CachedResource>();
      for (const rc of routes) yield* encodeAll(XDS_TYPES.virtualHost, vhdsVirtualHosts(rc).map((vh) => encoder.virtualHosts.of(rc.name ?? "", vh)), virtualHosts);
      yield* typeResources(XDS_TYPES.virtualHost, virtualHosts);
    }
    yield;
    const own = Object.fromEntries(REFERENCE_KINDS.map((kind) => [kind, byType.get(REFERENCED_TYPE[kind])?.resources])) as Record<keyof SnapshotReferences, ReadonlyMap<string, CachedResource> | undefined>;
    const { endpoints, external } = yield* collectReferencesSteps(input, own);
    return new ResourceSet(byType, input, endpoints, external);
  }

  resources(view: SnapshotView): TypeResources {
    return this.byType.get(view) ?? EMPTY;
  }

  /**
   * A copy with some resources of one type replaced (same names; e.g. new endpoints of a few
   * clusters). Only for resources that reference nothing (endpoints, secrets): references stay.
   */
  replacing<U extends typeof XDS_TYPES.endpoint | typeof XDS_TYPES.secret>(typeUrl: U, messages: readonly XdsResourceTypes[U][], encoder?: ResourceEncoder): ResourceSet {
    if (messages.length === 0) return this;
    const update = ResourceSet.build({ [typeUrl]: messages } as SnapshotInput, { encoder }).resources(typeUrl).resources;
    const current = this.resources(typeUrl).resources;
    for (const name of update.keys()) if (!current.has(name)) throw new SnapshotError(`cannot replace ${shortType(typeUrl)} resource "${name}": not in the set`);
    const resources = new Map([...current].map(([name, r]) => [name, update.get(name) ?? r]));
    const changed = new Set([...update.values()].filter((r) => current.get(r.name)!.version !== r.version).map((r) => r.name));
    if (changed.size === 0) return this;
    const byType = new Map(this.byType);
    const before = this.resources(typeUrl);
    byType.set(typeUrl, { version: versionOf(resources.values()), resources, changes: { since: before.version, names: changed } });
    const replaced = new Map(messages.map((m) => [resourceName(typeUrl, m), m]));
    const list = (this.input[typeUrl] ?? []) as readonly XdsResourceTypes[U][];
    const input = { ...this.input, [typeUrl]: list.map((m) => replaced.get(resourceName(typeUrl, m)) ?? m) };
    return new ResourceSet(byType, input, this.endpointReferences, this.external);
  }
}

/** Several parts' resources of one type seen as one map, without copying them. */
class MergedResources implements ReadonlyMap<string, CachedResource> {
  constructor(private readonly maps: readonly ReadonlyMap<string, CachedResource>[]) {}
  get size(): number {
    let n = 0;
    for (const m of this.maps) n += m.size;
    return n;
  }
  get(name: string): CachedResource | undefined {
    for (const m of this.maps) {
      const r = m.get(name);
      if (r) return r;
    }
    return undefined;
  }
  has(name: string): boolean {
    return this.maps.some((m) => m.has(name));
  }
  forEach(fn: (value: CachedResource, key: string, map: ReadonlyMap<string, CachedResource>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }
  *entries(): MapIterator<[string, CachedResource]> {
    for (const m of this.maps) yield* m.entries();
  }
  *keys(): MapIterator<string> {
    for (const m of this.maps) yield* m.keys();
  }
  *values(): MapIterator<CachedResource> {
    for (const m of this.maps) yield* m.values();
  }
  [Symbol.iterator](): MapIterator<[string, CachedResource]> {
    return this.entries();
  }
}

export class Snapshot {
  private readonly byType = new Map<SnapshotView, TypeResources>();
  /** Per type, the parts' TypeResources it was made of (to reuse the merged view next time). */
  private readonly sources = new Map<SnapshotView, readonly TypeResources[]>();
  private mergedInput?: SnapshotInput;
  /** Summary version of the whole snapshot (for logs, status, and "did anything change"). */
  readonly version: string;

  private constructor(
    readonly parts: readonly ResourceSet[],
    previous?: Snapshot,
  ) {
    for (const typeUrl of SNAPSHOT_VIEWS) {
      const present = parts.map((p) => p.resources(typeUrl)).filter((t) => t.resources.size > 0);
      if (present.length === 0) continue;
      this.sources.set(typeUrl, present);
      if (present.length === 1) {
        this.byType.set(typeUrl, present[0]!);
        continue;
      }
      // Parts with the same contents as the previous snapshot of this key: its merged view
      // (same version; nothing to check again).
      const before = previous?.sources.get(typeUrl);
      const aligned = before !== undefined && before.length === present.length;
      if (aligned && before.every((t, i) => t.version === present[i]!.version)) {
        this.byType.set(typeUrl, previous!.resources(typeUrl));
        continue;
      }
      // The smaller parts' names must not appear in any other part.
      const bySize = [...present].sort((a, b) => a.resources.size - b.resources.size);
      for (let i = 0; i < bySize.length - 1; i++) {
        for (const name of bySize[i]!.resources.keys()) {
          for (let j = i + 1; j < bySize.length; j++) if (bySize[j]!.resources.has(name)) throw new SnapshotError(`duplicate ${shortType(typeUrl)} resource "${name}"`);
        }
      }
      // Exactly one part changed, and it knows which names did since its previous version: so
      // does the merged view, since the previous merged version.
      const differing = aligned ? present.map((t, i) => i).filter((i) => present[i]!.version !== before[i]!.version) : [];
      const only = differing.length === 1 ? present[differing[0]!]! : undefined;
      const changes = only?.changes && only.changes.since === before![differing[0]!]!.version ? { since: previous!.resources(typeUrl).version, names: only.changes.names } : undefined;
      this.byType.set(typeUrl, { version: hash(present.map((t) => `${t.version};`)), resources: new MergedResources(present.map((t) => t.resources)), parts: present, ...(changes ? { changes } : {}) });
    }
    this.version = hash(PUSH_ORDER.map((t) => `${t}=${this.resources(t).version};`));
  }

  static build(input: SnapshotInput, opts: Pick<BuildOptions, "virtualHostDiscovery"> = {}): Snapshot {
    return new Snapshot([ResourceSet.build(input, opts)]);
  }

  /**
   * A snapshot made of parts built separately (and possibly shared with other snapshots).
   * `previous`: the snapshot it replaces, whose merged views are reused for unchanged types.
   */
  static compose(parts: readonly ResourceSet[], previous?: Snapshot): Snapshot {
    return new Snapshot(parts, previous);
  }

  resources(view: SnapshotView): TypeResources {
    return this.byType.get(view) ?? EMPTY;
  }

  /**
   * What a stream serves of a type: a VHDS client (delta ADS; `virtualHostDiscovery`) gets the
   * route configurations with `vhds` and the VirtualHost resources when the snapshot carries
   * them (BuildOptions.virtualHostDiscovery), the inline route configurations otherwise; any
   * other client gets the inline route configurations and no VirtualHost resources.
   */
  served(typeUrl: XdsTypeUrl, virtualHostDiscovery: boolean): TypeResources {
    const vhdsRoutes = virtualHostDiscovery ? this.byType.get(VHDS_ROUTES) : undefined;
    if (typeUrl === XDS_TYPES.route) return vhdsRoutes ?? this.resources(typeUrl);
    if (typeUrl === XDS_TYPES.virtualHost && !vhdsRoutes) return EMPTY;
    return this.resources(typeUrl);
  }

  /** The decoded resources of every part (for tests and debugging). */
  get input(): SnapshotInput {
    if (this.parts.length === 1) return this.parts[0]!.input;
    if (!this.mergedInput) {
      const merged: Record<string, unknown[]> = {};
      for (const p of this.parts) for (const [t, list] of Object.entries(p.input)) merged[t] = [...(merged[t] ?? []), ...(list as unknown[])];
      this.mergedInput = merged as SnapshotInput;
    }
    return this.mergedInput;
  }

  /** EDS names fetched over ADS by the clusters of this snapshot, part by part (no copy). */
  *endpointReferences(): Generator<Reference> {
    for (const p of this.parts) yield* p.endpointReferences;
  }
}

export class SnapshotError extends Error {
  override name = "SnapshotError";
}

function shortType(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf(".") + 1);
}
