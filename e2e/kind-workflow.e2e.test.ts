// The kind pieces that cannot run here (no Docker engine, so no kind): the GitHub Actions
// workflow passes actionlint (v1.7.12 from the Go module proxy), kind-config.yaml is the cluster
// the chart expects, and e2e/kind/run.sh is well-formed and refuses unknown steps. Its steps that
// need no kind (install, deploy-sample, check-control-plane) run against the real apiserver in
// e2e/helm-install.e2e.test.ts.
//
//   npx vitest run e2e/kind-workflow.e2e.test.ts
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { runCommand } from "../src/capture/pod-network.js";
import { REPO, goToolSupport } from "./helm/go-tools.js";

const actionlint = goToolSupport("actionlint");
if (!actionlint.available) process.stderr.write(`kind-workflow e2e: actionlint checks skipped: ${actionlint.reason}\n`);

const WORKFLOW = path.join(REPO, ".github", "workflows", "kind.yaml");
const SCRIPT = path.join(REPO, "e2e", "kind", "run.sh");

describe("kind: workflow, cluster config and script", () => {
  it.skipIf(!actionlint.available)("actionlint accepts .github/workflows/kind.yaml", async () => {
    const res = await runCommand([actionlint.path, "-no-color", WORKFLOW], { timeoutMs: 60_000 });
    expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
  });

  it.skipIf(!actionlint.available)("actionlint finds a broken copy of it (the lint really runs)", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "weft-actionlint-"));
    try {
      const broken = (await readFile(WORKFLOW, "utf8")).replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-24.04\n    timeout-minutes: ${{ matrix.nothing }}");
      const file = path.join(dir, "kind.yaml");
      await writeFile(file, broken);
      const res = await runCommand([actionlint.path, "-no-color", file], { timeoutMs: 60_000 });
      expect(res.code).toBe(1);
      expect(res.stdout).toMatch(/matrix/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("the workflow runs every step of e2e/kind/run.sh and always deletes the cluster", async () => {
    const workflow = parse(await readFile(WORKFLOW, "utf8")) as { jobs: Record<string, { steps: { run?: string; if?: string }[] }> };
    const runs = Object.values(workflow.jobs).flatMap((j) => j.steps);
    expect(runs.some((s) => s.run?.trim() === "e2e/kind/run.sh")).toBe(true);
    expect(runs.find((s) => s.run?.includes("delete-cluster"))?.if).toBe("always()");
    expect(runs.some((s) => s.run?.includes("scripts/cached-go-build.sh"))).toBe(true);
  });

  it("kind-config.yaml: one control plane and two workers (the chart's two replicas on different nodes), default Service range", async () => {
    const config = parse(await readFile(path.join(REPO, "kind-config.yaml"), "utf8")) as { kind: string; apiVersion: string; nodes: { role: string }[]; networking: { serviceSubnet: string } };
    expect([config.kind, config.apiVersion]).toEqual(["Cluster", "kind.x-k8s.io/v1alpha4"]);
    expect(config.nodes.map((n) => n.role)).toEqual(["control-plane", "worker", "worker"]);
    expect(config.networking.serviceSubnet).toBe("10.96.0.0/16");
  });

  it("run.sh parses, and refuses an unknown step naming the known ones", async () => {
    expect((await runCommand(["bash", "-n", SCRIPT])).code).toBe(0);
    const res = await runCommand([SCRIPT, "no-such-step"], { timeoutMs: 30_000 });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("unknown step 'no-such-step'");
    for (const step of ["create-cluster", "build-image", "load-image", "install", "deploy-sample", "check-control-plane", "check-traffic", "check-mtls", "check-policy", "delete-cluster"]) {
      expect(res.stderr).toContain(step);
    }
  });
});
