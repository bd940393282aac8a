// Pod identity through the real wiring (mesh runner with --security, TLS xDS, simulated
// Envoys) with a simulated API server: the TokenReview answers and the pod records are the
// test's. What is checked: identity from the review, labels and namespace from the pod (never
// the node), refusals, streams waiting for a slow review, a pod's deletion and relabelling.
// The same against a real kube-apiserver and real Envoys: e2e/kubernetes-identity.e2e.test.ts.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import { XDS_TYPES } from "../envoy/type-urls.js";
import { silentLogger } from "../log/logger.js";
import { SimulatedClient } from "../xds/simulated-client.js";
import type { PodDirectory, PodFacts, ServiceAccountDirectory, ServiceAccountFacts } from "../identity/kubernetes-pod-identities.js";
import type { TokenReviewStatus } from "../identity/kubernetes-token-review.js";
import { bookinfoConfig } from "./bookinfo-fixture.js";
import { startMeshRunner, type MeshRunner } from "./mesh-runner.js";

let runner: MeshRunner | undefined;
const clients: SimulatedClient[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await runner?.close(200);
  runner = undefined;
  for (const f of cleanups.splice(0).reverse()) f();
});

class FakePods implements PodDirectory {
  readonly pods = new Map<string, PodFacts>();
  private readonly listeners = new Set<(b: PodFacts | undefined, a: PodFacts | undefined) => void>();
  pod(namespace: string, name: string) {
    return this.pods.get(`${namespace}/${name}`);
  }
  onPodChange(l: (b: PodFacts | undefined, a: PodFacts | undefined) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(p: PodFacts | { namespace: string; name: string; remove: true }) {
    const key = `${p.namespace}/${p.name}`;
    const before = this.pods.get(key);
    if ("remove" in p) this.pods.delete(key);
    else this.pods.set(key, p);
    for (const l of this.listeners) l(before, this.pods.get(key));
  }
}

class FakeAccounts implements ServiceAccountDirectory {
  serviceAccountsSynced = true;
  readonly accounts = new Map<string, ServiceAccountFacts>();
  private readonly listeners = new Set<(b: ServiceAccountFacts | undefined, a: ServiceAccountFacts | undefined) => void>();
  serviceAccount(namespace: string, name: string) {
    return this.accounts.get(`${namespace}/${name}`);
  }
  onServiceAccountChange(l: (b: ServiceAccountFacts | undefined, a: ServiceAccountFacts | undefined) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(namespace: string, name: string, uid: string | undefined) {
    const key = `${namespace}/${name}`;
    const before = this.accounts.get(key);
    if (uid === undefined) this.accounts.delete(key);
    else this.accounts.set(key, { namespace, name, uid });
    for (const l of this.listeners) l(before, this.accounts.get(key));
  }
}

/** A JWT-shaped token (the simulated API server knows it by its text). */
const jwt = (tag: string, expSeconds = 4_102_444_800) =>
  `${Buffer.from('{"alg":"ES256"}').toString("base64url")}.${Buffer.from(JSON.stringify({ exp: expSeconds, tag })).toString("base64url")}.sig`;

const review = (ns: string, sa: string, pod?: { name: string; uid: string }): TokenReviewStatus => ({
  authenticated: true,
  audiences: ["istio-ca"],
  user: { username: `system:serviceaccount:${ns}:${sa}`, uid: `sa-uid-${sa}`, ...(pod ? { extra: { "authentication.kubernetes.io/pod-name": [pod.name], "authentication.kubernetes.io/pod-uid": [pod.uid] } } : {}) },
});

interface World {
  pods: FakePods;
  answers: Map<string, TokenReviewStatus | Error | (() => Promise<TokenReviewStatus>)>;
  sent: string[];
  accounts?: FakeAccounts;
}

async function start(world: World, reviewer: { maxTtlMs?: number } = {}): Promise<MeshRunner> {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), "weft-podtoken-"));
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const r = await startMeshRunner({
    logger: silentLogger(),
    classLimits: { releaseGraceMs: 100 },
    security: {
      stateDir,
      podTokens: {
        pods: world.pods,
        ...(world.accounts ? { serviceAccounts: world.accounts } : {}),
        reviewer,
        podWaitMs: 500,
        send: async (token, audiences) => {
          world.sent.push(token);
          expect(audiences).toEqual(["istio-ca"]);
          const a = world.answers.get(token);
          if (a instanceof Error) throw a;
          if (typeof a === "function") return a();
          return a ?? { authenticated: false, error: "invalid bearer token" };
        },
      },
    },
  });
  r.controller.setConfig(bookinfoConfig());
  return r;
}

function sidecar(r: MeshRunner, token: string | undefined, claim: { namespace: string; labels: Record<string, string> } = { namespace: "default", labels: { app: "claimed" } }): SimulatedClient {
  const sec = r.security!;
  const c = new SimulatedClient({
    target: `127.0.0.1:${r.cp.xdsPort}`,
    nodeId: `sidecar~10.77.0.9~x.${claim.namespace}~${claim.namespace}.svc.cluster.local`,
    mode: "sotw",
    metadata: { NAMESPACE: claim.namespace, LABELS: JSON.stringify(claim.labels), SERVICE_ACCOUNT: "admin" },
    ...(token ? { token } : {}),
    tls: { caPem: readFileSync(sec.trustBundleFile, "utf8"), serverName: sec.serverName },
  });
  clients.push(c);
  return c;
}

async function waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const REVIEWS_POD: PodFacts = { namespace: "bookinfo", name: "reviews-v1-abc", uid: "uid-reviews-1", serviceAccount: "bookinfo-reviews", labels: { app: "reviews", version: "v1" } };
const RATINGS_POD: PodFacts = { namespace: "bookinfo", name: "ratings-v1-xyz", uid: "uid-ratings-1", serviceAccount: "bookinfo-ratings", labels: { app: "ratings", version: "v1" } };

function world(): World {
  const pods = new FakePods();
  pods.set(REVIEWS_POD);
  pods.set(RATINGS_POD);
  return {
    pods,
    sent: [],
    answers: new Map<string, TokenReviewStatus | Error | (() => Promise<TokenReviewStatus>)>([
      [jwt("reviews"), review("bookinfo", "bookinfo-reviews", { name: REVIEWS_POD.name, uid: REVIEWS_POD.uid })],
      [jwt("ratings"), review("bookinfo", "bookinfo-ratings", { name: RATINGS_POD.name, uid: RATINGS_POD.uid })],
      [jwt("unbound"), review("bookinfo", "bookinfo-reviews")],
      [jwt("other-audience"), { ...review("bookinfo", "bookinfo-reviews", { name: REVIEWS_POD.name, uid: REVIEWS_POD.uid }), audiences: ["https://kubernetes.default.svc.cluster.local"] }],
    ]),
  };
}

describe("pod identity by TokenReview (simulated API server)", () => {
  it("the certificate's identity comes from the review and the class from the pod, never from node metadata", async () => {
    const w = world();
    runner = await start(w);
    const c = sidecar(runner, jwt("reviews"));
    c.start();
    await c.waitFor(() => c.names(XDS_TYPES.listener).length > 0);
    const proxy = runner.cp.xds.registry.list()[0]!;
    expect(proxy.principal).toBe("pod:bookinfo/reviews-v1-abc/uid-reviews-1");
    expect(proxy.snapshotKey).toContain("bookinfo");
    expect(proxy.snapshotKey).toContain("app=reviews,version=v1");
    expect(proxy.snapshotKey).not.toContain("claimed");
    await waitFor(() => runner!.controller.certificateOf(proxy.snapshotKey) !== undefined, "a certificate");
    expect(runner.controller.certificateOf(proxy.snapshotKey)!.identity).toBe("spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews");
    // Another ServiceAccount's token yields its own identity, never reviews'.
    const other = sidecar(runner, jwt("ratings"), { namespace: "bookinfo", labels: { app: "reviews", version: "v1" } });
    other.start();
    await other.waitFor(() => other.names(XDS_TYPES.listener).length > 0);
    const ratings = runner.cp.xds.registry.list().find((p) => p.principal.includes("ratings"))!;
    await waitFor(() => runner!.controller.certificateOf(ratings.snapshotKey) !== undefined, "ratings' certificate");
    expect(runner.controller.certificateOf(ratings.snapshotKey)!.identity).toBe("spiffe://cluster.local/ns/bookinfo/sa/bookinfo-ratings");
  });

  it("a refused, foreign-audience or unbound token gets UNAUTHENTICATED and nothing is generated", async () => {
    const w = world();
    runner = await start(w);
    for (const token of [jwt("unknown"), jwt("other-audience"), jwt("unbound")]) {
      const c = sidecar(runner, token);
      const ended = c.streamEnded();
      c.start();
      const e = await ended;
      expect(e.code, token).toBe(GrpcStatus.UNAUTHENTICATED);
      expect(c.responses).toHaveLength(0);
    }
    expect(runner.controller.classCount).toBe(0);
  });

  it("concurrent streams with one token share one review; the answer is cached (weft_tokenreview_* metrics)", async () => {
    const w = world();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const token = jwt("slow");
    w.answers.set(token, async () => {
      await gate;
      return review("bookinfo", "bookinfo-reviews", { name: REVIEWS_POD.name, uid: REVIEWS_POD.uid });
    });
    runner = await start(w);
    const cs = [0, 1, 2].map(() => sidecar(runner!, token));
    for (const c of cs) c.start();
    // Their requests arrive and wait for the review: the two after the first join it (polled
    // with a bound: a fixed 300 ms wait failed at load ~20, a stream arriving after the answer).
    const registry = runner.cp.metricsRegistry as Registry;
    const deadline = Date.now() + 30_000;
    while (!/weft_tokenreview_cache_total\{outcome="coalesced"\} 2/.test(await registry.metrics())) {
      if (Date.now() > deadline) throw new Error(`the three streams did not all wait for one review within 30 s:\n${(await registry.metrics()).split("\n").filter((l) => l.startsWith("weft_tokenreview")).join("\n")}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(runner.cp.xds.registry.size).toBe(0);
    release();
    for (const c of cs) await c.waitFor(() => c.names(XDS_TYPES.listener).length > 0);
    expect(w.sent.filter((t) => t === token)).toHaveLength(1);
    const late = sidecar(runner, token);
    late.start();
    await late.waitFor(() => late.names(XDS_TYPES.listener).length > 0);
    expect(w.sent.filter((t) => t === token)).toHaveLength(1);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/weft_tokenreview_cache_total\{outcome="coalesced"\} 2/);
    expect(metrics).toMatch(/weft_tokenreview_cache_total\{outcome="hit"\} 1/);
    expect(metrics).toMatch(/weft_tokenreview_duration_seconds_count 1/);
  });

  it("an API server that cannot answer ends the stream with UNAVAILABLE (the proxy retries)", async () => {
    const w = world();
    const token = jwt("broken");
    w.answers.set(token, new Error("connect ECONNREFUSED"));
    runner = await start(w);
    const c = sidecar(runner, token);
    const ended = c.streamEnded();
    c.start();
    const e = await ended;
    expect(e.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(e.details).toMatch(/ECONNREFUSED/);
  });

  it("a deleted pod's streams are closed and its token refused; a pod recreated under the name is another pod", async () => {
    const w = world();
    runner = await start(w);
    const c = sidecar(runner, jwt("reviews"));
    c.start();
    await c.waitFor(() => c.names(XDS_TYPES.listener).length > 0);
    const ended = c.streamEnded();
    w.pods.set({ namespace: "bookinfo", name: REVIEWS_POD.name, remove: true });
    const e = await ended;
    expect(e.code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(e.details).toMatch(/pod bookinfo\/reviews-v1-abc was deleted/);
    // The API server would refuse it too; here it still says yes: Weft's own pod check refuses it.
    w.pods.set({ ...REVIEWS_POD, uid: "uid-reviews-2" });
    const again = sidecar(runner, jwt("reviews"));
    const refused = again.streamEnded();
    again.start();
    expect((await refused).code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(w.sent.filter((t) => t === jwt("reviews"))).toHaveLength(2); // the cached answer was dropped with the pod
  });

  it("a deleted ServiceAccount: its pods' open streams are closed at once and its cached reviews dropped; a re-created one (other uid) does not revive old tokens", async () => {
    const w = world();
    w.accounts = new FakeAccounts();
    w.accounts.set("bookinfo", "bookinfo-reviews", "sa-uid-bookinfo-reviews");
    w.accounts.set("bookinfo", "bookinfo-ratings", "sa-uid-bookinfo-ratings");
    runner = await start(w); // reviews cached for 60 s (the default)
    const reviews = sidecar(runner, jwt("reviews"));
    const ratings = sidecar(runner, jwt("ratings"));
    for (const c of [reviews, ratings]) {
      c.start();
      await c.waitFor(() => c.names(XDS_TYPES.listener).length > 0);
    }
    expect(w.sent.filter((t) => t === jwt("reviews"))).toHaveLength(1);
    const ended = reviews.streamEnded();
    w.accounts.set("bookinfo", "bookinfo-reviews", undefined);
    const e = await ended;
    expect(e.code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(e.details).toMatch(/ServiceAccount bookinfo\/bookinfo-reviews was deleted/);
    // The other ServiceAccount's pod keeps its stream.
    expect(runner.cp.xds.registry.list().map((p) => p.principal)).toEqual([`pod:bookinfo/${RATINGS_POD.name}/${RATINGS_POD.uid}`]);
    // The (simulated) API server still says yes: the cached answer was dropped (reviewed again) and Weft refuses.
    const again = sidecar(runner, jwt("reviews"));
    const refused = again.streamEnded();
    again.start();
    expect((await refused).code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(w.sent.filter((t) => t === jwt("reviews"))).toHaveLength(2);
    // Re-created under the same name: another uid, the old token still proves nothing.
    w.accounts.set("bookinfo", "bookinfo-reviews", "sa-uid-new");
    const third = sidecar(runner, jwt("reviews"));
    const refusedAgain = third.streamEnded();
    third.start();
    expect((await refusedAgain).code).toBe(GrpcStatus.UNAUTHENTICATED);
  });

  it("a pod's labels change: its streams reconnect into the class of the new labels", async () => {
    const w = world();
    runner = await start(w);
    const c = sidecar(runner, jwt("reviews"));
    c.start();
    await c.waitFor(() => c.names(XDS_TYPES.listener).length > 0);
    const ended = c.streamEnded();
    w.pods.set({ ...REVIEWS_POD, labels: { app: "reviews", version: "v2" } });
    expect((await ended).code).toBe(GrpcStatus.UNAVAILABLE);
    c.start();
    await waitFor(() => runner!.cp.xds.registry.size === 1, "the reconnect");
    expect(runner.cp.xds.registry.list()[0]!.snapshotKey).toContain("app=reviews,version=v2");
  });
});
