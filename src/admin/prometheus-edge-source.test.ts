import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { PROMETHEUS_QUERIES, PrometheusEdgeSource, promDurationSeconds } from "./prometheus-edge-source.js";

// A stand-in Prometheus answering /api/v1/query from a table of query -> vector (what a real
// one would answer over the recording rules' series); anything else is an error as Prometheus's.
let server: Server | undefined;
async function fakePrometheus(answers: Record<string, { metric: Record<string, string>; value: string }[]>, raw?: string): Promise<string> {
  server = createServer((req, res) => {
    const q = new URL(req.url!, "http://x").searchParams.get("query") ?? "";
    res.setHeader("content-type", "application/json");
    if (raw !== undefined) return void res.end(raw);
    const result = answers[q];
    if (!result) {
      res.statusCode = 400;
      return void res.end(JSON.stringify({ status: "error", errorType: "bad_data", error: `unexpected query ${q}` }));
    }
    res.end(JSON.stringify({ status: "success", data: { resultType: "vector", result: result.map((r) => ({ metric: r.metric, value: [1700000000, r.value] })) } }));
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
/** Closes the stand-in now (fetch keeps connections alive). */
async function stop(): Promise<void> {
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
}
afterEach(stop);

const edge = (workload: string, service: string, version: string) => ({ source_workload: workload, source_workload_namespace: "default", destination_service: service, destination_version: version });
const REVIEWS = "reviews.default.svc.cluster.local";
const RATINGS = "ratings.default.svc.cluster.local";

describe("PrometheusEdgeSource: the console's edges from Istio's series in Prometheus", () => {
  it("turns per-edge increases, 5xx and the p99 into edges per source workload; TLS from Envoy's handshakes", async () => {
    const url = await fakePrometheus({
      [PROMETHEUS_QUERIES.total]: [{ metric: edge("productpage-v1", REVIEWS, "v2"), value: "500" }, { metric: edge("reviews-v2", RATINGS, ""), value: "40" }, { metric: edge("reviews-v3", RATINGS, ""), value: "0" }],
      [PROMETHEUS_QUERIES.requests("1m")]: [{ metric: edge("productpage-v1", REVIEWS, "v2"), value: "120" }, { metric: edge("reviews-v2", RATINGS, ""), value: "60" }],
      [PROMETHEUS_QUERIES.errors("1m")]: [{ metric: edge("reviews-v2", RATINGS, ""), value: "30" }],
      [PROMETHEUS_QUERIES.p99("1m")]: [{ metric: edge("productpage-v1", REVIEWS, "v2"), value: "12.5" }, { metric: edge("reviews-v2", RATINGS, ""), value: "NaN" }],
      [PROMETHEUS_QUERIES.tls]: [{ metric: { weft_workload: "productpage-v1", weft_namespace: "default", destination_service: REVIEWS, destination_subset: "v2" }, value: "3" }],
    });
    const traffic = await new PrometheusEdgeSource(url).workloadTraffic();
    expect(traffic.map((t) => [t.namespace, t.workload, t.traffic.edges.length])).toEqual([["default", "productpage-v1", 1], ["default", "reviews-v2", 1]]);
    expect(traffic[0]!.traffic.edges[0]).toEqual({ cluster: `outbound||v2|${REVIEWS}`, service: REVIEWS, port: 0, subset: "v2", totalRequests: 500, windowSeconds: 60, requests: 120, errors: 0, rps: 2, errorRate: 0, p99Ms: 12.5, tls: true });
    expect(traffic[1]!.traffic.edges[0]).toMatchObject({ requests: 60, errors: 30, errorRate: 0.5, tls: false });
    expect(traffic[1]!.traffic.edges[0]!.p99Ms).toBeUndefined(); // NaN: no samples in the range
  });

  it("says what went wrong: a refused query, an answer that is not JSON, one over the size bound", async () => {
    await expect(new PrometheusEdgeSource(await fakePrometheus({})).workloadTraffic()).rejects.toThrow(/Prometheus refused the query \(400\): unexpected query/);
    await stop();
    await expect(new PrometheusEdgeSource(await fakePrometheus({}, "<html>proxy error</html>")).workloadTraffic()).rejects.toThrow(/something other than JSON: <html>/);
    await stop();
    const big = JSON.stringify({ status: "success", data: { resultType: "vector", result: [] }, pad: "x".repeat(5000) });
    await expect(new PrometheusEdgeSource(await fakePrometheus({}, big), { maxBytes: 1000 }).workloadTraffic()).rejects.toThrow(/over 1000 bytes/);
  });

  it("refuses a URL that is not http(s) and a range that is not a PromQL duration", () => {
    expect(() => new PrometheusEdgeSource("localhost:9090")).toThrow(/--prometheus-url must be http\(s\):\/\/host:port/);
    expect(() => new PrometheusEdgeSource("not a url")).toThrow(/--prometheus-url must be/);
    expect(promDurationSeconds("2m30s")).toBe(150);
    expect(() => promDurationSeconds("1 minute")).toThrow(/not a PromQL duration/);
  });
});
