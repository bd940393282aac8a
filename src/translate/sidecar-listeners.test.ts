// Sidecar ingress and egress listeners in translation, on the decisions the goldens do not show:
// ingress tls against mesh mTLS, which listeners a proxy without capture can serve, and egress
// ports owned by one listener. (Real Envoy: e2e/sidecar-listeners.e2e.test.ts.)
import { describe, expect, it } from "vitest";
import type { Listener } from "../../generated/envoy/config/listener/v3/listener.js";
import type { MeshConfig, NetworkingResource } from "../api/types.js";
import { parseDocuments, validateResource } from "../api/validate-resource.js";
import { buildMeshModel } from "../model/mesh-model.js";
import type { ProxyModel } from "../model/proxy.js";
import { translateSidecarInbound, translateSidecarOutbound } from "./sidecar.js";
import { localAppEndpoint } from "./inbound-ports.js";
import { resourceToJson } from "../envoy/readable-json.js";
import { XDS_TYPES } from "../envoy/type-urls.js";

function model(yaml: string) {
  const { docs, issues } = parseDocuments(yaml, "case.yaml");
  const resources: MeshConfig["resources"] = [];
  for (const d of docs) {
    const r = validateResource(d.value, { file: "case.yaml", document: d.document });
    issues.push(...r.issues.filter((i) => i.severity === "error"));
    if (r.resource) resources.push({ resource: r.resource as NetworkingResource, source: { file: "case.yaml", document: d.document } });
  }
  expect(issues).toEqual([]);
  return buildMeshModel({ resources, issues: [] });
}

const proxy = (capture: ProxyModel["capture"]): ProxyModel => ({ type: "sidecar", namespace: "shop", labels: { app: "shop" }, capture, locality: "" });
const MESH_CA = { trustDomain: "cluster.local", secrets: { certChainPem: "cert", privateKeyPem: "key", trustBundlePem: "roots" } };
const chains = (l: Listener | undefined) => (l?.filterChains ?? []).map((c) => c.name);
const transportSocketName = (l: Listener | undefined, chain: string) => l?.filterChains?.find((c) => c.name === chain)?.transportSocket?.name;

const INGRESS = `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: shop, namespace: shop }
spec:
  workloadSelector: { labels: { app: shop } }
  ingress:
  - port: { number: 9443, protocol: HTTPS, name: https }
    defaultEndpoint: 127.0.0.1:8080
    tls: { mode: SIMPLE, serverCertificate: /certs/cert.pem, privateKey: /certs/key.pem }
  - port: { number: 9080, protocol: HTTP, name: http }
    captureMode: IPTABLES
    defaultEndpoint: 127.0.0.1:8080
  - port: { number: 9090, protocol: TCP, name: tcp }
    defaultEndpoint: 127.0.0.1:8090
`;

describe("Sidecar ingress listeners", () => {
  it("tls is the sidecar's own only where mesh mTLS is off for the port (Istio's rule); otherwise mesh mTLS wins", () => {
    const withMtls = translateSidecarInbound(model(INGRESS), proxy("transparent"), MESH_CA);
    const inbound = withMtls.listeners.find((l) => l.name === "virtualInbound");
    expect(chains(inbound).filter((n) => n!.startsWith("inbound_9443"))).toEqual(["inbound_9443_mtls", "inbound_9443_plaintext"]);

    const disabled = `${INGRESS}---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: shop, namespace: shop }
spec:
  selector: { matchLabels: { app: shop } }
  mtls: { mode: PERMISSIVE }
  portLevelMtls: { "9443": { mode: DISABLE } }
`;
    const own = translateSidecarInbound(model(disabled), proxy("transparent"), MESH_CA).listeners.find((l) => l.name === "virtualInbound");
    expect(chains(own).filter((n) => n!.startsWith("inbound_9443"))).toEqual(["inbound_9443_tls"]);
    expect(transportSocketName(own, "inbound_9443_tls")).toBe("envoy.transport_sockets.tls");
    expect(JSON.stringify(resourceToJson(XDS_TYPES.listener, own!))).toContain('"filename":"/certs/cert.pem"');
    // HTTPS terminated by the sidecar is served as HTTP: the connection manager, not a TCP proxy.
    expect(own?.filterChains?.find((c) => c.name === "inbound_9443_tls")?.filters?.[0]?.name).toBe("envoy.filters.network.http_connection_manager");
  });

  it("a proxy without capture binds each DEFAULT listener itself and leaves out IPTABLES ones (it has no captured listener)", () => {
    const out = translateSidecarInbound(model(INGRESS), proxy("explicit"));
    expect(out.listeners.map((l) => l.name).sort()).toEqual(["0.0.0.0_9090", "0.0.0.0_9443"]);
    expect(out.clusters.map((c) => c.name).sort()).toEqual(["inbound|9090||", "inbound|9443||"]);
  });

  it("defaultEndpoint forms", () => {
    expect(localAppEndpoint("127.0.0.1:8080")).toEqual({ kind: "loopback", address: "127.0.0.1", port: 8080 });
    expect(localAppEndpoint("[::1]:8080")).toEqual({ kind: "loopback", address: "::1", port: 8080 });
    expect(localAppEndpoint("0.0.0.0:8081")).toEqual({ kind: "workload", port: 8081 });
    expect(localAppEndpoint("[::]:8081")).toEqual({ kind: "workload", port: 8081 });
    expect(localAppEndpoint("unix:///var/run/app.sock")).toEqual({ kind: "unix", path: "/var/run/app.sock" });
    expect(localAppEndpoint("unix://@abstract")).toEqual({ kind: "unix", path: "@abstract" });
    expect(localAppEndpoint(undefined)).toEqual({ kind: "original" });
  });
});

const SERVICES = ["ratings:9080", "reviews:9080", "db:5432"]
  .map((s) => {
    const [name, port] = s.split(":");
    return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: shop }
spec:
  hosts: [${name}.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: ${port === "5432" ? "tcp" : "http"}, protocol: ${port === "5432" ? "TCP" : "HTTP"} }]
  endpoints: [{ address: 10.0.0.${port === "5432" ? 3 : name === "ratings" ? 1 : 2} }]
---
`;
  })
  .join("");

describe("Sidecar egress listeners with ports", () => {
  it("without a catch-all listener, ports no listener names are not served (db:5432 has no chain), though its cluster stays", () => {
    const out = translateSidecarOutbound(
      model(`${SERVICES}apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: shop, namespace: shop }
spec:
  workloadSelector: { labels: { app: shop } }
  egress:
  - port: { number: 9080, protocol: HTTP, name: http }
    hosts: ["./ratings.shop.svc.cluster.local", "./db.shop.svc.cluster.local"]
`),
      proxy("transparent"),
    );
    const outbound = out.listeners.find((l) => l.name === "virtualOutbound");
    expect(outbound?.filterChains?.map((c) => c.filterChainMatch?.destinationPort)).toEqual([9080]);
    expect(out.routes.map((r) => [r.name, r.virtualHosts?.map((v) => v.name)])).toEqual([["9080", ["ratings.shop.svc.cluster.local:9080", "allow_any"]]]);
    expect(out.clusters.map((c) => c.name).sort()).toEqual(["outbound|5432||db.shop.svc.cluster.local", "outbound|9080||ratings.shop.svc.cluster.local"]);
  });

  it("a TCP listener bound to its own port proxies to its service; without capture the HTTP port is bound too", () => {
    const yaml = `${SERVICES}apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: shop, namespace: shop }
spec:
  workloadSelector: { labels: { app: shop } }
  egress:
  - port: { number: 5432, protocol: TCP, name: tcp }
    captureMode: NONE
    hosts: ["./db.shop.svc.cluster.local"]
  - port: { number: 9080, protocol: HTTP, name: http }
    hosts: ["./*"]
`;
    const captured = translateSidecarOutbound(model(yaml), proxy("transparent"));
    expect(captured.listeners.map((l) => l.name).sort()).toEqual(["127.0.0.1_5432", "virtualOutbound"]);
    expect(JSON.stringify(resourceToJson(XDS_TYPES.listener, captured.listeners.find((l) => l.name === "127.0.0.1_5432")!))).toContain('"cluster":"outbound|5432||db.shop.svc.cluster.local"');
    const explicit = translateSidecarOutbound(model(yaml), proxy("explicit"));
    expect(explicit.listeners.map((l) => l.name).sort()).toEqual(["127.0.0.1_5432", "127.0.0.1_9080", "explicitOutbound"]);
  });
});
