// The mesh controller's generation paths: shared outbound parts, the EDS fast path, and that
// both give exactly what a full regeneration gives.
import { describe, expect, it } from "vitest";
import type { Node } from "../../generated/envoy/config/core/v3/base.js";
import type { MeshConfig, NetworkingResource, WorkloadEntry } from "../api/types.js";
import { SnapshotCache } from "../cache/snapshot-cache.js";
import type { Snapshot } from "../cache/snapshot.js";
import { PUSH_ORDER, XDS_TYPES } from "../envoy/type-urls.js";
import { silentLogger } from "../log/logger.js";
import { MeshController } from "./mesh-controller.js";
import { bookinfoConfig } from "./bookinfo-fixture.js";

const bookinfo = bookinfoConfig;

const moveReviewsV2 = (address: string) => (r: NetworkingResource) =>
  r.kind === "WorkloadEntry" && r.metadata.name === "reviews-v2" ? ({ ...r, spec: { ...(r as WorkloadEntry).spec, address } } as NetworkingResource) : r;

function node(app: string, version: string): Node {
  return { id: `sidecar~10.0.0.1~${app}-${version}.bookinfo~bookinfo.svc.cluster.local`, metadata: { NAMESPACE: "bookinfo", LABELS: JSON.stringify({ app, version }) } } as Node;
}

const NODES = [node("productpage", "v1"), node("reviews", "v1"), node("reviews", "v2"), node("ratings", "v1")];

function start(config: MeshConfig): { controller: MeshController; cache: SnapshotCache; keys: string[] } {
  const cache = new SnapshotCache();
  const controller = new MeshController(cache, silentLogger());
  controller.setConfig(config);
  const keys = NODES.map((n) => controller.nodeKey(n));
  return { controller, cache, keys };
}

/** name -> version of every resource, per type: what a proxy would end up holding. */
function contents(s: Snapshot): Record<string, Record<string, string>> {
  return Object.fromEntries(PUSH_ORDER.map((t) => [t, Object.fromEntries([...s.resources(t).resources.values()].map((r) => [r.name, r.version]))]));
}

describe("MeshController generation", () => {
  it("sidecars of one namespace share their outbound resources (one encoding, one Buffer)", () => {
    const { cache, keys } = start(bookinfo());
    expect(new Set(keys).size).toBe(4);
    const [a, b] = [cache.get(keys[0]!)!, cache.get(keys[2]!)!];
    const cluster = "outbound|9080||details.bookinfo.svc.cluster.local";
    expect(a.resources(XDS_TYPES.cluster).resources.get(cluster)).toBeDefined();
    expect(a.resources(XDS_TYPES.cluster).resources.get(cluster)).toBe(b.resources(XDS_TYPES.cluster).resources.get(cluster));
    // One outbound part for both; each has its own local part (inbound listener).
    const outbound = (s: Snapshot) => s.parts.find((p) => p.resources(XDS_TYPES.listener).resources.has("virtualOutbound"));
    expect(outbound(a)).toBeDefined();
    expect(outbound(a)).toBe(outbound(b));
    expect(a.parts.find((p) => p.resources(XDS_TYPES.listener).resources.has("virtualInbound"))).not.toBe(b.parts.find((p) => p.resources(XDS_TYPES.listener).resources.has("virtualInbound")));
  });

  it("an endpoint-only change takes the EDS fast path: only endpoints change, and exactly as a full regeneration would", () => {
    const { controller, cache, keys } = start(bookinfo());
    const before = keys.map((k) => contents(cache.get(k)!));
    const stats = controller.setConfig(bookinfo(moveReviewsV2("10.77.0.99")));
    expect(stats.path).toBe("endpoints");
    expect(stats.changed).toBe(4);
    const fresh = start(bookinfo(moveReviewsV2("10.77.0.99")));
    for (const [i, key] of keys.entries()) {
      const after = contents(cache.get(key)!);
      expect(after).toEqual(contents(fresh.cache.get(fresh.keys[i]!)!));
      expect(after[XDS_TYPES.cluster]).toEqual(before[i]![XDS_TYPES.cluster]);
      expect(after[XDS_TYPES.listener]).toEqual(before[i]![XDS_TYPES.listener]);
      expect(after[XDS_TYPES.route]).toEqual(before[i]![XDS_TYPES.route]);
      const changedEds = Object.keys(after[XDS_TYPES.endpoint]!).filter((n) => after[XDS_TYPES.endpoint]![n] !== before[i]![XDS_TYPES.endpoint]![n]);
      expect(changedEds.sort()).toEqual(["outbound|9080|v2|reviews.bookinfo.svc.cluster.local", "outbound|9080||reviews.bookinfo.svc.cluster.local"]);
    }
  });

  it("applying the same config again changes nothing and wakes nobody", () => {
    const { controller } = start(bookinfo());
    const stats = controller.setConfig(bookinfo());
    expect(stats.path).toBe("none");
    expect(stats.changed).toBe(0);
  });

  it("a route change regenerates fully and changes routes, not endpoints", () => {
    const { controller, cache, keys } = start(bookinfo());
    const before = contents(cache.get(keys[0]!)!);
    const stats = controller.setConfig(
      bookinfo((r) => (r.kind === "VirtualService" && r.metadata.name === "reviews" ? ({ ...r, spec: { hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews", subset: "v3" } }] }] } } as NetworkingResource) : r)),
    );
    expect(stats.path).toBe("full");
    const after = contents(cache.get(keys[0]!)!);
    expect(after[XDS_TYPES.route]).not.toEqual(before[XDS_TYPES.route]);
    expect(after[XDS_TYPES.endpoint]).toEqual(before[XDS_TYPES.endpoint]);
  });

  it("a workload whose labels change is not an endpoint-only change", () => {
    const { controller } = start(bookinfo());
    const relabel = (r: NetworkingResource) =>
      r.kind === "WorkloadEntry" && r.metadata.name === "reviews-v2" ? ({ ...r, spec: { ...(r as WorkloadEntry).spec, labels: { app: "reviews", version: "v3" } } } as NetworkingResource) : r;
    expect(controller.setConfig(bookinfo(relabel)).path).toBe("full");
  });
});
