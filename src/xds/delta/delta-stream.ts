// Incremental (delta) xDS stream (DeltaAggregatedResources and the per-type Delta* methods).
//
// Per type the stream tracks the version of every resource the proxy holds (seeded from
// initial_resource_versions on reconnect; see held-resources.ts) and sends only resources
// whose version differs, plus removed_resources for those the proxy holds that are gone.
import { DeltaDiscoveryRequest, DeltaDiscoveryResponse } from "../../../generated/envoy/service/discovery/v3/discovery.js";
//
// VHDS (see src/cache/virtual-host-discovery.ts): an ADS stream serves route configurations
// with `vhds` and their virtual hosts as VirtualHost resources, when the snapshot carries
// them. Envoy 1.40 opens its VirtualHost subscription empty (a legacy wildcard) and gives each
// virtual host to its route configuration by name ("<route configuration>/...", namespace
// matching); the stream sends the virtual hosts of the route configurations it has sent
// (vhdsRoutes), whatever names the VirtualHost subscription carries.
import type { CachedResource, Snapshot, TypeResources } from "../../cache/snapshot.js";
import { routeConfigurationOf } from "../../cache/virtual-host-discovery.js";
import { XDS_TYPES, isWildcardByDefault } from "../../envoy/type-urls.js";
import type { NameMatcher } from "../held-resources.js";
import { XdsStreamBase, type TypeState } from "../stream-base.js";

/** VirtualHost resources under subscribed route configurations. */
class UnderRouteConfigurations implements NameMatcher {
  constructor(private readonly routes: ReadonlySet<string>) {}
  has(name: string): boolean {
    return this.routes.has(routeConfigurationOf(name));
  }
}

interface DeltaUpdate {
  updated: CachedResource[];
  removed: string[];
  /** Removed clusters held back until listeners and routes settle (make-before-break). */
  kept?: boolean;
}

export class DeltaStream extends XdsStreamBase<TypeState> {
  onRequest(req: DeltaDiscoveryRequest): void {
    this.withinLimits(() => this.handle(req));
  }

  private handle(req: DeltaDiscoveryRequest): void {
    const begun = this.beginRequest(req.node, req.typeUrl, (base) => base);
    if (!begun) return;
    const { st, isNew } = begun;
    if (st.typeUrl === XDS_TYPES.route) this.routesHeldGeneration++;
    const subscribe = req.resourceNamesSubscribe ?? [];
    const unsubscribe = req.resourceNamesUnsubscribe ?? [];
    if (isNew) {
      const initial = Object.entries(req.initialResourceVersions ?? {});
      let bytes = 0;
      for (const [name, version] of initial) bytes += Buffer.byteLength(name, "utf8") + Buffer.byteLength(version, "utf8");
      this.checkNames(st, initial.length, bytes, "initial_versions");
      for (const [name, version] of initial) st.held.set(name, version);
      st.wildcard = subscribe.includes("*") || (subscribe.length === 0 && isWildcardByDefault(st.typeUrl));
    }
    if (subscribe.length > 0 || unsubscribe.length > 0) {
      // A new Set (the current one may be shared with other streams), then shared itself.
      const names = new Set(st.names);
      let bytes = st.namesBytes;
      let wildcard = st.wildcard;
      for (const name of subscribe) {
        if (name === "*") wildcard = true;
        else if (!names.has(name)) {
          names.add(name);
          bytes += Buffer.byteLength(name, "utf8");
        }
      }
      for (const name of unsubscribe) {
        if (name === "*") wildcard = false;
        else if (names.delete(name)) bytes -= Buffer.byteLength(name, "utf8");
      }
      // Subscriptions accumulate over requests: bounded in count and bytes per type.
      this.checkNames(st, names.size, bytes);
      for (const name of unsubscribe) if (name !== "*") st.held.delete(name);
      st.cleanVersion = undefined;
      st.wildcard = wildcard;
      st.names = this.ctx.names.share(names);
      st.namesBytes = bytes;
    }
    // Subscription changes always count in delta; only the ACK part depends on the nonce.
    this.settle(st, req.responseNonce, req.errorDetail);
    this.pushAll();
  }

  /** What this stream serves of the type (the VHDS forms of routes on an ADS stream; see Snapshot.served). */
  private served(st: TypeState, snapshot: Snapshot): TypeResources {
    return snapshot.served(st.typeUrl, this.virtualHostDiscovery);
  }

  /** Whether the proxy subscribed to `name` (VirtualHost: see vhdsRoutes). */
  private subscribed(st: TypeState, name: string): boolean {
    if (st.typeUrl === XDS_TYPES.virtualHost) return this.vhdsRoutes.has(routeConfigurationOf(name));
    return st.wildcard || st.names.has(name);
  }

  /**
   * VHDS: the route configurations whose virtual hosts may be sent — those this stream has sent
   * (RDS goes before VHDS on the stream, so Envoy has each one's VHDS subscription before its
   * virtual hosts arrive; virtual hosts of a route configuration Envoy does not have yet would be
   * dropped, and never sent again). Recomputed when VirtualHost updates are looked at; when the
   * set changes, virtual hosts of route configurations gone are forgotten (Envoy dropped them).
   */
  private vhdsRoutes: ReadonlySet<string> = new Set();
  private vhdsRoutesKey = "";
  /** Bumped whenever what the proxy holds of RDS may change; vhdsRoutes is recomputed only then. */
  private routesHeldGeneration = 0;
  private vhdsRoutesGeneration = -1;

  private refreshVhdsRoutes(st: TypeState): void {
    if (this.vhdsRoutesGeneration === this.routesHeldGeneration) return;
    this.vhdsRoutesGeneration = this.routesHeldGeneration;
    const names = new Set<string>();
    const rds = this.types.get(XDS_TYPES.route);
    if (rds) for (const name of rds.held.names()) names.add(name);
    const key = [...names].sort().join("\n");
    if (key === this.vhdsRoutesKey) return;
    this.vhdsRoutes = names;
    this.vhdsRoutesKey = key;
    st.held.keepOnly(new UnderRouteConfigurations(names));
    st.cleanVersion = undefined;
  }

  private update(st: TypeState, snapshot: Snapshot): DeltaUpdate {
    const typed = this.served(st, snapshot);
    const all = typed.resources;
    const updated: CachedResource[] = [];
    const removed: string[] = [];
    const virtualHosts = st.typeUrl === XDS_TYPES.virtualHost;
    if (virtualHosts) this.refreshVhdsRoutes(st);
    const c = this.candidates(st, typed);
    if (c === "clean") return { updated, removed };
    if (c !== "all") {
      // EDS fast path: only names that changed since the proxy was up to date.
      for (const name of c) {
        const r = all.get(name);
        if (r && this.subscribed(st, name) && st.held.version(name) !== r.version) updated.push(r);
      }
      return { updated, removed };
    }
    if (virtualHosts) {
      for (const r of all.values()) if (this.subscribed(st, r.name) && st.held.version(r.name) !== r.version) updated.push(r);
    } else if (st.wildcard) {
      if (st.held.isExactly(typed.version)) return { updated, removed };
      for (const r of all.values()) if (st.held.version(r.name) !== r.version) updated.push(r);
    } else {
      for (const name of st.names) {
        const r = all.get(name);
        if (r && st.held.version(name) !== r.version) updated.push(r);
      }
    }
    for (const name of st.held.names()) {
      if (!all.has(name) && this.subscribed(st, name)) removed.push(name);
    }
    // Removed clusters stay until listeners and routes settle; only ask when some were removed.
    if (removed.length > 0 && st.typeUrl === XDS_TYPES.cluster && this.keepRemovedClusters()) return { updated, removed: [], kept: true };
    return { updated, removed };
  }

  protected override hasPending(st: TypeState, snapshot: Snapshot): boolean {
    const { updated, removed } = this.update(st, snapshot);
    return updated.length > 0 || removed.length > 0;
  }

  protected override pushType(st: TypeState, snapshot: Snapshot): boolean {
    const { updated, removed, kept } = this.update(st, snapshot);
    const typed = this.served(st, snapshot);
    const version = typed.version;
    if (updated.length === 0 && removed.length === 0) {
      // Up to date with this type, unless removed clusters are being kept.
      if (!kept) {
        st.cleanVersion = typed.version;
        this.holdAll(st, typed);
      }
      this.markInSync(st, version);
      return false;
    }
    // Route configurations sent or removed: the virtual hosts that may follow change (vhdsRoutes).
    if (st.typeUrl === XDS_TYPES.route) this.routesHeldGeneration++;
    const nonce = this.nextNonce();
    const encode = (n: string) => {
      const bytes = DeltaDiscoveryResponse.encode({
        systemVersionInfo: version,
        typeUrl: st.typeUrl,
        nonce: n,
        resources: updated.map((r) => ({ name: r.name, version: r.version, resource: { typeUrl: st.typeUrl, value: r.body } })),
        removedResources: removed,
        controlPlane: { identifier: this.ctx.controlPlaneId },
      }).finish();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    };
    // The same bytes for every stream that sends the same thing: one updated resource, or a
    // first response (the proxy holds nothing) carrying the whole type or the whole of a
    // subscription shared with other streams (same names, same order: see shared-names.ts).
    const whole = st.held.empty && removed.length === 0 && updated.length > 1;
    const shareKey = updated.length === 1 && removed.length === 0 ? updated[0] : whole ? (st.wildcard ? typed.resources : st.names) : undefined;
    const variant = `delta\u0000${st.typeUrl}\u0000${version}\u0000${this.ctx.controlPlaneId}${whole ? "\u0000whole" : ""}`;
    const frame = this.ctx.frames.frame(shareKey, variant, nonce, encode);
    const updatedClusters = st.typeUrl === XDS_TYPES.cluster ? updated.filter((r) => st.held.has(r.name)).map((r) => r.name) : [];
    if (kept) {
      for (const r of updated) st.held.set(r.name, r.version);
    } else {
      this.holdAll(st, typed);
      st.cleanVersion = typed.version;
    }
    this.emit(st, frame, version, updated.length + removed.length);
    this.resendEndpointsOf(updatedClusters, snapshot);
    return true;
  }

  protected override holdAll(st: TypeState, typed: TypeResources): void {
    if (st.typeUrl !== XDS_TYPES.virtualHost) return super.holdAll(st, typed);
    st.held.rebase(typed.resources, new UnderRouteConfigurations(this.vhdsRoutes), typed.version);
  }

  protected override forgetSent(st: TypeState, names: readonly string[]): void {
    if (st.typeUrl === XDS_TYPES.route) this.routesHeldGeneration++;
    st.cleanVersion = undefined;
    for (const n of names) st.held.delete(n);
  }
}
