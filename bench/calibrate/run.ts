// Calibration of the load generator (bench/go/loadgen) against real Envoys: the same Weft fixture
// server (bench/calibrate/fixture-server.ts) is driven once by N real Envoy processes and once by
// N loadgen clients, alternating, with a fresh server per run. Compared, per run:
//   (1) initial sync: time from starting the clients to the last stream having ACKed the current
//       CDS, EDS, LDS and RDS versions (seen by the server); per-stream connect->synced time;
//       server CPU-seconds; responses and bytes the server sent per type; requests, subscription
//       requests, ACKs and NACKs it received per type; CPU-seconds of the clients themselves;
//   (2) endpoint changes (svc-3, svc-4, ...) alternating with route changes (route-2, route-3, ...),
//       CAL_CHANGES of each, 400 ms apart: time from the change to each proxy's ACK (server's
//       per-proxy ACK state), responses/bytes sent and requests received; per run the median over
//       its changes.
// The request sequence of the first node (server trace) is recorded for each kind.
//
//   npx tsx bench/calibrate/run.ts
//   env: CAL_N=10 (clients) CAL_PAIRS=3 CAL_MODES="sotw,delta" CAL_KINDS="loadgen,loadgen-eo,loadgen-eo-1c,envoy"
//        CAL_CLUSTERS=100 CAL_ENDPOINTS=10 CAL_LISTENERS=20 CAL_CHANGES=5 (endpoint + route changes per run)
// Kinds: loadgen = bench/go/loadgen as the storm benchmark runs it (-init-order parallel: CDS and LDS
// requested at once; 100 streams per gRPC connection); loadgen-eo = -init-order envoy (LDS requested
// once clusters are warm, like Envoy's init manager); loadgen-eo-1c = the same with one connection
// per client (-per-conn 1), as each Envoy has; envoy = real Envoy processes. Each "pair" runs every kind once, the order
// rotated every pair.
// Writes bench/results/loadgen-calibration.{md,json}. Every Envoy, server and loadgen started here is
// stopped at the end, also on failure (finally blocks, plus exit hooks in the helpers).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpuSecondsIfAlive } from "../process-stats.js";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { renderBootstrap } from "../../src/envoy/bootstrap.js";
import { startEnvoy, type EnvoyProcess } from "../../src/envoy/envoy-process.js";
import { findEnvoyBinary } from "../../src/envoy/find-envoy.js";
import { JsonLinesProcess, type JsonObject } from "../json-lines-process.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const GO_DIR = path.join(ROOT, "bench/go");
const LOADGEN = path.join(GO_DIR, "bin/loadgen");
const list = (v: string | undefined, d: string) => (v ?? d).split(",").map((s) => s.trim()).filter(Boolean);
const N = Number(process.env.CAL_N ?? 10);
const PAIRS = Number(process.env.CAL_PAIRS ?? 3);
const MODES = list(process.env.CAL_MODES, "sotw,delta") as ("sotw" | "delta")[];
const C = Number(process.env.CAL_CLUSTERS ?? 100);
const E = Number(process.env.CAL_ENDPOINTS ?? 10);
const L = Number(process.env.CAL_LISTENERS ?? 20);
const CHANGES = Number(process.env.CAL_CHANGES ?? 5);
const EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
const RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
const TYPES = ["cds", "eds", "lds", "rds"] as const;

/** The loadgen variants compared with real Envoy, by the flags that make them. */
const LOADGEN_FLAGS = {
  loadgen: ["-init-order", "parallel", "-per-conn", "100"], // what bench/storm runs
  "loadgen-eo": ["-init-order", "envoy", "-per-conn", "100"],
  "loadgen-eo-1c": ["-init-order", "envoy", "-per-conn", "1"], // one gRPC connection per client, like Envoys
} as const;
type Kind = keyof typeof LOADGEN_FLAGS | "envoy";
const KINDS = list(process.env.CAL_KINDS, "loadgen,loadgen-eo,loadgen-eo-1c,envoy") as Kind[];
for (const k of KINDS) if (k !== "envoy" && !(k in LOADGEN_FLAGS)) throw new Error(`CAL_KINDS: unknown kind ${k} (known: ${Object.keys(LOADGEN_FLAGS).join(", ")}, envoy)`);
const LOADGEN_KINDS = KINDS.filter((k): k is keyof typeof LOADGEN_FLAGS => k !== "envoy");
const KIND_LABEL: Record<Kind, string> = {
  loadgen: "loadgen (parallel, 100 streams/conn)",
  "loadgen-eo": "loadgen (envoy order, 100 streams/conn)",
  "loadgen-eo-1c": "loadgen (envoy order, 1 stream/conn)",
  envoy: "Envoy",
};

function log(msg: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}
const epochMs = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const f = (x: number | undefined, d = 1) => (x !== undefined && Number.isFinite(x) ? x.toFixed(d) : "—");

function nodeOf(i: number) {
  return {
    id: `sidecar~10.0.0.${i + 1}~pod-${i}.ns-1~ns-1.svc.cluster.local`,
    cluster: `svc-${i}.ns-1`,
    metadata: { NAMESPACE: "ns-1", LABELS: JSON.stringify({ app: `svc-${i}`, version: "v1" }) },
  };
}

type PerType = Record<string, Record<string, number>>;
interface ChangeResult {
  acked: number;
  nacked: number;
  /** Server: ms from the change to each proxy's ACK. */
  ackMs: number[];
  sent: PerType;
  received: PerType;
  serverCpuS: number;
  /** Loadgen only: its own view of the same change (mark reply). */
  loadgen?: JsonObject;
}
interface Run {
  kind: Kind;
  mode: "sotw" | "delta";
  pair: number;
  synced: number;
  /** From starting the clients to the last stream synced (server clock). */
  allSyncedMs: number;
  /** Per stream: connect -> all four types ACKed at the current version (server clock). */
  streamSyncMs: number[];
  /** From starting the clients to the first stream connecting. */
  firstConnectMs: number;
  serverCpuS: number;
  clientCpuS: number;
  sent: PerType;
  received: PerType;
  loadgenResult?: JsonObject;
  /** CAL_CHANGES endpoint changes (svc-3, svc-4, ...) and route changes (route-2, route-3, ...), alternating. */
  endpointChanges: ChangeResult[];
  routeChanges: ChangeResult[];
  trace: JsonObject[];
}

function diffPerType(a: PerType, b: PerType): PerType {
  const out: PerType = {};
  for (const [t, v] of Object.entries(a)) {
    out[t] = {};
    for (const [k, x] of Object.entries(v)) out[t][k] = x - (b[t]?.[k] ?? 0);
  }
  return out;
}

async function startServer(): Promise<{ server: JsonLinesProcess; port: number }> {
  const server = new JsonLinesProcess("fixture-server", process.execPath, ["--import", "tsx", path.join(ROOT, "bench/calibrate/fixture-server.ts"), "--port", "0", "--clusters", String(C), "--endpoints", String(E), "--listeners", String(L)], { cwd: ROOT });
  const ready = await server.next((o) => o.ready === true, 60_000, "ready");
  return { server, port: Number(ready.port) };
}

async function serverStats(server: JsonLinesProcess): Promise<{ cpuSeconds: number; sent: PerType; received: PerType }> {
  const s = (await server.call({ cmd: "stats" }, "stats")).stats as { cpuSeconds: number; sent: PerType; received: PerType };
  return s;
}

async function change(server: JsonLinesProcess, lg: JsonLinesProcess | undefined, cmd: JsonObject, type: string, name: string): Promise<ChangeResult> {
  const id = String(cmd.id);
  if (lg) await lg.call({ cmd: "mark", id, type, names: [name], timeoutMs: 20_000 }, "marked");
  server.send(cmd);
  const conv = await server.next((o) => o.converged === id, 30_000, `converged ${id}`);
  const mark = lg ? await lg.next((o) => o.mark === id, 30_000, `mark ${id}`) : undefined;
  return {
    acked: Number(conv.acked),
    nacked: Number(conv.nacked),
    ackMs: Object.values(conv.perNode as Record<string, number>).sort((a, b) => a - b),
    sent: conv.sent as PerType,
    received: conv.received as PerType,
    serverCpuS: Number(conv.cpuSeconds),
    loadgen: mark,
  };
}

async function oneRun(kind: Kind, mode: "sotw" | "delta", pair: number, nodeFile: string, envoyBin: string): Promise<Run> {
  const { server, port } = await startServer();
  const envoys: EnvoyProcess[] = [];
  let lg: JsonLinesProcess | undefined;
  try {
    await sleep(300);
    const before = await serverStats(server);
    const t0 = epochMs();
    let loadgenResult: JsonObject | undefined;
    if (kind !== "envoy") {
      lg = new JsonLinesProcess("loadgen", LOADGEN, ["-target", `127.0.0.1:${port}`, "-clients", String(N), "-mode", mode, "-watch", "-hold", "300s", "-timeout", "60s", "-node-meta", nodeFile, ...LOADGEN_FLAGS[kind]]);
      loadgenResult = await lg.next((o) => "synced" in o, 90_000, "the result line");
    } else {
      const started = await Promise.allSettled(
        Array.from({ length: N }, (_, i) => {
          const n = nodeOf(i);
          return startEnvoy({
            name: `cal-${i}`,
            binary: envoyBin,
            bootstrapYaml: renderBootstrap({ nodeId: n.id, cluster: n.cluster, metadata: n.metadata, xdsAddress: "127.0.0.1", xdsPort: port, adminPort: 0, deltaXds: mode === "delta" }),
            logLevel: "warning",
            waitForLive: false,
            concurrency: 1,
          });
        }),
      );
      for (const s of started) if (s.status === "fulfilled") envoys.push(s.value);
      const failed = started.find((s) => s.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
    const synced = await server.call({ cmd: "wait-synced", streams: N, timeoutMs: 60_000 }, "synced", 70_000);
    const after = await serverStats(server);
    const clientCpuS = kind !== "envoy" ? cpuSecondsIfAlive(lg!.pid) : envoys.reduce((a, e) => a + cpuSecondsIfAlive(e.pid), 0);
    const perStream = Object.values(synced.perStream as Record<string, { syncMs: number | null }>);
    const endpointChanges: ChangeResult[] = [];
    const routeChanges: ChangeResult[] = [];
    for (let j = 0; j < CHANGES; j++) {
      await sleep(400); // quiet before each change
      const cluster = (3 + j) % C;
      endpointChanges.push(await change(server, lg, { cmd: "endpoints", id: `e${j}`, cluster, timeoutMs: 20_000 }, EDS, `svc-${cluster}`));
      await sleep(400);
      const route = (2 + j) % L;
      routeChanges.push(await change(server, lg, { cmd: "route", id: `r${j}`, route, timeoutMs: 20_000 }, RDS, `route-${route}`));
    }
    const trace = ((await server.call({ cmd: "trace", node: nodeOf(0).id }, "trace")).trace as JsonObject[]) ?? [];
    return {
      kind,
      mode,
      pair,
      synced: Number(synced.synced),
      allSyncedMs: Number(synced.lastSyncedAt) - t0,
      firstConnectMs: Number(synced.firstConnectAt) - t0,
      streamSyncMs: perStream.map((s) => s.syncMs ?? NaN).sort((a, b) => a - b),
      serverCpuS: after.cpuSeconds - before.cpuSeconds,
      clientCpuS,
      sent: diffPerType(after.sent, before.sent),
      received: diffPerType(after.received, before.received),
      loadgenResult,
      endpointChanges,
      routeChanges,
      trace,
    };
  } finally {
    if (lg) await lg.stop();
    await Promise.allSettled(envoys.map((e) => e.stop()));
    await server.stop();
  }
}

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
/** Per run: the median over its changes of a per-change figure. */
const perChange = (cs: ChangeResult[], get: (c: ChangeResult) => number) => median(cs.map(get));
const ackP50 = (cs: ChangeResult[]) => perChange(cs, (c) => median(c.ackMs));
const ackMax = (cs: ChangeResult[]) => perChange(cs, (c) => Math.max(...c.ackMs));
const sumField = (pt: PerType, field: string) => Object.values(pt).reduce((a, v) => a + (v[field] ?? 0), 0);

async function main(): Promise<void> {
  log(`building ${LOADGEN}`);
  execFileSync("go", ["build", "-o", LOADGEN, "./loadgen"], { cwd: GO_DIR, stdio: "inherit" });
  const envoyBin = await findEnvoyBinary();
  const envoyVersion = execFileSync(envoyBin, ["--version"]).toString().trim().split("\n").pop() ?? "?";
  log(`envoy: ${envoyBin} (${envoyVersion})`);
  const dir = mkdtempSync(path.join(os.tmpdir(), "weft-calibrate-"));
  const nodeFile = path.join(dir, "nodes.json");
  writeFileSync(nodeFile, JSON.stringify(Array.from({ length: N }, (_, i) => nodeOf(i))));
  const runs: Run[] = [];
  try {
    for (const mode of MODES)
      for (let pair = 0; pair < PAIRS; pair++) {
        const order = KINDS.map((_, i) => KINDS[(i + pair) % KINDS.length]!);
        if (pair % 2 === 1) order.reverse();
        for (const kind of order) {
          const r = await oneRun(kind, mode, pair, nodeFile, envoyBin);
          runs.push(r);
          log(
            `${mode} round ${pair + 1}/${PAIRS} ${kind}: synced ${r.synced}/${N} all=${f(r.allSyncedMs)} ms (first connect ${f(r.firstConnectMs)} ms; per stream p50 ${f(median(r.streamSyncMs))} max ${f(Math.max(...r.streamSyncMs))}) ` +
              `server cpu=${f(r.serverCpuS, 3)} s sent=${sumField(r.sent, "messages")} msgs/${sumField(r.sent, "bytes")} B recv=${sumField(r.received, "requests")} reqs ` +
              `| ${CHANGES} eds changes: acked ${r.endpointChanges.map((c) => c.acked).join(",")} ACK p50 ${f(ackP50(r.endpointChanges), 2)} max ${f(ackMax(r.endpointChanges), 2)} ms ` +
              `| ${CHANGES} rds changes: acked ${r.routeChanges.map((c) => c.acked).join(",")} ACK p50 ${f(ackP50(r.routeChanges), 2)} max ${f(ackMax(r.routeChanges), 2)} ms`,
          );
        }
      }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  write(runs, envoyBin, envoyVersion);
}

function write(runs: Run[], envoyBin: string, envoyVersion: string): void {
  let commit = "?";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT }).toString().trim() + " (+ uncommitted changes)";
  } catch {}
  const goMod = readFileSync(path.join(GO_DIR, "go.mod"), "utf8");
  const env = {
    date: new Date().toISOString(),
    machine: `${os.cpus()[0]?.model ?? "?"} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}`,
    loadAverageAtEnd: os.loadavg().map((x) => x.toFixed(2)).join(" "),
    node: process.version,
    go: execFileSync("go", ["version"]).toString().trim(),
    grpcGo: goMod.match(/google\.golang\.org\/grpc (v\S+)/)?.[1] ?? "?",
    goControlPlaneTypes: goMod.match(/github\.com\/envoyproxy\/go-control-plane\/envoy (v\S+)/)?.[1] ?? "?",
    envoy: `${envoyVersion} (${envoyBin})`,
    weftCommit: commit,
    fixture: { clusters: C, endpointsPerCluster: E, listeners: L, listenersBindToPort: false },
    clients: N,
    pairs: PAIRS,
    commands: {
      runner: `CAL_N=${N} CAL_PAIRS=${PAIRS} CAL_MODES=${MODES.join(",")} CAL_KINDS=${KINDS.join(",")} CAL_CHANGES=${CHANGES} CAL_CLUSTERS=${C} CAL_ENDPOINTS=${E} CAL_LISTENERS=${L} npx tsx bench/calibrate/run.ts`,
      server: `${process.execPath} --import tsx bench/calibrate/fixture-server.ts --port 0 --clusters ${C} --endpoints ${E} --listeners ${L}`,
      loadgen: `bench/go/bin/loadgen -target 127.0.0.1:P -clients ${N} -mode sotw|delta -watch -hold 300s -timeout 60s -node-meta nodes.json ${LOADGEN_KINDS.map((k) => `[${k}: ${LOADGEN_FLAGS[k].join(" ")}]`).join(" ")}`,
      envoy: `envoy --config-path <renderBootstrap(envoy-bootstrap/sidecar.yaml, GRPC|DELTA_GRPC, admin port 0)> --disable-hot-restart --concurrency 1 -l warning (× ${N}, via src/envoy/envoy-process.ts startEnvoy)`,
    },
  };
  // Summary per mode: medians per kind, and for each loadgen kind the median of per-pair ratios loadgen / Envoy.
  const summary = MODES.map((mode) => {
    const metric = (get: (r: Run) => number) => {
      const out: Record<string, number> = {};
      for (const kind of KINDS) out[kind] = median(runs.filter((r) => r.mode === mode && r.kind === kind).map(get));
      for (const kind of LOADGEN_KINDS) {
        const pairs = [...new Set(runs.filter((r) => r.mode === mode).map((r) => r.pair))];
        const ratios = pairs.map((p) => {
          const a = runs.find((r) => r.mode === mode && r.pair === p && r.kind === kind);
          const b = runs.find((r) => r.mode === mode && r.pair === p && r.kind === "envoy");
          return a && b ? get(a) / get(b) : NaN;
        });
        const fin = ratios.filter(Number.isFinite);
        out[`${kind}/envoy`] = median(ratios);
        out[`${kind}/envoy min`] = Math.min(...fin);
        out[`${kind}/envoy max`] = Math.max(...fin);
      }
      return out;
    };
    const rows: Record<string, Record<string, number>> = {
      "initial sync: all synced ms (from client start)": metric((r) => r.allSyncedMs),
      "initial sync: first stream connected ms": metric((r) => r.firstConnectMs),
      "initial sync: per-stream connect→synced p50 ms": metric((r) => median(r.streamSyncMs)),
      "initial sync: per-stream connect→synced max ms": metric((r) => Math.max(...r.streamSyncMs)),
      "initial sync: server CPU s": metric((r) => r.serverCpuS),
      "initial sync: client CPU s (loadgen process / sum of Envoys, incl. start-up)": metric((r) => r.clientCpuS),
      "initial sync: responses sent": metric((r) => sumField(r.sent, "messages")),
      "initial sync: bytes sent": metric((r) => sumField(r.sent, "bytes")),
      "initial sync: requests received": metric((r) => sumField(r.received, "requests")),
      "initial sync: ACKs received": metric((r) => sumField(r.received, "acks")),
      "endpoint change: ACK p50 ms (server)": metric((r) => ackP50(r.endpointChanges)),
      "endpoint change: ACK max ms (server)": metric((r) => ackMax(r.endpointChanges)),
      "endpoint change: responses sent": metric((r) => perChange(r.endpointChanges, (c) => sumField(c.sent, "messages"))),
      "endpoint change: bytes sent": metric((r) => perChange(r.endpointChanges, (c) => sumField(c.sent, "bytes"))),
      "endpoint change: requests received": metric((r) => perChange(r.endpointChanges, (c) => sumField(c.received, "requests"))),
      "route change: ACK p50 ms (server)": metric((r) => ackP50(r.routeChanges)),
      "route change: ACK max ms (server)": metric((r) => ackMax(r.routeChanges)),
      "route change: responses sent": metric((r) => perChange(r.routeChanges, (c) => sumField(c.sent, "messages"))),
      "route change: bytes sent": metric((r) => perChange(r.routeChanges, (c) => sumField(c.sent, "bytes"))),
      "route change: requests received": metric((r) => perChange(r.routeChanges, (c) => sumField(c.received, "requests"))),
    };
    return { mode, rows };
  });
  // Does every loadgen run ask for, ACK and get exactly what the Envoy runs do (per type)?
  const canonical = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canonical) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, canonical(x)])) : v;
  const fingerprint = (r: Run) =>
    JSON.stringify(canonical([r.sent, r.received, ...r.endpointChanges.map((c) => [c.sent, c.received]), ...r.routeChanges.map((c) => [c.sent, c.received])]));
  const mismatches: string[] = [];
  for (const mode of MODES) {
    const envoyPrints = new Set(runs.filter((r) => r.mode === mode && r.kind === "envoy").map(fingerprint));
    if (envoyPrints.size > 1) mismatches.push(`${mode}: the Envoy runs differ among themselves`);
    for (const r of runs.filter((x) => x.mode === mode && x.kind !== "envoy"))
      if (!envoyPrints.has(fingerprint(r))) mismatches.push(`${mode} round ${r.pair + 1} ${r.kind}`);
  }
  mkdirSync(path.join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(path.join(ROOT, "bench/results/loadgen-calibration.json"), JSON.stringify({ env, sameRequestsAndBytesAsEnvoy: mismatches.length === 0, mismatches, summary, runs }, null, 2) + "\n");

  const md: string[] = [];
  md.push("# Load generator calibration: bench/go/loadgen vs real Envoy", "");
  md.push(`- Date: ${env.date}`, `- Machine: ${env.machine} (load average at the end: ${env.loadAverageAtEnd})`);
  md.push(`- Weft: ${env.weftCommit}, Node ${env.node}; Envoy ${env.envoy}; loadgen: grpc-go ${env.grpcGo}, ${env.go}`);
  md.push(`- Fixture: Weft's xDS server (bench/calibrate/fixture-server.ts), one snapshot for every node: ${C} EDS clusters × ${E} endpoints, ${L} HTTP listeners (bind_to_port false) each with its RDS route.`);
  md.push(`- Kinds: ${KINDS.map((k) => KIND_LABEL[k]).join("; ")}. -init-order parallel (the default, what bench/storm uses) requests CDS and LDS at once; -init-order envoy requests LDS once CDS is ACKed and every EDS name received, as Envoy's init manager does. "streams/conn" is -per-conn (bench/storm uses 100; each Envoy has its own connection).`);
  md.push(`- Clients: ${N} real Envoys (one process each, ADS, node ids sidecar~10.0.0.i~pod-i.ns-1~…, concurrency 1) or ${N} loadgen clients with the same node ids (-node-meta), one stream each.`);
  md.push(`- Method: ${PAIRS} rounds ("pairs") per mode, each running every kind once (${KINDS.join(", ")}), order rotated every round, fresh server per run. Times, counts and bytes are the server's (its per-proxy ACK events and xDS metrics), so both kinds of client are measured the same way. "ratio" = median of per-pair ratios loadgen / Envoy (range in brackets).`);
  md.push(`- Changes: ${CHANGES} endpoint changes (new ports for svc-3, svc-4, …) alternating with ${CHANGES} route changes (route-2, route-3, … point elsewhere), 400 ms apart; each run reports the median over its changes of the per-change p50 / max ACK delay and counts. For the loadgen kinds the orchestrator first sends a mark to the loadgen (its own receive/ACK view is in the last column of the per-run table; it starts before the server applies the change).`);
  md.push(`- "all synced" starts when the orchestrator starts the clients: for Envoy it includes process start-up; "per stream" is from the stream's connection to its ACK of the current CDS, EDS, LDS and RDS versions.`);
  md.push("", "Commands:", "", "```", ...Object.values(env.commands), "```", "");
  md.push(
    mismatches.length === 0
      ? "**Per type, in every run: the same requests (subscriptions, ACKs, NACKs) received and the same responses and bytes sent for the loadgen as for Envoy — initial sync and every change.**"
      : `**Per-type requests/responses/bytes differ from Envoy in: ${mismatches.join("; ")}** (see runs in the JSON).`,
    "",
  );
  for (const { mode, rows } of summary) {
    md.push(`## ${mode} (medians over ${PAIRS} rounds)`, "");
    md.push(`| metric | ${KINDS.map((k) => KIND_LABEL[k]).join(" | ")} | ${LOADGEN_KINDS.map((k) => `ratio ${k}/Envoy [range]`).join(" | ")} |`);
    md.push(`|---|${"---|".repeat(KINDS.length + LOADGEN_KINDS.length)}`);
    for (const [name, v] of Object.entries(rows)) {
      const d = /CPU/.test(name) ? 3 : /ms/.test(name) ? 1 : 0;
      const ratios = LOADGEN_KINDS.map((k) => `${f(v[`${k}/envoy`], 2)} [${f(v[`${k}/envoy min`], 2)}–${f(v[`${k}/envoy max`], 2)}]`);
      md.push(`| ${name} | ${KINDS.map((k) => f(v[k], d)).join(" | ")} | ${ratios.join(" | ")} |`);
    }
    md.push("");
    md.push("Per type, initial sync (first round): sent messages/bytes, received requests = subscribes + ACKs + NACKs:", "");
    md.push("| client | " + TYPES.map((t) => `${t} sent`).join(" | ") + " | " + TYPES.map((t) => `${t} received`).join(" | ") + " |");
    md.push(`|---|${"---|".repeat(TYPES.length * 2)}`);
    for (const kind of KINDS) {
      const r = runs.find((x) => x.mode === mode && x.kind === kind);
      if (!r) continue;
      const sent = TYPES.map((t) => `${r.sent[t]?.messages ?? 0} / ${r.sent[t]?.bytes ?? 0}`);
      const recv = TYPES.map((t) => {
        const x = r.received[t];
        return x ? `${x.requests} = ${x.subscribes}+${x.acks}+${x.nacks}` : "0";
      });
      md.push(`| ${kind} | ${sent.join(" | ")} | ${recv.join(" | ")} |`);
    }
    md.push("");
    md.push("Per type, the first endpoint and route change (first round): sent messages/bytes; received requests (subscribes+ACKs+NACKs):", "");
    md.push("| client | change | sent | received |", "|---|---|---|---|");
    for (const kind of KINDS) {
      const r = runs.find((x) => x.mode === mode && x.kind === kind);
      if (!r) continue;
      for (const [name, ch] of [["endpoints svc-3", r.endpointChanges[0]!], ["route route-2", r.routeChanges[0]!]] as const) {
        const s = Object.entries(ch.sent).filter(([, v]) => v.messages).map(([t, v]) => `${t} ${v.messages}/${v.bytes} B`).join(", ");
        const rc = Object.entries(ch.received).map(([t, v]) => `${t} ${v.requests} (${v.subscribes}+${v.acks}+${v.nacks})`).join(", ");
        md.push(`| ${kind} | ${name} | ${s} | ${rc} |`);
      }
    }
    md.push("");
    md.push("Request sequence of node 0 as the server received it (first round; ms after its first request, type, kind, names; the first 12 requests):", "");
    for (const kind of KINDS) {
      const r = runs.find((x) => x.mode === mode && x.kind === kind);
      if (!r) continue;
      md.push(`- ${kind}: ` + r.trace.slice(0, 12).map((e) => `${f(Number(e.ms), 1)} ${String(e.type)} ${String(e.kind)}${e.names ? `(${String(e.names)})` : ""}`).join(" → "));
    }
    md.push("");
  }
  md.push("## Per run", "", "| mode | round | client | synced | all synced ms | per-stream p50 / max ms | server CPU s | client CPU s | sent msgs / bytes | recv reqs | EDS change ACK p50 / max ms | RDS change ACK p50 / max ms | loadgen's own EDS / RDS ACK p50 ms |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of runs) {
    const own = (cs: ChangeResult[]) => f(perChange(cs, (c) => Number((c.loadgen?.ackMs as JsonObject | undefined)?.p50)), 2);
    md.push(
      `| ${r.mode} | ${r.pair + 1} | ${r.kind} | ${r.synced} | ${f(r.allSyncedMs)} | ${f(median(r.streamSyncMs))} / ${f(Math.max(...r.streamSyncMs))} | ${f(r.serverCpuS, 3)} | ${f(r.clientCpuS, 2)} | ${sumField(r.sent, "messages")} / ${sumField(r.sent, "bytes")} | ${sumField(r.received, "requests")} | ` +
        `${f(ackP50(r.endpointChanges), 2)} / ${f(ackMax(r.endpointChanges), 2)} | ${f(ackP50(r.routeChanges), 2)} / ${f(ackMax(r.routeChanges), 2)} | ${r.kind !== "envoy" ? `${own(r.endpointChanges)} / ${own(r.routeChanges)}` : "—"} |`,
    );
  }
  writeFileSync(path.join(ROOT, "bench/results/loadgen-calibration.md"), md.join("\n") + "\n");
  log("wrote bench/results/loadgen-calibration.md and bench/results/loadgen-calibration.json");
}

await main();
