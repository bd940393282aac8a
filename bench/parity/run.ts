// Envoy parity benchmark, Weft vs go-control-plane, in the shape of go-control-plane's own
// integration test (pkg/test/main + scripts/integration.sh): one real Envoy per run; per version
// C EDS clusters, H HTTP listeners with RDS routes, T TCP listeners (all renamed every version,
// as the test does); U successive versions; each version must serve a fully successful batch of
// requests; Envoy's update_rejected stays 0. Modes: ads, xds (SotW, one stream per type),
// delta (incremental, one stream per type), delta-ads.
//
// Per version n the orchestrator writes "set n" to the server (bench/parity/weft-parity-server.ts
// or bench/go/parityserver), which builds version v<n>, installs it and prints the time its
// SetSnapshot / cache.set returned. Each version is visible in the data plane: its clusters
// point at the upstream on port upstreamBase+n, which answers "v<n>", and its routes add
// "x-version: v<n>". Time to traffic = from the server's timestamp to the moment the last
// listener (polled over fresh connections in a tight, bounded loop) first answered with v<n>.
// Then R rounds over every listener must all answer v<n> (failures must be 0), and Envoy's
// update_rejected counters (CDS, LDS, per-route RDS, per-cluster EDS) are sampled.
// Version 0 (initial sync, Envoy already connected and waiting) is reported separately.
//
// Fresh Envoy + fresh server per run; Weft and go-control-plane alternate in pairs (order
// flipped every pair); ratio = median of per-pair ratios (weft / gcp).
//
//   npx tsx bench/parity/run.ts
//   env: PARITY_MODES="ads,xds,delta,delta-ads" PARITY_PAIRS=5 PARITY_U=200 PARITY_C=4 PARITY_H=2
//        PARITY_T=2 PARITY_R=10 PARITY_POLL_MS=1 PARITY_VERSION_TIMEOUT_MS=20000
//        PARITY_SERVERS="weft,gcp" PARITY_VERBOSE=1 (a line per version) ENVOY_BIN=...
// Writes bench/results/parity.{md,json}; on a failed run, Envoy's config dump and log go to
// $TMPDIR/weft-parity-failures/ and the log tail into the JSON.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpuSecondsIfAlive } from "../process-stats.js";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { startEnvoy, type EnvoyProcess } from "../../src/envoy/envoy-process.js";
import { findEnvoyBinary } from "../../src/envoy/find-envoy.js";
import { renderParityBootstrap } from "./bootstrap.js";
import { PARITY_MODES, type ParityMode } from "./modes.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const GO_DIR = path.join(ROOT, "bench/go");
const GCP_BIN = path.join(GO_DIR, "bin/parityserver");
const list = (v: string | undefined, d: string) => (v ?? d).split(",").map((s) => s.trim()).filter(Boolean);
const num = (name: string, d: number) => {
  const v = Number(process.env[name] ?? d);
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a non-negative number, got "${process.env[name]}"`);
  return v;
};
const MODES = list(process.env.PARITY_MODES, PARITY_MODES.join(",")) as ParityMode[];
for (const m of MODES) if (!PARITY_MODES.includes(m)) throw new Error(`PARITY_MODES: unknown mode "${m}" (${PARITY_MODES.join(", ")})`);
const PAIRS = num("PARITY_PAIRS", 5);
const U = num("PARITY_U", 200);
const C = Math.max(1, num("PARITY_C", 4));
const H = num("PARITY_H", 2);
const T = num("PARITY_T", 2);
const R = num("PARITY_R", 10);
const POLL_MS = num("PARITY_POLL_MS", 1);
const VERSION_TIMEOUT_MS = num("PARITY_VERSION_TIMEOUT_MS", 20_000);
const REQUEST_TIMEOUT_MS = 1000;
const VERBOSE = !!process.env.PARITY_VERBOSE && process.env.PARITY_VERBOSE !== "0";
type ServerKind = "weft" | "gcp";
const SERVERS = list(process.env.PARITY_SERVERS, "weft,gcp") as ServerKind[];
const ENVOY_ARGS = ["--drain-time-s", "1"]; // as go-control-plane's scripts/integration.sh
const FAILURE_DIR = path.join(os.tmpdir(), "weft-parity-failures");

function log(msg: string): void {
  console.log(`[${new Date().toISOString().slice(11, 23)}] ${msg}`);
}

/** Wall clock in ms with sub-ms resolution (same clock as the servers' unix-nanos). */
const nowMs = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// Ports

async function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen({ host: "127.0.0.1", port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

const handedOut = new Set<number>();
/** A run of `count` consecutive free loopback ports below the ephemeral range, never handed out before. */
async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const start = 12000 + Math.floor(Math.random() * (30000 - 12000 - count));
    let ok = true;
    for (let p = start; p < start + count && ok; p++) ok = !handedOut.has(p) && (await canBind(p));
    if (ok) {
      for (let p = start; p < start + count; p++) handedOut.add(p);
      return start;
    }
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

// ---------------------------------------------------------------------------------------
// Upstreams: one HTTP server per version, answering "v<n>"

async function startUpstreams(base: number, versions: number): Promise<http.Server[]> {
  const servers: http.Server[] = [];
  for (let n = 0; n < versions; n++) {
    const body = `v${n}`;
    const s = http.createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body), connection: "close" });
      res.end(body);
    });
    s.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.listen({ host: "127.0.0.1", port: base + n }, () => resolve());
    });
    servers.push(s);
  }
  return servers;
}

// ---------------------------------------------------------------------------------------
// Probing listeners

interface Probe {
  ok: boolean;
  /** Response complete (ms, wall clock). */
  at: number;
  /** What was wrong, e.g. "status 503", "body v2", "ECONNREFUSED". */
  problem?: string;
}

/** One GET over a fresh connection; for HTTP listeners the x-version header must match too. */
function probe(port: number, expect: string, checkHeader: boolean): Promise<Probe> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (p: Omit<Probe, "at">) => {
      if (done) return;
      done = true;
      resolve({ ...p, at: nowMs() });
    };
    const req = http.request({ host: "127.0.0.1", port, path: "/", agent: false, headers: { connection: "close" }, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString();
        const header = res.headers["x-version"];
        if (res.statusCode !== 200) finish({ ok: false, problem: `status ${res.statusCode}` });
        else if (body !== expect) finish({ ok: false, problem: `body ${JSON.stringify(body.slice(0, 40))}` });
        else if (checkHeader && header !== expect) finish({ ok: false, problem: `x-version ${JSON.stringify(header)}` });
        else finish({ ok: true });
      });
      res.on("error", (e) => finish({ ok: false, problem: (e as NodeJS.ErrnoException).code ?? e.message }));
    });
    req.on("timeout", () => {
      req.destroy();
      finish({ ok: false, problem: "timeout" });
    });
    req.on("error", (e) => finish({ ok: false, problem: (e as NodeJS.ErrnoException).code ?? e.message }));
    req.end();
  });
}

// ---------------------------------------------------------------------------------------
// Server processes

interface ServerProc {
  kind: ServerKind;
  proc: ChildProcess;
  port: number;
  stderrTail: string[];
  /** Resolves with the next stdout line starting with `prefix`. */
  next(prefix: string, timeoutMs: number): Promise<string>;
  command: string;
}

const liveChildren = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of liveChildren) c.kill("SIGKILL");
});
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    for (const c of liveChildren) c.kill("SIGKILL");
    process.exit(130);
  });
}

function serverArgs(kind: ServerKind, mode: ParityMode, port: number, base: number, upstreamBase: number): { cmd: string; args: string[] } {
  const a = { port, mode, clusters: C, http: H, tcp: T, base, "upstream-base": upstreamBase };
  if (kind === "weft") {
    return { cmd: process.execPath, args: ["--import", "tsx", path.join(ROOT, "bench/parity/weft-parity-server.ts"), ...Object.entries(a).flatMap(([k, v]) => [`--${k}`, String(v)])] };
  }
  return { cmd: GCP_BIN, args: Object.entries(a).flatMap(([k, v]) => [`-${k}`, String(v)]) };
}

async function startServer(kind: ServerKind, mode: ParityMode, base: number, upstreamBase: number): Promise<ServerProc> {
  const port = await freePortRange(1);
  const { cmd, args } = serverArgs(kind, mode, port, base, upstreamBase);
  const proc = spawn(cmd, args, { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
  liveChildren.add(proc);
  proc.once("exit", () => liveChildren.delete(proc));
  const stderrTail: string[] = [];
  createInterface({ input: proc.stderr! }).on("line", (l) => {
    stderrTail.push(l);
    if (stderrTail.length > 100) stderrTail.shift();
  });
  const lines: string[] = [];
  const waiters: { prefix: string; resolve: (l: string) => void }[] = [];
  createInterface({ input: proc.stdout! }).on("line", (line) => {
    const i = waiters.findIndex((w) => line.startsWith(w.prefix));
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(line);
    else lines.push(line);
  });
  const next = (prefix: string, timeoutMs: number) =>
    new Promise<string>((resolve, reject) => {
      const i = lines.findIndex((l) => l.startsWith(prefix));
      if (i >= 0) return resolve(lines.splice(i, 1)[0]!);
      const timer = setTimeout(() => reject(new Error(`${kind} server: no "${prefix}" line in ${timeoutMs} ms; stderr: ${stderrTail.slice(-10).join(" | ")}`)), timeoutMs);
      const onExit = (code: number | null) => reject(new Error(`${kind} server exited (${code}) waiting for "${prefix}"; stderr: ${stderrTail.slice(-10).join(" | ")}`));
      proc.once("exit", onExit);
      waiters.push({
        prefix,
        resolve: (l) => {
          clearTimeout(timer);
          proc.off("exit", onExit);
          resolve(l);
        },
      });
    });
  const server: ServerProc = { kind, proc, port, stderrTail, next, command: [path.relative(ROOT, cmd) || cmd, ...args].join(" ") };
  try {
    await next("ready", 60_000);
  } catch (err) {
    await stopServer(server);
    throw err;
  }
  return server;
}

async function stopServer(s: ServerProc): Promise<void> {
  if (s.proc.exitCode !== null || s.proc.signalCode !== null) return;
  const exited = new Promise((r) => s.proc.once("exit", r));
  s.proc.stdin?.end();
  s.proc.kill("SIGTERM");
  const t = setTimeout(() => s.proc.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(t);
}

// ---------------------------------------------------------------------------------------
// One run

interface VersionResult {
  version: number;
  /** Server's SetSnapshot/cache.set return -> last listener first answered v<n>. */
  ttaMs: number;
  /** Orchestrator: "set" written -> server's timestamp (clock sanity; includes stdin latency and snapshot build). */
  setLatencyMs: number;
  /** Server: building version n's snapshot and setting it (not part of ttaMs). */
  buildSetMs: number;
  /** Probes during convergence that did not answer v<n> (old version, 503, refused...): expected, informative. */
  transitionMisses: number;
  /** transitionMisses by kind ("older version", "status 503", "ECONNREFUSED", ...). */
  missKinds: Record<string, number>;
  /** Failed requests in the batch after convergence (must be 0). */
  failed: number;
  firstFailure?: string;
}

interface RunResult {
  mode: ParityMode;
  server: ServerKind;
  pair: number;
  ok: boolean;
  error?: string;
  envoyVersion: string;
  initialMs: number;
  versions: VersionResult[];
  medianMs: number;
  p90Ms: number;
  maxMs: number;
  /** Median of the first 10 updates (v1..v10): a fresh server before warm-up (JIT for Weft). */
  coldMedianMs: number;
  failed: number;
  batchRequests: number;
  /** Median over the versions of the server's build+set time (outside the measured time). */
  buildSetMs: number;
  /** Probes during convergence that did not yet answer the new version, by kind, over all versions. */
  missKinds: Record<string, number>;
  updateRejected: { cds: number; lds: number; rds: number; eds: number };
  /** Envoy counters at the end: cds/lds update_attempt/success/rejected, listener_added/modified/removed, upstream_rq_total (xDS gRPC streams opened to the server). */
  envoyUpdates: Record<string, number>;
  serverNacks: number;
  serverCpuS: number;
  runWallS: number;
  rejectionLogLines: string[];
  failureArtifacts?: { logTail: string[]; serverStderr: string[]; configDumpFile?: string; envoyLogFile?: string };
}

function rejectedCategory(name: string): keyof RunResult["updateRejected"] | undefined {
  if (!name.endsWith("update_rejected")) return undefined;
  if (name.startsWith("cluster_manager.cds.")) return "cds";
  if (name.startsWith("listener_manager.lds.")) return "lds";
  if (/^http\..*\.rds\./.test(name)) return "rds";
  if (name.startsWith("cluster.")) return "eds";
  return undefined;
}

const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const quantile = (xs: number[], q: number) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
};
const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "—");

async function run(mode: ParityMode, kind: ServerKind, pair: number, upstreamBase: number): Promise<RunResult> {
  const t0 = nowMs();
  const listeners = Array.from({ length: H + T }, (_, i) => i);
  const base = await freePortRange(H + T);
  const result: RunResult = {
    mode, server: kind, pair, ok: false, envoyVersion: "", initialMs: NaN, versions: [], medianMs: NaN, p90Ms: NaN, maxMs: NaN, coldMedianMs: NaN,
    failed: 0, batchRequests: 0, buildSetMs: NaN, missKinds: {}, updateRejected: { cds: 0, lds: 0, rds: 0, eds: 0 }, envoyUpdates: {}, serverNacks: 0,
    serverCpuS: NaN, runWallS: NaN, rejectionLogLines: [],
  };
  const rejectedMax = new Map<string, number>();
  let server: ServerProc | undefined;
  let envoy: EnvoyProcess | undefined;
  let cpu0 = NaN;

  const sampleRejected = async () => {
    for (const [name, value] of await envoy!.stats("update_rejected$")) {
      if (rejectedCategory(name)) rejectedMax.set(name, Math.max(value, rejectedMax.get(name) ?? 0));
    }
  };

  /** Sets version n and waits until every listener answered v<n>; returns the timing. */
  const converge = async (n: number): Promise<VersionResult> => {
    const expect = `v${n}`;
    const written = nowMs();
    const setLine = server!.next(`set ${n} `, 30_000);
    server!.proc.stdin!.write(`set ${n}\n`);
    const firstAt = new Map<number, number>();
    let misses = 0;
    const missKinds: Record<string, number> = {};
    const lastProblem = new Map<number, string>();
    const deadline = written + VERSION_TIMEOUT_MS;
    while (firstAt.size < listeners.length) {
      if (nowMs() > deadline) {
        const pending = listeners.filter((i) => !firstAt.has(i));
        throw new Error(`version ${expect} not served within ${VERSION_TIMEOUT_MS} ms: listeners ${pending.map((i) => `listener-${i} (${lastProblem.get(i) ?? "?"})`).join(", ")}`);
      }
      const pending = listeners.filter((i) => !firstAt.has(i));
      const probes = await Promise.all(pending.map((i) => probe(base + i, expect, i < H)));
      pending.forEach((i, k) => {
        const p = probes[k]!;
        if (p.ok) firstAt.set(i, p.at);
        else {
          misses++;
          lastProblem.set(i, p.problem ?? "?");
          const kind = /^(body|x-version) "v\d+"$/.test(p.problem ?? "") ? "older version" : (p.problem ?? "?");
          missKinds[kind] = (missKinds[kind] ?? 0) + 1;
        }
      });
      if (firstAt.size < listeners.length && POLL_MS > 0) await sleep(POLL_MS);
    }
    const [, , nsText, buildUsText] = (await setLine).split(" ");
    const setNs = BigInt(nsText!);
    const setMs = Number(setNs / 1000n) / 1000;
    const doneAt = Math.max(...firstAt.values());
    // Batch: R rounds over every listener, each must answer v<n>.
    let failed = 0;
    let firstFailure: string | undefined;
    for (let r = 0; r < R; r++) {
      const probes = await Promise.all(listeners.map((i) => probe(base + i, expect, i < H)));
      probes.forEach((p, i) => {
        if (!p.ok) {
          failed++;
          firstFailure ??= `listener-${i}: ${p.problem}`;
        }
      });
    }
    result.batchRequests += R * listeners.length;
    await sampleRejected();
    return { version: n, ttaMs: doneAt - setMs, setLatencyMs: setMs - written, buildSetMs: Number(buildUsText) / 1000, transitionMisses: misses, missKinds, failed, ...(firstFailure ? { firstFailure } : {}) };
  };

  try {
    server = await startServer(kind, mode, base, upstreamBase);
    envoy = await startEnvoy({
      name: `parity-${mode}-${kind}`,
      bootstrapYaml: renderParityBootstrap({ mode, xdsPort: server.port }),
      waitForLive: false,
      extraArgs: ENVOY_ARGS,
    });
    result.envoyVersion = (await envoy.serverInfo()).version;
    // As the integration test waits for Envoy's first request: wait until Envoy's first xDS
    // stream is open (the ADS stream, or in xds/delta mode the CDS stream: Envoy opens LDS only
    // once its clusters are initialized, i.e. after the first CDS answer, which then counts in
    // v0's time). control_plane.connected_state would only track an ADS stream.
    await envoy.waitFor(async () => ((await envoy!.stats("^cluster\\.xds_cluster\\.upstream_rq_active$")).get("cluster.xds_cluster.upstream_rq_active") ?? 0) >= 1, {
      what: "Envoy connected to the control plane",
      timeoutMs: 15_000,
      intervalMs: 10,
    });
    cpu0 = cpuSecondsIfAlive(server.proc.pid!);
    const initial = await converge(0);
    result.initialMs = initial.ttaMs;
    result.failed += initial.failed;
    if (VERBOSE) log(`  ${mode} ${kind} v0 (initial): ${f(initial.ttaMs)} ms, misses ${initial.transitionMisses}, failed ${initial.failed}`);
    for (let n = 1; n <= U; n++) {
      const v = await converge(n);
      result.versions.push(v);
      result.failed += v.failed;
      if (VERBOSE) log(`  ${mode} ${kind} v${n}: ${f(v.ttaMs)} ms (build+set ${f(v.buildSetMs, 2)} ms; "set" written -> set ${f(v.setLatencyMs, 2)} ms), misses ${JSON.stringify(v.missKinds)}, failed ${v.failed}${v.firstFailure ? ` (${v.firstFailure})` : ""}`);
    }
    result.serverCpuS = cpuSecondsIfAlive(server.proc.pid!) - cpu0;
    server.proc.stdin!.write("nacks\n");
    result.serverNacks = Number((await server.next("nacks ", 5000)).split(" ")[1]);
    for (const [name, value] of await envoy.stats("^(cluster_manager\\.cds|listener_manager\\.lds)\\.update_(attempt|success|rejected)$|^listener_manager\\.listener_(added|modified|removed)$|^cluster\\.xds_cluster\\.upstream_rq_total$")) {
      result.envoyUpdates[name.replace(/^cluster_manager\.|^listener_manager\.|^cluster\.xds_cluster\./, "")] = value;
    }
    result.ok = result.failed === 0;
  } catch (err) {
    result.error = err instanceof Error ? err.message.split("\n")[0] : String(err);
  } finally {
    if (envoy) {
      try {
        await sampleRejected();
      } catch {}
      let logText = "";
      try {
        logText = readFileSync(envoy.logPath, "utf8");
      } catch {}
      result.rejectionLogLines = logText.split("\n").filter((l) => /rejected|NACK|gRPC config for .* rejected|update_rejected/i.test(l)).slice(0, 20);
      const rejectedTotal = [...rejectedMax.values()].reduce((a, b) => a + b, 0);
      if (result.error || result.failed > 0 || rejectedTotal > 0) {
        mkdirSync(FAILURE_DIR, { recursive: true });
        const stem = path.join(FAILURE_DIR, `${mode}-${kind}-pair${pair + 1}-${Date.now()}`);
        let configDumpFile: string | undefined;
        try {
          writeFileSync(`${stem}.config_dump.json`, JSON.stringify(await envoy.configDump({ includeEds: true }), null, 1));
          configDumpFile = `${stem}.config_dump.json`;
        } catch {}
        writeFileSync(`${stem}.envoy.log`, logText);
        result.failureArtifacts = { logTail: logText.split("\n").slice(-60), serverStderr: server?.stderrTail.slice(-30) ?? [], envoyLogFile: `${stem}.envoy.log`, ...(configDumpFile ? { configDumpFile } : {}) };
      }
      await envoy.stop();
    }
    if (server) {
      if (!Number.isFinite(result.serverCpuS) && Number.isFinite(cpu0)) result.serverCpuS = cpuSecondsIfAlive(server.proc.pid!) - cpu0;
      await stopServer(server);
    }
    for (let p = base; p < base + H + T; p++) handedOut.delete(p);
  }
  for (const [name, value] of rejectedMax) result.updateRejected[rejectedCategory(name)!] += value;
  const tta = result.versions.map((v) => v.ttaMs);
  result.medianMs = median(tta);
  result.coldMedianMs = median(tta.slice(0, 10));
  result.buildSetMs = median(result.versions.map((v) => v.buildSetMs));
  for (const v of result.versions) for (const [k, c] of Object.entries(v.missKinds)) result.missKinds[k] = (result.missKinds[k] ?? 0) + c;
  result.p90Ms = quantile(tta, 0.9);
  result.maxMs = tta.length ? Math.max(...tta) : NaN;
  result.runWallS = (nowMs() - t0) / 1000;
  const rej = Object.values(result.updateRejected).reduce((a, b) => a + b, 0);
  if (rej > 0) result.ok = false;
  return result;
}

// ---------------------------------------------------------------------------------------

function order(pair: number): ServerKind[] {
  return pair % 2 === 0 ? SERVERS : [...SERVERS].reverse();
}

async function main(): Promise<void> {
  if (SERVERS.includes("gcp")) {
    log(`building bench/go/parityserver`);
    execFileSync("go", ["build", "-o", GCP_BIN, "./parityserver"], { cwd: GO_DIR, stdio: "inherit" });
  }
  const envoyBin = await findEnvoyBinary();
  const upstreamBase = await freePortRange(U + 1);
  const upstreams = await startUpstreams(upstreamBase, U + 1);
  log(`parity: modes ${MODES.join(",")}, ${PAIRS} pairs, C=${C} H=${H} T=${T} U=${U} R=${R}, upstreams on ${upstreamBase}..${upstreamBase + U}, envoy ${envoyBin}`);
  const runs: RunResult[] = [];
  try {
    for (const mode of MODES)
      for (let pair = 0; pair < PAIRS; pair++)
        for (const kind of order(pair)) {
          const r = await run(mode, kind, pair, upstreamBase);
          runs.push(r);
          const rej = r.updateRejected;
          log(`${mode} pair ${pair + 1}/${PAIRS} ${kind}: ${r.ok ? "ok" : "FAILED"} initial=${f(r.initialMs)} ms median=${f(r.medianMs)} p90=${f(r.p90Ms)} max=${f(r.maxMs)} ms over ${r.versions.length} versions; failed ${r.failed}/${r.batchRequests}; update_rejected cds/lds/rds/eds ${rej.cds}/${rej.lds}/${rej.rds}/${rej.eds}; server NACKs ${r.serverNacks}; server CPU ${f(r.serverCpuS, 2)} s; run ${f(r.runWallS)} s${r.error ? `; error: ${r.error}` : ""}${r.failureArtifacts ? `; artifacts ${r.failureArtifacts.envoyLogFile}` : ""}`);
        }
  } finally {
    await Promise.all(upstreams.map((s) => new Promise((r) => s.close(r))));
  }

  // Summary per mode: medians per server, ratio = median of per-pair ratios.
  const summary = MODES.map((mode) => {
    const rs = runs.filter((r) => r.mode === mode);
    const per = (kind: ServerKind) => {
      const k = rs.filter((r) => r.server === kind);
      return {
        runs: k.length,
        okRuns: k.filter((r) => r.ok).length,
        medianMs: median(k.map((r) => r.medianMs)),
        p90Ms: median(k.map((r) => r.p90Ms)),
        maxMs: k.length ? Math.max(...k.map((r) => r.maxMs)) : NaN,
        initialMs: median(k.map((r) => r.initialMs)),
        coldMedianMs: median(k.map((r) => r.coldMedianMs)),
        failed: k.reduce((a, r) => a + r.failed, 0),
        batchRequests: k.reduce((a, r) => a + r.batchRequests, 0),
        updateRejected: k.reduce((a, r) => a + r.updateRejected.cds + r.updateRejected.lds + r.updateRejected.rds + r.updateRejected.eds, 0),
        serverNacks: k.reduce((a, r) => a + r.serverNacks, 0),
        serverCpuS: median(k.map((r) => r.serverCpuS)),
        errors: k.filter((r) => r.error).map((r) => r.error!),
      };
    };
    type PairMetric = "medianMs" | "coldMedianMs" | "initialMs" | "serverCpuS";
    const pairRatio = (metric: PairMetric) =>
      [...new Set(rs.map((r) => r.pair))].map((p) => {
        const w = rs.find((r) => r.pair === p && r.server === "weft");
        const g = rs.find((r) => r.pair === p && r.server === "gcp");
        return w && g && !w.error && !g.error ? w[metric] / g[metric] : NaN;
      });
    const ratioOf = (metric: PairMetric) => {
      const ratios = pairRatio(metric).filter(Number.isFinite);
      return { ratio: median(ratios), min: ratios.length ? Math.min(...ratios) : NaN, max: ratios.length ? Math.max(...ratios) : NaN, ratios };
    };
    return { mode, weft: per("weft"), gcp: per("gcp"), ttaRatio: ratioOf("medianMs"), coldRatio: ratioOf("coldMedianMs"), initialRatio: ratioOf("initialMs"), cpuRatio: ratioOf("serverCpuS") };
  });

  const goVersion = execFileSync("go", ["version"]).toString().trim();
  const gomod = readFileSync(path.join(GO_DIR, "go.mod"), "utf8");
  const gcpVersion = gomod.match(/github\.com\/envoyproxy\/go-control-plane (v\S+)/)?.[1] ?? "?";
  const grpcGo = gomod.match(/google\.golang\.org\/grpc (v\S+)/)?.[1] ?? "?";
  let commit = "?";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT }).toString().trim() + " (+ uncommitted changes)";
  } catch {}
  const grpcJs = JSON.parse(readFileSync(path.join(ROOT, "node_modules/@grpc/grpc-js/package.json"), "utf8")).version as string;
  const envoyVersion = runs.find((r) => r.envoyVersion)?.envoyVersion ?? "?";
  const envPrefix = `PARITY_MODES=${MODES.join(",")} PARITY_PAIRS=${PAIRS} PARITY_U=${U} PARITY_C=${C} PARITY_H=${H} PARITY_T=${T} PARITY_R=${R} PARITY_POLL_MS=${POLL_MS} PARITY_VERSION_TIMEOUT_MS=${VERSION_TIMEOUT_MS}${process.env.PARITY_SERVERS ? ` PARITY_SERVERS=${SERVERS.join(",")}` : ""}`;
  const env = {
    date: new Date().toISOString(),
    machine: `${os.cpus()[0]?.model ?? "?"} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}`,
    node: process.version,
    grpcJs,
    envoy: envoyVersion,
    envoyBinary: envoyBin,
    go: goVersion,
    goControlPlane: gcpVersion,
    grpcGo,
    weftCommit: commit,
    shape: { clusters: C, httpListeners: H, tcpListeners: T, updates: U, batchRounds: R, pollIntervalMs: POLL_MS, versionTimeoutMs: VERSION_TIMEOUT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS },
    pairs: PAIRS,
    commands: {
      runner: `${envPrefix} npx tsx bench/parity/run.ts`,
      weft: `${process.execPath} --import tsx bench/parity/weft-parity-server.ts --port P --mode M --clusters ${C} --http ${H} --tcp ${T} --base B --upstream-base UB`,
      gcp: `bench/go/bin/parityserver -port P -mode M -clusters ${C} -http ${H} -tcp ${T} -base B -upstream-base UB   (go build -o bin/parityserver ./parityserver in bench/go)`,
      envoy: `${envoyBin} --config-path <bootstrap from bench/parity/bootstrap.ts> --admin-address-path F --disable-hot-restart --concurrency 1 -l info ${ENVOY_ARGS.join(" ")}`,
    },
  };
  mkdirSync(path.join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(path.join(ROOT, "bench/results/parity.json"), JSON.stringify({ env, summary, runs }, null, 2) + "\n");

  const md: string[] = [];
  md.push("# Envoy parity: go-control-plane's integration-test shape (Weft vs go-control-plane)", "");
  md.push(`- Date: ${env.date}`, `- Machine: ${env.machine}`, `- Weft: ${commit}, Node ${env.node}, @grpc/grpc-js ${grpcJs}`);
  md.push(`- Reference: go-control-plane ${gcpVersion} (snapshot cache + pkg/server/v3; ordered ADS and ads=true cache in ads mode, as pkg/test/main), grpc-go ${grpcGo}, ${goVersion}`);
  md.push(`- Envoy ${envoyVersion} (${envoyBin}), one per run, --concurrency 1 ${ENVOY_ARGS.join(" ")}`);
  md.push(`- Shape per version v (go-control-plane's TestSnapshot naming; every resource but the listeners renamed each version): ${C} EDS clusters cluster-v-i (endpoint: the upstream of v), ${H} HTTP listeners with RDS route route-v-port (adds \`x-version: v\`), ${T} TCP listeners (tcp_proxy). ${U} updates after the initial version v0. Not included from the integration test: scoped routes, VHDS, RTDS, extension configs, access-log service, TLS/SDS.`);
  md.push(`- Time to traffic: from the server's own timestamp when SetSnapshot (gcp) / cache.set (Weft) returned, to the moment the last listener first answered with v (body from the upstream of v; for HTTP listeners also the x-version header) — listeners polled over fresh connections, ${POLL_MS} ms between rounds. "First 10 updates" = median of v1..v10 only (a fresh server before warm-up; Weft runs on V8's JIT). Then a batch of ${R} rounds × ${H + T} listeners must all answer v (failed must be 0). update_rejected: Envoy's cds, lds, per-route rds and per-cluster eds counters, sampled after every version.`);
  md.push(`- Method: ${PAIRS} pairs per mode, order flipped every pair, fresh Envoy and server per run. "ratio" = median of per-pair ratios weft / gcp of the per-run median time to traffic, with the range of those ratios (>1: Weft slower).`);
  md.push("", "Commands:", "", "```", ...Object.values(env.commands), "```", "");
  md.push("## Summary", "");
  md.push("| mode | server | ok runs | median ms (median over runs) | p90 ms | max ms | first 10 updates ms | initial v0 ms | failed requests | update_rejected | server NACKs | server CPU s/run |");
  md.push("|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const s of summary)
    for (const kind of ["weft", "gcp"] as const) {
      const x = s[kind];
      if (x.runs === 0) continue;
      md.push(`| ${s.mode} | ${kind} | ${x.okRuns}/${x.runs} | ${f(x.medianMs)} | ${f(x.p90Ms)} | ${f(x.maxMs)} | ${f(x.coldMedianMs)} | ${f(x.initialMs)} | ${x.failed}/${x.batchRequests} | ${x.updateRejected} | ${x.serverNacks} | ${f(x.serverCpuS, 2)} |`);
    }
  md.push("", "| mode | time to traffic weft/gcp (median of per-pair ratios) | range | first 10 updates ratio | initial v0 ratio | server CPU ratio |", "|---|---|---|---|---|---|");
  for (const s of summary) md.push(`| ${s.mode} | **${f(s.ttaRatio.ratio, 2)}×** | ${f(s.ttaRatio.min, 2)}–${f(s.ttaRatio.max, 2)} | ${f(s.coldRatio.ratio, 2)}× | ${f(s.initialRatio.ratio, 2)}× | ${f(s.cpuRatio.ratio, 2)}× |`);
  md.push("", "## Per run", "", "| mode | pair | server | ok | initial ms | median ms | p90 ms | max ms | failed | update_rejected cds/lds/rds/eds | NACKs | CDS/LDS updates (success) | xDS streams opened | build+set ms | misses while converging | server CPU s | run s | error |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of runs) {
    const u = r.updateRejected;
    md.push(`| ${r.mode} | ${r.pair + 1} | ${r.server} | ${r.ok ? "yes" : "**no**"} | ${f(r.initialMs)} | ${f(r.medianMs)} | ${f(r.p90Ms)} | ${f(r.maxMs)} | ${r.failed}/${r.batchRequests} | ${u.cds}/${u.lds}/${u.rds}/${u.eds} | ${r.serverNacks} | ${r.envoyUpdates["cds.update_success"] ?? "—"}/${r.envoyUpdates["lds.update_success"] ?? "—"} | ${r.envoyUpdates["upstream_rq_total"] ?? "—"} | ${f(r.buildSetMs, 2)} | ${Object.entries(r.missKinds).map(([k, c]) => `${k}: ${c}`).join(", ")} | ${f(r.serverCpuS, 2)} | ${f(r.runWallS)} | ${r.error ?? ""} |`);
  }
  const failures = runs.filter((r) => r.failureArtifacts || r.rejectionLogLines.length);
  if (failures.length) {
    md.push("", "## Failures", "");
    for (const r of failures) {
      md.push(`### ${r.mode} ${r.server} pair ${r.pair + 1}`, "");
      if (r.error) md.push(`Error: ${r.error}`, "");
      if (r.failureArtifacts) md.push(`Envoy log: ${r.failureArtifacts.envoyLogFile}; config dump: ${r.failureArtifacts.configDumpFile ?? "—"}`, "");
      if (r.rejectionLogLines.length) md.push("```", ...r.rejectionLogLines, "```", "");
    }
  }
  writeFileSync(path.join(ROOT, "bench/results/parity.md"), md.join("\n") + "\n");
  log("wrote bench/results/parity.md and bench/results/parity.json");
}

await main();
