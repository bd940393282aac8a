// Golden tests: Istio YAML in testdata/in/<case>.yaml, the Envoy resources for each proxy in
// testdata/out/<case>.<proxy>.json (regenerate with UPDATE_GOLDEN=1). Every golden output is
// also accepted by `envoy --mode validate`.
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import type { MeshConfig, NetworkingResource, VirtualService } from "../api/types.js";
import { Snapshot, type SnapshotInput } from "../cache/snapshot.js";
import { checkConsistency } from "../cache/consistency.js";
import { resourceToJson } from "../envoy/readable-json.js";
import { PUSH_ORDER, TYPE_SHORT_NAMES, XDS_TYPES, resourceName, type XdsResourceTypes, type XdsTypeUrl } from "../envoy/type-urls.js";
import { loadOrCreateCa } from "../ca/certificate-authority.js";
import type { MeshSecurity } from "./mtls.js";
import { validateWithEnvoy } from "../envoy/validate-config.js";
import { buildMeshModel, type MeshSettings } from "../model/mesh-model.js";
import { readMeshSettings } from "../api/mesh-settings.js";
import { parseDocuments, validateResource } from "../api/validate-resource.js";
import type { ProxyModel } from "../model/proxy.js";
import { translateProxy } from "./translate.js";
import { TranslationMemo } from "./translation-memo.js";
import { deepFreeze } from "./deep-freeze.js";

const DATA = path.join(path.dirname(new URL(import.meta.url).pathname), "testdata");

function load(caseName: string): MeshConfig {
  const text = readFileSync(path.join(DATA, "in", `${caseName}.yaml`), "utf8");
  const resources = parseAllDocuments(text)
    .map((d) => d.toJS() as NetworkingResource | null)
    .filter((r): r is NetworkingResource => !!r)
    .map((resource, document) => ({ resource, source: { file: `${caseName}.yaml`, document } }));
  return { resources, issues: [] };
}

function goldenJson(input: SnapshotInput): string {
  const out: Record<string, unknown[]> = {};
  for (const t of PUSH_ORDER) {
    const list = [...((input[t] ?? []) as XdsResourceTypes[XdsTypeUrl][])].sort((a, b) => resourceName(t, a).localeCompare(resourceName(t, b)));
    if (list.length) out[TYPE_SHORT_NAMES[t]] = list.map((r) => resourceToJson(t, r as never));
  }
  return JSON.stringify(out, null, 2) + "\n";
}

const sidecar = (app: string, ns: string, capture: ProxyModel["capture"] = "transparent", locality = ""): ProxyModel => ({ type: "sidecar", namespace: ns, labels: { app, version: "v1" }, capture, locality });

/** The mesh settings beside a case's input (testdata/in/<case>.mesh.yaml), if any. */
function settingsFor(caseName: string): Partial<MeshSettings> {
  const file = path.join(DATA, "in", `${caseName}.mesh.yaml`);
  if (!existsSync(file)) return {};
  const { settings, issues } = readMeshSettings(readFileSync(file, "utf8"), file);
  expect(issues).toEqual([]);
  return settings;
}

/**
 * Mesh mTLS for a case (Istio's SNI, ALPN, TLS versions and ciphers, XFCC). The proxy's
 * certificate comes from a throw-away CA; its Secrets are left out of the golden (their PEM
 * changes every run), everything that refers to them is in.
 */
async function testSecurity(): Promise<MeshSecurity> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "weft-golden-ca-"));
  try {
    const ca = await loadOrCreateCa({ dir });
    const cert = await ca.issueWorkloadCertificate({ namespace: "bookinfo", serviceAccount: "bookinfo-productpage" });
    return { trustDomain: ca.trustDomain, secrets: { certChainPem: cert.certChainPem, privateKeyPem: cert.privateKeyPem, trustBundlePem: ca.trustBundlePem() } };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const CASES: { name: string; input: string; proxy: ProxyModel; mtls?: boolean }[] = [
  { name: "bookinfo.productpage-mtls", input: "bookinfo", proxy: sidecar("productpage", "bookinfo"), mtls: true },
  { name: "bookinfo.productpage", input: "bookinfo", proxy: sidecar("productpage", "bookinfo") },
  { name: "bookinfo.reviews-us-east", input: "bookinfo", proxy: sidecar("reviews", "bookinfo", "transparent", "us-east/zone-1") },
  { name: "bookinfo.productpage-explicit", input: "bookinfo", proxy: sidecar("productpage", "bookinfo", "explicit") },
  { name: "bookinfo.ingressgateway", input: "bookinfo", proxy: { type: "router", namespace: "istio-system", labels: { istio: "ingressgateway" }, capture: "transparent", locality: "" } },
  { name: "egress.shop-app", input: "egress", proxy: sidecar("shop", "shop") },
  { name: "sniffing.shop", input: "sniffing", proxy: sidecar("shop", "shop") },
  { name: "telemetry.frontend", input: "telemetry", proxy: sidecar("frontend", "shop") },
  { name: "telemetry.backend", input: "telemetry", proxy: sidecar("backend", "shop") },
  { name: "delegate.ingressgateway", input: "delegate", proxy: { type: "router", namespace: "istio-system", labels: { istio: "ingressgateway" }, capture: "transparent", locality: "" } },
  { name: "delegate.frontend", input: "delegate", proxy: sidecar("frontend", "shop") },
  { name: "wildcard.shop-app", input: "wildcard", proxy: sidecar("shop", "shop") },
  { name: "cluster-tuning.shop", input: "cluster-tuning", proxy: sidecar("shop", "shop") },
  { name: "east-west.gateway", input: "east-west", proxy: { type: "router", namespace: "istio-system", labels: { istio: "eastwestgateway" }, capture: "transparent", locality: "" }, mtls: true },
  { name: "ext-authz.httpbin", input: "ext-authz", proxy: sidecar("httpbin", "foo"), mtls: true },
  { name: "sidecar-ingress.shop", input: "sidecar-ingress", proxy: sidecar("shop", "shop") },
  { name: "sidecar-ingress.shop-mtls", input: "sidecar-ingress", proxy: sidecar("shop", "shop"), mtls: true },
  { name: "sidecar-ingress.shop-explicit", input: "sidecar-ingress", proxy: sidecar("shop", "shop", "explicit") },
  { name: "egress-ports.shop", input: "egress-ports", proxy: sidecar("shop", "shop") },
  { name: "egress-ports.shop-explicit", input: "egress-ports", proxy: sidecar("shop", "shop", "explicit") },
  { name: "telemetry.ingressgateway", input: "telemetry", proxy: { type: "router", namespace: "istio-system", labels: { istio: "ingressgateway", app: "istio-ingressgateway" }, capture: "transparent", locality: "" } },
];

describe("translation goldens", () => {
  it("every golden input is valid Istio as Weft's validator reads it (no errors)", () => {
    const dir = path.join(DATA, "in");
    const errors: string[] = [];
    for (const name of readdirSync(dir).filter((f) => f.endsWith(".yaml") && !f.endsWith(".mesh.yaml"))) {
      const file = path.join(dir, name);
      for (const { document, value } of parseDocuments(readFileSync(file, "utf8"), file).docs) {
        for (const issue of validateResource(value, { file: name, document }).issues) if (issue.severity === "error") errors.push(`${name}#${document} ${issue.field}: ${issue.message}`);
      }
    }
    expect(errors).toEqual([]);
  });

  for (const c of CASES) {
    it(`${c.name}: matches testdata/out/${c.name}.json, is consistent, and Envoy accepts it`, async () => {
      const model = buildMeshModel(load(c.input), settingsFor(c.input));
      // Frozen: encoding, the consistency check and Envoy's validation must not modify it.
      const input = deepFreeze(translateProxy(model, c.proxy, c.mtls ? await testSecurity() : undefined));
      expect(checkConsistency(Snapshot.build(input))).toEqual([]);
      const actual = goldenJson({ ...input, [XDS_TYPES.secret]: [] });
      const file = path.join(DATA, "out", `${c.name}.json`);
      if (process.env.UPDATE_GOLDEN || !existsSync(file)) writeFileSync(file, actual);
      expect(actual).toBe(readFileSync(file, "utf8"));
      const verdict = await validateWithEnvoy(input);
      expect(verdict.output).not.toMatch(/error/i);
      expect(verdict.ok, verdict.output.slice(-1500)).toBe(true);
    });
  }

  it("one memo for every proxy of a model: outputs frozen as they come, each still its golden (no translator modifies what it shared)", async () => {
    const security = await testSecurity();
    for (const input of [...new Set(CASES.map((c) => c.input))]) {
      const model = buildMeshModel(load(input), settingsFor(input));
      const memo = new TranslationMemo();
      for (const c of CASES.filter((x) => x.input === input)) {
        // Objects a memo hands out again (clusters, endpoints, ...) are frozen by the first
        // proxy's translation: a later translation that modified one in place would throw.
        const out = deepFreeze(translateProxy(model, c.proxy, c.mtls ? security : undefined, memo));
        expect(goldenJson({ ...out, [XDS_TYPES.secret]: [] }), c.name).toBe(readFileSync(path.join(DATA, "out", `${c.name}.json`), "utf8"));
      }
      expect(() => translateProxy(buildMeshModel(load(input), settingsFor(input)), CASES[0]!.proxy, undefined, memo)).toThrow(/second model/);
    }
  });

  it("is deterministic: the same input gives byte-identical snapshots", () => {
    const a = Snapshot.build(translateProxy(buildMeshModel(load("bookinfo")), CASES[0]!.proxy));
    const b = Snapshot.build(translateProxy(buildMeshModel(load("bookinfo")), CASES[0]!.proxy));
    expect(a.version).toBe(b.version);
  });

  it("tolerates unresolved references: a route to an undefined subset or an unknown host answers 503, and the snapshot stays consistent", () => {
    const config = load("bookinfo");
    const reviews = config.resources.find((s) => s.resource.kind === "VirtualService" && s.resource.metadata.name === "reviews")!.resource as VirtualService;
    reviews.spec.http![0]!.route![0]!.destination.subset = "v9";
    reviews.spec.http![1]!.route = [{ destination: { host: "nowhere.example.com" } }];
    const model = buildMeshModel(config);
    const input = translateProxy(model, CASES[0]!.proxy);
    expect(checkConsistency(Snapshot.build(input))).toEqual([]);
    const routes = JSON.stringify(input["type.googleapis.com/envoy.config.route.v3.RouteConfiguration"]);
    expect(routes).toContain("weft: no subset v9 of destination host reviews");
    expect(routes).toContain("weft: no service for destination host nowhere.example.com");
    expect(routes).not.toContain("outbound|9080|v9|");
  });

  it("Envoy's validation catches a broken resource (the check can fail)", async () => {
    const input = translateProxy(buildMeshModel(load("bookinfo")), CASES[0]!.proxy);
    const listeners = input["type.googleapis.com/envoy.config.listener.v3.Listener"]!;
    const broken = { ...input, "type.googleapis.com/envoy.config.listener.v3.Listener": [...listeners, { ...listeners[0]!, name: "dup" }] };
    const verdict = await validateWithEnvoy(broken);
    expect(verdict.ok).toBe(false);
    expect(verdict.output).toMatch(/address|duplicate|bind|15001/i);
  });
});
