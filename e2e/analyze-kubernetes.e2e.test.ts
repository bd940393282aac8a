// `weft analyze --kubernetes` against a REAL kube-apiserver (e2e/kubernetes fixture): the CLI as
// users run it reads the cluster's Services and Istio resources, reports Istio's codes with the
// cluster object as origin, and files given with -k replace the cluster's resources of the same
// name, as istioctl's "simulate applying these files". No pods are created (no lock needed).
//
//   npx vitest run e2e/analyze-kubernetes.e2e.test.ts
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubernetesSupport } from "./kubernetes/binaries.js";
import { startKubernetes, type KubernetesCluster } from "./kubernetes/cluster.js";
import { applyCrds, applyYaml } from "./kubernetes/manifests.js";

const support = kubernetesSupport();
if (!support.available) process.stderr.write(`analyze-kubernetes e2e skipped: ${support.reason}\n`);

function weft(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const ROUTE_TO = (host: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - route: [{ destination: { host: ${host} } }]
`;

describe.skipIf(!support.available)("weft analyze --kubernetes", () => {
  let cluster: KubernetesCluster;
  let dir: string;

  beforeAll(async () => {
    cluster = await startKubernetes({ waitForControllers: false });
    await applyCrds(cluster.kubeConfig, 60_000);
    await applyYaml(
      cluster.kubeConfig,
      `apiVersion: v1
kind: Namespace
metadata: { name: shop }
---
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: shop }
spec:
  selector: { app: reviews }
  ports: [{ name: http, port: 9080 }]
---
${ROUTE_TO("ratings")}`,
    );
    dir = await mkdtemp(path.join(os.tmpdir(), "weft-analyze-k8s-"));
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it("reports a cluster VirtualService's missing host as IST0101 with the cluster object as origin (exit 79)", async () => {
    const result = await weft(["analyze", "-k", "--kubeconfig", cluster.kubeconfigPath]);
    expect(result.code, result.stderr).toBe(79);
    expect(result.stdout).toMatch(/^Error \[IST0101\] \(VirtualService reviews\.shop resourceVersion \d+\) spec\.http\[0\]\.route\[0\]\.destination\.host: unknown host "ratings" \(ratings\.shop\.svc\.cluster\.local\)/);
    expect(result.stdout.trim().split("\n")).toHaveLength(1); // the Service "reviews" is known: only the route is reported
  }, 150_000);

  it("files given with -k replace the cluster's resource of the same name (simulate applying them): exit 0", async () => {
    const fixed = path.join(dir, "fixed.yaml");
    await writeFile(fixed, ROUTE_TO("reviews"));
    const result = await weft(["analyze", "-k", "--kubeconfig", cluster.kubeconfigPath, fixed]);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain(`No validation issues found when analyzing the cluster, ${fixed}.`);
    expect(result.code).toBe(0);
  }, 150_000);
});
