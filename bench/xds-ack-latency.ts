// Benchmark: time from a snapshot update to the real Envoy's ACK, on loopback.
// For each mode (SotW, delta) and change kind (endpoint, route): N successive updates, each
// timed from cache.set() to the ACK of the changed type's new version (the registry's "ack"
// event). Prints a table and writes bench/results/xds-ack-latency.{md,json}.
//
//   npm run bench:ack            (N = 20; BENCH_N=100 npm run bench:ack for more)
import { writeFileSync, mkdirSync } from "node:fs";
import os from "node:os";
import { Snapshot } from "../src/cache/snapshot.js";
import { buildEdsCluster, buildHttpListener, buildLoadAssignment, buildPrefixRoutes } from "../src/envoy/builders.js";
import { renderBootstrap } from "../src/envoy/bootstrap.js";
import { startEnvoy, stopAllEnvoys } from "../src/envoy/envoy-process.js";
import { XDS_TYPES, TYPE_SHORT_NAMES, type XdsTypeUrl } from "../src/envoy/type-urls.js";
import { silentLogger } from "../src/log/logger.js";
import { startControlPlane } from "../src/runner/control-plane.js";
import type { AckEvent } from "../src/xds/proxy-registry.js";

const N = Number(process.env.BENCH_N ?? 20);
const CLUSTERS = 10;

function snapshot(i: number, kind: "endpoint" | "route"): Snapshot {
  const names = Array.from({ length: CLUSTERS }, (_, k) => `svc-${k}`);
  const epShift = kind === "endpoint" ? i : 0;
  const routeTarget = kind === "route" ? names[i % CLUSTERS]! : names[0]!;
  return Snapshot.build({
    [XDS_TYPES.cluster]: names.map((name) => buildEdsCluster({ name })),
    [XDS_TYPES.endpoint]: names.map((name, k) => buildLoadAssignment(name, [{ address: "127.0.0.1", port: 20000 + k * 100 + (k === 0 ? epShift : 0) }])),
    [XDS_TYPES.listener]: [buildHttpListener({ name: "http", address: "127.0.0.1", port: 0, routeConfigName: "routes" })],
    [XDS_TYPES.route]: [buildPrefixRoutes("routes", [{ prefix: `/v${i}`, cluster: routeTarget }, { prefix: "/", cluster: names[0]! }])],
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Row {
  mode: string;
  change: string;
  n: number;
  medianMs: number;
  p90Ms: number;
  minMs: number;
  maxMs: number;
}

async function measure(mode: "sotw" | "delta", kind: "endpoint" | "route"): Promise<Row> {
  const cp = await startControlPlane({ logger: silentLogger() });
  const nodeId = `bench-${mode}`;
  try {
    cp.cache.set(nodeId, snapshot(0, kind));
    const envoy = await startEnvoy({ name: nodeId, bootstrapYaml: renderBootstrap({ nodeId, cluster: "bench", xdsAddress: "127.0.0.1", xdsPort: cp.xdsPort, deltaXds: mode === "delta" }) });
    const typeUrl: XdsTypeUrl = kind === "endpoint" ? XDS_TYPES.endpoint : XDS_TYPES.route;
    const short = TYPE_SHORT_NAMES[typeUrl];
    const samples: number[] = [];
    for (let i = 1; i <= N; i++) {
      const snap = snapshot(i, kind);
      const want = snap.resources(typeUrl).version;
      const acked = new Promise<bigint>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${short} ACK for update ${i} within 10 s`)), 10_000);
        const onAck = (e: AckEvent) => {
          if (e.nodeId === nodeId && e.type === short && e.version === want) {
            clearTimeout(timer);
            cp.xds.registry.off("ack", onAck);
            resolve(process.hrtime.bigint());
          }
        };
        cp.xds.registry.on("ack", onAck);
      });
      const t0 = process.hrtime.bigint();
      cp.cache.set(nodeId, snap);
      samples.push(Number((await acked) - t0) / 1e6);
      await new Promise((r) => setTimeout(r, 20));
    }
    await envoy.stop();
    const sorted = [...samples].sort((a, b) => a - b);
    return { mode, change: kind, n: N, medianMs: percentile(sorted, 50), p90Ms: percentile(sorted, 90), minMs: sorted[0]!, maxMs: sorted[sorted.length - 1]! };
  } finally {
    await cp.close(500);
  }
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  for (const mode of ["sotw", "delta"] as const) {
    for (const kind of ["endpoint", "route"] as const) {
      process.stderr.write(`measuring ${mode} ${kind} updates (${N})...\n`);
      rows.push(await measure(mode, kind));
    }
  }
  await stopAllEnvoys();
  const f = (n: number) => n.toFixed(2);
  const table = [
    "| mode | change | n | median ms | p90 ms | min ms | max ms |",
    "|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.mode} | ${r.change} | ${r.n} | ${f(r.medianMs)} | ${f(r.p90Ms)} | ${f(r.minMs)} | ${f(r.maxMs)} |`),
  ].join("\n");
  const meta = { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, command: "npm run bench:ack", clusters: CLUSTERS };
  process.stdout.write(`\nSnapshot update -> real Envoy ACK on loopback (${CLUSTERS} clusters)\n\n${table}\n`);
  mkdirSync("bench/results", { recursive: true });
  writeFileSync("bench/results/xds-ack-latency.json", JSON.stringify({ meta, rows }, null, 2) + "\n");
  writeFileSync(
    "bench/results/xds-ack-latency.md",
    `# Snapshot update -> Envoy ACK (loopback)\n\n${Object.entries(meta).map(([k, v]) => `- ${k}: ${v}`).join("\n")}\n\n${table}\n`,
  );
}

main().catch(async (err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).message}\n`);
  await stopAllEnvoys();
  process.exit(1);
});
