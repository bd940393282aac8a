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

  it("an endpoint-only change reaches a gateway in another namespace (its endpoints live in its local part)", () => {
    const { controller, cache } = start(bookinfo());
    const gateway = controller.nodeKey({ id: "router~10.0.0.9~ingress.istio-system~istio-system.svc.cluster.local", metadata: { NAMESPACE: "istio-system", LABELS: JSON.stringify({ istio: "ingressgateway" }) } } as Node);
    const before = contents(cache.get(gateway)!);
    expect(controller.setConfig(bookinfo(moveReviewsV2("10.77.0.99"))).path).toBe("endpoints");
    const fresh = start(bookinfo(moveReviewsV2("10.77.0.99")));
    const expected = contents(fresh.cache.get(fresh.controller.nodeKey({ id: "router~10.0.0.9~ingress.istio-system~istio-system.svc.cluster.local", metadata: { NAMESPACE: "istio-system", LABELS: JSON.stringify({ istio: "ingressgateway" }) } } as Node))!);
    const after = contents(cache.get(gateway)!);
    expect(after[XDS_TYPES.endpoint]!["outbound|9080|v2|reviews.bookinfo.svc.cluster.local"]).not.toBe(before[XDS_TYPES.endpoint]!["outbound|9080|v2|reviews.bookinfo.svc.cluster.local"]);
    expect(after).toEqual(expected);
  });

  it("an endpoint-only change rebuilds a sidecar's local part only when what it reads changed (the services it serves, its own port mapping)", () => {
    const { controller, cache, keys } = start(bookinfo());
    const inbound = (k: string) => cache.get(k)!.parts.find((p) => p.resources(XDS_TYPES.listener).resources.has("virtualInbound"));
    const before = keys.map(inbound);
    expect(before.every((p) => p !== undefined)).toBe(true);
    // Another address for reviews-v2: every sidecar of the namespace serves what it served.
    expect(controller.setConfig(bookinfo(moveReviewsV2("10.77.0.99"))).path).toBe("endpoints");
    for (const [i, key] of keys.entries()) expect(inbound(key), `sidecar ${i}`).toBe(before[i]);
    // reviews-v2 now receives port http on 9090: its own inbound side changes, no other's.
    const remapped = (r: NetworkingResource) => {
      const moved = moveReviewsV2("10.77.0.99")(r);
      return moved.kind === "WorkloadEntry" && moved.metadata.name === "reviews-v2" ? ({ ...moved, spec: { ...(moved as WorkloadEntry).spec, ports: { http: 9090 } } } as NetworkingResource) : moved;
    };
    expect(controller.setConfig(bookinfo(remapped)).path).toBe("endpoints");
    for (const [i, key] of keys.entries()) {
      if (i === 2) expect(inbound(key), "reviews-v2").not.toBe(before[i]);
      else expect(inbound(key), `sidecar ${i}`).toBe(before[i]);
    }
    expect(Object.keys(contents(cache.get(keys[2]!)!)[XDS_TYPES.listener]!).some((n) => n.includes("9090")) || JSON.stringify(cache.get(keys[2]!)!.input).includes("9090")).toBe(true);
    const fresh = start(bookinfo(remapped));
    for (const [i, key] of keys.entries()) expect(contents(cache.get(key)!)).toEqual(contents(fresh.cache.get(fresh.keys[i]!)!));
  });

  it("applying the same config again changes nothing and wakes nobody", () => {
    const { controller } = start(bookinfo());
    const stats = controller.setConfig(bookinfo());
    expect(stats.path).toBe("none");
    expect(stats.changed).toBe(0);
  });

  it("a route change takes the services path: routes change, endpoints do not, only the named service is translated again", () => {
    const { controller, cache, keys } = start(bookinfo());
    const before = contents(cache.get(keys[0]!)!);
    const edited = bookinfo((r) => (r.kind === "VirtualService" && r.metadata.name === "reviews" ? ({ ...r, spec: { hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews", subset: "v3" } }] }] } } as NetworkingResource) : r));
    const stats = controller.setConfig(edited);
    expect(stats.path).toBe("services");
    expect(stats.translatedServices).toBeGreaterThan(0);
    expect(stats.reusedServices).toBeGreaterThan(stats.translatedServices!);
    const after = contents(cache.get(keys[0]!)!);
    expect(after[XDS_TYPES.route]).not.toEqual(before[XDS_TYPES.route]);
    expect(after[XDS_TYPES.endpoint]).toEqual(before[XDS_TYPES.endpoint]);
    const fresh = start(edited);
    for (const [i, key] of keys.entries()) expect(contents(cache.get(key)!)).toEqual(contents(fresh.cache.get(fresh.keys[i]!)!));
  });

  it("a route-only change keeps every sidecar's local part (inbound listener and clusters): the same object, not rebuilt", () => {
    const { controller, cache, keys } = start(bookinfo());
    const inbound = (k: string) => cache.get(k)!.parts.find((p) => p.resources(XDS_TYPES.listener).resources.has("virtualInbound"));
    const before = keys.map(inbound);
    expect(before.every((p) => p !== undefined)).toBe(true);
    const edited = bookinfo((r) => (r.kind === "VirtualService" && r.metadata.name === "reviews" ? ({ ...r, spec: { hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews", subset: "v3" } }] }] } } as NetworkingResource) : r));
    expect(controller.setConfig(edited).path).toBe("services");
    for (const [i, key] of keys.entries()) expect(inbound(key)).toBe(before[i]);
    // A service of their namespace redefined: rebuilt (and still as a fresh generation would).
    const moved = withExtra([], detailsOn(9081));
    expect(controller.setConfig(moved).path).toBe("services");
    for (const [i, key] of keys.entries()) expect(inbound(key)).not.toBe(before[i]);
    const fresh = start(moved);
    for (const [i, key] of keys.entries()) expect(contents(cache.get(key)!)).toEqual(contents(fresh.cache.get(fresh.keys[i]!)!));
  });

  it("a service the mesh settings' authorizer runs as, redefined in another namespace: sidecars' inbound CUSTOM filters follow (as a fresh generation)", () => {
    const settings = { authorizationProviders: [{ name: "http-authz", envoyExtAuthzHttp: { service: "ext-authz.authz.svc.cluster.local", port: 8000 } }] };
    const authorizer = (port: number) =>
      ({ apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "ext-authz", namespace: "authz" }, spec: { hosts: ["ext-authz.authz.svc.cluster.local"], ports: [{ number: port, name: "http", protocol: "HTTP" }], resolution: "STATIC", endpoints: [{ address: "10.9.9.8" }] } }) as NetworkingResource;
    const policy = { apiVersion: "security.istio.io/v1", kind: "AuthorizationPolicy", metadata: { name: "ext", namespace: "bookinfo" }, spec: { action: "CUSTOM", provider: { name: "http-authz" }, rules: [{ to: [{ operation: { paths: ["/admin"] } }] }] } } as unknown as NetworkingResource;
    const startWith = (config: MeshConfig) => {
      const cache = new SnapshotCache();
      const controller = new MeshController(cache, silentLogger(), settings);
      controller.setConfig(config);
      return { controller, cache, keys: NODES.map((n) => controller.nodeKey(n)) };
    };
    const from = withExtra([authorizer(8000), policy]);
    const to = withExtra([authorizer(8001), policy]);
    const { controller, cache, keys } = startWith(from);
    expect(controller.setConfig(to).path).toBe("services");
    const fresh = startWith(to);
    for (const [i, key] of keys.entries()) expect(contents(cache.get(key)!)).toEqual(contents(fresh.cache.get(fresh.keys[i]!)!));
  });

  // Each change, applied to a running controller, must give exactly what a controller that
  // starts from the changed config generates (the services path reuses pieces of the others).
  const routeTo = (name: string, hosts: string[], to: string): NetworkingResource =>
    ({ apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name, namespace: "bookinfo" }, spec: { hosts, http: [{ route: [{ destination: { host: to } }] }] } }) as NetworkingResource;
  const withExtra = (extra: NetworkingResource[], edit: (r: NetworkingResource) => NetworkingResource | undefined = (r) => r): MeshConfig => {
    const base = bookinfo(edit);
    return { ...base, resources: [...base.resources, ...extra.map((resource, i) => ({ resource, source: { file: "extra.yaml", document: i } }))] };
  };
  const detailsOn = (port: number) => (r: NetworkingResource) =>
    r.kind === "ServiceEntry" && r.metadata.name === "details" ? ({ ...r, spec: { ...r.spec, ports: [{ number: port, name: "http", protocol: "HTTP" }] } } as NetworkingResource) : r;
  const extraService = { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "extra", namespace: "bookinfo" }, spec: { hosts: ["extra.bookinfo.svc.cluster.local"], ports: [{ number: 7070, name: "http", protocol: "HTTP" }], resolution: "STATIC", endpoints: [{ address: "10.9.9.9" }] } } as NetworkingResource;
  const changes: { name: string; from: MeshConfig; to: MeshConfig; path: string }[] = [
    {
      name: "a DestinationRule's hash policy (clusters of its host, routes that route there)",
      from: withExtra([routeTo("ratings", ["ratings"], "reviews")]),
      to: withExtra([routeTo("ratings", ["ratings"], "reviews")], (r) =>
        r.kind === "DestinationRule" ? ({ ...r, spec: { ...r.spec, trafficPolicy: { loadBalancer: { consistentHash: { httpCookie: { name: "u", ttl: "10s" } } } } } } as NetworkingResource) : r,
      ),
      path: "services",
    },
    { name: "a service's ports (routes to it from other services' VirtualServices)", from: withExtra([routeTo("pp", ["productpage"], "details")]), to: withExtra([routeTo("pp", ["productpage"], "details")], detailsOn(9081)), path: "services" },
    { name: "a VirtualService added", from: bookinfo(), to: withExtra([routeTo("ratings", ["ratings"], "details")]), path: "services" },
    { name: "a VirtualService removed", from: withExtra([routeTo("ratings", ["ratings"], "details")]), to: bookinfo(), path: "services" },
    { name: "a service added", from: withExtra([routeTo("pp", ["productpage"], "extra")]), to: withExtra([routeTo("pp", ["productpage"], "extra"), extraService]), path: "services" },
    { name: "a service removed", from: withExtra([extraService]), to: bookinfo(), path: "services" },
    {
      name: "a DestinationRule added",
      from: withExtra([routeTo("pp", ["productpage"], "ratings")]),
      to: withExtra([routeTo("pp", ["productpage"], "ratings"), { apiVersion: "networking.istio.io/v1", kind: "DestinationRule", metadata: { name: "ratings", namespace: "bookinfo" }, spec: { host: "ratings", trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true } } } } } as NetworkingResource]),
      path: "services",
    },
  ];
  for (const c of changes) {
    it(`${c.name}: as a fresh generation would`, () => {
      const { controller, cache, keys } = start(c.from);
      expect(controller.setConfig(c.to).path).toBe(c.path);
      const fresh = start(c.to);
      for (const [i, key] of keys.entries()) expect(contents(cache.get(key)!)).toEqual(contents(fresh.cache.get(fresh.keys[i]!)!));
    });
  }

  it("pieces dropped by the EDS fast path are not reused later (endpoints, then a route change)", () => {
    const { controller, cache, keys } = start(bookinfo());
    expect(controller.setConfig(bookinfo(moveReviewsV2("10.77.0.99"))).path).toBe("endpoints");
    const both = withExtra([routeTo("ratings", ["ratings"], "details")], moveReviewsV2("10.77.0.99"));
    expect(controller.setConfig(both).path).toBe("services");
    const fresh = start(both);
    for (const [i, key] of keys.entries()) expect(contents(cache.get(key)!)).toEqual(contents(fresh.cache.get(fresh.keys[i]!)!));
  });

  it("a workload whose labels change is not an endpoint-only change", () => {
    const { controller } = start(bookinfo());
    const relabel = (r: NetworkingResource) =>
      r.kind === "WorkloadEntry" && r.metadata.name === "reviews-v2" ? ({ ...r, spec: { ...(r as WorkloadEntry).spec, labels: { app: "reviews", version: "v3" } } } as NetworkingResource) : r;
    expect(controller.setConfig(bookinfo(relabel)).path).toBe("full");
  });
});
