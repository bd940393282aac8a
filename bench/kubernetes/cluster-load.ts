// Loading a real API server (e2e/kubernetes/cluster.ts) with the objects the Kubernetes
// benchmarks watch: Services, Pods on a virtual node of the kubelet harness (an IP and Ready
// status, nothing run), EndpointSlices (the controller-manager's, or written directly).
import { CoreV1Api, CustomObjectsApi, DiscoveryV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from "@kubernetes/client-node";
import { Kubelet, VIRTUAL_POD_PLACEMENT } from "../../e2e/kubernetes/kubelet.js";

export const MERGE_PATCH = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export interface LoadApis {
  core: CoreV1Api;
  discovery: DiscoveryV1Api;
  custom: CustomObjectsApi;
}

export function apis(kc: KubeConfig): LoadApis {
  return { core: kc.makeApiClient(CoreV1Api), discovery: kc.makeApiClient(DiscoveryV1Api), custom: kc.makeApiClient(CustomObjectsApi) };
}

/** Runs `fn` over `items` with at most `concurrency` calls in flight. */
export async function inParallel<T>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

export async function createNamespace(api: LoadApis, name: string, labels: Record<string, string> = {}): Promise<void> {
  await api.core.createNamespace({ body: { metadata: { name, labels } } });
}

/** Service `svc-<i>` selecting app=svc-<i>, one HTTP port. */
export async function createServices(api: LoadApis, namespace: string, count: number, concurrency = 8): Promise<void> {
  await inParallel(Array.from({ length: count }, (_, i) => i), concurrency, (i) =>
    api.core.createNamespacedService({ namespace, body: { metadata: { name: `svc-${i}` }, spec: { selector: { app: `svc-${i}` }, ports: [{ name: "http", port: 80, targetPort: 8080 }] } } }),
  );
}

/**
 * Pod `<prefix>-<i>` for service svc-<i % services>, with typical labels, placed on a virtual
 * node of the kubelet harness (startVirtualNodes): it runs nothing, but gets an IP and Ready
 * status, so the controller-manager puts it in its Service's EndpointSlice.
 */
export async function createPods(api: LoadApis, namespace: string, opts: { from: number; count: number; services: number; prefix?: string }, concurrency = 8): Promise<void> {
  const prefix = opts.prefix ?? "pod";
  await inParallel(Array.from({ length: opts.count }, (_, k) => opts.from + k), concurrency, async (i) => {
    const app = `svc-${i % opts.services}`;
    await api.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: `${prefix}-${i}`, labels: { app, version: "v1", "pod-template-hash": `h${i % 97}`, "security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name": app } },
        spec: { ...VIRTUAL_POD_PLACEMENT, serviceAccountName: "default", containers: [{ name: "app", image: "weft.dev/echo", ports: [{ containerPort: 8080 }] }] },
      },
    });
  });
}

/** The kubelet harness with one virtual node: pods placed there get IPs and Ready, and run nothing. */
export function startVirtualNodes(kc: KubeConfig): Promise<Kubelet> {
  return Kubelet.start(kc, { nodes: [{ name: "bench-virtual", virtual: true, labels: { "topology.kubernetes.io/region": "bench", "topology.kubernetes.io/zone": "bench-a" } }] });
}

export async function deletePods(api: LoadApis, namespace: string, names: readonly string[], concurrency = 8): Promise<void> {
  await inParallel(names, concurrency, (name) => api.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }).catch(() => undefined));
}

/** Waits until `check` is true (polling), or throws after timeoutMs. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 120_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
