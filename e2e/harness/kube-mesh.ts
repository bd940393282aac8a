// Weft in Kubernetes mode against the real control plane of e2e/kubernetes/ (etcd,
// kube-apiserver, kube-controller-manager) with the kubelet harness running pods as network
// namespaces with Envoy sidecars connected to Weft. Objects are applied through the API (kubectl).
import type { MeshConfig } from "../../src/api/types.js";
import { silentLogger, type Logger } from "../../src/log/logger.js";
import type { MeshModel } from "../../src/model/mesh-model.js";
import { freePort } from "../../src/runner/free-port.js";
import { startMeshRunner, type MeshRunner, type MeshRunnerOptions } from "../../src/runner/mesh-runner.js";
import { isSynced } from "../../src/runner/wait-for-sync.js";
import { FileSource } from "../../src/sources/file/file-source.js";
import { KubernetesSource } from "../../src/sources/kubernetes/kubernetes-source.js";
import { captureSupport } from "../../src/capture/iptables.js";
import { kubernetesSupport } from "../kubernetes/binaries.js";
import { startKubernetes, type KubernetesCluster, type StartKubernetesOptions } from "../kubernetes/cluster.js";
import { applyCrds } from "../kubernetes/manifests.js";
import { Kubelet, type KubeletOptions, type RunningPod, type SecureSidecar } from "../kubernetes/kubelet.js";
import { DEFAULT_TOKEN_AUDIENCE, tokenReviewClient, type TokenReviewerOptions } from "../../src/identity/kubernetes-token-review.js";
import { mkdtemp, rm } from "node:fs/promises";
import { SecretRootStore } from "../../src/sources/kubernetes/secret-root-store.js";
import os from "node:os";
import path from "node:path";

export interface KubeMesh {
  cluster: KubernetesCluster;
  runner: MeshRunner;
  /** Weft's Kubernetes source (its reflectors' counters: lists, relists after 410, watches). */
  source: KubernetesSource;
  kubelet: Kubelet;
  /** Every config Weft applied, in order (tests assert none was emptied or partial). */
  applied: MeshConfig[];
  /** kubectl apply -f - of YAML; throws with kubectl's output on failure. */
  apply(yaml: string): Promise<void>;
  kubectl(args: string[], input?: string): Promise<string>;
  /** Waits until `ready(model)` holds, then until every connected proxy ACKed its current snapshot. */
  settle(ready: (model: MeshModel) => boolean, what: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Weft with --security in Kubernetes mode: sidecars authenticate with projected ServiceAccount tokens (TokenReview). */
export interface KubeMeshSecurity {
  /** Default "istio-ca". */
  audience?: string;
  reviewer?: Omit<TokenReviewerOptions, "metrics" | "audience">;
  /** Hands out each sidecar's token (see SecureSidecar.issue). */
  issue?: SecureSidecar["issue"];
}

/** Where Weft keeps the CA root Secret in these tests (serve's defaults). */
export const CA_NAMESPACE = "istio-system";
export const CA_ROOT_SECRET = "weft-ca-root";

export async function startKubeMesh(opts: { runner?: Partial<MeshRunnerOptions>; configDir?: string; kubelet?: Omit<KubeletOptions, "sidecar">; cluster?: StartKubernetesOptions; logger?: Logger; security?: KubeMeshSecurity; onApplied?: (config: MeshConfig) => void } = {}): Promise<KubeMesh> {
  const cluster = await startKubernetes(opts.cluster);
  try {
    // Istio's API groups, as the CustomResourceDefinitions Weft ships (manifests/crds).
    await applyCrds(cluster.kubeConfig, 60_000);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  const source = new KubernetesSource({ kubeConfig: cluster.kubeConfig, logger: (opts.logger ?? silentLogger()).child({ component: "kubernetes" }), initialBackoffMs: 200, maxBackoffMs: 2000, watchServiceAccounts: Boolean(opts.security) });
  let runner: MeshRunner | undefined;
  let kubelet: Kubelet | undefined;
  const applied: MeshConfig[] = [];
  const audience = opts.security?.audience ?? DEFAULT_TOKEN_AUDIENCE;
  const stateDir = opts.security ? await mkdtemp(path.join(os.tmpdir(), "weft-kube-state-")) : undefined;
  try {
    // The CA root Secret's namespace (Istio's istiod namespace).
    if (stateDir) await cluster.kubectl(["create", "namespace", CA_NAMESPACE]);
    const xdsPort = await freePort();
    runner = await startMeshRunner({
      logger: opts.logger ?? silentLogger(),
      xdsAddress: "0.0.0.0", // the pod bridge (10.77.0.1) exists only once a pod does
      xdsPort,
      adminAddress: "127.0.0.1",
      adminPort: await freePort(),
      // Files first, as `weft serve --config-dir --kubernetes` orders them.
      sources: [...(opts.configDir ? [new FileSource(opts.configDir)] : []), source],
      onApplied: (c) => {
        applied.push(c);
        opts.onApplied?.(c);
      },
      ...(stateDir
        ? { security: { stateDir, rootStore: new SecretRootStore(cluster.kubeConfig, CA_NAMESPACE, CA_ROOT_SECRET), cluster: { kubeConfig: cluster.kubeConfig, namespace: CA_NAMESPACE, publishResyncMs: 1000 }, podTokens: { send: tokenReviewClient(cluster.kubeConfig), pods: source, serviceAccounts: source, reviewer: { ...opts.security?.reviewer, audience } } } }
        : {}),
      ...opts.runner,
    });
    const sec = runner.security;
    kubelet = await Kubelet.start(cluster.kubeConfig, {
      ...opts.kubelet,
      sidecar: {
        xdsPort: runner.cp.xdsPort,
        ...(sec && opts.security ? { secure: { caFile: sec.trustBundleFile, sni: sec.serverName, audience, ...(opts.security.issue ? { issue: opts.security.issue } : {}) } } : {}),
      },
    });
  } catch (err) {
    await kubelet?.stop().catch(() => {});
    await runner?.close(200).catch(() => {});
    await cluster.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
    throw err;
  }
  const r = runner;
  const k = kubelet;
  const kubectl = async (args: string[], input?: string): Promise<string> => {
    const res = await cluster.kubectl(args, input !== undefined ? { input } : {});
    if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${res.code}): ${res.stderr || res.stdout}`);
    return res.stdout;
  };
  return {
    cluster,
    runner: r,
    source,
    kubelet: k,
    applied,
    kubectl,
    apply: async (yaml) => void (await kubectl(["apply", "-f", "-"], yaml)),
    async settle(ready, what, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!ready(r.controller.currentModel)) {
        if (Date.now() > deadline) throw new Error(`Weft's model never showed ${what} within ${timeoutMs} ms`);
        await sleep(50);
      }
      for (;;) {
        const proxies = r.cp.xds.registry.list();
        const lagging = proxies.filter((p) => {
          const snap = r.cp.cache.get(p.snapshotKey);
          return !snap || !isSynced(r.cp.xds.registry, p.nodeId, snap);
        });
        if (lagging.length === 0) return;
        if (Date.now() > deadline) throw new Error(`after ${what}: ${lagging.map((p) => p.nodeId).join(", ")} did not ACK within ${timeoutMs} ms`);
        await sleep(50);
      }
    },
    async stop() {
      await k.stop().catch(() => {});
      await r.close(200).catch(() => {});
      await cluster.stop();
      if (stateDir) await rm(stateDir, { recursive: true, force: true });
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The pod that answered a request through the mesh (the echo app's JSON `pod`). */
export function answeredBy(body: string): string {
  return (JSON.parse(body) as { pod: string }).pod;
}

/** Which pods answered `n` requests from `client` to host:port (Host header `authority`). */
export async function spread(client: RunningPod, target: { ip: string; port: number; authority: string; path?: string }, n: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const res = await client.fetch({ host: target.ip, port: target.port, path: target.path ?? "/", headers: { host: target.authority }, timeoutMs: 5000 });
    if (res.status !== 200) throw new Error(`request ${i + 1} to ${target.authority} answered ${res.status}: ${res.body.slice(0, 200)}`);
    const pod = answeredBy(res.body);
    seen.set(pod, (seen.get(pod) ?? 0) + 1);
  }
  return seen;
}

/** Why Kubernetes e2e tests cannot run here ("" when they can): transparent capture and the built binaries. */
export async function kubeMeshUnavailable(): Promise<string> {
  const support = await captureSupport();
  if (!support.transparent) return support.reason ?? "transparent capture is not available";
  const k8s = kubernetesSupport();
  return k8s.available ? "" : (k8s.reason ?? "the Kubernetes test fixture is not available");
}

/** A Pod for the kubelet harness: its echo app serves `ports`. */
export function podYaml(p: { name: string; namespace: string; labels: Record<string, string>; serviceAccount?: string; ports?: number[] }): string {
  return `apiVersion: v1
kind: Pod
metadata: { name: ${p.name}, namespace: ${p.namespace}, labels: ${JSON.stringify(p.labels)} }
spec:
${p.serviceAccount ? `  serviceAccountName: ${p.serviceAccount}\n` : ""}  containers: [{ name: app, image: weft.dev/echo, ports: [${(p.ports ?? []).map((n) => `{ containerPort: ${n} }`).join(", ")}] }]
`;
}
