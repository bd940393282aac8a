// Weft's xDS server with the scale-benchmark fixture (same shape as bench/storm/weft-fixture-server.ts
// and bench/go/refserver: C EDS clusters svc-<i> × E endpoints, L HTTP listeners listener-<k>
// with RDS route route-<k> → svc-<k % C>; one snapshot "all" for every node), plus commands on
// stdin to change it and counters of what proxies ask for and ACK. Used to test the load
// generator's -watch commands and to calibrate it against real Envoys (bench/calibrate/run.ts).
//
//   node --import tsx bench/calibrate/fixture-server.ts --port 0 --clusters 100 --endpoints 10 --listeners 20 [--bind]
//
// Listeners are sent with bind_to_port: false unless --bind is given, so any number of real
// Envoys on this (shared) machine accept them without competing for ports 10000+k.
//
// stdout: first line {"ready":true,"port":P,"adminPort":A}; then one JSON line per command reply.
// stdin, one JSON object per line:
//   {"cmd":"endpoints","id":"e1","cluster":3,"timeoutMs":10000}
//       new endpoint ports for svc-3; replies {"changed":"e1","type":<eds url>,"names":["svc-3"],"version":V}
//       at once, then {"converged":"e1",...} when every stream connected at the change ACKed
//       version V of that type (or NACKed it, or the timeout passed): per-node ACK delay (ms after
//       the change, as seen by the server), and the responses/bytes/requests the server saw meanwhile.
//       With "noWait":true only the change is applied and {"changed":...} printed (for churn).
//   {"cmd":"route","id":"r1","route":2,"timeoutMs":10000}
//       route-2 now sends "/" to another cluster; replies like "endpoints" (type RDS).
//   {"cmd":"stats"}  cumulative {"stats":{cpuSeconds, streams, sent:{type:{messages,bytes,resources}},
//       received:{type:{requests,subscribes,acks,nacks}}}} since start.
//   {"cmd":"wait-synced","streams":N,"timeoutMs":60000}  waits until N streams ACKed the current
//       version of CDS, EDS, LDS and RDS: {"synced":n,"streams":S,"firstConnectAt":<epoch ms>,
//       "lastSyncedAt":<epoch ms>,"perStream":{"<node>#<stream>":{"connectedAt":..,"syncMs":..}}}
//   {"cmd":"trace","node":"<node id>"}  the requests received from that node (first 200 per node):
//       {"trace":[{"ms":..,"type":"cds","kind":"subscribe|ack|nack","names":n,"version":"..."}]}
// Unknown or malformed commands get {"error":"..."}.
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import type { Listener } from "../../generated/envoy/config/listener/v3/listener.js";
import type { DeltaDiscoveryRequest, DiscoveryRequest } from "../../generated/envoy/service/discovery/v3/discovery.js";
import { Snapshot } from "../../src/cache/snapshot.js";
import { buildEdsCluster, buildHttpListener, buildLoadAssignment, buildPrefixRoutes } from "../../src/envoy/builders.js";
import { TYPE_SHORT_NAMES, XDS_TYPES, isXdsTypeUrl, type XdsTypeUrl } from "../../src/envoy/type-urls.js";
import { silentLogger } from "../../src/log/logger.js";
import { startControlPlane } from "../../src/runner/control-plane.js";
import type { AckEvent, NackRecord } from "../../src/xds/proxy-registry.js";
import { DeltaStream } from "../../src/xds/delta/delta-stream.js";
import { SotwStream } from "../../src/xds/sotw/sotw-stream.js";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    clusters: { type: "string", default: "100" },
    endpoints: { type: "string", default: "10" },
    listeners: { type: "string", default: "20" },
    bind: { type: "boolean", default: false },
  },
});
const C = Number(values.clusters);
const E = Number(values.endpoints);
const L = Number(values.listeners);

// ---- the fixture, with a generation per cluster's endpoints and per route --------------------
const endpointGen = new Array<number>(C).fill(0);
const routeGen = new Array<number>(L).fill(0);
const clusterNames = Array.from({ length: C }, (_, i) => `svc-${i}`);

function buildSnapshot(): Snapshot {
  return Snapshot.build({
    [XDS_TYPES.cluster]: clusterNames.map((name) => buildEdsCluster({ name, connectTimeoutMs: 1000 })),
    [XDS_TYPES.endpoint]: clusterNames.map((name, i) =>
      buildLoadAssignment(
        name,
        // Generation 0 is exactly the storm fixture; each change moves the ports by E.
        Array.from({ length: E }, (_, j) => ({ address: `10.1.${Math.floor(i / 250)}.${i % 250}`, port: 8080 + j + E * endpointGen[i]! })),
      ),
    ),
    [XDS_TYPES.listener]: Array.from({ length: L }, (_, k): Listener => {
      const l = buildHttpListener({ name: `listener-${k}`, address: "0.0.0.0", port: 10000 + k, routeConfigName: `route-${k}` });
      return values.bind ? l : { ...l, bindToPort: false };
    }),
    [XDS_TYPES.route]: Array.from({ length: L }, (_, k) =>
      buildPrefixRoutes(`route-${k}`, [{ prefix: "/", cluster: clusterNames[(k + routeGen[k]!) % C] ?? "svc-0" }]),
    ),
  });
}

// ---- counting what proxies send (bench-only instrumentation of the stream classes) ------------
type Received = {
  requests: number;
  subscribes: number;
  acks: number;
  nacks: number;
};
const received = new Map<string, Received>();
interface TraceEntry {
  ms: number;
  type: string;
  kind: "subscribe" | "ack" | "nack";
  names: number;
  version: string;
}
const traces = new Map<string, { start: number; entries: TraceEntry[] }>();
const streamNode = new WeakMap<object, string>();
const MAX_TRACE = 200;

function countRequest(stream: object, node: string | undefined, typeUrl: string | undefined, kind: TraceEntry["kind"], names: number, version: string): void {
  if (node && !streamNode.has(stream)) streamNode.set(stream, node);
  const nodeId = streamNode.get(stream) ?? "?";
  const type = typeUrl && isXdsTypeUrl(typeUrl) ? TYPE_SHORT_NAMES[typeUrl] : (typeUrl ?? "?");
  let r = received.get(type);
  if (!r) received.set(type, (r = { requests: 0, subscribes: 0, acks: 0, nacks: 0 }));
  r.requests++;
  if (kind === "subscribe") r.subscribes++;
  else if (kind === "ack") r.acks++;
  else r.nacks++;
  let t = traces.get(nodeId);
  if (!t) traces.set(nodeId, (t = { start: performance.now(), entries: [] }));
  if (t.entries.length < MAX_TRACE) t.entries.push({ ms: round(performance.now() - t.start), type, kind, names, version });
}

const sotwOnRequest = SotwStream.prototype.onRequest;
SotwStream.prototype.onRequest = function (this: SotwStream, req: DiscoveryRequest): void {
  const kind = !req.responseNonce ? "subscribe" : req.errorDetail && (req.errorDetail.code || req.errorDetail.message) ? "nack" : "ack";
  countRequest(this, req.node?.id, req.typeUrl, kind, req.resourceNames?.length ?? 0, req.versionInfo ?? "");
  sotwOnRequest.call(this, req);
};
const deltaOnRequest = DeltaStream.prototype.onRequest;
DeltaStream.prototype.onRequest = function (this: DeltaStream, req: DeltaDiscoveryRequest): void {
  const kind = !req.responseNonce ? "subscribe" : req.errorDetail && (req.errorDetail.code || req.errorDetail.message) ? "nack" : "ack";
  countRequest(this, req.node?.id, req.typeUrl, kind, (req.resourceNamesSubscribe?.length ?? 0) + (req.resourceNamesUnsubscribe?.length ?? 0), "");
  deltaOnRequest.call(this, req);
};

// ---- the control plane ----------------------------------------------------------------------
const cp = await startControlPlane({ logger: silentLogger(), xdsAddress: "127.0.0.1", xdsPort: Number(values.port), nodeKey: () => "all" });
let current = buildSnapshot();
if (!cp.cache.set("all", current)) {
  console.error("snapshot refused");
  process.exit(1);
}
cp.markConfigLoaded();

/** Streams connected now (one per proxy). */
const streams = new Map<number, string>();
/** Epoch milliseconds with sub-ms precision (comparable with other processes on this machine). */
const epochMs = () => performance.timeOrigin + performance.now();
interface StreamSync {
  nodeId: string;
  connectedAt: number;
  acked: Map<string, string>;
  syncedAt?: number;
}
/** Initial sync per stream: when it had ACKed the current version of CDS, EDS, LDS and RDS. */
const syncs = new Map<number, StreamSync>();
const SYNC_TYPES = [XDS_TYPES.cluster, XDS_TYPES.endpoint, XDS_TYPES.listener, XDS_TYPES.route];
cp.xds.registry.on("connect", (s: { streamId: number; nodeId: string }) => {
  streams.set(s.streamId, s.nodeId);
  syncs.set(s.streamId, { nodeId: s.nodeId, connectedAt: epochMs(), acked: new Map() });
});
cp.xds.registry.on("disconnect", (s: { streamId: number }) => streams.delete(s.streamId));
cp.xds.registry.on("ack", (e: AckEvent) => {
  const s = syncs.get(e.streamId);
  if (!s || s.syncedAt !== undefined) return;
  s.acked.set(e.type, e.version);
  if (SYNC_TYPES.every((t) => s.acked.get(TYPE_SHORT_NAMES[t]) === current.resources(t).version)) s.syncedAt = epochMs();
});

/** Waits until `n` streams completed their initial sync (or the timeout), then reports them. */
async function waitSynced(n: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  const done = () => [...syncs.values()].filter((s) => s.syncedAt !== undefined);
  while (done().length < n && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const list = done();
  emit({
    synced: list.length,
    streams: syncs.size,
    firstConnectAt: Math.min(...[...syncs.values()].map((s) => s.connectedAt)),
    lastSyncedAt: Math.max(...list.map((s) => s.syncedAt!)),
    perStream: Object.fromEntries(
      [...syncs].map(([id, s]) => [`${s.nodeId}#${id}`, { connectedAt: round(s.connectedAt), syncMs: s.syncedAt === undefined ? null : round(s.syncedAt - s.connectedAt) }]),
    ),
  });
}

type SentCounts = {
  messages: number;
  bytes: number;
  resources: number;
};
async function sentByType(): Promise<Record<string, SentCounts>> {
  const out: Record<string, SentCounts> = {};
  const add = async (metric: { get(): Promise<{ values: { value: number; labels: Record<string, string | number> }[] }> }, field: keyof SentCounts) => {
    for (const v of (await metric.get()).values) {
      const type = String(v.labels.type);
      out[type] ??= { messages: 0, bytes: 0, resources: 0 };
      out[type][field] += v.value;
    }
  };
  await add(cp.metrics.pushes, "messages");
  await add(cp.metrics.pushBytes, "bytes");
  await add(cp.metrics.pushResources, "resources");
  return out;
}

function receivedCopy(): Record<string, Received> {
  return Object.fromEntries([...received].map(([k, v]) => [k, { ...v }]));
}

const round = (x: number) => Math.round(x * 1000) / 1000;
const emit = (v: unknown): void => {
  process.stdout.write(JSON.stringify(v) + "\n");
};

function subtract<T extends Record<string, number>>(after: Record<string, T>, before: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [type, a] of Object.entries(after)) {
    const b = before[type];
    const d = Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b?.[k] ?? 0)])) as T;
    if (Object.values(d).some((v) => v !== 0)) out[type] = d;
  }
  return out;
}

function quantiles(xs: number[]): { p50: number; p90: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
  return { p50: at(50), p90: at(90), max: s[s.length - 1] ?? 0 };
}

/** Applies a change and reports when every stream connected at that moment ACKed it. */
async function change(id: string, typeUrl: XdsTypeUrl, names: string[], timeoutMs: number, noWait: boolean): Promise<void> {
  if (noWait) {
    const next = buildSnapshot();
    cp.cache.set("all", next);
    current = next;
    emit({ changed: id, type: typeUrl, names, version: next.resources(typeUrl).version, streams: streams.size });
    return;
  }
  const sentBefore = await sentByType();
  const receivedBefore = receivedCopy();
  const cpuBefore = process.cpuUsage();
  const waiting = new Map(streams);
  const perNode: Record<string, number> = {};
  const next = buildSnapshot();
  const version = next.resources(typeUrl).version;
  const short = TYPE_SHORT_NAMES[typeUrl];
  const t0 = performance.now();
  let resolveAll!: () => void;
  const allAcked = new Promise<void>((r) => (resolveAll = r));
  const onAck = (e: AckEvent) => {
    if (e.type !== short || e.version !== version || !waiting.has(e.streamId)) return;
    perNode[`${e.nodeId}#${e.streamId}`] = round(performance.now() - t0);
    waiting.delete(e.streamId);
    if (waiting.size === 0) resolveAll();
  };
  const nacked: Record<string, number> = {};
  const onNack = (n: NackRecord) => {
    if (n.type !== short || n.version !== version) return;
    const entry = [...waiting].find(([, node]) => node === n.nodeId);
    if (!entry) return;
    nacked[`${n.nodeId}#${entry[0]}`] = round(performance.now() - t0);
    waiting.delete(entry[0]);
    if (waiting.size === 0) resolveAll();
  };
  cp.xds.registry.on("ack", onAck);
  cp.xds.registry.on("nack", onNack);
  const expected = waiting.size;
  try {
    cp.cache.set("all", next);
    current = next;
    emit({ changed: id, type: typeUrl, names, version, streams: expected });
    if (expected > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([allAcked, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
      clearTimeout(timer);
    }
  } finally {
    cp.xds.registry.off("ack", onAck);
    cp.xds.registry.off("nack", onNack);
  }
  const elapsedMs = round(performance.now() - t0);
  const cpu = process.cpuUsage(cpuBefore);
  const acks = Object.values(perNode);
  emit({
    converged: id,
    streams: expected,
    acked: acks.length,
    nacked: Object.keys(nacked).length,
    elapsedMs,
    ackMs: quantiles(acks),
    perNode,
    nackedNodes: nacked,
    cpuSeconds: round((cpu.user + cpu.system) / 1e6),
    sent: subtract(await sentByType(), sentBefore),
    received: subtract(receivedCopy(), receivedBefore),
  });
}

let queue = Promise.resolve();
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "") return;
  let cmd: { cmd?: string; id?: string; cluster?: number; route?: number; node?: string; streams?: number; timeoutMs?: number; noWait?: boolean };
  try {
    cmd = JSON.parse(line) as typeof cmd;
  } catch (err) {
    emit({ error: `malformed command ${JSON.stringify(line)}: ${(err as Error).message}` });
    return;
  }
  const timeoutMs = cmd.timeoutMs ?? 10_000;
  // Changes run one after another (each waits for its convergence); stats and trace answer at once.
  switch (cmd.cmd) {
    case "endpoints": {
      const i = Number(cmd.cluster);
      if (!Number.isInteger(i) || i < 0 || i >= C) return emit({ error: `endpoints: cluster must be an integer in 0..${C - 1}` });
      queue = queue.then(() => {
        endpointGen[i]!++;
        return change(cmd.id ?? `e${i}`, XDS_TYPES.endpoint, [`svc-${i}`], timeoutMs, cmd.noWait === true);
      });
      break;
    }
    case "route": {
      const k = Number(cmd.route);
      if (!Number.isInteger(k) || k < 0 || k >= L) return emit({ error: `route: route must be an integer in 0..${L - 1}` });
      queue = queue.then(() => {
        routeGen[k]!++;
        return change(cmd.id ?? `r${k}`, XDS_TYPES.route, [`route-${k}`], timeoutMs, cmd.noWait === true);
      });
      break;
    }
    case "stats":
      void sentByType().then((sent) => {
        const cpu = process.cpuUsage();
        emit({ stats: { cpuSeconds: round((cpu.user + cpu.system) / 1e6), streams: streams.size, sent, received: receivedCopy() } });
      });
      break;
    case "wait-synced":
      void waitSynced(Number(cmd.streams ?? 1), timeoutMs);
      break;
    case "trace":
      emit({ trace: traces.get(cmd.node ?? "")?.entries ?? [] });
      break;
    default:
      emit({ error: `unknown command ${JSON.stringify(cmd.cmd)} (known: endpoints, route, stats, wait-synced, trace)` });
  }
  queue = queue.catch((err: unknown) => emit({ error: (err as Error).message }));
});

const stop = () => {
  void cp.close(0).finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
emit({ ready: true, port: cp.xdsPort, adminPort: cp.adminPort });
