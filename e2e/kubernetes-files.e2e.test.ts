// Files and Kubernetes together: `--config-dir` and `--kubernetes` at once. A ServiceEntry
// for a VM, kept in a file, is reachable from a Kubernetes pod's sidecar; a VirtualService in
// the cluster routes to the file's host (one mesh, two sources).
//
//   flock /tmp/weft-pods.lock npx vitest run e2e/kubernetes-files.e2e.test.ts
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bridgeAddress } from "../src/capture/pod-network.js";
import type { RunningPod } from "./kubernetes/kubelet.js";
import { startKubeMesh, kubeMeshUnavailable, type KubeMesh } from "./harness/kube-mesh.js";
import { startUpstream, type Upstream } from "./harness/upstream.js";
import { freePort } from "../src/runner/free-port.js";

const unavailable = await kubeMeshUnavailable();
const runnable = unavailable === "";
if (!runnable) process.stderr.write(`kubernetes-files e2e skipped: ${unavailable}\n`);

const HOST = "billing.vm.internal";

describe.skipIf(!runnable)("Kubernetes mode with a config directory", () => {
  let mesh: KubeMesh;
  let vm: Upstream;
  let client: RunningPod;
  let dir: string;

  beforeAll(async () => {
    // The VM listens on the pod bridge, which exists once a pod does: its port is chosen now.
    const vmPort = await freePort();
    dir = await mkdtemp(path.join(os.tmpdir(), "weft-k8s-files-"));
    await writeFile(
      path.join(dir, "vms.yaml"),
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: billing-vm, namespace: shop }
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints: [{ address: ${bridgeAddress()}, ports: { http: ${vmPort} } }]
`,
    );
    mesh = await startKubeMesh({ configDir: dir });
    await mesh.apply(`
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { istio-injection: enabled } }
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: shop, labels: { app: client } }
spec:
  containers: [{ name: app, image: weft.dev/echo }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: billing, namespace: shop }
spec:
  hosts: [${HOST}]
  http:
  - route: [{ destination: { host: ${HOST} } }]
    headers: { request: { set: { x-via: cluster-virtualservice } } }
`);
    client = await mesh.kubelet.waitForPod("shop", "client");
    vm = await startUpstream("billing-vm", { host: bridgeAddress(), port: vmPort });
    await mesh.settle((m) => !!m.serviceByHost.get(HOST) && m.virtualServices.some((v) => v.metadata.name === "billing"), "the file's ServiceEntry and the cluster's VirtualService");
  }, 240_000);

  afterAll(async () => {
    await mesh?.stop();
    await vm?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it("a pod's sidecar reaches the file's ServiceEntry, routed by the cluster's VirtualService", async () => {
    for (let i = 0; i < 5; i++) {
      const res = await client.fetch({ host: bridgeAddress(), port: 8000, path: "/invoice", headers: { host: `${HOST}:8000` } });
      expect(res.status).toBe(200);
      const echo = JSON.parse(res.body) as { upstream: string; path: string; headers: Record<string, string> };
      expect(echo).toMatchObject({ upstream: "billing-vm", path: "/invoice" });
      expect(echo.headers["x-via"]).toBe("cluster-virtualservice");
    }
  });

  it("a file edit and a cluster change both apply (neither source replaces the other)", async () => {
    await writeFile(path.join(dir, "vms.yaml"), (await readFile(path.join(dir, "vms.yaml"), "utf8")).replace(`hosts: [${HOST}]`, `hosts: [${HOST}, billing-legacy.vm.internal]`));
    await mesh.apply(`
apiVersion: v1
kind: Service
metadata: { name: extra, namespace: shop }
spec: { ports: [{ name: http, port: 80 }] }
`);
    await mesh.settle((m) => !!m.serviceByHost.get("extra.shop.svc.cluster.local") && !!m.serviceByHost.get("billing-legacy.vm.internal"), "the new Service and the edited file");
    const res = await client.fetch({ host: bridgeAddress(), port: 8000, path: "/", headers: { host: "billing-legacy.vm.internal:8000" } });
    expect(res.status).toBe(200);
  });
});
