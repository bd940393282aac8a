// Benchmark: Weft's memory per 1000 watched Pods and Services (with their EndpointSlices)
// in Kubernetes mode, against a real API server. N Services, N Pods (status set through the
// API; the controller-manager makes the EndpointSlices), then the Kubernetes source lists and
// watches them in this process (the kubelet harness that gave the pods IPs is stopped first). Heap after a full GC: before, after sync (records), after the
// registry generated its ServiceEntries; and for comparison the same objects held whole (as an
// informer that keeps objects would).
//
//   npx tsx bench/kubernetes/registry-memory.ts          (BENCH_K8S_N=1000 by default)
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import v8 from "node:v8";
import vm from "node:vm";
import { silentLogger } from "../../src/log/logger.js";
import { KubernetesSource } from "../../src/sources/kubernetes/kubernetes-source.js";
import { startKubernetes } from "../../e2e/kubernetes/cluster.js";
import { apis, startVirtualNodes, createNamespace, createPods, createServices, until } from "./cluster-load.js";

const N = Number(process.env.BENCH_K8S_N ?? 1000);
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;
const heap = (): number => {
  for (let i = 0; i < 4; i++) gc();
  return process.memoryUsage().heapUsed;
};
const mb = (b: number) => +(b / 1e6).toFixed(2);

async function main(): Promise<void> {
  const cluster = await startKubernetes();
  const nodes = await startVirtualNodes(cluster.kubeConfig).catch(async (err: unknown) => {
    await cluster.stop();
    throw err;
  });
  try {
    const api = apis(cluster.kubeConfig);
    const t0 = performance.now();
    await createNamespace(api, "load");
    await createServices(api, "load", N);
    await createPods(api, "load", { from: 0, count: N, services: N });
    // The controller-manager's EndpointSlices: one per Service, each with its ready pod.
    await until(async () => {
      let ready = 0;
      let cont: string | undefined;
      do {
        const page = await api.discovery.listNamespacedEndpointSlice({ namespace: "load", limit: 500, ...(cont ? { _continue: cont } : {}) });
        ready += page.items.filter((s) => (s.endpoints ?? []).some((e) => e.conditions?.ready)).length;
        cont = page.metadata?._continue;
      } while (cont);
      return ready >= N;
    }, `${N} EndpointSlices with a ready endpoint`, 600_000, 1000);
    const loadSeconds = (performance.now() - t0) / 1000;
    process.stderr.write(`loaded ${N} Services, Pods and EndpointSlices in ${loadSeconds.toFixed(0)} s\n`);
    // The kubelet harness (its own pod cache) leaves this process before anything is measured;
    // the pods stay in the API, Ready, for the minute the measurement takes.
    await nodes.stop();

    const before = heap();
    const source = new KubernetesSource({ kubeConfig: cluster.kubeConfig, logger: silentLogger() });
    const t1 = performance.now();
    await source.start({ changed: () => undefined });
    await until(() => source.synced && source.stats().records.Pod! >= N && source.stats().records.EndpointSlice! >= N, "the source to sync", 300_000, 50);
    const syncMs = performance.now() - t1;
    const records = heap();
    const resources = source.resources();
    const entries = resources.filter((r) => r.resource.kind === "ServiceEntry").length;
    const endpoints = resources.reduce((n, r) => n + (r.resource.kind === "ServiceEntry" ? (r.resource.spec.endpoints?.length ?? 0) : 0), 0);
    const generated = heap();
    // For comparison: the same objects kept whole, as informers that cache objects would.
    const whole: unknown[] = [];
    for (const list of [
      (c?: string) => api.core.listPodForAllNamespaces({ limit: 500, ...(c ? { _continue: c } : {}) }),
      (c?: string) => api.core.listServiceForAllNamespaces({ limit: 500, ...(c ? { _continue: c } : {}) }),
      (c?: string) => api.discovery.listEndpointSliceForAllNamespaces({ limit: 500, ...(c ? { _continue: c } : {}) }),
    ]) {
      let cont: string | undefined;
      do {
        const page = await list(cont);
        whole.push(...page.items);
        cont = page.metadata?._continue;
      } while (cont);
    }
    const withWhole = heap();
    await source.close();

    const per1000 = (bytes: number) => mb((bytes / N) * 1000);
    const row = {
      n: N,
      syncMs: Math.round(syncMs),
      serviceEntries: entries,
      endpoints,
      recordsMb: mb(records - before),
      recordsAndEntriesMb: mb(generated - before),
      perThousandMb: per1000(generated - before),
      wholeObjectsMb: mb(withWhole - generated),
      wholeObjectsPerThousandMb: per1000(withWhole - generated),
      wholeObjects: whole.length,
    };
    const meta = { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, command: `BENCH_K8S_N=${N} npx tsx bench/kubernetes/registry-memory.ts`, loadSeconds: Math.round(loadSeconds) };
    const table = [
      "| Services = Pods = EndpointSlices | sync ms | ServiceEntries | endpoints | heap: records MB | heap: records + generated entries MB | per 1000 (Service + Pod + slice) MB | same objects kept whole MB | whole, per 1000 MB |",
      "|---|---|---|---|---|---|---|---|---|",
      `| ${row.n} | ${row.syncMs} | ${row.serviceEntries} | ${row.endpoints} | ${row.recordsMb} | ${row.recordsAndEntriesMb} | ${row.perThousandMb} | ${row.wholeObjectsMb} | ${row.wholeObjectsPerThousandMb} |`,
    ].join("\n");
    process.stdout.write(`\nKubernetes source memory (heap after full GC)\n\n${table}\n`);
    mkdirSync("bench/results", { recursive: true });
    writeFileSync("bench/results/kubernetes-memory.json", JSON.stringify({ meta, row }, null, 2) + "\n");
    writeFileSync(
      "bench/results/kubernetes-memory.md",
      `# Kubernetes source: memory per watched Pod/Service\n\n${Object.entries(meta).map(([k, v]) => `- ${k}: ${v}`).join("\n")}\n\nHeap of this process after a full GC (V8 heapUsed), measured around the source only; the\napiserver, etcd and controller-manager are other processes.\n\n${table}\n`,
    );
  } finally {
    await nodes.stop();
    await cluster.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
