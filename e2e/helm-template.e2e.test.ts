// The Helm chart without a cluster: `helm lint`, `helm template` goldens for the default and a
// non-default set of values, values.schema.json refusing bad values, and the rendered objects
// agreeing with what Weft itself does (the validating webhook it applies, the flags `weft serve`
// knows). helm v3.22.0 from the Go module proxy (scripts/cached-go-build.sh helm).
//
//   npx vitest run e2e/helm-template.e2e.test.ts          UPDATE_GOLDEN=1 rewrites the goldens
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { runCommand } from "../src/capture/pod-network.js";
import { desiredWebhookConfiguration } from "../src/webhook/webhook-configuration.js";
import { desiredInjectionConfiguration } from "../src/webhook/inject-configuration.js";
import { CHART_DIR, REPO, goToolSupport } from "./helm/go-tools.js";

const helm = goToolSupport("helm");
if (!helm.available) process.stderr.write(`helm-template e2e skipped: ${helm.reason}\n`);

const GOLDEN_DIR = path.join(REPO, "e2e", "helm", "golden");
const CUSTOM_VALUES = path.join(REPO, "e2e", "helm", "values-custom.yaml");
/** The apiserver version of the test fixture (the chart needs >= 1.29: native sidecars). */
const KUBE_VERSION = "1.33.13";

interface K8sObject { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [key: string]: unknown }

async function helmRun(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCommand([helm.path, ...args], { timeoutMs: 60_000 });
}

async function template(extra: string[] = [], namespace = "weft-system"): Promise<string> {
  const res = await helmRun(["template", "weft", CHART_DIR, "--namespace", namespace, "--kube-version", KUBE_VERSION, ...extra]);
  if (res.code !== 0) throw new Error(`helm template ${extra.join(" ")} failed (${res.code}): ${res.stderr}`);
  return res.stdout;
}

function objects(yaml: string): K8sObject[] {
  return parseAllDocuments(yaml).map((d) => d.toJS() as K8sObject | null).filter((o): o is K8sObject => o !== null);
}

function find(list: K8sObject[], kind: string, name?: string): K8sObject {
  const found = list.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (!found) throw new Error(`no ${kind}${name ? ` ${name}` : ""} among ${list.map((o) => `${o.kind}/${o.metadata.name}`).join(", ")}`);
  return found;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;

function checkGolden(name: string, text: string): void {
  const file = path.join(GOLDEN_DIR, `${name}.yaml`);
  if (process.env.UPDATE_GOLDEN === "1") writeFileSync(file, text);
  expect(text, `${path.relative(REPO, file)} (UPDATE_GOLDEN=1 rewrites it)`).toBe(readFileSync(file, "utf8"));
}

describe.skipIf(!helm.available)("Helm chart charts/weft: lint, template goldens, schema", () => {
  it("helm lint --strict passes with the default and the non-default values", async () => {
    for (const extra of [[], ["--values", CUSTOM_VALUES]]) {
      const res = await helmRun(["lint", "--strict", CHART_DIR, "--namespace", "weft-system", "--kube-version", KUBE_VERSION, ...extra]);
      expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
      expect(res.stdout).toContain("1 chart(s) linted, 0 chart(s) failed");
    }
  });

  it("helm template with the default values matches its golden", async () => {
    checkGolden("default", await template());
  });

  it("helm template with every value changed matches its golden, and the values reach the objects", async () => {
    const text = await template(["--values", CUSTOM_VALUES]);
    checkGolden("custom", text);
    const list = objects(text);
    const deployment = find(list, "Deployment") as Loose;
    const pod = deployment.spec.template.spec;
    const args: string[] = pod.containers[0].args;
    expect(deployment.spec.replicas).toBe(3);
    expect(pod.containers[0].image).toBe("registry.example.org/mesh/weft:0.1.0-rc1");
    for (const flag of ["--trust-domain=mesh.example.org", "--outbound-traffic-policy=REGISTRY_ONLY", "--workload-cert-ttl=1h", "--log-level=debug",
      "--plugged-ca-dir=/etc/weft/plugged-ca", "--root-namespace=mesh-root", "--cluster-domain=k8s.example.org", "--token-audience=weft-ca",
      "--leader-election-name=mesh-leader", "--write-status=false", "--webhook-configuration=mesh-validator", "--xds-stall-timeout=2m"]) expect(args).toContain(flag);
    // A plug-in CA replaces the root Secret: no --ca-root-secret, the Secret is mounted, and no Secret rules at all.
    expect(args.some((a) => a.startsWith("--ca-root-secret"))).toBe(false);
    expect(pod.volumes).toContainEqual({ name: "plugged-ca", secret: { secretName: "corporate-cacerts", defaultMode: 0o440 } });
    expect(pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey).toBe("kubernetes.io/hostname");
    expect((find(list, "PodDisruptionBudget") as Loose).spec.minAvailable).toBe(2);
    const role = find(list, "Role") as Loose;
    expect(role.rules.filter((r: Loose) => r.resources.includes("secrets"))).toEqual([]);
    expect(role.rules).toContainEqual({ apiGroups: ["coordination.k8s.io"], resources: ["leases"], resourceNames: ["mesh-leader"], verbs: ["get", "update"] });
    const clusterRole = find(list, "ClusterRole") as Loose;
    // status.enabled=false: no status rules.
    expect(clusterRole.rules.some((r: Loose) => r.resources.some((x: string) => x.endsWith("/status")))).toBe(false);
    expect((find(list, "Service") as Loose).spec.type).toBe("LoadBalancer");
  });

  it("injection: the MutatingWebhookConfiguration (four webhooks on /inject), its RBAC and weft serve's --inject flags", async () => {
    const list = objects(await template(["--values", CUSTOM_VALUES]));
    const mutating = find(list, "MutatingWebhookConfiguration", "mesh-injector") as Loose;
    expect(mutating.webhooks.map((w: Loose) => [w.name, w.clientConfig.service.path, w.failurePolicy, w.clientConfig.caBundle])).toEqual([
      ["namespace.sidecar-injector.weft.io", "/inject", "Fail", undefined],
      ["rev.namespace.sidecar-injector.weft.io", "/inject", "Fail", undefined],
      ["object.sidecar-injector.weft.io", "/inject", "Fail", undefined],
      ["rev.object.sidecar-injector.weft.io", "/inject", "Fail", undefined],
    ]);
    expect(mutating.webhooks[1].namespaceSelector.matchExpressions[0]).toEqual({ key: "istio.io/rev", operator: "In", values: ["canary"] });
    expect((find(list, "ClusterRole") as Loose).rules).toContainEqual({ apiGroups: ["admissionregistration.k8s.io"], resources: ["mutatingwebhookconfigurations"], resourceNames: ["mesh-injector"], verbs: ["get", "patch"] });
    const args: string[] = (find(list, "Deployment") as Loose).spec.template.spec.containers[0].args;
    for (const flag of ["--inject", "--inject-image=registry.example.org/mesh/weft:0.1.0-rc1", "--inject-proxy-image=registry.example.org/envoy:v1.40.0", "--injection-configuration=mesh-injector", "--revision=canary"]) expect(args).toContain(flag);
    const off = objects(await template(["--set", "webhooks.injection.enabled=false"]));
    expect(off.some((o) => o.kind === "MutatingWebhookConfiguration")).toBe(false);
    expect((find(off, "Deployment") as Loose).spec.template.spec.containers[0].args).not.toContain("--inject");
  });

  it("the default install: 2 replicas, probes on /healthz and /readyz, non-root read-only, no plug-in CA mount", async () => {
    const list = objects(await template());
    const pod = (find(list, "Deployment") as Loose).spec.template.spec;
    const container = pod.containers[0];
    expect((find(list, "Deployment") as Loose).spec.replicas).toBe(2);
    expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "http-monitoring" });
    expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http-monitoring" });
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ["ALL"] } });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
    expect(container.volumeMounts.map((m: Loose) => m.mountPath).sort()).toEqual(["/tmp", "/var/lib/weft/state"]);
    expect((find(list, "Service") as Loose).spec.ports.map((p: Loose) => [p.name, p.port])).toEqual([["grpc-xds", 15010], ["https-webhook", 443], ["http-monitoring", 15014]]);
    expect(list.some((o) => o.kind === "MutatingWebhookConfiguration")).toBe(true); // injection is on by default
  });

  it("the chart's webhook configurations are the ones Weft applies (Weft only adds the caBundle)", async () => {
    const list = objects(await template(["--set", "webhooks.injection.revision=canary"]));
    const target = { service: { namespace: "weft-system", name: "weft", port: 443 } };
    const withoutCa = (w: Loose) => JSON.parse(JSON.stringify({ ...w, clientConfig: { ...w.clientConfig, caBundle: undefined } }));
    for (const [chart, weft] of [
      [find(list, "ValidatingWebhookConfiguration"), desiredWebhookConfiguration({ target, caBundlePem: "x" })],
      [find(list, "MutatingWebhookConfiguration"), desiredInjectionConfiguration({ target, caBundlePem: "x", revision: "canary" })],
    ] as [Loose, Loose][]) {
      expect(chart.metadata.name).toBe(weft.metadata.name);
      expect(chart.webhooks.map(withoutCa)).toEqual(weft.webhooks.map(withoutCa));
      for (const [label, value] of Object.entries(weft.metadata.labels as Record<string, string>)) expect(chart.metadata.labels[label], label).toBe(value);
    }
  });

  it("every flag the chart passes is one `weft serve` knows", async () => {
    const help = (await runCommand([process.execPath, "--import", "tsx", "src/cli/main.ts", "serve", "--help"], { timeoutMs: 60_000 })).stdout;
    for (const values of [[], ["--values", CUSTOM_VALUES]]) {
      const args: string[] = (find(objects(await template(values)), "Deployment") as Loose).spec.template.spec.containers[0].args;
      const flags = args.filter((a) => a.startsWith("--")).map((a) => a.split("=")[0]!);
      const unknown = flags.filter((f) => !help.includes(`${f} `) && !help.includes(`${f}\n`) && !help.includes(`${f}=`));
      expect(unknown, `flags missing from weft serve --help (values ${values.join(" ") || "default"})`).toEqual([]);
    }
  });

  it("values.schema.json refuses unknown keys and bad values, naming them", async () => {
    const cases: [string[], RegExp][] = [
      [["--set", "replicas=3"], /additional properties? 'replicas' not allowed|replicas/],
      [["--set", "mesh.outboundTrafficPolicy=DENY"], /outboundTrafficPolicy/],
      [["--set", "ca.workloadCertTTL=one-day"], /workloadCertTTL/],
      [["--set", "replicaCount=0"], /replicaCount/],
      [["--set", "logLevel=verbose"], /logLevel/],
    ];
    for (const [set, message] of cases) {
      const res = await helmRun(["template", "weft", CHART_DIR, "--namespace", "weft-system", "--kube-version", KUBE_VERSION, ...set]);
      expect(res.code, `${set.join(" ")} was accepted`).not.toBe(0);
      expect(res.stderr).toMatch(/values don't meet the specifications of the schema/);
      expect(res.stderr).toMatch(message);
    }
  });

  it("another namespace works: everything namespaced lands there, the webhooks call weft.<namespace>, POD_NAMESPACE names the xDS certificate", async () => {
    const list = objects(await template([], "mesh-control"));
    for (const o of list) if (!["ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"].includes(o.kind)) expect((o.metadata as { namespace?: string }).namespace, `${o.kind}/${(o.metadata as { name: string }).name}`).toBe("mesh-control");
    const deployment = find(list, "Deployment", "weft") as unknown as { spec: { template: { spec: { containers: { args: string[]; env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[] }[] } } } };
    const container = deployment.spec.template.spec.containers[0]!;
    expect(container.args).toContain("--webhook-service=mesh-control/weft:443");
    expect(container.args).toContain("--leader-election-namespace=mesh-control");
    expect(container.env.find((e) => e.name === "POD_NAMESPACE")?.valueFrom?.fieldRef?.fieldPath).toBe("metadata.namespace");
    const validating = find(list, "ValidatingWebhookConfiguration") as unknown as { webhooks: { clientConfig: { service: { namespace: string; name: string } } }[] };
    for (const w of validating.webhooks) expect(w.clientConfig.service).toMatchObject({ namespace: "mesh-control", name: "weft" });
  });

  it("injection without the validating webhook is refused (one webhook server serves both)", async () => {
    const res = await helmRun(["template", "weft", CHART_DIR, "--namespace", "weft-system", "--kube-version", KUBE_VERSION, "--set", "webhooks.validating.enabled=false", "--set", "webhooks.injection.enabled=true"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("webhooks.injection.enabled needs webhooks.validating.enabled");
  });

  it("security off: no TokenReview, ServiceAccount, ConfigMap or Secret rules, and no --security", async () => {
    const list = objects(await template(["--set", "security=false"]));
    const rules = [...(find(list, "ClusterRole") as Loose).rules, ...(find(list, "Role") as Loose).rules];
    expect(rules.flatMap((r: Loose) => r.resources).filter((r: string) => ["tokenreviews", "serviceaccounts", "configmaps", "secrets"].includes(r))).toEqual([]);
    expect((find(list, "Deployment") as Loose).spec.template.spec.containers[0].args).not.toContain("--security");
  });
});
