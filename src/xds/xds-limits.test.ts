// What a hostile client can make the xDS server store, log or echo: everything is bounded, a
// client over a bound gets a clear status, and nothing of a stream stays once it is gone.
// Real gRPC over loopback (raw HTTP/2 client: it sends what Envoy never would).
import { Writable } from "node:stream";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DeltaDiscoveryRequest, DiscoveryRequest, DiscoveryResponse } from "../../generated/envoy/service/discovery/v3/discovery.js";
import { buildAdminServer } from "../admin/admin-server.js";
import { SnapshotCache } from "../cache/snapshot-cache.js";
import { Snapshot } from "../cache/snapshot.js";
import { buildEdsCluster, buildHttpListener, buildLoadAssignment, buildPrefixRoutes } from "../envoy/builders.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import { createLogger } from "../log/logger.js";
import { RawXdsClient, type RawXdsStream } from "./raw-xds-client.js";
import { DEFAULT_XDS_LIMITS, type XdsLimits } from "./xds-limits.js";
import { heapAfterGcMb } from "../runner/heap-after-gc.js";
import { XdsMetrics } from "./xds-metrics.js";
import { XdsServer } from "./xds-server.js";


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await sleep(10);
  }
}

function fixture(): Snapshot {
  const names = ["a", "b"];
  return Snapshot.build({
    [XDS_TYPES.cluster]: names.map((name) => buildEdsCluster({ name })),
    [XDS_TYPES.endpoint]: names.map((n) => buildLoadAssignment(n, [{ address: "127.0.0.1", port: 9000 }])),
    [XDS_TYPES.listener]: [buildHttpListener({ name: "http", address: "127.0.0.1", port: 10000, routeConfigName: "routes" })],
    [XDS_TYPES.route]: [buildPrefixRoutes("routes", [{ prefix: "/", cluster: "a" }])],
  });
}

let server: XdsServer;
let cache: SnapshotCache;
let metricsRegistry: Registry;
let logBytes = 0;
let raw: RawXdsClient;

async function start(limits: Partial<XdsLimits> = {}): Promise<void> {
  metricsRegistry = new Registry();
  cache = new SnapshotCache();
  cache.set("n", fixture());
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logBytes += chunk.length;
      cb();
    },
  });
  server = new XdsServer({ source: cache, metrics: new XdsMetrics(metricsRegistry), logger: createLogger({ level: "info", destination: sink }), limits });
  const port = await server.listen("127.0.0.1", 0);
  raw = new RawXdsClient(`127.0.0.1:${port}`);
}

afterEach(async () => {
  raw?.close();
  await server?.close(200);
});

beforeEach(() => {
  logBytes = 0;
});

const sotw = (r: DiscoveryRequest) => DiscoveryRequest.encode(r).finish();
const delta = (r: DeltaDiscoveryRequest) => DeltaDiscoveryRequest.encode(r).finish();

async function firstResponse(s: RawXdsStream): Promise<DiscoveryResponse> {
  await until(() => s.messages.length > 0);
  return DiscoveryResponse.decode(s.messages[0]!);
}

describe("xDS bounds on what clients send", () => {
  it("a NACK's error text is cut to 4 KiB before it is stored, logged or shown; the recent-NACK ring is bounded in bytes; nothing stays when the streams leave", async () => {
    await start();
    const streams = 24;
    const message = "E".repeat(3 * 2 ** 20); // under the 4 MiB request bound
    const baseline = heapAfterGcMb();
    for (let i = 0; i < streams; i++) {
      const s = raw.open("sotw");
      s.send(sotw({ node: { id: "n" }, typeUrl: XDS_TYPES.cluster }));
      const res = await firstResponse(s);
      const nacked = new Promise((resolve) => server.registry.once("nack", resolve));
      s.send(sotw({ typeUrl: XDS_TYPES.cluster, responseNonce: res.nonce, errorDetail: { code: 3, message: `${i}:${message}` } }));
      await nacked;
      const [status] = server.registry.list().filter((p) => p.nodeId === "n");
      const text = status!.types.cds!.lastNack!.message;
      expect(text.startsWith(`${i}:EEEE`)).toBe(true);
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(DEFAULT_XDS_LIMITS.maxNackMessageBytes + 60);
      expect(text).toContain("truncated");
      s.cancel();
      await s.ended;
    }
    await until(() => server.streamCount === 0);
    const recent = server.registry.recentNacks();
    expect(recent.length).toBeGreaterThan(0);
    expect(recent.reduce((n, r) => n + r.message.length, 0)).toBeLessThanOrEqual(DEFAULT_XDS_LIMITS.maxRecentNackBytes);
    // 24 x 3 MB were received: under 1 MB of log, and the memory came back.
    expect(logBytes).toBeLessThan(2 ** 20);
    expect(heapAfterGcMb() - baseline).toBeLessThan(16);
  });

  it("the recent-NACK ring keeps the newest NACKs within its count and byte bounds", async () => {
    await start({ maxRecentNacks: 5, maxRecentNackBytes: 8 * 1024 });
    for (let i = 0; i < 12; i++) {
      server.registry.recordNack({ nodeId: "n", type: "cds", version: "v", nonce: String(i), message: "m".repeat(3000), code: 3, at: "t" });
    }
    const nonces = server.registry.recentNacks().map((n) => n.nonce);
    expect(nonces).toEqual(["10", "11"]); // 3 KB each: two fit in 8 KiB
    expect(server.registry.recentNackBytes).toBeLessThanOrEqual(8 * 1024);
  });

  it("a type_url over 256 characters ends the stream with INVALID_ARGUMENT and is logged once, cut short; an unsupported one is logged once per stream", async () => {
    await start();
    const s = raw.open("sotw");
    s.send(sotw({ node: { id: "n" }, typeUrl: XDS_TYPES.cluster }));
    await firstResponse(s);
    const before = logBytes;
    const huge = "type.googleapis.com/" + "x".repeat(2 * 2 ** 20);
    s.send(sotw({ typeUrl: huge }));
    s.send(sotw({ typeUrl: huge }));
    const end = await s.ended;
    expect(end.code).toBe(3);
    expect(end.message).toMatch(/type_url is \d+ characters long; at most 256/);
    expect(end.message!.length).toBeLessThan(300);
    expect(logBytes - before).toBeLessThan(2048);

    const u = raw.open("sotw");
    u.send(sotw({ node: { id: "n" }, typeUrl: XDS_TYPES.cluster }));
    await firstResponse(u);
    const before2 = logBytes;
    for (let i = 0; i < 50; i++) u.send(sotw({ typeUrl: `type.googleapis.com/unknown.Type${i}` }));
    await sleep(200);
    expect(logBytes - before2).toBeLessThan(1024);
    const ignored = await metricsRegistry.getSingleMetric("weft_xds_requests_ignored_total")!.get();
    expect(ignored.values.reduce((n, v) => n + v.value, 0)).toBe(50);
  });

  it("a message over the 4 MiB request bound is refused by gRPC before it is decoded", async () => {
    await start();
    const s = raw.open("sotw");
    s.send(sotw({ node: { id: "n" }, typeUrl: XDS_TYPES.cluster, resourceNames: ["x".repeat(5 * 2 ** 20)] }));
    const end = await s.ended;
    expect(end.code).toBe(8); // RESOURCE_EXHAUSTED
    expect(server.registry.size).toBe(0);
  });

  it("node fields echoed in /debug/syncz and logs are bounded; an over-long node.id is refused", async () => {
    await start();
    const metadata: Record<string, unknown> = { NAMESPACE: "default", blob: "b".repeat(1_000_000) };
    for (let i = 0; i < 20_000; i++) metadata[`key-${i}`] = `value-${i}`;
    const s = raw.open("sotw");
    s.send(sotw({ node: { id: "n", cluster: "c".repeat(500_000), userAgentName: "u".repeat(100_000), metadata }, typeUrl: XDS_TYPES.cluster }));
    await firstResponse(s);
    const admin = buildAdminServer({ metricsRegistry, proxies: server.registry, cache, isReady: () => ({ ready: true }) });
    const syncz = await admin.inject({ method: "GET", url: "/debug/syncz" });
    expect(syncz.statusCode).toBe(200);
    expect(syncz.rawPayload.length).toBeLessThan(32 * 1024);
    const [proxy] = (JSON.parse(syncz.payload) as { proxies: { cluster: string; metadata: Record<string, unknown> }[] }).proxies;
    expect(proxy!.metadata.NAMESPACE).toBe("default");
    expect(proxy!.cluster).toContain("500000 characters");
    expect(logBytes).toBeLessThan(8 * 1024);
    await admin.close();

    const bad = raw.open("sotw");
    bad.send(sotw({ node: { id: "i".repeat(5000) }, typeUrl: XDS_TYPES.cluster }));
    const end = await bad.ended;
    expect(end.code).toBe(3);
    expect(end.message).toMatch(/node.id is 5000 characters long; at most 1024/);
  });

  it("SotW: more names than the bound in one request ends the stream with RESOURCE_EXHAUSTED", async () => {
    await start({ maxNamesPerType: 1000 });
    const s = raw.open("sotw");
    s.send(sotw({ node: { id: "n" }, typeUrl: XDS_TYPES.endpoint, resourceNames: Array.from({ length: 1500 }, (_, i) => `cluster-${i}`) }));
    const end = await s.ended;
    expect(end.code).toBe(8);
    expect(end.message).toMatch(/1500 resource names .* for EDS; at most 1000 names/);
    const ok = raw.open("sotw");
    ok.send(sotw({ node: { id: "n" }, typeUrl: XDS_TYPES.endpoint, resourceNames: Array.from({ length: 900 }, (_, i) => `cluster-${i}`) }));
    await sleep(100);
    expect(server.streamCount).toBe(1);
  });

  it("delta: subscriptions accumulate across requests only up to the bound (count and bytes); initial_resource_versions too", async () => {
    await start({ maxNamesPerType: 1000, maxNameBytesPerType: 64 * 1024 });
    const s = raw.open("delta");
    const names = (from: number, n: number, pad = "") => Array.from({ length: n }, (_, i) => `cluster-${from + i}${pad}`);
    s.send(delta({ node: { id: "n" }, typeUrl: XDS_TYPES.endpoint, resourceNamesSubscribe: names(0, 600) }));
    await sleep(50);
    s.send(delta({ typeUrl: XDS_TYPES.endpoint, resourceNamesSubscribe: names(600, 600) }));
    const end = await s.ended;
    expect(end.code).toBe(8);
    expect(end.message).toMatch(/1200 resource names/);

    const b = raw.open("delta");
    b.send(delta({ node: { id: "n" }, typeUrl: XDS_TYPES.endpoint, resourceNamesSubscribe: names(0, 100, "x".repeat(1000)) }));
    const endB = await b.ended;
    expect(endB.code).toBe(8);
    expect(endB.message).toMatch(/bytes\) for EDS; at most 1000 names and 65536 bytes/);

    const c = raw.open("delta");
    c.send(delta({ node: { id: "n" }, typeUrl: XDS_TYPES.cluster, initialResourceVersions: Object.fromEntries(names(0, 1001).map((n) => [n, "v"])) }));
    const endC = await c.ended;
    expect(endC.code).toBe(8);
    expect(endC.message).toMatch(/1001 initial_resource_versions entries/);
    const refused = await metricsRegistry.getSingleMetric("weft_xds_streams_refused_total")!.get();
    expect(Object.fromEntries(refused.values.map((v) => [v.labels.reason, v.value]))).toEqual({ names: 2, initial_versions: 1 });
  });

  it("per-stream state is released when streams close: heap returns to baseline after 200 delta streams with 5000 names each", async () => {
    await start();
    const baseline = heapAfterGcMb();
    const streams: RawXdsStream[] = [];
    for (let i = 0; i < 200; i++) {
      const s = raw.open("delta");
      s.send(delta({ node: { id: `n-${i}` }, typeUrl: XDS_TYPES.endpoint, resourceNamesSubscribe: Array.from({ length: 5000 }, (_, k) => `stream-${i}-cluster-${k}`) }));
      streams.push(s);
    }
    await until(() => server.registry.size === 200, 20_000);
    const loaded = heapAfterGcMb();
    expect(loaded - baseline).toBeGreaterThan(20); // the subscriptions really were held
    for (const s of streams) s.cancel();
    await until(() => server.streamCount === 0 && server.registry.size === 0, 10_000);
    await sleep(100);
    expect(heapAfterGcMb() - baseline).toBeLessThan(8);
  }, 60_000);
});
