// What every Weft-configured Envoy reports to Prometheus: the bootstrap's `stats_config` (tag
// extraction on Weft's cluster and listener names, fixed tags naming the proxy's own workload)
// and the scrape listener (Istio's port 15090, path /stats/prometheus) that forwards to the admin
// API's /stats/prometheus.
//
// Names the tags read (see src/translate/naming.ts):
//   cluster.outbound|<port>|<subset>|<host>|.<stat>   the outbound cluster's alt_stat_name ends in
//                                                    "|" so a host with dots has a clear end
//   cluster.inbound|<port>||.<stat>                   inbound clusters (no host: ends in "|")
//   cluster.<name without dots or pipes>.<stat>       xds-grpc, PassthroughCluster, ...
//   http.inbound_0.0.0.0_<port>.<stat>                connection managers (Istio's stat prefixes);
//   http.outbound_0.0.0.0_<port>.<stat>               gateways use outbound_ too, as Istio's
//   tcp.outbound|<port>||<host>.<stat>                tcp_proxy (stats after the prefix have no dots)
//   tcp.inbound|<port>||.<stat>
//
// Prometheus labels that result (beside Envoy's own envoy_response_code, envoy_response_code_class,
// envoy_listener_address, envoy_tcp_prefix, ...):
//   envoy_cluster_name       the cluster's Istio name (outbound|9080|v1|reviews.default.svc.cluster.local)
//   destination_service      the cluster's service host (also on tcp_proxy stats; inbound: see naming.ts)
//   destination_port         the cluster's port (service port outbound, target port inbound)
//   destination_subset       the outbound cluster's subset ("" when none)
//   envoy_http_conn_manager_prefix   inbound_0.0.0.0_9080 / outbound_0.0.0.0_9080
//   weft_workload, weft_namespace, weft_app, weft_version, weft_principal   the proxy itself (fixed)

/** The proxy's own workload, attached to every stat it reports (Istio's source_ and destination_ labels of self). */
export interface ProxyStatsIdentity {
  workload?: string;
  namespace?: string;
  app?: string;
  version?: string;
  /** SPIFFE ID, when the bootstrap knows it. */
  principal?: string;
}

/** Prometheus label names of the fixed tags, by field of ProxyStatsIdentity. */
export const PROXY_STATS_LABELS = {
  workload: "weft_workload",
  namespace: "weft_namespace",
  app: "weft_app",
  version: "weft_version",
  principal: "weft_principal",
} as const satisfies Record<keyof ProxyStatsIdentity, string>;

/** Labels the tag extraction rules add (beside Envoy's defaults). */
export const MESH_STATS_LABELS = ["envoy_cluster_name", "destination_service", "destination_port", "destination_subset"] as const;

/** Istio's Prometheus port and path on every sidecar and gateway. */
export const PROMETHEUS_STATS_PORT = 15090;
export const PROMETHEUS_STATS_PATH = "/stats/prometheus";
/** Node metadata key announcing the scrape listener's port (on the proxy's own address); the mesh console reads it. */
export const STATS_PORT_METADATA = "WEFT_STATS_PORT";
/** The static listener and cluster that serve it. */
export const PROMETHEUS_STATS_LISTENER = "weft-prometheus-stats";
export const PROMETHEUS_STATS_CLUSTER = "weft-prometheus-stats";

// Cluster name part: a mesh cluster (its host, if any, ends in "|"; see the header) or a name
// without dots. A host never starts with a dot.
const MESH_CLUSTER = String.raw`(?:inbound|outbound)\|[0-9]+\|[^|]*\|(?:[^|.][^|]*)?`;

/**
 * Envoy's default tag extractors Weft keeps (by name: Envoy supplies the regex). The defaults for
 * the cluster name, the connection manager prefix and the tcp_proxy prefix are replaced: theirs stop at the first dot.
 */
const KEPT_DEFAULT_TAGS = [
  "envoy.listener_address",
  "envoy.response_code",
  "envoy.response_code_class",
  "envoy.ssl_cipher",
  "envoy.virtual_host",
  "envoy.virtual_cluster",
  "envoy.rbac_prefix",
  "envoy.rbac_http_prefix",
  "envoy.rbac_policy_name",
  "envoy.worker_id",
  "envoy.clientssl_prefix",
  "envoy.ratelimit_prefix",
  "envoy.local_http_ratelimit_prefix",
  "envoy.local_network_ratelimit_prefix",
  "envoy.connection_limit_prefix",
  "envoy.proxy_protocol_prefix",
  "envoy.fault_downstream_cluster",
  "envoy.google_grpc_client_prefix",
  "envoy.ext_authz_prefix",
  "envoy.rds_route_config",
  "envoy.tls_certificate",
] as const;

/** Extraction rules: the first capture group is cut from the name, the second is the value. */
const MESH_TAG_RULES: readonly { tag_name: string; regex: string }[] = [
  { tag_name: "envoy.cluster_name", regex: String.raw`^cluster\.((${MESH_CLUSTER}|[^.|]+)\|?\.)` },
  // The pieces of a mesh cluster's name, cut from the same span as the whole.
  { tag_name: "destination_port", regex: String.raw`^(?:cluster|tcp)\.(?:inbound|outbound)\|(([0-9]+))\|` },
  { tag_name: "destination_subset", regex: String.raw`^(?:cluster|tcp)\.outbound\|[0-9]+\|(([^|]*))\|` },
  // The service host of a mesh cluster (its stat name ends at "|."), or of a tcp_proxy (stat_prefix
  // outbound|port||host or inbound|port||host, then a one-word stat). A host never starts with a dot.
  { tag_name: "destination_service", regex: String.raw`^(?:cluster|tcp)\.(?:inbound|outbound)\|[0-9]+\|[^|]*\|(([^|.][^|]*?))(?:\|\.|\.\w+$)` },
  // A tcp_proxy's whole stat prefix (outbound|5432||db.example.com). Envoy's own rule stops at the
  // first dot, which left "tcp..downstream_cx_total" (metric envoy_tcp__downstream_cx_total) for
  // hosts with dots, so the istio_tcp_* rules never matched. tcp_proxy stats are one word.
  { tag_name: "envoy.tcp_prefix", regex: String.raw`^tcp\.((.+)\.)\w+$` },
  // http.<prefix>. and listener.<address>.http.<prefix>. (per-listener copies of some stats).
  { tag_name: "envoy.http_conn_manager_prefix", regex: String.raw`^(?:|listener(?=\.).*?\.)http\.(((?:inbound|outbound)_[0-9.]+_[0-9]+|[^.]+)\.)` },
];

export interface MeshStatsOptions {
  identity: ProxyStatsIdentity;
  /** false: Envoy's default tags only, no fixed tags (the "without" side of bench/proxy-stats-memory). */
  meshTags?: boolean;
}

/** The bootstrap's stats_config (proto JSON). */
export function meshStatsConfig(opts: MeshStatsOptions): Record<string, unknown> {
  if (opts.meshTags === false) return { use_all_default_tags: true };
  const fixed = (Object.keys(PROXY_STATS_LABELS) as (keyof ProxyStatsIdentity)[])
    .filter((k) => opts.identity[k] !== undefined && opts.identity[k] !== "")
    .map((k) => ({ tag_name: PROXY_STATS_LABELS[k], fixed_value: opts.identity[k] }));
  return {
    use_all_default_tags: false,
    stats_tags: [...MESH_TAG_RULES, ...KEPT_DEFAULT_TAGS.map((tag_name) => ({ tag_name })), ...fixed],
  };
}

/**
 * The scrape listener (proto JSON): HTTP on address:port, GET /stats/prometheus forwarded to the
 * admin API, nothing else (the admin API itself stays where it is: this exposes one read-only page).
 */
export function prometheusStatsListener(address: string, port: number): Record<string, unknown> {
  return adminForwardingListener(PROMETHEUS_STATS_LISTENER, "weft_prometheus_stats", "prometheus", address, port, [
    { match: { path: PROMETHEUS_STATS_PATH, headers: [{ name: ":method", string_match: { exact: "GET" } }] }, route: { cluster: PROMETHEUS_STATS_CLUSTER, timeout: "10s" } },
  ]);
}

/** Istio's readiness port and path (what an injected sidecar's probes ask). */
export const READINESS_PORT = 15021;
export const READINESS_PATH = "/healthz/ready";
export const READINESS_LISTENER = "weft-readiness";

/**
 * The readiness endpoint (Istio's :15021/healthz/ready): GET answered by the admin API's /ready,
 * which says 200 LIVE once the initial xDS configuration (listeners with their certificates)
 * is in place, 503 before and while draining. Nothing else of the admin API is reachable here.
 */
export function readinessListener(address: string, port: number = READINESS_PORT, appProbes: AppProbeRoute[] = []): Record<string, unknown> {
  return adminForwardingListener(READINESS_LISTENER, "weft_readiness", "readiness", address, port, [
    { match: { path: READINESS_PATH, headers: [{ name: ":method", string_match: { exact: "GET" } }] }, route: { cluster: PROMETHEUS_STATS_CLUSTER, timeout: "5s", prefix_rewrite: "/ready" } },
    ...appProbes.map((p) => ({
      match: { path: p.path },
      route: { cluster: appProbeClusterName(p.port), timeout: "30s", prefix_rewrite: p.appPath },
      ...(p.headers?.length ? { request_headers_to_add: p.headers.map((h) => ({ header: { key: h.name, value: h.value }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" })) } : {}),
    })),
  ]);
}

/**
 * An app container's HTTP probe, rewritten by the injector to the readiness port (Istio's
 * /app-health/<container>/<probe>): the sidecar forwards it to the app on 127.0.0.1:<port>, so
 * the kubelet's plaintext probe never meets the inbound mTLS listener.
 */
export interface AppProbeRoute {
  /** Path on the readiness port, e.g. /app-health/web/readyz. */
  path: string;
  /** The app's port and path. */
  port: number;
  appPath: string;
  headers?: { name: string; value: string }[];
}

export function appProbeClusterName(port: number): string {
  return `weft-app-probe-${port}`;
}

/** The app on loopback (Envoy runs as the proxy uid, whose connections capture leaves alone). */
export function appProbeCluster(port: number): Record<string, unknown> {
  const name = appProbeClusterName(port);
  return {
    name,
    type: "STATIC",
    connect_timeout: "1s",
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }] }] },
  };
}

/** A listener whose only routes forward to the admin API (cluster PROMETHEUS_STATS_CLUSTER); anything else is 404. */
function adminForwardingListener(name: string, statPrefix: string, virtualHost: string, address: string, port: number, routes: Record<string, unknown>[]): Record<string, unknown> {
  return {
    name,
    address: { socket_address: { address, port_value: port } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
          stat_prefix: statPrefix,
          route_config: { virtual_hosts: [{ name: virtualHost, domains: ["*"], routes }] },
          http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }],
        },
      }],
    }],
  };
}

/**
 * The cluster to the admin API. An admin on a pod's own IP (not loopback) is reached from
 * 127.0.0.6, which the capture rules let through (src/capture/iptables.ts): from any other source
 * Envoy's connection to its own pod IP would be redirected to its inbound listener.
 */
export function prometheusStatsCluster(adminAddress: string, adminPort: number): Record<string, unknown> {
  const address = adminAddress === "0.0.0.0" ? "127.0.0.1" : adminAddress === "::" ? "::1" : adminAddress;
  const loopback = address.startsWith("127.") || address === "::1";
  return {
    name: PROMETHEUS_STATS_CLUSTER,
    type: "STATIC",
    connect_timeout: "1s",
    load_assignment: {
      cluster_name: PROMETHEUS_STATS_CLUSTER,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: adminPort } } } }] }],
    },
    ...(loopback ? {} : { upstream_bind_config: { source_address: { address: "127.0.0.6", port_value: 0 } } }),
  };
}
