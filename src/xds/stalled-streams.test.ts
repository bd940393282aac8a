// A slow or stalled client must not delay others: streams that never read cannot keep the
// shared push budget, and a stream that stops answering is ended after a bound. Real gRPC
// over loopback; the stalled clients are raw HTTP/2 streams that never read (the HTTP/2
// window fills and the server's bytes stay queued), the good one an Envoy-like client.
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { DiscoveryRequest } from "../../generated/envoy/service/discovery/v3/discovery.js";
import { SnapshotCache } from "../cache/snapshot-cache.js";
import { Snapshot } from "../cache/snapshot.js";
import { buildEdsCluster, buildHttpListener, buildLoadAssignment, buildPrefixRoutes } from "../envoy/builders.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import { silentLogger } from "../log/logger.js";
import { RawXdsClient, type RawStreamEnd } from "./raw-xds-client.js";
import { SimulatedClient } from "./simulated-client.js";
import type { XdsLimits } from "./xds-limits.js";
import { XdsMetrics } from "./xds-metrics.js";
import { XdsServer } from "./xds-server.js";

const CLUSTERS = 3000; // a CDS response of ~300 KB: far more than a client's HTTP/2 window

function snapshot(route: string): Snapshot {
  const names = Array.from({ length: CLUSTERS }, (_, i) => `outbound|8080||service-${i}.stalled-test.svc.cluster.local`);
  return Snapshot.build({
    [XDS_TYPES.cluster]: names.map((name) => buildEdsCluster({ name })),
    [XDS_TYPES.endpoint]: names.map((n) => buildLoadAssignment(n, [{ address: "127.0.0.1", port: 9000 }])),
    [XDS_TYPES.listener]: [buildHttpListener({ name: "http", address: "127.0.0.1", port: 10000, routeConfigName: "routes" })],
    [XDS_TYPES.route]: [buildPrefixRoutes("routes", [{ prefix: route, cluster: names[0]! }])],
  });
}

let server: XdsServer;
let registry: Registry;
const cleanups: (() => void)[] = [];

async function start(maxInflightBytes: number, limits: Partial<XdsLimits>): Promise<{ cache: SnapshotCache; target: string }> {
  registry = new Registry();
  const cache = new SnapshotCache();
  cache.set("shared", snapshot("/v0"));
  server = new XdsServer({ source: cache, metrics: new XdsMetrics(registry), logger: silentLogger(), maxInflightBytes, limits });
  const port = await server.listen("127.0.0.1", 0);
  return { cache, target: `127.0.0.1:${port}` };
}

async function metric(name: string): Promise<Record<string, number>> {
  const m = await registry.getSingleMetric(name)!.get();
  return Object.fromEntries(m.values.map((v) => [Object.values(v.labels).join(",") || "", v.value]));
}

afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await server?.close(200);
});

describe("stalled xDS streams", () => {
  it("40 streams that never read do not keep a well-behaved proxy from syncing and getting its update; they are cut off", async () => {
    // A 2 MiB budget: the stalled streams' responses alone ask for ~12 MB of it.
    const { cache, target } = await start(2 * 2 ** 20, { budgetHoldMs: 2000, budgetUnreadHoldMs: 200, stallTimeoutMs: 60_000 });
    const ends: Promise<RawStreamEnd>[] = [];
    for (let i = 0; i < 40; i++) {
      const c = new RawXdsClient(target); // one connection each, as separate proxies
      cleanups.push(() => c.close());
      const s = c.open("sotw", { read: false });
      s.send(DiscoveryRequest.encode({ node: { id: "shared" }, typeUrl: XDS_TYPES.cluster }).finish());
      s.send(DiscoveryRequest.encode({ typeUrl: XDS_TYPES.listener }).finish());
      ends.push(s.ended);
    }
    await new Promise((r) => setTimeout(r, 200));
    const good = new SimulatedClient({ target, nodeId: "shared", mode: "sotw" });
    cleanups.push(() => good.close());
    good.start();
    // Generous bounds, far below the 30 s the stalled streams used to hold the budget for.
    await good.waitFor(() => good.names(XDS_TYPES.route).length === 1 && good.names(XDS_TYPES.endpoint).length === CLUSTERS, 15_000, "first sync");
    const next = snapshot("/v1");
    cache.set("shared", next);
    await good.waitFor(() => good.acceptedVersion.get(XDS_TYPES.route) === next.resources(XDS_TYPES.route).version, 10_000, "route update");

    // The stalled streams were cut (reset: they read nothing, not even a status), which freed
    // what was queued for them; overdue bytes stay within the bound.
    const refused = await metric("weft_xds_streams_refused_total");
    expect(refused.overdue ?? 0).toBeGreaterThan(20);
    const ended = await Promise.all(ends.slice(0, 10).map((e) => Promise.race([e, new Promise<undefined>((r) => setTimeout(r, 5000))])));
    expect(ended.every((e) => e !== undefined && (e.rstCode === 8 || e.code === 8))).toBe(true);
    expect((await metric("weft_xds_overdue_bytes"))[""]).toBeLessThanOrEqual(2 * 2 ** 20);
    expect(server.registry.list().filter((p) => p.userAgent !== "weft-simulated-client").length).toBeLessThan(40);
  }, 40_000);

  it("a stream that reads but never answers is ended with DEADLINE_EXCEEDED after the stall timeout, with a message saying why", async () => {
    const { target } = await start(256 * 2 ** 20, { stallTimeoutMs: 1000 });
    const c = new RawXdsClient(target);
    cleanups.push(() => c.close());
    const s = c.open("sotw", { read: true });
    s.send(DiscoveryRequest.encode({ node: { id: "shared" }, typeUrl: XDS_TYPES.cluster }).finish());
    const end = await Promise.race([s.ended, new Promise<undefined>((r) => setTimeout(r, 8000))]);
    expect(end?.code).toBe(4);
    expect(end?.message).toMatch(/no answer within 1 s to the CDS response \(nonce .*, \d+ bytes\): the proxy read it but sent no ACK or NACK/);
    expect(s.messages.length).toBe(1);
    expect((await metric("weft_xds_streams_refused_total")).stalled).toBe(1);
    expect(server.streamCount).toBe(0);
  }, 20_000);

  it("a stream that never reads is ended at the stall timeout even without pressure on the budget, and reset", async () => {
    const { target } = await start(256 * 2 ** 20, { stallTimeoutMs: 1000 });
    const c = new RawXdsClient(target);
    cleanups.push(() => c.close());
    const s = c.open("sotw", { read: false });
    s.send(DiscoveryRequest.encode({ node: { id: "shared" }, typeUrl: XDS_TYPES.cluster }).finish());
    const end = await Promise.race([s.ended, new Promise<undefined>((r) => setTimeout(r, 8000))]);
    expect(end?.rstCode).toBe(8);
    expect((await metric("weft_xds_streams_refused_total")).stalled).toBe(1);
  }, 20_000);
});
