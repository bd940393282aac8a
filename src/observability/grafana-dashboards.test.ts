import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DASHBOARDS, dashboardQueries, grafanaDashboardFiles } from "./grafana-dashboards.js";
import { promqlMetricNames } from "./promql-metric-names.js";
import { istioCompatRules } from "../envoy/istio-compat-rules.js";

const DIR = new URL("../../manifests/grafana/", import.meta.url);

describe("Grafana dashboards", () => {
  it("manifests/grafana/ holds exactly what the generator writes (npm run gen:dashboards)", () => {
    const files = grafanaDashboardFiles();
    expect(readdirSync(DIR).sort()).toEqual(Object.keys(files).sort());
    for (const [name, text] of Object.entries(files)) expect(readFileSync(new URL(name, DIR), "utf8"), name).toBe(text);
  });

  it("mesh, service, workload and control plane; unique uids and panel ids; every panel has a query", () => {
    expect(DASHBOARDS.map((d) => d.uid)).toEqual(["weft-mesh", "weft-service", "weft-workload", "weft-control-plane"]);
    for (const text of Object.values(grafanaDashboardFiles())) {
      const d = JSON.parse(text) as { panels: { id: number; type: string; targets?: { expr: string }[] }[] };
      const ids = d.panels.map((p) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const p of d.panels.filter((x) => x.type !== "row")) expect(p.targets?.length).toBeGreaterThan(0);
    }
  });

  it("istio_* names the queries use are ones the recording rules record", () => {
    const recorded = new Set(istioCompatRules().map((r) => r.record));
    const used = Object.values(grafanaDashboardFiles()).flatMap((t) => dashboardQueries(JSON.parse(t))).flatMap(promqlMetricNames).filter((n) => n.startsWith("istio_"));
    expect(used.length).toBeGreaterThan(10);
    for (const name of used) expect(recorded.has(name), name).toBe(true);
  });
});
