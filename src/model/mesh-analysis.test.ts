import { describe, expect, it } from "vitest";
import type { MeshConfig, Sourced } from "../api/types.js";
import { validateResource } from "../api/validate-resource.js";
import { analyzeMesh } from "./mesh-analysis.js";

let documents = 0;

function resource(kind: string, name: string, spec: Record<string, unknown>, namespace = "shop", labels?: Record<string, string>): Sourced {
  const document = ++documents;
  const { resource, issues } = validateResource({ apiVersion: "networking.istio.io/v1", kind, metadata: { name, namespace, ...(labels ? { labels } : {}) }, spec }, { file: "mesh.yaml", document });
  if (!resource) throw new Error(`invalid test resource: ${issues.map((i) => `${i.field}: ${i.message}`).join("; ")}`);
  return { resource, source: { file: "mesh.yaml", document } };
}

function findings(...resources: Sourced[]): string[] {
  const config: MeshConfig = { resources, issues: [] };
  return analyzeMesh(config).map((i) => `${i.code} ${i.resource} ${i.field}: ${i.message}`);
}

const twoPorts = () =>
  resource("ServiceEntry", "reviews", {
    hosts: ["reviews.shop.svc.cluster.local"],
    location: "MESH_INTERNAL",
    resolution: "STATIC",
    ports: [{ number: 9080, name: "http", protocol: "HTTP" }, { number: 9443, name: "https", protocol: "HTTPS" }],
    endpoints: [{ address: "10.0.0.1", labels: { app: "reviews" } }],
  });

describe("analyzeMesh", () => {
  it("IST0112: a destination without a port to a service with several; IST0101 host:port: a port the service lacks", () => {
    const vs = resource("VirtualService", "reviews", {
      hosts: ["reviews"],
      http: [{ route: [{ destination: { host: "reviews" } }], mirror: { host: "reviews", port: { number: 1234 } } }],
      tcp: [{ route: [{ destination: { host: "reviews", port: { number: 9443 } } }] }],
    });
    expect(findings(twoPorts(), vs)).toEqual([
      'IST0112 VirtualService/shop/reviews spec.http[0].route[0].destination: This VirtualService routes to a service "reviews" that exposes multiple ports [9080 9443]. Specifying a port in the destination is required to disambiguate.',
      'IST0101 VirtualService/shop/reviews spec.http[0].mirror.port.number: Referenced mirror host:port not found: "reviews:1234"',
    ]);
  });

  it("IST0109 only for VirtualServices of the mesh whose exportTo scopes meet", () => {
    const route = { http: [{ route: [{ destination: { host: "reviews", port: { number: 9080 } } }] }] };
    const local = resource("VirtualService", "a", { hosts: ["reviews"], exportTo: ["."], ...route });
    const other = resource("VirtualService", "b", { hosts: ["reviews.shop.svc.cluster.local"], exportTo: ["checkout"], ...route });
    const gateway = resource("VirtualService", "c", { hosts: ["reviews"], gateways: ["edge"], ...route });
    expect(findings(twoPorts(), local, other, gateway).filter((f) => f.startsWith("IST0109"))).toEqual([]);
    const both = resource("VirtualService", "d", { hosts: ["reviews"], exportTo: ["shop", "checkout"], ...route });
    expect(findings(twoPorts(), local, other, both).filter((f) => f.startsWith("IST0109"))).toEqual([
      expect.stringMatching(/^IST0109 VirtualService\/shop\/a spec.hosts: The VirtualServices shop\/a,shop\/d .* same host shop\/reviews.shop.svc.cluster.local /),
      expect.stringMatching(/^IST0109 VirtualService\/shop\/d spec.hosts: The VirtualServices shop\/a,shop\/d /),
      expect.stringMatching(/^IST0109 VirtualService\/shop\/b spec.hosts: The VirtualServices shop\/b,shop\/d .* same host checkout\/reviews.shop.svc.cluster.local /),
      expect.stringMatching(/^IST0109 VirtualService\/shop\/d spec.hosts: The VirtualServices shop\/b,shop\/d /),
    ]);
  });

  it("IST0132: a VirtualService host no server host of its Gateway (as seen from its namespace) matches", () => {
    const gateway = resource("Gateway", "edge", { selector: { istio: "ingressgateway" }, servers: [{ port: { number: 80, name: "http", protocol: "HTTP" }, hosts: ["*.example.com", "other/api.internal"] }] });
    const route = { http: [{ route: [{ destination: { host: "reviews", port: { number: 9080 } } }] }] };
    const matching = resource("VirtualService", "shop-web", { hosts: ["shop.example.com"], gateways: ["edge"], ...route });
    const wildcard = resource("VirtualService", "all-web", { hosts: ["*.example.com"], gateways: ["shop/edge"], ...route });
    const otherNamespaceOnly = resource("VirtualService", "api", { hosts: ["api.internal"], gateways: ["edge"], ...route });
    const bare = resource("VirtualService", "bare", { hosts: ["example.com"], gateways: ["edge", "mesh"], ...route });
    const missing = resource("VirtualService", "lost", { hosts: ["shop.example.com"], gateways: ["nowhere"], ...route });
    expect(findings(twoPorts(), gateway, matching, wildcard, otherNamespaceOnly, bare, missing).filter((f) => f.startsWith("IST0132"))).toEqual([
      "IST0132 VirtualService/shop/api spec.gateways[0]: one or more host [api.internal] defined in VirtualService shop/api not found in Gateway shop/edge.",
      "IST0132 VirtualService/shop/bare spec.gateways[0]: one or more host [example.com] defined in VirtualService shop/bare not found in Gateway shop/edge.",
      "IST0132 VirtualService/shop/lost spec.gateways[0]: one or more host [shop.example.com] defined in VirtualService shop/lost not found in Gateway shop/nowhere.",
    ]);
  });

  it("IST0111: two Sidecars without a selector in one namespace; IST0110: two selecting the same workload", () => {
    const egress = { egress: [{ hosts: ["./*"] }] };
    const a = resource("Sidecar", "a", egress);
    const b = resource("Sidecar", "b", egress);
    const elsewhere = resource("Sidecar", "c", egress, "other");
    const byApp = resource("Sidecar", "by-app", { workloadSelector: { labels: { app: "reviews" } }, ...egress });
    const byVersion = resource("Sidecar", "by-version", { workloadSelector: { labels: { version: "v1" } }, ...egress });
    const pod = resource("WorkloadEntry", "reviews-v1", { address: "10.0.0.2", labels: { app: "reviews", version: "v1" } });
    expect(findings(a, b, elsewhere, byApp, byVersion)).toEqual([
      'IST0111 Sidecar/shop/a spec: The Sidecars [a b] in namespace "shop" have no workload selector, which can lead to undefined behavior.',
      'IST0111 Sidecar/shop/b spec: The Sidecars [a b] in namespace "shop" have no workload selector, which can lead to undefined behavior.',
    ]);
    expect(findings(byApp, byVersion, pod)).toEqual([
      'IST0110 Sidecar/shop/by-app spec.workloadSelector: The Sidecars [by-app by-version] in namespace "shop" select the same workload pod "reviews-v1", which can lead to undefined behavior.',
      'IST0110 Sidecar/shop/by-version spec.workloadSelector: The Sidecars [by-app by-version] in namespace "shop" select the same workload pod "reviews-v1", which can lead to undefined behavior.',
    ]);
    // a service endpoint (a Kubernetes Pod in file or cluster mode) is a workload too
    expect(findings(byApp, byVersion, twoPorts())).toEqual([]);
  });

  it("IST0128 / IST0129: TLS origination (SIMPLE, MUTUAL) without caCertificates, at the rule and per port", () => {
    const dr = resource("DestinationRule", "reviews", {
      host: "reviews",
      trafficPolicy: {
        tls: { mode: "MUTUAL", clientCertificate: "/c.pem", privateKey: "/k.pem" },
        portLevelSettings: [{ port: { number: 9443 }, tls: { mode: "SIMPLE" } }, { port: { number: 9080 }, tls: { mode: "SIMPLE", caCertificates: "/ca.pem" } }],
      },
    });
    const mesh = resource("DestinationRule", "mesh-mtls", { host: "ratings", trafficPolicy: { tls: { mode: "ISTIO_MUTUAL" } } });
    expect(findings(twoPorts(), dr, mesh)).toEqual([
      "IST0128 DestinationRule/shop/reviews spec.trafficPolicy.tls: DestinationRule shop/reviews in namespace shop has TLS mode set to MUTUAL but no caCertificates are set to validate server identity for host: reviews",
      "IST0129 DestinationRule/shop/reviews spec.trafficPolicy.portLevelSettings[0].tls: DestinationRule shop/reviews in namespace shop has TLS mode set to SIMPLE but no caCertificates are set to validate server identity for host: reviews at port 9443",
    ]);
  });

  it("IST0101 for a delegate that does not exist or is not exported to the root's namespace", () => {
    const root = resource("VirtualService", "root", { hosts: ["reviews"], http: [{ delegate: { name: "missing" } }, { delegate: { name: "private", namespace: "team" } }] });
    const hidden = resource("VirtualService", "private", { exportTo: ["."], http: [{ route: [{ destination: { host: "reviews", port: { number: 9080 } } }] }] }, "team");
    expect(findings(twoPorts(), root, hidden)).toEqual([
      'IST0101 VirtualService/shop/root spec.http[0].delegate: Referenced delegate VirtualService not found: "shop/missing" (a delegate is a VirtualService without hosts); this rule routes nothing until it exists',
      'IST0101 VirtualService/shop/root spec.http[1].delegate: Referenced delegate VirtualService not found: "team/private" exists but its exportTo does not include namespace "shop"; this rule routes nothing',
    ]);
  });

  it("IST0145: Gateways selecting the same workloads with a server on the same port naming the same host; not on another port, host or bind", () => {
    const server = (number: number, hosts: string[], bind?: string) => ({ port: { number, name: `p${number}`, protocol: "HTTP" }, hosts, ...(bind ? { bind } : {}) });
    const a = resource("Gateway", "a", { selector: { istio: "ingressgateway" }, servers: [server(80, ["shop.example.com", "x.example.com"]), server(8080, ["y.example.com"])] }, "edge");
    const b = resource("Gateway", "b", { selector: { istio: "ingressgateway" }, servers: [server(80, ["shop.example.com"])] }, "edge");
    const otherPort = resource("Gateway", "c", { selector: { istio: "ingressgateway" }, servers: [server(81, ["shop.example.com"])] }, "edge");
    const otherBind = resource("Gateway", "d", { selector: { istio: "ingressgateway" }, servers: [server(80, ["shop.example.com"], "10.0.0.9")] }, "edge");
    const otherHost = resource("Gateway", "e", { selector: { istio: "ingressgateway" }, servers: [server(8080, ["z.example.com"])] }, "edge");
    expect(findings(a, b, otherPort, otherBind, otherHost).filter((f) => f.startsWith("IST0145"))).toEqual([
      "IST0145 Gateway/edge/a spec.servers[0]: Conflict with gateways edge/b (workload selector istio=ingressgateway, port 80, hosts shop.example.com,x.example.com).",
      "IST0145 Gateway/edge/b spec.servers[0]: Conflict with gateways edge/a (workload selector istio=ingressgateway, port 80, hosts shop.example.com).",
    ]);
    // Different selectors conflict only when a known workload carries both.
    const byApp = resource("Gateway", "f", { selector: { app: "edge-proxy" }, servers: [server(80, ["shop.example.com"])] }, "edge");
    expect(findings(a, byApp).filter((f) => f.startsWith("IST0145"))).toEqual([]);
    const pods = resource("ServiceEntry", "edge-proxy", {
      hosts: ["edge-proxy.edge.svc.cluster.local"],
      location: "MESH_INTERNAL",
      resolution: "STATIC",
      ports: [{ number: 80, name: "http", protocol: "HTTP" }],
      endpoints: [{ address: "10.0.0.7", labels: { app: "edge-proxy", istio: "ingressgateway" } }],
    }, "edge");
    expect(findings(a, byApp, pods).filter((f) => f.startsWith("IST0145"))).toHaveLength(2);
  });

  it("IST0162: a Gateway port that the service of its workloads does not expose (service port or target port); nothing when no service has its workloads", () => {
    const gateway = resource("Gateway", "ingress", {
      selector: { istio: "ingressgateway" },
      servers: [
        { port: { number: 8080, name: "http", protocol: "HTTP" }, hosts: ["*"] },
        { port: { number: 443, name: "https", protocol: "HTTPS" }, hosts: ["*"], tls: { mode: "PASSTHROUGH" } },
        { port: { number: 15443, name: "tls", protocol: "TLS" }, hosts: ["*.local"], tls: { mode: "PASSTHROUGH" } },
      ],
    }, "istio-system");
    expect(findings(gateway).filter((f) => f.startsWith("IST0162"))).toEqual([]);
    const service = resource("ServiceEntry", "istio-ingressgateway", {
      hosts: ["istio-ingressgateway.istio-system.svc.cluster.local"],
      location: "MESH_INTERNAL",
      resolution: "STATIC",
      ports: [{ number: 80, name: "http2", protocol: "HTTP", targetPort: 8080 }, { number: 443, name: "https", protocol: "HTTPS" }],
      endpoints: [{ address: "10.0.0.5", labels: { istio: "ingressgateway" } }],
    }, "istio-system");
    expect(findings(gateway, service).filter((f) => f.startsWith("IST0162"))).toEqual([
      "IST0162 Gateway/istio-system/ingress spec.servers[2].port: The gateway is listening on a target port (port 15443) that is not defined in the Service associated with its workload instances (Pod selector istio=ingressgateway). If you need to access the gateway port through the gateway Service, it will not be available.",
    ]);
  });
});
