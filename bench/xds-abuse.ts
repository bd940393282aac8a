// Benchmark: what hostile xDS clients cost the control plane (issue 10, item 3 and "stalled
// streams"). One in-process control plane (xDS + admin), clients over real gRPC on loopback:
//
//   nacks    NACKS streams each NACK once with a NACK_MB MB error message, then leave:
//            heap after GC once they are gone, log bytes written, /debug/syncz size.
//   typeurl  TYPEURL_REQUESTS requests with a TYPEURL_MB MB type_url: log bytes per request.
//   stalled  STALLED streams that never read, then one well-behaved client: time to its first
//            sync and to an update (a changed route) under that load.
//
//   npx tsx bench/xds-abuse.ts            (all three)
//   BENCH_ONLY=stalled STALLED=200 npx tsx bench/xds-abuse.ts
//
// Prints one JSON line per scenario; bench/results/xds-abuse.md records the figures.
import { Writable } from "node:stream";
import { DiscoveryRequest, DiscoveryResponse } from "../generated/envoy/service/discovery/v3/discovery.js";
import { Snapshot } from "../src/cache/snapshot.js";
import { buildEdsCluster, buildHttpListener, buildLoadAssignment, buildPrefixRoutes } from "../src/envoy/builders.js";
import { XDS_TYPES } from "../src/envoy/type-urls.js";
import { createLogger } from "../src/log/logger.js";
import { startControlPlane } from "../src/runner/control-plane.js";
import { heapAfterGcMb } from "../src/runner/heap-after-gc.js";
import { RawXdsClient } from "../src/xds/raw-xds-client.js";
import { SimulatedClient } from "../src/xds/simulated-client.js";

const only = new Set((process.env.BENCH_ONLY ?? "nacks,typeurl,stalled").split(","));
const num = (name: string, dflt: number) => Number(process.env[name] ?? dflt);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function countingLogger() {
  let bytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      cb();
    },
  });
  return { logger: createLogger({ level: "info", destination: sink }), bytes: () => bytes };
}

function snapshot(clusters: number, route: string): Snapshot {
  const names = Array.from({ length: clusters }, (_, i) => `outbound|8080||service-${i}.bench-namespace.svc.cluster.local`);
  return Snapshot.build({
    [XDS_TYPES.cluster]: names.map((name) => buildEdsCluster({ name })),
    [XDS_TYPES.endpoint]: names.map((n, i) => buildLoadAssignment(n, [{ address: "127.0.0.1", port: 10000 + (i % 50000) }])),
    [XDS_TYPES.listener]: [buildHttpListener({ name: "http", address: "127.0.0.1", port: 15001, routeConfigName: "routes" })],
    [XDS_TYPES.route]: [buildPrefixRoutes("routes", [{ prefix: route, cluster: names[0]! }])],
  });
}

async function nacks(): Promise<Record<string, unknown>> {
  const count = num("NACKS", 20);
  const mb = num("NACK_MB", 15);
  const log = countingLogger();
  const cp = await startControlPlane({ logger: log.logger });
  cp.cache.set("victim", snapshot(10, "/"));
  const target = `127.0.0.1:${cp.xdsPort}`;
  const message = "E".repeat(mb * 2 ** 20);
  const baseline = heapAfterGcMb(); // with the client's own copy of the message
  const logBefore = log.bytes();
  const client = new RawXdsClient(target);
  let refused = 0;
  for (let i = 0; i < count; i++) {
    const s = client.open("sotw");
    s.send(DiscoveryRequest.encode({ node: { id: "victim" }, typeUrl: XDS_TYPES.cluster }).finish());
    for (let t = 0; t < 200 && s.messages.length === 0; t++) await sleep(10);
    const res = s.messages[0] ? DiscoveryResponse.decode(s.messages[0]) : undefined;
    const nacked = new Promise<void>((resolve) => cp.xds.registry.once("nack", () => resolve()));
    s.send(DiscoveryRequest.encode({ typeUrl: XDS_TYPES.cluster, responseNonce: res?.nonce ?? "", versionInfo: "", errorDetail: { code: 3, message } }).finish());
    await Promise.race([nacked, s.ended, sleep(5000)]);
    s.cancel();
    const end = await s.ended;
    if (end.code !== undefined && end.code !== 0) refused++;
  }
  client.close();
  await sleep(500);
  const syncz = await cp.admin.inject({ method: "GET", url: "/debug/syncz" });
  const after = heapAfterGcMb();
  await cp.close(100);
  return { scenario: "nacks", streams: count, nackMb: mb, refusedByServer: refused, heapHeldAfterCloseMb: +(after - baseline).toFixed(1), logMb: +((log.bytes() - logBefore) / 2 ** 20).toFixed(2), synczMb: +(syncz.rawPayload.length / 2 ** 20).toFixed(3) };
}

async function typeUrl(): Promise<Record<string, unknown>> {
  const requests = num("TYPEURL_REQUESTS", 5);
  const mb = num("TYPEURL_MB", 10);
  const log = countingLogger();
  const cp = await startControlPlane({ logger: log.logger });
  const client = new RawXdsClient(`127.0.0.1:${cp.xdsPort}`);
  const s = client.open("sotw");
  const url = "type.googleapis.com/" + "x".repeat(mb * 2 ** 20);
  const before = log.bytes();
  s.send(DiscoveryRequest.encode({ node: { id: "n" }, typeUrl: XDS_TYPES.cluster }).finish());
  await sleep(100);
  const afterFirst = log.bytes();
  for (let i = 0; i < requests; i++) s.send(DiscoveryRequest.encode({ typeUrl: url }).finish());
  const end = await Promise.race([s.ended, sleep(3000).then(() => undefined)]);
  const logged = log.bytes() - afterFirst;
  client.close();
  await cp.close(100);
  return { scenario: "typeurl", requests, typeUrlMb: mb, logBytesPerRequest: Math.round(logged / requests), connectLogBytes: afterFirst - before, streamEnd: end ?? "still open" };
}

async function stalled(): Promise<Record<string, unknown>> {
  const count = num("STALLED", 200);
  const clusters = num("CLUSTERS", 20000);
  const cp = await startControlPlane({ logger: createLogger({ level: "silent" }) });
  cp.cache.set("shared", snapshot(clusters, "/v0"));
  const target = `127.0.0.1:${cp.xdsPort}`;
  const synced = (c: SimulatedClient) => c.names(XDS_TYPES.route).length === 1 && c.names(XDS_TYPES.cluster).length === clusters;
  const timed = async (what: string, wait: () => Promise<void>): Promise<number | string> => {
    const t0 = performance.now();
    try {
      await wait();
      return Math.round(performance.now() - t0);
    } catch (err) {
      return `${what}: ${(err as Error).message}`;
    }
  };
  // A well-behaved proxy synced before the attack (its baseline), then the stalled streams.
  const good = new SimulatedClient({ target, nodeId: "shared", mode: "sotw" });
  good.start();
  const baselineSyncMs = await timed("baseline sync", () => good.waitFor(() => synced(good), 120_000, "first sync"));
  const clients: RawXdsClient[] = [];
  for (let i = 0; i < count; i++) {
    const c = new RawXdsClient(target);
    clients.push(c);
    const s = c.open("sotw", { read: false });
    s.send(DiscoveryRequest.encode({ node: { id: "shared" }, typeUrl: XDS_TYPES.cluster }).finish());
    s.send(DiscoveryRequest.encode({ typeUrl: XDS_TYPES.listener }).finish());
  }
  await sleep(2000);
  const gauge = async (name: string) => +(Number((await cp.metricsRegistry.getSingleMetric(name)?.get())?.values[0]?.value ?? 0) / 2 ** 20).toFixed(1);
  const inflightMbAfterAttack = await gauge("weft_xds_inflight_bytes");
  const next = snapshot(clusters, "/v1");
  const updateMs = await timed("update", () => {
    cp.cache.set("shared", next);
    return good.waitFor(() => good.acceptedVersion.get(XDS_TYPES.route) === next.resources(XDS_TYPES.route).version, 120_000, "route update");
  });
  const late = new SimulatedClient({ target, nodeId: "shared", mode: "sotw" });
  late.start();
  const newProxySyncMs = await timed("new proxy sync", () => late.waitFor(() => synced(late), 120_000, "first sync"));
  const refused = await cp.metricsRegistry.getSingleMetric("weft_xds_streams_refused_total")?.get();
  const result = {
    scenario: "stalled",
    stalledStreams: count,
    clusters,
    baselineSyncMs,
    inflightMbAfterAttack,
    updateUnderAttackMs: updateMs,
    newProxySyncUnderAttackMs: newProxySyncMs,
    overdueMb: await gauge("weft_xds_overdue_bytes"),
    streamsRefused: Object.fromEntries((refused?.values ?? []).map((v) => [v.labels.reason, v.value])),
    connectedAtEnd: cp.xds.streamCount,
  };
  good.close();
  late.close();
  for (const c of clients) c.close();
  await cp.close(100);
  return result;
}

for (const [name, run] of [["nacks", nacks], ["typeurl", typeUrl], ["stalled", stalled]] as const) {
  if (!only.has(name)) continue;
  console.log(JSON.stringify(await run()));
}
process.exit(0);
