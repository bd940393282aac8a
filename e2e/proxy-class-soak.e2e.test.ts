// Soak (issue 10): 2000 simulated proxies connect, sync and leave, many reconnecting with other
// random namespaces and labels, against the real wiring (mesh runner, gRPC xDS server). Once
// they are gone, proxy classes and memory (V8 heap + Buffers, after GC) return to the baseline.
// Bounded: SOAK_PROXIES (default 2000) proxies, SOAK_CONCURRENCY (100) at a time, SOAK_SECONDS
// (60) at most. Prints the figures; on the code before issue 10 the classes stayed (see README).
import { afterAll, describe, expect, it } from "vitest";
import { XDS_TYPES } from "../src/envoy/type-urls.js";
import { silentLogger } from "../src/log/logger.js";
import { heapAfterGcMb } from "../src/runner/heap-after-gc.js";
import { startMeshRunner, type MeshRunner } from "../src/runner/mesh-runner.js";
import { SimulatedClient } from "../src/xds/simulated-client.js";
import { meshConfigFromYaml } from "./harness/mesh.js";

const PROXIES = Number(process.env.SOAK_PROXIES ?? 2000);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 100);
const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const SERVICES = 100;
const GRACE_MS = 500;

/** SERVICES ServiceEntries with a workload each, in namespace "mesh": every new namespace's outbound config holds them all. */
function meshYaml(): string {
  const docs: string[] = [];
  for (let i = 0; i < SERVICES; i++) {
    docs.push(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: svc-${i}, namespace: mesh }
spec:
  hosts: [svc-${i}.mesh.svc.cluster.local]
  addresses: [240.241.${i >> 8}.${i & 255}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: svc-${i} } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: svc-${i}, namespace: mesh }
spec: { address: 10.99.${i >> 8}.${i & 255}, labels: { app: svc-${i} } }`);
  }
  return docs.join("\n---\n");
}

/** V8 heap plus Buffers (snapshot bodies live outside the V8 heap) in MB, after full GCs; closed streams get a moment to let go first. */
async function memoryAfterGc(): Promise<number> {
  await new Promise((r) => setTimeout(r, 150));
  return heapAfterGcMb();
}

const mb = (megabytes: number) => Math.round(megabytes * 10) / 10;
let runner: MeshRunner | undefined;
afterAll(async () => {
  await runner?.close(500);
});

describe("soak: proxies reconnecting with random namespaces and labels", () => {
  it(`${PROXIES} proxies (${CONCURRENCY} at a time, at most ${SECONDS} s): classes and memory return to the baseline`, { timeout: (SECONDS + 60) * 1000 }, async () => {
    runner = await startMeshRunner({ logger: silentLogger(), classLimits: { releaseGraceMs: GRACE_MS } });
    runner.controller.setConfig(meshConfigFromYaml(meshYaml()));
    const target = `127.0.0.1:${runner.cp.xdsPort}`;
    const classes = () => runner!.cp.cache.keys().length;
    const baseline = { classes: classes(), memory: await memoryAfterGc() };

    const deadline = Date.now() + SECONDS * 1000;
    let started = 0;
    let synced = 0;
    let refused = 0;
    let peakClasses = 0;
    let rnd = 42;
    const random = (n: number) => {
      rnd = (rnd * 1103515245 + 12345) & 0x7fffffff;
      return rnd % n;
    };
    const oneProxy = async (): Promise<void> => {
      const n = started++;
      const c = new SimulatedClient({
        target,
        nodeId: `sidecar~10.1.${n >> 8 & 255}.${n & 255}~p${n}.soak~soak.svc.cluster.local`,
        mode: n % 2 ? "delta" : "sotw",
        metadata: { NAMESPACE: `soak-${random(1000)}`, LABELS: JSON.stringify({ app: `a${random(50)}`, version: `v${random(5)}` }) },
      });
      try {
        c.start();
        await c.waitFor(() => c.names(XDS_TYPES.listener).length > 0 && c.names(XDS_TYPES.cluster).length > SERVICES, 20_000, "a synced config");
        synced++;
        // Every other proxy reconnects once, as another random class.
        if (n % 2 === 0) {
          c.disconnect();
          c.opts.metadata = { NAMESPACE: `soak-${random(1000)}`, LABELS: JSON.stringify({ app: `a${random(50)}` }) };
          c.start();
          await c.waitFor(() => c.responses.length > 0, 20_000, "a response after reconnecting");
        }
      } catch {
        refused++;
      } finally {
        peakClasses = Math.max(peakClasses, classes());
        c.close();
      }
    };
    const workers = Array.from({ length: CONCURRENCY }, async () => {
      while (started < PROXIES && Date.now() < deadline) await oneProxy();
    });
    await Promise.all(workers);
    const during = { classes: classes(), memory: await memoryAfterGc() };

    // Every proxy is gone: after the grace period the classes go, and with them their memory.
    const until = Date.now() + 10_000;
    while (classes() > baseline.classes && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 200));
    const after = { classes: classes(), memory: await memoryAfterGc() };

    const report = { proxies: started, synced, failed: refused, peakClasses, baseline: { classes: baseline.classes, memoryMB: mb(baseline.memory) }, rightAfter: { classes: during.classes, memoryMB: mb(during.memory) }, afterGrace: { classes: after.classes, memoryMB: mb(after.memory) } };
    console.log(`soak: ${JSON.stringify(report)}`);
    expect(started).toBeGreaterThanOrEqual(Math.min(PROXIES, 500));
    expect(synced).toBeGreaterThan(started * 0.9);
    expect(after.classes).toBe(baseline.classes);
    // Within 20 MB of the baseline (what stays: gRPC and V8 internals, not configurations).
    expect(after.memory - baseline.memory).toBeLessThan(20);
  });
});
