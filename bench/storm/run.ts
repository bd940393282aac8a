// Scale benchmark, Weft vs go-control-plane, driven by one Go load generator (bench/go/loadgen).
//   Scenario 2 (connection storm / initial sync): K clients, SotW and delta, ramp 0 s:
//     time until all are synced (ACKed CDS, EDS, LDS, RDS), per-client p50/p99, server
//     CPU-seconds during the storm, server peak RSS (VmHWM).
//   Scenario 4 (memory per connected proxy): K idle synced clients, K in BENCH_MEM_K; server
//     VmRSS with K held; slope = MB per client (least squares over K).
// Every comparison alternates the two servers in pairs (order flipped every pair), with a fresh
// server process per run; reported ratio = median of per-pair ratios (weft / go-control-plane).
//
//   npx tsx bench/storm/run.ts
//   env: BENCH_K="100,1000,2000" BENCH_PAIRS=5 BENCH_MODES="sotw,delta" BENCH_MEM_K="0,500,1000,2000"
//        BENCH_MEM_PAIRS (default BENCH_PAIRS) BENCH_SKIP_STORM=1 BENCH_SKIP_MEM=1
//        BENCH_CLUSTERS=100 BENCH_ENDPOINTS=10 BENCH_LISTENERS=20
// Writes bench/results/storm.{md,json}.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpuSeconds, statusKb } from "../process-stats.js";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const GO_DIR = path.join(ROOT, "bench/go");
const BIN = path.join(GO_DIR, "bin");
const list = (v: string | undefined, d: string) => (v ?? d).split(",").map((s) => s.trim()).filter(Boolean);
const KS = list(process.env.BENCH_K, "100,1000,2000").map(Number);
const MODES = list(process.env.BENCH_MODES, "sotw,delta") as ("sotw" | "delta")[];
const PAIRS = Number(process.env.BENCH_PAIRS ?? 5);
const MEM_KS = list(process.env.BENCH_MEM_K, "0,500,1000,2000").map(Number);
const MEM_PAIRS = Number(process.env.BENCH_MEM_PAIRS ?? PAIRS);
const C = Number(process.env.BENCH_CLUSTERS ?? 100);
const E = Number(process.env.BENCH_ENDPOINTS ?? 10);
const L = Number(process.env.BENCH_LISTENERS ?? 20);

type ServerKind = "weft" | "gcp";
const SERVERS: ServerKind[] = ["weft", "gcp"];
let nextPort = 19000 + Math.floor(Math.random() * 2000);

function log(msg: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

function serverCommand(kind: ServerKind, port: number): { cmd: string; args: string[] } {
  const fixture = ["--port", String(port), "--clusters", String(C), "--endpoints", String(E), "--listeners", String(L)];
  if (kind === "weft") return { cmd: process.execPath, args: ["--import", "tsx", path.join(ROOT, "bench/storm/weft-fixture-server.ts"), ...fixture] };
  return { cmd: path.join(BIN, "refserver"), args: fixture.map((a) => a.replace(/^--/, "-")) };
}

interface Running {
  proc: ChildProcess;
  port: number;
}

async function startServer(kind: ServerKind): Promise<Running> {
  const port = nextPort++;
  const { cmd, args } = serverCommand(kind, port);
  const proc = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (d) => (stderr += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} not ready in 60 s: ${stderr}`)), 60_000);
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      if (line.trim() === "ready") {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.on("exit", (code) => reject(new Error(`${kind} exited (${code}) before ready: ${stderr}`)));
  });
  return { proc, port };
}

async function stopServer(s: Running): Promise<void> {
  if (s.proc.exitCode !== null) return;
  const exited = new Promise((r) => s.proc.once("exit", r));
  s.proc.kill("SIGTERM");
  const t = setTimeout(() => s.proc.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(t);
}

interface LoadResult {
  clients: number;
  mode: string;
  synced: number;
  allAckedMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  firstError?: string;
}

/** Starts the load generator; resolves with its JSON line (it then holds for `holdS`). */
function startLoad(port: number, k: number, mode: string, holdS: number): { result: Promise<LoadResult>; done: Promise<void>; proc: ChildProcess } {
  const proc = spawn(path.join(BIN, "loadgen"), ["-target", `127.0.0.1:${port}`, "-clients", String(k), "-mode", mode, "-ramp", "0s", "-hold", `${holdS}s`, "-timeout", "180s"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (d) => (stderr += d));
  const done = new Promise<void>((r) => proc.once("exit", () => r()));
  const result = new Promise<LoadResult>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      if (line.startsWith("{")) resolve(JSON.parse(line) as LoadResult);
    });
    void done.then(() => reject(new Error(`loadgen exited without a result: ${stderr}`)));
  });
  return { result, done, proc };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface StormRun extends LoadResult {
  server: ServerKind;
  pair: number;
  cpuS: number;
  peakRssMB: number;
  readyRssMB: number;
  loadgenCpuS: number;
}

async function stormRun(kind: ServerKind, k: number, mode: "sotw" | "delta", pair: number): Promise<StormRun> {
  const s = await startServer(kind);
  try {
    await sleep(300);
    const pid = s.proc.pid!;
    const readyRssMB = statusKb(pid, "VmRSS") / 1024;
    const cpu0 = cpuSeconds(pid);
    const load = startLoad(s.port, k, mode, 0.5);
    const r = await load.result;
    const cpuS = cpuSeconds(pid) - cpu0;
    let loadgenCpuS = NaN;
    try {
      loadgenCpuS = cpuSeconds(load.proc.pid!); // includes its connection set-up before the clock
    } catch {}
    const peakRssMB = statusKb(pid, "VmHWM") / 1024;
    await load.done;
    return { ...r, server: kind, pair, cpuS, peakRssMB, readyRssMB, loadgenCpuS };
  } finally {
    await stopServer(s);
  }
}

interface MemRun {
  server: ServerKind;
  pair: number;
  k: number;
  synced: number;
  rssMB: number;
}

async function memRun(kind: ServerKind, k: number, pair: number): Promise<MemRun> {
  const s = await startServer(kind);
  try {
    const pid = s.proc.pid!;
    let synced = 0;
    let load: ReturnType<typeof startLoad> | undefined;
    if (k > 0) {
      load = startLoad(s.port, k, "sotw", 6);
      synced = (await load.result).synced;
    }
    await sleep(3000); // idle: let the server settle (GC) with K streams held
    const rssMB = statusKb(pid, "VmRSS") / 1024;
    if (load) {
      load.proc.kill("SIGTERM");
      await load.done;
    }
    return { server: kind, pair, k, synced, rssMB };
  } finally {
    await stopServer(s);
  }
}

function slope(points: { k: number; y: number }[]): number {
  const n = points.length;
  const mk = points.reduce((a, p) => a + p.k, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const num = points.reduce((a, p) => a + (p.k - mk) * (p.y - my), 0);
  const den = points.reduce((a, p) => a + (p.k - mk) ** 2, 0);
  return den === 0 ? NaN : num / den;
}

function order(pair: number): ServerKind[] {
  return pair % 2 === 0 ? SERVERS : [...SERVERS].reverse();
}

const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "—");

async function main(): Promise<void> {
  log(`building Go programs in ${GO_DIR}`);
  execFileSync("go", ["build", "-o", path.join(BIN, "refserver"), "./refserver"], { cwd: GO_DIR, stdio: "inherit" });
  execFileSync("go", ["build", "-o", path.join(BIN, "loadgen"), "./loadgen"], { cwd: GO_DIR, stdio: "inherit" });

  const storm: StormRun[] = [];
  if (!process.env.BENCH_SKIP_STORM) {
    for (const k of KS)
      for (const mode of MODES)
        for (let pair = 0; pair < PAIRS; pair++)
          for (const kind of order(pair)) {
            const r = await stormRun(kind, k, mode, pair);
            storm.push(r);
            log(`storm K=${k} ${mode} pair ${pair + 1}/${PAIRS} ${kind}: synced ${r.synced}/${k} all=${f(r.allAckedMs)} ms p50=${f(r.p50Ms)} p99=${f(r.p99Ms)} cpu=${f(r.cpuS, 2)} s loadgenCpu=${f(r.loadgenCpuS, 2)} s peakRSS=${f(r.peakRssMB)} MB errors=${r.errors}${r.firstError ? ` (${r.firstError})` : ""}`);
          }
  }
  const mem: MemRun[] = [];
  if (!process.env.BENCH_SKIP_MEM) {
    for (let pair = 0; pair < MEM_PAIRS; pair++)
      for (const kind of order(pair))
        for (const k of MEM_KS) {
          const r = await memRun(kind, k, pair);
          mem.push(r);
          log(`memory pair ${pair + 1}/${MEM_PAIRS} ${kind} K=${k}: synced ${r.synced} RSS=${f(r.rssMB)} MB`);
        }
  }

  // Summaries: per (K, mode), per metric: median per server and median of per-pair ratios.
  const metrics = ["allAckedMs", "p50Ms", "p99Ms", "cpuS", "peakRssMB"] as const;
  const stormSummary = [];
  for (const k of KS)
    for (const mode of MODES) {
      const runs = storm.filter((r) => r.clients === k && r.mode === mode);
      if (runs.length === 0) continue;
      const row: Record<string, unknown> = { k, mode, pairs: new Set(runs.map((r) => r.pair)).size };
      for (const m of metrics) {
        const w = runs.filter((r) => r.server === "weft").map((r) => r[m]);
        const g = runs.filter((r) => r.server === "gcp").map((r) => r[m]);
        const ratios = [...new Set(runs.map((r) => r.pair))].map((p) => {
          const a = runs.find((r) => r.pair === p && r.server === "weft");
          const b = runs.find((r) => r.pair === p && r.server === "gcp");
          return a && b && a.synced === k && b.synced === k ? a[m] / b[m] : NaN;
        });
        row[m] = { weft: median(w), gcp: median(g), ratio: median(ratios), ratios };
      }
      stormSummary.push(row);
    }
  const memSlopes = [...new Set(mem.map((r) => r.pair))].map((pair) => {
    const s: Record<string, number> = { pair };
    for (const kind of SERVERS) s[kind] = slope(mem.filter((r) => r.pair === pair && r.server === kind).map((r) => ({ k: r.k, y: r.rssMB })));
    s.ratio = s.weft! / s.gcp!;
    return s;
  });

  const goVersion = execFileSync("go", ["version"]).toString().trim();
  const gcpVersion = readFileSync(path.join(GO_DIR, "go.mod"), "utf8").match(/github\.com\/envoyproxy\/go-control-plane (v\S+)/)?.[1] ?? "?";
  const grpcGo = readFileSync(path.join(GO_DIR, "go.mod"), "utf8").match(/google\.golang\.org\/grpc (v\S+)/)?.[1] ?? "?";
  let commit = "?";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT }).toString().trim() + " (+ uncommitted changes)";
  } catch {}
  const grpcJs = JSON.parse(readFileSync(path.join(ROOT, "node_modules/@grpc/grpc-js/package.json"), "utf8")).version as string;
  const env = {
    date: new Date().toISOString(),
    machine: `${os.cpus()[0]?.model ?? "?"} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}`,
    node: process.version,
    grpcJs,
    go: goVersion,
    goControlPlane: gcpVersion,
    grpcGo,
    weftCommit: commit,
    fixture: { clusters: C, endpointsPerCluster: E, listeners: L },
    pairs: PAIRS,
    memPairs: MEM_PAIRS,
    commands: {
      runner: `BENCH_K=${KS.join(",")} BENCH_PAIRS=${PAIRS} BENCH_MODES=${MODES.join(",")} BENCH_MEM_K=${MEM_KS.join(",")} BENCH_MEM_PAIRS=${MEM_PAIRS} npx tsx bench/storm/run.ts`,
      weft: `${process.execPath} --import tsx bench/storm/weft-fixture-server.ts --port P --clusters ${C} --endpoints ${E} --listeners ${L}`,
      gcp: `bench/go/bin/refserver -port P -clusters ${C} -endpoints ${E} -listeners ${L}`,
      loadgen: `bench/go/bin/loadgen -target 127.0.0.1:P -clients K -mode sotw|delta -ramp 0s -hold 0.5s -timeout 180s (memory: -mode sotw -hold 6s)`,
    },
  };
  mkdirSync(path.join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(path.join(ROOT, "bench/results/storm.json"), JSON.stringify({ env, storm, stormSummary, mem, memSlopes }, null, 2) + "\n");

  const md: string[] = [];
  md.push("# Scale: connection storm and memory per proxy (Weft vs go-control-plane)", "");
  md.push(`- Date: ${env.date}`, `- Machine: ${env.machine}`, `- Weft: ${env.weftCommit}, Node ${env.node}, @grpc/grpc-js ${grpcJs}`);
  md.push(`- Reference: go-control-plane ${gcpVersion} (snapshot cache + pkg/server/v3, built without -race), grpc-go ${grpcGo}, ${goVersion}`);
  md.push(`- Fixture (both servers, one snapshot for every node): ${C} EDS clusters × ${E} endpoints, ${L} HTTP listeners each with its RDS route.`);
  md.push(`- Load: bench/go/loadgen (grpc-go), one ADS stream per simulated client, 100 streams per gRPC connection, Envoy-like (wildcard CDS → EDS names → ACK; wildcard LDS → RDS names → ACK). Ramp 0 s. Connections are dialled before the clock starts.`);
  md.push(`- Method: ${PAIRS} pairs per row, order flipped every pair (weft first on even pairs), fresh server process per run; "ratio" = median of per-pair ratios weft / go-control-plane (>1: Weft slower / uses more).`);
  md.push(`- CPU = server utime+stime (/proc/<pid>/stat) from before the storm to the moment the last client synced. Peak RSS = VmHWM of the server process (for Weft: the node process itself, started as \`node --import tsx\`, so it includes tsx's startup).`);
  md.push("", "Commands:", "", "```", ...Object.values(env.commands), "```", "");
  md.push("## Scenario 2: connection storm / initial sync (medians)", "");
  md.push("| K | mode | pairs | all synced ms (weft / gcp / ratio) | client p50 ms | client p99 ms | server CPU s | peak RSS MB |");
  md.push("|---|---|---|---|---|---|---|---|");
  for (const row of stormSummary as Record<string, any>[]) {
    const cell = (m: string, d = 0) => `${f(row[m].weft, d)} / ${f(row[m].gcp, d)} / **${f(row[m].ratio, 2)}×**`;
    md.push(`| ${row.k} | ${row.mode} | ${row.pairs} | ${cell("allAckedMs")} | ${cell("p50Ms")} | ${cell("p99Ms")} | ${cell("cpuS", 2)} | ${cell("peakRssMB")} |`);
  }
  md.push("", "Per run:", "", "| K | mode | pair | server | synced | errors | all ms | p50 | p99 | max | CPU s | loadgen CPU s | peak RSS MB |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of storm) md.push(`| ${r.clients} | ${r.mode} | ${r.pair + 1} | ${r.server} | ${r.synced} | ${r.errors} | ${f(r.allAckedMs)} | ${f(r.p50Ms)} | ${f(r.p99Ms)} | ${f(r.maxMs)} | ${f(r.cpuS, 2)} | ${f(r.loadgenCpuS, 2)} | ${f(r.peakRssMB)} |`);
  if (mem.length) {
    md.push("", "## Scenario 4: memory per connected proxy (idle, synced SotW clients)", "");
    md.push("VmRSS of the server 3 s after all K clients synced, streams held open. RSS only: a forced GC inside Node is not possible from outside, so Weft's figure includes garbage not yet collected.", "");
    md.push(`| pair | ${MEM_KS.map((k) => `weft K=${k}`).join(" | ")} | ${MEM_KS.map((k) => `gcp K=${k}`).join(" | ")} | weft KB/client | gcp KB/client | ratio |`);
    md.push(`|${"---|".repeat(MEM_KS.length * 2 + 4)}`);
    for (const s of memSlopes) {
      const rss = (kind: ServerKind) => MEM_KS.map((k) => f(mem.find((r) => r.pair === s.pair && r.server === kind && r.k === k)?.rssMB ?? NaN));
      md.push(`| ${s.pair! + 1} | ${rss("weft").join(" | ")} | ${rss("gcp").join(" | ")} | ${f(s.weft! * 1024)} | ${f(s.gcp! * 1024)} | ${f(s.ratio!, 2)}× |`);
    }
    md.push(`| **median** | ${" |".repeat(MEM_KS.length * 2)} ${f(median(memSlopes.map((s) => s.weft!)) * 1024)} | ${f(median(memSlopes.map((s) => s.gcp!)) * 1024)} | **${f(median(memSlopes.map((s) => s.ratio!)), 2)}×** |`);
  }
  writeFileSync(path.join(ROOT, "bench/results/storm.md"), md.join("\n") + "\n");
  log("wrote bench/results/storm.md and bench/results/storm.json");
}

await main();
