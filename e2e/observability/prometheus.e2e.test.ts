// Real Prometheus (built from the Go module proxy) scraping real sidecar Envoys, with Weft's
// Istio-compatible recording rules loaded: traffic productpage -> reviews -> ratings shows up as
// istio_requests_total per edge with Istio's labels and the counts sent.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/runner/free-port.js";
import { ENVOY_STATS_PATH, startPrometheus, type PrometheusProcess, type PrometheusSample } from "../../src/demo/prometheus.js";
import { httpGet } from "../harness/http.js";
import { TestMesh } from "../harness/mesh.js";
import { startUpstream, type Upstream } from "../harness/upstream.js";
import { prometheusBinary } from "./backend-binaries.js";

const binary = prometheusBinary();
if (!binary) process.stderr.write("prometheus e2e: skipped, no Prometheus binary (scripts/cached-go-build.sh prometheus builds one)\n");
const RULES = fileURLToPath(new URL("../../manifests/prometheus/istio-compat.rules.yaml", import.meta.url));

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
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings }
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: ratings } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: reviews-v2 }
spec: { address: 127.0.0.1, ports: { http: ${ups.reviews!.port} }, labels: { app: reviews, version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ratings-v1 }
spec: { address: 127.0.0.1, ports: { http: ${ups.ratings!.port} }, labels: { app: ratings, version: v1 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  subsets: [{ name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews, subset: v2 } }] }]
`;

type VectorResult = PrometheusSample;

describe.skipIf(!binary)("Prometheus scrapes the sidecars; Istio's metrics come from the recording rules (real Envoy, real Prometheus)", () => {
  let mesh: TestMesh;
  let prometheus: PrometheusProcess | undefined;
  const ups: Record<string, Upstream> = {};
  const sidecars: Record<string, { explicitPort: number; statsPort: number }> = {};

  const query = (q: string): Promise<VectorResult[]> => prometheus!.query(q);

  /** Polls `q` until `ok` holds (the rules run every 15 s), 90 s at most; fails with the last answer. */
  const until = async (q: string, ok: (r: VectorResult[]) => boolean): Promise<VectorResult[]> => {
    let last: VectorResult[] = [];
    for (const deadline = Date.now() + 90_000; Date.now() < deadline;) {
      last = await query(q);
      if (ok(last)) return last;
      await new Promise((r) => setTimeout(r, 1000));
    }
    throw new Error(`${q} did not reach the expected value within 90 s; last answer: ${JSON.stringify(last)}\nPrometheus log tail: ${prometheus!.logTail()}`);
  };

  beforeAll(async () => {
    ups.reviews = await startUpstream("reviews-v2");
    ups.ratings = await startUpstream("ratings-v1");
    mesh = await TestMesh.start();
    await mesh.apply(MESH(ups));
    for (const [name, app, version] of [["productpage-v1", "productpage", "v1"], ["reviews-v2", "reviews", "v2"]] as const) {
      const [explicitPort, adminPort, statsPort] = [await freePort(), await freePort(), await freePort()];
      await mesh.startProxy({ name, labels: { app, version }, capture: "explicit", explicitPort, bootstrap: { adminPort, statsPort } });
      sidecars[name] = { explicitPort, statsPort };
    }
    // The rules file users deploy (generated from src/envoy/istio-compat-rules.ts, checked by a unit test).
    prometheus = await startPrometheus({
      binary: binary!,
      intervalSeconds: 1,
      rulesYaml: readFileSync(RULES, "utf8"),
      jobs: [{ name: "envoy-stats", metricsPath: ENVOY_STATS_PATH, targets: Object.entries(sidecars).map(([pod, s]) => ({ address: `127.0.0.1:${s.statsPort}`, labels: { pod } })) }],
    });
  }, 120_000);

  afterAll(async () => {
    await prometheus?.stop();
    await mesh?.close();
    await Promise.all(Object.values(ups).map((u) => u.close()));
  });

  it("istio_requests_total per edge: productpage -> reviews (6 x 200), reviews -> ratings (3 x 200, 2 x 500)", async () => {
    const call = (from: string, host: string, pathQuery = "/") =>
      httpGet(`http://127.0.0.1:${sidecars[from]!.explicitPort}${pathQuery}`, { headers: { host: `${host}:9080` } });
    for (let i = 0; i < 6; i++) expect((await call("productpage-v1", "reviews")).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await call("reviews-v2", "ratings")).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await call("reviews-v2", "ratings", "/?status=500")).status).toBe(500);

    await until('up{job="envoy-stats"}', (r) => r.length === 2 && r.every((x) => x.value[1] === "1"));
    const edges = await until('istio_requests_total{reporter="source"}', (r) => r.reduce((n, x) => n + Number(x.value[1]), 0) === 11);
    const seen = edges.map((e): Record<string, string> => { const { __name__: _name, ...labels } = e.metric; return { ...labels, value: e.value[1] }; }).sort((a, b) => (`${a.source_workload}${a.response_code}`.localeCompare(`${b.source_workload}${b.response_code}`)));
    expect(seen).toEqual([
      { reporter: "source", source_workload: "productpage-v1", source_workload_namespace: "default", source_app: "productpage", source_version: "v1",
        destination_service: "reviews.default.svc.cluster.local", destination_service_name: "reviews", destination_service_namespace: "default", destination_version: "v2",
        response_code: "200", value: "6" },
      { reporter: "source", source_workload: "reviews-v2", source_workload_namespace: "default", source_app: "reviews", source_version: "v2",
        destination_service: "ratings.default.svc.cluster.local", destination_service_name: "ratings", destination_service_namespace: "default",
        response_code: "200", value: "3" },
      { reporter: "source", source_workload: "reviews-v2", source_workload_namespace: "default", source_app: "reviews", source_version: "v2",
        destination_service: "ratings.default.svc.cluster.local", destination_service_name: "ratings", destination_service_namespace: "default",
        response_code: "500", value: "2" },
    ]);
    // Durations and sizes per edge (Envoy publishes histograms at its 5 s stats flush).
    // (Clusters without traffic have zero-count series too: sum.)
    await until('sum(istio_request_duration_milliseconds_count{reporter="source", source_workload="reviews-v2"})', (r) => r.length === 1 && r[0]!.value[1] === "5");
    await until('sum(istio_response_bytes_count{reporter="source", source_workload="productpage-v1", destination_service_name="reviews", destination_version="v2"})', (r) => r.length === 1 && r[0]!.value[1] === "6");
    const bytes = await query('sum(istio_response_bytes_sum{reporter="source", source_workload="productpage-v1"})');
    expect(Number(bytes[0]!.value[1])).toBeGreaterThan(6 * 100); // headers + a JSON body per response
    const p50 = await query('histogram_quantile(0.5, sum by (le) (istio_request_duration_milliseconds_bucket{reporter="source"}))');
    expect(Number(p50[0]!.value[1])).toBeGreaterThan(0);
  }, 240_000);
});
