// The README's RBAC for Kubernetes mode, run as pasted against the real kube-apiserver: with
// only that service account's token, Weft's Kubernetes source lists and watches everything it
// reads (every core type and every Istio kind of the kind registry) and becomes synced. Without
// the binding it stays "not synced" and its log names what to grant.
//
//   flock /tmp/weft-pods.lock npx vitest run e2e/kubernetes-rbac.e2e.test.ts
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { PassThrough } from "node:stream";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/log/logger.js";
import { ISTIO_KINDS } from "../src/sources/kubernetes/istio-kinds.js";
import { KubernetesSource } from "../src/sources/kubernetes/kubernetes-source.js";
import { kubernetesSupport } from "./kubernetes/binaries.js";
import { startKubernetes, type KubernetesCluster } from "./kubernetes/cluster.js";
import { applyCrds } from "./kubernetes/manifests.js";
import { until } from "./kubernetes/workloads.js";

const support = kubernetesSupport();
if (!support.available) process.stderr.write(`kubernetes-rbac e2e skipped: ${support.reason}\n`);

/** The shell block under "**RBAC.**" in the README's "## Kubernetes" section. */
function readmeRbacBlock(): string {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf("\n## Kubernetes\n"));
  const rbac = section.slice(section.indexOf("**RBAC.**"));
  const block = /```sh\n([\s\S]*?)```/.exec(rbac)?.[1];
  if (!block) throw new Error("README.md: no ```sh block after **RBAC.** in the Kubernetes section");
  return block;
}

/** Runs a shell block as a user would paste it: our kubectl first on PATH, KUBECONFIG set. */
function runPasted(block: string, cluster: KubernetesCluster): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-euo", "pipefail", "-c", block], {
      env: { ...process.env, PATH: `${path.dirname(cluster.binaries.kubectl)}:${process.env.PATH ?? ""}`, KUBECONFIG: cluster.kubeconfigPath },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code) => (clearTimeout(timer), resolve({ code, output })));
  });
}

describe.skipIf(!support.available)("Kubernetes mode with the README's RBAC only", () => {
  let cluster: KubernetesCluster;
  let source: KubernetesSource | undefined;
  const logLines: { level: number; msg: string; resource?: string }[] = [];

  beforeAll(async () => {
    cluster = await startKubernetes();
    await applyCrds(cluster.kubeConfig, 60_000);
    for (const args of [["create", "namespace", "istio-system"], ["create", "serviceaccount", "weft", "-n", "istio-system"]]) {
      const r = await cluster.kubectl(args);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
    }
    // Weft as the service account, with nothing granted yet.
    const token = await cluster.createToken("istio-system", "weft");
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: "test", server: cluster.server, caFile: cluster.caFile }],
      users: [{ name: "weft", token }],
      contexts: [{ name: "weft", cluster: "test", user: "weft" }],
      currentContext: "weft",
    });
    const stream = new PassThrough();
    stream.on("data", (d: Buffer) => {
      for (const line of d.toString().split("\n")) if (line.trim()) logLines.push(JSON.parse(line) as (typeof logLines)[number]);
    });
    source = new KubernetesSource({ kubeConfig, logger: createLogger({ level: "info", destination: stream }), initialBackoffMs: 200, maxBackoffMs: 1000 });
    await source.start({ changed: () => {} });
  }, 120_000);

  afterAll(async () => {
    await source?.close();
    await cluster?.stop();
  }, 60_000);

  it("without the binding: not synced, and each refused list names the resource and what to grant", async () => {
    const watched = Object.keys(source!.stats().reflectors);
    // Every type was tried and refused at least once.
    await until("every reflector refused once", 30_000, () => (Object.values(source!.stats().reflectors).every((s) => s.errors > 0) ? true : undefined));
    expect(source!.synced).toBe(false);
    const refused = new Set(logLines.filter((l) => l.level >= 50 && /needs "list" and "watch"/.test(l.msg)).map((l) => l.resource));
    expect([...refused].sort()).toEqual([...watched].sort());
  });

  it("the README's block, pasted, grants exactly enough: every core type and Istio kind syncs", async () => {
    const watched = Object.keys(source!.stats().reflectors);
    for (const kind of ISTIO_KINDS) expect(watched).toContain(`${kind.plural}.${kind.group}`);
    const pasted = await runPasted(readmeRbacBlock(), cluster);
    expect(pasted, pasted.output).toMatchObject({ code: 0 });
    await until(
      "Weft's Kubernetes source synced with the README's RBAC",
      60_000,
      () => (source!.synced ? true : undefined),
      () => `not synced: ${Object.entries(source!.stats().reflectors).filter(([, s]) => s.lists === 0).map(([r]) => r).join(", ")}; last errors: ${logLines.slice(-5).map((l) => l.msg).join(" | ")}`,
    );
    expect(Object.values(source!.stats().reflectors).every((s) => s.lists > 0)).toBe(true);
    // Nothing more than list and watch: no writes.
    const canCreate = await cluster.kubectl(["auth", "can-i", "create", "virtualservices.networking.istio.io", "--as=system:serviceaccount:istio-system:weft", "-A"]);
    expect(canCreate.stdout.trim()).toBe("no");
  }, 120_000);
});
