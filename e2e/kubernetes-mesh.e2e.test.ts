// Kubernetes mode end to end: a real kube-apiserver and controller-manager, pods run by the
// kubelet harness (network namespaces with Envoy sidecars), Weft reading Services,
// EndpointSlices, Pods and Istio resources from the cluster. The workloads are Deployments (the
// controller-manager's ReplicaSets make their pods, with pod-template-hash labels). Requests go
// through the sidecars.
//
//   flock /tmp/weft-pods.lock npx vitest run e2e/kubernetes-mesh.e2e.test.ts
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKubeMesh, spread, kubeMeshUnavailable, type KubeMesh } from "./harness/kube-mesh.js";
import type { RunningPod } from "./kubernetes/kubelet.js";
import { formatIssue, type ValidationIssue } from "../src/api/types.js";

const unavailable = await kubeMeshUnavailable();
const runnable = unavailable === "";
if (!runnable) process.stderr.write(`kubernetes-mesh e2e skipped: ${unavailable}\n`);

/** A Deployment of the bookinfo namespace: its pods (run by the harness) carry `labels` plus `deployment: <name>`, the selector. */
const deployment = (name: string, labels: Record<string, string>, replicas: number, serviceAccount: string, ports: number[]) => `
apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, namespace: bookinfo }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { deployment: ${name} } }
  template:
    metadata: { labels: ${JSON.stringify({ ...labels, deployment: name })} }
    spec:
      serviceAccountName: ${serviceAccount}
      containers: [{ name: app, image: weft.dev/echo, ports: [${ports.map((n) => `{ containerPort: ${n} }`).join(", ")}] }]
`;

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
${deployment("reviews-v1", { app: "reviews", version: "v1" }, 2, "bookinfo-reviews", [9080])}
---
${deployment("reviews-v2", { app: "reviews", version: "v2" }, 1, "bookinfo-reviews", [9080])}
---
${deployment("sleep", { app: "sleep" }, 1, "sleep", [])}
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
  /** The Deployments' pods by Deployment (names made by the ReplicaSets), and each pod's IP and pod-template-hash. */
  const podsOf: Record<string, string[]> = {};
  const ipOf: Record<string, string> = {};
  const hashOf: Record<string, string> = {};

  /** The current pods of a Deployment (not being deleted), by name. */
  const deploymentPods = async (name: string): Promise<string[]> =>
    (await mesh.kubectl(["get", "pods", "-n", "bookinfo", "-l", `deployment=${name}`, "-o", 'jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{"\\n"}{end}']))
      .split("\n")
      .map((line) => line.trim().split(" "))
      .filter((f) => f[0] && !f[1])
      .map((f) => f[0]!)
      .sort();

  beforeAll(async () => {
    mesh = await startKubeMesh({ kubelet: { terminationDelayMs: 20_000 } });
    await mesh.apply(BASE + "---\n" + routeTo("v1"));
    for (const name of ["reviews-v1", "reviews-v2", "sleep"]) {
      await mesh.kubectl(["rollout", "status", `deployment/${name}`, "-n", "bookinfo", "--timeout=180s"], undefined);
      podsOf[name] = await deploymentPods(name);
      for (const pod of podsOf[name]!) {
        const running = await mesh.kubelet.waitForPod("bookinfo", pod);
        ipOf[pod] = running.ip;
        hashOf[pod] = (await mesh.kubectl(["get", "pod", pod, "-n", "bookinfo", "-o", "jsonpath={.metadata.labels.pod-template-hash}"])).trim();
      }
    }
    expect({ v1: podsOf["reviews-v1"]!.length, v2: podsOf["reviews-v2"]!.length, sleep: podsOf.sleep!.length }).toEqual({ v1: 2, v2: 1, sleep: 1 });
    sleep = mesh.kubelet.find("bookinfo", podsOf.sleep![0]!)!;
    reviewsIp = (await mesh.kubectl(["get", "service", "reviews", "-n", "bookinfo", "-o", "jsonpath={.spec.clusterIP}"])).trim();
    await mesh.settle((m) => m.serviceByHost.get(REVIEWS)?.endpoints.length === 3 && m.virtualServices.length === 1, "reviews with 3 endpoints and its VirtualService");
  }, 300_000);

  afterAll(async () => {
    expect(mesh?.kubelet.errors ?? []).toEqual([]);
    await mesh?.stop();
  }, 60_000);

  const target = () => ({ ip: reviewsIp, port: 9080, authority: "reviews:9080" });
  const v1Pods = () => podsOf["reviews-v1"]!;
  const v2Pod = () => podsOf["reviews-v2"]![0]!;

  it("the cluster's Service, Deployments' pods and Istio resources are in Weft's model", () => {
    const service = mesh.runner.controller.currentModel.serviceByHost.get(REVIEWS)!;
    expect(service.addresses).toEqual([reviewsIp]);
    expect(service.endpoints.map((e) => [e.address, e.labels.version, e.labels["pod-template-hash"], e.serviceAccount, e.ports[9080]]).sort()).toEqual(
      [...v1Pods().map((p) => [ipOf[p], "v1", hashOf[p], "bookinfo-reviews", 9080]), [ipOf[v2Pod()], "v2", hashOf[v2Pod()], "bookinfo-reviews", 9080]].sort(),
    );
    for (const p of Object.keys(hashOf)) expect(hashOf[p]).toMatch(/^[a-z0-9]+$/);
    // Every sidecar identified its pod as Istio's do (node id and metadata).
    const nodes = mesh.runner.cp.xds.registry.list().map((p) => p.nodeId).sort();
    expect(nodes).toContain(`sidecar~${sleep.ip}~${sleep.name}.bookinfo~bookinfo.svc.cluster.local`);
  });

  it("requests follow the VirtualService (subset v1 = both v1 pods)", async () => {
    const seen = await spread(sleep, target(), 16);
    expect([...seen.keys()].sort()).toEqual(v1Pods());
  });

  it("changing the VirtualService in the API server moves traffic", async () => {
    await mesh.apply(routeTo("v2"));
    await mesh.settle((m) => m.virtualServices[0]?.spec.http?.[0]?.route?.[0]?.destination.subset === "v2", "the VirtualService routing to v2");
    const seen = await spread(sleep, target(), 8);
    expect([...seen.keys()]).toEqual([v2Pod()]);
  });

  it("a DestinationRule's subsets follow pod labels", async () => {
    // The Deployments select on their own label, so relabelling a pod's version keeps it in its ReplicaSet.
    const moved = v1Pods()[1]!;
    await mesh.kubectl(["label", "pod", moved, "-n", "bookinfo", "version=v2", "--overwrite"]);
    await mesh.settle((m) => m.serviceByHost.get(REVIEWS)!.endpoints.find((e) => e.address === ipOf[moved])?.labels.version === "v2", `${moved} relabelled to v2`);
    const seen = await spread(sleep, target(), 16);
    expect([...seen.keys()].sort()).toEqual([moved, v2Pod()].sort());
    await mesh.kubectl(["label", "pod", moved, "-n", "bookinfo", "version=v1", "--overwrite"]);
    await mesh.settle((m) => m.serviceByHost.get(REVIEWS)!.endpoints.find((e) => e.address === ipOf[moved])?.labels.version === "v1", `${moved} back to v1`);
    expect([...(await spread(sleep, target(), 6)).keys()]).toEqual([v2Pod()]);
    expect(await deploymentPods("reviews-v1")).toEqual(v1Pods()); // still the ReplicaSet's: no replacement pod
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
    expect([...(await spread(sleep, target(), 4)).keys()]).toEqual([v2Pod()]);
    await mesh.kubectl(["delete", "virtualservice", "reviews-broken", "-n", "bookinfo"]);
  });

  it("deleting a pod removes its endpoint: once the sidecars ACKed, no request reaches it", async () => {
    await mesh.apply(routeTo("v1"));
    await mesh.settle((m) => m.virtualServices[0]?.spec.http?.[0]?.route?.[0]?.destination.subset === "v1", "the VirtualService routing to v1");
    const [kept, deleted] = v1Pods() as [string, string];
    await mesh.kubectl(["delete", "pod", deleted, "-n", "bookinfo", "--wait=false"]);
    await mesh.settle((m) => !m.serviceByHost.get(REVIEWS)!.endpoints.some((e) => e.address === ipOf[deleted]), `${deleted}'s endpoint removed`);
    // The harness keeps the deleted pod's processes running for 20 s (a graceful termination):
    // it could still answer, so only Weft's removal keeps traffic away from it.
    expect(mesh.kubelet.find("bookinfo", deleted)).toBeDefined();
    const seen = await spread(sleep, target(), 16);
    expect(seen.has(deleted)).toBe(false);
    expect(seen.get(kept)).toBeGreaterThan(0);
    // Anything else that answered is the ReplicaSet's replacement, a v1 pod of the same template.
    for (const pod of seen.keys()) if (pod !== kept) expect(await mesh.kubectl(["get", "pod", pod, "-n", "bookinfo", "-o", "jsonpath={.metadata.labels.version} {.metadata.labels.pod-template-hash}"])).toBe(`v1 ${hashOf[kept]}`);
  });
});
