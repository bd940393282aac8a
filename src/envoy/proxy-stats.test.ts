import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { renderBootstrap, statsIdentityOf, type BootstrapOptions } from "./bootstrap.js";
import { meshStatsConfig, PROMETHEUS_STATS_CLUSTER, PROMETHEUS_STATS_LISTENER, STATS_PORT_METADATA } from "./proxy-stats.js";

const base: BootstrapOptions = {
  nodeId: "sidecar~10.1.2.3~reviews-v2.shop~shop.svc.cluster.local",
  cluster: "reviews",
  metadata: { NAMESPACE: "shop", LABELS: JSON.stringify({ app: "reviews", version: "v2" }) },
  xdsAddress: "10.1.0.1",
  xdsPort: 15012,
};

interface Rendered {
  stats_config: { use_all_default_tags: boolean; stats_tags: { tag_name: string; regex?: string; fixed_value?: string }[] };
  static_resources: { listeners: { name: string; address: { socket_address: { address: string; port_value: number } } }[]; clusters: { name: string; upstream_bind_config?: unknown; load_assignment: { endpoints: { lb_endpoints: { endpoint: { address: { socket_address: { address: string; port_value: number } } } }[] }[] } }[] };
}
const render = (opts: BootstrapOptions) => parse(renderBootstrap(opts)) as Rendered;

describe("proxy stats in the bootstrap", () => {
  it("names the proxy's workload from its node id and metadata (WORKLOAD_NAME wins; unreadable values are left out)", () => {
    expect(statsIdentityOf(base)).toEqual({ workload: "reviews-v2", namespace: "shop", app: "reviews", version: "v2" });
    expect(statsIdentityOf({ ...base, metadata: { ...base.metadata, WORKLOAD_NAME: "reviews-v2-deploy" } }).workload).toBe("reviews-v2-deploy");
    expect(statsIdentityOf({ nodeId: "router~1.2.3.4~gw.istio-system~x", metadata: { LABELS: "{not json", NAMESPACE: "istio-system" } }))
      .toEqual({ workload: "gw", namespace: "istio-system" });
    expect(statsIdentityOf({ nodeId: "cli-node", metadata: { LABELS: JSON.stringify({ "app.kubernetes.io/name": "web", version: "bad\nvalue" }) } }))
      .toEqual({ app: "web" });
  });

  it("gives an Envoy with a fixed admin port (alone in its pod) a scrape listener on 15090 forwarding to the admin API from 127.0.0.6", () => {
    const pod = render({ ...base, adminAddress: "10.1.2.3", adminPort: 15000 });
    expect(pod.static_resources.listeners.map((l) => [l.name, l.address.socket_address])).toEqual([[PROMETHEUS_STATS_LISTENER, { address: "10.1.2.3", port_value: 15090 }]]);
    const cluster = pod.static_resources.clusters.find((c) => c.name === PROMETHEUS_STATS_CLUSTER)!;
    expect(cluster.load_assignment.endpoints[0]!.lb_endpoints[0]!.endpoint.address.socket_address).toEqual({ address: "10.1.2.3", port_value: 15000 });
    // The capture rules let 127.0.0.6 through; Envoy's own connection to its pod IP would be captured otherwise.
    expect(cluster.upstream_bind_config).toEqual({ source_address: { address: "127.0.0.6", port_value: 0 } });
    // On loopback no bind is needed.
    const local = render({ ...base, adminPort: 19000, statsPort: 19090 });
    expect(local.static_resources.listeners[0]!.address.socket_address).toEqual({ address: "127.0.0.1", port_value: 19090 });
    expect(local.static_resources.clusters.find((c) => c.name === PROMETHEUS_STATS_CLUSTER)!.upstream_bind_config).toBeUndefined();
  });

  it("announces the scrape listener's port in the node metadata (the mesh console reads it there), and nothing without one", () => {
    const metadataOf = (opts: BootstrapOptions) => (parse(renderBootstrap(opts)) as { node: { metadata: Record<string, string> } }).node.metadata;
    expect(metadataOf({ ...base, adminAddress: "10.1.2.3", adminPort: 15000 })).toEqual({ ...base.metadata, [STATS_PORT_METADATA]: "15090" });
    expect(metadataOf({ ...base, adminPort: 19000, statsPort: 19090 })[STATS_PORT_METADATA]).toBe("19090");
    expect(metadataOf(base)).toEqual(base.metadata);
    expect(metadataOf({ ...base, adminPort: 15000, statsPort: false })).toEqual(base.metadata);
  });

  it("gives none when the kernel picks the admin port (Envoys sharing a namespace) or when asked", () => {
    for (const opts of [base, { ...base, adminPort: 15000, statsPort: false as const }]) {
      const r = render(opts);
      expect(r.static_resources.listeners).toEqual([]);
      expect(r.static_resources.clusters.map((c) => c.name)).toEqual(["xds-grpc"]);
    }
  });

  it("refuses a scrape port it cannot serve, naming the field", () => {
    expect(() => renderBootstrap({ ...base, statsPort: 15090 })).toThrow(/statsPort must be used with a fixed adminPort/);
    expect(() => renderBootstrap({ ...base, adminPort: 15000, statsPort: 15000 })).toThrow(/statsPort must be a port other than adminPort/);
    expect(() => renderBootstrap({ ...base, adminPort: 15000, statsPort: 70000 })).toThrow(/statsPort must be an integer port/);
    expect(() => renderBootstrap({ ...base, statsIdentity: { workload: "a\u0000b" } })).toThrow(/statsIdentity.workload/);
  });

  it("replaces Envoy's cluster-name and connection-manager tags (they stop at the first dot) and adds the proxy's fixed tags", () => {
    const { stats_config: sc } = render(base);
    expect(sc.use_all_default_tags).toBe(false);
    const names = sc.stats_tags.map((t) => t.tag_name);
    expect(new Set(names).size).toBe(names.length); // Envoy refuses a tag name given twice
    expect(sc.stats_tags.filter((t) => t.fixed_value !== undefined)).toEqual([
      { tag_name: "weft_workload", fixed_value: "reviews-v2" },
      { tag_name: "weft_namespace", fixed_value: "shop" },
      { tag_name: "weft_app", fixed_value: "reviews" },
      { tag_name: "weft_version", fixed_value: "v2" },
    ]);
    expect(meshStatsConfig({ identity: {}, meshTags: false })).toEqual({ use_all_default_tags: true });
  });

  // Envoy's regexes are ECMAScript (std::regex); JavaScript's agree on these. Value = group 2.
  it.each([
    ["cluster.outbound|9080|v1|reviews.shop.svc.cluster.local|.upstream_rq_200", { "envoy.cluster_name": "outbound|9080|v1|reviews.shop.svc.cluster.local", destination_port: "9080", destination_subset: "v1", destination_service: "reviews.shop.svc.cluster.local" }],
    ["cluster.outbound|9080||a.b|.circuit_breakers.default.rq_open", { "envoy.cluster_name": "outbound|9080||a.b", destination_port: "9080", destination_subset: "", destination_service: "a.b" }],
    ["cluster.inbound|9080||reviews.shop.svc.cluster.local|.upstream_rq_time", { "envoy.cluster_name": "inbound|9080||reviews.shop.svc.cluster.local", destination_port: "9080", destination_service: "reviews.shop.svc.cluster.local" }],
    ["cluster.inbound|9080||.circuit_breakers.default.rq_open", { "envoy.cluster_name": "inbound|9080||", destination_service: undefined }],
    ["tcp.inbound|3306||db.shop.svc.cluster.local.downstream_cx_tx_bytes_total", { destination_service: "db.shop.svc.cluster.local" }],
    ["cluster.inbound|9080||.upstream_rq_200", { "envoy.cluster_name": "inbound|9080||", destination_port: "9080", destination_service: undefined }],
    ["cluster.xds-grpc.upstream_rq_200", { "envoy.cluster_name": "xds-grpc", destination_port: undefined }],
    ["tcp.outbound|3306||db.shop.svc.cluster.local.downstream_cx_total", { destination_service: "db.shop.svc.cluster.local", destination_port: "3306", "envoy.tcp_prefix": "outbound|3306||db.shop.svc.cluster.local" }],
    ["tcp.PassthroughCluster.downstream_cx_total", { "envoy.tcp_prefix": "PassthroughCluster", destination_service: undefined }],
    ["http.inbound_0.0.0.0_9080.downstream_rq_xx", { "envoy.http_conn_manager_prefix": "inbound_0.0.0.0_9080" }],
    ["listener.10.1.2.3_15006.http.inbound_0.0.0.0_9080.downstream_rq_xx", { "envoy.http_conn_manager_prefix": "inbound_0.0.0.0_9080" }],
    ["http.outbound_explicit.downstream_rq_total", { "envoy.http_conn_manager_prefix": "outbound_explicit" }],
  ])("extracts tags from %s", (stat, expected) => {
    const rules = meshStatsConfig({ identity: {} }).stats_tags as { tag_name: string; regex?: string }[];
    for (const [tag, value] of Object.entries(expected)) {
      const rule = rules.find((r) => r.tag_name === tag)!;
      const m = new RegExp(rule.regex!).exec(stat);
      expect(m ? m[2] : undefined, `${tag} on ${stat}`).toBe(value);
    }
  });

  // Envoy cuts each matching rule's first group from the name; what is left is the metric name.
  // Before the tcp_prefix rule, tcp stats of hosts with dots were left as "tcp..downstream_cx_total".
  it.each([
    ["cluster.outbound|9080|v1|reviews.shop.svc.cluster.local|.upstream_rq_200", "cluster.upstream_rq_200"],
    ["cluster.inbound|9080||.upstream_rq_time", "cluster.upstream_rq_time"],
    ["tcp.outbound|5432||orders-db.example.internal.downstream_cx_total", "tcp.downstream_cx_total"],
    ["tcp.inbound|3306||db.shop.svc.cluster.local.downstream_cx_tx_bytes_total", "tcp.downstream_cx_tx_bytes_total"],
    ["tcp.PassthroughCluster.downstream_cx_total", "tcp.downstream_cx_total"],
    ["http.inbound_0.0.0.0_9080.downstream_rq_xx", "http.downstream_rq_xx"],
  ])("leaves %s as %s once the tags are cut", (stat, left) => {
    const rules = meshStatsConfig({ identity: {} }).stats_tags as { tag_name: string; regex?: string }[];
    const cut = new Array<boolean>(stat.length).fill(false);
    for (const rule of rules) {
      const m = rule.regex ? new RegExp(rule.regex, "d").exec(stat) : null;
      const [from, to] = m?.indices?.[1] ?? [0, 0];
      for (let i = from; i < to; i++) cut[i] = true;
    }
    expect([...stat].filter((_, i) => !cut[i]).join("")).toBe(left);
  });
});
