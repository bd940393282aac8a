// The Kubernetes test fixture itself, against the REAL kube-apiserver and kube-controller-manager
// (built by scripts/cached-go-build.sh kubernetes) and etcd: Weft's Istio CRDs apply and Istio manifests apply
// unchanged; a Service selecting a pod run by the kubelet harness (a network namespace) gets an
// EndpointSlice with that pod's IP from the controller-manager; Deployments roll; injected pods get
// an Envoy sidecar and turn Ready once it has its configuration from Weft; TokenRequest and
// TokenReview work; and stopping leaves no process, directory or network namespace behind.
//
// Creates pods: run it under the machine-wide lock:
//   flock /tmp/weft-pods.lock npx vitest run e2e/kubernetes-fixture.e2e.test.ts
import { spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { AuthenticationV1Api, CoreV1Api, CustomObjectsApi, DiscoveryV1Api, KubernetesObjectApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ISTIO_KINDS } from "../src/api/kind-registry.js";
import { cleanupLeftovers, listPodNamespaces } from "../src/capture/pod-network.js";
import { httpGet } from "./harness/http.js";
import { TestMesh } from "./harness/mesh.js";
import { kubernetesSupport } from "./kubernetes/binaries.js";
import { cleanupKubernetesLeftovers, startKubernetes, type KubernetesCluster } from "./kubernetes/cluster.js";
import { Kubelet } from "./kubernetes/kubelet.js";
import { applyCrds, applyYaml, crdFiles } from "./kubernetes/manifests.js";
import { createDeployment, createNamespace, createService, createServiceAccount, rolloutRestart, waitForRollout } from "./kubernetes/workloads.js";

const support = kubernetesSupport();
const note = support.available ? "" : ` (skipped: ${support.reason})`;
if (!support.available) process.stderr.write(`kubernetes fixture e2e skipped: ${support.reason}\n`);

const BOOKINFO = path.resolve(import.meta.dirname, "..", "src", "api", "testdata", "bookinfo");

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not seen in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function netnsOf(): Promise<string[]> {
  return listPodNamespaces().then((list) => list.map((n) => n.netns));
}

describe.skipIf(!support.available)(`Kubernetes test fixture${note}`, () => {
  let cluster: KubernetesCluster;
  let kubelet: Kubelet;
  let mesh: TestMesh | undefined;
  const namespacesBefore: string[] = [];

  beforeAll(async () => {
    namespacesBefore.push(...(await netnsOf()));
    cluster = await startKubernetes();
    process.stderr.write(`test cluster ready in ${cluster.startupMs} ms (${cluster.binaries.version})\n`);
    // Weft as the pods' xDS server, listening where pods reach the host.
    mesh = await TestMesh.start({}, { transparent: true });
    kubelet = await Kubelet.start(cluster.kubeConfig, {
      nodes: [
        { name: "node-a", labels: { "topology.kubernetes.io/region": "r1", "topology.kubernetes.io/zone": "z1" } },
        { name: "virtual-a", labels: { "topology.kubernetes.io/zone": "z2" }, virtual: true },
      ],
      sidecar: { xdsPort: mesh.cp.xdsPort },
    });
  }, 180_000);

  afterAll(async () => {
    await kubelet?.stop();
    await mesh?.close();
    await cluster?.stop();
  });

  it("serves the version it was built at", async () => {
    const version = await cluster.kubectl(["version", "-o", "json"]);
    expect(version.code, version.stderr).toBe(0);
    const parsed = JSON.parse(version.stdout) as { clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string } };
    expect(parsed.serverVersion.gitVersion).toBe(cluster.binaries.version);
    expect(parsed.clientVersion.gitVersion).toBe(cluster.binaries.version);
  });

  it("applies Weft's Istio CRDs, and Istio manifests apply unchanged (nothing pruned)", async () => {
    const names = await applyCrds(cluster.kubeConfig);
    // One CRD per kind of the kind registry (Weft reads exactly these).
    expect(names.sort()).toEqual(ISTIO_KINDS.map((k) => `${k.plural}.${k.group}`).sort());
    expect(names).toContain("virtualservices.networking.istio.io");
    const objects = KubernetesObjectApi.makeApiClient(cluster.kubeConfig);
    for (const file of readdirSync(BOOKINFO).filter((f) => f.endsWith(".yaml"))) {
      const text = readFileSync(path.join(BOOKINFO, file), "utf8");
      await applyYaml(cluster.kubeConfig, text, { namespace: "default", where: file });
      // Every spec reads back exactly as written, in the version it was written in.
      for (const doc of text.split(/^---$/m).map((d) => parse(d) as { apiVersion: string; kind: string; metadata: { name: string }; spec: unknown } | null)) {
        if (!doc) continue;
        const stored = await objects.read({ apiVersion: doc.apiVersion, kind: doc.kind, metadata: { name: doc.metadata.name, namespace: "default" } }) as { spec: unknown };
        expect(stored.spec, `${file}: ${doc.kind}/${doc.metadata.name}`).toEqual(doc.spec);
      }
    }
    // kubectl's short names and categories, as with Istio's CRDs.
    const list = await cluster.kubectl(["get", "vs,dr,gw,se", "-n", "default", "-o", "name"]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain("virtualservice.networking.istio.io/reviews");
    const category = await cluster.kubectl(["get", "istio-io", "-A", "-o", "name"]);
    expect(category.stdout).toContain("destinationrule.networking.istio.io/");
  });

  it("keeps fields Weft does not model and rejects wrong types with the field named", async () => {
    await applyCrds(cluster.kubeConfig); // idempotent: this test also runs alone
    const custom = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
    const body = {
      apiVersion: "networking.istio.io/v1beta1", kind: "VirtualService", metadata: { name: "unknown-fields", namespace: "default" },
      // mirrorPercent (a deprecated Istio field) and a future field: kept for Weft's validation to report.
      spec: { hosts: ["a"], http: [{ route: [{ destination: { host: "a" } }], mirrorPercent: 5, someFutureField: { x: 1 } }] },
    };
    await custom.createNamespacedCustomObject({ group: "networking.istio.io", version: "v1beta1", namespace: "default", plural: "virtualservices", body });
    const stored = await custom.getNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: "default", plural: "virtualservices", name: "unknown-fields" }) as typeof body;
    expect(stored.spec).toEqual(body.spec);
    const bad = { ...body, apiVersion: "networking.istio.io/v1", metadata: { name: "bad-type", namespace: "default" }, spec: { hosts: "not-a-list" } };
    const err = await custom.createNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: "default", plural: "virtualservices", body: bad })
      .then(() => undefined, (e: { code?: number; body?: unknown }) => e);
    expect(err?.code).toBe(422);
    expect(String(err?.body)).toContain("spec.hosts");
    // kubectl's client-side apply with strict field validation accepts Istio manifests too.
    const applied = await cluster.kubectl(["apply", "-f", path.join(BOOKINFO, "reviews.yaml")]);
    expect(applied.code, applied.stderr).toBe(0);
    for (const file of crdFiles()) expect(existsSync(file)).toBe(true);
  });

  it("runs a pod as a network namespace whose IP the controller-manager puts in the Service's EndpointSlice", async () => {
    await createNamespace(cluster.kubeConfig, "smoke");
    await createServiceAccount(cluster.kubeConfig, "smoke", "echo");
    await createService(cluster.kubeConfig, { namespace: "smoke", name: "echo", selector: { app: "echo" }, ports: [{ name: "http", port: 80, targetPort: 8080 }] });
    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: "smoke",
      body: {
        metadata: { name: "echo-1", labels: { app: "echo", version: "v1" } },
        spec: { serviceAccountName: "echo", containers: [{ name: "app", image: "weft.local/echo:harness", ports: [{ name: "http", containerPort: 8080 }] }] },
      },
    });
    const running = await kubelet.waitForPod("smoke", "echo-1");
    expect(running.envoy).toBeUndefined(); // namespace not labeled for injection
    const pod = await core.readNamespacedPod({ name: "echo-1", namespace: "smoke" });
    expect(pod.spec?.nodeName).toBe("node-a");
    expect(pod.status?.podIP).toBe(running.ip);

    // The app really runs at that IP.
    const direct = await httpGet(`http://${running.ip}:8080/hello`);
    expect(direct.status).toBe(200);
    expect(JSON.parse(direct.body)).toMatchObject({ pod: "echo-1", namespace: "smoke", ip: running.ip, path: "/hello" });

    const discovery = cluster.kubeConfig.makeApiClient(DiscoveryV1Api);
    const slice = await eventually("EndpointSlice of smoke/echo with the pod's IP", async () => {
      const slices = await discovery.listNamespacedEndpointSlice({ namespace: "smoke", labelSelector: "kubernetes.io/service-name=echo" });
      return slices.items.find((s) => s.endpoints?.some((e) => e.addresses.includes(running.ip) && e.conditions?.ready === true));
    });
    const endpoint = slice.endpoints!.find((e) => e.addresses.includes(running.ip))!;
    expect(endpoint.targetRef).toMatchObject({ kind: "Pod", name: "echo-1", namespace: "smoke" });
    expect(endpoint.nodeName).toBe("node-a");
    expect(endpoint.zone).toBe("z1");
    expect(slice.ports).toEqual([expect.objectContaining({ name: "http", port: 8080 })]);

    // Readiness drives the slice.
    await kubelet.setReady("smoke", "echo-1", false);
    await eventually("endpoint not ready", async () => {
      const slices = await discovery.listNamespacedEndpointSlice({ namespace: "smoke", labelSelector: "kubernetes.io/service-name=echo" });
      return slices.items.some((s) => s.endpoints?.some((e) => e.addresses.includes(running.ip) && e.conditions?.ready === false)) ? true : undefined;
    });
    await kubelet.setReady("smoke", "echo-1", true);

    // TokenRequest (bound to the pod) and TokenReview.
    const token = await cluster.createToken("smoke", "echo", { boundPod: { name: "echo-1", uid: pod.metadata!.uid! } });
    const auth = cluster.kubeConfig.makeApiClient(AuthenticationV1Api);
    const review = await auth.createTokenReview({ body: { spec: { token, audiences: [cluster.serviceAccountIssuer] } } });
    expect(review.status?.authenticated).toBe(true);
    expect(review.status?.user?.username).toBe("system:serviceaccount:smoke:echo");
    expect(review.status?.user?.extra?.["authentication.kubernetes.io/pod-name"]).toEqual(["echo-1"]);

    // Deleting the pod stops it (namespace gone) and removes its endpoint.
    await core.deleteNamespacedPod({ name: "echo-1", namespace: "smoke" });
    await eventually("pod echo-1 gone from the API", async () =>
      core.readNamespacedPod({ name: "echo-1", namespace: "smoke" }).then(() => undefined, () => true));
    expect(await netnsOf()).not.toContain(running.net.netns);
    await eventually("endpoint removed", async () => {
      const slices = await discovery.listNamespacedEndpointSlice({ namespace: "smoke", labelSelector: "kubernetes.io/service-name=echo" });
      return slices.items.every((s) => !(s.endpoints ?? []).some((e) => e.addresses.includes(running.ip))) ? true : undefined;
    });
    expect(kubelet.errors).toEqual([]);
  });

  it("rolls a Deployment: pods with a new pod-template-hash replace the old ones", async () => {
    await createNamespace(cluster.kubeConfig, "apps");
    await createDeployment(cluster.kubeConfig, { namespace: "apps", name: "web", replicas: 2 });
    await waitForRollout(cluster.kubeConfig, "apps", "web");
    const hashes = () => new Set(kubelet.runningPods().filter((p) => p.namespace === "apps").map((p) => p.labels["pod-template-hash"]));
    const first = hashes();
    expect(first.size).toBe(1);
    expect(kubelet.runningPods().filter((p) => p.namespace === "apps")).toHaveLength(2);
    await rolloutRestart(cluster.kubeConfig, "apps", "web");
    await waitForRollout(cluster.kubeConfig, "apps", "web");
    await eventually("only the new pods run", async () => {
      const now = hashes();
      return now.size === 1 && ![...now].some((h) => first.has(h)) && kubelet.runningPods().filter((p) => p.namespace === "apps").length === 2 ? true : undefined;
    });
    expect(kubelet.errors).toEqual([]);
  });

  it("injects an Envoy sidecar in labeled namespaces; the pod is Ready once Envoy has Weft's configuration", async () => {
    await createNamespace(cluster.kubeConfig, "mesh", { "istio-injection": "enabled" });
    await createDeployment(cluster.kubeConfig, { namespace: "mesh", name: "ratings" });
    await waitForRollout(cluster.kubeConfig, "mesh", "ratings");
    const [pod] = kubelet.runningPods().filter((p) => p.namespace === "mesh");
    expect(pod?.envoy).toBeDefined();
    expect(pod!.nodeId).toBe(`sidecar~${pod!.ip}~${pod!.name}.mesh~mesh.svc.cluster.local`);
    expect((await pod!.envoy!.adminRequest("/ready")).status).toBe(200);
    const listeners = (await pod!.envoy!.listeners()).map((l) => l.name);
    expect(listeners.length).toBeGreaterThan(0); // from Weft over xDS
    expect(kubelet.errors).toEqual([]);
  });

  it("runs pods on a virtual node as API objects only (many pods, no processes)", async () => {
    await createNamespace(cluster.kubeConfig, "scale");
    await createDeployment(cluster.kubeConfig, { namespace: "scale", name: "many", replicas: 30, virtual: true, maxSurge: 30 });
    await createService(cluster.kubeConfig, { namespace: "scale", name: "many", selector: { app: "many" }, ports: [{ name: "http", port: 80, targetPort: 8080 }] });
    await waitForRollout(cluster.kubeConfig, "scale", "many");
    const ips = new Set(kubelet.virtualPods().filter((p) => p.namespace === "scale").map((p) => p.ip));
    expect(ips.size).toBe(30);
    expect([...ips].every((ip) => ip.startsWith("10.78."))).toBe(true);
    expect(kubelet.runningPods().filter((p) => p.namespace === "scale")).toEqual([]);
    const discovery = cluster.kubeConfig.makeApiClient(DiscoveryV1Api);
    await eventually("30 ready endpoints in zone z2", async () => {
      const slices = await discovery.listNamespacedEndpointSlice({ namespace: "scale", labelSelector: "kubernetes.io/service-name=many" });
      const ready = slices.items.flatMap((sl) => sl.endpoints ?? []).filter((e) => e.conditions?.ready && e.zone === "z2" && ips.has(e.addresses[0]!));
      return ready.length === 30 ? true : undefined;
    });
    expect(kubelet.errors).toEqual([]);
  });

  it("compacts etcd (an old resourceVersion gets 410 Gone) and restarts the apiserver (the harness keeps working)", async () => {
    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    const before = await core.listNamespacedPod({ namespace: "apps" });
    const oldVersion = before.metadata!.resourceVersion!;
    await core.createNamespacedConfigMap({ namespace: "apps", body: { metadata: { name: "bump" } } });
    await cluster.compactEtcd();
    const gone = await core.listNamespacedPod({ namespace: "apps", resourceVersion: oldVersion, resourceVersionMatch: "Exact" })
      .then(() => undefined, (e: { code?: number }) => e.code);
    expect(gone).toBe(410);

    const apiserverPid = cluster.pid("kube-apiserver");
    await cluster.restart("kube-apiserver");
    expect(cluster.pid("kube-apiserver")).not.toBe(apiserverPid);
    await core.createNamespacedPod({
      namespace: "apps",
      body: { metadata: { name: "after-restart", labels: { app: "after" } }, spec: { containers: [{ name: "app", image: "weft.local/echo:harness", ports: [{ containerPort: 8080 }] }] } },
    });
    const running = await kubelet.waitForPod("apps", "after-restart");
    expect((await httpGet(`http://${running.ip}:8080/`)).status).toBe(200);
    expect(kubelet.errors).toEqual([]);
  });

  it("removes what a killed run left (cluster directory, owner record, pod namespaces) at the next start", async () => {
    const script = path.join(await mkdtemp(path.join(os.tmpdir(), "weft-crash-")), "crash.mts");
    const here = path.resolve(import.meta.dirname, "kubernetes");
    await writeFile(script, `
      import { startKubernetes } from ${JSON.stringify(path.join(here, "cluster.ts"))};
      import { Kubelet } from ${JSON.stringify(path.join(here, "kubelet.ts"))};
      const cluster = await startKubernetes();
      const kubelet = await Kubelet.start(cluster.kubeConfig, { nodes: [{ name: "crash-node" }] });
      const created = await cluster.kubectl(["run", "doomed", "--image=x", "--port=8080", "--restart=Never"]);
      if (created.code !== 0) throw new Error(created.stderr);
      const pod = await kubelet.waitForPod("default", "doomed");
      console.log("READY " + JSON.stringify({ dir: cluster.dir, netns: pod.net.netns, pids: ["etcd", "kube-apiserver", "kube-controller-manager"].map((c) => cluster.pid(c)) }));
      setInterval(() => {}, 1000);
    `);
    const child = spawn(process.execPath, ["--import", "tsx", script], { cwd: path.resolve(import.meta.dirname, ".."), stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const ready = await new Promise<{ dir: string; netns: string; pids: number[] }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`crash run not ready: ${output.slice(-2000)}`)), 120_000);
      const onData = (d: Buffer) => {
        output += d.toString();
        const line = /READY (.*)/.exec(output);
        if (line) {
          clearTimeout(timer);
          resolve(JSON.parse(line[1]!) as { dir: string; netns: string; pids: number[] });
        }
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      child.once("exit", (code) => reject(new Error(`crash run exited (${code}): ${output.slice(-2000)}`)));
    });
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    await rm(path.dirname(script), { recursive: true, force: true });
    // The parent-death signal took the processes; the directory and the namespace stay behind.
    await eventually("the killed run's processes gone", async () => (ready.pids.every((p) => !existsSync(`/proc/${p}`)) ? true : undefined), 10_000);
    expect(existsSync(ready.dir)).toBe(true);
    expect(await netnsOf()).toContain(ready.netns);
    // What the next start does (startKubernetes and Kubelet.start call these first).
    const removed = await cleanupKubernetesLeftovers();
    expect(removed).toContain(ready.dir);
    expect(existsSync(ready.dir)).toBe(false);
    expect(existsSync(cluster.dir)).toBe(true); // ours is alive: left alone
    await cleanupLeftovers();
    expect(await netnsOf()).not.toContain(ready.netns);
  });

  it("stops with no leftover process, directory or network namespace", async () => {
    const pids = (["etcd", "kube-apiserver", "kube-controller-manager"] as const).map((c) => cluster.pid(c)!);
    const envoyPids = kubelet.runningPods().flatMap((p) => (p.envoy ? [p.envoy.pid] : []));
    expect(pids.every((p) => p > 0)).toBe(true);
    await kubelet.stop();
    await cluster.stop();
    for (const pid of [...pids, ...envoyPids]) expect(existsSync(`/proc/${pid}`), `pid ${pid}`).toBe(false);
    expect(existsSync(cluster.dir)).toBe(false);
    expect((await netnsOf()).filter((n) => !namespacesBefore.includes(n))).toEqual([]);
  });
});
