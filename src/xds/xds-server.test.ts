import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Cluster } from "../../generated/envoy/config/cluster/v3/cluster.js";
import { ResourceSet, Snapshot, type SnapshotInput } from "../cache/snapshot.js";
import { ClusterLoadAssignment } from "../../generated/envoy/config/endpoint/v3/endpoint.js";
import { InconsistentSnapshotError, SnapshotCache } from "../cache/snapshot-cache.js";
import { buildEdsCluster, buildHttpListener, buildLoadAssignment, buildPrefixRoutes } from "../envoy/builders.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import { silentLogger } from "../log/logger.js";
import { SimulatedClient } from "./simulated-client.js";
import { XdsMetrics } from "./xds-metrics.js";
import { XdsServer } from "./xds-server.js";

const NODE = "sidecar~10.0.0.1~app-1.default~default.svc.cluster.local";

function fixture(opts: { clusters?: string[]; routeTo?: string; endpointPort?: number; listenerPort?: number } = {}): SnapshotInput {
  const clusters = opts.clusters ?? ["a", "b"];
  return {
    [XDS_TYPES.cluster]: clusters.map((name) => buildEdsCluster({ name })),
    [XDS_TYPES.endpoint]: clusters.map((name, i) => buildLoadAssignment(name, [{ address: "127.0.0.1", port: (opts.endpointPort ?? 9000) + i }])),
    [XDS_TYPES.listener]: [buildHttpListener({ name: "http", address: "127.0.0.1", port: opts.listenerPort ?? 10000, routeConfigName: "http-routes" })],
    [XDS_TYPES.route]: [buildPrefixRoutes("http-routes", [{ prefix: "/", cluster: opts.routeTo ?? clusters[0]! }])],
  };
}

describe.each(["sotw", "delta"] as const)("xDS server (%s)", (mode) => {
  let cache: SnapshotCache;
  let server: XdsServer;
  let metrics: XdsMetrics;
  let registry: Registry;
  let target: string;
  const clients: SimulatedClient[] = [];

  function client(nodeId = NODE): SimulatedClient {
    const c = new SimulatedClient({ target, nodeId, mode });
    clients.push(c);
    c.start();
    return c;
  }

  const synced = (c: SimulatedClient) =>
    c.names(XDS_TYPES.cluster).length > 0 &&
    c.names(XDS_TYPES.endpoint).length === c.names(XDS_TYPES.cluster).length &&
    c.names(XDS_TYPES.route).length === 1;

  beforeEach(async () => {
    registry = new Registry();
    metrics = new XdsMetrics(registry);
    cache = new SnapshotCache();
    server = new XdsServer({ source: cache, metrics, logger: silentLogger() });
    target = `127.0.0.1:${await server.listen("127.0.0.1", 0)}`;
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server.close(1000);
  });

  it("delivers a consistent snapshot: CDS, the EDS it names, LDS, the RDS it names, in that order", async () => {
    cache.set(NODE, Snapshot.build(fixture()));
    const c = client();
    await c.waitFor(() => synced(c), 5000, "initial sync");
    expect(c.names(XDS_TYPES.cluster)).toEqual(["a", "b"]);
    expect(c.names(XDS_TYPES.endpoint)).toEqual(["a", "b"]);
    expect(c.names(XDS_TYPES.listener)).toEqual(["http"]);
    expect(c.names(XDS_TYPES.route)).toEqual(["http-routes"]);
    const order = c.responses.map((r) => r.typeUrl);
    expect(order.indexOf(XDS_TYPES.cluster)).toBeLessThan(order.indexOf(XDS_TYPES.endpoint));
    expect(order.indexOf(XDS_TYPES.endpoint)).toBeLessThan(order.indexOf(XDS_TYPES.listener));
    expect(order.indexOf(XDS_TYPES.listener)).toBeLessThan(order.indexOf(XDS_TYPES.route));
    // Every response was ACKed and the server knows it.
    await new Promise((r) => setTimeout(r, 50));
    const [status] = server.registry.byNode(NODE);
    expect(status?.api).toBe(mode);
    for (const t of ["cds", "eds", "lds", "rds"]) {
      expect(status?.types[t]?.pending).toBe(false);
      expect(status?.types[t]?.ackedVersion).toBe(status?.types[t]?.sentVersion);
    }
  });

  it("waits for a snapshot when none exists yet, then pushes it", async () => {
    const c = client();
    await new Promise((r) => setTimeout(r, 100));
    expect(c.responses).toHaveLength(0);
    cache.set(NODE, Snapshot.build(fixture()));
    await c.waitFor(() => synced(c), 5000, "sync after late snapshot");
  });

  it("an endpoint change sends only EDS, and only the changed resource", async () => {
    cache.set(NODE, Snapshot.build(fixture()));
    const c = client();
    await c.waitFor(() => synced(c), 5000, "initial sync");
    const before = c.responses.length;
    const next = fixture();
    next[XDS_TYPES.endpoint] = [buildLoadAssignment("a", [{ address: "127.0.0.1", port: 9100 }]), buildLoadAssignment("b", [{ address: "127.0.0.1", port: 9001 }])];
    cache.set(NODE, Snapshot.build(next));
    await c.waitFor(() => c.responses.length > before, 5000, "EDS push");
    await new Promise((r) => setTimeout(r, 100));
    const pushed = c.responses.slice(before);
    expect(pushed.map((r) => r.typeUrl)).toEqual([XDS_TYPES.endpoint]);
    expect(pushed[0]!.names).toEqual(["a"]);
  });

  it("EDS fast path: replaced endpoints of a composed snapshot reach the proxy alone, also when changes pile up", async () => {
    const [shared, main] = [ResourceSet.build({ [XDS_TYPES.cluster]: [buildEdsCluster({ name: "z" })], [XDS_TYPES.endpoint]: [buildLoadAssignment("z", [{ address: "127.0.0.1", port: 9900 }])] }), ResourceSet.build(fixture())];
    let current = Snapshot.compose([shared, main]);
    cache.set(NODE, current);
    const c = client();
    await c.waitFor(() => synced(c) && c.names(XDS_TYPES.endpoint).length === 3, 5000, "initial sync");
    const before = c.responses.length;
    // One replacement: only EDS, only "a".
    let part = main.replacing(XDS_TYPES.endpoint, [buildLoadAssignment("a", [{ address: "127.0.0.1", port: 9100 }])]);
    cache.set(NODE, (current = Snapshot.compose([shared, part], current)));
    await c.waitFor(() => c.responses.length > before, 5000, "EDS push");
    await new Promise((r) => setTimeout(r, 100));
    expect(c.responses.slice(before).map((r) => [r.typeUrl, r.names])).toEqual([[XDS_TYPES.endpoint, ["a"]]]);
    // Three more in one go (the stream sees at most the last): the proxy ends with all of them.
    for (const [name, port] of [["b", 9201], ["a", 9102], ["b", 9202]] as const) {
      part = part.replacing(XDS_TYPES.endpoint, [buildLoadAssignment(name, [{ address: "127.0.0.1", port }])]);
      cache.set(NODE, (current = Snapshot.compose([shared, part], current)));
    }
    const expected = { a: 9102, b: 9202, z: 9900 };
    const portOf = (name: string) => {
      const body = c.held.get(XDS_TYPES.endpoint)?.get(name)?.body;
      return body ? ClusterLoadAssignment.decode(body).endpoints?.[0]?.lbEndpoints?.[0]?.endpoint?.address?.socketAddress?.portValue : undefined;
    };
    await c.waitFor(() => Object.entries(expected).every(([n, port]) => portOf(n) === port), 5000, "all replacements");
    expect(c.responses.slice(before).every((r) => r.typeUrl === XDS_TYPES.endpoint)).toBe(true);
  });

  it("with a push budget smaller than one response, proxies are served one at a time and all sync; nothing stays in flight", async () => {
    await server.close(1000);
    server = new XdsServer({ source: cache, metrics, logger: silentLogger(), maxInflightBytes: 1 });
    target = `127.0.0.1:${await server.listen("127.0.0.1", 0)}`;
    const nodes = ["n1", "n2", "n3"].map((n) => `sidecar~10.0.0.1~${n}.default~default.svc.cluster.local`);
    for (const n of nodes) cache.set(n, Snapshot.build(fixture()));
    const cs = nodes.map((n) => client(n));
    for (const c of cs) await c.waitFor(() => synced(c), 5000, "sync under a tiny budget");
    await new Promise((r) => setTimeout(r, 50));
    expect((await registry.getSingleMetric("weft_xds_inflight_bytes")?.get())?.values[0]?.value).toBe(0);
  });

  it("re-sends the endpoints of a cluster whose definition changed (Envoy re-warms it)", async () => {
    cache.set(NODE, Snapshot.build(fixture()));
    const c = client();
    await c.waitFor(() => synced(c), 5000, "initial sync");
    const before = c.responses.length;
    const next = fixture();
    next[XDS_TYPES.cluster] = [buildEdsCluster({ name: "a", connectTimeoutMs: 2500 }), buildEdsCluster({ name: "b" })];
    cache.set(NODE, Snapshot.build(next));
    await c.waitFor(() => c.responses.slice(before).some((r) => r.typeUrl === XDS_TYPES.endpoint), 5000, "EDS re-send");
    const pushed = c.responses.slice(before);
    expect(pushed[0]!.typeUrl).toBe(XDS_TYPES.cluster);
    expect(pushed.find((r) => r.typeUrl === XDS_TYPES.endpoint)!.names).toEqual(["a"]);
  });

  it("setting an identical snapshot wakes nobody", async () => {
    cache.set(NODE, Snapshot.build(fixture()));
    const c = client();
    await c.waitFor(() => synced(c), 5000, "initial sync");
    const before = c.responses.length;
    expect(cache.set(NODE, Snapshot.build(fixture()))).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    expect(c.responses.length).toBe(before);
  });

  it("a snapshot change for one key does not wake streams of another key", async () => {
    cache.set("node-1", Snapshot.build(fixture()));
    cache.set("node-2", Snapshot.build(fixture()));
    const c1 = client("node-1");
    const c2 = client("node-2");
    await Promise.all([c1.waitFor(() => synced(c1)), c2.waitFor(() => synced(c2))]);
    const before2 = c2.responses.length;
    cache.set("node-1", Snapshot.build(fixture({ endpointPort: 9500 })));
    await c1.waitFor(() => c1.responses.some((r) => r.typeUrl === XDS_TYPES.endpoint && r.names.length > 0 && r.version !== c1.responses[1]?.version));
    await new Promise((r) => setTimeout(r, 100));
    expect(c2.responses.length).toBe(before2);
  });

  it("removes a cluster only after the routes that used it moved away (make-before-break)", async () => {
    cache.set(NODE, Snapshot.build(fixture({ clusters: ["a", "b"], routeTo: "b" })));
    const c = client();
    await c.waitFor(() => synced(c), 5000, "initial sync");
    const before = c.responses.length;
    cache.set(NODE, Snapshot.build(fixture({ clusters: ["a"], routeTo: "a" })));
    await c.waitFor(() => c.names(XDS_TYPES.cluster).join() === "a", 5000, "cluster b removed");
    const pushed = c.responses.slice(before);
    const routeIdx = pushed.findIndex((r) => r.typeUrl === XDS_TYPES.route);
    const removalIdx = pushed.findIndex((r) => r.typeUrl === XDS_TYPES.cluster && (r.removed.includes("b") || (mode === "sotw" && !r.names.includes("b"))));
    expect(routeIdx).toBeGreaterThanOrEqual(0);
    expect(removalIdx).toBeGreaterThan(routeIdx);
  });

  it("a cluster removed and added back gets its endpoints again (the proxy dropped them)", async () => {
    cache.set(NODE, Snapshot.build(fixture()));
    const c = client();
    await c.waitFor(() => synced(c), 5000, "initial sync");
    cache.set(NODE, Snapshot.build(fixture({ clusters: ["a"] })));
    await c.waitFor(() => c.names(XDS_TYPES.cluster).join() === "a" && c.names(XDS_TYPES.endpoint).join() === "a", 5000, "b removed");
    cache.set(NODE, Snapshot.build(fixture()));
    await c.waitFor(() => c.names(XDS_TYPES.endpoint).sort().join() === "a,b", 5000, "b's endpoints re-sent");
  });

  it("removes a listener", async () => {
    const input = fixture();
    input[XDS_TYPES.listener] = [...input[XDS_TYPES.listener]!, buildHttpListener({ name: "extra", address: "127.0.0.1", port: 10001, routeConfigName: "http-routes" })];
    cache.set(NODE, Snapshot.build(input));
    const c = client();
    await c.waitFor(() => c.names(XDS_TYPES.listener).length === 2 && synced(c), 5000, "two listeners");
    cache.set(NODE, Snapshot.build(fixture()));
    await c.waitFor(() => c.names(XDS_TYPES.listener).join() === "http", 5000, "listener removed");
  });

  it("records a NACK with the proxy's error, never re-sends the rejected version, and ACKs the next one", async () => {
    cache.set(NODE, Snapshot.build(fixture()));
    const c = client();
    await c.waitFor(() => synced(c), 5000, "initial sync");
    c.rejectWhen((typeUrl, names) => (typeUrl === XDS_TYPES.cluster && names.includes("bad") ? "cluster bad: invalid connect_timeout" : undefined));
    const before = c.responses.length;
    cache.set(NODE, Snapshot.build(fixture({ clusters: ["a", "b", "bad"] })));
    await c.waitFor(() => c.responses.slice(before).some((r) => !r.acked), 5000, "NACK");
    await new Promise((r) => setTimeout(r, 200));
    const cdsPushes = c.responses.slice(before).filter((r) => r.typeUrl === XDS_TYPES.cluster);
    expect(cdsPushes).toHaveLength(1); // no re-send loop
    const [status] = server.registry.byNode(NODE);
    expect(status?.types.cds?.lastNack?.message).toBe("cluster bad: invalid connect_timeout");
    expect(status?.types.cds?.nacks).toBe(1);
    expect(status?.types.cds?.ackedVersion).not.toBe(status?.types.cds?.lastNack?.version);
    expect(server.registry.recentNacks()).toHaveLength(1);
    expect((await registry.getSingleMetric("weft_xds_nacks_total")!.get()).values.find((v) => v.labels.type === "cds")?.value).toBe(1);
    // Istio's names for the same counts.
    expect((await registry.getSingleMetric("pilot_total_xds_rejects")!.get()).values.find((v) => v.labels.type === "cds")?.value).toBe(1);
    expect((await registry.getSingleMetric("pilot_xds")!.get()).values[0]?.value).toBe(1);
    const weftCds = (await registry.getSingleMetric("weft_xds_pushes_total")!.get()).values.filter((v) => v.labels.type === "cds").reduce((n, v) => n + v.value, 0);
    expect((await registry.getSingleMetric("pilot_xds_pushes")!.get()).values.find((v) => v.labels.type === "cds")?.value).toBe(weftCds);
    // A later good snapshot is ACKed.
    c.rejectWhen(undefined);
    cache.set(NODE, Snapshot.build(fixture({ clusters: ["a", "c"] })));
    await c.waitFor(() => c.names(XDS_TYPES.cluster).join() === "a,c", 5000, "good snapshot");
    await new Promise((r) => setTimeout(r, 50));
    expect(server.registry.byNode(NODE)[0]?.types.cds?.ackedVersion).toBe(server.registry.byNode(NODE)[0]?.types.cds?.sentVersion);
  });

  it("on reconnect a proxy that already holds the current config gets nothing re-sent", async () => {
    cache.set(NODE, Snapshot.build(fixture()));
    const c = client();
    await c.waitFor(() => synced(c), 5000, "initial sync");
    c.disconnect();
    await new Promise((r) => setTimeout(r, 100));
    expect(server.registry.size).toBe(0);
    const before = c.responses.length;
    c.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(server.registry.size).toBe(1);
    // SotW: types the proxy reports at the current version are not re-sent. Delta: nothing is.
    expect(c.responses.slice(before).filter((r) => r.names.length > 0)).toHaveLength(0);
    // And a change after reconnect is delivered.
    cache.set(NODE, Snapshot.build(fixture({ endpointPort: 9300 })));
    await c.waitFor(() => c.responses.slice(before).some((r) => r.typeUrl === XDS_TYPES.endpoint), 5000, "change after reconnect");
  });

  it("frees per-stream state and watches on disconnect", async () => {
    cache.set(NODE, Snapshot.build(fixture()));
    const cs = [client("n1"), client("n2"), client("n3")];
    for (const k of ["n1", "n2", "n3"]) cache.set(k, Snapshot.build(fixture()));
    await Promise.all(cs.map((c) => c.waitFor(() => synced(c))));
    expect(server.registry.size).toBe(3);
    expect(cache.watcherCount()).toBe(3);
    for (const c of cs) c.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(server.registry.size).toBe(0);
    expect(cache.watcherCount()).toBe(0);
    expect(server.streamCount).toBe(0);
  });
});

describe("snapshot cache", () => {
  it("refuses an inconsistent snapshot and keeps the last good one", () => {
    const cache = new SnapshotCache();
    const good = Snapshot.build(fixture());
    cache.set("k", good);
    const broken = fixture();
    broken[XDS_TYPES.endpoint] = []; // clusters a and b lose their endpoints resource
    broken[XDS_TYPES.route] = [buildPrefixRoutes("http-routes", [{ prefix: "/", cluster: "nope" }])];
    expect(() => cache.set("k", Snapshot.build(broken))).toThrow(InconsistentSnapshotError);
    try {
      cache.set("k", Snapshot.build(broken));
    } catch (e) {
      const msg = (e as Error).message;
      expect(msg).toContain('cluster/a: EDS resource "a" is missing');
      expect(msg).toContain('route/http-routes: virtual host "http-routes-all" routes to cluster "nope" is missing');
    }
    expect(cache.get("k")).toBe(good);
  });

  it("refuses a listener whose RDS name does not exist", () => {
    const input = fixture();
    input[XDS_TYPES.route] = [];
    expect(() => new SnapshotCache().set("k", Snapshot.build(input))).toThrow(/RDS route configuration "http-routes" is missing/);
  });

  it("versions come from content, not order or time", () => {
    const a = Snapshot.build(fixture({ clusters: ["x", "y"] }));
    const input = fixture({ clusters: ["x", "y"] });
    input[XDS_TYPES.cluster] = [...input[XDS_TYPES.cluster]!].reverse();
    const b = Snapshot.build(input);
    expect(b.resources(XDS_TYPES.cluster).version).toBe(a.resources(XDS_TYPES.cluster).version);
    expect(b.version).toBe(a.version);
    const c = Snapshot.build(fixture({ clusters: ["x", "y"], endpointPort: 1 }));
    expect(c.resources(XDS_TYPES.cluster).version).toBe(a.resources(XDS_TYPES.cluster).version);
    expect(c.resources(XDS_TYPES.endpoint).version).not.toBe(a.resources(XDS_TYPES.endpoint).version);
    // The encoded bytes decode back to the same resource.
    const body = a.resources(XDS_TYPES.cluster).resources.get("x")!.body;
    expect(Cluster.decode(body).name).toBe("x");
  });

  it("rejects duplicate names", () => {
    const input = fixture();
    input[XDS_TYPES.cluster] = [buildEdsCluster({ name: "a" }), buildEdsCluster({ name: "a" })];
    expect(() => Snapshot.build(input)).toThrow(/duplicate Cluster resource "a"/);
  });
});
