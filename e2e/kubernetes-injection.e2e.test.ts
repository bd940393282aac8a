// Sidecar injection (issue 13 §1) against the REAL kube-apiserver: Weft's injector (POST /inject on
// the webhook's HTTPS server, certificate from Weft's CA) registered by Weft in a
// MutatingWebhookConfiguration (clientConfig.url https://127.0.0.1:PORT/inject). Pods created in a
// labelled namespace — one by a Deployment's ReplicaSet (generateName), one plain — are stored with
// istio-init and the native sidecar istio-proxy; the kubelet harness runs them FROM THE STORED SPEC
// (injected-pod.ts: `weft capture apply` with the init container's args, real Envoy with the
// injected bootstrap and its projected token / root ConfigMap volumes, the app after the sidecar's
// startupProbe): they authenticate with their pod's token, get certificates and talk over mTLS.
// Opt-outs, revisions, re-injection and a refused annotation are checked on pods that never run.
//
//   flock /tmp/weft-pods.lock npx vitest run e2e/kubernetes-injection.e2e.test.ts
import { AdmissionregistrationV1Api, CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bridgeAddress } from "../src/capture/pod-network.js";
import { silentLogger } from "../src/log/logger.js";
import { freePort } from "../src/runner/free-port.js";
import { alwaysLeader } from "../src/runner/leader-election.js";
import { startAdmissionWebhook, type AdmissionWebhook } from "../src/webhook/admission-webhook.js";
import { DEFAULT_INJECTION_CONFIGURATION_NAME } from "../src/webhook/inject-configuration.js";
import { DEFAULT_INJECTION_SETTINGS, INIT_CONTAINER, PROXY_CONTAINER } from "../src/webhook/inject-sidecar.js";
import { answeredBy, kubeMeshUnavailable, startKubeMesh, type KubeMesh } from "./harness/kube-mesh.js";
import { VIRTUAL_POD_PLACEMENT, type RunningPod } from "./kubernetes/kubelet.js";

const unavailable = await kubeMeshUnavailable();
const runnable = unavailable === "";
if (!runnable) process.stderr.write(`kubernetes-injection e2e skipped: ${unavailable}\n`);

const NS = "shop";

/** A pod that never runs (virtual node): only what the apiserver stored matters. */
const storedOnly = (name: string, namespace: string, extra: { labels?: Record<string, string>; annotations?: Record<string, string>; hostNetwork?: boolean } = {}) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace, labels: { app: name, ...extra.labels }, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
  spec: { ...VIRTUAL_POD_PLACEMENT, ...(extra.hostNetwork ? { hostNetwork: true } : {}), containers: [{ name: "app", image: "weft.dev/echo" }] },
});

const BASE = `
apiVersion: v1
kind: Namespace
metadata: { name: ${NS}, labels: { istio-injection: enabled } }
---
apiVersion: v1
kind: Namespace
metadata: { name: plain }
---
apiVersion: v1
kind: Namespace
metadata: { name: canary, labels: { istio.io/rev: default } }
---
apiVersion: v1
kind: Namespace
metadata: { name: quiet, labels: { istio-injection: disabled } }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: web, namespace: ${NS} }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: client, namespace: ${NS} }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: ${NS} }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 8080, targetPort: 8080 }]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: ${NS} }
spec: { mtls: { mode: STRICT } }
`;

const WORKLOADS = `
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: ${NS} }
spec:
  replicas: 1
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web, version: v1 } }
    spec:
      serviceAccountName: web
      nodeSelector: { kubernetes.io/hostname: node-a }
      containers:
      - name: web
        image: weft.dev/echo
        ports: [{ name: http, containerPort: 8080 }]
        # Under STRICT mTLS the kubelet's plaintext probe works only through the rewrite to :15021.
        readinessProbe: { httpGet: { path: /healthz, port: http }, periodSeconds: 1 }
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: ${NS}, labels: { app: client } }
spec:
  serviceAccountName: client
  nodeSelector: { kubernetes.io/hostname: node-a }
  containers: [{ name: client, image: weft.dev/echo }]
`;

async function eventually<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000, diagnose?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not seen in ${timeoutMs} ms${diagnose ? `\n${diagnose()}` : ""}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const names = (list: { name: string }[] | undefined) => (list ?? []).map((c) => c.name);

describe.skipIf(!runnable)("sidecar injection (real kube-apiserver, pods run from the stored spec)", () => {
  let mesh: KubeMesh;
  let webhook: AdmissionWebhook;
  let core: CoreV1Api;
  const metrics = new Registry();
  let web: RunningPod;
  let client: RunningPod;
  let webPod: V1Pod;

  beforeAll(async () => {
    mesh = await startKubeMesh({ security: {}, kubelet: { nodes: [{ name: "node-a" }, { name: "node-v", virtual: true }] } });
    core = mesh.cluster.kubeConfig.makeApiClient(CoreV1Api);
    const sec = mesh.runner.security!;
    const port = await freePort();
    webhook = await startAdmissionWebhook({
      ca: sec.ca, kubeConfig: mesh.cluster.kubeConfig, leadership: alwaysLeader(), logger: silentLogger(), metrics,
      target: { url: `https://127.0.0.1:${port}/validate` }, address: "127.0.0.1", port, checkIntervalMs: 1000, reconcileIntervalMs: 2000,
      injection: {
        settings: {
          ...DEFAULT_INJECTION_SETTINGS,
          image: "weft.dev/weft:e2e",
          // No cluster DNS here: sidecars dial Weft at the pod bridge, with TLS to its service name.
          xdsAddress: bridgeAddress(),
          xdsPort: mesh.runner.cp.xdsPort,
          xdsServerName: sec.serverName,
        },
      },
    });
    await mesh.apply(BASE);
    // The apiserver reads new webhook configurations within about a second: wait until a
    // server-side dry run of a pod in the labelled namespace comes back injected.
    await eventually("the apiserver calling the injector", async () => {
      const dry = await core.createNamespacedPod({ namespace: NS, body: storedOnly("probe", NS) as V1Pod, dryRun: "All" }).catch(() => undefined);
      return dry?.spec?.initContainers?.some((c) => c.name === PROXY_CONTAINER) ? true : undefined;
    }, 30_000);
    await mesh.apply(WORKLOADS);
    webPod = await eventually("the Deployment's pod", async () => (await core.listNamespacedPod({ namespace: NS, labelSelector: "app=web" })).items[0], 60_000);
    web = await mesh.kubelet.waitForPod(NS, webPod.metadata!.name!, { timeoutMs: 120_000 });
    client = await mesh.kubelet.waitForPod(NS, "client", { timeoutMs: 120_000 });
  }, 300_000);

  afterAll(async () => {
    expect(mesh?.kubelet.errors ?? []).toEqual([]);
    await webhook?.close();
    await mesh?.stop();
  }, 60_000);

  it("the stored pods have istio-init and the native sidecar istio-proxy (the apiserver called Weft over HTTPS)", async () => {
    for (const name of [webPod.metadata!.name!, "client"]) {
      const pod = await core.readNamespacedPod({ name, namespace: NS });
      expect(names(pod.spec!.initContainers)).toEqual([INIT_CONTAINER, PROXY_CONTAINER]);
      const proxy = pod.spec!.initContainers![1]!;
      expect(proxy.restartPolicy).toBe("Always");
      expect(proxy.startupProbe?.httpGet?.port).toBe(15021);
      expect(pod.spec!.initContainers![0]!.securityContext?.capabilities?.add).toEqual(["NET_ADMIN", "NET_RAW"]);
      expect(names(pod.spec!.volumes)).toEqual(expect.arrayContaining(["istio-token", "istiod-ca-cert"]));
      expect(pod.metadata!.labels!["security.istio.io/tlsMode"]).toBe("istio");
      expect(pod.metadata!.annotations!["sidecar.istio.io/status"]).toContain(PROXY_CONTAINER);
    }
    // The Deployment's pod had no name at admission: its bootstrap names it through $(POD_NAME).
    expect(webPod.metadata!.generateName).toMatch(/^web-/);
    const mutating = await mesh.cluster.kubeConfig.makeApiClient(AdmissionregistrationV1Api).readMutatingWebhookConfiguration({ name: DEFAULT_INJECTION_CONFIGURATION_NAME });
    expect(mutating.webhooks!.map((w) => w.clientConfig.url)).toEqual(Array(4).fill(expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+\/inject$/)));
    expect(await metrics.metrics()).toMatch(/weft_sidecar_injections_total\{outcome="injected"\} [1-9]/);
  });

  it("the harness ran them from the spec: capture, then the sidecar, the app only after the sidecar's startupProbe", () => {
    for (const pod of [web, client]) {
      expect(pod.events).toEqual([
        "init istio-init: capture applied",
        "sidecar istio-proxy: started",
        "sidecar istio-proxy: startupProbe passed",
        "app started",
      ]);
    }
  });

  it("each sidecar connected with its pod's token, got its certificate, and the two talk over mTLS", async () => {
    const proxyOf = (pod: RunningPod, name: string) => mesh.runner.cp.xds.registry.list().find((p) => p.nodeId === `sidecar~${pod.ip}~${name}.${NS}~${NS}.svc.cluster.local`);
    const webProxy = await eventually("web's sidecar connected", () => proxyOf(web, webPod.metadata!.name!));
    const clientProxy = await eventually("client's sidecar connected", () => proxyOf(client, "client"));
    expect(webProxy.principal).toBe(`pod:${NS}/${webPod.metadata!.name}/${webPod.metadata!.uid}`);
    expect(clientProxy.principal).toMatch(new RegExp(`^pod:${NS}/client/`));
    expect(mesh.runner.controller.certificateOf(webProxy.snapshotKey)?.identity).toBe(`spiffe://cluster.local/ns/${NS}/sa/web`);
    expect(mesh.runner.controller.certificateOf(clientProxy.snapshotKey)?.identity).toBe(`spiffe://cluster.local/ns/${NS}/sa/client`);
    const ip = (await core.readNamespacedService({ name: "web", namespace: NS })).spec!.clusterIP!;
    await mesh.settle((m) => m.serviceByHost.get(`web.${NS}.svc.cluster.local`)?.endpoints.length === 1, "web with its endpoint", 60_000);
    const res = await eventually("a 200 from web through both injected sidecars", async () => {
      const r = await client.fetch({ host: ip, port: 8080, headers: { host: "web:8080" }, timeoutMs: 5000 });
      return r.status === 200 ? r : undefined;
    }, 60_000, () => `web: ${web.envoy?.logTail(20)}\nclient: ${client.envoy?.logTail(20)}`);
    expect(answeredBy(res.body)).toBe(webPod.metadata!.name);
    const xfcc = String((JSON.parse(res.body) as { headers: Record<string, string> }).headers["x-forwarded-client-cert"] ?? "");
    expect(xfcc).toContain(`By=spiffe://cluster.local/ns/${NS}/sa/web`);
    expect(xfcc).toContain(`URI=spiffe://cluster.local/ns/${NS}/sa/client`);
    // STRICT: a request from outside the mesh (the node) to the pod's port is not served in plaintext,
    // so the app's probe as written would fail; rewritten, the kubelet's probe reaches the app.
    const plain = await fetch(`http://${web.ip}:8080/healthz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, () => "refused");
    expect(plain).not.toBe(200);
    const stored = await core.readNamespacedPod({ name: webPod.metadata!.name!, namespace: NS });
    expect(stored.spec!.containers[0]!.readinessProbe!.httpGet).toEqual({ path: "/app-health/web/readyz", port: 15021, scheme: "HTTP" });
    const probed = await fetch(`http://${web.ip}:15021/app-health/web/readyz`, { signal: AbortSignal.timeout(5000) });
    expect(probed.status).toBe(200);
    expect((await probed.json() as { path: string }).path).toBe("/healthz");
  });

  it("opt-outs and selection: annotation, hostNetwork, unlabelled / disabled namespaces, pod label, revision label", async () => {
    const create = async (body: object) => {
      const p = body as V1Pod;
      return core.createNamespacedPod({ namespace: p.metadata!.namespace!, body: p });
    };
    const hasSidecar = (p: V1Pod) => names(p.spec!.initContainers).includes(PROXY_CONTAINER);
    expect(hasSidecar(await create(storedOnly("optout", NS, { annotations: { "sidecar.istio.io/inject": "false" } })))).toBe(false);
    expect(hasSidecar(await create(storedOnly("optout-label", NS, { labels: { "sidecar.istio.io/inject": "false" } })))).toBe(false);
    expect(hasSidecar(await create(storedOnly("hostnet", NS, { hostNetwork: true })))).toBe(false);
    expect(hasSidecar(await create(storedOnly("bare", "plain")))).toBe(false);
    expect(hasSidecar(await create(storedOnly("opted-in", "plain", { labels: { "sidecar.istio.io/inject": "true" } })))).toBe(true);
    expect(hasSidecar(await create(storedOnly("rev-pod", "plain", { labels: { "istio.io/rev": "default" } })))).toBe(true);
    expect(hasSidecar(await create(storedOnly("other-rev", "plain", { labels: { "istio.io/rev": "canary" } })))).toBe(false);
    expect(hasSidecar(await create(storedOnly("in-canary", "canary")))).toBe(true);
    expect(hasSidecar(await create(storedOnly("disabled-ns", "quiet", { labels: { "sidecar.istio.io/inject": "true" } })))).toBe(false);
  });

  it("an injected spec created again is not injected twice", async () => {
    const stored = await core.readNamespacedPod({ name: "opted-in", namespace: "plain" });
    const again = await core.createNamespacedPod({
      namespace: "plain",
      body: { apiVersion: "v1", kind: "Pod", metadata: { name: "opted-in-again", namespace: "plain", labels: stored.metadata!.labels, annotations: stored.metadata!.annotations }, spec: { ...stored.spec!, nodeName: undefined } },
    });
    expect(names(again.spec!.initContainers)).toEqual([INIT_CONTAINER, PROXY_CONTAINER]);
    expect(names(again.spec!.volumes).filter((n) => n === "istio-token")).toHaveLength(1);
  });

  it("a bad override is refused by the apiserver with Weft's message naming the annotation", async () => {
    const res = await mesh.cluster.kubectl(["apply", "-f", "-"], { input: JSON.stringify(storedOnly("loud", NS, { annotations: { "sidecar.istio.io/logLevel": "loud" } })) });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("admission webhook \"namespace.sidecar-injector.weft.io\" denied the request");
    expect(res.stderr).toContain("annotation sidecar.istio.io/logLevel: expected one of trace, debug, info, warning, error, critical, off, got \"loud\"");
  });

  it("admission cost, printed (not asserted): a pod create with the injector vs without (server-side dry run, N=20 each)", async () => {
    const timeCreates = async (namespace: string) => {
      const ms: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        const pod = await core.createNamespacedPod({ namespace, body: storedOnly(`timing-${i}`, namespace) as V1Pod, dryRun: "All" });
        ms.push(performance.now() - t);
        expect(names(pod.spec!.initContainers).includes(PROXY_CONTAINER)).toBe(namespace === NS);
      }
      ms.sort((a, b) => a - b);
      return { p50: ms[10]!, max: ms[19]! };
    };
    const without = await timeCreates("plain");
    const injected = await timeCreates(NS);
    process.stderr.write(`pod create (dry run) p50/max: with injection ${injected.p50.toFixed(1)}/${injected.max.toFixed(1)} ms, without ${without.p50.toFixed(1)}/${without.max.toFixed(1)} ms\n`);
  });

  it("the MutatingWebhookConfiguration is kept: a deleted one is put back with Weft's caBundle", async () => {
    const admission = mesh.cluster.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    const before = webhook.injectionKeeper!.writes;
    await admission.deleteMutatingWebhookConfiguration({ name: DEFAULT_INJECTION_CONFIGURATION_NAME });
    const restored = await eventually("the configuration recreated", async () => {
      const c = await admission.readMutatingWebhookConfiguration({ name: DEFAULT_INJECTION_CONFIGURATION_NAME }).catch(() => undefined);
      return c && webhook.injectionKeeper!.writes > before ? c : undefined;
    }, 30_000);
    const bundle = Buffer.from(restored.webhooks![0]!.clientConfig.caBundle as unknown as string, "base64").toString("utf8");
    expect(bundle).toBe(mesh.runner.security!.ca.trustBundlePem());
  });

  it("at deletion the app is stopped before its sidecar (the proxy outlives the app)", async () => {
    await mesh.kubectl(["delete", "pod", "client", "-n", NS, "--wait=false"]);
    await eventually("client stopped", () => (client.events.includes("sidecar stopped") ? true : undefined), 60_000);
    expect(client.events.slice(-2)).toEqual(["app stopped", "sidecar stopped"]);
  });
});
