// Request metrics from upstream Envoy's own stats with Istio's meaning: a client sidecar's
// Prometheus scrape listener (/stats/prometheus) reports per-edge request counts by response code,
// labelled with the destination service, port and subset (tag extraction on Weft's cluster names)
// and the proxy's own workload (fixed tags); the admin API is not reachable through it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureSupport } from "../../src/capture/iptables.js";
import { PROMETHEUS_STATS_PATH, PROMETHEUS_STATS_PORT } from "../../src/envoy/proxy-stats.js";
import { freePort } from "../../src/runner/free-port.js";
import { httpGet } from "../harness/http.js";
import { TestMesh, type MeshProxy } from "../harness/mesh.js";
import { startUpstream, type Upstream } from "../harness/upstream.js";
import { findSamples, parsePrometheusText, type Sample } from "../../src/envoy/prometheus-text.js";

const MESH = (ups: Record<string, Upstream>) => `
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
${["v1", "v2"].map((v) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: reviews-${v} }
spec: { address: 127.0.0.1, ports: { http: ${ups[v]!.port} }, labels: { app: reviews, version: ${v} } }
---`).join("\n")}
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
`;

describe("proxy metrics: Envoy's own stats with Istio-meaning tags (real Envoy)", () => {
  let mesh: TestMesh;
  let client: MeshProxy;
  let explicitPort: number;
  let statsUrl: string;
  const ups: Record<string, Upstream> = {};

  const scrape = async (): Promise<Sample[]> => {
    const res = await httpGet(statsUrl, { timeoutMs: 10_000 });
    expect(res.status, res.body.slice(0, 500)).toBe(200);
    return parsePrometheusText(res.body);
  };

  beforeAll(async () => {
    for (const v of ["v1", "v2"]) ups[v] = await startUpstream(`reviews-${v}`);
    mesh = await TestMesh.start();
    await mesh.apply(MESH(ups));
    explicitPort = await freePort();
    const [adminPort, statsPort] = [await freePort(), await freePort()];
    client = await mesh.startProxy({
      name: "productpage-v1",
      labels: { app: "productpage", version: "v1" },
      capture: "explicit",
      explicitPort,
      bootstrap: { adminPort, statsPort },
    });
    statsUrl = `http://127.0.0.1:${statsPort}/stats/prometheus`;
  }, 60_000);

  afterAll(async () => {
    await mesh?.close();
    await Promise.all(Object.values(ups).map((u) => u.close()));
  });

  it("counts requests per destination service, subset and response code, labelled with the client's workload", async () => {
    const get = (path: string, headers: Record<string, string> = {}) =>
      httpGet(`http://127.0.0.1:${explicitPort}${path}`, { headers: { host: "reviews:9080", ...headers } });
    for (let i = 0; i < 7; i++) expect((await get("/")).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await get("/?status=503")).status).toBe(503);
    for (let i = 0; i < 4; i++) expect((await get("/", { "end-user": "jason" })).status).toBe(200);

    const samples = await scrape();
    const self = { weft_workload: "productpage-v1", weft_namespace: "default", weft_app: "productpage", weft_version: "v1" };
    const edge = (subset: string, code: string) => findSamples(samples, "envoy_cluster_upstream_rq", {
      ...self,
      envoy_cluster_name: `outbound|9080|${subset}|reviews.default.svc.cluster.local`,
      destination_service: "reviews.default.svc.cluster.local",
      destination_port: "9080",
      destination_subset: subset,
      envoy_response_code: code,
    });
    const show = () => samples.filter((s) => s.name === "envoy_cluster_upstream_rq").map((s) => JSON.stringify(s)).join("\n");
    expect(edge("v1", "200").map((s) => s.value), show()).toEqual([7]);
    expect(edge("v1", "503").map((s) => s.value), show()).toEqual([3]);
    expect(edge("v2", "200").map((s) => s.value), show()).toEqual([4]);
    // Durations (ms) and request/response sizes are histograms on the same labels; Envoy
    // publishes histograms at its stats flush (every 5 s): wait for one, 30 s at most.
    const v1 = { envoy_cluster_name: "outbound|9080|v1|reviews.default.svc.cluster.local", destination_service: "reviews.default.svc.cluster.local" };
    let flushed = samples;
    for (const deadline = Date.now() + 30_000; findSamples(flushed, "envoy_cluster_upstream_rq_time_count", v1)[0]?.value !== 10 && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 500));
      flushed = await scrape();
    }
    expect(findSamples(flushed, "envoy_cluster_upstream_rq_time_count", v1).map((s) => s.value)).toEqual([10]);
    expect(findSamples(flushed, "envoy_cluster_upstream_rs_body_size_count", v1).map((s) => s.value)).toEqual([10]);
    expect(findSamples(flushed, "envoy_cluster_upstream_rs_body_size_sum", v1)[0]!.value).toBeGreaterThan(0);
    expect(findSamples(flushed, "envoy_cluster_upstream_rq_headers_size_count", v1).map((s) => s.value)).toEqual([10]);
    // The connection manager's stat prefix says outbound, whole (Envoy's default tag would cut it at the first dot).
    expect(findSamples(samples, "envoy_http_downstream_rq_total", { envoy_http_conn_manager_prefix: "outbound_explicit" }).length
      + findSamples(samples, "envoy_http_downstream_rq_total", { envoy_http_conn_manager_prefix: "outbound_0.0.0.0_9080" }).length).toBeGreaterThan(0);
    // Every stat carries the proxy's own workload (but envoy_filesystem_*: Envoy creates them before
    // it reads stats_config); no metric name carries a piece of a cluster name.
    expect(samples.filter((s) => s.labels.weft_workload !== "productpage-v1" && !s.name.startsWith("envoy_filesystem_")).map((s) => JSON.stringify(s))).toEqual([]);
    expect(samples.filter((s) => /reviews|9080|outbound_explicit|0_0_0_0/.test(s.name)).map((s) => s.name)).toEqual([]);
  });

  it("serves only GET /stats/prometheus: the rest of the admin API is not reachable through it", async () => {
    const base = statsUrl.replace(/\/stats\/prometheus$/, "");
    for (const path of ["/", "/config_dump", "/stats", "/stats/prometheus/../../quitquitquit", "/clusters"]) {
      expect((await httpGet(`${base}${path}`)).status, path).toBe(404);
    }
  });
});

// A sidecar in its own pod (network namespace, iptables capture) serves its metrics on the pod
// IP's port 15090 by default; the scrape is neither captured inbound nor looped back by the
// capture on Envoy's own hop to its admin API (that hop leaves from 127.0.0.6).
const support = await captureSupport();
describe.skipIf(!support.transparent)("proxy metrics in a pod (real Envoy, iptables capture)", () => {
  let mesh: TestMesh;
  let proxy: MeshProxy;

  beforeAll(async () => {
    mesh = await TestMesh.start({}, { transparent: true });
    proxy = await mesh.startProxy({ name: "ratings-v1", labels: { app: "ratings", version: "v1" }, capture: "transparent" });
  }, 60_000);

  afterAll(async () => {
    await mesh?.close();
  });

  it("answers GET http://<pod ip>:15090/stats/prometheus from outside the pod", async () => {
    const res = await httpGet(`http://${proxy.pod!.ip}:${PROMETHEUS_STATS_PORT}${PROMETHEUS_STATS_PATH}`, { timeoutMs: 10_000 });
    expect(res.status, res.body.slice(0, 300)).toBe(200);
    const samples = parsePrometheusText(res.body);
    expect(findSamples(samples, "envoy_server_live", { weft_workload: "ratings-v1", weft_app: "ratings", weft_version: "v1", weft_namespace: "default" }).map((s) => s.value)).toEqual([1]);
  });
});
