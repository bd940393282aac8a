import { describe, expect, it } from "vitest";
import { parsePrometheusText } from "../envoy/prometheus-text.js";
import { histogramQuantile, sourceTraffic, type ProxyScrape } from "./edge-traffic.js";

const RATINGS = "outbound|9080||ratings.default.svc.cluster.local";
const REVIEWS_V2 = "outbound|9080|v2|reviews.default.svc.cluster.local";

/** A scrape of a client sidecar in Envoy's Prometheus text (as Weft's tag extraction names it). */
function scrape(atMs: number, c: { ok: number; e503?: number; hcm5xx?: number; reviewsOk?: number; buckets?: Record<string, number>; tls?: boolean }): ProxyScrape {
  const lines = [
    `envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="${RATINGS}"} ${c.ok}`,
    ...(c.e503 !== undefined ? [`envoy_cluster_upstream_rq{envoy_response_code="503",envoy_cluster_name="${RATINGS}"} ${c.e503}`] : []),
    ...(c.reviewsOk !== undefined ? [`envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="${REVIEWS_V2}"} ${c.reviewsOk}`] : []),
    ...Object.entries(c.buckets ?? {}).map(([le, n]) => `envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="${RATINGS}",le="${le}"} ${n}`),
    ...(c.tls ? [`envoy_cluster_ssl_handshake{envoy_cluster_name="${RATINGS}"} 3`] : []),
    ...(c.hcm5xx !== undefined ? [`envoy_http_downstream_rq_xx{envoy_response_code_class="5",envoy_http_conn_manager_prefix="outbound_0.0.0.0_9080"} ${c.hcm5xx}`] : []),
    `envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="inbound|9080||"} 99`,
  ];
  return { atMs, samples: parsePrometheusText(lines.join("\n") + "\n") };
}

describe("histogramQuantile (Prometheus's histogram_quantile over cumulative buckets)", () => {
  it("interpolates within the bucket the rank falls in", () => {
    // 100 observations: 90 <= 10 ms, 10 in (10, 50]: the 99th is 9/10 of the way through (10, 50].
    expect(histogramQuantile(0.99, new Map([["10", 90], ["50", 100], ["+Inf", 100]]))).toBeCloseTo(46, 5);
    expect(histogramQuantile(0.5, new Map([["10", 90], ["50", 100], ["+Inf", 100]]))).toBeCloseTo(10 * (50 / 90), 5);
  });
  it("answers the highest finite bound when the rank is in +Inf, and nothing for an empty histogram", () => {
    expect(histogramQuantile(0.99, new Map([["10", 1], ["+Inf", 100]]))).toBe(10);
    expect(histogramQuantile(0.99, new Map([["10", 0], ["+Inf", 0]]))).toBeUndefined();
  });
});

describe("sourceTraffic: per-edge rate, 5xx share, p99 and TLS from two scrapes of a client's Envoy stats", () => {
  it("takes rates over the window between the scrapes; inbound clusters are not edges", () => {
    const t = sourceTraffic(scrape(0, { ok: 100, e503: 0, buckets: { "10": 100, "50": 100, "+Inf": 100 }, tls: true }), scrape(10_000, { ok: 145, e503: 5, buckets: { "10": 140, "50": 150, "+Inf": 150 }, tls: true }));
    expect(t.edges).toHaveLength(1);
    const e = t.edges[0]!;
    expect(e).toMatchObject({ cluster: RATINGS, service: "ratings.default.svc.cluster.local", port: 9080, subset: "", totalRequests: 150, requests: 50, errors: 5, windowSeconds: 10, tls: true });
    expect(e.rps).toBeCloseTo(5);
    expect(e.errorRate).toBeCloseTo(0.1);
    // Window: 40 in <=10, 10 in (10,50]: rank 49.5 -> 10 + 40 * 9.5/10.
    expect(e.p99Ms).toBeCloseTo(48);
  });

  it("with one scrape gives totals only (the edge exists), no rate", () => {
    const t = sourceTraffic(undefined, scrape(0, { ok: 7 }));
    expect(t.edges.map((e) => [e.cluster, e.totalRequests, e.rps, e.tls])).toEqual([[RATINGS, 7, undefined, false]]);
  });

  it("gives local 5xx replies (a fault abort never reaches the cluster) to the only cluster the connection manager sent to", () => {
    const t = sourceTraffic(scrape(0, { ok: 10, hcm5xx: 0 }), scrape(5000, { ok: 10, hcm5xx: 20 }));
    expect(t.edges[0]).toMatchObject({ requests: 20, errors: 20, localErrors: 20, errorRate: 1 });
    expect(t.unattributedLocalErrors).toBe(0);
  });

  it("does not count a cluster's own 5xx twice, and keeps local replies unattributed when several clusters share the connection manager", () => {
    const own = sourceTraffic(scrape(0, { ok: 10, e503: 0, hcm5xx: 0 }), scrape(5000, { ok: 10, e503: 4, hcm5xx: 4 }));
    expect(own.edges[0]).toMatchObject({ requests: 4, errors: 4, localErrors: 0 });
    const shared = sourceTraffic(scrape(0, { ok: 10, reviewsOk: 5, hcm5xx: 0 }), scrape(5000, { ok: 12, reviewsOk: 6, hcm5xx: 7 }));
    expect(shared.unattributedLocalErrors).toBe(7);
    expect(shared.edges.map((e) => e.errors)).toEqual([0, 0]);
  });

  it("treats a counter that went down as a restarted Envoy (counts since the restart)", () => {
    const t = sourceTraffic(scrape(0, { ok: 100 }), scrape(10_000, { ok: 4 }));
    expect(t.edges[0]!.requests).toBe(4);
  });
});
