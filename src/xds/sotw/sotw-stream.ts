// State-of-the-world xDS stream (StreamAggregatedResources and the per-type Stream* methods).
//
// LDS and CDS responses carry every resource (omission means removal); RDS, EDS and SDS
// responses carry only the subscribed resources that changed (omission means nothing).
import type { DiscoveryRequest } from "../../../generated/envoy/service/discovery/v3/discovery.js";
import type { CachedResource, Snapshot, TypeResources } from "../../cache/snapshot.js";
import { versionOf } from "../../cache/snapshot.js";
import { XDS_TYPES, isWildcardByDefault, type XdsTypeUrl } from "../../envoy/type-urls.js";
import { XdsStreamBase, type TypeState } from "../stream-base.js";
import { GRPC_INVALID_ARGUMENT, LimitExceeded } from "../xds-limits.js";
import { truncateText } from "../../log/bounded-text.js";
import { knownNames, sotwRequestOf, type EncodedSotwRequest, type KnownNames, type SotwRequest } from "./request-names.js";
import { encodeDiscoveryResponse, encodeWholeTypeResponse } from "./response-encoding.js";
import { ALL_NAMES } from "../held-resources.js";
import { utf8Bytes, type SharedNameList } from "../shared-names.js";

/** version_info a reconnecting proxy claims is kept only up to this length (ours are ~16). */
const MAX_CLAIMED_VERSION_CHARS = 128;

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const n of a) if (!b.has(n)) return false;
  return true;
}

interface SotwTypeState extends TypeState {
  /** version_info of the last response, or the version the proxy reported on reconnect. */
  sentVersion?: string;
  /** version_info the proxy said it holds in its first request (reconnect). */
  claimedVersion?: string;
  /** The subscribed names changed since the version shown in status was computed. */
  viewChanged?: boolean;
  /** Fingerprint of the resource_names bytes of the last request (see request-names.ts). */
  namesFingerprint?: string;
  /** The shared list `names` came from, with its encoding (large lists only; see request-names.ts). */
  nameList?: SharedNameList;
}

/** The resources a proxy should hold of one type, and their version when it is known without hashing. */
interface DesiredView {
  /**
   * A wildcard subscription's map (the type's own, or with kept clusters), or a named
   * subscription's resources as a list (a Map of 3300 EDS names per push cost more than the rest).
   */
  view: ResourceView;
  version?: string;
  /** `view` is the type's whole map at `version` (a wildcard subscription, nothing kept back). */
  whole: boolean;
}

type ResourceView = ReadonlyMap<string, CachedResource> | readonly CachedResource[];

/** A named subscription's list (a type's map may be any ReadonlyMap, e.g. a composed one). */
function isList(view: ResourceView): view is readonly CachedResource[] {
  return Array.isArray(view);
}

function resourcesOf(view: ResourceView): Iterable<CachedResource> {
  return isList(view) ? view : view.values();
}

function sizeOf(view: ResourceView): number {
  return isList(view) ? view.length : view.size;
}

function isStateOfTheWorld(typeUrl: XdsTypeUrl): boolean {
  return isWildcardByDefault(typeUrl);
}

export class SotwStream extends XdsStreamBase<SotwTypeState> {
  onRequest(input: DiscoveryRequest | EncodedSotwRequest): void {
    let req: SotwRequest;
    try {
      req = sotwRequestOf(input, this.knownLists());
    } catch (err) {
      // As grpc-js does when its deserializer throws (large requests are decoded here).
      this.refuse(new LimitExceeded(GRPC_INVALID_ARGUMENT, `the request is not a valid DiscoveryRequest: ${truncateText((err as Error).message, 200)}`, "decode"));
      return;
    }
    this.withinLimits(() => this.handle(req));
  }

  /**
   * An endpoint response the client has read may be replaced by a newer one before its ACK
   * arrives (StreamContext.supersedeEndpoints): EDS responses carry only changed resources,
   * each complete, and Envoy applies responses in order. Not clusters, listeners or routes
   * (Envoy's warming and the listener/route gate wait for their answers), and not a response
   * still queued here (the push budget bounds those bytes).
   */
  protected override mayReplaceInflight(st: SotwTypeState): boolean {
    return this.ctx.supersedeEndpoints === true && st.typeUrl === XDS_TYPES.endpoint && st.inflight?.written === true;
  }

  /** The encoded name lists this stream's types hold, to recognise a repeated list by its bytes. */
  private knownLists(): KnownNames[] {
    const out: KnownNames[] = [];
    for (const st of this.types.values()) if (st.nameList?.known) out.push(st.nameList.known);
    return out;
  }

  private handle(req: SotwRequest): void {
    const begun = this.beginRequest(req.node, req.typeUrl, (base) => base);
    if (!begun) return;
    const { st, isNew } = begun;
    // Versions are short content hashes: a longer claim cannot match and is not kept.
    if (isNew && req.versionInfo && !req.responseNonce && req.versionInfo.length <= MAX_CLAIMED_VERSION_CHARS) st.claimedVersion = req.versionInfo;

    const outcome = this.settle(st, req.responseNonce, req.errorDetail);
    if (outcome === "stale") return; // an answer to an older response; the newest one is still in flight

    // The same names as last time (same bytes): nothing to decode or compare.
    const raw = req.rawNames;
    const sameNames = raw !== undefined && raw.fingerprint === st.namesFingerprint;
    st.namesFingerprint = raw?.fingerprint;
    if (!sameNames) {
      if (raw) this.checkNames(st, raw.count, raw.bytes);
      else this.checkNames(st, req.resourceNames?.length ?? 0, utf8Bytes(req.resourceNames ?? []));
      // Large lists are shared by every stream that sends the same bytes (decoded once).
      const list = raw ? this.ctx.names.byFingerprint(raw.fingerprint, raw.decode, () => raw.known ?? knownNames(raw)) : undefined;
      const listed = list?.names ?? new Set(req.resourceNames ?? []);
      // Equal sets in another order or encoding: the newest encoding is the one to expect next.
      st.nameList = list;
      const wildcard = listed.has("*") || (listed.size === 0 && isWildcardByDefault(st.typeUrl));
      const requested = listed.has("*") ? new Set([...listed].filter((n) => n !== "*")) : listed;
      if (wildcard !== st.wildcard || !sameSet(requested, st.names)) {
        st.cleanVersion = undefined;
        st.wildcard = wildcard;
        // Shorter lists are shared once they differ (not hashed again on every ACK).
        st.names = raw ? requested : this.ctx.names.share(requested);
        st.namesBytes = raw ? raw.bytes : utf8Bytes(requested);
        st.viewChanged = true;
        // Forget what was sent for names the proxy no longer wants, so re-subscribing re-sends them.
        if (!st.wildcard) st.held.keepOnly(requested);
      }
    }
    this.pushAll();
  }

  /**
   * Resources this proxy should hold of this type now. A wildcard subscription uses the
   * snapshot's own map and version (no copy, no hashing): most evaluations are ACKs that
   * change nothing, and a storm of proxies would otherwise pay O(resources) each time.
   */
  private desired(st: SotwTypeState, snapshot: Snapshot): DesiredView {
    const typed = snapshot.served(st.typeUrl, false);
    let view: ResourceView;
    // A named subscription's version_info is the type's version too (as go-control-plane
    // does): hashing each proxy's own view on every push cost O(names) per proxy.
    let version: string | undefined = typed.version;
    if (st.wildcard) {
      view = typed.resources;
    } else {
      view = this.ctx.names.resolve(st.names, st.typeUrl, typed);
    }
    if (st.typeUrl === XDS_TYPES.cluster && !st.held.empty && !st.held.isExactly(st.wildcard ? typed.version : undefined)) {
      // Removed clusters stay until listeners and routes settle; only ask when some were removed.
      const byName: ReadonlyMap<string, CachedResource> = isList(view) ? new Map(view.map((r) => [r.name, r])) : view;
      const removed: [string, CachedResource][] = [];
      for (const name of st.held.names()) {
        if (byName.has(name)) continue;
        const r = st.held.resource(name);
        if (r) removed.push([name, r]);
      }
      if (removed.length > 0 && this.keepRemovedClusters()) {
        view = new Map([...byName, ...removed]);
        version = undefined;
      }
    }
    return { view, version, whole: st.wildcard && version !== undefined };
  }

  private versionOfView(d: DesiredView): string {
    return d.version ?? versionOf(resourcesOf(d.view));
  }

  private changed(st: SotwTypeState, view: ResourceView): CachedResource[] {
    const out: CachedResource[] = [];
    for (const r of resourcesOf(view)) if (st.held.version(r.name) !== r.version) out.push(r);
    return out;
  }

  private pendingFor(st: SotwTypeState, d: DesiredView): boolean {
    const view = d.view;
    if (st.held.empty) return st.wildcard || sizeOf(view) > 0;
    if (st.held.isExactly(d.whole ? d.version : undefined)) return false;
    for (const r of resourcesOf(view)) if (st.held.version(r.name) !== r.version) return true;
    return isStateOfTheWorld(st.typeUrl) && st.held.size !== sizeOf(view);
  }

  /** Of `names`, the subscribed resources whose version differs from what the proxy was sent. */
  private changedAmong(st: SotwTypeState, typed: TypeResources, names: ReadonlySet<string>): CachedResource[] {
    const out: CachedResource[] = [];
    for (const name of names) {
      if (!st.wildcard && !st.names.has(name)) continue;
      const r = typed.resources.get(name);
      if (r && st.held.version(name) !== r.version) out.push(r);
    }
    return out;
  }

  protected override hasPending(st: SotwTypeState, snapshot: Snapshot): boolean {
    const typed = snapshot.served(st.typeUrl, false);
    const c = this.candidates(st, typed);
    if (c === "clean") return false;
    if (c !== "all") return this.changedAmong(st, typed, c).length > 0;
    return this.pendingFor(st, this.desired(st, snapshot));
  }

  protected override pushType(st: SotwTypeState, snapshot: Snapshot): boolean {
    const typed = snapshot.served(st.typeUrl, false);
    const c = this.candidates(st, typed);
    if (c === "clean") return false;
    if (c !== "all") {
      const changed = this.changedAmong(st, typed, c);
      if (changed.length === 0) {
        st.cleanVersion = typed.version;
        return false;
      }
      if (!isStateOfTheWorld(st.typeUrl)) {
        // EDS fast path: only the changed resources, without looking at the others.
        const nonce = this.nextNonce();
        const frame = encodeDiscoveryResponse(this.ctx.frames, st.typeUrl, typed.version, nonce, changed, this.ctx.controlPlaneId);
        this.holdAll(st, typed);
        st.sentVersion = typed.version;
        st.viewChanged = false;
        st.cleanVersion = typed.version;
        this.emit(st, frame, typed.version, changed.length);
        return true;
      }
    }
    const pushed = this.pushFull(st, snapshot);
    // Up to date with this type now, unless removed clusters are kept for make-before-break.
    if (!st.wildcard || st.held.isExactly(typed.version)) st.cleanVersion = typed.version;
    return pushed;
  }

  private pushFull(st: SotwTypeState, snapshot: Snapshot): boolean {
    const d = this.desired(st, snapshot);
    if (st.held.empty && st.claimedVersion !== undefined) {
      // Reconnect: the proxy already holds exactly this content (versions are content hashes).
      const claimed = st.claimedVersion;
      st.claimedVersion = undefined;
      const version = this.versionOfView(d);
      if (claimed === version) {
        this.holdView(st, d, snapshot);
        st.sentVersion = version;
        st.viewChanged = false;
        this.markInSync(st, version);
        return false;
      }
    }
    if (!this.pendingFor(st, d)) {
      // Same content as what was sent: remember the current map, so the next wake-up with this
      // snapshot is recognised without comparing (see candidates()).
      if (!st.held.empty) this.holdView(st, d, snapshot);
      if (!st.held.empty && st.viewChanged) {
        // E.g. the proxy unsubscribed from some names: it now holds exactly this view.
        st.viewChanged = false;
        const version = this.versionOfView(d);
        st.sentVersion = version;
        this.markInSync(st, version);
      }
      return false;
    }
    const version = this.versionOfView(d);
    const nonce = this.nextNonce();
    const updatedClusters: string[] = [];
    if (st.typeUrl === XDS_TYPES.cluster && !st.held.empty) {
      for (const r of resourcesOf(d.view)) {
        const held = st.held.version(r.name);
        if (held !== undefined && held !== r.version) updatedClusters.push(r.name);
      }
    }
    if (isStateOfTheWorld(st.typeUrl) && d.whole) {
      // A whole type's map at version V is the same content for every class whose type is at V
      // (versions are content hashes), whichever object holds it: one encoding for all of them.
      const frame = encodeWholeTypeResponse(this.ctx.frames, st.typeUrl, snapshot.served(st.typeUrl, false), nonce, this.ctx.controlPlaneId);
      this.holdView(st, d, snapshot);
      st.sentVersion = version;
      st.viewChanged = false;
      this.emit(st, frame, version, sizeOf(d.view));
      this.resendEndpointsOf(updatedClusters, snapshot);
      return true;
    }
    const resources = isStateOfTheWorld(st.typeUrl) ? [...resourcesOf(d.view)] : this.changed(st, d.view);
    // The same bytes for every stream that sends the same thing: a first response to a
    // subscription shared with other streams (same names, same order: see shared-names.ts) at
    // the type's version.
    const shareKey = !isStateOfTheWorld(st.typeUrl) && !st.wildcard && st.held.empty && d.version !== undefined && resources.length > 1 ? st.names : undefined;
    const frame = encodeDiscoveryResponse(this.ctx.frames, st.typeUrl, version, nonce, resources, this.ctx.controlPlaneId, shareKey);
    this.holdView(st, d, snapshot);
    st.sentVersion = version;
    st.viewChanged = false;
    this.emit(st, frame, version, resources.length);
    this.resendEndpointsOf(updatedClusters, snapshot);
    return true;
  }

  /**
   * The proxy now holds `d.view`: the type's own map filtered by the subscription (no copy),
   * or, for clusters kept for make-before-break, the view itself.
   */
  private holdView(st: SotwTypeState, d: DesiredView, snapshot: Snapshot): void {
    // A wildcard subscription's view is always a map.
    if (st.wildcard && !d.whole && !isList(d.view)) st.held.rebase(d.view, ALL_NAMES);
    else this.holdAll(st, snapshot.served(st.typeUrl, false));
  }

  protected override forgetSent(st: SotwTypeState, names: readonly string[]): void {
    st.cleanVersion = undefined;
    for (const n of names) st.held.delete(n);
  }
}
