// Scale benchmarks on Istio's load-test shape (bench/mesh/istio-load-shape.ts: 10 namespaces ×
// 100 services, 2000 workloads, a VirtualService and DestinationRule per service), driven by
// bench/go/loadgen (one simulated Envoy per workload, its namespace and labels as metadata):
//   Scenario 3 (push convergence): K clients synced, then one change at a time — endpoint
//     (x2), route (x2), new service — each marked in the load generator before the server
//     applies it: per-client delay to receipt and to ACK (p50/p90/p99/max, Istio's
//     convergence buckets), bytes and messages received per change. Weft vs go-control-plane
//     serving the very snapshots Weft generated (bench/go/refserver -dump), alternated in pairs.
//   Scenario 5 (churn, Weft): K clients, endpoint changes at 1, 10, 100 per second for a
//     bounded time, then a reconnect of 10% of the clients: per-change p99 delivery, the
//     highest rate whose p99 stays under 1 s, server CPU-seconds per 1000 pushes.
//
//   npx tsx bench/mesh/run.ts
//   env: MESH_WEFT_NODE_ARGS=--cpu-prof,--cpu-prof-dir=/tmp/prof MESH_SERVERS=weft,gcp MESH_K=2000 MESH_PAIRS=3 MESH_MODES=sotw,delta MESH_NAMESPACES=10 MESH_SERVICES=100
//        MESH_MAX_INFLIGHT_MB=256 (Weft's push budget)
//        MESH_LOADGEN_ARGS=-cpu-profile,/tmp/loadgen.pprof (extra loadgen flags, comma-separated)
//        CHURN_K=1000 CHURN_RATES=1,10,100 CHURN_SECONDS=10 MESH_SKIP_CONVERGENCE=1 MESH_SKIP_CHURN=1
//        MESH_STEPS=1,2 (only these convergence steps)
// Writes bench/results/mesh.{md,json}. Our debounce (file source, 100 ms) is not in these
// numbers: the clock starts when the change is handed to the controller.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { XDS_TYPES } from "../../src/envoy/type-urls.js";
import { cpuSeconds, statusKb } from "../process-stats.js";
import { JsonLinesProcess, type JsonObject } from "../json-lines-process.js";
import { loadShapeNodes } from "./istio-load-shape.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const GO_DIR = path.join(ROOT, "bench/go");
const BIN = path.join(GO_DIR, "bin");
const list = (v: string | undefined, d: string) => (v ?? d).split(",").map((s) => s.trim()).filter(Boolean);
const K = Number(process.env.MESH_K ?? 2000);
const PAIRS = Number(process.env.MESH_PAIRS ?? 3);
const MODES = list(process.env.MESH_MODES, "sotw,delta") as ("sotw" | "delta")[];
const NS = Number(process.env.MESH_NAMESPACES ?? 10);
const SPN = Number(process.env.MESH_SERVICES ?? 100);
const SERVERS = list(process.env.MESH_SERVERS, "weft,gcp") as Server[];
const CHURN_K = Number(process.env.CHURN_K ?? 1000);
const CHURN_RATES = list(process.env.CHURN_RATES, "1,10,100").map(Number);
const CHURN_SECONDS = Number(process.env.CHURN_SECONDS ?? 10);
const CHURN_SERVICES = Math.min(50, NS * SPN);
/** How long a change may take to reach every client, and the server to apply it. */
const MARK_TIMEOUT_MS = Number(process.env.MESH_MARK_TIMEOUT_MS ?? 120_000);
const APPLY_TIMEOUT_MS = Number(process.env.MESH_APPLY_TIMEOUT_MS ?? 300_000);
const failures: string[] = [];
let nextPort = 21000 + Math.floor(Math.random() * 2000);

function log(msg: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

/** The reply that has `key` (or an error), typed. */
const has = (key: string) => (o: JsonObject) => key in o;
/** Where a process's resident memory sits (/proc/PID/smaps): glibc's main arena ([heap]), 64 MiB
 *  glibc arena reservations, other anonymous mappings (V8's heap pages, mmapped malloc chunks), files. */
function smapsBreakdown(pid: number): string {
  let text = "";
  try {
    text = readFileSync(`/proc/${pid}/smaps`, "utf8");
  } catch {
    return "smaps unreadable";
  }
  const mb = { brkHeap: 0, arenas64: 0, otherAnon: 0, files: 0, otherAnonCount: 0 };
  let kind: keyof typeof mb = "otherAnon";
  for (const line of text.split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      const name = head[2] ?? "";
      kind = name === "[heap]" ? "brkHeap" : name.startsWith("/") ? "files" : "otherAnon";
      continue;
    }
    const size = /^Size:\s+(\d+) kB/.exec(line);
    if (size && kind === "otherAnon" && Number(size[1]) === 65536) kind = "arenas64";
    if (size && kind === "otherAnon") mb.otherAnonCount++;
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) mb[kind] += Number(rss[1]) / 1024;
  }
  return `brk heap ${mb.brkHeap.toFixed(0)} MB, 64 MiB arenas ${mb.arenas64.toFixed(0)} MB, other anonymous ${mb.otherAnon.toFixed(0)} MB (${mb.otherAnonCount} maps), files ${mb.files.toFixed(0)} MB`;
}

function procMem(pid: number): { rssMb: number; hwmMb: number } {
  return { rssMb: statusKb(pid, "VmRSS") / 1024, hwmMb: statusKb(pid, "VmHWM") / 1024 };
}

type Server = "weft" | "gcp";
interface Step {
  step: number;
  what: string;
  type: string;
  names: string[];
}
const ALL_STEPS: Step[] = [
  { step: 1, what: "endpoint", type: XDS_TYPES.endpoint, names: ["outbound|8080|v1|svc-5.load-0.svc.cluster.local"] },
  { step: 2, what: "endpoint", type: XDS_TYPES.endpoint, names: ["outbound|8080|v1|svc-5.load-0.svc.cluster.local"] },
  { step: 3, what: "route", type: XDS_TYPES.route, names: ["8080"] },
  { step: 4, what: "route", type: XDS_TYPES.route, names: ["8080"] },
  { step: 5, what: "new service", type: XDS_TYPES.cluster, names: [`outbound|8080||svc-0.load-${NS}.svc.cluster.local`] },
];

/** MESH_STEPS=1,2: only these steps (each is a whole config, so any subset applies cleanly). */
const STEPS = ALL_STEPS.filter((s) => !process.env.MESH_STEPS || list(process.env.MESH_STEPS, "").map(Number).includes(s.step));

interface Dist {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}
interface MarkResult {
  mark: string;
  clients: number;
  delivered: number;
  recvMs: Dist;
  ackMs: Dist;
  buckets: Record<string, number>;
  bytes: number;
  messages: number;
}
interface SyncLine {
  clients: number;
  synced: number;
  allAckedMs: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  firstError?: string;
  streamRetries?: number;
}

async function startServer(kind: Server, nodesFile: string, dumpDir: string, extra: string[] = []): Promise<{ server: JsonLinesProcess; port: number }> {
  const port = nextPort++;
  const server =
    kind === "weft"
      ? new JsonLinesProcess("weft", process.execPath, ["--expose-gc", ...list(process.env.MESH_WEFT_NODE_ARGS, ""), "--import", "tsx", path.join(ROOT, "bench/mesh/weft-mesh-server.ts"), "--port", String(port), "--namespaces", String(NS), "--services", String(SPN), "--nodes", nodesFile, ...(process.env.MESH_MAX_INFLIGHT_MB ? ["--max-inflight-mb", process.env.MESH_MAX_INFLIGHT_MB] : []), ...extra], { cwd: ROOT })
      : new JsonLinesProcess("gcp", path.join(BIN, "refserver"), ["-port", String(port), "-dump", path.join(dumpDir, "step-0")], { cwd: ROOT });
  await server.next((o) => o.line === "ready", 300_000, `${kind} ready`);
  return { server, port };
}

function startLoadgen(port: number, clients: number, mode: string, nodesFile: string): JsonLinesProcess {
  return new JsonLinesProcess("loadgen", path.join(BIN, "loadgen"), ["-target", `127.0.0.1:${port}`, "-clients", String(clients), "-mode", mode, "-node-meta", nodesFile, "-watch", "-timeout", "600s", ...list(process.env.MESH_LOADGEN_ARGS, "")], { cwd: ROOT });
}

interface ConvergenceRun {
  mode: string;
  pair: number;
  server: Server;
  sync: SyncLine;
  syncCpuS: number;
  steps: { step: number; what: string; serverMs: number; path?: string; cpuS: number; mark: MarkResult }[];
  rssMb: number;
  hwmMb: number;
  loadgenCpuS: number;
  /** Weft only (node --expose-gc): heap after a full GC before any proxy, and with K synced. */
  heapEmptyMb?: number;
  heapSyncedMb?: number;
  heapPerProxyKb?: number;
}

async function convergenceRun(kind: Server, mode: string, pair: number, nodesFile: string, dumpDir: string): Promise<ConvergenceRun> {
  const { server, port } = await startServer(kind, nodesFile, dumpDir);
  const pid = server.pid;
  // Weft's heap after a full GC, before any proxy and once all are synced: bytes per proxy.
  const heap = async (): Promise<number | undefined> => {
    if (kind !== "weft") return undefined;
    server.send({ cmd: "mem" });
    const m = (await server.next((o) => "mem" in o, 60_000, "mem")).mem as { heapMb: number; gc: boolean };
    return m.gc ? m.heapMb : undefined;
  };
  const heapEmptyMb = await heap();
  const lg = startLoadgen(port, K, mode, nodesFile);
  try {
    const cpu0 = cpuSeconds(pid);
    const sync = (await lg.next(has("allAckedMs"), 600_000, "initial sync")) as unknown as SyncLine;
    const syncCpuS = cpuSeconds(pid) - cpu0;
    log(`  ${kind} ${mode}: ${sync.synced}/${sync.clients} synced in ${sync.allAckedMs.toFixed(0)} ms (server CPU ${syncCpuS.toFixed(1)} s; streams re-opened after a failure: ${sync.streamRetries ?? 0}${sync.firstError ? `, first: ${sync.firstError.slice(0, 160)}` : ""})`);
    if (kind === "weft") {
      server.send({ cmd: "stats" });
      log(`  weft streams ended by the server: ${JSON.stringify(((await server.next(has("stats"), 10_000, "stats")) as unknown as { stats: { refused?: unknown } }).stats.refused ?? {})}`);
    }
    await new Promise((r) => setTimeout(r, 3000));
    if (kind === "weft") log(`  ${kind} ${mode} synced: RSS ${procMem(pid).rssMb.toFixed(0)} MB: ${smapsBreakdown(pid)}`);
    const heapSyncedMb = await heap();
    if (process.env.MESH_HEAP_SNAPSHOT_DIR && kind === "weft") {
      // For bench/heap-summary.ts: what the synced proxies' state is made of.
      const file = path.join(process.env.MESH_HEAP_SNAPSHOT_DIR, `weft-${mode}-${K}-${pair}.heapsnapshot`);
      server.send({ cmd: "heap", file });
      await server.next((o) => "heap" in o, 300_000, "heap snapshot");
      log(`  heap snapshot: ${file}`);
    }
    const heapPerProxyKb = heapEmptyMb !== undefined && heapSyncedMb !== undefined ? ((heapSyncedMb - heapEmptyMb) * 1000) / K : undefined;
    if (heapPerProxyKb !== undefined) log(`  ${kind} ${mode}: heap after GC ${heapEmptyMb!.toFixed(0)} MB with no proxy, ${heapSyncedMb!.toFixed(0)} MB with ${K} synced: ${heapPerProxyKb.toFixed(0)} KB per proxy`);
    const steps: ConvergenceRun["steps"] = [];
    for (const s of STEPS) {
      const id = `${kind}-${mode}-${pair}-${s.step}`;
      lg.send({ cmd: "mark", id, type: s.type, names: s.names, timeoutMs: MARK_TIMEOUT_MS });
      await lg.next((o) => o.marked === id, 10_000, "mark");
      const c0 = cpuSeconds(pid);
      server.send(kind === "weft" ? { cmd: "apply", step: s.step } : { cmd: "load", dir: path.join(dumpDir, `step-${s.step}`) });
      let reply: JsonObject;
      try {
        reply = await server.next((o) => "applied" in o || "loaded" in o || "error" in o, APPLY_TIMEOUT_MS, "apply");
      } catch (err) {
        // A server that cannot apply a change in time: record it, end this run, keep the rest.
        failures.push(`${kind} ${mode} pair ${pair} step ${s.step}: ${(err as Error).message.slice(0, 200)}`);
        log(`    step ${s.step} ${s.what}: FAILED — ${(err as Error).message.slice(0, 120)}`);
        break;
      }
      if (reply.error) throw new Error(`${kind} step ${s.step}: ${String(reply.error)}`);
      const mark = (await lg.next((o) => o.mark === id, MARK_TIMEOUT_MS + 30_000, "mark result")) as unknown as MarkResult;
      const cpuS = cpuSeconds(pid) - c0;
      steps.push({ step: s.step, what: s.what, serverMs: Number(reply.millis ?? 0), path: reply.path as string | undefined, cpuS, mark });
      log(`    step ${s.step} ${s.what}: server ${Number(reply.millis).toFixed(0)} ms${reply.path ? ` (${String(reply.path)})` : ""}, delivered ${mark.delivered}/${mark.clients}, ack p50 ${mark.ackMs.p50.toFixed(0)} p99 ${mark.ackMs.p99.toFixed(0)} max ${mark.ackMs.max.toFixed(0)} ms, ${(mark.bytes / 1e6).toFixed(1)} MB in ${mark.messages} messages`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const mem = procMem(pid);
    if (kind === "weft") {
      log(`  ${kind} ${mode} after the steps: RSS ${mem.rssMb.toFixed(0)} MB (peak ${mem.hwmMb.toFixed(0)}): ${smapsBreakdown(pid)}`);
      server.send({ cmd: "mem" });
      log(`  after a full GC: ${JSON.stringify((await server.next((o) => "mem" in o, 60_000, "mem")).mem)}; ${smapsBreakdown(pid)}`);
    }
    lg.send({ cmd: "stats" });
    const stats = (await lg.next(has("stats"), 10_000, "stats")) as unknown as { stats: { cpuSeconds: number } };
    return { mode, pair, server: kind, sync, syncCpuS, steps, rssMb: mem.rssMb, hwmMb: mem.hwmMb, loadgenCpuS: stats.stats.cpuSeconds, heapEmptyMb, heapSyncedMb, heapPerProxyKb };
  } finally {
    await lg.stop();
    await server.stop();
  }
}

interface ChurnRate {
  rate: number;
  changes: number;
  delivered: number;
  expected: number;
  p99OfP99Ms: number;
  medianP99Ms: number;
  maxMs: number;
  serverCpuS: number;
  pushes: number;
  cpuPer1000Pushes: number;
  /** Config applications (changes arriving while the controller was busy were coalesced). */
  applications: number;
}

async function churnRun(nodesFile: string): Promise<{ mode: string; rates: ChurnRate[]; reconnect: unknown; serverMsP50: number }[]> {
  const out = [];
  for (const mode of MODES) {
    const { server, port } = await startServer("weft", nodesFile, "");
    const pid = server.pid;
    const lg = startLoadgen(port, CHURN_K, mode, nodesFile);
    try {
      const sync = (await lg.next(has("allAckedMs"), 600_000, "initial sync")) as unknown as SyncLine;
      log(`churn ${mode}: ${sync.synced}/${sync.clients} synced in ${sync.allAckedMs.toFixed(0)} ms`);
      await new Promise((r) => setTimeout(r, 2000));
      const rates: ChurnRate[] = [];
      const serverMs: number[] = [];
      let k = 0;
      for (const rate of CHURN_RATES) {
        const n = Math.max(1, Math.round(rate * CHURN_SECONDS));
        server.send({ cmd: "stats" });
        const before = (await server.next(has("stats"), 10_000, "stats")) as unknown as { stats: { pushes: number } };
        const c0 = cpuSeconds(pid);
        const t0 = performance.now();
        const ids: string[] = [];
        for (let i = 0; i < n; i++, k++) {
          const due = t0 + (i * 1000) / rate;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          const service = k % CHURN_SERVICES;
          const generation = (Math.floor(k / CHURN_SERVICES) % 3) + 1;
          const id = `churn-${mode}-${rate}-${i}`;
          ids.push(id);
          const ns = Math.floor(service / SPN);
          lg.send({ cmd: "mark", id, type: XDS_TYPES.endpoint, names: [`outbound|8080|v1|svc-${service % SPN}.load-${ns}.svc.cluster.local`], timeoutMs: 15_000 });
          await lg.next((o) => o.marked === id, 10_000, "mark");
          server.send({ cmd: "churn", service, generation });
        }
        const results: MarkResult[] = [];
        for (const id of ids) results.push((await lg.next((o) => o.mark === id, 60_000, "churn mark")) as unknown as MarkResult);
        let applied = 0;
        let coalescedChanges = 0;
        while (coalescedChanges < n) {
          const r = (await server.next(has("applied"), 10_000, "churn apply")) as unknown as { millis: number; coalesced: number };
          serverMs.push(r.millis);
          coalescedChanges += r.coalesced;
          applied++;
        }
        const cpu = cpuSeconds(pid) - c0;
        server.send({ cmd: "stats" });
        const after = (await server.next(has("stats"), 10_000, "stats")) as unknown as { stats: { pushes: number } };
        const p99s = results.map((r) => r.recvMs.p99).sort((a, b) => a - b);
        const pushes = after.stats.pushes - before.stats.pushes;
        const r: ChurnRate = {
          rate,
          changes: n,
          delivered: results.reduce((a, m) => a + m.delivered, 0),
          expected: n * CHURN_K,
          p99OfP99Ms: p99s[Math.min(p99s.length - 1, Math.floor(p99s.length * 0.99))]!,
          medianP99Ms: p99s[Math.floor(p99s.length / 2)]!,
          maxMs: Math.max(...results.map((m) => m.recvMs.max)),
          serverCpuS: cpu,
          pushes,
          cpuPer1000Pushes: pushes > 0 ? (cpu * 1000) / pushes : 0,
          applications: applied,
        };
        rates.push(r);
        log(`  ${rate}/s × ${n}: delivered ${r.delivered}/${r.expected}, per-change p99 median ${r.medianP99Ms.toFixed(0)} ms, p99 of p99 ${r.p99OfP99Ms.toFixed(0)} ms, max ${r.maxMs.toFixed(0)} ms, CPU ${cpu.toFixed(1)} s for ${pushes} pushes, ${applied} applications`);
        await new Promise((res) => setTimeout(res, 2000));
      }
      lg.send({ cmd: "reconnect", count: Math.round(CHURN_K / 10), timeoutMs: 60_000 });
      const reconnect = await lg.next(has("reconnected"), 90_000, "reconnect");
      log(`  reconnect: ${JSON.stringify(reconnect)}`);
      serverMs.sort((a, b) => a - b);
      out.push({ mode, rates, reconnect, serverMsP50: serverMs[Math.floor(serverMs.length / 2)] ?? 0 });
    } finally {
      await lg.stop();
      await server.stop();
    }
  }
  return out;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "–");

async function main(): Promise<void> {
  log(`building Go programs in ${GO_DIR}`);
  mkdirSync(BIN, { recursive: true });
  execFileSync("go", ["build", "-o", path.join(BIN, "refserver"), "./refserver"], { cwd: GO_DIR, stdio: "inherit" });
  execFileSync("go", ["build", "-o", path.join(BIN, "loadgen"), "./loadgen"], { cwd: GO_DIR, stdio: "inherit" });
  const work = mkdtempSync(path.join(os.tmpdir(), "weft-mesh-bench-"));
  const started = new Date();
  try {
    const nodes = loadShapeNodes({ namespaces: NS, servicesPerNamespace: SPN });
    const nodesFile = path.join(work, "nodes.json");
    writeFileSync(nodesFile, JSON.stringify(nodes));
    const runs: ConvergenceRun[] = [];
    if (!process.env.MESH_SKIP_CONVERGENCE) {
      const dumpDir = path.join(work, "dump");
      if (SERVERS.includes("gcp")) log(`dumping Weft's snapshots of every step for go-control-plane (${nodes.length} proxies)`);
      if (SERVERS.includes("gcp")) execFileSync(process.execPath, ["--import", "tsx", path.join(ROOT, "bench/mesh/weft-mesh-server.ts"), "--namespaces", String(NS), "--services", String(SPN), "--nodes", nodesFile, "--dump", dumpDir], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
      for (const mode of MODES) {
        for (let pair = 1; pair <= PAIRS; pair++) {
          const order = (pair % 2 === 0 ? ["weft", "gcp"] : ["gcp", "weft"]).filter((k) => SERVERS.includes(k as Server)) as Server[];
          log(`scenario 3: K=${K} ${mode} pair ${pair}/${PAIRS}`);
          for (const kind of order) {
            runs.push(await convergenceRun(kind, mode, pair, nodesFile, dumpDir));
            write(started, runs, []); // partial results survive a later failure
          }
        }
      }
    }
    const churn = process.env.MESH_SKIP_CHURN ? [] : await churnRun(path.join(work, "nodes.json"));
    write(started, runs, churn);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function write(started: Date, runs: ConvergenceRun[], churn: Awaited<ReturnType<typeof churnRun>>): void {
  const gitRev = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT }).toString().trim();
  const dirty = execFileSync("git", ["status", "--porcelain"], { cwd: ROOT }).toString().trim() ? " (+ uncommitted changes)" : "";
  const gcpVersion = readFileSync(path.join(GO_DIR, "go.mod"), "utf8").match(/github\.com\/envoyproxy\/go-control-plane (v\S+)/)?.[1] ?? "?";
  const meta = {
    date: started.toISOString(),
    machine: `${os.cpus()[0]?.model ?? "?"} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    weft: `${gitRev}${dirty}, Node ${process.version}`,
    reference: `go-control-plane ${gcpVersion}, ${execFileSync("go", ["version"]).toString().trim()}`,
    shape: { namespaces: NS, servicesPerNamespace: SPN, clients: K, churnClients: CHURN_K, churnRates: CHURN_RATES, churnSeconds: CHURN_SECONDS },
    commands: [
      `MESH_K=${K} MESH_PAIRS=${PAIRS} MESH_MODES=${MODES.join(",")} CHURN_K=${CHURN_K} CHURN_RATES=${CHURN_RATES.join(",")} CHURN_SECONDS=${CHURN_SECONDS} npx tsx bench/mesh/run.ts`,
      "node --import tsx bench/mesh/weft-mesh-server.ts --port P --namespaces N --services S --nodes nodes.json   (stdin: apply/churn/stats)",
      "bench/go/bin/refserver -port P -dump DIR/step-0   (stdin: load DIR/step-i)",
      "bench/go/bin/loadgen -target 127.0.0.1:P -clients K -mode sotw|delta -node-meta nodes.json -watch -timeout 600s   (stdin: mark/stats/reconnect)",
    ],
  };
  writeFileSync(path.join(ROOT, "bench/results/mesh.json"), JSON.stringify({ meta, runs, churn, failures }, null, 2) + "\n");
  const md: string[] = [];
  md.push("# Scale on Istio's load-test shape: push convergence (Weft vs go-control-plane) and churn", "");
  md.push(`- Date: ${meta.date}`, `- Machine: ${meta.machine}`, `- Weft: ${meta.weft}`, `- Reference: ${meta.reference}, serving the snapshots Weft generated (dumped per step; SetSnapshot per class)`);
  md.push(`- Mesh: ${NS} namespaces × ${SPN} services (ServiceEntry with VIP, HTTP 8080, every 10th also TCP 3306; 2 WorkloadEntries v1/v2; DestinationRule with subsets, pool, outlier detection; VirtualService 90/10 with timeout and retries). ${K} simulated sidecars (one per workload: ${K} proxy classes), ADS, 100 streams per gRPC connection.`);
  md.push("- Clock: a change is marked in the load generator, then handed to the server (Weft: MeshController.setConfig of the already parsed config — our file-source debounce of 100 ms comes on top; gcp: load the step's dump and SetSnapshot every changed class). recv = response received; ack = ACK sent (the convergence Istio's pilot_proxy_convergence_time measures).");
  if (failures.length > 0) md.push(`- Failures (a run ends at its first failed step): ${failures.join("; ")}`);
  md.push(`- Timeouts: a change must reach every client within ${MARK_TIMEOUT_MS / 1000} s (else counted undelivered), the server must apply it within ${APPLY_TIMEOUT_MS / 1000} s.`);
  md.push(`- Method: ${PAIRS} pairs per mode, order flipped every pair, fresh processes per run; ratio = median of per-pair ratios weft / gcp.`, "", "Commands:", "", "```", ...meta.commands, "```", "");
  if (runs.length > 0) {
    md.push("## Scenario 3: push convergence (medians over pairs)", "");
    md.push("| mode | change | server ms (weft / gcp) | ack p50 ms (weft / gcp) | ack p99 ms (weft / gcp / ratio) | ack max ms (weft / gcp) | MB received (weft / gcp) | messages (weft / gcp) |", "|---|---|---|---|---|---|---|---|");
    for (const mode of MODES) {
      for (const s of STEPS) {
        const pick = (kind: Server, f: (x: ConvergenceRun["steps"][number]) => number) =>
          median(runs.filter((r) => r.mode === mode && r.server === kind).flatMap((r) => r.steps.filter((x) => x.step === s.step).map(f)));
        const ratios = [...new Set(runs.filter((r) => r.mode === mode).map((r) => r.pair))].map((p) => {
          const w = runs.find((r) => r.mode === mode && r.pair === p && r.server === "weft")?.steps.find((x) => x.step === s.step);
          const g = runs.find((r) => r.mode === mode && r.pair === p && r.server === "gcp")?.steps.find((x) => x.step === s.step);
          return w && g ? w.mark.ackMs.p99 / g.mark.ackMs.p99 : NaN;
        });
        md.push(
          `| ${mode} | ${s.step}: ${s.what} | ${fmt(pick("weft", (x) => x.serverMs))} / ${fmt(pick("gcp", (x) => x.serverMs))} | ${fmt(pick("weft", (x) => x.mark.ackMs.p50))} / ${fmt(pick("gcp", (x) => x.mark.ackMs.p50))} | ${fmt(pick("weft", (x) => x.mark.ackMs.p99))} / ${fmt(pick("gcp", (x) => x.mark.ackMs.p99))} / **${fmt(median(ratios), 2)}×** | ${fmt(pick("weft", (x) => x.mark.ackMs.max))} / ${fmt(pick("gcp", (x) => x.mark.ackMs.max))} | ${fmt(pick("weft", (x) => x.mark.bytes / 1e6), 1)} / ${fmt(pick("gcp", (x) => x.mark.bytes / 1e6), 1)} | ${fmt(pick("weft", (x) => x.mark.messages))} / ${fmt(pick("gcp", (x) => x.mark.messages))} |`,
        );
      }
    }
    md.push("", "Initial sync and memory on this shape (medians):", "", "| mode | all synced ms (weft / gcp) | server CPU s (weft / gcp) | RSS after steps MB (weft / gcp) | peak RSS MB (weft / gcp) | weft heap after GC MB: no proxy / all synced / KB per proxy |", "|---|---|---|---|---|---|");
    for (const mode of MODES) {
      const m = (kind: Server, f: (r: ConvergenceRun) => number) => fmt(median(runs.filter((r) => r.mode === mode && r.server === kind).map(f)));
      md.push(`| ${mode} | ${m("weft", (r) => r.sync.allAckedMs)} / ${m("gcp", (r) => r.sync.allAckedMs)} | ${m("weft", (r) => r.syncCpuS)} / ${m("gcp", (r) => r.syncCpuS)} | ${m("weft", (r) => r.rssMb)} / ${m("gcp", (r) => r.rssMb)} | ${m("weft", (r) => r.hwmMb)} / ${m("gcp", (r) => r.hwmMb)} | ${m("weft", (r) => r.heapEmptyMb ?? NaN)} / ${m("weft", (r) => r.heapSyncedMb ?? NaN)} / ${m("weft", (r) => r.heapPerProxyKb ?? NaN)} |`);
    }
    md.push("", "Per run and change:", "", "| mode | pair | server | change | server ms | path | delivered | recv p50/p99/max ms | ack p50/p90/p99/max ms | ≤0.1s/≤0.5s/≤1s/≤3s | MB | messages | server CPU s |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (const r of runs) {
      for (const s of r.steps) {
        const b = s.mark.buckets;
        md.push(`| ${r.mode} | ${r.pair} | ${r.server} | ${s.step}: ${s.what} | ${fmt(s.serverMs)} | ${s.path ?? ""} | ${s.mark.delivered}/${s.mark.clients} | ${fmt(s.mark.recvMs.p50)}/${fmt(s.mark.recvMs.p99)}/${fmt(s.mark.recvMs.max)} | ${fmt(s.mark.ackMs.p50)}/${fmt(s.mark.ackMs.p90)}/${fmt(s.mark.ackMs.p99)}/${fmt(s.mark.ackMs.max)} | ${b["0.1"]}/${b["0.5"]}/${b["1"]}/${b["3"]} | ${fmt(s.mark.bytes / 1e6, 1)} | ${s.mark.messages} | ${fmt(s.cpuS, 2)} |`);
      }
    }
  }
  if (churn.length > 0) {
    md.push("", `## Scenario 5: endpoint churn (Weft, ${CHURN_K} clients, ${CHURN_SECONDS} s per rate, changes spread over ${CHURN_SERVICES} services)`, "");
    md.push("| mode | rate /s | changes | applications (coalesced) | delivered | per-change recv p99: median / p99 ms | max ms | server CPU s | pushes | CPU s per 1000 pushes |", "|---|---|---|---|---|---|---|---|---|---|");
    for (const c of churn) for (const r of c.rates) md.push(`| ${c.mode} | ${r.rate} | ${r.changes} | ${r.applications} | ${r.delivered}/${r.expected} | ${fmt(r.medianP99Ms)} / ${fmt(r.p99OfP99Ms)} | ${fmt(r.maxMs)} | ${fmt(r.serverCpuS, 1)} | ${r.pushes} | ${fmt(r.cpuPer1000Pushes, 2)} |`);
    md.push("");
    for (const c of churn) {
      const ok = c.rates.filter((r) => r.p99OfP99Ms < 1000 && r.delivered === r.expected).map((r) => r.rate);
      md.push(`- ${c.mode}: highest rate with p99 delivery under 1 s: ${ok.length ? `${Math.max(...ok)}/s` : "none"}; setConfig median ${fmt(c.serverMsP50)} ms; reconnect of ${Math.round(CHURN_K / 10)} clients: ${JSON.stringify(c.reconnect)}`);
    }
  }
  writeFileSync(path.join(ROOT, "bench/results/mesh.md"), md.join("\n") + "\n");
  log("wrote bench/results/mesh.{md,json}");
}

await main();
