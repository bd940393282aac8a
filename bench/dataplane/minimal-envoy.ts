// The hand-written "minimal" sidecar configs for the data-plane benchmark: the least Envoy needs
// to carry client -> (mTLS) -> server for one HTTP/1.1 service through transparent capture.
//
//   client pod Envoy: listener 0.0.0.0:15001 (original_dst listener filter) -> HCM -> router
//                     -> cluster "server": STATIC <server pod ip>:8080, TLS with the client's
//                        certificate, server verified against the mesh root + its SPIFFE ID
//   server pod Envoy: listener 0.0.0.0:15006, TLS termination requiring a client certificate
//                     from the mesh root -> HCM -> router -> cluster "app": STATIC 127.0.0.1:8080
//
// Nothing else: no stats sinks, no access log, no tracing, no RBAC, no XFCC, no
// tls_inspector / http_inspector, no metadata exchange, no per-port listener handoff.
// Admin listens on the pod IP (read from the host, like Weft's sidecars).
//
// `extras` adds named pieces of Weft's config one at a time, to find out what a difference
// costs (BENCH_MINIMAL_EXTRAS in run.ts); see EXTRAS below.

export interface CertFiles {
  certChain: string;
  privateKey: string;
  /** The mesh root(s). */
  trustedCa: string;
}

export const EXTRAS = {
  /** Server: forward_client_cert_details SANITIZE_SET with URI (what Weft does for mTLS callers). */
  xfcc: "server HCM: forward_client_cert_details SANITIZE_SET + set_current_client_cert_details { uri: true }",
  /** Both: a stdout access log (Envoy's default format) on the HCM. */
  accesslog: "both HCMs: a stdout access log with Envoy's default format",
  /** Server: a tls_inspector listener filter (Weft's inbound listener has one for PERMISSIVE). */
  tlsinspector: "server listener: tls_inspector listener filter",
  /** Both: the fault and CORS HTTP filters before the router, empty configs (what Weft puts in every HCM). */
  faultcors: "both HCMs: envoy.filters.http.fault + envoy.filters.http.cors (empty) before the router",
  /** Both: normalize_path on the HCM. */
  normalizepath: "both HCMs: normalize_path: true",
  /** Client route: Weft's default retry policy and timeout 0s (Weft's decorator is not copied: it only matters with tracing). */
  retries: "client route: Weft's retry_policy (connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes; 2 retries; 503) and timeout 0s",
  /** Client: HTTP/2 to the server sidecar (instead of HTTP/1.1), with ALPN h2. Not what Weft does today. */
  h2upstream: "client cluster: HTTP/2 upstream with ALPN h2 (server side accepts h2) — not in Weft's config; for comparison",
} as const;
export type Extra = keyof typeof EXTRAS;

/** Every extra that mirrors something Weft's config has on the request path ("weftlike" in BENCH_MINIMAL_EXTRAS). */
export const WEFT_LIKE: readonly Extra[] = ["xfcc", "tlsinspector", "faultcors", "normalizepath", "retries"];

export function isExtra(name: string): name is Extra {
  return Object.hasOwn(EXTRAS, name);
}

const TLS_CONTEXT = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3";
const HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } };
const FAULT = { name: "envoy.filters.http.fault", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault" } };
const CORS = { name: "envoy.filters.http.cors", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors" } };
const STDOUT_ACCESS_LOG = {
  name: "envoy.access_loggers.stdout",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog" },
};

const RETRY_ROUTE = {
  timeout: "0s",
  retry_policy: {
    retry_on: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
    num_retries: 2,
    host_selection_retry_max_attempts: "5",
    retriable_status_codes: [503],
  },
};

function admin(podIp: string, adminPort: number): object {
  return { address: { socket_address: { address: podIp, port_value: adminPort } } };
}

function commonTls(certs: CertFiles, extra: object = {}): object {
  return {
    tls_certificates: [{ certificate_chain: { filename: certs.certChain }, private_key: { filename: certs.privateKey } }],
    ...extra,
  };
}

function hcm(statPrefix: string, cluster: string, extras: ReadonlySet<Extra>, more: object = {}, routeExtras: object = {}): object {
  return {
    name: "envoy.filters.network.http_connection_manager",
    typed_config: {
      "@type": HCM_TYPE,
      stat_prefix: statPrefix,
      route_config: {
        name: statPrefix,
        virtual_hosts: [{ name: statPrefix, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster, ...routeExtras } }] }],
      },
      http_filters: extras.has("faultcors") ? [FAULT, CORS, ROUTER] : [ROUTER],
      ...(extras.has("normalizepath") ? { normalize_path: true } : {}),
      ...(extras.has("accesslog") ? { access_log: [STDOUT_ACCESS_LOG] } : {}),
      ...more,
    },
  };
}

/** The client sidecar: outbound capture listener -> mTLS to the server pod. */
export function minimalClientBootstrap(opts: {
  podIp: string;
  adminPort: number;
  serverIp: string;
  serverPort: number;
  serverSpiffeId: string;
  certs: CertFiles;
  extras: ReadonlySet<Extra>;
}): object {
  const h2 = opts.extras.has("h2upstream");
  return {
    node: { id: "minimal-client", cluster: "minimal-client" },
    admin: admin(opts.podIp, opts.adminPort),
    static_resources: {
      listeners: [
        {
          name: "outbound",
          address: { socket_address: { address: "0.0.0.0", port_value: 15001 } },
          listener_filters: [
            { name: "envoy.filters.listener.original_dst", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst" } },
          ],
          filter_chains: [{ filters: [hcm("outbound", "server", opts.extras, {}, opts.extras.has("retries") ? RETRY_ROUTE : {})] }],
        },
      ],
      clusters: [
        {
          name: "server",
          type: "STATIC",
          connect_timeout: "1s",
          load_assignment: {
            cluster_name: "server",
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: opts.serverIp, port_value: opts.serverPort } } } }] }],
          },
          transport_socket: {
            name: "envoy.transport_sockets.tls",
            typed_config: {
              "@type": `${TLS_CONTEXT}.UpstreamTlsContext`,
              common_tls_context: commonTls(opts.certs, {
                ...(h2 ? { alpn_protocols: ["h2"] } : {}),
                validation_context: {
                  trusted_ca: { filename: opts.certs.trustedCa },
                  match_typed_subject_alt_names: [{ san_type: "URI", matcher: { exact: opts.serverSpiffeId } }],
                },
              }),
            },
          },
          ...(h2
            ? {
                typed_extension_protocol_options: {
                  "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    explicit_http_config: { http2_protocol_options: {} },
                  },
                },
              }
            : {}),
        },
      ],
    },
  };
}

/** The server sidecar: inbound capture listener terminating mTLS -> the local app. */
export function minimalServerBootstrap(opts: {
  podIp: string;
  adminPort: number;
  appPort: number;
  certs: CertFiles;
  extras: ReadonlySet<Extra>;
}): object {
  const xfcc = opts.extras.has("xfcc")
    ? { forward_client_cert_details: "SANITIZE_SET", set_current_client_cert_details: { uri: true } }
    : {};
  const h2 = opts.extras.has("h2upstream");
  return {
    node: { id: "minimal-server", cluster: "minimal-server" },
    admin: admin(opts.podIp, opts.adminPort),
    static_resources: {
      listeners: [
        {
          name: "inbound",
          address: { socket_address: { address: "0.0.0.0", port_value: 15006 } },
          ...(opts.extras.has("tlsinspector")
            ? { listener_filters: [{ name: "envoy.filters.listener.tls_inspector", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector" } }] }
            : {}),
          filter_chains: [
            {
              filters: [hcm("inbound", "app", opts.extras, xfcc)],
              transport_socket: {
                name: "envoy.transport_sockets.tls",
                typed_config: {
                  "@type": `${TLS_CONTEXT}.DownstreamTlsContext`,
                  require_client_certificate: true,
                  common_tls_context: commonTls(opts.certs, {
                    ...(h2 ? { alpn_protocols: ["h2", "http/1.1"] } : {}),
                    validation_context: { trusted_ca: { filename: opts.certs.trustedCa } },
                  }),
                },
              },
            },
          ],
        },
      ],
      clusters: [
        {
          name: "app",
          type: "STATIC",
          connect_timeout: "1s",
          load_assignment: {
            cluster_name: "app",
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: opts.appPort } } } }] }],
          },
        },
      ],
    },
  };
}
