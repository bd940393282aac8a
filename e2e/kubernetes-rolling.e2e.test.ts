// 20 rolling restarts of a Deployment: each brings a pod with a new pod-template-hash label,
// so each new sidecar forms a new proxy class. Once the old pods are gone their classes are
// released: the class count and Weft's heap come back to where they were.
//
//   flock /tmp/weft-pods.lock npx vitest run e2e/kubernetes-rolling.e2e.test.ts
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { heapAfterGcMb } from "../src/runner/heap-after-gc.js";
import type { RunningPod } from "./kubernetes/kubelet.js";
import { sleep, spread, startKubeMesh, kubeMeshUnavailable, type KubeMesh } from "./harness/kube-mesh.js";

const unavailable = await kubeMeshUnavailable();
const runnable = unavailable === "";
if (!runnable) process.stderr.write(`kubernetes-rolling e2e skipped: ${unavailable}\n`);

const RESTARTS = 20;
const RELEASE_GRACE_MS = 1000;

const OBJECTS = `
apiVersion: v1
kind: Namespace
metadata: { name: roll, labels: { istio-injection: enabled } }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: roll }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: roll }
spec:
  replicas: 1
  selector: { matchLabels: { app: web } }
  strategy: { rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }
  template:
    metadata: { labels: { app: web, version: v1 } }
    spec:
      containers: [{ name: web, image: weft.dev/echo, ports: [{ containerPort: 8080 }] }]
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: roll, labels: { app: client } }
spec:
  containers: [{ name: app, image: weft.dev/echo }]
`;

const WEB = "web.roll.svc.cluster.local";

describe.skipIf(!runnable)("Kubernetes mode: rolling restarts", () => {
  let mesh: KubeMesh;
  let client: RunningPod;
  let webIp: string;

  beforeAll(async () => {
    mesh = await startKubeMesh({ runner: { classLimits: { releaseGraceMs: RELEASE_GRACE_MS } } });
    await mesh.apply(OBJECTS);
    client = await mesh.kubelet.waitForPod("roll", "client");
    await mesh.kubectl(["rollout", "status", "deployment/web", "-n", "roll", "--timeout=120s"]);
    webIp = (await mesh.kubectl(["get", "service", "web", "-n", "roll", "-o", "jsonpath={.spec.clusterIP}"])).trim();
    await mesh.settle((m) => m.serviceByHost.get(WEB)?.endpoints.length === 1, "web with its one endpoint");
  }, 240_000);

  afterAll(async () => {
    expect(mesh?.kubelet.errors ?? []).toEqual([]);
    await mesh?.stop();
  }, 60_000);

  it(`after ${RESTARTS} rolling restarts, proxy classes and heap return to baseline`, async () => {
    // Baseline: one web pod and the client, settled, their classes only.
    await sleep(RELEASE_GRACE_MS * 3);
    const baselineClasses = mesh.runner.controller.classCount;
    const baselineHeap = heapAfterGcMb();
    const hashes = new Set<string>();
    for (let i = 1; i <= RESTARTS; i++) {
      await mesh.kubectl(["patch", "deployment", "web", "-n", "roll", "--type=merge", "-p", JSON.stringify({ spec: { template: { metadata: { annotations: { "weft.dev/restartedAt": String(i) } } } } })]);
      await mesh.kubectl(["rollout", "status", "deployment/web", "-n", "roll", "--timeout=120s"]);
      // The current ReplicaSet is the one with the highest deployment revision.
      const revisions = (await mesh.kubectl(["get", "replicaset", "-n", "roll", "-l", "app=web", "-o", 'jsonpath={range .items[*]}{.metadata.annotations.deployment\\.kubernetes\\.io/revision} {.metadata.labels.pod-template-hash}{"\\n"}{end}']))
        .trim()
        .split("\n")
        .map((line) => line.trim().split(" ") as [string, string])
        .sort((a, b) => Number(b[0]) - Number(a[0]));
      const hash = revisions[0]![1];
      hashes.add(hash);
      // The old pod is gone from the registry and traffic reaches the new one.
      await mesh
        .settle((m) => m.serviceByHost.get(WEB)?.endpoints.length === 1 && m.serviceByHost.get(WEB)!.endpoints[0]!.labels["pod-template-hash"] === hash, `web's endpoint from pod-template-hash ${hash}`, 60_000)
        .catch(async (err: Error) => {
          const endpoints = mesh.runner.controller.currentModel.serviceByHost.get(WEB)?.endpoints.map((e) => `${e.address} ${e.labels["pod-template-hash"]}`);
          const pods = await mesh.kubectl(["get", "pods,endpointslices", "-n", "roll", "-o", "wide"]).catch((e: Error) => e.message);
          throw new Error(`restart ${i}: ${err.message}; Weft's endpoints: ${JSON.stringify(endpoints)}; cluster:\n${pods}`);
        });
      // The new pod answers through the mesh (the first request may meet a pod that has only just
      // turned Ready: retried for up to 20 s; what this test asserts is classes and heap).
      const until = Date.now() + 20_000;
      let answered: Map<string, number> | undefined;
      let lastError: unknown;
      while (!answered && Date.now() < until) answered = await spread(client, { ip: webIp, port: 80, authority: "web.roll:80" }, 1).catch((err: unknown) => ((lastError = err), undefined));
      if (!answered) {
        const seen = (await client.envoy?.clusters().catch((e: Error) => e.message))
          ?.split("\n")
          .filter((line) => line.includes(WEB) && (line.includes("health_flags") || line.includes("cx_active") || line.includes("rq_error")))
          .join("\n");
        const endpoints = mesh.runner.controller.currentModel.serviceByHost.get(WEB)?.endpoints.map((e) => `${e.address} ${e.labels["pod-template-hash"]}`);
        throw new Error(`restart ${i}: the new web pod (${hash}) never answered through the mesh: ${String(lastError)}; Weft's endpoints: ${JSON.stringify(endpoints)}; the client's Envoy:\n${seen}`);
      }
    }
    expect(hashes.size).toBe(RESTARTS);
    // Wait out the deleted pods' streams and the release grace.
    const deadline = Date.now() + 60_000;
    while (mesh.runner.controller.classCount > baselineClasses && Date.now() < deadline) await sleep(200);
    const classes = mesh.runner.controller.classCount;
    const heap = heapAfterGcMb();
    process.stderr.write(`rolling restarts: classes ${baselineClasses} -> ${classes}; heap + Buffers ${baselineHeap.toFixed(1)} MB -> ${heap.toFixed(1)} MB (test process: Weft, the kubelet harness and vitest)\n`);
    expect(classes).toBe(baselineClasses);
    // The same process also runs the kubelet harness and kubectl bookkeeping; 20 leaked classes
    // (full configurations) would be several MB each.
    expect(heap - baselineHeap).toBeLessThan(8e6 / 2 ** 20); // was 8e6 bytes of heap alone; now heap and Buffers
  }, 900_000);
});
