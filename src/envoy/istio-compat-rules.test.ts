import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { istioCompatRules, istioCompatRulesYaml } from "./istio-compat-rules.js";

describe("Istio-compatible recording rules", () => {
  it("manifests/prometheus/istio-compat.rules.yaml is what the generator writes (npm run gen:prometheus-rules)", () => {
    expect(readFileSync(new URL("../../manifests/prometheus/istio-compat.rules.yaml", import.meta.url), "utf8")).toBe(istioCompatRulesYaml());
  });

  it("records every Istio standard metric for both reporters", () => {
    const names = new Set(istioCompatRules().map((r) => r.record));
    for (const m of ["istio_requests_total", "istio_request_duration_milliseconds_bucket", "istio_request_bytes_sum", "istio_response_bytes_count",
      "istio_tcp_sent_bytes_total", "istio_tcp_received_bytes_total", "istio_tcp_connections_opened_total", "istio_tcp_connections_closed_total"]) {
      expect(names.has(m), m).toBe(true);
      expect(istioCompatRules().filter((r) => r.record === m).map((r) => /"reporter", "(\w+)"/.exec(r.expr)?.[1])).toEqual(["source", "destination"]);
    }
  });
});
