// Benchmark: time from saving an edit to the demo's routing.yaml until every demo Envoy (six
// sidecars and the ingress gateway) has ACKed the resulting configuration. Includes the file
// source's debounce (100 ms by default; reported separately). Envoys run in explicit mode so
// the benchmark needs no root; the control-plane path is the same as in transparent mode.
//
//   npm run bench:edit            (N = 10; BENCH_N=20 for more)
import { FileSource } from "../src/sources/file/file-source.js";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEMO_WORKLOADS, routingYaml, servicesYaml, workloadsYaml } from "../src/demo/default-mesh.js";
import { renderBootstrap } from "../src/envoy/bootstrap.js";
import { startEnvoy, stopAllEnvoys } from "../src/envoy/envoy-process.js";
import { silentLogger } from "../src/log/logger.js";
import { NODE_METADATA } from "../src/model/proxy.js";
import { startMeshRunner } from "../src/runner/mesh-runner.js";
import { isSynced } from "../src/runner/wait-for-sync.js";
import { freePort } from "../src/runner/free-port.js";

const N = Number(process.env.BENCH_N ?? 10);
const DEBOUNCE_MS = 100;


async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "weft-bench-edit-"));
  const ingressPort = await freePort();
  const routing = routingYaml(ingressPort);
  await writeFile(path.join(dir, "services.yaml"), servicesYaml());
  await writeFile(path.join(dir, "routing.yaml"), routing);
  await writeFile(path.join(dir, "workloads.yaml"), workloadsYaml(await Promise.all(DEMO_WORKLOADS.map(async (w) => ({ workload: w, address: "127.0.0.1", port: await freePort() })))));
  const runner = await startMeshRunner({ logger: silentLogger(), sources: [new FileSource(dir)], debounceMs: DEBOUNCE_MS });
  const nodes: { nodeId: string }[] = [];
  try {
    process.stderr.write(`starting ${DEMO_WORKLOADS.length} sidecars and the ingress gateway...\n`);
    for (const w of DEMO_WORKLOADS) {
      const nodeId = `sidecar~127.0.0.1~${w.app}-${w.version}.default~default.svc.cluster.local`;
      const metadata = { [NODE_METADATA.namespace]: "default", [NODE_METADATA.labels]: JSON.stringify({ app: w.app, version: w.version }), [NODE_METADATA.interceptionMode]: "NONE", [NODE_METADATA.explicitPort]: String(await freePort()) };
      await startEnvoy({ name: `${w.app}-${w.version}`, bootstrapYaml: renderBootstrap({ nodeId, cluster: w.app, metadata, xdsAddress: "127.0.0.1", xdsPort: runner.cp.xdsPort }) });
      nodes.push({ nodeId });
    }
    const gw = "router~127.0.0.1~ingressgateway.istio-system~istio-system.svc.cluster.local";
    await startEnvoy({ name: "gateway", bootstrapYaml: renderBootstrap({ nodeId: gw, cluster: "gw", metadata: { [NODE_METADATA.namespace]: "istio-system", [NODE_METADATA.labels]: JSON.stringify({ istio: "ingressgateway" }) }, xdsAddress: "127.0.0.1", xdsPort: runner.cp.xdsPort }) });
    nodes.push({ nodeId: gw });

    const allSynced = (): boolean =>
      nodes.every(({ nodeId }) => {
        const key = runner.cp.xds.registry.byNode(nodeId)[0]?.snapshotKey;
        const snap = key ? runner.cp.cache.get(key) : undefined;
        return !!snap && isSynced(runner.cp.xds.registry, nodeId, snap);
      });
    const versions = () => nodes.map(({ nodeId }) => runner.cp.cache.get(runner.cp.xds.registry.byNode(nodeId)[0]!.snapshotKey)!.version).join();
    while (!allSynced()) await new Promise((r) => setTimeout(r, 10));

    const samples: number[] = [];
    for (let i = 0; i < N; i++) {
      const before = versions();
      const subset = ["v1", "v2", "v3"][(i + 1) % 3]!;
      const t0 = performance.now();
      await writeFile(path.join(dir, "routing.yaml"), routing.replace("    - destination: { host: reviews, subset: v1 }", `    - destination: { host: reviews, subset: ${subset} }`));
      for (;;) {
        if (versions() !== before && allSynced()) break;
        if (performance.now() - t0 > 10_000) throw new Error(`edit ${i + 1} not ACKed by every Envoy within 10 s`);
        await new Promise((r) => setImmediate(r));
      }
      samples.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 300));
    }
    const sorted = [...samples].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    const row = { n: N, envoys: nodes.length, debounceMs: DEBOUNCE_MS, medianMs: +median.toFixed(1), minMs: +sorted[0]!.toFixed(1), maxMs: +sorted[sorted.length - 1]!.toFixed(1), medianMinusDebounceMs: +(median - DEBOUNCE_MS).toFixed(1) };
    const meta = { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, command: "npm run bench:edit" };
    const table = `| edits | Envoys | debounce ms | median ms | min ms | max ms | median - debounce ms |\n|---|---|---|---|---|---|---|\n| ${row.n} | ${row.envoys} | ${row.debounceMs} | ${row.medianMs} | ${row.minMs} | ${row.maxMs} | ${row.medianMinusDebounceMs} |`;
    process.stdout.write(`\nFile edit -> every demo Envoy ACKed\n\n${table}\n`);
    mkdirSync("bench/results", { recursive: true });
    writeFileSync("bench/results/file-edit-to-ack.json", JSON.stringify({ meta, row, samplesMs: samples.map((s) => +s.toFixed(1)) }, null, 2) + "\n");
    writeFileSync("bench/results/file-edit-to-ack.md", `# File edit -> every demo Envoy ACKed\n\n${Object.entries(meta).map(([k, v]) => `- ${k}: ${v}`).join("\n")}\n\n${table}\n`);
  } finally {
    await stopAllEnvoys();
    await runner.close(500);
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch(async (err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).message}\n`);
  await stopAllEnvoys();
  process.exit(1);
});
