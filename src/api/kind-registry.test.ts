import { describe, expect, it } from "vitest";
import { buildMeshModel } from "../model/mesh-model.js";
import { diffModels } from "../model/model-diff.js";
import { ISTIO_GROUPS, ISTIO_KINDS, modelListOf, RULE_LISTS } from "./kind-registry.js";
import type { MeshConfig, Sourced } from "./types.js";
import { validateResource } from "./validate-resource.js";

function configOf(...resources: { kind: string; apiVersion: string; metadata: { name: string; namespace: string }; spec: unknown }[]): MeshConfig {
  return { resources: resources.map((resource) => ({ resource, source: { file: "t.yaml", document: 1 } }) as Sourced), issues: [] };
}

describe("the kind registry", () => {
  it("declares each kind once, with a unique plural and model list", () => {
    const kinds = ISTIO_KINDS.map((d) => d.kind);
    expect(new Set(kinds).size).toBe(kinds.length);
    expect(new Set(ISTIO_KINDS.map((d) => `${d.plural}.${d.group}`)).size).toBe(kinds.length);
    const lists = ISTIO_KINDS.map(modelListOf).filter(Boolean);
    expect(new Set(lists).size).toBe(lists.length);
    // Every kind's versions are its group's, except EnvoyFilter (v1alpha3 only, as Istio's CRD).
    for (const g of ISTIO_GROUPS) for (const d of g.kinds) expect(d.versions, d.kind).toEqual(d.kind === "EnvoyFilter" ? ["v1alpha3"] : g.versions);
  });

  it("validates every declared kind through validateResource", () => {
    for (const d of ISTIO_KINDS) {
      const { issues } = validateResource({ apiVersion: `${d.group}/${d.versions[0]}`, kind: d.kind, metadata: { name: "x" }, spec: { notAField: 1 } }, { file: "t.yaml", document: 1 });
      expect(issues.map((i) => i.field), d.kind).toContain("spec.notAField");
    }
  });

  it("puts every listed kind in the model, and an edit of any rule kind is a full change, of a by-host kind a change of the services it names (never silently unapplied)", () => {
    for (const d of ISTIO_KINDS) {
      const list = modelListOf(d);
      const resource = (spec: unknown) => ({ apiVersion: `${d.group}/v1`, kind: d.kind, metadata: { name: "x", namespace: "default" }, spec });
      const base = ({ ServiceEntry: { hosts: ["a.example.com"] }, DestinationRule: { host: "a.example.com" } } as Record<string, object>)[d.kind] ?? {};
      const before = buildMeshModel(configOf(resource(base)));
      if (list) expect(before[list], d.kind).toHaveLength(1);
      if (d.model.diff === "by-host") {
        // Traced to the services it names: those are rebuilt (never "none": silently unapplied).
        const service = resource({ hosts: ["a.example.com"] });
        const withService = (r: ReturnType<typeof resource>) => buildMeshModel(configOf({ ...service, kind: "ServiceEntry", apiVersion: "networking.istio.io/v1", metadata: { name: "svc", namespace: "default" } }, r));
        const named = d.kind === "VirtualService" ? { hosts: ["a.example.com"] } : base;
        const change = diffModels(withService(resource(named)), withService(resource({ ...named, edited: true })));
        expect(change.kind, d.kind).toBe("services");
        if (change.kind === "services") expect([...change.routes, ...change.clusters], d.kind).toContain("a.example.com");
        continue;
      }
      if (d.model.diff !== "rules") continue;
      expect(RULE_LISTS).toContain(list);
      const after = buildMeshModel(configOf(resource({ ...base, edited: true })));
      expect(diffModels(before, after), d.kind).toEqual({ kind: "full" });
    }
  });
});
