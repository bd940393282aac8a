import { describe, expect, it } from "vitest";
import type { MeshTelemetrySettings } from "../api/telemetry/extension-providers.js";
import type { Telemetry, TelemetrySpec } from "../api/telemetry/types.js";
import { telemetryLevels, telemetryPlan } from "./telemetry.js";

const t = (namespace: string, name: string, spec: TelemetrySpec): Telemetry => ({ apiVersion: "telemetry.istio.io/v1", kind: "Telemetry", metadata: { name, namespace }, spec });
const settings: MeshTelemetrySettings = {
  extensionProviders: [
    { name: "otel", opentelemetry: { service: "jaeger.istio-system.svc.cluster.local", port: 4317 } },
    { name: "zipkin", zipkin: { service: "jaeger.istio-system.svc.cluster.local", port: 9411 } },
    { name: "json", envoyFileAccessLog: { path: "/dev/stdout", logFormat: { labels: {} } } },
  ],
  defaultProviders: { tracing: ["otel"] },
};
const plan = (list: Telemetry[], workload: { namespace: string; labels: Record<string, string> }, side: "client" | "server" = "client", s = settings) =>
  telemetryPlan(telemetryLevels(list, "istio-system", workload), s, side);
const reviews = { namespace: "shop", labels: { app: "reviews" } };

describe("Telemetry levels and merging (Istio's semantics)", () => {
  it("mesh defaults: defaultProviders trace at 1% (Istio's default), no access log", () => {
    const p = plan([], reviews);
    expect(p.tracing).toMatchObject({ provider: { name: "otel" }, samplingPercentage: 1 });
    expect(p.accessLogs).toEqual([]);
  });

  it("mesh -> namespace -> workload: each level overrides the one before; other namespaces keep the mesh's", () => {
    const list = [
      t("istio-system", "mesh", { tracing: [{ randomSamplingPercentage: 100, customTags: { a: { literal: { value: "mesh" } }, b: { literal: { value: "mesh" } } } }], accessLogging: [{ providers: [{ name: "envoy" }] }] }),
      t("shop", "ns", { tracing: [{ providers: [{ name: "zipkin" }], customTags: { b: { literal: { value: "ns" } } } }] }),
      t("shop", "reviews", { selector: { matchLabels: { app: "reviews" } }, tracing: [{ randomSamplingPercentage: 0 }], accessLogging: [{ disabled: true }] }),
    ];
    const own = plan(list, reviews);
    expect(own.tracing).toMatchObject({ provider: { name: "zipkin" }, samplingPercentage: 0, customTags: { a: { literal: { value: "mesh" } }, b: { literal: { value: "ns" } } } });
    expect(own.accessLogs).toEqual([]);
    const sibling = plan(list, { namespace: "shop", labels: { app: "ratings" } });
    expect(sibling.tracing).toMatchObject({ provider: { name: "zipkin" }, samplingPercentage: 100 });
    expect(sibling.accessLogs.map((l) => l.provider.name)).toEqual(["envoy"]);
    const elsewhere = plan(list, { namespace: "other", labels: { app: "reviews" } });
    expect(elsewhere.tracing).toMatchObject({ provider: { name: "otel" }, samplingPercentage: 100 });
  });

  it("match.mode splits client and server; a filter or 'disabled' without providers applies to those in force", () => {
    const list = [
      t("istio-system", "mesh", { accessLogging: [{ providers: [{ name: "envoy" }, { name: "json" }] }] }),
      t("shop", "ns", { accessLogging: [{ match: { mode: "SERVER" }, filter: { expression: "response.code >= 500" } }, { match: { mode: "CLIENT" }, providers: [{ name: "json" }], disabled: true }] }),
    ];
    expect(plan(list, reviews, "server").accessLogs.map((l) => [l.provider.name, l.filter])).toEqual([["envoy", "response.code >= 500"], ["json", "response.code >= 500"]]);
    expect(plan(list, reviews, "client").accessLogs).toEqual([]);
  });

  it("disableSpanReporting keeps sampling but reports to no provider; unknown providers are skipped", () => {
    const p = plan([t("shop", "ns", { tracing: [{ disableSpanReporting: true, randomSamplingPercentage: 50 }] })], reviews);
    expect(p.tracing).toEqual({ samplingPercentage: 50, customTags: {}, useRequestIdForTraceSampling: false });
    expect(plan([t("shop", "ns", { tracing: [{ providers: [{ name: "nope" }] }] })], reviews).tracing).toBeUndefined();
  });

  it("at one level the first by name wins; targetRef'd resources are not applied; accessLogFile turns on the built-in provider", () => {
    const list = [t("shop", "b", { tracing: [{ randomSamplingPercentage: 20 }] }), t("shop", "a", { tracing: [{ randomSamplingPercentage: 10 }] }), t("shop", "c", { targetRef: { kind: "Gateway", name: "x" }, tracing: [{ randomSamplingPercentage: 90 }] })];
    expect(plan(list, reviews).tracing?.samplingPercentage).toBe(10);
    const withFile = plan([], reviews, "server", { ...settings, accessLogFile: "/var/log/envoy.log", accessLogEncoding: "JSON" });
    expect(withFile.accessLogs.map((l) => l.provider.envoyFileAccessLog)).toEqual([{ path: "/var/log/envoy.log", logFormat: { labels: {} } }]);
  });
});
