// Status on Istio resources, against the REAL kube-apiserver with pods run by the kubelet
// harness (network namespaces with real Envoy sidecars): a VirtualService whose regex passes
// validation (RE2 syntax) but that Envoy refuses (RE2 program size over Envoy's limit of 100)
// shows Envoy's NACK text and how many proxies reject it in status.conditions (Reconciled False,
// reason Rejected, observedGeneration); fixing it clears the condition; an invalid resource
// shows its validation problem; an unchanged status is not written again (writes counted);
// Weft writes through the status subresource with field manager "weft".
//
// Creates pods: flock /tmp/weft-pods.lock npx vitest run e2e/kubernetes-status.e2e.test.ts
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MeshConfig } from "../src/api/types.js";
import { silentLogger } from "../src/log/logger.js";
import { startStatusWriting } from "../src/runner/status-writing.js";
import type { ResourceStatus } from "../src/status/resource-status.js";
import type { StatusController } from "../src/status/status-controller.js";
import { kubeMeshUnavailable, podYaml, sleep, startKubeMesh, type KubeMesh } from "./harness/kube-mesh.js";

const unavailable = await kubeMeshUnavailable();
if (unavailable) process.stderr.write(`kubernetes-status e2e skipped: ${unavailable}\n`);

const BASE = `
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { istio-injection: enabled } }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 9080, targetPort: 9080 }]
---
${podYaml({ name: "web-1", namespace: "shop", labels: { app: "web" }, ports: [9080] })}
---
${podYaml({ name: "client", namespace: "shop", labels: { app: "client" } })}
`;

// Valid RE2 (Istio's validation accepts it) but its compiled program has 365 instructions:
// Envoy refuses regexes over 100 ("RE2 program size of 365 > max program size of 100").
const TOO_BIG_REGEX = "/(abcdefghij){30}";

const vs = (uri: Record<string, unknown>, extra = "") => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: shop }
spec:
  hosts: [web]
  http:
  - match: [{ uri: ${JSON.stringify(uri)} }]
    route: [{ destination: { host: web${extra} } }]
  - route: [{ destination: { host: web } }]
`;

interface StoredObject {
  metadata: { generation: number; managedFields?: { manager: string; subresource?: string; operation: string }[] };
  status?: ResourceStatus;
}

describe.skipIf(unavailable !== "")("status on Istio resources (real apiserver, real Envoy)", () => {
  let mesh: KubeMesh;
  let status: StatusController;
  let lastConfig: MeshConfig | undefined;
  const writes = new Map<string, number>();
  const KEY = "VirtualService/shop/web";

  const stored = async (kind = "virtualservice", name = "web"): Promise<StoredObject> =>
    JSON.parse(await mesh.kubectl(["get", kind, name, "-n", "shop", "--show-managed-fields", "-o", "json"])) as StoredObject;

  /** Polls the stored object until `check` holds (or fails with what was last seen). */
  async function waitForStatus(what: string, check: (o: StoredObject) => boolean, timeoutMs = 60_000, kind?: string, name?: string): Promise<StoredObject> {
    const deadline = Date.now() + timeoutMs;
    let last: StoredObject | undefined;
    for (;;) {
      last = await stored(kind, name);
      if (check(last)) return last;
      if (Date.now() > deadline) {
        const proxies = mesh.runner.cp.xds.registry.list().map((p) => ({ node: p.nodeId, rds: p.types.rds }));
        throw new Error(`${what}: not seen in ${timeoutMs} ms; last stored: ${JSON.stringify({ generation: last.metadata.generation, status: last.status })}; ` +
          `queue ${JSON.stringify(status.queue.stats)}; proxies ${JSON.stringify(proxies).slice(0, 3000)}`);
      }
      await sleep(200);
    }
  }

  beforeAll(async () => {
    mesh = await startKubeMesh({
      onApplied: (c) => {
        lastConfig = c;
        status?.configApplied(c);
      },
    });
    status = startStatusWriting(mesh.runner, {
      kubeConfig: mesh.cluster.kubeConfig,
      logger: silentLogger(),
      debounceMs: 200,
      wrapWrite: (write) => async (target, s) => {
        writes.set(target.key, (writes.get(target.key) ?? 0) + 1);
        return write(target, s);
      },
    });
    if (lastConfig) status.configApplied(lastConfig);
    await mesh.apply(BASE + "---\n" + vs({ prefix: "/" }));
    await mesh.kubelet.waitForPod("shop", "web-1");
    await mesh.kubelet.waitForPod("shop", "client");
    await mesh.settle((m) => m.serviceByHost.get("web.shop.svc.cluster.local")?.endpoints.length === 1 && m.virtualServices.length === 1, "web with its pod and VirtualService");
  }, 240_000);

  afterAll(async () => {
    status?.close();
    expect(mesh?.kubelet.errors ?? []).toEqual([]);
    await mesh?.stop();
  }, 60_000);

  it("a valid resource every proxy accepted: Reconciled True with its generation, written by field manager weft on the status subresource", async () => {
    const o = await waitForStatus("Reconciled True", (x) => x.status?.conditions?.[0]?.status === "True" && x.status.observedGeneration === x.metadata.generation);
    expect(o.status!.conditions[0]).toMatchObject({ type: "Reconciled", reason: "Accepted", observedGeneration: o.metadata.generation });
    expect(o.status!.conditions[0]!.lastTransitionTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(o.metadata.managedFields?.some((f) => f.manager === "weft" && f.subresource === "status" && f.operation === "Apply")).toBe(true);
  });

  it("a valid resource Envoy rejects shows the NACK text and how many proxies reject it", async () => {
    await mesh.apply(vs({ regex: TOO_BIG_REGEX }));
    const o = await waitForStatus("Reconciled False (Rejected)", (x) => x.status?.conditions?.[0]?.reason === "Rejected" && x.status.observedGeneration === x.metadata.generation);
    // Every sidecar that has routes for web:9080 rejects it (both pods' sidecars).
    const rejecting = mesh.runner.cp.xds.registry.list().filter((p) => p.types.rds?.lastNack?.message.includes("RE2 program size") && p.types.rds.ackedVersion !== p.types.rds.sentVersion);
    expect(rejecting.length).toBe(2);
    const condition = o.status!.conditions[0]!;
    expect(condition.status).toBe("False");
    expect(condition.message).toContain(`rejected by 2 proxies (rds): regex '${TOO_BIG_REGEX}' RE2 program size of`);
    expect(condition.message).toContain("> max program size of 100");
    expect(o.status!.observedGeneration).toBe(o.metadata.generation);
  });

  it("fixing the resource clears the condition", async () => {
    await mesh.apply(vs({ regex: "/v1/.*" }));
    const o = await waitForStatus("Reconciled True again", (x) => x.status?.conditions?.[0]?.status === "True" && x.status.observedGeneration === x.metadata.generation);
    expect(o.status!.conditions[0]!.reason).toBe("Accepted");
    expect(o.status!.conditions[0]!.message).not.toContain("rejected");
  });

  it("an unchanged status is not written again", async () => {
    await status.queue.idle();
    const before = writes.get(KEY)!;
    const passes = status.passes;
    // Other changes make Weft work out every status again: a new DestinationRule, a pod label.
    await mesh.apply(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web, namespace: shop }
spec: { host: web, trafficPolicy: { connectionPool: { tcp: { maxConnections: 100 } } } }
`);
    await waitForStatus("the DestinationRule's status", (x) => x.status?.conditions?.[0]?.status === "True", 60_000, "destinationrule", "web");
    await mesh.kubectl(["label", "pod", "client", "-n", "shop", "tier=front", "--overwrite"]);
    const deadline = Date.now() + 30_000;
    while (status.passes < passes + 2 && Date.now() < deadline) await sleep(100);
    expect(status.passes).toBeGreaterThanOrEqual(passes + 2);
    await status.queue.idle();
    expect(writes.get(KEY)).toBe(before);
    expect(writes.get("DestinationRule/shop/web")).toBe(1);
    expect(status.queue.stats.unchanged).toBeGreaterThan(0);
  });

  it("an invalid resource (stored while no webhook checked it) shows its validation problem", async () => {
    await mesh.apply(vs({ prefix: "/" }, ", port: { number: 70000 }"));
    const o = await waitForStatus("Reconciled False (Invalid)", (x) => x.status?.conditions?.[0]?.reason === "Invalid" && x.status.observedGeneration === x.metadata.generation);
    expect(o.status!.conditions[0]!.message).toContain("spec.http[0].route[0].destination.port.number: expected an integer from 1 to 65535");
    expect(o.status!.validationMessages).toContainEqual({ level: "ERROR", description: expect.stringContaining("spec.http[0].route[0].destination.port.number") });
  });
});
