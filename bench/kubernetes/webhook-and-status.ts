// Benchmark: the validating webhook's cost on applies and the status writer's rate, against a
// real kube-apiserver (e2e/kubernetes/).
// 1. N creates of valid VirtualServices through the API with Weft's webhook registered
//    (clientConfig.url on 127.0.0.1), then N without it: per-create latency p50/p99 both ways,
//    and the webhook's own answer time (weft_webhook_review_seconds: sum/count).
// 2. Status on those 2N objects: time for every first write at the default rate (10/s, burst
//    20) and at 100/s, then a second pass with nothing changed (writes: 0 expected).
//
//   npx tsx bench/kubernetes/webhook-and-status.ts          (BENCH_WEBHOOK_N=200 by default)
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { AdmissionregistrationV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { Registry } from "prom-client";
import type { MeshConfig } from "../../src/api/types.js";
import { loadOrCreateCa } from "../../src/ca/certificate-authority.js";
import { silentLogger } from "../../src/log/logger.js";
import { buildMeshModel } from "../../src/model/mesh-model.js";
import { freePort } from "../../src/runner/free-port.js";
import { alwaysLeader } from "../../src/runner/leader-election.js";
import { ISTIO_KINDS } from "../../src/sources/kubernetes/istio-kinds.js";
import { validateIstioObject } from "../../src/sources/kubernetes/istio-object.js";
import { KubernetesStatusWriter } from "../../src/status/kubernetes-status-writer.js";
import { StatusController } from "../../src/status/status-controller.js";
import { startAdmissionWebhook } from "../../src/webhook/admission-webhook.js";
import { DEFAULT_WEBHOOK_CONFIGURATION_NAME } from "../../src/webhook/webhook-configuration.js";
import { ProxyRegistry } from "../../src/xds/proxy-registry.js";
import { startKubernetes } from "../../e2e/kubernetes/cluster.js";
import { applyCrds } from "../../e2e/kubernetes/manifests.js";

const N = Number(process.env.BENCH_WEBHOOK_N ?? 200);
const VS_KIND = ISTIO_KINDS.find((k) => k.kind === "VirtualService")!;

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const ms = (n: number) => +n.toFixed(2);

function vsObject(name: string) {
  return { apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name, namespace: "default" }, spec: { hosts: [`${name}.example.com`], http: [{ route: [{ destination: { host: `${name}.example.com` } }] }] } };
}

async function createMany(api: CustomObjectsApi, prefix: string): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < N; i++) {
    const started = process.hrtime.bigint();
    await api.createNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: "default", plural: "virtualservices", body: vsObject(`${prefix}-${i}`) });
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return times.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const cluster = await startKubernetes();
  const caDir = await mkdtemp(path.join(os.tmpdir(), "weft-bench-webhook-"));
  try {
    await applyCrds(cluster.kubeConfig, 60_000);
    const api = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
    const metrics = new Registry();
    const port = await freePort();
    const webhook = await startAdmissionWebhook({ ca: await loadOrCreateCa({ dir: caDir }), kubeConfig: cluster.kubeConfig, leadership: alwaysLeader(), logger: silentLogger(), target: { url: `https://127.0.0.1:${port}/validate` }, address: "127.0.0.1", port, metrics });
    // Until the apiserver calls the webhook (a broken object is refused).
    for (let deadline = Date.now() + 60_000; ; ) {
      const refused = await api.createNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: "default", plural: "virtualservices", body: { ...vsObject("probe"), spec: { hosts: [] } }, dryRun: "All" }).then(() => false, () => true);
      if (refused) break;
      if (Date.now() > deadline) throw new Error("the apiserver never called the webhook");
      await new Promise((r) => setTimeout(r, 200));
    }
    const withWebhook = await createMany(api, "with");
    const review = (await metrics.getSingleMetric("weft_webhook_review_seconds")!.get()).values;
    const sum = review.find((v) => (v as { metricName?: string }).metricName === "weft_webhook_review_seconds_sum")?.value ?? 0;
    const count = review.find((v) => (v as { metricName?: string }).metricName === "weft_webhook_review_seconds_count")?.value ?? 1;
    await webhook.close();
    await cluster.kubeConfig.makeApiClient(AdmissionregistrationV1Api).deleteValidatingWebhookConfiguration({ name: DEFAULT_WEBHOOK_CONFIGURATION_NAME });
    await new Promise((r) => setTimeout(r, 2000)); // the apiserver drops the configuration
    const without = await createMany(api, "without");

    // Status on the 2N objects.
    const objects = [...Array.from({ length: N }, (_, i) => `with-${i}`), ...Array.from({ length: N }, (_, i) => `without-${i}`)];
    const resources = objects.map((name) => {
      const v = validateIstioObject(VS_KIND, "v1", { ...vsObject(name), metadata: { name, namespace: "default", generation: 1, resourceVersion: "1" } }, "Kubernetes")!;
      return { resource: v.resource!, source: v.source };
    });
    const config: MeshConfig = { resources, issues: [] };
    const model = buildMeshModel(config);
    const statusRun = async (ratePerSecond: number, burst: number) => {
      const writer = new KubernetesStatusWriter(cluster.kubeConfig, ISTIO_KINDS);
      const controller = new StatusController({ clusterId: "Kubernetes", kinds: ISTIO_KINDS, write: writer.write, leader: alwaysLeader(), proxies: new ProxyRegistry(), snapshot: () => undefined, model: () => model, logger: silentLogger(), debounceMs: 10, ratePerSecond, burst });
      const started = Date.now();
      controller.configApplied(config);
      while (controller.queue.stats.writes < objects.length) {
        if (Date.now() - started > 600_000) throw new Error(`status: ${controller.queue.stats.writes} of ${objects.length} written in 600 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const seconds = (Date.now() - started) / 1000;
      // A second pass with nothing changed.
      controller.recompute();
      await controller.queue.idle();
      const stats = { ...controller.queue.stats };
      controller.close();
      return { ratePerSecond, burst, objects: objects.length, seconds: +seconds.toFixed(2), writesPerSecond: +(objects.length / seconds).toFixed(1), secondPassWrites: stats.writes - objects.length, unchanged: stats.unchanged, failures: stats.failures };
    };
    // A fresh status (new transition times) needs a write each run; the default rate first.
    const defaultRate = await statusRun(10, 20);
    await api.listNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: "default", plural: "virtualservices" });
    const fast = await statusRun(100, 20);

    const result = {
      at: new Date().toISOString(), machine: `${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)}`, n: N,
      createMs: {
        withWebhook: { p50: ms(percentile(withWebhook, 50)), p99: ms(percentile(withWebhook, 99)), max: ms(withWebhook.at(-1)!) },
        withoutWebhook: { p50: ms(percentile(without, 50)), p99: ms(percentile(without, 99)), max: ms(without.at(-1)!) },
        webhookAnswerMeanMs: ms((sum / count) * 1000),
      },
      status: { defaultRate, fast },
    };
    console.log(JSON.stringify(result, null, 2));
    const dir = path.join(import.meta.dirname, "..", "results");
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "kubernetes-webhook-status.json"), JSON.stringify(result, null, 2) + "\n");
  } finally {
    await cluster.stop();
    await rm(caDir, { recursive: true, force: true });
  }
}

await main();
