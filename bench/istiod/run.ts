// Benchmark: istiod and Weft side by side on the same real kube-apiserver (e2e/kubernetes/cluster.ts),
// the same Istio configuration as Kubernetes objects and the same load generator
// (bench/go/loadgen in -watch mode: simulated sidecars with Istio's node identity from -node-meta,
// SotW or delta, subscribing and ACKing as Envoy does; built here with `go build`). Servers: istiod as shipped, istiod with its throttles raised, Weft in Kubernetes mode
// (`node dist/src/cli/main.js serve --kubernetes`, built by `npm run build`); a fresh server process
// and load generator per run, runs in pairs whose order reverses every other pair; results are
// medians of per-pair ratios.
// Shape: BENCH_SERVICES Services, 2 pods each (labels app/version, status.podIP from the kubelet
// harness's virtual node), one DestinationRule with subsets v1/v2 and one VirtualService per Service,
// two selector-less Services with hand-written EndpointSlices ("endpoints" for endpoint changes,
// "manual" for churn); one simulated sidecar per pod. Scenarios: initial sync, endpoint change,
// route change (VirtualService edit), new service, churn at BENCH_CHURN_RATES endpoint writes/s,
// connection storms of BENCH_STORMS more clients. Server CPU-seconds and RSS from /proc; resource
// bytes and messages counted by the load generator.
//
//   npm run build && npx tsx bench/istiod/run.ts                      # small shape, 3 pairs, storms
//   npm run build && BENCH_ISTIOD_SIZE=full npx tsx bench/istiod/run.ts  # Istio's load shape, 1 pair
//   knobs: BENCH_ISTIOD_OUT (results directory) BENCH_ISTIOD_APPEND=1 (keep the other servers' rows)
//          BENCH_MIN_AVAILABLE_GB (a run is stopped when the machine has less memory available) BENCH_SERVICES BENCH_PAIRS BENCH_CHANGES BENCH_MAX_SYNCING BENCH_CHURN_RATES BENCH_CHURN_SECONDS
//          BENCH_STORMS BENCH_STORM_TIMEOUT_S BENCH_MODES=sotw,delta BENCH_SERVERS=istiod,istiod-raised,weft
//          BENCH_WEFT_NODE_ARGS=--cpu-prof,--cpu-prof-dir=DIR (node flags for Weft, comma-separated)
// Needs the istiod binary (scripts/cached-go-build.sh istiod; ~10-30 min once) and Istio's CRDs from
// the Go module istio.io/api (downloaded with `go mod download` when absent).
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { startKubernetes, type KubernetesCluster } from "../../e2e/kubernetes/cluster.js";
import { istioCrdsFile } from "../../e2e/kubernetes/istio-crds.js";
import { XDS_TYPES } from "../../src/envoy/type-urls.js";
import { freePort } from "../../src/runner/free-port.js";
import { startEnvoy, type EnvoyProcess } from "../../src/envoy/envoy-process.js";
import { findEnvoyBinary } from "../../src/envoy/find-envoy.js";
import { istioNode, type Sidecar } from "./istio-node.js";
import { cpuSecondsIfAlive, statusKb } from "../process-stats.js";
import { JsonLinesProcess } from "../json-lines-process.js";
import { apis, createNamespace, createPods, createServices, inParallel, startVirtualNodes, until, MERGE_PATCH, type LoadApis } from "../kubernetes/cluster-load.js";

// BENCH_ISTIOD_SIZE picks the defaults: "small" (50 services, 100 proxies, 3 pairs, storms) or "full"
// (Istio's load shape: 1000 services, 2000 proxies of which at most 100 sync at once, 1 pair, no
// storms: istiod needs ~10 MB per proxy syncing at once). Each BENCH_* variable overrides its default.
const SIZE = process.env.BENCH_ISTIOD_SIZE === "full" ? "full" : "small";
const FULL = SIZE === "full";
const SERVICES = Number(process.env.BENCH_SERVICES ?? (FULL ? 1000 : 50));
const PAIRS = Number(process.env.BENCH_PAIRS ?? (FULL ? 1 : 3));
const CHANGES = Number(process.env.BENCH_CHANGES ?? (FULL ? 3 : 5));
const MAX_SYNCING = Number(process.env.BENCH_MAX_SYNCING ?? (FULL ? 100 : 0));
/** Endpoint changes per second of the churn scenario, each for CHURN_SECONDS. */
const CHURN_RATES = (process.env.BENCH_CHURN_RATES ?? "1,10,100").split(",").filter(Boolean).map(Number);
const CHURN_SECONDS = Number(process.env.BENCH_CHURN_SECONDS ?? 5);
/** Connection storms: that many more clients at once, after the other scenarios. */
const STORMS = (process.env.BENCH_STORMS ?? (FULL ? "" : "2000,5000,10000")).split(",").filter(Boolean).map(Number);
const STORM_TIMEOUT_S = Number(process.env.BENCH_STORM_TIMEOUT_S ?? 120);
/**
 * Storms against istiod stop at this many clients: as shipped it admits 25 streams/s on 2 cores, and
 * with throttles raised a storm of 5000 on the small shape held 7.8 GB (0 of 5000 synced in 120 s at
 * load 20); 10,000 would risk the shared machine's memory.
 */
const ISTIOD_STORM_MAX = Number(process.env.BENCH_ISTIOD_STORM_MAX ?? 2000);
/** Real Envoys on one edit, after the storms (the simulated sidecars stopped first). */
const ENVOYS = Number(process.env.BENCH_ENVOYS ?? (FULL ? 0 : 100));
/** Storms and real Envoys run in the first EXTRA_PAIRS pairs only (they take most of a run's time). */
const EXTRA_PAIRS = Number(process.env.BENCH_EXTRA_PAIRS ?? PAIRS);
const MODES = (process.env.BENCH_MODES ?? "sotw,delta").split(",") as ("sotw" | "delta")[];
const SERVERS = (process.env.BENCH_SERVERS ?? "istiod,istiod-raised,weft").split(",") as ServerKind[];
const NS = "bench";
const ROOT = path.resolve(import.meta.dirname, "../..");
const WEFT_MAIN = path.join(ROOT, "dist/src/cli/main.js");
/** Where the result files go (a trial run elsewhere leaves bench/results alone). */
/** The commit checked out when the bench started (dist/ must have been built from it: `npm run build` first). */
const WEFT_AT_START = `${execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim()} from dist/ (node dist/src/cli/main.js)`;
const APPEND = process.env.BENCH_ISTIOD_APPEND === "1";
const OUT_DIR = process.env.BENCH_ISTIOD_OUT ? path.resolve(process.env.BENCH_ISTIOD_OUT) : path.join(ROOT, "bench/results");


type ServerKind = "istiod" | "istiod-raised" | "weft";
const LABEL: Record<ServerKind, string> = {
  istiod: "istiod as shipped",
  "istiod-raised": "istiod, throttles raised",
  weft: "Weft (--kubernetes)",
};

// --- every process we start, killed on any exit --------------------------------------------------
const children = new Set<ChildProcess>();
function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.once("exit", () => children.delete(c));
  return c;
}
function killAll(): void {
  for (const c of children) {
    try {
      if (c.pid) process.kill(-c.pid, "SIGKILL"); // own process group (detached)
    } catch {
      c.kill("SIGKILL");
    }
  }
}
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => process.exit(130));

async function stopChild(c: ChildProcess | undefined): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once("exit", r));
  try {
    process.kill(-c.pid!, "SIGTERM");
  } catch {
    c.kill("SIGTERM");
  }
  const t = setTimeout(() => {
    try {
      process.kill(-c.pid!, "SIGKILL");
    } catch {
      c.kill("SIGKILL");
    }
  }, 5000);
  await exited;
  clearTimeout(t);
}

// --- istiod ---------------------------------------------------------------------------------------
function istiodBinary(): { bin: string; version: string } {
  const out = execFileSync(path.join(ROOT, "scripts/cached-go-build.sh"), ["istiod"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const dir = out.trim().split("\n").pop()!;
  const version = execFileSync(path.join(ROOT, "scripts/cached-go-build.sh"), ["--version", "istiod"], { encoding: "utf8" }).trim();
  return { bin: path.join(dir, "pilot-discovery"), version };
}

/** Istio's CRDs: the module istio.io/api at the version istio's go.mod requires. */

const MESH_YAML = `# Upstream Envoy ACKs istiod's output only without Istio-proxy extensions (NOTES.md)
enableAutoMtls: false
rootNamespace: istio-system
trustDomain: cluster.local
defaultProviders:
  metrics: []
`;

interface Server {
  proc: ChildProcess;
  xds: string;
  dir: string;
}

async function waitHttp(url: string, proc: ChildProcess, what: string, logFile: string): Promise<void> {
  await until(async () => {
    if (proc.exitCode !== null) throw new Error(`${what} exited (${proc.exitCode}); log ${logFile}:\n${readFileSync(logFile, "utf8").slice(-3000)}`);
    try {
      return (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;
    } catch {
      return false;
    }
  }, `${what} ready at ${url}`, 120_000, 200);
}

async function startServer(kind: ServerKind, cluster: KubernetesCluster, istiodBin: string): Promise<Server> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `weft-bench-${kind}-`));
  const logFile = path.join(dir, "log");
  const { openSync } = await import("node:fs");
  const fd = openSync(logFile, "w");
  const xdsPort = await freePort();
  if (kind === "weft") {
    const admin = await freePort();
    // From dist/ as users run it (npm run build first), not under tsx.
    const proc = track(
      spawn(process.execPath, [...(process.env.BENCH_WEFT_NODE_ARGS ?? "").split(",").filter(Boolean), WEFT_MAIN, "serve", "--kubernetes", "--kubeconfig", cluster.kubeconfigPath, "--xds-port", String(xdsPort), "--admin-port", String(admin), "--leader-elect", "false", "--write-status", "false", "--state-dir", path.join(dir, "state")], { cwd: ROOT, stdio: ["ignore", fd, fd], detached: true }),
    );
    await waitHttp(`http://127.0.0.1:${admin}/readyz`, proc, "weft", logFile);
    return { proc, xds: `127.0.0.1:${xdsPort}`, dir };
  }
  writeFileSync(path.join(dir, "mesh.yaml"), MESH_YAML);
  const [http, secure, https, mon, ctrlz] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const env: Record<string, string> = { ...(process.env as Record<string, string>), POD_NAMESPACE: "istio-system", POD_NAME: "istiod-local", REVISION: "default", PILOT_ENABLE_METADATA_EXCHANGE: "false", PILOT_ENABLE_ALPN_FILTER: "false" };
  if (kind === "istiod-raised") Object.assign(env, { PILOT_MAX_REQUESTS_PER_SECOND: "100000", PILOT_PUSH_THROTTLE: "10000" });
  const proc = track(
    spawn(istiodBin, ["discovery", "--kubeconfig", cluster.kubeconfigPath, "--meshConfig", "mesh.yaml", "--registries", "Kubernetes", "--clusterID", "Kubernetes", "--grpcAddr", `127.0.0.1:${xdsPort}`, "--secureGRPCAddr", `127.0.0.1:${secure}`, "--httpAddr", `127.0.0.1:${http}`, "--httpsAddr", `127.0.0.1:${https}`, "--monitoringAddr", `127.0.0.1:${mon}`, "--ctrlz_address", "127.0.0.1", "--ctrlz_port", String(ctrlz)], { cwd: dir, env, stdio: ["ignore", fd, fd], detached: true }),
  );
  await waitHttp(`http://127.0.0.1:${http}/ready`, proc, "istiod", logFile);
  return { proc, xds: `127.0.0.1:${xdsPort}`, dir };
}

// --- the load generator ---------------------------------------------------------------------------
const GO_DIR = path.join(ROOT, "bench/go");
const LOADGEN = path.join(GO_DIR, "bin/loadgen");
/**
 * The flags every run gives bench/go/loadgen (besides target, clients, mode, node file): Envoy's
 * init order (LDS once clusters are warm), one gRPC connection per sidecar as Envoys have, resource
 * bodies hashed so a mark can wait for changed content, the rolling fleet, the sync bound.
 */
const LOADGEN_FLAGS: string[] = ["-init-order", "envoy", "-per-conn", "1", "-content", "-watch", "-max-syncing", String(MAX_SYNCING), "-timeout", "1200s"];

const LOADGEN_COMMAND = `bench/go/bin/loadgen -target HOST:PORT -clients N -mode sotw|delta -node-meta nodes.json ${LOADGEN_FLAGS.join(" ")}`;

/** The loadgen in -watch mode (bench/go/loadgen/README.md), one per run. */
class Loadgen {
  private marks = 0;
  private constructor(readonly lg: JsonLinesProcess) {}
  static start(xds: string, mode: string, clients: number, nodesFile: string): Loadgen {
    return new Loadgen(new JsonLinesProcess("loadgen", LOADGEN, ["-target", xds, "-clients", String(clients), "-mode", mode, "-node-meta", nodesFile, ...LOADGEN_FLAGS], { cwd: ROOT }));
  }
  /** The first line: every client synced (or the -timeout passed: then this throws). */
  async synced(): Promise<{ synced: number; clients: number; allAckedMs: number; streamRetries: number }> {
    const r = (await this.lg.next((o) => "synced" in o, 1_300_000, "the initial sync")) as { synced: number; clients: number; allAckedMs: number; streamRetries: number; firstError?: string };
    if (r.synced < r.clients) throw new Error(`loadgen: ${r.synced} of ${r.clients} clients synced within 1200 s (${r.streamRetries} streams re-opened; first error: ${r.firstError ?? "none"})`);
    return r;
  }
  /** ms from the clients' start to the last response before quietMs without any. */
  async quiet(quietMs = 2000): Promise<number> {
    const r = (await this.lg.call({ cmd: "quiet", quietMs, timeoutMs: 600_000 }, "quiet", 620_000)) as { lastResponseMs: number };
    return r.lastResponseMs;
  }
  async counters(): Promise<Counters> {
    const { stats } = (await this.lg.call({ cmd: "stats" }, "stats")) as { stats: { bytesSinceStart: number; messagesSinceStart: number; requests: number; streamRetries: number; cpuSeconds: number } };
    return { bytes: stats.bytesSinceStart, responses: stats.messagesSinceStart, requests: stats.requests, reconnects: stats.streamRetries, cpuS: stats.cpuSeconds };
  }
  /**
   * Marks (one per watched type) registered before `change` runs; per client, the time (ms after
   * the marks) at which it had ACKed a response delivering every mark (NaN: not within the timeout).
   */
  async measure(watch: { type: string; names: string[]; changed?: boolean }[], change: () => Promise<unknown>): Promise<number[]> {
    const ids = watch.map(() => `m${++this.marks}`);
    for (const [i, w] of watch.entries()) await this.lg.call({ cmd: "mark", id: ids[i], type: w.type, names: w.names, changed: w.changed ?? false, perClient: true, timeoutMs: MARK_TIMEOUT_MS }, "marked");
    await change();
    const results = await Promise.all(ids.map((id) => this.lg.next((o) => o.mark === id, MARK_TIMEOUT_MS + 60_000, `mark ${id}`)));
    const per = results.map((r) => r.ackByClient as number[]);
    return per[0]!.map((_, c) => Math.max(...per.map((p) => (p[c]! < 0 ? NaN : p[c]!))));
  }
  async churnBegin(name: string): Promise<void> {
    await this.lg.call({ cmd: "churn-begin", name }, "churning");
  }
  async churnEnd(writes: Record<number, number>, timeoutMs: number): Promise<{ p50: number; p99: number; max: number; latencies: number; undelivered: number }> {
    const r = await this.lg.call({ cmd: "churn-end", writes, timeoutMs }, "churn", timeoutMs + 60_000);
    return r.churn as { p50: number; p99: number; max: number; latencies: number; undelivered: number };
  }
  async storm(count: number, timeoutMs: number): Promise<{ ms: number; synced: number; reconnects: number; bytes: number; responses: number; requests: number }> {
    // Connecting the storm's gRPC connections is not timed (-per-conn 1: one per client).
    const r = await this.lg.call({ cmd: "storm", count, timeoutMs }, "storm", timeoutMs + 600_000);
    return r as unknown as { ms: number; synced: number; reconnects: number; bytes: number; responses: number; requests: number };
  }
  stop(): Promise<void> {
    return this.lg.stop();
  }
}
/** How long a change may take to reach every client. */
const MARK_TIMEOUT_MS = 300_000;

// --- the shape ------------------------------------------------------------------------------------
const vsBody = (i: number, subset: string) => ({ apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name: `svc-${i}`, namespace: NS }, spec: { hosts: [`svc-${i}`], http: [{ route: [{ destination: { host: `svc-${i}`, subset } }] }] } });
const drBody = (i: number) => ({ apiVersion: "networking.istio.io/v1", kind: "DestinationRule", metadata: { name: `svc-${i}`, namespace: NS }, spec: { host: `svc-${i}`, subsets: [{ name: "v1", labels: { version: "v1" } }, { name: "v2", labels: { version: "v2" } }] } });
const slice = (service: string, addresses: string[]) => ({ apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: { name: `${service}-1`, namespace: NS, labels: { "kubernetes.io/service-name": service, "endpointslice.kubernetes.io/managed-by": "weft-bench" } }, addressType: "IPv4", ports: [{ name: "http", port: 8080, protocol: "TCP" }], endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })) });
const now = () => performance.timeOrigin + performance.now();
const host = (name: string) => `${name}.${NS}.svc.cluster.local`;
/** The cluster / EDS name of a Service's port 80 (Istio's naming; Weft uses the same). */
const edsName = (service: string) => `outbound|80||${host(service)}`;

async function selectorlessService(api: LoadApis, name: string, addresses: string[]): Promise<void> {
  await api.core.createNamespacedService({ namespace: NS, body: { metadata: { name }, spec: { ports: [{ name: "http", port: 80, targetPort: 8080 }] } } });
  await api.discovery.createNamespacedEndpointSlice({ namespace: NS, body: slice(name, addresses) });
}

function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! : NaN;
}

// --- real Envoys on one edit ------------------------------------------------------------------------
/** A minimal Envoy bootstrap (JSON is YAML) with Istio's node identity: ADS to the server, nothing else. */
function envoyBootstrap(xds: string, mode: "sotw" | "delta", s: Sidecar): string {
  const [host, port] = xds.split(":");
  return JSON.stringify({
    node: istioNode(s),
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    dynamic_resources: {
      ads_config: { api_type: mode === "delta" ? "DELTA_GRPC" : "GRPC", transport_api_version: "V3", grpc_services: [{ envoy_grpc: { cluster_name: "xds-grpc" } }] },
      cds_config: { ads: {}, resource_api_version: "V3" },
      lds_config: { ads: {}, resource_api_version: "V3" },
    },
    static_resources: {
      clusters: [
        {
          name: "xds-grpc",
          type: "STATIC",
          connect_timeout: "1s",
          typed_extension_protocol_options: { "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": { "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions", explicit_http_config: { http2_protocol_options: {} } } },
          load_assignment: { cluster_name: "xds-grpc", endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: Number(port) } } } }] }] },
        },
      ],
    },
  });
}

const sumOf = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
/** Route configurations Envoy applied that changed its routes (counters per route configuration). */
const RDS_RELOADS = "\\.rds\\..*\\.config_reload$";
const REJECTED = "update_rejected$";
const RDS_UPDATES = "\\.rds\\..*\\.update_success$";

/**
 * ENVOYS real Envoys (Envoy from the pip wheel, --concurrency 1) with the first pods' identities,
 * started 10 at a time until each is LIVE; then one VirtualService edit, timed until every Envoy
 * applied a changed route configuration (its RDS config_reload counters rose: Envoy ACKs as it applies).
 */
async function realEnvoys(xds: string, mode: "sotw" | "delta", api: LoadApis, sidecars: Sidecar[], subsets: { edit: string; restore: string }, cpu: () => number): Promise<Row["envoys"]> {
  const setSubset = (subset: string) => api.custom.patchNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: NS, plural: "virtualservices", name: "svc-0", body: { spec: vsBody(0, subset).spec } }, MERGE_PATCH);
  const envoys: EnvoyProcess[] = [];
  const t0 = now();
  try {
    const chosen = Array.from({ length: ENVOYS }, (_, i) => sidecars[i % sidecars.length]!);
    // Not waiting for LIVE: with istiod's output an upstream Envoy never leaves INITIALIZING (its
    // inbound listeners wait for SDS from pilot-agent's socket, absent here); routes arrive anyway.
    await inParallel(chosen, 10, async (s, i) => {
      envoys.push(await startEnvoy({ name: `bench-${i}`, bootstrapYaml: envoyBootstrap(xds, mode, s), logLevel: "warning", waitForLive: false }));
    });
    await until(async () => (await Promise.all(envoys.map(async (e) => sumOf(await e.stats(RDS_UPDATES)) > 0))).every(Boolean), `${ENVOYS} Envoys to hold routes`, 300_000, 250);
    const startS = (now() - t0) / 1000;
    const live = (await Promise.all(envoys.map(async (e) => (await e.stats("^server\\.state$")).get("server.state") === 0))).filter(Boolean).length;
    const rejected = sumOf(new Map((await Promise.all(envoys.map((e) => e.stats(REJECTED)))).flatMap((m, i) => [...m].map(([k, v]) => [`${i}:${k}`, v] as const))));
    const before = await Promise.all(envoys.map(async (e) => sumOf(await e.stats(RDS_RELOADS))));
    const cpu0 = cpu();
    const start = now();
    await setSubset(subsets.edit);
    const done: number[] = envoys.map(() => NaN);
    const deadline = start + 120_000;
    while (done.some((d) => Number.isNaN(d)) && now() < deadline) {
      await inParallel(envoys, 20, async (e, i) => {
        if (!Number.isNaN(done[i]!)) return;
        if (sumOf(await e.stats(RDS_RELOADS)) > before[i]!) done[i] = now() - start;
      });
      await new Promise((r) => setTimeout(r, 100));
    }
    const ok = done.filter((d) => !Number.isNaN(d));
    await setSubset(subsets.restore); // the next run's route changes start from where they expect
    return { count: ENVOYS, startS: round2(startS), live, rejectedUpdates: rejected, allAckedMs: ok.length === ENVOYS ? Math.round(Math.max(...ok)) : NaN, p50Ms: Math.round(pct(ok, 0.5)), acked: ok.length, cpuS: round2(cpu() - cpu0) };
  } finally {
    await Promise.all(envoys.map((e) => e.stop()));
  }
}

/** What one scenario cost: server CPU-seconds, resource bytes and messages both ways. */
interface Cost {
  cpuS: number;
  mb: number;
  responses: number;
  requests: number;
}

interface Row {
  server: ServerKind;
  label: string;
  mode: string;
  pair: number;
  proxies: number;
  syncS: number;
  /** Streams refused or failed during the initial sync, retried with Envoy's backoff. */
  syncRetries: number;
  sync: Cost;
  endpointP50Ms: number;
  endpointP99Ms: number;
  /** Per change. */
  endpoint: Cost;
  routeP50Ms: number;
  routeP99Ms: number;
  route: Cost;
  newServiceP50Ms: number;
  newServiceP99Ms: number;
  newService: Cost;
  /** Per rate (changes/s): p50/p99/max ms from the write to each client holding it or a later state. */
  churn: { rate: number; writes: number; achievedPerS: number; p50Ms: number; p99Ms: number; maxMs: number; undelivered: number; cpuS: number }[];
  /** The highest churn rate with p99 < 1 s (0: none). */
  churnMaxRateUnder1s: number;
  /** Real Envoys on one VirtualService edit (0 Envoys: not run). */
  envoys?: { count: number; startS: number; live: number; rejectedUpdates: number; allAckedMs: number; p50Ms: number; acked: number; cpuS: number };
  storms: { count: number; seconds: number; synced: number; retried: number; cpuS: number; peakRssMB: number; mb: number; responses: number }[];
  totalCpuS: number;
  /** The 1-minute load average when the run started. */
  loadAverage?: number;
  /** The load generator's own CPU-seconds until the storms (it shares the 2 cores). */
  loadgenCpuS: number;
  /** Deliveries (client x change) of the endpoint, route and new-service changes not within the mark timeout. */
  undelivered: number;
  rssMB: number;
  peakRssMB: number;
  total: Cost;
}

type Counters = { bytes: number; responses: number; requests: number; reconnects: number; cpuS: number };
const mb = (bytes: number) => +(bytes / 1e6).toFixed(3);
const round2 = (x: number) => +x.toFixed(2);
const costOf = (a: Counters, b: Counters, cpuS: number, per = 1): Cost => ({ cpuS: round2(cpuS / per), mb: mb((b.bytes - a.bytes) / per), responses: Math.round((b.responses - a.responses) / per), requests: Math.round((b.requests - a.requests) / per) });
/** The churn scenario's address for change number k (the load generator decodes it back). */
const churnAddress = (k: number) => `10.202.${(k >> 8) & 255}.${k & 255}`;
let churnCounter = 0;

async function oneRun(kind: ServerKind, mode: "sotw" | "delta", pair: number, cluster: KubernetesCluster, api: LoadApis, istiodBin: string, files: { sidecars: string; nodes: string }, proxies: number, runNo: number): Promise<Row> {
  const load = os.loadavg()[0]!;
  const server = await startServer(kind, cluster, istiodBin);
  const pid = server.proc.pid!;
  let gen: Loadgen | undefined;
  const cpu = () => cpuSecondsIfAlive(pid);
  // Others work on this machine: a server that takes the memory they need is stopped (the run fails).
  let starved = "";
  const guard = setInterval(() => {
    const availGB = memAvailableGB();
    if (availGB >= MIN_AVAILABLE_GB || starved) return;
    starved = `stopped ${LABEL[kind]}: the machine had ${availGB.toFixed(1)} GB available (< BENCH_MIN_AVAILABLE_GB=${MIN_AVAILABLE_GB}) with the server at ${Math.round(statusKb(pid, "VmRSS") / 1024)} MB RSS`;
    log(`  ${starved}`);
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      server.proc.kill("SIGKILL");
    }
    gen?.lg.proc.kill("SIGKILL"); // its pending answers fail at once
  }, 1000);
  try {
    const cpu0 = cpu();
    gen = Loadgen.start(server.xds, mode, proxies, files.nodes);
    const counters = () => gen!.counters();
    const zero: Counters = { bytes: 0, responses: 0, requests: 0, reconnects: 0, cpuS: 0 };
    const first = await gen.synced();
    const syncS = (await gen.quiet()) / 1000; // from the first client's start to the last response before 2 s of quiet
    const syncCpuS = cpu() - cpu0;
    const afterSync = await counters();
    log(`  synced in ${syncS.toFixed(1)} s (all ACKed at ${(first.allAckedMs / 1000).toFixed(1)} s), ${syncCpuS.toFixed(1)} CPU-s, ${mb(afterSync.bytes)} MB, loadgen ${afterSync.cpuS} CPU-s`);

    const scenario = async (n: number, one: (k: number) => Promise<number[]>): Promise<{ ms: number[]; cost: Cost; undelivered: number }> => {
      const c0 = await counters();
      const t0 = cpu();
      const ms: number[] = [];
      for (let k = 0; k < n; k++) {
        ms.push(...(await one(k)));
        await new Promise((r) => setTimeout(r, 300));
      }
      const undelivered = ms.filter((x) => Number.isNaN(x)).length;
      if (undelivered) log(`  ${undelivered} of ${ms.length} deliveries not within ${MARK_TIMEOUT_MS} ms (counted as ${MARK_TIMEOUT_MS} ms)`);
      return { ms: ms.map((x) => (Number.isNaN(x) ? MARK_TIMEOUT_MS : x)), cost: costOf(c0, await counters(), cpu() - t0, n), undelivered };
    };
    // A counter across runs: every change really changes something (state carries over between runs).
    const endpoint = await scenario(CHANGES, (k) => {
      const addrs = (runNo * CHANGES + k) % 2 === 0 ? ["10.200.0.1", "10.200.0.2"] : ["10.200.0.1"];
      return gen!.measure([{ type: XDS_TYPES.endpoint, names: [edsName("endpoints")], changed: true }], () => api.discovery.replaceNamespacedEndpointSlice({ name: "endpoints-1", namespace: NS, body: slice("endpoints", addrs) }));
    });
    log(`  endpoint p99 ${Math.round(pct(endpoint.ms, 0.99))} ms`);
    const route = await scenario(CHANGES, (k) => {
      const subset = (runNo * CHANGES + k) % 2 === 0 ? "v2" : "v1";
      return gen!.measure([{ type: XDS_TYPES.route, names: [], changed: true }], () => api.custom.patchNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: NS, plural: "virtualservices", name: "svc-0", body: { spec: vsBody(0, subset).spec } }, MERGE_PATCH));
    });
    log(`  route p99 ${Math.round(pct(route.ms, 0.99))} ms`);
    const fresh = await scenario(Math.max(1, Math.floor(CHANGES / 2)), (k) => {
      const name = `new-${runNo}-${k}`;
      return gen!.measure(
        [
          { type: XDS_TYPES.cluster, names: [edsName(name)] },
          { type: XDS_TYPES.endpoint, names: [edsName(name)] },
          { type: XDS_TYPES.route, names: [], changed: true },
        ],
        () => selectorlessService(api, name, ["10.201.0.1"]),
      );
    });
    log(`  new service p99 ${Math.round(pct(fresh.ms, 0.99))} ms`);

    // Churn: the EndpointSlice of "manual" rewritten `rate` times a second, one address per write.
    const churn: Row["churn"] = [];
    for (const rate of CHURN_RATES) {
      await gen.churnBegin(edsName("manual"));
      const t0 = cpu();
      const writes: Record<number, number> = {};
      const total = Math.max(1, Math.round(rate * CHURN_SECONDS));
      const begin = now();
      // One write at a time: concurrent writes may be applied out of order, and the last state must
      // be the last write. A slow API server lowers the rate actually written (reported).
      for (let i = 0; i < total; i++) {
        const due = begin + (i * 1000) / rate;
        const wait = due - now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const k = ++churnCounter;
        writes[k] = now();
        await api.discovery.replaceNamespacedEndpointSlice({ name: "manual-1", namespace: NS, body: slice("manual", [churnAddress(k)]) });
      }
      const achievedPerS = total / Math.max(0.001, (now() - begin) / 1000);
      const r = await gen.churnEnd(writes, 60_000);
      churn.push({ rate, writes: total, achievedPerS: round2(achievedPerS), p50Ms: Math.round(r.p50), p99Ms: Math.round(r.p99), maxMs: Math.round(r.max), undelivered: r.undelivered, cpuS: round2(cpu() - t0) });
      log(`  churn ${rate}/s: p99 ${Math.round(r.p99)} ms, ${r.undelivered} undelivered`);
      await new Promise((res) => setTimeout(res, 1000));
    }
    const beforeStorms = await counters();
    const rssMB = Math.round(statusKb(pid, "VmRSS") / 1024);
    const peakRssMB = Math.round(statusKb(pid, "VmHWM") / 1024);
    const totalCpuS = cpu() - cpu0;

    const storms: Row["storms"] = [];
    for (const count of pair < EXTRA_PAIRS ? STORMS : []) {
      if (kind !== "weft" && count > ISTIOD_STORM_MAX) continue;
      const t0 = cpu();
      const r = await gen.storm(count, STORM_TIMEOUT_S * 1000);
      storms.push({ count, seconds: r.synced === count ? round2(r.ms / 1000) : NaN, synced: r.synced, retried: r.reconnects, cpuS: round2(cpu() - t0), peakRssMB: Math.round(statusKb(pid, "VmHWM") / 1024), mb: mb(r.bytes), responses: r.responses });
      log(`  storm ${count}: ${r.synced === count ? `${(r.ms / 1000).toFixed(1)} s` : `not within ${STORM_TIMEOUT_S} s`}, ${r.synced}/${count} synced`);
      await new Promise((res) => setTimeout(res, 2000));
    }
    let envoys: Row["envoys"];
    if (ENVOYS > 0 && pair < EXTRA_PAIRS) {
      await gen.stop();
      envoys = await realEnvoys(server.xds, mode, api, JSON.parse(readFileSync(files.sidecars, "utf8")) as Sidecar[], { edit: (runNo * CHANGES + CHANGES) % 2 === 0 ? "v2" : "v1", restore: (runNo * CHANGES + CHANGES - 1) % 2 === 0 ? "v2" : "v1" }, cpu);
      log(`  ${ENVOYS} real Envoys: started in ${envoys!.startS} s, all ACKed the edit in ${envoys!.allAckedMs} ms (${envoys!.acked} did), ${envoys!.rejectedUpdates} updates rejected`);
    }
    return {
      envoys,
      server: kind,
      label: LABEL[kind],
      mode,
      pair,
      proxies,
      syncS: round2(syncS),
      syncRetries: afterSync.reconnects,
      sync: costOf(zero, afterSync, syncCpuS),
      endpointP50Ms: Math.round(pct(endpoint.ms, 0.5)),
      endpointP99Ms: Math.round(pct(endpoint.ms, 0.99)),
      endpoint: endpoint.cost,
      routeP50Ms: Math.round(pct(route.ms, 0.5)),
      routeP99Ms: Math.round(pct(route.ms, 0.99)),
      route: route.cost,
      newServiceP50Ms: Math.round(pct(fresh.ms, 0.5)),
      newServiceP99Ms: Math.round(pct(fresh.ms, 0.99)),
      newService: fresh.cost,
      churn,
      churnMaxRateUnder1s: Math.max(0, ...churn.filter((c) => c.p99Ms < 1000 && c.undelivered === 0).map((c) => c.rate)),
      storms,
      totalCpuS: round2(totalCpuS),
      loadgenCpuS: round2(beforeStorms.cpuS),
      loadAverage: round2(load),
      undelivered: endpoint.undelivered + route.undelivered + fresh.undelivered,
      rssMB,
      peakRssMB,
      total: costOf(zero, beforeStorms, totalCpuS),
    };
  } catch (err) {
    throw starved ? new Error(starved, { cause: err }) : err;
  } finally {
    clearInterval(guard);
    await gen?.stop();
    await stopChild(server.proc);
    if (!process.env.BENCH_KEEP) rmSync(server.dir, { recursive: true, force: true });
  }
}

const MIN_AVAILABLE_GB = Number(process.env.BENCH_MIN_AVAILABLE_GB ?? 3);
function memAvailableGB(): number {
  const kb = Number(/^MemAvailable:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? NaN);
  return kb / 2 ** 20;
}

function log(msg: string): void {
  process.stdout.write(`[istiod-bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function main(): Promise<void> {
  if (SERVERS.includes("weft") && !existsSync(WEFT_MAIN)) throw new Error(`${WEFT_MAIN} is missing: run \`npm run build\` first (the bench runs Weft from dist/, as users do)`);
  const load0 = os.loadavg();
  const envoyVersion = ENVOYS > 0 ? (/version: (\S+)/.exec(execFileSync(await findEnvoyBinary(), ["--version"], { encoding: "utf8" }))?.[1] ?? "?") : "";
  const { bin: istiodBin, version: istiodVersion } = SERVERS.some((s) => s.startsWith("istiod")) ? istiodBinary() : { bin: "", version: "" };
  const crds = istioCrdsFile(istiodVersion || "v0.0.0-20260827124520-eed52ebb66ad");
  execFileSync("go", ["build", "-o", LOADGEN, "./loadgen"], { cwd: GO_DIR, stdio: "inherit" });
  const cluster = await startKubernetes();
  const nodes = await startVirtualNodes(cluster.kubeConfig).catch(async (err: unknown) => {
    await cluster.stop();
    throw err;
  });
  const work = mkdtempSync(path.join(os.tmpdir(), "weft-bench-istiod-"));
  // BENCH_ISTIOD_APPEND=1: keep the rows of this shape's last results for the servers not run now
  // (e.g. istiod as shipped measured after istiod raised and Weft; ratios pair rows by pair number).
  const rows: Row[] = APPEND && existsSync(path.join(OUT_DIR, `istiod-vs-weft-${SIZE}.json`)) ? (JSON.parse(readFileSync(path.join(OUT_DIR, `istiod-vs-weft-${SIZE}.json`), "utf8")) as { rows: Row[] }).rows.filter((r) => !SERVERS.includes(r.server)) : [];
  try {
    const api = apis(cluster.kubeConfig);
    const applied = await cluster.kubectl(["apply", "--server-side", "-f", crds.file], { timeoutMs: 180_000 });
    if (applied.code !== 0) throw new Error(`kubectl apply ${crds.file}: ${applied.stderr}`);
    const est = await cluster.kubectl(["wait", "--for=condition=Established", "crd", "--all", "--timeout=120s"], { timeoutMs: 130_000 });
    if (est.code !== 0) throw new Error(`CRDs not established: ${est.stderr}`);
    await createNamespace(api, "istio-system");
    await createNamespace(api, NS);
    const setupStart = Date.now();
    await createServices(api, NS, SERVICES);
    await createPods(api, NS, { from: 0, count: SERVICES * 2, services: SERVICES });
    await selectorlessService(api, "manual", [churnAddress(0)]);
    await selectorlessService(api, "endpoints", ["10.200.0.1"]);
    await inParallel(Array.from({ length: SERVICES }, (_, i) => i), 8, async (i) => {
      await api.custom.createNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: NS, plural: "destinationrules", body: drBody(i) });
      await api.custom.createNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: NS, plural: "virtualservices", body: vsBody(i, "v1") });
    });
    type Pod = { metadata?: { name?: string; labels?: Record<string, string> }; spec?: { serviceAccountName?: string }; status?: { podIP?: string } };
    let pods: Pod[] = [];
    await until(async () => {
      pods = (await api.core.listNamespacedPod({ namespace: NS })).items as Pod[];
      return pods.length === SERVICES * 2 && pods.every((p) => p.status?.podIP);
    }, "every pod to have status.podIP", 900_000, 1000);
    // The EndpointSlice controller lags the pods: a server started before it is done syncs
    // through thousands of endpoint changes (measured: 26,000-50,000 responses instead of 8000,
    // SotW sync 40-45 s instead of 15 s). Wait until every pod is a ready endpoint and the
    // slices have not changed for 3 s.
    let newest = -1;
    let stableSince = Date.now();
    await until(async () => {
      const slices = (await api.discovery.listNamespacedEndpointSlice({ namespace: NS })).items;
      const managed = slices.filter((s) => s.metadata?.labels?.["endpointslice.kubernetes.io/managed-by"] === "endpointslice-controller.k8s.io");
      const ready = managed.reduce((n, s) => n + (s.endpoints ?? []).filter((e) => e.conditions?.ready).length, 0);
      const latest = slices.reduce((m, s) => Math.max(m, Number(s.metadata?.resourceVersion ?? 0)), 0);
      if (ready < SERVICES * 2 || latest !== newest) {
        newest = latest;
        stableSince = Date.now();
        return false;
      }
      return Date.now() - stableSince >= 3000;
    }, "every pod a ready endpoint, EndpointSlices unchanged for 3 s", 600_000, 1000);
    const setupS = (Date.now() - setupStart) / 1000;
    log(`setup: ${SERVICES} services, ${pods.length} pods in ${setupS.toFixed(0)} s`);
    const sidecars = pods.map((p) => ({ ip: p.status!.podIP!, pod: p.metadata!.name!, namespace: NS, labels: p.metadata!.labels ?? {}, serviceAccount: p.spec?.serviceAccountName ?? "default" }));
    const files = { sidecars: path.join(work, "sidecars.json"), nodes: path.join(work, "nodes.json") };
    writeFileSync(files.sidecars, JSON.stringify(sidecars));
    writeFileSync(files.nodes, JSON.stringify(sidecars.map(istioNode))); // the loadgen's -node-meta

    let runNo = 0;
    for (let pair = 0; pair < PAIRS; pair++) {
      for (const mode of MODES) {
        // Alternate the order within pairs so neither side always runs first.
        const order = pair % 2 === 0 ? SERVERS : [...SERVERS].reverse();
        for (const kind of order) {
          log(`pair ${pair + 1}/${PAIRS} ${mode} ${LABEL[kind]} (load ${os.loadavg()[0]!.toFixed(1)})`);
          const row = await oneRun(kind, mode, pair, cluster, api, istiodBin, files, sidecars.length, runNo++);
          process.stdout.write(`  ${JSON.stringify(row)}\n`);
          rows.push(row);
          // Written after every run: a long run that fails later keeps what it measured.
          writeResults(rows, { envoyVersion, istiodVersion, crds, setupS, load0, load1: os.loadavg(), proxies: sidecars.length, complete: false });
        }
      }
    }
    writeResults(rows, { envoyVersion, istiodVersion, crds, setupS, load0, load1: os.loadavg(), proxies: sidecars.length, complete: true });
  } finally {
    killAll();
    rmSync(work, { recursive: true, force: true });
    await nodes.stop();
    await cluster.stop();
  }
}

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
};

/** The figures compared between servers (lower is better for every one). */
const METRICS: { name: string; of: (r: Row) => number }[] = [
  { name: "initial sync s", of: (r) => r.syncS },
  { name: "initial sync CPU-s", of: (r) => r.sync.cpuS },
  { name: "initial sync MB sent", of: (r) => r.sync.mb },
  { name: "initial sync responses", of: (r) => r.sync.responses },
  { name: "endpoint change p99 ms", of: (r) => r.endpointP99Ms },
  { name: "endpoint change CPU-s", of: (r) => r.endpoint.cpuS },
  { name: "endpoint change MB sent", of: (r) => r.endpoint.mb },
  { name: "endpoint change requests received", of: (r) => r.endpoint.requests },
  { name: "route change p99 ms", of: (r) => r.routeP99Ms },
  { name: "route change CPU-s", of: (r) => r.route.cpuS },
  { name: "route change MB sent", of: (r) => r.route.mb },
  { name: "new service p99 ms", of: (r) => r.newServiceP99Ms },
  { name: "new service CPU-s", of: (r) => r.newService.cpuS },
  ...CHURN_RATES.map((rate) => ({ name: `churn ${rate}/s p99 ms`, of: (r: Row) => r.churn.find((c) => c.rate === rate)?.p99Ms ?? NaN })),
  ...STORMS.map((count) => ({ name: `storm ${count} s`, of: (r: Row) => r.storms.find((s) => s.count === count && s.synced === count)?.seconds ?? NaN })),
  ...STORMS.map((count) => ({ name: `storm ${count} CPU-s`, of: (r: Row) => r.storms.find((s) => s.count === count && s.synced === count)?.cpuS ?? NaN })),
  ...(ENVOYS > 0 ? [{ name: `${ENVOYS} real Envoys: edit all ACKed ms`, of: (r: Row) => r.envoys?.allAckedMs ?? NaN }, { name: `${ENVOYS} real Envoys: edit CPU-s`, of: (r: Row) => r.envoys?.cpuS ?? NaN }] : []),
  { name: "CPU-s total (before storms)", of: (r) => r.totalCpuS },
  { name: "RSS MB after", of: (r) => r.rssMB },
  { name: "peak RSS MB", of: (r) => r.peakRssMB },
];

/** Per mode, per metric: the median over pairs of Weft / istiod (as shipped, and raised) of the same pair. */
function ratios(rows: Row[]): string {
  const head = ["metric", ...MODES.flatMap((m) => [`Weft / istiod raised (${m})`, `Weft / istiod as shipped (${m})`])];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const metric of METRICS) {
    const cells = MODES.flatMap((mode) =>
      (["istiod-raised", "istiod"] as const).map((base) => {
        const per: number[] = [];
        for (let p = 0; p < PAIRS; p++) {
          const w = rows.find((r) => r.server === "weft" && r.mode === mode && r.pair === p);
          const b = rows.find((r) => r.server === base && r.mode === mode && r.pair === p);
          if (w && b && metric.of(b) > 0) per.push(metric.of(w) / metric.of(b));
        }
        const m = median(per);
        return Number.isFinite(m) ? `${m < 0.1 ? m.toFixed(3) : m.toFixed(2)} (${per.length})` : "—";
      }),
    );
    lines.push(`| ${metric.name} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** Per server and mode, the median over pairs of each figure. */
function medians(rows: Row[]): string {
  const head = ["server", "xDS", ...METRICS.map((m) => m.name)];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const mode of MODES)
    for (const kind of ["istiod", "istiod-raised", "weft"] as const) {
      const mine = rows.filter((r) => r.server === kind && r.mode === mode);
      if (mine.length) lines.push(`| ${LABEL[kind]} | ${mode} | ${METRICS.map((m) => String(+median(mine.map(m.of)).toFixed(2))).join(" | ")} |`);
    }
  return lines.join("\n");
}

function writeResults(rows: Row[], m: { date?: string; weft?: string; command?: string; envoyVersion: string; istiodVersion: string; crds: { file: string; apiVersion: string }; setupS: number; load0: number[]; load1: number[]; proxies: number; complete: boolean; loadGenerator?: string }): void {
  const env = `BENCH_ISTIOD_SIZE=${SIZE} BENCH_SERVICES=${SERVICES} BENCH_PAIRS=${PAIRS} BENCH_CHANGES=${CHANGES} BENCH_MAX_SYNCING=${MAX_SYNCING} BENCH_CHURN_RATES=${CHURN_RATES.join(",")} BENCH_CHURN_SECONDS=${CHURN_SECONDS} BENCH_STORMS=${STORMS.join(",")} BENCH_MODES=${MODES.join(",")} BENCH_SERVERS=${SERVERS.join(",")}`;
  const meta = {
    date: m.date ?? new Date().toISOString(),
    complete: m.complete,
    command: m.command ?? `npm run build && ${env} npx tsx bench/istiod/run.ts`,
    istiod: `istio.io/istio/pilot/cmd/pilot-discovery@${m.istiodVersion} (scripts/cached-go-build.sh istiod)`,
    istioCrds: `istio.io/api@${m.crds.apiVersion} kubernetes/customresourcedefinitions.gen.yaml`,
    weft: m.weft ?? WEFT_AT_START,
    kubernetes: "kube-apiserver + kube-controller-manager from scripts/cached-go-build.sh kubernetes",
    loadGenerator: m.loadGenerator ?? LOADGEN_COMMAND,
    node: process.version,
    ...(m.envoyVersion ? { envoy: `${m.envoyVersion} (pip wheel envoy, --concurrency 1)` } : {}),
    cpus: os.cpus().length,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    loadAverageBefore: m.load0.map((x) => +x.toFixed(2)),
    loadAverageAfter: m.load1.map((x) => +x.toFixed(2)),
    services: SERVICES + 2,
    pods: SERVICES * 2,
    destinationRules: SERVICES,
    virtualServices: SERVICES,
    proxies: m.proxies,
    maxSyncingAtOnce: MAX_SYNCING || "all",
    changesPerScenario: CHANGES,
    setupSeconds: +m.setupS.toFixed(1),
  };
  const runs = [
    "| server | xDS | pair | initial sync s | retried | sync CPU-s / MB / responses / requests | endpoint p50 / p99 ms | per endpoint change CPU-s / MB / responses / requests | route p50 / p99 ms | per route change CPU-s / MB / responses / requests | new service p50 / p99 ms | per new service CPU-s / MB | churn p99 ms (rate/s: p99, undelivered) | max churn rate p99 < 1 s | CPU-s total | RSS / peak MB | MB sent total / responses / requests | load generator CPU-s | undelivered | load average at start |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.label} | ${r.mode} | ${r.pair + 1} | ${r.syncS} | ${r.syncRetries} | ${r.sync.cpuS} / ${r.sync.mb} / ${r.sync.responses} / ${r.sync.requests} | ${r.endpointP50Ms} / ${r.endpointP99Ms} | ${r.endpoint.cpuS} / ${r.endpoint.mb} / ${r.endpoint.responses} / ${r.endpoint.requests} | ${r.routeP50Ms} / ${r.routeP99Ms} | ${r.route.cpuS} / ${r.route.mb} / ${r.route.responses} / ${r.route.requests} | ${r.newServiceP50Ms} / ${r.newServiceP99Ms} | ${r.newService.cpuS} / ${r.newService.mb} | ${r.churn.map((c) => `${c.rate}: ${c.p99Ms}${c.undelivered ? `, ${c.undelivered} undelivered` : ""}${c.achievedPerS < c.rate * 0.9 ? ` (wrote ${c.achievedPerS}/s)` : ""}`).join("; ")} | ${r.churnMaxRateUnder1s} | ${r.totalCpuS} | ${r.rssMB} / ${r.peakRssMB} | ${r.total.mb} / ${r.total.responses} / ${r.total.requests} | ${r.loadgenCpuS ?? "—"} | ${r.undelivered ?? "—"} | ${r.loadAverage ?? "—"} |`),
  ].join("\n");
  const stormTable = STORMS.length
    ? [
        "| server | xDS | pair | storm | all synced in s | synced | retried | CPU-s | peak RSS MB | MB sent | responses |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        ...rows.flatMap((r) => r.storms.map((s) => `| ${r.label} | ${r.mode} | ${r.pair + 1} | ${s.count} | ${s.synced === s.count ? s.seconds : `not within ${STORM_TIMEOUT_S}`} | ${s.synced} | ${s.retried} | ${s.cpuS} | ${s.peakRssMB} | ${s.mb} | ${s.responses} |`)),
      ].join("\n")
    : "";
  const envoyTable = rows.some((r) => r.envoys)
    ? [
        "| server | xDS | pair | Envoys | all hold routes after s (10 started at a time) | LIVE | updates rejected (NACKs) | edit: all applied ms | p50 ms | applied | server CPU-s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        ...rows.flatMap((r) => (r.envoys ? [`| ${r.label} | ${r.mode} | ${r.pair + 1} | ${r.envoys.count} | ${r.envoys.startS} | ${r.envoys.live} | ${r.envoys.rejectedUpdates} | ${r.envoys.allAckedMs} | ${r.envoys.p50Ms} | ${r.envoys.acked} | ${r.envoys.cpuS} |`] : [])),
      ].join("\n")
    : "";
  const caveat = `> **${FULL ? "ISTIO'S LOAD SHAPE" : "SMALL SHAPE"}${m.complete ? "" : " (INCOMPLETE: written after each run)"}, ${PAIRS} pair(s), 2-core machine shared with other engineers' work** (load average ${m.load0[0]!.toFixed(1)} before, ${m.load1[0]!.toFixed(1)} after); the load generator, the API server, etcd and the controller-manager share the same cores.${PAIRS < 3 ? " Fewer than 3 pairs: ratios are indicative only." : ""}`;
  const md =
    `## ${FULL ? "Istio's load shape" : "Small shape"}: ${SERVICES} services, ${m.proxies} proxies\n\n${caveat}\n\n${Object.entries(meta).map(([k, v]) => `- ${k}: ${Array.isArray(v) ? v.join(", ") : v}`).join("\n")}\n\n` +
    `### Medians over pairs of per-pair ratios (Weft / istiod; below 1: Weft better; in brackets the number of pairs)\n\n${ratios(rows)}\n\n### Medians over pairs\n\n${medians(rows)}\n\n### Per run\n\n${runs}\n\n${stormTable ? `### Connection storms (after the other scenarios, the sidecars still connected; istiod only up to ${ISTIOD_STORM_MAX} clients: as shipped it admits 25 streams/s; with throttles raised a 5000-storm held 7.8 GB on the small shape, so 10,000 was not run on this shared machine)\n\n${stormTable}\n\n` : ""}${envoyTable ? `### Real Envoys on one VirtualService edit (Envoy ${m.envoyVersion}, the simulated sidecars stopped; time until each Envoy applied a changed route configuration, polled every ~100 ms)\n\n${envoyTable}\n\n` : ""}`;
  const dir = OUT_DIR;
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `istiod-vs-weft-${SIZE}.json`), JSON.stringify({ meta, rows }, null, 2) + "\n");
  writeFileSync(path.join(dir, `istiod-vs-weft-${SIZE}.md`), md);
  // The summary file: both shapes (whichever have run), and how measured.
  const parts = ["full", "small"].map((s) => path.join(dir, `istiod-vs-weft-${s}.md`)).filter((f) => existsSync(f)).map((f) => readFileSync(f, "utf8"));
  const shapes = Object.fromEntries(["full", "small"].map((s) => [s, path.join(dir, `istiod-vs-weft-${s}.json`)] as const).filter(([, f]) => existsSync(f)).map(([s, f]) => [s, JSON.parse(readFileSync(f, "utf8")) as unknown]));
  writeFileSync(path.join(dir, "istiod-vs-weft.json"), JSON.stringify(shapes, null, 2) + "\n");
  const noFull = existsSync(path.join(dir, "istiod-vs-weft-full.md")) ? "" : `> **Istio's load shape (BENCH_ISTIOD_SIZE=full) has not completed on this machine (2026-12-02):** with this TypeScript load generator in one Node process, Weft's SotW sync of 2000 proxies (at most 100 syncing at once) was not done after 16 min at load 18-35: the generator had used 209 CPU-s and 5.5 GB, Weft 52 CPU-s and 506 MB. The generator, not the server, is the limit there; the Go load generator (bench/go/loadgen, -node-meta for Istio's identity) is the next step.\n\n`;
  // Hand-written reading of the figures (kept across runs; update it when the figures change).
  const notesFile = path.join(dir, "istiod-vs-weft-notes.md");
  const notes = existsSync(notesFile) ? `${readFileSync(notesFile, "utf8").trim()}\n\n` : "";
  writeFileSync(path.join(dir, "istiod-vs-weft.md"), `# istiod vs Weft on the same kube-apiserver, same configuration, same load generator\n\nEvery run's figures: istiod-vs-weft.json (both shapes), also istiod-vs-weft-<shape>.json.\n\n${noFull}${notes}${parts.join("\n")}\n${HOW_MEASURED}\n`);
  process.stdout.write(`\n${md}\n`);
}

const HOW_MEASURED =
  `## How measured\n\n` +
  `One load generator, bench/go/loadgen (Go; \`${LOADGEN_COMMAND}\`), one simulated sidecar per pod with Istio's node identity from -node-meta (id \`sidecar~<podIP>~<pod>.${NS}~${NS}.svc.cluster.local\`, NAMESPACE, LABELS as a map, CLUSTER_ID=Kubernetes, ISTIO_VERSION, INTERCEPTION_MODE, POD_NAME, SERVICE_ACCOUNT), one gRPC connection each, wildcard CDS, the EDS names of its clusters, LDS once clusters are warm, then the RDS names of its listeners, ACKing every response as Envoy does; a refused or failed stream is re-opened after a jittered backoff (base 500 ms, capped at 5 s; "retried"). It keeps names, versions and a 64-bit hash of each resource body (so a mark can wait for changed content), never bodies. Up to 2026-12-02 12:38 (the small shape below, unless it says otherwise) the generator was a TypeScript one in one Node process (bench/istiod/sidecars.ts, removed: it could not sync Istio's shape); its figures are not comparable with the Go generator's in absolute terms (different byte counting: resource bytes there, whole DiscoveryResponses here; receipt time there, ACK time here), only its ratios. ` +
  `At Istio's shape at most 100 clients are between their start and holding all four types (a rolling fleet; 2000 connecting to istiod at once did not finish on 24 GB, ../shared/NOTES.md). ` +
  `Initial sync: from the first client's start to the last response before 2 s of quiet, once every client holds clusters, listeners, endpoints and routes. ` +
  `Endpoint change: the hand-written EndpointSlice of the selector-less Service "endpoints" gains or loses an address; route change: VirtualService svc-0 flips its subset (merge patch); new service: a selector-less Service + EndpointSlice created; each timed from the loadgen's marks (registered just before the write) until every client ACKed a response carrying the change (endpoint: a changed body of that EDS resource; route: any changed route configuration; new service: its cluster, its endpoints and a changed route configuration, the latest of the three); p50/p99 over all clients of all changes; a delivery not within ${MARK_TIMEOUT_MS / 1000} s counts as ${MARK_TIMEOUT_MS / 1000} s ("undelivered"). ` +
  `Churn: the EndpointSlice of Service "manual" rewritten R times a second for ${CHURN_SECONDS} s, write k holding the one address 10.202.k/256.k%256; a write counts as delivered to a client when it holds that state or a later one (debouncing servers skip states); p99 over all clients x writes; "max churn rate" is the highest rate with p99 < 1 s and nothing undelivered. ` +
  `Storms: N more clients (identities of the pods reused in turn) started at once after the other scenarios, timed until all hold all four types (bound ${STORM_TIMEOUT_S} s). ` +
  `CPU-seconds, RSS and peak RSS (VmHWM) of the control-plane process from /proc (istiod: the Go process; Weft: its Node process run from dist/). MB sent: serialized DiscoveryResponses the clients received (proto size, no gRPC framing); responses: messages received, requests: messages the clients sent (subscriptions, ACKs). The load generator's own CPU-seconds are in the per-run table (it shares the 2 cores). ` +
  `istiod runs out of cluster per ../shared/NOTES.md (PILOT_ENABLE_METADATA_EXCHANGE=false PILOT_ENABLE_ALPN_FILTER=false, enableAutoMtls false, no default metrics provider); "as shipped": its defaults (on 2 cores it admits 25 new streams/s); "throttles raised": PILOT_MAX_REQUESTS_PER_SECOND=100000 PILOT_PUSH_THROTTLE=10000. Weft: \`node dist/src/cli/main.js serve --kubernetes --leader-elect false --write-status false\`. A fresh server process and a fresh load generator per run; the order of the servers reverses every other pair; ratios are taken within a pair, then the median over pairs.`;

/** BENCH_ISTIOD_REWRITE=1: rewrite the result files of this shape from its JSON (after a change to how they are written). */
function rewrite(): void {
  const { meta, rows } = JSON.parse(readFileSync(path.join(OUT_DIR, `istiod-vs-weft-${SIZE}.json`), "utf8")) as { meta: Record<string, unknown>; rows: Row[] };
  const load = (k: string) => (meta[k] as number[]).map(Number);
  writeResults(rows, { envoyVersion: String(meta.envoy ?? "").split(" ")[0]!, istiodVersion: String(meta.istiod).split("@")[1]!.split(" ")[0]!, crds: { file: "", apiVersion: String(meta.istioCrds).split("@")[1]!.split(" ")[0]! }, setupS: Number(meta.setupSeconds), load0: load("loadAverageBefore"), load1: load("loadAverageAfter"), proxies: Number(meta.proxies), complete: meta.complete === true, date: String(meta.date), weft: String(meta.weft), command: String(meta.command), loadGenerator: String(meta.loadGenerator ?? "bench/istiod/sidecars.ts (TypeScript, one Node process; removed since)") });
}

(process.env.BENCH_ISTIOD_REWRITE ? Promise.resolve().then(rewrite) : main()).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  },
);
