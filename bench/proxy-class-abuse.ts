// Benchmark: what clients claiming new proxy classes cost the control plane (issue 10, item 1).
// One in-process mesh runner on a generated mesh of SERVICES ServiceEntries (+ a workload each),
// clients over real gRPC on loopback:
//
//   plaintext  STREAMS short-lived streams, each claiming a new namespace, then gone: classes
//              held and memory (V8 heap + Buffers, after GC) right after and once the release
//              grace (GRACE_MS) has passed; then the time of a one-line config edit.
//   security   the same streams without a token against --security: classes and memory.
//
//   npx tsx bench/proxy-class-abuse.ts
//   STREAMS=1000 SERVICES=300 npx tsx bench/proxy-class-abuse.ts
//
// Prints one JSON line per scenario; bench/results/proxy-class-abuse.md records the figures.
// Class counts are read from the snapshot cache (one snapshot per class), so the same script
// also measures code from before classes were released.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import type { MeshConfig, NetworkingResource } from "../src/api/types.js";
import { silentLogger } from "../src/log/logger.js";
import { heapAfterGcMb } from "../src/runner/heap-after-gc.js";
import { startMeshRunner, type MeshRunner } from "../src/runner/mesh-runner.js";
import { SimulatedClient } from "../src/xds/simulated-client.js";

const only = new Set((process.env.BENCH_ONLY ?? "plaintext,security").split(","));
const num = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const STREAMS = num("STREAMS", 300);
const SERVICES = num("SERVICES", 100);
const GRACE_MS = num("GRACE_MS", 1000);
const CONCURRENCY = 50;

/** V8 heap + Buffers after full GCs, MB to one decimal. */
const memoryMb = (): number => Math.round(heapAfterGcMb() * 10) / 10;

function mesh(edit = 0): MeshConfig {
  const docs: string[] = [];
  for (let i = 0; i < SERVICES; i++) {
    docs.push(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: svc-${i}, namespace: mesh }
spec: { hosts: [svc-${i}.mesh.svc.cluster.local], addresses: [240.241.${i >> 8}.${i & 255}], location: MESH_INTERNAL, resolution: STATIC, ports: [{ number: ${8080 + (i === 0 ? edit : 0)}, name: http, protocol: HTTP }], workloadSelector: { labels: { app: svc-${i} } } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: svc-${i}, namespace: mesh }
spec: { address: 10.99.${i >> 8}.${i & 255}, labels: { app: svc-${i} } }`);
  }
  const resources = parseAllDocuments(docs.join("\n---\n"))
    .map((d) => d.toJS() as NetworkingResource)
    .map((resource, document) => ({ resource, source: { file: "bench.yaml", document } }));
  return { resources, issues: [] } as MeshConfig;
}

async function claimNamespaces(runner: MeshRunner, tls?: { caPem: string; serverName: string }): Promise<{ answered: number; refused: number }> {
  let next = 0;
  let answered = 0;
  let refused = 0;
  const one = async (n: number) => {
    const c = new SimulatedClient({ target: `127.0.0.1:${runner.cp.xdsPort}`, nodeId: `sidecar~10.2.${n >> 8}.${n & 255}~x.abuse-${n}~abuse-${n}.svc.cluster.local`, mode: "delta", metadata: { NAMESPACE: `abuse-${n}`, LABELS: JSON.stringify({ app: `x${n}` }) }, ...(tls ? { tls } : {}) });
    await new Promise<void>((resolve) => {
      let settled = false;
      const settle = (outcome: "answered" | "refused") => () => {
        if (settled) return;
        settled = true;
        if (outcome === "answered") answered++;
        else refused++;
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(resolve, 10_000);
      c.once("response", settle("answered"));
      c.once("stream-error", (e: { code?: number; details?: string }) => {
        if (process.env.DEBUG_REFUSALS && !settled) console.error(`refused: ${e.code} ${e.details}`);
        settle("refused")();
      });
      c.start();
    });
    c.close();
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < STREAMS) await one(next++);
  }));
  return { answered, refused };
}

async function scenario(name: string, security: boolean): Promise<void> {
  const stateDir = security ? await mkdtemp(path.join(os.tmpdir(), "weft-bench-classes-")) : undefined;
  const runner = await startMeshRunner({ logger: silentLogger(), ...(stateDir ? { security: { stateDir } } : {}), classLimits: { releaseGraceMs: GRACE_MS } });
  try {
    runner.controller.setConfig(mesh());
    const classes = () => runner.cp.cache.keys().length;
    const before = { classes: classes(), memoryMb: memoryMb() };
    const sec = runner.security;
    const streams = await claimNamespaces(runner, sec ? { caPem: readFileSync(sec.trustBundleFile, "utf8"), serverName: sec.serverName } : undefined);
    const rightAfter = { classes: classes(), memoryMb: memoryMb() };
    await new Promise((r) => setTimeout(r, GRACE_MS + 500));
    const afterGrace = { classes: classes(), memoryMb: memoryMb() };
    const t0 = performance.now();
    const stats = runner.controller.setConfig(mesh(1));
    const editMs = Math.round(performance.now() - t0);
    console.log(JSON.stringify({ scenario: name, services: SERVICES, streams: STREAMS, ...streams, graceMs: GRACE_MS, before, rightAfter, afterGrace, oneLineEdit: { ms: editMs, classesRegenerated: stats.classes } }));
  } finally {
    await runner.close(200);
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  }
}

if (only.has("plaintext")) await scenario("plaintext", false);
if (only.has("security")) await scenario("security", true);
process.exit(0);
