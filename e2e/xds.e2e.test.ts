// The xDS core against real Envoy, state of the world and delta: config delivery, updates,
// removals, NACK handling and a control-plane restart under traffic.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster_DiscoveryType } from "../generated/envoy/config/cluster/v3/cluster.js";
import { Snapshot, type SnapshotInput } from "../src/cache/snapshot.js";
import { buildEdsCluster, buildHttpListener, buildLoadAssignment, buildPrefixRoutes, durationMs, socketAddress } from "../src/envoy/builders.js";
import { renderBootstrap } from "../src/envoy/bootstrap.js";
import { startEnvoy, stopAllEnvoys, type EnvoyProcess } from "../src/envoy/envoy-process.js";
import { XDS_TYPES } from "../src/envoy/type-urls.js";
import type { ControlPlane } from "../src/runner/control-plane.js";
import { startTestControlPlane, waitForSync } from "./harness/control-plane.js";
import { httpGet, requestLoop } from "./harness/http.js";
import { startUpstream } from "./harness/upstream.js";
import { freePort } from "../src/runner/free-port.js";

type Upstream = Awaited<ReturnType<typeof startUpstream>>;


interface MeshSpec {
  /** cluster name -> upstreams serving it */
  clusters: Record<string, Upstream[]>;
  /** path prefix -> cluster, most specific first */
  routes: { prefix: string; cluster: string }[];
  listeners: { name: string; port: number }[];
}

function snapshotOf(spec: MeshSpec): Snapshot {
  const input: SnapshotInput = {
    [XDS_TYPES.cluster]: Object.keys(spec.clusters).map((name) => buildEdsCluster({ name, connectTimeoutMs: 500 })),
    [XDS_TYPES.endpoint]: Object.entries(spec.clusters).map(([name, ups]) => buildLoadAssignment(name, ups.map((u) => ({ address: u.host, port: u.port })))),
    [XDS_TYPES.listener]: spec.listeners.map((l) => buildHttpListener({ name: l.name, address: "127.0.0.1", port: l.port, routeConfigName: "routes" })),
    [XDS_TYPES.route]: [buildPrefixRoutes("routes", spec.routes)],
  };
  return Snapshot.build(input);
}

/** Dynamic listener and cluster names in Envoy's /config_dump. */
async function dumpNames(envoy: EnvoyProcess): Promise<{ listeners: string[]; clusters: string[] }> {
  const dump = (await envoy.configDump()) as { configs?: { "@type"?: string; dynamic_listeners?: { name: string; active_state?: unknown }[]; dynamic_active_clusters?: { cluster: { name: string } }[] }[] };
  const configs = dump.configs ?? [];
  const listeners = configs.find((c) => c["@type"]?.endsWith("ListenersConfigDump"))?.dynamic_listeners ?? [];
  const clusters = configs.find((c) => c["@type"]?.endsWith("ClustersConfigDump"))?.dynamic_active_clusters ?? [];
  return { listeners: listeners.filter((l) => l.active_state).map((l) => l.name).sort(), clusters: clusters.map((c) => c.cluster.name).sort() };
}

async function upstreamOf(url: string): Promise<string> {
  const res = await httpGet(url, { timeoutMs: 2000 });
  return res.status === 200 ? String(res.headers["x-upstream"]) : `status ${res.status}`;
}

/** Polls until `fn` returns `want` (traffic follows config within a bounded wait). */
async function eventually<T>(fn: () => Promise<T>, want: T, timeoutMs = 10_000): Promise<number> {
  const start = Date.now();
  let last: T | undefined;
  while (Date.now() - start < timeoutMs) {
    try {
      last = await fn();
      if (last === want) return Date.now() - start;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`expected ${String(want)} within ${timeoutMs} ms, last saw ${String(last)}`);
}

describe.each(["sotw", "delta"] as const)("xDS with real Envoy (%s)", (mode) => {
  const nodeId = `e2e-${mode}`;
  let cp: ControlPlane;
  let envoy: EnvoyProcess;
  let a: Upstream, b: Upstream, c: Upstream;
  let port: number;
  let spec: MeshSpec;

  const url = (path: string, p = port) => `http://127.0.0.1:${p}${path}`;
  const apply = async (next: MeshSpec) => {
    spec = next;
    const snap = snapshotOf(next);
    cp.cache.set(nodeId, snap);
    await waitForSync(cp.xds.registry, nodeId, snap);
    return snap;
  };

  beforeAll(async () => {
    [a, b, c] = await Promise.all([startUpstream("a"), startUpstream("b"), startUpstream("c")]);
    port = await freePort();
    cp = await startTestControlPlane();
    spec = { clusters: { "svc-a": [a], "svc-b": [b] }, routes: [{ prefix: "/", cluster: "svc-a" }], listeners: [{ name: "http", port }] };
    cp.cache.set(nodeId, snapshotOf(spec));
    envoy = await startEnvoy({
      name: nodeId,
      bootstrapYaml: renderBootstrap({ nodeId, cluster: "e2e", xdsAddress: "127.0.0.1", xdsPort: cp.xdsPort, deltaXds: mode === "delta" }),
    });
    await waitForSync(cp.xds.registry, nodeId, snapshotOf(spec));
  });

  afterAll(async () => {
    await stopAllEnvoys();
    await cp?.close(1000);
    await Promise.all([a, b, c].map((u) => u?.close()));
  });

  it("delivers listener, route, cluster and endpoints: HTTP through Envoy reaches the upstream", async () => {
    await eventually(() => upstreamOf(url("/hello")), "a");
    const names = await dumpNames(envoy);
    expect(names.listeners).toEqual(["http"]);
    expect(names.clusters).toEqual(["svc-a", "svc-b"]);
    const [status] = cp.xds.registry.byNode(nodeId);
    expect(status?.api).toBe(mode);
    expect(status?.envoyVersion).toMatch(/^1\.\d+\.\d+$/);
  });

  it("a route update moves traffic to another cluster", async () => {
    await apply({ ...spec, routes: [{ prefix: "/b", cluster: "svc-b" }, { prefix: "/", cluster: "svc-a" }] });
    await eventually(() => upstreamOf(url("/b/x")), "b");
    expect(await upstreamOf(url("/other"))).toBe("a");
  });

  it("an endpoint update moves traffic to the new endpoint set", async () => {
    await apply({ ...spec, clusters: { ...spec.clusters, "svc-a": [c] } });
    await eventually(() => upstreamOf(url("/other")), "c");
    const clusters = await envoy.clusters();
    expect(clusters).toContain(`svc-a::127.0.0.1:${c.port}`);
    expect(clusters).not.toContain(`svc-a::127.0.0.1:${a.port}`);
  });

  it("removing a cluster and a listener drops them from Envoy", async () => {
    const extraPort = await freePort();
    await apply({ ...spec, clusters: { ...spec.clusters, "svc-extra": [a] }, listeners: [...spec.listeners, { name: "extra", port: extraPort }] });
    await eventually(async () => (await dumpNames(envoy)).clusters.includes("svc-extra") && (await dumpNames(envoy)).listeners.includes("extra"), true);
    expect(await upstreamOf(url("/", extraPort))).toBe("c");
    const { "svc-extra": _removed, ...clusters } = spec.clusters;
    await apply({ ...spec, clusters, listeners: spec.listeners.filter((l) => l.name !== "extra") });
    await eventually(async () => JSON.stringify(await dumpNames(envoy)), JSON.stringify({ listeners: ["http"], clusters: ["svc-a", "svc-b"] }));
    await expect(httpGet(url("/", extraPort), { timeoutMs: 1000 })).rejects.toThrow();
  });

  it("an invalid resource is NACKed with Envoy's error, the previous config keeps serving, and a later valid snapshot is ACKed", async () => {
    const before = cp.xds.registry.byNode(nodeId)[0]!.types.cds!.ackedVersion;
    const good = snapshotOf(spec);
    const bad = Snapshot.build({
      ...good.input,
      [XDS_TYPES.cluster]: [
        ...(good.input[XDS_TYPES.cluster] ?? []),
        // Passes our consistency check, but Envoy rejects the address.
        { name: "broken", type: Cluster_DiscoveryType.STATIC, connectTimeout: durationMs(500), loadAssignment: { clusterName: "broken", endpoints: [{ lbEndpoints: [{ endpoint: { address: socketAddress("not-an-ip", 80) } }] }] } },
      ],
    });
    const nack = new Promise<{ message: string; version: string }>((resolve) => cp.xds.registry.once("nack", resolve));
    cp.cache.set(nodeId, bad);
    const rejected = await nack;
    expect(rejected.message).toMatch(/not-an-ip/);
    expect(rejected.version).toBe(bad.resources(XDS_TYPES.cluster).version);
    const status = cp.xds.registry.byNode(nodeId)[0]!.types.cds!;
    expect(status.lastNack?.message).toBe(rejected.message);
    expect(status.ackedVersion).toBe(before);
    // No re-send loop: exactly one CDS push of the bad version, traffic still flows.
    await new Promise((r) => setTimeout(r, 500));
    expect(cp.xds.registry.byNode(nodeId)[0]!.types.cds!.nacks).toBe(1);
    expect((await envoy.stats("cluster_manager.cds")).get("cluster_manager.cds.update_rejected")).toBe(1);
    expect(await upstreamOf(url("/other"))).toBe("c");
    expect((await dumpNames(envoy)).clusters).not.toContain("broken");
    // A later valid snapshot is ACKed.
    const next = await apply({ ...spec, routes: [{ prefix: "/", cluster: "svc-b" }] });
    expect(cp.xds.registry.byNode(nodeId)[0]!.types.cds!.ackedVersion).toBe(next.resources(XDS_TYPES.cluster).version);
    await eventually(() => upstreamOf(url("/other")), "b");
    const metrics = await cp.metricsRegistry.getSingleMetric("weft_xds_nacks_total")!.get();
    expect(metrics.values.find((v) => v.labels.type === "cds")?.value).toBe(1);
  });

  it("a control-plane restart under traffic fails no request; Envoy reconnects, resyncs and applies a later change", async () => {
    const xdsPort = cp.xdsPort;
    const loop = requestLoop({ url: url("/other"), count: 150, intervalMs: 20, timeoutMs: 2000 });
    await new Promise((r) => setTimeout(r, 500));
    await cp.close(500);
    await new Promise((r) => setTimeout(r, 1000));
    cp = await startTestControlPlane({ xdsPort });
    const snap = snapshotOf(spec);
    cp.cache.set(nodeId, snap);
    await waitForSync(cp.xds.registry, nodeId, snap, 30_000);
    const result = await loop;
    expect(result.errors).toBe(0);
    expect(result.statuses[200]).toBe(150);
    await apply({ ...spec, routes: [{ prefix: "/", cluster: "svc-a" }] });
    await eventually(() => upstreamOf(url("/other")), "c");
  });
});
