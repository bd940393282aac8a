import { describe, expect, it } from "vitest";
import type { MeshConfig, Sourced } from "../api/types.js";
import { buildMeshModel } from "./mesh-model.js";
import { diffModels } from "./model-diff.js";

function config(timeout: string, extraRoute = false): MeshConfig {
  const source = { file: "mesh.yaml", document: 1 };
  const resources = [
    { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "a", namespace: "default" }, spec: { hosts: ["a.default.svc.cluster.local"], ports: [{ number: 80, name: "http", protocol: "HTTP" }], resolution: "STATIC", endpoints: [{ address: "10.0.0.1" }] } },
    { apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name: "a", namespace: "default" }, spec: { hosts: ["a"], http: [{ route: [{ destination: { host: "a" } }], timeout }] } },
    ...(extraRoute ? [{ apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name: "b", namespace: "default" }, spec: { hosts: ["b.example.com"], http: [{ route: [{ destination: { host: "a" } }] }] } }] : []),
  ];
  return { resources: resources.map((resource) => ({ resource, source }) as Sourced), issues: [] };
}

describe("diffModels", () => {
  it("finds no change between models of equal content, whether or not they share objects", () => {
    const shared = config("5s");
    expect(diffModels(buildMeshModel(shared), buildMeshModel(shared))).toEqual({ kind: "none" });
    expect(diffModels(buildMeshModel(config("5s")), buildMeshModel(config("5s")))).toEqual({ kind: "none" });
  });

  it("names the services whose routes change when a VirtualService changes, is added or is removed", () => {
    const a = "a.default.svc.cluster.local";
    expect(diffModels(buildMeshModel(config("5s")), buildMeshModel(config("6s")))).toEqual({ kind: "services", clusters: new Set(), routes: new Set([a]), redefined: new Set(), namespaces: new Set() });
    // b.example.com is no service: no virtual host of a sidecar derives from it.
    expect(diffModels(buildMeshModel(config("5s")), buildMeshModel(config("5s", true)))).toEqual({ kind: "services", clusters: new Set(), routes: new Set(), redefined: new Set(), namespaces: new Set() });
    expect(diffModels(buildMeshModel(config("5s", true)), buildMeshModel(config("5s")))).toEqual({ kind: "services", clusters: new Set(), routes: new Set(), redefined: new Set(), namespaces: new Set() });
  });

  it("asks for a full regeneration when a mesh-wide rule changes (a Sidecar)", () => {
    const withSidecar = config("5s");
    withSidecar.resources.push({ resource: { apiVersion: "networking.istio.io/v1", kind: "Sidecar", metadata: { name: "default", namespace: "default" }, spec: { egress: [{ hosts: ["./*"] }] } }, source: { file: "mesh.yaml", document: 3 } } as Sourced);
    expect(diffModels(buildMeshModel(config("5s")), buildMeshModel(withSidecar))).toEqual({ kind: "full" });
  });

  it("takes the endpoint path when only endpoints changed", () => {
    const next = config("5s");
    const se = next.resources[0]!.resource;
    if (se.kind !== "ServiceEntry") throw new Error("fixture changed");
    se.spec.endpoints = [{ address: "10.0.0.2" }];
    const change = diffModels(buildMeshModel(config("5s")), buildMeshModel(next));
    expect(change.kind).toBe("endpoints");
  });

  it("a service only a delegate VirtualService routes to: its change regenerates the routes of the root's hosts", () => {
    const withDelegation = (port: number): MeshConfig => {
      const source = { file: "mesh.yaml", document: 1 };
      const resources = [
        { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "a", namespace: "default" }, spec: { hosts: ["a.default.svc.cluster.local"], ports: [{ number: 80, name: "http", protocol: "HTTP" }], resolution: "STATIC", endpoints: [{ address: "10.0.0.1" }] } },
        { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "c", namespace: "team" }, spec: { hosts: ["c.team.svc.cluster.local"], ports: [{ number: port, name: "http", protocol: "HTTP" }], resolution: "STATIC", endpoints: [{ address: "10.0.0.3" }] } },
        { apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name: "a", namespace: "default" }, spec: { hosts: ["a"], http: [{ delegate: { name: "routes", namespace: "team" } }] } },
        { apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name: "routes", namespace: "team" }, spec: { http: [{ route: [{ destination: { host: "c" } }] }] } },
      ];
      return { resources: resources.map((resource) => ({ resource, source }) as Sourced), issues: [] };
    };
    const change = diffModels(buildMeshModel(withDelegation(80)), buildMeshModel(withDelegation(8080)));
    expect(change).toEqual({ kind: "services", clusters: new Set(["c.team.svc.cluster.local"]), routes: new Set(["c.team.svc.cluster.local", "a.default.svc.cluster.local"]), redefined: new Set(["c.team.svc.cluster.local"]), namespaces: new Set(["team"]) });
  });
});
