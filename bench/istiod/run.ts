// Benchmark: istiod and Weft side by side on the same real kube-apiserver (e2e/kubernetes/cluster.ts),
// the same Istio configuration as Kubernetes objects and the same load generator
// (bench/istiod/sidecars.ts: simulated sidecars with Istio's node identity, SotW or delta, in a child
// process). Servers: istiod as shipped, istiod with its throttles raised, Weft in Kubernetes mode
// (`weft serve --kubernetes`); a fresh server process per run, runs in alternating pairs.
// Shape: BENCH_SERVICES Services (+ a selector-less Service "manual" with a hand-written
// EndpointSlice), 2 pods each (labels app/version, status.podIP from the kubelet harness's virtual
// node), one DestinationRule with subsets v1/v2 and one VirtualService per Service; one simulated
// sidecar per pod. Scenarios: initial sync, endpoint change, route change (VirtualService edit), new
// service -> every client got it (and ACKed: the client ACKs as it receives). The control plane's
// CPU-seconds and RSS come from /proc; bytes are resource bytes the clients received.
//
//   npx tsx bench/istiod/run.ts
//   BENCH_SERVICES=50 BENCH_PAIRS=1 BENCH_CHANGES=5 BENCH_MODES=sotw,delta BENCH_SERVERS=istiod,istiod-raised,weft
// Needs the istiod binary (scripts/cached-go-build.sh istiod; ~10-30 min once) and Istio's CRDs from
// the Go module istio.io/api (downloaded with `go mod download` when absent).
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { startKubernetes, type KubernetesCluster } from "../../e2e/kubernetes/cluster.js";
import { istioCrdsFile } from "../../e2e/kubernetes/istio-crds.js";
import { XDS_TYPES } from "../../src/envoy/type-urls.js";
import { freePort } from "../../src/runner/free-port.js";
import { cpuSecondsIfAlive, statusKb } from "../process-stats.js";
import { apis, createNamespace, createPods, createServices, inParallel, startVirtualNodes, until, MERGE_PATCH, type LoadApis } from "../kubernetes/cluster-load.js";

const SERVICES = Number(process.env.BENCH_SERVICES ?? 50);
const PAIRS = Number(process.env.BENCH_PAIRS ?? 1);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 5);
const MODES = (process.env.BENCH_MODES ?? "sotw,delta").split(",") as ("sotw" | "delta")[];
const SERVERS = (process.env.BENCH_SERVERS ?? "istiod,istiod-raised,weft").split(",") as ServerKind[];
const NS = "bench";
const ROOT = path.resolve(import.meta.dirname, "../..");

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
    const proc = track(
      spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src/cli/main.ts"), "serve", "--kubernetes", "--kubeconfig", cluster.kubeconfigPath, "--xds-port", String(xdsPort), "--admin-port", String(admin), "--leader-elect", "false", "--write-status", "false", "--state-dir", path.join(dir, "state")], { cwd: ROOT, stdio: ["ignore", fd, fd], detached: true }),
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
class Sidecars {
  private readonly answers: ((o: Record<string, unknown>) => void)[] = [];
  constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      const o = JSON.parse(line) as Record<string, unknown>;
      this.answers.shift()?.(o);
    });
  }
  static start(xds: string, mode: string, sidecars: unknown[]): Sidecars {
    const proc = track(spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "bench/istiod/sidecars.ts")], { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"], detached: true, env: { ...process.env, XDS_TARGET: xds, MODE: mode, SIDECARS_JSON: JSON.stringify(sidecars) } }));
    return new Sidecars(proc);
  }
  ask<T>(cmd: Record<string, unknown>): Promise<T> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`the sidecars process exited (${code}) during ${JSON.stringify(cmd)}`));
      this.proc.once("exit", onExit);
      this.answers.push((o) => {
        this.proc.off("exit", onExit);
        if (o.error) reject(new Error(`sidecars: ${String(o.error)} (command ${JSON.stringify(cmd)})`));
        else resolve(o as T);
      });
      this.proc.stdin!.write(JSON.stringify(cmd) + "\n");
    });
  }
}

// --- the shape ------------------------------------------------------------------------------------
const vsBody = (i: number, subset: string) => ({ apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name: `svc-${i}`, namespace: NS }, spec: { hosts: [`svc-${i}`], http: [{ route: [{ destination: { host: `svc-${i}`, subset } }] }] } });
const drBody = (i: number) => ({ apiVersion: "networking.istio.io/v1", kind: "DestinationRule", metadata: { name: `svc-${i}`, namespace: NS }, spec: { host: `svc-${i}`, subsets: [{ name: "v1", labels: { version: "v1" } }, { name: "v2", labels: { version: "v2" } }] } });
const slice = (service: string, addresses: string[]) => ({ apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: { name: `${service}-1`, namespace: NS, labels: { "kubernetes.io/service-name": service, "endpointslice.kubernetes.io/managed-by": "weft-bench" } }, addressType: "IPv4", ports: [{ name: "http", port: 8080, protocol: "TCP" }], endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })) });
const now = () => performance.timeOrigin + performance.now();
const host = (name: string) => `${name}.${NS}.svc.cluster.local`;

async function selectorlessService(api: LoadApis, name: string, addresses: string[]): Promise<void> {
  await api.core.createNamespacedService({ namespace: NS, body: { metadata: { name }, spec: { ports: [{ name: "http", port: 80, targetPort: 8080 }] } } });
  await api.discovery.createNamespacedEndpointSlice({ namespace: NS, body: slice(name, addresses) });
}

function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! : NaN;
}

interface Row {
  server: ServerKind;
  label: string;
  mode: string;
  pair: number;
  proxies: number;
  syncS: number;
  syncCpuS: number;
  syncMB: number;
  /** Streams refused or failed during the initial sync, retried with Envoy's backoff. */
  syncRetries: number;
  endpointP50Ms: number;
  endpointP99Ms: number;
  routeP50Ms: number;
  routeP99Ms: number;
  routeCpuS: number;
  newServiceP50Ms: number;
  newServiceP99Ms: number;
  totalCpuS: number;
  rssMB: number;
  peakRssMB: number;
  totalMB: number;
  responses: number;
}

async function oneRun(kind: ServerKind, mode: "sotw" | "delta", pair: number, cluster: KubernetesCluster, api: LoadApis, istiodBin: string, sidecars: unknown[], runNo: number): Promise<Row> {
  const server = await startServer(kind, cluster, istiodBin);
  const pid = server.proc.pid!;
  let gen: Sidecars | undefined;
  try {
    const cpu0 = cpuSecondsIfAlive(pid);
    gen = Sidecars.start(server.xds, mode, sidecars);
    const sync = await gen.ask<{ startedAt: number; lastResponseAt: number }>({ cmd: "sync", timeoutMs: 600_000 });
    const syncS = (sync.lastResponseAt - sync.startedAt) / 1000; // from the first client's start
    const syncCpuS = cpuSecondsIfAlive(pid) - cpu0;
    const { bytes: syncBytes, reconnects: syncRetries } = await gen.ask<{ bytes: number; reconnects: number }>({ cmd: "bytes" });

    const measure = async (watch: { type: string; match: string }[], change: () => Promise<unknown>): Promise<number[]> => {
      await gen!.ask({ cmd: "mark", watch });
      const start = now();
      await change();
      const { done } = await gen!.ask<{ done: number[] }>({ cmd: "wait", timeoutMs: 120_000 });
      await new Promise((r) => setTimeout(r, 300));
      return done.map((d) => d - start);
    };
    const endpoint: number[] = [];
    for (let k = 0; k < CHANGES; k++) {
      // A counter across runs: every change really changes something (state carries over between runs).
      const addrs = (runNo * CHANGES + k) % 2 === 0 ? ["10.200.0.1", "10.200.0.2"] : ["10.200.0.1"];
      endpoint.push(...(await measure([{ type: XDS_TYPES.endpoint, match: host("manual") }], () => api.discovery.replaceNamespacedEndpointSlice({ name: "manual-1", namespace: NS, body: slice("manual", addrs) }))));
    }
    const route: number[] = [];
    const routeCpu0 = cpuSecondsIfAlive(pid);
    for (let k = 0; k < CHANGES; k++) {
      const subset = (runNo * CHANGES + k) % 2 === 0 ? "v2" : "v1";
      route.push(...(await measure([{ type: XDS_TYPES.route, match: "" }], () => api.custom.patchNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: NS, plural: "virtualservices", name: "svc-0", body: { spec: vsBody(0, subset).spec } }, MERGE_PATCH))));
    }
    const routeCpuS = (cpuSecondsIfAlive(pid) - routeCpu0) / CHANGES;
    const fresh: number[] = [];
    for (let k = 0; k < Math.max(1, Math.floor(CHANGES / 2)); k++) {
      const name = `new-${runNo}-${k}`;
      fresh.push(...(await measure([{ type: XDS_TYPES.cluster, match: host(name) }, { type: XDS_TYPES.endpoint, match: host(name) }, { type: XDS_TYPES.route, match: "" }], () => selectorlessService(api, name, ["10.201.0.1"]))));
    }
    const { bytes, responses } = await gen.ask<{ bytes: number; responses: number }>({ cmd: "bytes" });
    return {
      server: kind,
      label: LABEL[kind],
      mode,
      pair,
      proxies: sidecars.length,
      syncS: +syncS.toFixed(2),
      syncCpuS: +syncCpuS.toFixed(2),
      syncMB: +(syncBytes / 1e6).toFixed(2),
      syncRetries,
      endpointP50Ms: Math.round(pct(endpoint, 0.5)),
      endpointP99Ms: Math.round(pct(endpoint, 0.99)),
      routeP50Ms: Math.round(pct(route, 0.5)),
      routeP99Ms: Math.round(pct(route, 0.99)),
      routeCpuS: +routeCpuS.toFixed(2),
      newServiceP50Ms: Math.round(pct(fresh, 0.5)),
      newServiceP99Ms: Math.round(pct(fresh, 0.99)),
      totalCpuS: +(cpuSecondsIfAlive(pid) - cpu0).toFixed(2),
      rssMB: Math.round(statusKb(pid, "VmRSS") / 1024),
      peakRssMB: Math.round(statusKb(pid, "VmHWM") / 1024),
      totalMB: +(bytes / 1e6).toFixed(2),
      responses,
    };
  } finally {
    await stopChild(gen?.proc);
    await stopChild(server.proc);
    if (!process.env.BENCH_KEEP) rmSync(server.dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const load0 = os.loadavg();
  const { bin: istiodBin, version: istiodVersion } = SERVERS.some((s) => s.startsWith("istiod")) ? istiodBinary() : { bin: "", version: "" };
  const crds = istioCrdsFile(istiodVersion || "v0.0.0-20260827124520-eed52ebb66ad");
  const cluster = await startKubernetes();
  const nodes = await startVirtualNodes(cluster.kubeConfig).catch(async (err: unknown) => {
    await cluster.stop();
    throw err;
  });
  const rows: Row[] = [];
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
    await selectorlessService(api, "manual", ["10.200.0.1"]);
    await inParallel(Array.from({ length: SERVICES }, (_, i) => i), 8, async (i) => {
      await api.custom.createNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: NS, plural: "destinationrules", body: drBody(i) });
      await api.custom.createNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: NS, plural: "virtualservices", body: vsBody(i, "v1") });
    });
    type Pod = { metadata?: { name?: string; labels?: Record<string, string> }; spec?: { serviceAccountName?: string }; status?: { podIP?: string } };
    let pods: Pod[] = [];
    await until(async () => {
      pods = (await api.core.listNamespacedPod({ namespace: NS })).items as Pod[];
      return pods.length === SERVICES * 2 && pods.every((p) => p.status?.podIP);
    }, "every pod to have status.podIP", 300_000, 500);
    const setupS = (Date.now() - setupStart) / 1000;
    const sidecars = pods.map((p) => ({ ip: p.status!.podIP!, pod: p.metadata!.name!, namespace: NS, labels: p.metadata!.labels ?? {}, serviceAccount: p.spec?.serviceAccountName ?? "default" }));

    let runNo = 0;
    for (let pair = 0; pair < PAIRS; pair++) {
      for (const mode of MODES) {
        // Alternate the order within pairs so neither side always runs first.
        const order = pair % 2 === 0 ? SERVERS : [...SERVERS].reverse();
        for (const kind of order) {
          process.stdout.write(`[istiod-bench] pair ${pair + 1}/${PAIRS} ${mode} ${LABEL[kind]} (load ${os.loadavg()[0]!.toFixed(1)})\n`);
          const row = await oneRun(kind, mode, pair, cluster, api, istiodBin, sidecars, runNo++);
          process.stdout.write(`  ${JSON.stringify(row)}\n`);
          rows.push(row);
        }
      }
    }
    const load1 = os.loadavg();
    writeResults(rows, { istiodVersion, crds, setupS, load0, load1, proxies: sidecars.length });
  } finally {
    killAll();
    await nodes.stop();
    await cluster.stop();
  }
}

function writeResults(rows: Row[], m: { istiodVersion: string; crds: { file: string; apiVersion: string }; setupS: number; load0: number[]; load1: number[]; proxies: number }): void {
  const env = `BENCH_SERVICES=${SERVICES} BENCH_PAIRS=${PAIRS} BENCH_CHANGES=${CHANGES} BENCH_MODES=${MODES.join(",")} BENCH_SERVERS=${SERVERS.join(",")}`;
  const meta = {
    date: new Date().toISOString(),
    command: `${env} npx tsx bench/istiod/run.ts`,
    istiod: `istio.io/istio/pilot/cmd/pilot-discovery@${m.istiodVersion} (scripts/cached-go-build.sh istiod)`,
    istioCrds: `istio.io/api@${m.crds.apiVersion} kubernetes/customresourcedefinitions.gen.yaml`,
    weft: execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim(),
    kubernetes: "kube-apiserver + kube-controller-manager from scripts/cached-go-build.sh kubernetes",
    node: process.version,
    cpus: os.cpus().length,
    loadAverageBefore: m.load0.map((x) => +x.toFixed(2)),
    loadAverageAfter: m.load1.map((x) => +x.toFixed(2)),
    services: SERVICES + 1,
    pods: SERVICES * 2,
    destinationRules: SERVICES,
    virtualServices: SERVICES,
    proxies: m.proxies,
    changesPerScenario: CHANGES,
    setupSeconds: +m.setupS.toFixed(1),
  };
  const header = "| server | xDS | proxies | initial sync s | streams retried | sync CPU-s | sync MB received | endpoint change p50 / p99 ms | route change p50 / p99 ms | CPU-s per route change | new service p50 / p99 ms | CPU-s total | RSS / peak MB | MB received total |";
  const table = [header, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|", ...rows.map((r) => `| ${r.label} | ${r.mode} | ${r.proxies} | ${r.syncS} | ${r.syncRetries} | ${r.syncCpuS} | ${r.syncMB} | ${r.endpointP50Ms} / ${r.endpointP99Ms} | ${r.routeP50Ms} / ${r.routeP99Ms} | ${r.routeCpuS} | ${r.newServiceP50Ms} / ${r.newServiceP99Ms} | ${r.totalCpuS} | ${r.rssMB} / ${r.peakRssMB} | ${r.totalMB} |`)].join("\n");
  const caveat = `> **SMALL SCALE, LOADED MACHINE, NOT THE ISSUE'S SHAPE.** ${SERVICES} services and ${m.proxies} proxies, ${PAIRS} pair(s) per mode, on a 2-core machine shared with other work (load average ${m.load0[0]!.toFixed(1)} before, ${m.load1[0]!.toFixed(1)} after); the clients, the API server, etcd and the controller-manager share the same cores. These numbers prove the harness, not who is faster at Istio's load shape (1000 services, 2000 proxies): read no ratio from them.`;
  mkdirSync(path.join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(path.join(ROOT, "bench/results/istiod-vs-weft.json"), JSON.stringify({ meta, rows }, null, 2) + "\n");
  writeFileSync(
    path.join(ROOT, "bench/results/istiod-vs-weft.md"),
    `# istiod vs Weft on the same kube-apiserver, same configuration, same load generator\n\n${caveat}\n\n${Object.entries(meta).map(([k, v]) => `- ${k}: ${Array.isArray(v) ? v.join(", ") : v}`).join("\n")}\n\n## Per run\n\n${table}\n\n` +
      `How measured: one simulated sidecar per pod (bench/istiod/sidecars.ts, a child process) with Istio's node identity (id \`sidecar~<podIP>~<pod>.${NS}~${NS}.svc.cluster.local\`, NAMESPACE, LABELS, CLUSTER_ID=Kubernetes, ISTIO_VERSION, INTERCEPTION_MODE, POD_NAME, SERVICE_ACCOUNT), subscribing to what clusters and listeners name and ACKing every response as Envoy does; a refused or failed stream is retried with Envoy's jittered backoff (base 500 ms, max 30 s; "streams retried"). ` +
      `Initial sync: from the load generator starting its first client (after its own start-up) to the last response before ${2} s of quiet, once every client holds clusters, listeners, endpoints and routes. ` +
      `Endpoint change: the hand-written EndpointSlice of the selector-less Service "manual" gains or loses an address; route change: VirtualService svc-0 flips its subset (merge patch); new service: a selector-less Service + EndpointSlice created; each time until every client holds the new content (cluster, endpoints and routes for a new service); percentiles over all clients of all ${CHANGES} changes. ` +
      `CPU-seconds and RSS of the control-plane process from /proc from the server being ready to the end of the run (istiod: the Go process; Weft: its Node process, run from source under tsx, which adds to its RSS). MB received: the serialized resources in the responses (no gRPC framing). ` +
      `istiod runs out of cluster per ../shared/NOTES.md (PILOT_ENABLE_METADATA_EXCHANGE=false PILOT_ENABLE_ALPN_FILTER=false, enableAutoMtls false, no default metrics provider); "throttles raised": PILOT_MAX_REQUESTS_PER_SECOND=100000 PILOT_PUSH_THROTTLE=10000. Weft: \`weft serve --kubernetes --leader-elect false --write-status false\`. A fresh server process per run; the order of the servers alternates between pairs.\n`,
  );
  process.stdout.write(`\nistiod vs Weft\n\n${caveat}\n\n${table}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  },
);
