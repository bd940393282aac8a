// The validating admission webhook against the REAL kube-apiserver: Weft's HTTPS webhook (serving
// certificate from Weft's CA) registered by Weft itself in a ValidatingWebhookConfiguration
// (clientConfig.url https://127.0.0.1:PORT/validate; the apiserver runs on this machine).
// `kubectl apply` of a broken VirtualService is refused with the message `weft validate` prints;
// warnings come back as kubectl warnings; with Weft down, applies go through (failurePolicy
// Ignore); the caBundle follows a root rotation; a deleted configuration is put back.
//
// No pods: no lock needed.   npx vitest run e2e/kubernetes-webhook.e2e.test.ts
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { AdmissionregistrationV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatIssue } from "../src/api/types.js";
import { loadOrCreateCa, type CertificateAuthority } from "../src/ca/certificate-authority.js";
import { silentLogger } from "../src/log/logger.js";
import { freePort } from "../src/runner/free-port.js";
import { alwaysLeader } from "../src/runner/leader-election.js";
import { ConfigAggregator } from "../src/sources/config-aggregator.js";
import { FileSource } from "../src/sources/file/file-source.js";
import { ISTIO_KINDS } from "../src/sources/kubernetes/istio-kinds.js";
import { startAdmissionWebhook, type AdmissionWebhook } from "../src/webhook/admission-webhook.js";
import { DEFAULT_WEBHOOK_CONFIGURATION_NAME, WEBHOOK_NAME } from "../src/webhook/webhook-configuration.js";
import { kubernetesSupport } from "./kubernetes/binaries.js";
import { startKubernetes, type KubernetesCluster } from "./kubernetes/cluster.js";
import { applyCrds } from "./kubernetes/manifests.js";

const support = kubernetesSupport();
if (!support.available) process.stderr.write(`kubernetes webhook e2e skipped: ${support.reason}\n`);

const BROKEN = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: broken, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: { host: reviews, port: { number: 70000 } }
      weight: 50
    - destination: { host: ratings }
      weight: 50
    retries: { attempts: -1 }
`;

const WITH_WARNING = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: single, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: { host: reviews }
      weight: 50
`;

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000, diagnostics?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not seen in ${timeoutMs} ms${diagnostics ? `\n${diagnostics()}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What `weft validate DIR` prints for `yaml`, without the file prefix ("VirtualService/default/broken: field: message"). */
async function weftValidateLines(yaml: string): Promise<string[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "weft-webhook-validate-"));
  try {
    await writeFile(path.join(dir, "vs.yaml"), yaml);
    const config = new ConfigAggregator([new FileSource(dir)]).load();
    return config.issues.filter((i) => i.severity === "error").map((i) => formatIssue(i).replace(/^.*?: document \d+: /, ""));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!support.available)("validating admission webhook (real kube-apiserver)", () => {
  let cluster: KubernetesCluster;
  let ca: CertificateAuthority;
  let webhook: AdmissionWebhook | undefined;
  let caDir: string;
  let port: number;

  const start = async () => {
    webhook = await startAdmissionWebhook({
      ca, kubeConfig: cluster.kubeConfig, leadership: alwaysLeader(), logger: silentLogger(),
      target: { url: `https://127.0.0.1:${port}/validate` }, address: "127.0.0.1", port,
      checkIntervalMs: 200, reconcileIntervalMs: 1000,
    });
  };

  beforeAll(async () => {
    cluster = await startKubernetes();
    await applyCrds(cluster.kubeConfig, 60_000);
    caDir = await mkdtemp(path.join(os.tmpdir(), "weft-webhook-ca-"));
    ca = await loadOrCreateCa({ dir: caDir });
    port = await freePort();
    await start();
    // The apiserver picks up a new webhook configuration within a second or so: wait until a
    // dry-run of the broken resource is refused.
    await eventually("the apiserver calling the webhook", async () => {
      const r = await cluster.kubectl(["apply", "--dry-run=server", "-f", "-"], { input: BROKEN });
      return r.code !== 0 && r.stderr.includes("denied the request") ? true : undefined;
    }, 60_000, () => cluster.logTail("kube-apiserver"));
  }, 180_000);

  afterAll(async () => {
    await webhook?.close();
    await cluster?.stop();
    if (caDir) await rm(caDir, { recursive: true, force: true });
  }, 60_000);

  it("Weft created the ValidatingWebhookConfiguration (failurePolicy Ignore, 5 s, sideEffects None, Istio groups only)", async () => {
    const api = cluster.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    const config = await api.readValidatingWebhookConfiguration({ name: DEFAULT_WEBHOOK_CONFIGURATION_NAME });
    const hook = config.webhooks!.find((w) => w.name === WEBHOOK_NAME)!;
    expect(hook.failurePolicy).toBe("Ignore");
    expect(hook.timeoutSeconds).toBe(5);
    expect(hook.sideEffects).toBe("None");
    expect(hook.clientConfig.url).toBe(`https://127.0.0.1:${port}/validate`);
    expect(Buffer.from(hook.clientConfig.caBundle as unknown as string, "base64").toString()).toBe(ca.trustBundlePem());
    // Every group of the kind registry (networking, security, telemetry, ...), nothing else.
    expect(hook.rules!.flatMap((r) => r.apiGroups).sort()).toEqual([...new Set(ISTIO_KINDS.map((k) => k.group))].sort());
    expect(hook.rules!.flatMap((r) => r.apiGroups)).toContain("networking.istio.io");
    expect(hook.rules!.flatMap((r) => r.resources)).toContain("virtualservices");
    expect(webhook!.keeper.writes).toBe(1);
  });

  it("kubectl apply of a broken VirtualService is refused with the field paths and what was expected, as `weft validate` says", async () => {
    const result = await cluster.kubectl(["apply", "-f", "-"], { input: BROKEN });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`admission webhook "${WEBHOOK_NAME}" denied the request`);
    const expected = await weftValidateLines(BROKEN);
    expect(expected.length).toBeGreaterThanOrEqual(2);
    for (const line of expected) expect(result.stderr).toContain(line);
    expect(result.stderr).toMatch(/spec\.http\[0\]\.route\[0\]\.destination\.port\.number/);
    // Nothing was stored.
    const get = await cluster.kubectl(["get", "virtualservice", "broken", "-n", "default"]);
    expect(get.code).not.toBe(0);
    expect(get.stderr).toContain("NotFound");
  });

  it("a valid resource with a warning is stored and kubectl shows the warning", async () => {
    const result = await cluster.kubectl(["apply", "-f", "-"], { input: WITH_WARNING });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/Warning: .*VirtualService\/default\/single: spec\.http\[0\]\.route\[0\]\.weight: a single destination receives all traffic/);
  });

  it("an update that breaks a stored resource is refused too; other kinds are not sent to Weft", async () => {
    const broken = WITH_WARNING.replace("host: reviews }", "host: reviews, port: { number: 0 } }");
    const result = await cluster.kubectl(["apply", "-f", "-"], { input: broken });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("VirtualService/default/single: spec.http[0].route[0].destination.port.number");
    const cm = await cluster.kubectl(["create", "configmap", "unrelated", "-n", "default", "--from-literal=a=b"]);
    expect(cm.code, cm.stderr).toBe(0);
  });

  it("the caBundle follows a root rotation, and the webhook keeps answering with a certificate from the new root", async () => {
    const api = cluster.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    const bundleOf = async () => {
      const c = await api.readValidatingWebhookConfiguration({ name: DEFAULT_WEBHOOK_CONFIGURATION_NAME });
      return Buffer.from(c.webhooks![0]!.clientConfig.caBundle as unknown as string, "base64").toString();
    };
    await ca.beginRootRotation();
    await eventually("the caBundle with both roots", async () => ((await bundleOf()) === ca.trustBundlePem() ? true : undefined), 30_000);
    await ca.finishRootRotation();
    await eventually("the caBundle with the new root only", async () => ((await bundleOf()) === ca.trustBundlePem() ? true : undefined), 30_000);
    // The apiserver reloads the configuration and verifies the renewed serving certificate.
    await eventually("a denial after the rotation", async () => {
      const r = await cluster.kubectl(["apply", "--dry-run=server", "-f", "-"], { input: BROKEN });
      return r.code !== 0 && r.stderr.includes("denied the request") ? true : undefined;
    }, 60_000, () => cluster.logTail("kube-apiserver"));
  });

  it("a deleted configuration is put back by the keeper", async () => {
    const before = webhook!.keeper.writes;
    const del = await cluster.kubectl(["delete", "validatingwebhookconfiguration", DEFAULT_WEBHOOK_CONFIGURATION_NAME]);
    expect(del.code, del.stderr).toBe(0);
    await eventually("the configuration recreated", async () => (webhook!.keeper.writes > before ? true : undefined), 30_000);
    const get = await cluster.kubectl(["get", "validatingwebhookconfiguration", DEFAULT_WEBHOOK_CONFIGURATION_NAME]);
    expect(get.code, get.stderr).toBe(0);
  });

  it("with Weft down, applies are not blocked (failurePolicy Ignore)", async () => {
    await webhook!.close();
    webhook = undefined;
    const started = Date.now();
    const result = await cluster.kubectl(["apply", "-f", "-"], { input: BROKEN });
    expect(result.code, result.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(20_000);
    await cluster.kubectl(["delete", "virtualservice", "broken", "-n", "default"]);
  });
});
