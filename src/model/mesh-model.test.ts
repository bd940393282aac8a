import { describe, expect, it } from "vitest";
import type { MeshConfig, Sourced } from "../api/types.js";
import { buildMeshModel } from "./mesh-model.js";

function config(resources: Record<string, unknown>[]): MeshConfig {
  return { resources: resources.map((resource, i) => ({ resource, source: { file: "mesh.yaml", document: i + 1 } }) as unknown as Sourced), issues: [] };
}

const workload = (name: string, labels: Record<string, string>, address: string, namespace = "default", metadataLabels?: Record<string, string>) => ({
  apiVersion: "networking.istio.io/v1",
  kind: "WorkloadEntry",
  metadata: { name, namespace, ...(metadataLabels ? { labels: metadataLabels } : {}) },
  spec: { address, labels },
});

const entry = (name: string, selector: Record<string, string>, namespace = "default") => ({
  apiVersion: "networking.istio.io/v1",
  kind: "ServiceEntry",
  metadata: { name, namespace },
  spec: { hosts: [`${name}.${namespace}.svc.cluster.local`], ports: [{ number: 80, name: "http", protocol: "HTTP" }], resolution: "STATIC", workloadSelector: { labels: selector } },
});

describe("buildMeshModel: workloadSelector", () => {
  const workloads = [
    workload("a-v1", { app: "a", version: "v1" }, "10.0.0.1"),
    workload("a-v2", { app: "a", version: "v2" }, "10.0.0.2"),
    workload("b-v1", { app: "b", version: "v1" }, "10.0.0.3"),
    workload("a-v1-labels-in-metadata", { team: "x" }, "10.0.0.4", "default", { app: "a", version: "v1" }),
    workload("a-v1-elsewhere", { app: "a", version: "v1" }, "10.0.0.5", "other"),
  ];
  const addresses = (selector: Record<string, string>, namespace = "default") =>
    buildMeshModel(config([...workloads, entry("svc", selector, namespace)])).services[0]!.endpoints.map((e) => e.address);

  it("selects the workloads of the ServiceEntry's namespace whose spec labels include every selector label", () => {
    expect(addresses({ app: "a", version: "v1" })).toEqual(["10.0.0.1"]);
    expect(addresses({ app: "a" })).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(addresses({ version: "v1" })).toEqual(["10.0.0.1", "10.0.0.3"]);
    expect(addresses({ app: "a", version: "v3" })).toEqual([]);
    expect(addresses({ app: "a" }, "other")).toEqual(["10.0.0.5"]);
  });

  it("selects every workload of the namespace with an empty selector", () => {
    expect(addresses({})).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]);
  });

  it("gives endpoints the metadata and spec labels merged", () => {
    const model = buildMeshModel(config([...workloads, entry("svc", { team: "x" })]));
    expect(model.services[0]!.endpoints.map((e) => e.labels)).toEqual([{ app: "a", version: "v1", team: "x" }]);
  });
});
