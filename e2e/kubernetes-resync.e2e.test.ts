// Kubernetes mode when the API server goes away and when its watches expire (410 Gone):
// Weft keeps the config it has, resumes or relists, and never pushes an emptied or partial
// config — requests through the sidecars keep succeeding the whole time.
//
//   flock /tmp/weft-pods.lock npx vitest run e2e/kubernetes-resync.e2e.test.ts
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resourceKey, type MeshConfig, type ServiceEntry } from "../src/api/types.js";
import type { RunningPod } from "./kubernetes/kubelet.js";
import { answeredBy, sleep, startKubeMesh, kubeMeshUnavailable, podYaml, type KubeMesh } from "./harness/kube-mesh.js";

const unavailable = await kubeMeshUnavailable();
const runnable = unavailable === "";
if (!runnable) process.stderr.write(`kubernetes-resync e2e skipped: ${unavailable}\n`);

const pod = (name: string, labels: Record<string, string>, ports: number[]) => podYaml({ name, namespace: "shop", labels, ports });

const OBJECTS = `
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { istio-injection: enabled } }
---
apiVersion: v1
kind: Service
metadata: { name: cart, namespace: shop }
spec:
  selector: { app: cart }
  ports: [{ name: http, port: 8080, targetPort: 8080 }]
---
${pod("cart-a", { app: "cart" }, [8080])}
---
${pod("cart-b", { app: "cart" }, [8080])}
---
${pod("client", { app: "client" }, [])}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: cart, namespace: shop }
spec:
  hosts: [cart]
  http:
  - route: [{ destination: { host: cart } }]
    headers: { response: { set: { x-routed-by: cart-virtualservice } } }
`;

const CART = "cart.shop.svc.cluster.local";

/** A Service without a selector: only there to show that changes arrive. */
const probeService = (name: string) => `
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: shop }
spec: { ports: [{ name: http, port: 80 }] }
`;

/** The cart service as an applied config has it: its endpoints and whether its VirtualService is there. */
function cartOf(config: MeshConfig): { endpoints: number; virtualService: boolean } {
  const entry = config.resources.find((s) => s.resource.kind === "ServiceEntry" && (s.resource as ServiceEntry).spec.hosts.includes(CART))?.resource as ServiceEntry | undefined;
  return { endpoints: entry?.spec.endpoints?.length ?? 0, virtualService: config.resources.some((s) => s.resource.kind === "VirtualService" && s.resource.metadata.name === "cart") };
}

/** Resources of `before` missing from `after`: none may go missing while nothing is deleted (a partial config). */
function missingFrom(before: MeshConfig, after: MeshConfig): string[] {
  const keys = new Set(after.resources.map((s) => resourceKey(s.resource)));
  return before.resources.map((s) => resourceKey(s.resource)).filter((k) => !keys.has(k));
}

/** etcd's client URL, from its command line. */
function etcdUrl(mesh: KubeMesh): string {
  const pid = mesh.cluster.pid("etcd");
  const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  const flag = args.find((a) => a.startsWith("--listen-client-urls="))!;
  return flag.slice("--listen-client-urls=".length).split(",")[0]!;
}

async function etcd(mesh: KubeMesh, call: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${etcdUrl(mesh)}/v3/${call}`, { method: "POST", body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`etcd ${call}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

describe.skipIf(!runnable)("Kubernetes mode: API server restart and watch expiry", () => {
  let mesh: KubeMesh;
  let client: RunningPod;
  let cartIp: string;
  /** Requests made by the background loop, and the ones that failed (with why). */
  const loop = { requests: 0, failures: [] as string[], stop: false, done: Promise.resolve() };

  beforeAll(async () => {
    mesh = await startKubeMesh({ kubelet: {} });
    await mesh.apply(OBJECTS);
    for (const name of ["cart-a", "cart-b"]) await mesh.kubelet.waitForPod("shop", name);
    client = await mesh.kubelet.waitForPod("shop", "client");
    cartIp = (await mesh.kubectl(["get", "service", "cart", "-n", "shop", "-o", "jsonpath={.spec.clusterIP}"])).trim();
    await mesh.settle((m) => m.serviceByHost.get(CART)?.endpoints.length === 2 && m.virtualServices.length === 1, "cart with 2 endpoints and its VirtualService");
    // Requests through the client's sidecar for the whole test: bounded in count and time.
    loop.done = (async () => {
      const deadline = Date.now() + 300_000;
      while (!loop.stop && loop.requests < 5000 && Date.now() < deadline) {
        loop.requests++;
        try {
          const res = await client.fetch({ host: cartIp, port: 8080, path: "/", headers: { host: "cart:8080" }, timeoutMs: 5000 });
          if (res.status !== 200 || res.headers["x-routed-by"] !== "cart-virtualservice") {
            loop.failures.push(`${new Date().toISOString()} HTTP ${res.status} routed-by=${String(res.headers["x-routed-by"])} ${res.status === 200 ? `from ${answeredBy(res.body)}` : `headers ${JSON.stringify(res.headers)} body ${JSON.stringify(res.body.slice(0, 200))}`}`);
          }
        } catch (err) {
          loop.failures.push(`${new Date().toISOString()} ${(err as Error).message}`);
        }
        await sleep(50);
      }
    })();
  }, 240_000);

  afterAll(async () => {
    loop.stop = true;
    await loop.done;
    expect(mesh?.kubelet.errors ?? []).toEqual([]);
    await mesh?.stop();
  }, 60_000);

  it("an API server restart: the watches resume, nothing is emptied, no request fails", async () => {
    const appliedBefore = mesh.applied.length;
    const last = mesh.applied.at(-1)!;
    const requestsBefore = loop.requests;
    await mesh.cluster.restart("kube-apiserver", { downMs: 3000 });
    // A change made after the restart arrives: the watches are back.
    await mesh.apply(probeService("after-restart"));
    await mesh.settle((m) => !!m.serviceByHost.get("after-restart.shop.svc.cluster.local"), "a Service created after the restart");
    expect(loop.requests).toBeGreaterThan(requestsBefore + 10);
    for (const config of mesh.applied.slice(appliedBefore)) {
      expect(cartOf(config)).toEqual({ endpoints: 2, virtualService: true });
      expect(missingFrom(last, config)).toEqual([]);
    }
    expect(loop.failures).toEqual([]);
  });

  it("watches expired (410 Gone): Weft relists without pushing an empty or partial config, no request fails", async () => {
    const appliedBefore = mesh.applied.length;
    const last = mesh.applied.at(-1)!;
    const relistsBefore = Object.values(mesh.source.stats().reflectors).reduce((n, s) => n + s.relistsAfterGone, 0);
    const requestsBefore = loop.requests;
    // While the API server is down, etcd moves on and compacts its history: every
    // resourceVersion Weft holds is now older than what the restarted API server can serve.
    const restarted = mesh.cluster.restart("kube-apiserver", { downMs: 4000 });
    await sleep(1500);
    let revision = "0";
    for (let i = 0; i < 20; i++) {
      const put = await etcd(mesh, "kv/put", { key: Buffer.from(`/weft-test/bump-${i}`).toString("base64"), value: Buffer.from("x").toString("base64") });
      revision = String((put.header as { revision: string }).revision);
    }
    await etcd(mesh, "kv/compaction", { revision, physical: true });
    await restarted;
    // Every reflector relisted after 410 and is synced again.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const stats = mesh.source.stats().reflectors;
      const relists = Object.values(stats).reduce((n, s) => n + s.relistsAfterGone, 0);
      if (relists > relistsBefore && mesh.source.synced) break;
      if (Date.now() > deadline) throw new Error(`no relist after 410 within 60 s: ${JSON.stringify(stats)}`);
      await sleep(200);
    }
    await mesh.apply(probeService("after-relist"));
    await mesh.settle((m) => !!m.serviceByHost.get("after-relist.shop.svc.cluster.local"), "a Service created after the relist");
    expect(loop.requests).toBeGreaterThan(requestsBefore + 10);
    for (const config of mesh.applied.slice(appliedBefore)) {
      expect(cartOf(config)).toEqual({ endpoints: 2, virtualService: true });
      expect(missingFrom(last, config)).toEqual([]);
    }
    expect(loop.failures).toEqual([]);
  });
});
