// Loading a real API server (e2e/kubernetes/cluster.ts) with the objects the Kubernetes
// benchmarks watch: Services, Pods with status.podIP set through the status subresource (no
// kubelet runs them), EndpointSlices (the controller-manager's, or written directly).
import { CoreV1Api, CustomObjectsApi, DiscoveryV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from "@kubernetes/client-node";

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

/** 10.<a>.<b>.<c> for pod number i (distinct for i < 2^24). */
export function podIp(i: number, base = 10): string {
  return `${base}.${(i >> 16) & 255}.${(i >> 8) & 255}.${(i & 255) + 0}`;
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
 * Pod `<prefix>-<i>` for service svc-<i % services>, with typical labels, running and ready as far
 * as the API says (status set through the status subresource).
 */
export async function createPods(api: LoadApis, namespace: string, opts: { from: number; count: number; services: number; prefix?: string; ipBase?: number }, concurrency = 8): Promise<void> {
  const prefix = opts.prefix ?? "pod";
  await inParallel(Array.from({ length: opts.count }, (_, k) => opts.from + k), concurrency, async (i) => {
    const name = `${prefix}-${i}`;
    const app = `svc-${i % opts.services}`;
    await api.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name, labels: { app, version: "v1", "pod-template-hash": `h${i % 97}`, "security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name": app } },
        spec: { serviceAccountName: "default", containers: [{ name: "app", image: "weft.dev/echo", ports: [{ containerPort: 8080 }] }] },
      },
    });
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    await api.core.patchNamespacedPodStatus(
      {
        name,
        namespace,
        body: { status: { phase: "Running", podIP: podIp(i, opts.ipBase), podIPs: [{ ip: podIp(i, opts.ipBase) }], conditions: [{ type: "Ready", status: "True", lastTransitionTime: now }] } },
      },
      MERGE_PATCH,
    );
  });
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
