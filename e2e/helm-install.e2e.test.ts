// The Helm chart installed into the REAL kube-apiserver of e2e/kubernetes (issue 13 §2): `helm
// install --dry-run=server`, a real install (CRDs, RBAC, Deployment, PDB, Service, webhook
// configuration), then Weft run with a token of the chart's own ServiceAccount and exactly the
// Deployment's flags — out of cluster, as this machine has no kubelet to run its image — serving
// the sample of e2e/kind/ (sidecars run by the kubelet harness, real Envoy): traffic, STRICT mTLS
// and an AuthorizationPolicy, the same checks e2e/kind/run.sh makes in kind. `kubectl auth can-i
// --list` with that token shows exactly the rules Weft needs, nothing more; every one of them is
// used (Lease, root Secret, istio-ca-root-cert, caBundle, status, TokenReview).
//
//   flock /tmp/weft-pods.lock npx vitest run e2e/helm-install.e2e.test.ts
import { execFile } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import os from "node:os";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { AdmissionregistrationV1Api, AppsV1Api, CoordinationV1Api, CoreV1Api, CustomObjectsApi, PolicyV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCommand } from "../src/capture/pod-network.js";
import { freePort } from "../src/runner/free-port.js";
import { ISTIO_KINDS } from "../src/sources/kubernetes/istio-kinds.js";
import { kubeMeshUnavailable } from "./harness/kube-mesh.js";
import { startWeftReplica, tail, type WeftReplica } from "./harness/weft-replica.js";
import { SERVICE_ACCOUNT_ISSUER, startKubernetes, type KubernetesCluster } from "./kubernetes/cluster.js";
import { Kubelet, VIRTUAL_POD_PLACEMENT, type RunningPod } from "./kubernetes/kubelet.js";
import { until } from "./kubernetes/workloads.js";
import { CHART_DIR, REPO, goToolSupport } from "./helm/go-tools.js";

const unavailable = await kubeMeshUnavailable();
const helm = goToolSupport("helm");
const runnable = unavailable === "" && helm.available;
if (!runnable) process.stderr.write(`helm-install e2e skipped: ${unavailable || helm.reason}\n`);

const NAMESPACE = "weft-system";
const KIND_SCRIPT = path.join(REPO, "e2e", "kind", "run.sh");
const execFileAsync = promisify(execFile);
/** The xDS serving certificate's name (src/runner/mesh-runner.ts); sidecars verify it. */
const XDS_SERVER_NAME = "weft.weft-system.svc";
/** The chart's pods go to the harness's virtual nodes: API objects only, nothing runs (no image here). */
const PLACEMENT = ["--set-json", `nodeSelector=${JSON.stringify(VIRTUAL_POD_PLACEMENT.nodeSelector)}`, "--set-json", `tolerations=${JSON.stringify(VIRTUAL_POD_PLACEMENT.tolerations)}`];
/**
 * The chart's injector (failurePolicy Fail) sits behind a Service the apiserver cannot reach here
 * (no kube-proxy), so the sample's namespace carries this label instead of istio-injection
 * (run.sh's INJECTION_LABEL) and the harness gives its pods sidecars.
 */
const HARNESS_SIDECARS = "weft.test/sidecars";
/** Flags whose values only make sense in the pod: ports, bind addresses and the state directory are the test's. */
const LOCAL_FLAGS = ["--xds-port", "--admin-port", "--admin-address", "--state-dir", "--webhook-port"];

/**
 * What `weft serve --kubernetes --security --webhook` with leader election and status needs,
 * read from the code (the source's reflectors, lease-client, secret-root-store, plugged-ca-secret,
 * kubernetes-root-cert-publisher, webhook-configuration, kubernetes-status-writer,
 * kubernetes-token-review, the ServiceAccount watch of --security), as `kubectl auth can-i --list` prints it: "resource|names|verbs".
 */
function needed(inWeftNamespace: boolean): string[] {
  const rules = [
    "namespaces||list watch", "nodes||list watch", "pods||list watch", "services||list watch",
    "endpointslices.discovery.k8s.io||list watch",
    "tokenreviews.authentication.k8s.io||create", "serviceaccounts||list watch",
    "configmaps||create", "configmaps|istio-ca-root-cert|list update watch",
    "validatingwebhookconfigurations.admissionregistration.k8s.io|weft-validator|get patch",
    "mutatingwebhookconfigurations.admissionregistration.k8s.io|weft-sidecar-injector|get patch",
    ...ISTIO_KINDS.flatMap((k) => [`${k.plural}.${k.group}||list watch`, `${k.plural}.${k.group}/status||patch`]),
  ];
  if (inWeftNamespace) {
    rules.push("leases.coordination.k8s.io||create", "leases.coordination.k8s.io|weft-leader|get update",
      "secrets||create", "secrets|weft-ca-root|get update watch", "secrets|cacerts|get");
  }
  return rules.sort();
}

/** `kubectl auth can-i --list` as "resource|names|verbs" rows (names and verbs sorted) and the non-resource URLs. */
function parseCanIList(text: string): { resources: string[]; urls: string[] } {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const header = lines[0] ?? "";
  const cols = ["Resources", "Non-Resource URLs", "Resource Names", "Verbs"].map((c) => header.indexOf(c));
  if (cols.some((c) => c < 0)) throw new Error(`unexpected kubectl auth can-i --list output:\n${text}`);
  const cell = (line: string, i: number) => line.slice(cols[i], i + 1 < cols.length ? cols[i + 1] : undefined).trim();
  const list = (s: string) => s.replace(/^\[|\]$/g, "").split(" ").filter(Boolean).sort().join(" ");
  const resources = new Set<string>();
  const urls = new Set<string>();
  for (const line of lines.slice(1)) {
    const resource = cell(line, 0);
    if (resource) resources.add(`${resource}|${list(cell(line, 2))}|${list(cell(line, 3))}`);
    else urls.add(`${list(cell(line, 1))}|${list(cell(line, 3))}`);
  }
  return { resources: [...resources].sort(), urls: [...urls].sort() };
}

describe.skipIf(!runnable)("Helm chart installed into the real apiserver; Weft with the chart's ServiceAccount", () => {
  let cluster: KubernetesCluster;
  let kubelet: Kubelet | undefined;
  let weft: WeftReplica | undefined;
  let dir = "";
  let saKubeconfig = "";
  let chartArgs: string[] = [];
  const pods: Record<string, RunningPod> = {};
  let webIp = "";
  let webPodIps: string[] = [];

  const helmRun = async (args: string[]) => {
    const res = await runCommand([helm.path, "--kubeconfig", cluster.kubeconfigPath, ...args], { timeoutMs: 120_000 });
    if (res.code !== 0) throw new Error(`helm ${args.join(" ")} failed (${res.code}): ${res.stderr || res.stdout}`);
    return res.stdout;
  };
  const kubectl = async (args: string[], opts: { kubeconfig?: string; input?: string } = {}) => {
    const res = await runCommand([cluster.binaries.kubectl, `--kubeconfig=${opts.kubeconfig ?? cluster.kubeconfigPath}`, ...args], { timeoutMs: 60_000, ...(opts.input !== undefined ? { input: opts.input } : {}) });
    if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${res.code}): ${res.stderr || res.stdout}`);
    return res.stdout;
  };
  /** Steps of e2e/kind/run.sh against the test cluster (kubectl and helm of this machine); returns its output. */
  const kindScript = async (steps: string[], env: Record<string, string> = {}): Promise<string> => {
    try {
      const { stdout, stderr } = await execFileAsync(KIND_SCRIPT, steps, {
        cwd: REPO, timeout: 300_000, maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath, KUBECTL: cluster.binaries.kubectl, HELM: helm.path, HELM_EXTRA_ARGS: PLACEMENT.join(" "), WAIT_TIMEOUT: "120s", ...env },
      });
      return stdout + stderr;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`e2e/kind/run.sh ${steps.join(" ")} failed: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}\n${diagnostics()}`);
    }
  };
  const diagnostics = () => (weft ? `--- weft log:\n${tail(weft.log(), 25)}` : "(weft not started)");

  /** A kubeconfig whose user is a TokenRequest token of `namespace/serviceAccount`. */
  const tokenKubeconfig = async (file: string, namespace: string, serviceAccount: string) => {
    const token = await cluster.createToken(namespace, serviceAccount, { audiences: [SERVICE_ACCOUNT_ISSUER], expirationSeconds: 3600 });
    await writeFile(file, `apiVersion: v1
kind: Config
clusters: [{ name: test, cluster: { server: "${cluster.server}", certificate-authority: "${cluster.caFile}" } }]
users: [{ name: ${serviceAccount}, user: { token: "${token}" } }]
contexts: [{ name: test, context: { cluster: test, user: ${serviceAccount} } }]
current-context: test
`, { mode: 0o600 });
    return file;
  };

  /** The one running pod of a Deployment's app label, once Ready. */
  const podOf = (namespace: string, app: string) =>
    until(`a running pod of ${namespace}/${app}`, 90_000, () => kubelet!.runningPods().find((p) => p.namespace === namespace && p.labels.app === app))
      .then((p) => kubelet!.waitForPod(namespace, p.name, { timeoutMs: 90_000 }));

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "weft-helm-"));
    // Sidecars run as uid 1337 and read the trust bundle under it (mkdtemp makes 0700).
    await chmod(dir, 0o755);
    cluster = await startKubernetes();
  }, 180_000);

  afterAll(async () => {
    expect(kubelet?.errors ?? []).toEqual([]);
    await weft?.stop().catch(() => {});
    await kubelet?.stop().catch(() => {});
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 90_000);

  it("helm install --dry-run=server is accepted by the apiserver and creates nothing", async () => {
    const out = await helmRun(["install", "weft", CHART_DIR, "--namespace", NAMESPACE, "--create-namespace", "--dry-run=server", ...PLACEMENT]);
    expect(out).toContain("STATUS: pending-install");
    const apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    await expect(apps.readNamespacedDeployment({ name: "weft", namespace: NAMESPACE })).rejects.toMatchObject({ code: 404 });
  });

  it("e2e/kind/run.sh install (helm upgrade --install) creates the CRDs, RBAC, Deployment, PDB, Service and webhook configurations", async () => {
    const out = await kindScript(["install"]);
    expect(out).toContain("STATUS: deployed");
    expect(out).toContain("kubectl -n weft-system rollout status deployment/weft"); // NOTES.txt
    const crds = (await kubectl(["get", "crd", "-o", "jsonpath={.items[*].metadata.name}"])).split(" ").sort();
    expect(crds).toEqual(ISTIO_KINDS.map((k) => `${k.plural}.${k.group}`).sort());
    const vwc = await cluster.kubeConfig.makeApiClient(AdmissionregistrationV1Api).readValidatingWebhookConfiguration({ name: "weft-validator" });
    expect(vwc.webhooks?.[0]?.clientConfig.service).toMatchObject({ namespace: NAMESPACE, name: "weft", path: "/validate" });
    expect(vwc.webhooks?.[0]?.clientConfig.caBundle).toBeUndefined(); // Weft fills it in
    const mwc = await cluster.kubeConfig.makeApiClient(AdmissionregistrationV1Api).readMutatingWebhookConfiguration({ name: "weft-sidecar-injector" });
    expect(mwc.webhooks?.map((w) => w.clientConfig.service?.path)).toEqual(["/inject", "/inject", "/inject", "/inject"]);

    const rendered = parseAllDocuments(await helmRun(["get", "manifest", "weft", "--namespace", NAMESPACE])).map((d) => d.toJS() as { kind: string; spec?: { template?: { spec?: { containers?: { args?: string[] }[] } } } } | null);
    chartArgs = rendered.find((o) => o?.kind === "Deployment")!.spec!.template!.spec!.containers![0]!.args!;
    expect(chartArgs.slice(0, 3)).toEqual(["serve", "--kubernetes", "--security"]);
    expect(chartArgs).toContain("--inject");
  }, 240_000);

  it("kubectl auth can-i --list with the chart's ServiceAccount token: exactly what Weft needs, nothing more", async () => {
    saKubeconfig = await tokenKubeconfig(path.join(dir, "weft-sa.kubeconfig"), NAMESPACE, "weft");
    // What every authenticated identity may do anyway (discovery, self reviews): an unbound ServiceAccount.
    await kubectl(["create", "serviceaccount", "nobody", "-n", NAMESPACE]);
    const nobody = await tokenKubeconfig(path.join(dir, "nobody.kubeconfig"), NAMESPACE, "nobody");
    for (const namespace of [NAMESPACE, "default"]) {
      const baseline = parseCanIList(await kubectl(["auth", "can-i", "--list", "-n", namespace], { kubeconfig: nobody }));
      const granted = parseCanIList(await kubectl(["auth", "can-i", "--list", "-n", namespace], { kubeconfig: saKubeconfig }));
      const extra = granted.resources.filter((r) => !baseline.resources.includes(r));
      expect(extra, `in namespace ${namespace}`).toEqual(needed(namespace === NAMESPACE));
      expect(granted.urls).toEqual(baseline.urls);
    }
    // Spot checks of what it must not do.
    for (const [verb, resource, ns] of [["get", "secrets", "default"], ["list", "secrets", NAMESPACE], ["create", "pods", "default"], ["delete", "configmaps", "default"],
      ["create", "validatingwebhookconfigurations", ""], ["update", "virtualservices.networking.istio.io", "default"], ["get", "leases", "kube-system"]] as const) {
      const res = await runCommand([cluster.binaries.kubectl, `--kubeconfig=${saKubeconfig}`, "auth", "can-i", verb, resource, ...(ns ? ["-n", ns] : [])], { timeoutMs: 30_000 });
      expect(res.stdout.trim(), `can-i ${verb} ${resource} ${ns}`).toBe("no");
    }
  }, 120_000);

  it("Weft with the chart's token and the Deployment's flags becomes ready and leads", async () => {
    const args = chartArgs.slice(1).filter((a) => !LOCAL_FLAGS.includes(a.split("=")[0]!));
    weft = await startWeftReplica("weft-chart-0", [...args, "--kubeconfig", saKubeconfig, "--state-dir", path.join(dir, "state"), "--webhook-port", String(await freePort()), "--shutdown-grace", "1000"], {
      env: { POD_NAMESPACE: NAMESPACE },
      readyTimeoutMs: 120_000,
    });
    await until("Weft holds the leader Lease", 60_000, async () => {
      const lease = await cluster.kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: "weft-leader", namespace: NAMESPACE });
      return lease.spec?.holderIdentity === "weft-chart-0" ? lease : undefined;
    }, diagnostics);
    expect(weft.log()).not.toMatch(/forbidden|\b403\b/i);
  }, 180_000);

  it("the kubelet harness runs the chart's pods on virtual nodes: the Deployment becomes available, the PDB allows one disruption", async () => {
    // Virtual nodes take the chart's pods (Running and Ready, nothing executed: no image here);
    // node-a runs the sample's pods, with sidecars connected to the Weft above.
    kubelet = await Kubelet.start(cluster.kubeConfig, {
      nodes: [{ name: "node-a" }, { name: "virtual-a", virtual: true }, { name: "virtual-b", virtual: true }],
      sidecar: { xdsPort: weft!.xdsPort, inject: (_pod, namespaceLabels) => namespaceLabels[HARNESS_SIDECARS] === "enabled", secure: { caFile: path.join(dir, "state", "public", "root-cert.pem"), sni: XDS_SERVER_NAME, audience: "istio-ca" } },
    });
    const apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    await until("deployment weft-system/weft available with 2 replicas", 90_000, async () => {
      const d = await apps.readNamespacedDeployment({ name: "weft", namespace: NAMESPACE });
      return d.status?.availableReplicas === 2 ? d : undefined;
    });
    const pdb = await until("the PodDisruptionBudget allows one disruption", 60_000, async () => {
      const p = await cluster.kubeConfig.makeApiClient(PolicyV1Api).readNamespacedPodDisruptionBudget({ name: "weft", namespace: NAMESPACE });
      return p.status?.disruptionsAllowed === 1 ? p : undefined;
    });
    expect(pdb.status?.currentHealthy).toBe(2);
    expect(kubelet.virtualPods().filter((p) => p.namespace === NAMESPACE).length).toBe(2);
  }, 180_000);

  it("its writes go through: root Secret, istio-ca-root-cert in every namespace, both webhook configurations' caBundle (the chart's objects, patched)", async () => {
    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    const secret = await core.readNamespacedSecret({ name: "weft-ca-root", namespace: NAMESPACE });
    expect(Object.keys(secret.data ?? {}).length).toBeGreaterThan(0);
    const bundle = await readFile(path.join(dir, "state", "public", "root-cert.pem"), "utf8");
    await until("istio-ca-root-cert in default and kube-system", 60_000, async () => {
      const cms = await Promise.all(["default", "kube-system"].map((namespace) => core.readNamespacedConfigMap({ name: "istio-ca-root-cert", namespace }).catch(() => undefined)));
      return cms.every((cm) => cm?.data?.["root-cert.pem"] === bundle) ? true : undefined;
    }, diagnostics);
    const vwc = await until("the webhook configuration's caBundle is Weft's trust bundle", 60_000, async () => {
      const v = await cluster.kubeConfig.makeApiClient(AdmissionregistrationV1Api).readValidatingWebhookConfiguration({ name: "weft-validator" });
      const ca = v.webhooks?.[0]?.clientConfig.caBundle;
      return ca && Buffer.from(ca as unknown as string, "base64").toString() === bundle ? v : undefined;
    }, diagnostics);
    expect(vwc.metadata?.labels?.["app.kubernetes.io/managed-by"]).toBe("Helm"); // still the chart's object
    expect(vwc.webhooks?.[0]?.clientConfig.service?.name).toBe("weft");
    const mwc = await until("the injector configuration's caBundle is Weft's trust bundle in all four webhooks", 60_000, async () => {
      const m = await cluster.kubeConfig.makeApiClient(AdmissionregistrationV1Api).readMutatingWebhookConfiguration({ name: "weft-sidecar-injector" });
      const all = (m.webhooks ?? []).map((w) => Buffer.from((w.clientConfig.caBundle ?? "") as unknown as string, "base64").toString());
      return all.length === 4 && all.every((b) => b === bundle) ? m : undefined;
    }, diagnostics);
    expect(mwc.metadata?.labels?.["app.kubernetes.io/managed-by"]).toBe("Helm");
  }, 120_000);

  it("the sample runs with sidecars authenticated by their pods' tokens; traffic reaches web with the VirtualService's header", async () => {
    // The kind script's steps that need no kind: the sample and policy applied, then its
    // control-plane check (rollout, both caBundles, istio-ca-root-cert, sample Deployments
    // available). The validating webhook's Service is not routable here (no kube-proxy): the
    // apiserver gives up after the configuration's 5 s timeout and, with failurePolicy Ignore,
    // stores the Istio resources.
    const out = await kindScript(["deploy-sample", "check-control-plane"], { INJECTION_LABEL: `${HARNESS_SIDECARS}=enabled` });
    expect(out).toContain("check-control-plane: done");
    for (const [ns, app] of [["weft-sample", "sleep"], ["weft-sample", "intruder"], ["weft-outside", "outside"]] as const) pods[app] = await podOf(ns, app);
    await until("both web pods ready", 90_000, async () => {
      const ready = kubelet!.runningPods().filter((p) => p.namespace === "weft-sample" && p.labels.app === "web");
      return ready.length === 2 ? ready : undefined;
    });
    for (const p of kubelet!.runningPods().filter((p) => p.namespace === "weft-sample" && p.labels.app === "web")) await kubelet!.waitForPod("weft-sample", p.name, { timeoutMs: 90_000 });
    webPodIps = kubelet!.runningPods().filter((p) => p.namespace === "weft-sample" && p.labels.app === "web").map((p) => p.ip);
    webIp = (await kubectl(["get", "service", "web", "-n", "weft-sample", "-o", "jsonpath={.spec.clusterIP}"])).trim();
    const seen = new Set<string>();
    await until("sleep -> web answers 200 with x-weft-route (policy and route applied)", 90_000, async () => {
      const res = await pods.sleep!.fetch({ host: webIp, port: 80, headers: { host: "web.weft-sample.svc.cluster.local" }, timeoutMs: 5000 });
      return res.status === 200 && res.headers["x-weft-route"] === "web" ? res : undefined;
    }, diagnostics);
    // Every request answers 200; both replicas answer once the second endpoint reached sleep's
    // sidecar (EndpointSlice -> Weft -> EDS: bounded wait, at most 300 requests / 60 s).
    const started = Date.now();
    for (let i = 0; seen.size < 2 && i < 300 && Date.now() - started < 60_000; i++) {
      const res = await pods.sleep!.fetch({ host: webIp, port: 80, headers: { host: "web.weft-sample.svc.cluster.local" }, timeoutMs: 5000 });
      expect(res.status, res.body.slice(0, 200)).toBe(200);
      seen.add((JSON.parse(res.body) as { pod: string }).pod);
      if (seen.size < 2) await new Promise((r) => setTimeout(r, 100));
    }
    expect([...seen].sort(), diagnostics()).toEqual(kubelet!.runningPods().filter((p) => p.namespace === "weft-sample" && p.labels.app === "web").map((p) => p.name).sort()); // both replicas behind the Service
    // Certificates came from TokenReview of the pods' projected tokens.
    expect(await weft!.metric("weft_tokenreview_requests_total", 'result="authenticated"')).toBeGreaterThan(0);
  }, 300_000);

  it("STRICT mTLS: a pod without a sidecar cannot reach web; the policy refuses intruder with 403", async () => {
    const plaintext = await pods.outside!.fetch({ host: webPodIps[0]!, port: 8080, timeoutMs: 5000 }).then((r) => `status ${r.status}`, (err: Error) => `failed: ${err.message}`);
    expect(plaintext).toMatch(/^failed/);
    const denied = await pods.intruder!.fetch({ host: webIp, port: 80, headers: { host: "web.weft-sample.svc.cluster.local" }, timeoutMs: 5000 });
    expect(denied.status, denied.body.slice(0, 200)).toBe(403);
  }, 60_000);

  it("the leader wrote the VirtualService's status (status patch rule used)", async () => {
    const vs = await until("VirtualService weft-sample/web has a Reconciled condition", 60_000, async () => {
      const o = await cluster.kubeConfig.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: "weft-sample", plural: "virtualservices", name: "web" }) as { status?: { conditions?: { type: string; status: string }[] } };
      return o.status?.conditions?.find((c) => c.type === "Reconciled") ? o : undefined;
    }, diagnostics);
    expect(vs.status!.conditions!.find((c) => c.type === "Reconciled")!.status).toBe("True");
    expect(weft!.log()).not.toMatch(/forbidden|\b403\b/i);
  }, 90_000);

  it("helm upgrade keeps Weft's caBundle; helm uninstall removes the chart's objects", async () => {
    const before = (await kubectl(["get", "validatingwebhookconfiguration", "weft-validator", "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}"])).trim();
    expect(before).not.toBe("");
    await helmRun(["upgrade", "weft", CHART_DIR, "--namespace", NAMESPACE, "--reuse-values", "--set", "logLevel=debug"]);
    expect((await kubectl(["get", "validatingwebhookconfiguration", "weft-validator", "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}"])).trim()).toBe(before);
    // Weft first: once its RBAC is gone it could only log 403s.
    expect(await weft!.stop()).toBe(0);
    await helmRun(["uninstall", "weft", "--namespace", NAMESPACE]);
    for (const [kind, ns] of [["validatingwebhookconfiguration/weft-validator", ""], ["mutatingwebhookconfiguration/weft-sidecar-injector", ""], ["clusterrole/weft", ""], ["clusterrolebinding/weft", ""], ["deployment/weft", NAMESPACE], ["service/weft", NAMESPACE], ["serviceaccount/weft", NAMESPACE]] as const) {
      const res = await runCommand([cluster.binaries.kubectl, `--kubeconfig=${cluster.kubeconfigPath}`, "get", kind, ...(ns ? ["-n", ns] : [])], { timeoutMs: 30_000 });
      expect(res.stderr, kind).toMatch(/NotFound/);
    }
  }, 120_000);
});
