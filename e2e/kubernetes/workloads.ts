// Small helpers that make test workloads the way users do: Namespaces, ServiceAccounts,
// Services, Deployments (run by the real controller-manager: ReplicaSets with a
// pod-template-hash label; the kubelet harness schedules and runs their pods) and
// `kubectl rollout restart`.
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Deployment, type V1Service } from "@kubernetes/client-node";
import { VIRTUAL_POD_PLACEMENT } from "./kubelet.js";

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/**
 * Polls `probe` every 100 ms until it gives a value; after `timeoutMs` throws naming `what`, the
 * probe's last error and what `diagnostics` says.
 */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined, diagnostics: () => Promise<string> | string = () => ""): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = (err as Error).message.split("\n")[0] ?? "";
    }
    if (Date.now() > deadline) {
      const more = await diagnostics();
      throw new Error(`${what}: not done in ${timeoutMs} ms${last ? ` (last error: ${last})` : ""}${more ? `\n${more}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Creates a namespace (labels e.g. { "istio-injection": "enabled" }) and waits for its default
 * ServiceAccount: the ServiceAccount admission plugin rejects pods until the controller-manager made it.
 */
export async function createNamespace(kubeConfig: KubeConfig, name: string, labels: Record<string, string> = {}): Promise<void> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name, labels } } });
  await until(`ServiceAccount ${name}/default`, 30_000, async () => (await core.readNamespacedServiceAccount({ name: "default", namespace: name })) ?? undefined);
}

export async function createServiceAccount(kubeConfig: KubeConfig, namespace: string, name: string): Promise<void> {
  await kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
}

export interface ServicePortSpec {
  name: string;
  port: number;
  targetPort?: number;
  appProtocol?: string;
}

/** A ClusterIP Service selecting `selector` (headless with clusterIP "None"). */
export async function createService(kubeConfig: KubeConfig, spec: {
  namespace: string; name: string; selector: Record<string, string>; ports: ServicePortSpec[]; headless?: boolean;
}): Promise<V1Service> {
  return kubeConfig.makeApiClient(CoreV1Api).createNamespacedService({
    namespace: spec.namespace,
    body: {
      metadata: { name: spec.name, labels: { app: spec.name } },
      spec: {
        selector: spec.selector,
        ...(spec.headless && { clusterIP: "None" }),
        ports: spec.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort ?? p.port, protocol: "TCP",
          ...(p.appProtocol && { appProtocol: p.appProtocol }) })),
      },
    },
  });
}

export interface DeploymentSpec {
  namespace: string;
  name: string;
  /** Pod labels; also the selector. Default { app: name }. */
  labels?: Record<string, string>;
  replicas?: number;
  /** TCP ports the pod's echo app serves. Default [8080] named "http". */
  ports?: { name: string; containerPort: number }[];
  serviceAccount?: string;
  nodeSelector?: Record<string, string>;
  /** Place the pods on the harness's virtual nodes (API objects only, no processes). */
  virtual?: boolean;
  /** Rolling update bounds. Default maxSurge 1, maxUnavailable 0 (a new pod is Ready before an old one goes). */
  maxSurge?: number;
  maxUnavailable?: number;
}

/** The Deployment's pods have one container; the kubelet harness runs an echo app on its ports. */
export async function createDeployment(kubeConfig: KubeConfig, spec: DeploymentSpec): Promise<V1Deployment> {
  const labels = spec.labels ?? { app: spec.name };
  return kubeConfig.makeApiClient(AppsV1Api).createNamespacedDeployment({
    namespace: spec.namespace,
    body: {
      metadata: { name: spec.name, labels },
      spec: {
        replicas: spec.replicas ?? 1,
        selector: { matchLabels: labels },
        strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: spec.maxSurge ?? 1, maxUnavailable: spec.maxUnavailable ?? 0 } },
        template: {
          metadata: { labels },
          spec: {
            ...(spec.serviceAccount && { serviceAccountName: spec.serviceAccount }),
            ...(spec.nodeSelector && { nodeSelector: spec.nodeSelector }),
            ...(spec.virtual && { nodeSelector: { ...VIRTUAL_POD_PLACEMENT.nodeSelector, ...spec.nodeSelector }, tolerations: VIRTUAL_POD_PLACEMENT.tolerations }),
            terminationGracePeriodSeconds: 1,
            containers: [{
              name: "app",
              image: "weft.local/echo:harness",
              ports: (spec.ports ?? [{ name: "http", containerPort: 8080 }]).map((p) => ({ ...p, protocol: "TCP" })),
            }],
          },
        },
      },
    },
  });
}

/** What `kubectl rollout restart deployment/<name>` does: a new template annotation, so a new ReplicaSet. */
export async function rolloutRestart(kubeConfig: KubeConfig, namespace: string, name: string): Promise<void> {
  await kubeConfig.makeApiClient(AppsV1Api).patchNamespacedDeployment({
    name, namespace,
    body: { spec: { template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": new Date().toISOString() } } } } },
  }, mergePatch);
}

/**
 * Waits until the Deployment's newest template is fully rolled out: observed, every replica
 * updated and available, and no old pod left (what `kubectl rollout status` waits for).
 */
export async function waitForRollout(kubeConfig: KubeConfig, namespace: string, name: string, timeoutMs = 120_000): Promise<V1Deployment> {
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  return until(`rollout of deployment ${namespace}/${name}`, timeoutMs, async () => {
    const d = await apps.readNamespacedDeployment({ name, namespace });
    const want = d.spec?.replicas ?? 1;
    const s = d.status ?? {};
    const done = (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) && (s.updatedReplicas ?? 0) === want &&
      (s.replicas ?? 0) === want && (s.availableReplicas ?? 0) === want;
    return done ? d : undefined;
  });
}
