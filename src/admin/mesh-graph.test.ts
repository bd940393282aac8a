import { describe, expect, it } from "vitest";
import type { MeshConfig, Sourced } from "../api/types.js";
import { buildMeshModel } from "../model/mesh-model.js";
import type { ProxyStatus } from "../xds/proxy-registry.js";
import { STATS_PORT_METADATA } from "../envoy/proxy-stats.js";
import type { EdgeTraffic } from "./edge-traffic.js";
import { buildConsoleState, proxySyncState, type GraphProxy } from "./mesh-graph.js";
import { peerHost, scrapeTargetOf } from "./mesh-console.js";
import { parseAllDocuments } from "yaml";

const CONFIG = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews }
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: reviews } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: productpage }
spec:
  hosts: [productpage.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: productpage } }
${["reviews-v1", "reviews-v2", "productpage-v1"].map((n) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${n} }
spec: { address: 10.0.0.${n.length}, labels: { app: ${n.split("-")[0]}, version: ${n.split("-")[1]} } }`).join("\n")}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  subsets: [{ name: v2, labels: { version: v2 } }]
`;

function model() {
  const config: MeshConfig = { resources: parseAllDocuments(CONFIG).map((d, i) => ({ resource: d.toJS(), source: { file: "mesh.yaml", document: i + 1 } }) as unknown as Sourced), issues: [] };
  return buildMeshModel(config);
}

function proxy(nodeId: string, extra: Partial<ProxyStatus> = {}): ProxyStatus {
  return { streamId: 1, nodeId, cluster: "c", metadata: {}, envoyVersion: "1.40", userAgent: "envoy", peer: "10.0.0.9:5000", api: "sotw", service: "ads", snapshotKey: "k", principal: "", connectedAt: "2026-12-02T08:00:00.000Z", types: {}, ...extra };
}

const edge = (cluster: string, e: Partial<EdgeTraffic>): EdgeTraffic => {
  const [, port, subset, service] = cluster.split("|");
  return { cluster, service: service!, port: Number(port), subset: subset!, totalRequests: 10, tls: true, ...e };
};

describe("buildConsoleState: the console's graph, proxies and certificates", () => {
  const PROBLEMS = { generation: 1, errors: 0, warnings: 0, problems: [], omitted: 0 };
  const productpage: GraphProxy = {
    status: proxy("sidecar~10.0.0.14~productpage-v1.default~default.svc.cluster.local"),
    types: [{ type: "cds", state: "SYNCED" }, { type: "rds", state: "ERROR", nack: { version: "v7", message: "Invalid regex: program size 365 > 100", at: "2026-12-02T08:01:00.000Z" } }],
    certificate: { identity: "spiffe://cluster.local/ns/default/sa/productpage", serial: "0a", notAfter: "2026-12-03T08:00:00.000Z" },
    traffic: {
      unattributedLocalErrors: 0,
      edges: [
        edge("outbound|9080|v2|reviews.default.svc.cluster.local", { requests: 20, errors: 10, errorRate: 0.5, rps: 2, windowSeconds: 10, p99Ms: 12 }),
        edge("outbound|9080||reviews.default.svc.cluster.local", { requests: 5, errors: 0, errorRate: 0, rps: 0.5, windowSeconds: 10, tls: false }),
        edge("outbound|443||api.example.com", { requests: 0, rps: 0, windowSeconds: 10, tls: false }),
      ],
    },
  };
  const gateway: GraphProxy = { status: proxy("router~127.0.0.1~ingressgateway.istio-system~istio-system.svc.cluster.local"), types: [{ type: "lds", state: "STALE" }] };
  const state = buildConsoleState({ now: new Date("2026-12-02T08:00:00.000Z"), model: model(), proxies: [productpage, gateway], roots: [{ subject: "O=weft", serial: "01", notAfter: "2036-12-02T08:00:00.000Z" }], problems: PROBLEMS, metrics: { source: "envoy", windowSeconds: 30 } });

  it("has services as boxes around their workloads, gateways of their own, and the proxies' sync states on them", () => {
    const byId = new Map(state.nodes.map((n) => [n.id, n]));
    expect(byId.get("workload:default/reviews-v2")).toMatchObject({ kind: "workload", parent: "service:reviews.default.svc.cluster.local", version: "v2" });
    expect(byId.get("workload:default/productpage-v1")).toMatchObject({ proxy: productpage.status.nodeId, sync: "NACKED" });
    expect(byId.get("workload:istio-system/ingressgateway")).toMatchObject({ kind: "gateway", sync: "STALE" });
    expect(byId.get("service:api.example.com")).toMatchObject({ kind: "service" });
  });

  it("sends an edge to the subset's one workload, else to the service; colours by 5xx share; says mTLS", () => {
    const edges = state.edges.map((e) => [e.target, e.health, e.mtls]);
    expect(edges).toEqual([
      ["service:api.example.com", "idle", false],
      ["service:reviews.default.svc.cluster.local", "healthy", false],
      ["workload:default/reviews-v2", "error", true],
    ]);
    expect(state.edges.every((e) => e.source === "workload:default/productpage-v1")).toBe(true);
  });

  it("lists each proxy's state with Envoy's NACK text, and roots and workload certificates with time left", () => {
    expect(state.proxies.map((p) => [p.workload, p.namespace, p.type, p.state])).toEqual([
      ["ingressgateway", "istio-system", "router", "STALE"],
      ["productpage-v1", "default", "sidecar", "NACKED"],
    ]);
    expect(state.proxies[1]!.types[1]!.nack!.message).toContain("program size 365");
    expect(state.certificates.list.map((c) => [c.kind, c.serial, c.secondsLeft])).toEqual([
      ["root", "01", 10 * 365 * 86400 + 3 * 86400], // 2026-12 -> 2036-12 spans three leap days
      ["workload", "0a", 86400],
    ]);
    expect(state.certificates.list[1]!.proxies).toEqual([productpage.status.nodeId]);
  });

  it("with Prometheus as the source draws edges per source workload (a workload without a proxy gets a node), not the proxies' own", () => {
    const fromProm = buildConsoleState({
      now: new Date("2026-12-02T08:00:00.000Z"),
      model: model(),
      proxies: [productpage],
      workloadTraffic: [{ namespace: "default", workload: "batch-job", traffic: { unattributedLocalErrors: 0, edges: [edge("outbound||v2|reviews.default.svc.cluster.local", { requests: 6, errors: 0, errorRate: 0, rps: 0.1, windowSeconds: 60 })] } }],
      problems: PROBLEMS,
      metrics: { source: "prometheus", windowSeconds: 60 },
    });
    expect(fromProm.edges.map((e) => [e.source, e.target, e.health])).toEqual([["workload:default/batch-job", "workload:default/reviews-v2", "healthy"]]);
    expect(fromProm.nodes.find((n) => n.id === "workload:default/batch-job")).toMatchObject({ kind: "workload", label: "batch-job" });
  });

  it("sums a proxy's types: NACKED over STALE over SYNCED", () => {
    expect(proxySyncState([{ state: "SYNCED" }, { state: "STALE" }, { state: "ERROR" }])).toBe("NACKED");
    expect(proxySyncState([{ state: "SYNCED" }, { state: "STALE" }])).toBe("STALE");
    expect(proxySyncState([{ state: "SYNCED" }, { state: "NOT_SENT" }])).toBe("SYNCED");
    expect(proxySyncState([{ state: "NOT_SENT" }])).toBe("NOT_SENT");
  });
});

describe("where the console reads a proxy's stats", () => {
  it("the announced port on the xDS stream's own peer address, nothing without the announcement", () => {
    expect(peerHost("10.0.0.7:51234")).toBe("10.0.0.7");
    expect(peerHost("ipv4:10.0.0.7:51234")).toBe("10.0.0.7");
    expect(peerHost("[fd00::7]:51234")).toBe("fd00::7");
    expect(peerHost("unix:/tmp/x")).toBeUndefined();
    expect(scrapeTargetOf(proxy("n", { peer: "10.0.0.7:5", metadata: { [STATS_PORT_METADATA]: "15090" } }))).toEqual({ key: "n", host: "10.0.0.7", port: 15090 });
    expect(scrapeTargetOf(proxy("n", { metadata: {} }))).toBeUndefined();
    for (const bad of ["0", "70000", "15090; rm", 15090]) expect(scrapeTargetOf(proxy("n", { metadata: { [STATS_PORT_METADATA]: bad } }))).toBeUndefined();
  });
});
