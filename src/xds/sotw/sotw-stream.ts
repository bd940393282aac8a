// State-of-the-world xDS stream (StreamAggregatedResources and the per-type Stream* methods).
//
// LDS and CDS responses carry every resource (omission means removal); RDS, EDS and SDS
// responses carry only the subscribed resources that changed (omission means nothing).
import { DiscoveryRequest, DiscoveryResponse } from "../../../generated/envoy/service/discovery/v3/discovery.js";
import type { CachedResource, Snapshot } from "../../cache/snapshot.js";
import { versionOf } from "../../cache/snapshot.js";
import { XDS_TYPES, isWildcardByDefault, type XdsTypeUrl } from "../../envoy/type-urls.js";
import { XdsStreamBase, type TypeState } from "../stream-base.js";

interface SotwTypeState extends TypeState {
  /** What this proxy was last sent of this type (for LDS/CDS: its whole state). */
  sent?: Map<string, CachedResource>;
  /** version_info of the last response, or the version the proxy reported on reconnect. */
  sentVersion?: string;
  /** version_info the proxy said it holds in its first request (reconnect). */
  claimedVersion?: string;
}

function isStateOfTheWorld(typeUrl: XdsTypeUrl): boolean {
  return isWildcardByDefault(typeUrl);
}

export class SotwStream extends XdsStreamBase<SotwTypeState> {
  onRequest(req: DiscoveryRequest): void {
    const begun = this.beginRequest(req.node, req.typeUrl, (base) => base);
    if (!begun) return;
    const { st, isNew } = begun;
    if (isNew && req.versionInfo && !req.responseNonce) st.claimedVersion = req.versionInfo;

    const outcome = this.settle(st, req.responseNonce, req.errorDetail);
    if (outcome === "stale") return; // an answer to an older response; the newest one is still in flight

    const names = req.resourceNames ?? [];
    st.wildcard = names.includes("*") || (names.length === 0 && isWildcardByDefault(st.typeUrl));
    st.names.clear();
    for (const n of names) if (n !== "*") st.names.add(n);
    if (!st.wildcard && st.sent) {
      // Forget what was sent for names the proxy no longer wants, so re-subscribing re-sends them.
      for (const name of [...st.sent.keys()]) if (!st.names.has(name)) st.sent.delete(name);
    }
    this.refreshSubscriptionStatus(st);
    this.pushAll();
  }

  /** Resources this proxy should hold of this type now. */
  private desired(st: SotwTypeState, snapshot: Snapshot): Map<string, CachedResource> {
    const all = snapshot.resources(st.typeUrl).resources;
    let view: Map<string, CachedResource>;
    if (st.wildcard) {
      view = new Map(all);
    } else {
      view = new Map();
      for (const name of st.names) {
        const r = all.get(name);
        if (r) view.set(name, r);
      }
    }
    if (st.typeUrl === XDS_TYPES.cluster && st.sent && this.keepRemovedClusters()) {
      for (const [name, r] of st.sent) if (!view.has(name)) view.set(name, r);
    }
    return view;
  }

  private changed(st: SotwTypeState, desired: Map<string, CachedResource>): CachedResource[] {
    const out: CachedResource[] = [];
    for (const r of desired.values()) if (st.sent?.get(r.name)?.version !== r.version) out.push(r);
    return out;
  }

  protected override hasPending(st: SotwTypeState, snapshot: Snapshot): boolean {
    const desired = this.desired(st, snapshot);
    if (!st.sent) return st.wildcard || desired.size > 0;
    if (this.changed(st, desired).length > 0) return true;
    return isStateOfTheWorld(st.typeUrl) && st.sent.size !== desired.size;
  }

  protected override pushType(st: SotwTypeState, snapshot: Snapshot): boolean {
    const desired = this.desired(st, snapshot);
    const version = versionOf(desired.values());
    if (!st.sent && st.claimedVersion !== undefined) {
      // Reconnect: the proxy already holds exactly this content (versions are content hashes).
      const claimed = st.claimedVersion;
      st.claimedVersion = undefined;
      if (claimed === version) {
        st.sent = desired;
        st.sentVersion = version;
        this.markInSync(st, version);
        return false;
      }
    }
    if (!this.hasPending(st, snapshot)) {
      if (st.sent) {
        st.sentVersion = version;
        this.markInSync(st, version);
      }
      return false;
    }
    const resources = isStateOfTheWorld(st.typeUrl) ? [...desired.values()] : this.changed(st, desired);
    const updatedClusters =
      st.typeUrl === XDS_TYPES.cluster && st.sent ? resources.filter((r) => st.sent!.has(r.name) && st.sent!.get(r.name)!.version !== r.version).map((r) => r.name) : [];
    const nonce = this.nextNonce();
    const frame = encodeDiscoveryResponse(st.typeUrl, version, nonce, resources, this.ctx.controlPlaneId);
    if (!st.sent || isStateOfTheWorld(st.typeUrl)) st.sent = desired;
    else for (const r of resources) st.sent.set(r.name, r);
    st.sentVersion = version;
    this.emit(st, frame, version, nonce, resources.length);
    this.resendEndpointsOf(updatedClusters, snapshot);
    return true;
  }

  protected override forgetSent(st: SotwTypeState, names: readonly string[]): void {
    for (const n of names) st.sent?.delete(n);
  }
}

export function encodeDiscoveryResponse(
  typeUrl: XdsTypeUrl,
  versionInfo: string,
  nonce: string,
  resources: readonly CachedResource[],
  controlPlaneId: string,
): Buffer {
  const bytes = DiscoveryResponse.encode({
    versionInfo,
    typeUrl,
    nonce,
    resources: resources.map((r) => ({ typeUrl, value: r.body })),
    controlPlane: { identifier: controlPlaneId },
  }).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
