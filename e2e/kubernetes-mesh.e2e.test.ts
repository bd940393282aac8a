// Kubernetes mode end to end: a real kube-apiserver and controller-manager, pods run by the
// kubelet harness (network namespaces with Envoy sidecars), Weft reading Services,
// EndpointSlices, Pods and Istio resources from the cluster. Requests go through the sidecars.
//
//   flock /tmp/weft-pods.lock npx vitest run e2e/kubernetes-mesh.e2e.test.ts
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKubeMesh, spread, kubeMeshUnavailable, podYaml, type KubeMesh } from "./harness/kube-mesh.js";
import type { RunningPod } from "./kubernetes/kubelet.js";
import { formatIssue, type ValidationIssue } from "../src/api/types.js";

const unavailable = await kubeMeshUnavailable();
const runnable = unavailable === "";
if (!runnable) process.stderr.write(`kubernetes-mesh e2e skipped: ${unavailable}\n`);

const pod = (name: string, labels: Record<string, string>, serviceAccount: string, ports: number[]) => podYaml({ name, namespace: "bookinfo", labels, serviceAccount, ports });

const BASE = `
apiVersion: v1
kind: Namespace
metadata: { name: bookinfo, labels: { istio-injection: enabled } }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: bookinfo-reviews, namespace: bookinfo }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: sleep, namespace: bookinfo }
---
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: bookinfo }
spec:
  selector: { app: reviews }
  ports: [{ name: http, port: 9080, targetPort: 9080 }]
---
${pod("reviews-v1-a", { app: "reviews", version: "v1" }, "bookinfo-reviews", [9080])}
---
${pod("reviews-v1-b", { app: "reviews", version: "v1" }, "bookinfo-reviews", [9080])}
---
${pod("reviews-v2-a", { app: "reviews", version: "v2" }, "bookinfo-reviews", [9080])}
---
${pod("sleep", { app: "sleep" }, "sleep", [])}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: bookinfo }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`;

const routeTo = (subset: string) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: bookinfo }
spec:
  hosts: [reviews]
  http:
  - route: [{ destination: { host: reviews, subset: ${subset} } }]
`;

const REVIEWS = "reviews.bookinfo.svc.cluster.local";

describe.skipIf(!runnable)("Kubernetes mode: bookinfo-like set through real sidecars", () => {
  let mesh: KubeMesh;
  let sleep: RunningPod;
  let reviewsIp: string;
  const ipOf: Record<string, string> = {};

  beforeAll(async () => {
    mesh = await startKubeMesh({ kubelet: { terminationDelayMs: 20_000 } });
    await mesh.apply(BASE + "---\n" + routeTo("v1"));
    for (const name of ["reviews-v1-a", "reviews-v1-b", "reviews-v2-a"]) ipOf[name] = (await mesh.kubelet.waitForPod("bookinfo", name)).ip;
    sleep = await mesh.kubelet.waitForPod("bookinfo", "sleep");
    reviewsIp = (await mesh.kubectl(["get", "service", "reviews", "-n", "bookinfo", "-o", "jsonpath={.spec.clusterIP}"])).trim();
    await mesh.settle((m) => m.serviceByHost.get(REVIEWS)?.endpoints.length === 3 && m.virtualServices.length === 1, "reviews with 3 endpoints and its VirtualService");
  }, 240_000);

  afterAll(async () => {
    expect(mesh?.kubelet.errors ?? []).toEqual([]);
    await mesh?.stop();
  }, 60_000);

  const target = () => ({ ip: reviewsIp, port: 9080, authority: "reviews:9080" });

  it("the cluster's Service, pods and Istio resources are in Weft's model", () => {
    const service = mesh.runner.controller.currentModel.serviceByHost.get(REVIEWS)!;
    expect(service.addresses).toEqual([reviewsIp]);
    expect(service.endpoints.map((e) => [e.address, e.labels.version, e.serviceAccount, e.ports[9080]]).sort()).toEqual(
      [
        [ipOf["reviews-v1-a"], "v1", "bookinfo-reviews", 9080],
        [ipOf["reviews-v1-b"], "v1", "bookinfo-reviews", 9080],
        [ipOf["reviews-v2-a"], "v2", "bookinfo-reviews", 9080],
      ].sort(),
    );
    // Every sidecar identified its pod as Istio's do (node id and metadata).
    const nodes = mesh.runner.cp.xds.registry.list().map((p) => p.nodeId).sort();
    expect(nodes).toContain(`sidecar~${sleep.ip}~sleep.bookinfo~bookinfo.svc.cluster.local`);
  });

  it("requests follow the VirtualService (subset v1 = both v1 pods)", async () => {
    const seen = await spread(sleep, target(), 12);
    expect([...seen.keys()].sort()).toEqual(["reviews-v1-a", "reviews-v1-b"]);
  });

  it("changing the VirtualService in the API server moves traffic", async () => {
    await mesh.apply(routeTo("v2"));
    await mesh.settle((m) => m.virtualServices[0]?.spec.http?.[0]?.route?.[0]?.destination.subset === "v2", "the VirtualService routing to v2");
    const seen = await spread(sleep, target(), 8);
    expect([...seen.keys()]).toEqual(["reviews-v2-a"]);
  });

  it("a DestinationRule's subsets follow pod labels", async () => {
    await mesh.kubectl(["label", "pod", "reviews-v1-b", "-n", "bookinfo", "version=v2", "--overwrite"]);
    await mesh.settle((m) => m.serviceByHost.get(REVIEWS)!.endpoints.find((e) => e.address === ipOf["reviews-v1-b"])?.labels.version === "v2", "reviews-v1-b relabelled to v2");
    const seen = await spread(sleep, target(), 16);
    expect([...seen.keys()].sort()).toEqual(["reviews-v1-b", "reviews-v2-a"]);
    await mesh.kubectl(["label", "pod", "reviews-v1-b", "-n", "bookinfo", "version=v1", "--overwrite"]);
    await mesh.settle((m) => m.serviceByHost.get(REVIEWS)!.endpoints.find((e) => e.address === ipOf["reviews-v1-b"])?.labels.version === "v1", "reviews-v1-b back to v1");
    expect([...(await spread(sleep, target(), 6)).keys()]).toEqual(["reviews-v2-a"]);
  });

  it("a broken Istio resource in the cluster is reported with its cluster reference, and the rest keeps working", async () => {
    await mesh.apply(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews-broken, namespace: bookinfo }
spec:
  hosts: [reviews.bookinfo.svc.cluster.local]
  http:
  - route: [{ destination: { host: reviews, subset: v2 } }]
    timeout: soon
`);
    const rv = (await mesh.kubectl(["get", "virtualservice", "reviews-broken", "-n", "bookinfo", "-o", "jsonpath={.metadata.resourceVersion}"])).trim();
    const deadline = Date.now() + 30_000;
    let issue: ValidationIssue | undefined;
    while (!issue && Date.now() < deadline) {
      issue = mesh.applied.at(-1)?.issues.find((i) => i.resource === "VirtualService/bookinfo/reviews-broken");
      if (!issue) await new Promise((r) => setTimeout(r, 100));
    }
    expect(issue).toMatchObject({ cluster: "Kubernetes", kind: "VirtualService", namespace: "bookinfo", name: "reviews-broken", resourceVersion: rv, severity: "error" });
    expect(formatIssue(issue!)).toMatch(/^kubernetes cluster Kubernetes: VirtualService\/bookinfo\/reviews-broken \(resourceVersion \d+\): spec\.http\[0\]\.timeout: /);
    expect(mesh.runner.controller.currentModel.virtualServices.map((v) => v.metadata.name)).toEqual(["reviews"]);
    expect([...(await spread(sleep, target(), 4)).keys()]).toEqual(["reviews-v2-a"]);
    await mesh.kubectl(["delete", "virtualservice", "reviews-broken", "-n", "bookinfo"]);
  });

  it("deleting a pod removes its endpoint: once the sidecars ACKed, no request reaches it", async () => {
    await mesh.apply(routeTo("v1"));
    await mesh.settle((m) => m.virtualServices[0]?.spec.http?.[0]?.route?.[0]?.destination.subset === "v1", "the VirtualService routing to v1");
    await mesh.kubectl(["delete", "pod", "reviews-v1-b", "-n", "bookinfo", "--wait=false"]);
    await mesh.settle((m) => !m.serviceByHost.get(REVIEWS)!.endpoints.some((e) => e.address === ipOf["reviews-v1-b"]), "reviews-v1-b's endpoint removed");
    // The harness keeps the deleted pod's processes running for 20 s (a graceful termination):
    // it could still answer, so only Weft's removal keeps traffic away from it.
    expect(mesh.kubelet.find("bookinfo", "reviews-v1-b")).toBeDefined();
    const seen = await spread(sleep, target(), 16);
    expect([...seen.keys()]).toEqual(["reviews-v1-a"]);
  });
});
