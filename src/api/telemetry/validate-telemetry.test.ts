import { describe, expect, it } from "vitest";
import { readMeshSettings } from "../mesh-settings.js";
import { formatIssue } from "../types.js";
import { validateResource } from "../validate-resource.js";
import { celSyntaxProblem, checkTelemetryProviders } from "./validate-telemetry.js";
import type { Telemetry } from "./types.js";

const source = { file: "telemetry.yaml", document: 1 };
const telemetry = (spec: unknown, apiVersion = "telemetry.istio.io/v1") => ({ apiVersion, kind: "Telemetry", metadata: { name: "t", namespace: "shop" }, spec });
const messages = (spec: unknown, apiVersion?: string) => validateResource(telemetry(spec, apiVersion), source).issues.map(formatIssue);

describe("Telemetry validation (Istio's rules)", () => {
  it("accepts Istio's documented examples in v1 and v1alpha1", () => {
    const spec = {
      selector: { matchLabels: { app: "reviews" } },
      tracing: [{ providers: [{ name: "otel" }], randomSamplingPercentage: 10.5, customTags: { team: { literal: { value: "books" } }, user: { header: { name: "end-user", defaultValue: "none" } }, pod: { environment: { name: "POD_NAME" } } } }],
      accessLogging: [{ match: { mode: "SERVER" }, providers: [{ name: "envoy" }], filter: { expression: "response.code >= 400 && request.url_path.startsWith('/api')" } }, { match: { mode: "CLIENT" }, disabled: true }],
    };
    for (const v of ["telemetry.istio.io/v1", "telemetry.istio.io/v1alpha1"]) {
      const r = validateResource(telemetry(spec, v), source);
      expect(r.issues).toEqual([]);
      expect(r.resource?.kind).toBe("Telemetry");
    }
  });

  it("refuses a sampling percentage outside 0-100, naming the field", () => {
    expect(messages({ tracing: [{ randomSamplingPercentage: 150 }] })).toEqual([
      "telemetry.yaml: document 1: Telemetry/shop/t: spec.tracing[0].randomSamplingPercentage: expected a number from 0 to 100, found 150",
    ]);
    expect(messages({ tracing: [{ randomSamplingPercentage: -1 }] })[0]).toMatch(/randomSamplingPercentage: expected a number from 0 to 100/);
  });

  it("refuses selector together with targetRef; targetRef alone is accepted with a 'not applied' warning", () => {
    expect(messages({ selector: { matchLabels: { app: "a" } }, targetRef: { kind: "Gateway", name: "gw" } }).join("\n")).toMatch(/spec: expected at most one of the ways of choosing workloads selector, targetRef, targetRefs, found selector and targetRef/);
    const r = validateResource(telemetry({ targetRef: { kind: "Gateway", group: "gateway.networking.k8s.io", name: "gw" } }), source);
    expect(r.resource).toBeDefined();
    expect(r.issues.map(formatIssue)).toEqual([expect.stringMatching(/spec.targetRef: is not supported yet: .* this Telemetry is not applied/)]);
  });

  it("refuses custom tags of no kind or of two kinds, and bad modes, with did-you-mean", () => {
    const out = messages({ tracing: [{ customTags: { a: {}, b: { literal: { value: "x" }, header: { name: "h" } } } }], accessLogging: [{ match: { mode: "client" } }] }).join("\n");
    expect(out).toMatch(/spec.tracing\[0\].customTags.a: expected one of literal, environment or header/);
    expect(out).toMatch(/spec.tracing\[0\].customTags.b: expected at most one of the tag kinds literal, environment, header, found literal and header/);
    expect(out).toMatch(/spec.accessLogging\[0\].match.mode: expected one of "CLIENT_AND_SERVER", "CLIENT", "SERVER", found the string "client" \(values are case-sensitive: write "CLIENT"\)/);
  });

  it("refuses a filter that is not an expression and unknown fields", () => {
    expect(messages({ accessLogging: [{ filter: { expression: "response.code = 500" } }] })[0]).toMatch(/filter.expression: a CEL expression compares with "==", not "="/);
    expect(messages({ accessLogging: [{ filter: { expression: "has(request.headers" } }] })[0]).toMatch(/unclosed "\("/);
    expect(messages({ acessLogging: [] })[0]).toMatch(/spec.acessLogging: unknown field \(did you mean "accessLogging"\?\)/);
    expect(celSyntaxProblem('request.headers["x-a"] == "b(" || response.code != 200')).toBeUndefined();
  });

  it("warns (never refuses) where Istio accepts what Weft does not apply: metrics, several providers", () => {
    const r = validateResource(telemetry({ metrics: [{ providers: [{ name: "prometheus" }] }], tracing: [{ providers: [{ name: "a" }, { name: "b" }] }] }), source);
    expect(r.resource).toBeDefined();
    expect(r.issues.every((i) => i.severity === "warning")).toBe(true);
    expect(r.issues.map((i) => i.field)).toEqual(["spec.tracing[0].providers", "spec.metrics"]);
  });

  it("warns about provider names the mesh settings do not declare ('envoy' is built in)", () => {
    const { settings } = readMeshSettings("extensionProviders:\n- name: otel\n  opentelemetry: { service: otel.istio-system.svc.cluster.local, port: 4317 }\n", "mesh.yaml");
    const t = validateResource(telemetry({ tracing: [{ providers: [{ name: "otel" }] }], accessLogging: [{ providers: [{ name: "envoy" }, { name: "jsonlog" }] }] }), source).resource as Telemetry;
    const issues = checkTelemetryProviders([{ resource: t, source }], settings.telemetry);
    expect(issues.map(formatIssue)).toEqual([expect.stringMatching(/^telemetry.yaml: document 1: Telemetry\/shop\/t: spec.accessLogging\[0\].providers\[1\].name: no extension provider named "jsonlog" in the mesh settings \(known: "otel", "envoy"\)/)]);
    expect(issues[0]!.severity).toBe("warning");
  });
});

describe("mesh settings (extensionProviders)", () => {
  it("reads Istio's MeshConfig, also inside the istio ConfigMap", () => {
    const mesh = ["defaultProviders: { tracing: [zipkin], accessLogging: [envoy] }", "extensionProviders:", "- name: zipkin", "  zipkin: { service: zipkin.istio-system.svc.cluster.local, port: 9411 }", "trustDomain: cluster.local", ""].join("\n");
    const direct = readMeshSettings(mesh, "mesh.yaml");
    expect(direct.issues.map(formatIssue)).toEqual([expect.stringMatching(/trustDomain: not used by Weft/)]);
    expect(direct.settings.telemetry.defaultProviders).toEqual({ tracing: ["zipkin"], accessLogging: ["envoy"] });
    const configMap = `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: istio, namespace: istio-system }\ndata:\n  mesh: |\n${mesh.split("\n").map((l) => `    ${l}`).join("\n")}\n`;
    expect(readMeshSettings(configMap, "istio.yaml").settings).toEqual(direct.settings);
  });

  it("refuses unknown default providers, duplicate names, bad ports and unclosed format operators, naming the field", () => {
    const text = [
      "defaultProviders: { tracing: [otle] }",
      "extensionProviders:",
      "- name: otel",
      "  opentelemetry: { service: otel.svc, port: 70000 }",
      "- name: otel",
      "  envoyFileAccessLog: { path: /dev/stdout, logFormat: { text: '%START_TIME% %REQ(:METHOD)' } }",
    ].join("\n");
    const out = readMeshSettings(text, "mesh.yaml").issues.map(formatIssue).join("\n");
    expect(out).toMatch(/extensionProviders\[0\].opentelemetry.port: expected an integer from 1 to 65535, found 70000/);
    expect(out).toMatch(/extensionProviders\[1\].name: duplicate provider name "otel"/);
    expect(out).toMatch(/extensionProviders\[1\].envoyFileAccessLog.logFormat.text: every "%" must start a command operator/);
    expect(out).toMatch(/defaultProviders.tracing\[0\]: no extension provider named "otle"/);
  });
});
