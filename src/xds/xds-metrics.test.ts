import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { XdsMetrics } from "./xds-metrics.js";

describe("XdsMetrics", () => {
  it("exports rejects at 0 for every type before any NACK (dashboards and rate() see 0, not no data)", async () => {
    const registry = new Registry();
    new XdsMetrics(registry);
    const text = await registry.metrics();
    for (const type of ["cds", "eds", "lds", "rds", "sds"]) {
      expect(text).toContain(`pilot_total_xds_rejects{type="${type}"} 0`);
      expect(text).toContain(`weft_xds_nacks_total{type="${type}"} 0`);
    }
  });
});
