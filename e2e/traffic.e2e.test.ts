// Istio's traffic-management tasks against real Envoy: a client sidecar routes to sample
// services per VirtualService / DestinationRule written in Istio's YAML.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureSupport } from "../src/capture/iptables.js";
import { bridgeAddress } from "../src/capture/pod-network.js";
import { httpGet } from "./harness/http.js";
import { TestMesh, type MeshProxy } from "./harness/mesh.js";
import { startUpstream, type Upstream } from "./harness/upstream.js";
import { freePort } from "../src/runner/free-port.js";


// Transparent mode (client sidecar in a pod with iptables capture) where the machine allows it;
// explicit mode always.
const support = await captureSupport();
const MODES: ("explicit" | "transparent")[] = ["explicit", ...(support.transparent ? (["transparent"] as const) : [])];
if (!support.transparent) process.stderr.write(`traffic e2e: transparent mode skipped: ${support.reason}\n`);

/** Where upstreams are, as the client's sidecar sees them. */
let upstreamAddress = "127.0.0.1";

const REGISTRY = (ups: Record<string, Upstream>) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews }
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: reviews } }
---
${["v1", "v2", "v3"]
  .map(
    (v) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: reviews-${v} }
spec: { address: ${upstreamAddress}, ports: { http: ${ups[`reviews-${v}`]!.port} }, labels: { app: reviews, version: ${v} } }
---`,
  )
  .join("\n")}
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
  - { name: v3, labels: { version: v3 } }
`;

/**
 * Requests an upstream served since `before`, once `expected` have arrived or 10 s passed:
 * Envoy sends mirrored requests without waiting for them, so they may land after the response.
 */
async function mirroredSince(upstream: Upstream, before: number, expected: number): Promise<number> {
  const deadline = Date.now() + 10_000;
  while (upstream.requests - before < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return upstream.requests - before;
}

describe.each(MODES)("traffic management with real Envoy (%s mode)", (mode) => {
  let mesh: TestMesh;
  let client: MeshProxy;
  let port: number;
  const ups: Record<string, Upstream> = {};

  const get = async (path = "/", headers: Record<string, string> = {}, host = "reviews:9080", servicePort = 9080) => {
    if (mode === "transparent") {
      // From inside the client's pod to an arbitrary IP on the service port: capture sends it
      // to the sidecar, which routes by Host like it would for a VIP.
      const r = await client.fetch!({ host: "240.240.0.250", port: servicePort, path, headers: { host, ...headers }, timeoutMs: 5000 });
      return { status: r.status, upstream: String(r.headers["x-upstream"] ?? ""), headers: r.headers, body: r.body };
    }
    const res = await httpGet(`http://127.0.0.1:${port}${path}`, { headers: { host, ...headers }, timeoutMs: 5000 });
    return { status: res.status, upstream: String(res.headers["x-upstream"] ?? ""), headers: res.headers, body: res.body };
  };

  /** Applies the registry plus a `reviews` VirtualService with these http rules (YAML list items). */
  const applyReviewsRoutes = (httpRules: string) =>
    mesh.apply(`${REGISTRY(ups)}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http:
${httpRules}`);

  beforeAll(async () => {
    upstreamAddress = mode === "transparent" ? bridgeAddress() : "127.0.0.1";
    for (const v of ["v1", "v2", "v3"]) ups[`reviews-${v}`] = await startUpstream(`reviews-${v}`, { host: "0.0.0.0" });
    mesh = await TestMesh.start({}, { transparent: mode === "transparent" });
    port = await freePort();
    client = await mesh.startProxy({ name: `productpage-${mode}`, labels: { app: "productpage", version: "v1" }, capture: mode, explicitPort: port });
  });

  afterAll(async () => {
    await mesh?.close();
    await Promise.all(Object.values(ups).map((u) => u.close()));
  });

  it("routes by header (request routing task)", async () => {
    await applyReviewsRoutes(`  - match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
`);
    for (let i = 0; i < 5; i++) expect((await get("/", { "end-user": "jason" })).upstream).toBe("reviews-v2");
    for (let i = 0; i < 5; i++) expect((await get("/")).upstream).toBe("reviews-v1");
    expect(client.nodeId).toContain("productpage");
  });

  it("shifts traffic by weight (80/20 over 400 requests, tolerance +-7 points: > 4 sigma)", async () => {
    await applyReviewsRoutes(`  - route:
    - { destination: { host: reviews, subset: v1 }, weight: 80 }
    - { destination: { host: reviews, subset: v3 }, weight: 20 }
`);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 400; i++) {
      const r = await get("/");
      counts[r.upstream] = (counts[r.upstream] ?? 0) + 1;
    }
    expect(Object.keys(counts).sort()).toEqual(["reviews-v1", "reviews-v3"]);
    expect(Math.abs(counts["reviews-v3"]! / 400 - 0.2)).toBeLessThan(0.07);
  });

  it("injects delay and abort faults", async () => {
    await applyReviewsRoutes(`  - match: [{ headers: { x-fault: { exact: abort } } }]
    fault: { abort: { httpStatus: 418, percentage: { value: 100 } } }
    route: [{ destination: { host: reviews, subset: v1 } }]
  - match: [{ headers: { x-fault: { exact: delay } } }]
    fault: { delay: { fixedDelay: 700ms, percentage: { value: 100 } } }
    route: [{ destination: { host: reviews, subset: v1 } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
`);
    expect((await get("/", { "x-fault": "abort" })).status).toBe(418);
    const t0 = Date.now();
    const delayed = await get("/", { "x-fault": "delay" });
    expect(delayed.status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(650);
    const t1 = Date.now();
    expect((await get("/")).status).toBe(200);
    expect(Date.now() - t1).toBeLessThan(600);
  });

  it("enforces request timeouts and retries failed requests", async () => {
    await applyReviewsRoutes(`  - match: [{ uri: { prefix: /slow } }]
    timeout: 300ms
    retries: { attempts: 0 }
    route: [{ destination: { host: reviews, subset: v1 } }]
  - match: [{ uri: { prefix: /flaky } }]
    retries: { attempts: 3, retryOn: 5xx, perTryTimeout: 1s }
    route: [{ destination: { host: reviews, subset: v2 } }]
  - match: [{ uri: { prefix: /fragile } }]
    retries: { attempts: 0 }
    route: [{ destination: { host: reviews, subset: v2 } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
`);
    const t0 = Date.now();
    const slow = await get("/slow?delay=2000");
    expect(slow.status).toBe(504);
    expect(Date.now() - t0).toBeLessThan(1500);
    // v2 fails its next 2 requests: with 3 retries on 5xx the client still gets a 200 ...
    const before = ups["reviews-v2"]!.requests;
    ups["reviews-v2"]!.behavior = { failNext: 2 };
    expect((await get("/flaky")).status).toBe(200);
    expect(ups["reviews-v2"]!.requests - before).toBe(3);
    // ... and without retries it sees the failure.
    ups["reviews-v2"]!.behavior = { failNext: 1 };
    expect((await get("/fragile")).status).toBe(503);
    ups["reviews-v2"]!.behavior = {};
  });

  it("rewrites, redirects and sets headers", async () => {
    await applyReviewsRoutes(`  - match: [{ uri: { prefix: /old } }]
    redirect: { uri: /new, redirectCode: 302 }
  - match: [{ uri: { prefix: /api/v1 } }]
    rewrite: { uri: /v1 }
    headers: { request: { set: { x-weft: rewritten } }, response: { add: { x-served-by: weft } } }
    route: [{ destination: { host: reviews, subset: v1 } }]
`);
    const redirect = await get("/old/page");
    expect(redirect.status).toBe(302);
    expect(String(redirect.headers.location)).toContain("/new");
    const res = await get("/api/v1/items");
    const echo = JSON.parse(res.body) as { path: string; headers: Record<string, string> };
    expect(echo.path).toBe("/v1/items");
    expect(echo.headers["x-weft"]).toBe("rewritten");
    expect(res.headers["x-served-by"]).toBe("weft");
  });

  it("circuit breaking: connection-pool overflow gives 503s", async () => {
    await mesh.apply(`${REGISTRY(ups)}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews-cb }
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy:
    connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 } }
`.replace(/apiVersion: networking.istio.io\/v1\nkind: DestinationRule\nmetadata: \{ name: reviews \}[\s\S]*?- \{ name: v3, labels: \{ version: v3 \} \}\n/, ""));
    const results = await Promise.all(Array.from({ length: 20 }, () => get("/?delay=300")));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(5);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    const stats = await client.envoy.stats("upstream_rq_pending_overflow");
    expect([...stats.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it("mirrors a share of traffic to another subset", async () => {
    await applyReviewsRoutes(`  - route: [{ destination: { host: reviews, subset: v1 } }]
    mirror: { host: reviews, subset: v3 }
    mirrorPercentage: { value: 100 }
`);
    const before = ups["reviews-v3"]!.requests;
    for (let i = 0; i < 10; i++) expect((await get("/")).upstream).toBe("reviews-v1");
    expect(await mirroredSince(ups["reviews-v3"]!, before, 10)).toBe(10);
  });

  it("delegates rules to another VirtualService: the root's match ANDed with the delegate's, a conflicting rule dropped", async () => {
    // The root (reviews) and, after it, the delegate in another namespace.
    await applyReviewsRoutes(`  - name: v2-area
    match: [{ uri: { prefix: /v2 } }]
    delegate: { name: reviews-v2-area, namespace: team }
    headers: { response: { set: { x-root: v2-area } } }
  - route: [{ destination: { host: reviews, subset: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews-v2-area, namespace: team }
spec:
  http:
  - match: [{ uri: { prefix: /v2/special } }]
    route: [{ destination: { host: reviews.default.svc.cluster.local, subset: v3 } }]
  - match: [{ uri: { prefix: /elsewhere } }]
    route: [{ destination: { host: reviews.default.svc.cluster.local, subset: v3 } }]
  - route: [{ destination: { host: reviews.default.svc.cluster.local, subset: v2 } }]
`);
    const special = await get("/v2/special/1");
    expect([special.upstream, special.headers["x-root"]]).toEqual(["reviews-v3", "v2-area"]);
    expect((await get("/v2/other")).upstream).toBe("reviews-v2");
    // "/elsewhere" does not fit inside the root's "/v2": that delegate rule is dropped, the root's next rule answers
    expect((await get("/elsewhere")).upstream).toBe("reviews-v1");
    expect((await get("/")).upstream).toBe("reviews-v1");
  });

  it("answers with a direct response (status and body) without an upstream", async () => {
    const before = ups["reviews-v1"]!.requests;
    await applyReviewsRoutes(`  - match: [{ uri: { exact: /health } }]
    directResponse: { status: 503, body: { string: "maintenance" } }
  - match: [{ uri: { exact: /bytes } }]
    directResponse: { status: 200, body: { bytes: aGVsbG8= } }
  - route: [{ destination: { host: reviews, subset: v1 } }]
`);
    const health = await get("/health");
    expect([health.status, health.body]).toEqual([503, "maintenance"]);
    const bytes = await get("/bytes");
    expect([bytes.status, bytes.body]).toEqual([200, "hello"]);
    expect(ups["reviews-v1"]!.requests).toBe(before);
    expect((await get("/")).upstream).toBe("reviews-v1");
  });

  it("mirrors to several destinations (mirrors), each with its own percentage", async () => {
    await applyReviewsRoutes(`  - route: [{ destination: { host: reviews, subset: v1 } }]
    mirrors:
    - { destination: { host: reviews, subset: v2 } }
    - { destination: { host: reviews, subset: v3 }, percentage: { value: 0 } }
`);
    const [v2, v3] = [ups["reviews-v2"]!.requests, ups["reviews-v3"]!.requests];
    for (let i = 0; i < 10; i++) expect((await get("/")).upstream).toBe("reviews-v1");
    expect(await mirroredSince(ups["reviews-v2"]!, v2, 10)).toBe(10);
    expect(ups["reviews-v3"]!.requests - v3).toBe(0);
  });

  it("outlier detection ejects a failing endpoint", async () => {
    const bad = await startUpstream("reviews-bad", { host: "0.0.0.0" });
    try {
      await mesh.apply(`${REGISTRY(ups)}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: reviews-bad }
spec: { address: ${upstreamAddress}, ports: { http: ${bad.port} }, labels: { app: reviews, version: v1 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews-od }
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 100 }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http:
  - retries: { attempts: 0 }
    route: [{ destination: { host: reviews } }]
`.replace(/apiVersion: networking.istio.io\/v1\nkind: DestinationRule\nmetadata: \{ name: reviews \}[\s\S]*?- \{ name: v3, labels: \{ version: v3 \} \}\n/, ""));
      bad.behavior = { status: 500 };
      // 4 endpoints round robin: the bad one fails twice, then is ejected.
      const statuses: number[] = [];
      for (let i = 0; i < 40; i++) statuses.push((await get("/")).status);
      expect(statuses.slice(-20).every((s) => s === 200)).toBe(true);
      expect(statuses.filter((s) => s === 500).length).toBeGreaterThanOrEqual(2);
      const ejected = await client.envoy.stats("outlier_detection.ejections_enforced_total");
      expect([...ejected.values()].reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
    } finally {
      await bad.close();
    }
  });

  it.skipIf(mode !== "transparent")("routes TCP by destination VIP and port, split by weight (transparent only)", async () => {
    await mesh.apply(`${REGISTRY(ups)}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: tcp-echo }
spec:
  hosts: [tcp-echo.default.svc.cluster.local]
  addresses: [240.240.0.77]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 7000, name: tcp, protocol: TCP }]
  endpoints:
  - { address: ${upstreamAddress}, ports: { tcp: ${ups["reviews-v1"]!.port} }, labels: { version: v1 } }
  - { address: ${upstreamAddress}, ports: { tcp: ${ups["reviews-v2"]!.port} }, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: tcp-echo }
spec:
  host: tcp-echo
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: tcp-echo }
spec:
  hosts: [tcp-echo]
  tcp:
  - match: [{ port: 7000 }]
    route:
    - { destination: { host: tcp-echo, subset: v1 }, weight: 50 }
    - { destination: { host: tcp-echo, subset: v2 }, weight: 50 }
`);
    const seen = new Set<string>();
    for (let i = 0; i < 30 && seen.size < 2; i++) {
      const r = await client.fetch!({ host: "240.240.0.77", port: 7000, path: "/", headers: { host: "whatever" } });
      seen.add(String(r.headers["x-upstream"]));
    }
    expect([...seen].sort()).toEqual(["reviews-v1", "reviews-v2"]);
    const stats = await client.envoy.stats("tcp-echo");
    expect([...stats.entries()].some(([k, v]) => k.includes("upstream_cx_total") && v > 0)).toBe(true);
  });

  it("REGISTRY_ONLY blocks hosts outside the registry; a ServiceEntry host is reachable", async () => {
    const external = await startUpstream("external-api", { host: "0.0.0.0" });
    try {
      await mesh.apply(`${REGISTRY(ups)}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: external-api }
spec:
  hosts: [api.external.example]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: ${upstreamAddress}, ports: { http: ${external.port} } }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default }
spec:
  outboundTrafficPolicy: { mode: REGISTRY_ONLY }
`);
      const ok = await get("/", {}, "api.external.example", 80);
      expect(ok.status).toBe(200);
      expect(ok.headers["x-upstream"]).toBe("external-api");
      const blocked = await get("/", {}, "not-registered.example", 80);
      expect(blocked.status).toBe(502);
    } finally {
      await external.close();
    }
  });
});

describe("locality failover with real Envoy", () => {
  let mesh: TestMesh;
  let port: number;
  const ups: Upstream[] = [];

  afterAll(async () => {
    await mesh?.close();
    await Promise.all(ups.map((u) => u.close()));
  });

  it("prefers endpoints in the proxy's zone and fails over to the next region when they fail", async () => {
    const [local, remote] = [await startUpstream("zone-a"), await startUpstream("region-2")];
    ups.push(local, remote);
    mesh = await TestMesh.start();
    port = await freePort();
    const yaml = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings }
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  endpoints:
  - { address: 127.0.0.1, ports: { http: ${local.port} }, locality: region1/zone-a }
  - { address: 127.0.0.1, ports: { http: ${remote.port} }, locality: region2/zone-b }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings }
spec:
  host: ratings
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN, localityLbSetting: { enabled: true, failover: [{ from: region1, to: region2 }] } }
    outlierDetection: { consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 100 }
`;
    mesh.controller.setConfig((await import("./harness/mesh.js")).meshConfigFromYaml(yaml));
    const client = await mesh.startProxy({ name: "reviews", labels: { app: "reviews" }, capture: "explicit", explicitPort: port, locality: { region: "region1", zone: "zone-a" } });
    const call = async () => (await httpGet(`http://127.0.0.1:${port}/`, { headers: { host: "ratings:9080" } })).headers["x-upstream"];
    for (let i = 0; i < 10; i++) expect(await call()).toBe("zone-a");
    local.behavior = { status: 503 };
    const seen: string[] = [];
    for (let i = 0; i < 10; i++) seen.push(String(await call()));
    expect(seen.slice(-5).every((s) => s === "region-2")).toBe(true);
    expect(client.nodeId).toContain("reviews");
  });
});

describe("ingress gateway with real Envoy", () => {
  let mesh: TestMesh;
  const ups: Upstream[] = [];

  afterAll(async () => {
    await mesh?.close();
    await Promise.all(ups.map((u) => u.close()));
  });

  it("routes by host at an ingress gateway and routes TCP", async () => {
    const [web, api, tcp] = [await startUpstream("web"), await startUpstream("api"), await startUpstream("tcp-echo")];
    ups.push(web, api, tcp);
    mesh = await TestMesh.start();
    const [httpPort, tcpPort] = [await freePort(), await freePort()];
    const se = (name: string, u: Upstream, proto = "HTTP") => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name} }
spec:
  hosts: [${name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: ${proto.toLowerCase()}, protocol: ${proto} }]
  endpoints: [{ address: 127.0.0.1, ports: { ${proto.toLowerCase()}: ${u.port} } }]
---`;
    const yaml = `${se("web", web)}${se("api", api)}${se("echo", tcp, "TCP")}
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public }
spec:
  selector: { istio: ingressgateway }
  servers:
  - { port: { number: ${httpPort}, name: http, protocol: HTTP }, hosts: ["*.example.com"] }
  - { port: { number: ${tcpPort}, name: tcp, protocol: TCP }, hosts: ["*"] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: sites }
spec:
  hosts: [www.example.com, api.example.com]
  gateways: [public]
  http:
  - match: [{ authority: { exact: api.example.com } }]
    route: [{ destination: { host: api, port: { number: 8000 } } }]
  - route: [{ destination: { host: web, port: { number: 8000 } } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo }
spec:
  hosts: ["*"]
  gateways: [public]
  tcp:
  - match: [{ port: ${tcpPort} }]
    route: [{ destination: { host: echo, port: { number: 8000 } } }]
`;
    mesh.controller.setConfig((await import("./harness/mesh.js")).meshConfigFromYaml(yaml));
    await mesh.startProxy({ name: "ingressgateway", namespace: "istio-system", type: "router", labels: { istio: "ingressgateway" } });
    const at = (host: string) => httpGet(`http://127.0.0.1:${httpPort}/`, { headers: { host } });
    expect((await at("www.example.com")).headers["x-upstream"]).toBe("web");
    expect((await at("api.example.com")).headers["x-upstream"]).toBe("api");
    expect((await at("other.example.com")).status).toBe(404);
    expect((await httpGet(`http://127.0.0.1:${tcpPort}/`, { headers: { host: "anything" } })).headers["x-upstream"]).toBe("tcp-echo");
  });
});
