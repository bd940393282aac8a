// Wildcard hosts ("*", "*.example.com", "*foo.example.com") in VirtualServices and
// DestinationRules, as Istio resolves them: each service gets the rules that name it most
// specifically (exact, then the longest wildcard), DestinationRules by namespace precedence first.
import { describe, expect, it } from "vitest";
import type { MeshConfig, Sourced } from "../api/types.js";
import { validateResource } from "../api/validate-resource.js";
import { destinationRuleFor } from "../translate/traffic-policy.js";
import { virtualServicesFor, virtualServicesForService } from "../translate/visibility.js";
import { hostPatternMatches } from "./host-match.js";
import { buildMeshModel } from "./mesh-model.js";
import { diffModels } from "./model-diff.js";

function resource(kind: string, name: string, namespace: string, spec: Record<string, unknown>): Sourced {
  const { resource, issues } = validateResource({ apiVersion: "networking.istio.io/v1", kind, metadata: { name, namespace }, spec }, { file: "w.yaml", document: 1 });
  if (!resource) throw new Error(issues.map((i) => `${i.field}: ${i.message}`).join("; "));
  return { resource, source: { file: "w.yaml", document: 1 } };
}

const services = resource("ServiceEntry", "example", "shop", {
  hosts: ["api.example.com", "shop.example.com", "barfoo.example.com", "deep.api.example.com"],
  location: "MESH_EXTERNAL",
  resolution: "STATIC",
  ports: [{ number: 80, name: "http", protocol: "HTTP" }],
  endpoints: [{ address: "10.0.0.1" }],
});
const vsFor = (name: string, hosts: string[], namespace = "shop") => resource("VirtualService", name, namespace, { hosts, http: [{ route: [{ destination: { host: "api.example.com" } }] }] });
const drFor = (name: string, host: string, namespace = "shop") => resource("DestinationRule", name, namespace, { host });

function model(...resources: Sourced[]) {
  const config: MeshConfig = { resources: [services, ...resources], issues: [] };
  return buildMeshModel(config);
}

function applying(m: ReturnType<typeof model>, hostname: string, clientNamespace = "shop"): string[] {
  const service = m.serviceByHost.get(hostname)!;
  return virtualServicesForService(m, service, virtualServicesFor(m, ["mesh"], clientNamespace)).map((vs) => vs.metadata.name);
}

describe("wildcard hosts", () => {
  it("host patterns match as Istio's: a suffix after *, not the bare domain; * matches all", () => {
    expect(hostPatternMatches("*.example.com", "a.example.com")).toBe(true);
    expect(hostPatternMatches("*.example.com", "example.com")).toBe(false);
    expect(hostPatternMatches("*foo.example.com", "barfoo.example.com")).toBe(true);
    expect(hostPatternMatches("*foo.example.com", "foo.example.com")).toBe(true);
    expect(hostPatternMatches("*.example.com", "*.api.example.com")).toBe(true);
    expect(hostPatternMatches("*.api.example.com", "*.example.com")).toBe(false);
    expect(hostPatternMatches("*", "anything.at.all")).toBe(true);
  });

  it("a VirtualService with a wildcard host applies to the services it matches, unless one names them more specifically", () => {
    const m = model(vsFor("all", ["*.example.com"]), vsFor("api", ["api.example.com"]), vsFor("api-sub", ["*.api.example.com"]), vsFor("foo", ["*foo.example.com"]));
    expect(applying(m, "api.example.com")).toEqual(["api"]);
    expect(applying(m, "shop.example.com")).toEqual(["all"]);
    expect(applying(m, "deep.api.example.com")).toEqual(["api-sub"]);
    expect(applying(m, "barfoo.example.com")).toEqual(["foo"]); // "*foo.example.com" is longer than "*.example.com"
  });

  it("a more specific VirtualService that a client cannot see does not hide a less specific visible one", () => {
    const m = model(vsFor("all", ["*.example.com"]), resource("VirtualService", "private", "team", { hosts: ["api.example.com"], exportTo: ["."], http: [{ route: [{ destination: { host: "api.example.com" } }] }] }));
    expect(applying(m, "api.example.com", "shop")).toEqual(["all"]);
    expect(applying(m, "api.example.com", "team")).toEqual(["private"]);
  });

  it("DestinationRules: the client's namespace first, then the service's, then the root's; the most specific host within one", () => {
    const m = model(drFor("all", "*.example.com"), drFor("api", "api.example.com"), drFor("com", "*.com", "istio-system"), drFor("client-all", "*", "client"));
    const rule = (hostname: string, client: string) => destinationRuleFor(m, m.serviceByHost.get(hostname)!, client)?.metadata.name;
    expect(rule("api.example.com", "shop")).toBe("api");
    expect(rule("shop.example.com", "shop")).toBe("all");
    expect(rule("shop.example.com", "client")).toBe("client-all"); // the client's namespace wins over a more specific host elsewhere
    expect(rule("shop.example.com", "other")).toBe("all"); // the service's namespace
    const rootOnly = model(drFor("com", "*.com", "istio-system"));
    expect(destinationRuleFor(rootOnly, rootOnly.serviceByHost.get("api.example.com")!, "other")?.metadata.name).toBe("com");
  });

  it("a change to a wildcard VirtualService regenerates the routes of every service it matches", () => {
    const before = model(vsFor("all", ["*.example.com"]));
    const after = model(resource("VirtualService", "all", "shop", { hosts: ["*.example.com"], http: [{ timeout: "3s", route: [{ destination: { host: "api.example.com" } }] }] }));
    const change = diffModels(before, after);
    expect(change).toEqual({ kind: "services", clusters: new Set(), routes: new Set(["api.example.com", "barfoo.example.com", "deep.api.example.com", "shop.example.com"]), redefined: new Set(), namespaces: new Set() });
  });
});
