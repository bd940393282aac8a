import { describe, expect, it } from "vitest";
import { promqlMetricNames } from "./promql-metric-names.js";

describe("promqlMetricNames", () => {
  it("finds selectors, not functions, labels, strings, durations or keywords", () => {
    expect(promqlMetricNames('histogram_quantile(0.99, sum by (le, destination_service) (rate(istio_request_duration_milliseconds_bucket{reporter="source", destination_service=~"$service"}[$__rate_interval])))'))
      .toEqual(["istio_request_duration_milliseconds_bucket"]);
    expect(promqlMetricNames('sum(rate(a_total{code!~"5.."}[1m])) / sum(rate(b_total[5m] offset 1h)) or vector(0)')).toEqual(["a_total", "b_total"]);
    expect(promqlMetricNames("count(envoy_server_live == 1)")).toEqual(["envoy_server_live"]);
    expect(promqlMetricNames('x * on (pod) group_left (node) y{a="or and"}')).toEqual(["x", "y"]);
    expect(promqlMetricNames("process_resident_memory_bytes")).toEqual(["process_resident_memory_bytes"]);
  });

  it("Grafana's label_values(metric{...}, label) names the metric, not the label", () => {
    expect(promqlMetricNames('label_values(envoy_server_live{weft_namespace=~"$namespace"}, weft_workload)')).toEqual(["envoy_server_live"]);
    expect(promqlMetricNames("label_values(istio_requests_total, destination_service)")).toEqual(["istio_requests_total"]);
  });
});
