// Smoke test of the load generator's -watch commands (mark, stats, nack, reconnect) against
// Weft (bench/calibrate/fixture-server.ts) and, for the commands that need no server-side change,
// go-control-plane (bench/go/refserver). Prints each command and reply; exits 1 when a check fails.
//
//   npx tsx bench/calibrate/smoke-watch.ts
//   env: SMOKE_K=100 SMOKE_MODES=sotw,delta SMOKE_SERVERS=weft,gcp
//        SMOKE_CLUSTERS=100 SMOKE_ENDPOINTS=10 SMOKE_LISTENERS=20
//        SMOKE_LOADGEN=/path/to/loadgen (default: build bench/go/bin/loadgen), e.g. a `go build -race` binary
//        SMOKE_LOADGEN_ARGS="-init-order envoy" (extra flags)
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { JsonLinesProcess, type JsonObject } from "../json-lines-process.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const GO_DIR = path.join(ROOT, "bench/go");
const list = (v: string | undefined, d: string) => (v ?? d).split(",").map((s) => s.trim()).filter(Boolean);
const K = Number(process.env.SMOKE_K ?? 100);
const MODES = list(process.env.SMOKE_MODES, "sotw,delta");
const SERVERS = list(process.env.SMOKE_SERVERS, "weft,gcp");
const C = Number(process.env.SMOKE_CLUSTERS ?? 100);
const E = Number(process.env.SMOKE_ENDPOINTS ?? 10);
const L = Number(process.env.SMOKE_LISTENERS ?? 20);
const LOADGEN = process.env.SMOKE_LOADGEN ?? path.join(GO_DIR, "bin/loadgen");
const EXTRA = (process.env.SMOKE_LOADGEN_ARGS ?? "").split(" ").filter(Boolean);
const EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
const RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

const log = (msg: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
let failures = 0;
function check(ok: boolean, what: string): void {
  log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures++;
}
const short = (o: JsonObject) => JSON.stringify(o).slice(0, 400);

async function startServer(kind: string): Promise<{ server: JsonLinesProcess; port: number }> {
  if (kind === "weft") {
    const server = new JsonLinesProcess("fixture-server", process.execPath, ["--import", "tsx", path.join(ROOT, "bench/calibrate/fixture-server.ts"), "--port", "0", "--clusters", String(C), "--endpoints", String(E), "--listeners", String(L)], { cwd: ROOT });
    const ready = await server.next((o) => o.ready === true, 60_000, "ready");
    return { server, port: Number(ready.port) };
  }
  const port = 20000 + Math.floor(Math.random() * 10000);
  // refserver prints a plain "ready" line; JsonLinesProcess ignores it, so wait for the port instead.
  const server = new JsonLinesProcess("refserver", path.join(GO_DIR, "bin/refserver"), ["-port", String(port), "-clusters", String(C), "-endpoints", String(E), "-listeners", String(L)]);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("refserver not ready in 30 s")), 30_000);
    server.proc.stdout!.on("data", (d: Buffer) => {
      if (d.toString().includes("ready")) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  return { server, port };
}

async function smoke(kind: string, mode: string, nodeFile: string): Promise<void> {
  log(`--- ${kind} ${mode} K=${K}`);
  const { server, port } = await startServer(kind);
  const lg = new JsonLinesProcess("loadgen", LOADGEN, ["-target", `127.0.0.1:${port}`, "-clients", String(K), "-mode", mode, "-watch", "-hold", "240s", "-timeout", "60s", "-node-meta", nodeFile, ...EXTRA]);
  try {
    const first = await lg.next((o) => "synced" in o, 90_000, "the result line");
    log(`result line: ${short(first)}`);
    check(first.synced === K, `all ${K} synced`);
    if (kind === "weft") {
      // One endpoint change, one route change, each marked first.
      for (const [type, cmd, name] of [
        [EDS, { cmd: "endpoints", id: "e1", cluster: 3 }, "svc-3"],
        [RDS, { cmd: "route", id: "r1", route: 2 }, "route-2"],
      ] as const) {
        await lg.call({ cmd: "mark", id: cmd.id, type, names: [name], timeoutMs: 20_000 }, "marked");
        server.send(cmd);
        const m = await lg.next((o) => o.mark === cmd.id, 30_000, `mark ${cmd.id}`);
        const conv = await server.next((o) => o.converged === cmd.id, 30_000, `converged ${cmd.id}`);
        log(`mark ${cmd.id}: ${short(m)}`);
        log(`server: acked ${String(conv.acked)}/${String(conv.streams)} ackMs ${JSON.stringify(conv.ackMs)} sent ${JSON.stringify(conv.sent)}`);
        check(m.delivered === K && conv.acked === K, `${cmd.id}: delivered to all ${K} (loadgen) and ACKed by all (server)`);
      }
      // Concurrent marks: five changes in a row without waiting.
      const ids = [10, 11, 12, 13, 14];
      for (const i of ids) await lg.call({ cmd: "mark", id: `c${i}`, type: EDS, names: [`svc-${i}`], timeoutMs: 20_000 }, "marked");
      for (const i of ids) server.send({ cmd: "endpoints", id: `c${i}`, cluster: i });
      const marks = await Promise.all(ids.map((i) => lg.next((o) => o.mark === `c${i}`, 30_000, `mark c${i}`)));
      for (const i of ids) await server.next((o) => o.converged === `c${i}`, 30_000);
      log(`5 concurrent marks: delivered ${marks.map((m) => m.delivered).join(",")}; ackMs p50 ${marks.map((m) => (m.ackMs as JsonObject).p50).join(",")}`);
      check(marks.every((m) => m.delivered === K), "concurrent marks all delivered");
      // NACK: 10 % of clients NACK the next EDS response; the server must see exactly those NACKs.
      const n = Math.max(1, Math.floor(K / 10));
      const nacking = await lg.call({ cmd: "nack", type: EDS, count: n }, "nacking");
      await lg.call({ cmd: "mark", id: "n1", type: EDS, names: ["svc-5"], timeoutMs: 20_000 }, "marked");
      server.send({ cmd: "endpoints", id: "n1", cluster: 5 });
      const nm = await lg.next((o) => o.mark === "n1", 30_000);
      const nc = await server.next((o) => o.converged === "n1", 30_000);
      log(`nack: ${short(nacking)}; mark ${short(nm)}; server acked ${String(nc.acked)} nacked ${String(nc.nacked)} received ${JSON.stringify(nc.received)}`);
      check(nc.nacked === n && nc.acked === K - n, `server saw ${n} NACKs and ${K - n} ACKs`);
    } else {
      // No change commands on the reference server: a mark with nothing changed must time out cleanly.
      await lg.call({ cmd: "mark", id: "idle", type: EDS, names: ["svc-3"], timeoutMs: 1000 }, "marked");
      const m = await lg.next((o) => o.mark === "idle", 10_000);
      log(`idle mark: ${short(m)}`);
      check(m.delivered === 0 && (m.buckets as JsonObject)["+Inf"] === K, "idle mark: nothing delivered, all clients in +Inf");
    }
    const s1 = await lg.call({ cmd: "stats" }, "stats");
    log(`stats: ${short(s1)}`);
    // Reconnect 10 % of the clients.
    const n = Math.max(1, Math.floor(K / 10));
    const rc = await lg.call({ cmd: "reconnect", count: n, timeoutMs: 30_000 }, "reconnected", 40_000);
    log(`reconnect: ${short(rc)}`);
    check(rc.resynced === n, `reconnect: ${n}/${n} resynced`);
    const s2 = await lg.call({ cmd: "stats" }, "stats");
    log(`stats after reconnect: ${short(s2)}`);
    if (kind === "gcp") {
      // NACK during a reconnect: only checks that the command is accepted; whether the NACKing
      // clients resync depends on the server resending after a NACK (shown in the reply).
      const nk = await lg.call({ cmd: "nack", type: EDS, count: n }, "nacking");
      const rc2 = await lg.call({ cmd: "reconnect", count: n, timeoutMs: 3000 }, "reconnected", 10_000);
      log(`nack ${short(nk)} then reconnect: ${short(rc2)}`);
    }
    const bad = await lg.call({ cmd: "frobnicate" }, "nothing", 5000).catch((e: Error) => e.message);
    check(String(bad).includes("unknown command"), `unknown command answered with an error line`);
  } finally {
    await lg.stop();
    await server.stop();
    const code = await lg.exited;
    check(!lg.stderrTail().includes("DATA RACE") && code !== 66, `loadgen exited (code ${code}) without a data race report`);
  }
}

const dir = mkdtempSync(path.join(os.tmpdir(), "weft-smoke-"));
try {
  log("building bench/go/bin/loadgen and refserver");
  if (!process.env.SMOKE_LOADGEN) execFileSync("go", ["build", "-o", LOADGEN, "./loadgen"], { cwd: GO_DIR, stdio: "inherit" });
  execFileSync("go", ["build", "-o", path.join(GO_DIR, "bin/refserver"), "./refserver"], { cwd: GO_DIR, stdio: "inherit" });
  const nodeFile = path.join(dir, "nodes.json");
  writeFileSync(
    nodeFile,
    JSON.stringify(
      Array.from({ length: 10 }, (_, i) => ({
        id: `sidecar~10.0.0.${i + 1}~pod-${i}.ns-1~ns-1.svc.cluster.local`,
        cluster: `svc-${i}.ns-1`,
        metadata: { NAMESPACE: "ns-1", LABELS: JSON.stringify({ app: `svc-${i}`, version: "v1" }) },
        locality: { region: "r", zone: "z" },
      })),
    ),
  );
  for (const kind of SERVERS) for (const mode of MODES) await smoke(kind, mode, nodeFile);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
log(failures === 0 ? "all checks passed" : `${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
