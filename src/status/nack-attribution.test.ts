import { describe, expect, it } from "vitest";
import { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import { VirtualHost } from "../../generated/envoy/config/route/v3/route_components.js";
import type { MeshConfig } from "../api/types.js";
import { validateResource } from "../api/validate-resource.js";
import type { CachedResource } from "../cache/snapshot.js";
import { buildMeshModel } from "../model/mesh-model.js";
import { attributeNack, quotedValues, virtualServiceOfDecorator } from "./nack-attribution.js";

function config(...docs: unknown[]): MeshConfig {
  const resources = docs.map((d, i) => {
    const { resource, issues } = validateResource(d, { file: "t.yaml", document: i + 1 });
    if (!resource) throw new Error(JSON.stringify(issues));
    return { resource, source: { file: "t.yaml", document: i + 1 } };
  });
  return { resources, issues: [] };
}

const meta = (name: string, namespace = "shop") => ({ name, namespace });
const model = buildMeshModel(config(
  { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: meta("web"), spec: { hosts: ["web.shop.svc.cluster.local"], ports: [{ number: 9080, name: "http", protocol: "HTTP" }], resolution: "STATIC", endpoints: [{ address: "10.0.0.1" }] } },
  { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: meta("api"), spec: { hosts: ["api.shop.svc.cluster.local"], ports: [{ number: 80, name: "http", protocol: "HTTP" }], resolution: "STATIC", endpoints: [{ address: "10.0.0.2" }] } },
  { apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: meta("web.v2"), spec: { hosts: ["web"], http: [{ match: [{ uri: { regex: "/(ab){300}" } }], route: [{ destination: { host: "web" } }] }] } },
  { apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: meta("other"), spec: { hosts: ["web"], http: [{ route: [{ destination: { host: "web" } }] }] } },
  { apiVersion: "networking.istio.io/v1", kind: "DestinationRule", metadata: meta("web"), spec: { host: "web", subsets: [{ name: "v1", labels: { v: "1" } }] } },
));

function routes(): Map<string, CachedResource> {
  const rc = RouteConfiguration.fromPartial({
    name: "9080",
    virtualHosts: [{
      name: "web.shop.svc.cluster.local:9080",
      domains: ["web"],
      routes: [
        { name: "a", match: { safeRegex: { regex: "/(ab){300}" } }, route: { cluster: "outbound|9080||web.shop.svc.cluster.local" }, decorator: { operation: "web.v2.shop:0" } },
        { name: "b", match: { prefix: "/" }, route: { cluster: "outbound|9080||web.shop.svc.cluster.local" }, decorator: { operation: "other.shop:0" } },
      ],
    }],
  });
  return new Map([["9080", { name: "9080", version: "v1", body: Buffer.from(RouteConfiguration.encode(rc).finish()) }]]);
}

describe("NACK attribution", () => {
  it("finds Envoy's quoted values", () => {
    expect(quotedValues("regex '/(ab){300}' RE2 program size of 1803 > max program size of 100 'ab'")).toEqual(["/(ab){300}"]);
    expect(quotedValues("no quotes")).toEqual([]);
  });

  it("reads the VirtualService from a route's decorator (names may have dots, namespaces not)", () => {
    expect(virtualServiceOfDecorator("web.v2.shop:0")).toBe("VirtualService/shop/web.v2");
    expect(virtualServiceOfDecorator("reviews.bookinfo:retry-rule")).toBe("VirtualService/bookinfo/reviews");
    expect(virtualServiceOfDecorator("outbound|80||x")).toBeUndefined();
    expect(virtualServiceOfDecorator("nodot:0")).toBeUndefined();
  });

  it("an RDS NACK quoting a regex names only the VirtualService whose route carries it", () => {
    const message = "regex '/(ab){300}' RE2 program size of 1803 > max program size of 100 set for the error level threshold.";
    expect(attributeNack({ type: "rds", message, resources: routes() }, model)).toEqual(["VirtualService/shop/web.v2"]);
  });

  it("a VHDS NACK (delta client: virtual hosts as resources) names the VirtualService whose route carries the value", () => {
    const message = "regex '/(ab){300}' RE2 program size of 1803 > max program size of 100 set for the error level threshold.";
    const vh = RouteConfiguration.decode(routes().get("9080")!.body).virtualHosts![0]!;
    const body = Buffer.from(VirtualHost.encode({ ...vh, name: "9080/web.shop.svc.cluster.local:9080" }).finish());
    const resources = new Map([["9080/web.shop.svc.cluster.local:9080", { name: "9080/web.shop.svc.cluster.local:9080", version: "v1", body }]]);
    expect(attributeNack({ type: "vhds", message, resources }, model)).toEqual(["VirtualService/shop/web.v2"]);
  });

  it("an RDS NACK that quotes nothing found in the routes names nobody", () => {
    expect(attributeNack({ type: "rds", message: "Proto constraint validation failed", resources: routes() }, model)).toEqual([]);
    expect(attributeNack({ type: "rds", message: "value 'not-in-any-route' is bad", resources: routes() }, model)).toEqual([]);
  });

  it("a CDS NACK naming clusters names the DestinationRule of the host, else the ServiceEntry", () => {
    const message = "Error adding/updating cluster(s) outbound|9080|v1|web.shop.svc.cluster.local: bad, outbound|80||api.shop.svc.cluster.local: worse";
    expect(attributeNack({ type: "cds", message, resources: new Map(), proxyNamespace: "shop" }, model)).toEqual(["DestinationRule/shop/web", "ServiceEntry/shop/api"]);
    expect(attributeNack({ type: "cds", message: "Error adding/updating cluster(s) outbound|80||unknown.example: x", resources: new Map() }, model)).toEqual([]);
  });

  it("LDS, EDS and SDS NACKs are not attributed", () => {
    for (const type of ["lds", "eds", "sds"]) expect(attributeNack({ type, message: "regex '/(ab){300}' outbound|9080||web.shop.svc.cluster.local", resources: routes() }, model)).toEqual([]);
  });
});
