// Proxy classes against the real wiring (mesh runner, gRPC xDS server, simulated Envoys):
// released when their last proxy leaves, bounded with a clear refusal, and under --security
// defined by the credential, never by node metadata; streams without a credential get nothing.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { XDS_TYPES } from "../envoy/type-urls.js";
import { silentLogger } from "../log/logger.js";
import { SimulatedClient } from "../xds/simulated-client.js";
import { bookinfoConfig } from "./bookinfo-fixture.js";
import { startMeshRunner, type MeshRunner } from "./mesh-runner.js";
import { readFileSync } from "node:fs";

const GRACE_MS = 150;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How a stream started: its first response, or the gRPC status that ended it. */
function firstOutcome(c: SimulatedClient, timeoutMs = 10_000): Promise<{ response: true } | { code: number; details: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${c.opts.nodeId}: neither a response nor an error within ${timeoutMs} ms`)), timeoutMs);
    c.once("response", () => {
      clearTimeout(timer);
      resolve({ response: true });
    });
    c.once("stream-error", (e: Error & { code?: number; details?: string }) => {
      clearTimeout(timer);
      resolve({ code: e.code ?? -1, details: e.details ?? e.message });
    });
  });
}

async function waitUntil(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function metricValue(runner: MeshRunner, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await runner.cp.metricsRegistry.getMetricsAsJSON()).find((m) => m.name === name);
  const v = metric?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

let runner: MeshRunner | undefined;
const clients: SimulatedClient[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await runner?.close(200);
  runner = undefined;
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

function sidecar(target: string, name: string, namespace: string, extra: { token?: string; tls?: { caPem: string; serverName: string }; labels?: Record<string, string> } = {}): SimulatedClient {
  const c = new SimulatedClient({
    target,
    nodeId: `sidecar~10.0.0.1~${name}.${namespace}~${namespace}.svc.cluster.local`,
    mode: "delta",
    metadata: { NAMESPACE: namespace, LABELS: JSON.stringify(extra.labels ?? { app: name }) },
    ...(extra.token ? { token: extra.token } : {}),
    ...(extra.tls ? { tls: extra.tls } : {}),
  });
  clients.push(c);
  return c;
}

describe("proxy classes without --security (node metadata trusted, classes bounded)", () => {
  it("streams each claiming a new namespace, then leaving: classes, snapshots and generated parts return to the baseline", async () => {
    runner = await startMeshRunner({ logger: silentLogger(), classLimits: { releaseGraceMs: GRACE_MS } });
    runner.controller.setConfig(bookinfoConfig());
    const target = `127.0.0.1:${runner.cp.xdsPort}`;
    const baseline = { holdings: runner.controller.holdings(), keys: runner.cp.cache.keys().length };
    const batch = Array.from({ length: 30 }, (_, i) => sidecar(target, `app${i}`, `attacker-${i}`));
    for (const c of batch) c.start();
    await Promise.all(batch.map((c) => c.waitFor(() => c.names(XDS_TYPES.listener).length > 0, 10_000, "listeners")));
    expect(runner.controller.classCount).toBe(30);
    expect(await metricValue(runner, "weft_proxy_classes")).toBe(30);
    for (const c of batch) c.close();
    await waitUntil("every class released", () => runner!.controller.classCount === 0);
    await sleep(20); // the sweep of unused parts runs right after the release
    expect(runner.controller.holdings()).toEqual(baseline.holdings);
    expect(runner.cp.cache.keys().length).toBe(baseline.keys);
    expect(await metricValue(runner, "weft_proxy_classes")).toBe(0);
  });

  it("a proxy reconnecting within the grace period finds its class still generated (no regeneration)", async () => {
    runner = await startMeshRunner({ logger: silentLogger(), classLimits: { releaseGraceMs: 2000 } });
    runner.controller.setConfig(bookinfoConfig());
    const target = `127.0.0.1:${runner.cp.xdsPort}`;
    const c = sidecar(target, "reviews", "bookinfo");
    c.start();
    await c.waitFor(() => c.names(XDS_TYPES.listener).length > 0);
    const key = runner.cp.xds.registry.list()[0]!.snapshotKey;
    const snapshot = runner.cp.cache.get(key);
    c.disconnect();
    await waitUntil("the stream to end", () => runner!.cp.xds.registry.size === 0);
    expect(runner.controller.holdings().streams).toBe(0);
    c.start();
    await waitUntil("the stream to return", () => runner!.cp.xds.registry.size === 1);
    expect(runner.cp.cache.get(key)).toBe(snapshot);
    expect(runner.controller.classCount).toBe(1);
  });

  it("past --max-proxy-classes a new class is refused with RESOURCE_EXHAUSTED naming the limit; existing proxies keep being served", async () => {
    runner = await startMeshRunner({ logger: silentLogger(), classLimits: { maxClasses: 3, releaseGraceMs: 60_000 } });
    runner.controller.setConfig(bookinfoConfig());
    const target = `127.0.0.1:${runner.cp.xdsPort}`;
    const held = [0, 1, 2].map((i) => sidecar(target, `app${i}`, `ns-${i}`));
    for (const c of held) c.start();
    await Promise.all(held.map((c) => c.waitFor(() => c.names(XDS_TYPES.listener).length > 0)));
    const extra = sidecar(target, "app3", "ns-3");
    const outcome = firstOutcome(extra);
    extra.start();
    const result = await outcome;
    expect(result).toMatchObject({ code: GrpcStatus.RESOURCE_EXHAUSTED });
    expect("details" in result && result.details).toMatch(/proxy class limit reached: 3 .*--max-proxy-classes/);
    expect(runner.controller.classCount).toBe(3);
    expect(await metricValue(runner, "weft_proxy_classes_refused_total", { reason: "limit" })).toBe(1);
    // A proxy of an existing class is still admitted.
    const same = sidecar(target, "app0", "ns-0");
    same.start();
    await same.waitFor(() => same.names(XDS_TYPES.listener).length > 0);
    // A class nobody uses any more (within its grace period) gives way to a new one.
    held[2]!.close();
    await waitUntil("the stream to end", () => runner!.controller.holdings().streams === 3);
    const later = sidecar(target, "app4", "ns-4");
    later.start();
    await later.waitFor(() => later.names(XDS_TYPES.listener).length > 0);
    expect(runner.controller.classCount).toBe(3);
  });

  it("node metadata with too many labels is refused as invalid, not turned into a class", async () => {
    runner = await startMeshRunner({ logger: silentLogger() });
    runner.controller.setConfig(bookinfoConfig());
    const labels = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, "v"]));
    const c = sidecar(`127.0.0.1:${runner.cp.xdsPort}`, "big", "default", { labels });
    const outcome = firstOutcome(c);
    c.start();
    expect(await outcome).toMatchObject({ code: GrpcStatus.INVALID_ARGUMENT });
    expect(runner.controller.classCount).toBe(0);
  });
});

describe("proxy classes with --security", () => {
  async function secure(): Promise<{ target: string; tls: { caPem: string; serverName: string } }> {
    const stateDir = await mkdtemp(path.join(os.tmpdir(), "weft-classes-"));
    dirs.push(stateDir);
    runner = await startMeshRunner({ logger: silentLogger(), security: { stateDir }, classLimits: { releaseGraceMs: GRACE_MS } });
    runner.controller.setConfig(bookinfoConfig());
    const sec = runner.security!;
    return { target: `127.0.0.1:${runner.cp.xdsPort}`, tls: { caPem: readFileSync(sec.trustBundleFile, "utf8"), serverName: sec.serverName } };
  }

  it("a stream without a token is refused with UNAUTHENTICATED and gets no resources, whatever namespaces it claims", async () => {
    const { target, tls } = await secure();
    const anonymous = Array.from({ length: 5 }, (_, i) => sidecar(target, `anon${i}`, `claimed-${i}`, { tls }));
    const outcomes = anonymous.map((c) => firstOutcome(c));
    for (const c of anonymous) c.start();
    for (const o of await Promise.all(outcomes)) {
      expect(o).toMatchObject({ code: GrpcStatus.UNAUTHENTICATED });
      expect("details" in o && o.details).toMatch(/no valid credential.*Bearer <token>/);
    }
    expect(anonymous.every((c) => c.responses.length === 0)).toBe(true);
    expect(runner!.controller.classCount).toBe(0);
    expect(await metricValue(runner!, "weft_proxy_classes_refused_total", { reason: "unauthenticated" })).toBe(5);
    const forged = sidecar(target, "forged", "bookinfo", { tls, token: "not-a-token" });
    const forgedOutcome = firstOutcome(forged);
    forged.start();
    expect(await forgedOutcome).toMatchObject({ code: GrpcStatus.UNAUTHENTICATED });
  });

  it("namespace, labels and identity come from the credential's WorkloadEntry, never from node metadata", async () => {
    const { target, tls } = await secure();
    const token = runner!.security!.credentials.ensure({ namespace: "bookinfo", name: "productpage-v1" });
    // Two proxies with the same token claiming different namespaces and labels share one class.
    const a = sidecar(target, "x", "attacker-a", { tls, token, labels: { app: "reviews" } });
    const b = sidecar(target, "y", "attacker-b", { tls, token, labels: { app: "ratings", extra: "1" } });
    for (const c of [a, b]) c.start();
    await Promise.all([a, b].map((c) => c.waitFor(() => c.names(XDS_TYPES.listener).length > 0)));
    expect(runner!.controller.classCount).toBe(1);
    const key = runner!.cp.xds.registry.list()[0]!.snapshotKey;
    expect(key).toContain("/bookinfo/");
    expect(key).toContain("app=productpage,version=v1");
    expect(key).toContain("/id=bookinfo/bookinfo-productpage");
  });

  it("one credential's proxies may use at most 8 classes at once (they still choose port, capture, locality): the 9th is refused", async () => {
    const { target, tls } = await secure();
    const token = runner!.security!.credentials.ensure({ namespace: "bookinfo", name: "productpage-v1" });
    const explicit = (port: number) => {
      const c = new SimulatedClient({ target, nodeId: `sidecar~127.0.0.1~p${port}.bookinfo~bookinfo.svc.cluster.local`, mode: "delta", metadata: { INTERCEPTION_MODE: "NONE", WEFT_EXPLICIT_PORT: String(port) }, token, tls });
      clients.push(c);
      return c;
    };
    const eight = Array.from({ length: 8 }, (_, i) => explicit(15100 + i));
    for (const c of eight) c.start();
    await Promise.all(eight.map((c) => c.waitFor(() => c.names(XDS_TYPES.listener).length > 0)));
    const ninth = explicit(15200);
    const outcome = firstOutcome(ninth);
    ninth.start();
    expect(await outcome).toMatchObject({ code: GrpcStatus.RESOURCE_EXHAUSTED });
    expect(runner!.controller.classCount).toBe(8);
    // Once one of them leaves, another may come.
    eight[0]!.close();
    await waitUntil("the stream to end", () => runner!.controller.holdings().streams === 7);
    const tenth = explicit(15300);
    tenth.start();
    await tenth.waitFor(() => tenth.names(XDS_TYPES.listener).length > 0);
  });
});
