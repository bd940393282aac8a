// Benchmark: time from a change written to the API server until every proxy ACKed the
// resulting configuration, in Kubernetes mode. Two changes: a VirtualService (route flips
// between subsets) and an EndpointSlice (a hand-written slice of a selector-less Service gains
// or loses an endpoint). Proxies: BENCH_K8S_SIMULATED simulated sidecars (Envoy-like xDS
// clients, SotW, in a child process) across 10 proxy classes, plus 3 real Envoys (explicit
// mode, no root needed).
// The time includes the watch delivery and Weft's debounce (100 ms).
//
//   npx tsx bench/kubernetes/change-to-ack.ts    (BENCH_K8S_SIMULATED=200 BENCH_N=10 by default)
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { renderBootstrap } from "../../src/envoy/bootstrap.js";
import { startEnvoy, stopAllEnvoys } from "../../src/envoy/envoy-process.js";
import { silentLogger } from "../../src/log/logger.js";
import { NODE_METADATA } from "../../src/model/proxy.js";
import { freePort } from "../../src/runner/free-port.js";
import { startMeshRunner } from "../../src/runner/mesh-runner.js";
import { isSynced } from "../../src/runner/wait-for-sync.js";
import { spawn, type ChildProcess } from "node:child_process";
import { KubernetesSource } from "../../src/sources/kubernetes/kubernetes-source.js";
import { startKubernetes } from "../../e2e/kubernetes/cluster.js";
import { applyCrds } from "../../e2e/kubernetes/manifests.js";
import { apis, startVirtualNodes, createNamespace, createPods, createServices, until, MERGE_PATCH } from "./cluster-load.js";

const SIMULATED = Number(process.env.BENCH_K8S_SIMULATED ?? 200);
const N = Number(process.env.BENCH_N ?? 10);
const SERVICES = 50;
const DEBOUNCE_MS = 100;

function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => +s[Math.min(s.length - 1, Math.floor(q * s.length))]!.toFixed(1);
  return { n: s.length, medianMs: at(0.5), p90Ms: at(0.9), minMs: +s[0]!.toFixed(1), maxMs: +s[s.length - 1]!.toFixed(1) };
}

const vs = (subset: string) => ({
  apiVersion: "networking.istio.io/v1",
  kind: "VirtualService",
  metadata: { name: "svc-0", namespace: "bench" },
  spec: { hosts: ["svc-0"], http: [{ route: [{ destination: { host: "svc-0", subset } }] }] },
});

const slice = (addresses: string[]) => ({
  apiVersion: "discovery.k8s.io/v1",
  kind: "EndpointSlice",
  metadata: { name: "manual-1", namespace: "bench", labels: { "kubernetes.io/service-name": "manual", "endpointslice.kubernetes.io/managed-by": "weft-bench" } },
  addressType: "IPv4",
  ports: [{ name: "http", port: 8080, protocol: "TCP" }],
  endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
});

async function main(): Promise<void> {
  const cluster = await startKubernetes();
  const nodes = await startVirtualNodes(cluster.kubeConfig).catch(async (err: unknown) => {
    await cluster.stop();
    throw err;
  });
  let sidecars: ChildProcess | undefined;
  let runner: Awaited<ReturnType<typeof startMeshRunner>> | undefined;
  try {
    const kc = cluster.kubeConfig;
    const api = apis(kc);
    await applyCrds(kc, 60_000);
    await createNamespace(api, "bench");
    await createServices(api, "bench", SERVICES);
    await createPods(api, "bench", { from: 0, count: SERVICES * 2, services: SERVICES });
    await api.core.createNamespacedService({ namespace: "bench", body: { metadata: { name: "manual" }, spec: { ports: [{ name: "http", port: 80, targetPort: 8080 }] } } });
    await api.discovery.createNamespacedEndpointSlice({ namespace: "bench", body: slice(["10.200.0.1"]) });
    await api.custom.createNamespacedCustomObject({
      group: "networking.istio.io",
      version: "v1",
      namespace: "bench",
      plural: "destinationrules",
      body: { apiVersion: "networking.istio.io/v1", kind: "DestinationRule", metadata: { name: "svc-0", namespace: "bench" }, spec: { host: "svc-0", subsets: [{ name: "a", labels: { version: "v1" } }, { name: "b", labels: { version: "v2" } }] } },
    });
    await api.custom.createNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: "bench", plural: "virtualservices", body: vs("a") });

    runner = await startMeshRunner({ logger: silentLogger(), xdsAddress: "127.0.0.1", xdsPort: await freePort(), adminPort: await freePort(), debounceMs: DEBOUNCE_MS, sources: [new KubernetesSource({ kubeConfig: kc, logger: silentLogger() })] });
    const r = runner;
    await until(() => (r.controller.currentModel.serviceByHost.get("manual.bench.svc.cluster.local")?.endpoints.length ?? 0) === 1 && r.controller.currentModel.services.filter((s) => s.endpoints.length === 2).length === SERVICES, "Weft to see the bench namespace");

    // The simulated sidecars run in their own process: they must not share Weft's event loop.
    sidecars = spawn(process.execPath, ["--import", "tsx", "bench/kubernetes/simulated-sidecars.ts"], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, XDS_TARGET: `127.0.0.1:${r.cp.xdsPort}`, SIDECARS: String(SIMULATED), NAMESPACE: "bench", CLASSES: "10" },
    });
    const nodeIds: string[] = [];
    for (let i = 0; i < SIMULATED; i++) nodeIds.push(`sidecar~10.250.${i >> 8}.${i & 255}~client-${i}.bench~bench.svc.cluster.local`);
    for (let i = 0; i < 3; i++) {
      const nodeId = `sidecar~127.0.0.1~envoy-${i}.bench~bench.svc.cluster.local`;
      const metadata = { [NODE_METADATA.namespace]: "bench", [NODE_METADATA.labels]: JSON.stringify({ app: `envoy-${i}` }), [NODE_METADATA.interceptionMode]: "NONE", [NODE_METADATA.explicitPort]: String(await freePort()) };
      await startEnvoy({ name: `k8s-bench-${i}`, bootstrapYaml: renderBootstrap({ nodeId, cluster: `envoy-${i}`, metadata, xdsAddress: "127.0.0.1", xdsPort: r.cp.xdsPort }) });
      nodeIds.push(nodeId);
    }
    const snapshotOf = (nodeId: string) => {
      const key = r.cp.xds.registry.byNode(nodeId)[0]?.snapshotKey;
      return key ? r.cp.cache.get(key) : undefined;
    };
    const allSynced = () => nodeIds.every((id) => {
      const snap = snapshotOf(id);
      return !!snap && isSynced(r.cp.xds.registry, id, snap);
    });
    const versions = () => nodeIds.map((id) => snapshotOf(id)?.version ?? "").join();
    await until(allSynced, `${nodeIds.length} proxies to sync`, 300_000, 50);

    async function measure(change: (i: number) => Promise<unknown>): Promise<number[]> {
      const samples: number[] = [];
      for (let i = 0; i < N; i++) {
        const before = versions();
        const t0 = performance.now();
        await change(i);
        for (;;) {
          if (versions() !== before && allSynced()) break;
          if (performance.now() - t0 > 60_000) throw new Error(`change ${i + 1} not ACKed by every proxy within 60 s`);
          await new Promise((res) => setImmediate(res));
        }
        samples.push(performance.now() - t0);
        await new Promise((res) => setTimeout(res, 300));
      }
      return samples;
    }
    const vsSamples = await measure((i) =>
      api.custom.patchNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: "bench", plural: "virtualservices", name: "svc-0", body: { spec: vs(i % 2 === 0 ? "b" : "a").spec } }, MERGE_PATCH),
    );
    const sliceSamples = await measure((i) =>
      api.discovery.replaceNamespacedEndpointSlice({ name: "manual-1", namespace: "bench", body: slice(i % 2 === 0 ? ["10.200.0.1", "10.200.0.2"] : ["10.200.0.1"]) }),
    );
    const rows = [
      { change: "VirtualService (route subset)", proxies: nodeIds.length, ...stats(vsSamples) },
      { change: "EndpointSlice (endpoint added/removed)", proxies: nodeIds.length, ...stats(sliceSamples) },
    ];
    const meta = { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, command: `BENCH_K8S_SIMULATED=${SIMULATED} BENCH_N=${N} npx tsx bench/kubernetes/change-to-ack.ts`, debounceMs: DEBOUNCE_MS, services: SERVICES + 1, pods: SERVICES * 2, simulatedSidecars: SIMULATED, realEnvoys: 3 };
    const table = ["| change in the API server | proxies | changes | median ms | p90 ms | min ms | max ms |", "|---|---|---|---|---|---|---|", ...rows.map((x) => `| ${x.change} | ${x.proxies} | ${x.n} | ${x.medianMs} | ${x.p90Ms} | ${x.minMs} | ${x.maxMs} |`)].join("\n");
    process.stdout.write(`\nKubernetes change -> every proxy ACKed\n\n${table}\n`);
    mkdirSync("bench/results", { recursive: true });
    writeFileSync("bench/results/kubernetes-change-to-ack.json", JSON.stringify({ meta, rows, samplesMs: { virtualService: vsSamples.map((s) => +s.toFixed(1)), endpointSlice: sliceSamples.map((s) => +s.toFixed(1)) } }, null, 2) + "\n");
    writeFileSync(
      "bench/results/kubernetes-change-to-ack.md",
      `# Kubernetes mode: change in the API server -> every proxy ACKed\n\n${Object.entries(meta).map(([k, v]) => `- ${k}: ${v}`).join("\n")}\n\nIncludes the watch delivery and Weft's ${DEBOUNCE_MS} ms debounce. The simulated sidecars run in a child process; everything shares the 2 cores with Weft, the API server, etcd, the controller-manager and the other engineers' work on this machine (load average ~15).\n\n${table}\n`,
    );
  } finally {
    if (sidecars && sidecars.exitCode === null) {
      sidecars.kill("SIGTERM");
      await new Promise((res) => sidecars!.once("exit", res));
    }
    await stopAllEnvoys();
    await runner?.close(500);
    await nodes.stop();
    await cluster.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
