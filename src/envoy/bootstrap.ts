// Renders the bootstrap of an Envoy that gets LDS and CDS over ADS from weft.
//
// The template (envoy-bootstrap/sidecar.yaml) holds double-brace placeholders such as
// `{{nodeId}}`. Every value is substituted as a JSON literal, which is also valid YAML,
// so user-supplied strings (node id, metadata) can never break out of their field.

import { existsSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { appProbeCluster, meshStatsConfig, PROMETHEUS_STATS_PORT, STATS_PORT_METADATA, prometheusStatsCluster, prometheusStatsListener, readinessListener, type AppProbeRoute, type ProxyStatsIdentity } from "./proxy-stats.js";

export interface BootstrapOptions {
  /** Envoy's node.id; weft keys proxy state on it. */
  nodeId: string;
  /** Envoy's node.cluster. */
  cluster: string;
  /** node.metadata (string values only). */
  metadata?: Record<string, string>;
  /** Control plane host: an IP literal (STATIC cluster) or a DNS name (STRICT_DNS). */
  xdsAddress: string;
  xdsPort: number;
  /**
   * More replicas of the control plane (after xdsAddress:xdsPort): the xds-grpc cluster gets one
   * endpoint each, so when the replica a stream is on dies, Envoy's reconnect goes to another
   * (round robin). All IP literals or all host names, like xdsAddress.
   */
  xdsReplicas?: { address: string; port: number }[];
  /** Admin listener IP. Default 127.0.0.1. */
  adminAddress?: string;
  /** Admin port; 0 (the default) lets the kernel pick one. */
  adminPort?: number;
  /** Use incremental (delta) ADS instead of state of the world. Default false. */
  deltaXds?: boolean;
  /** Bootstrap credential sent on the xDS stream as "authorization: Bearer <token>". */
  xdsToken?: string;
  /** Connect to the control plane over TLS, verifying its certificate against this CA file (and SNI). */
  xdsTls?: { caFile: string; sni: string };
  /**
   * A file holding the credential (e.g. a projected ServiceAccount token), read again by Envoy
   * at every new xDS stream, so a rotated token is used at the next reconnect. Needs xdsTls
   * (gRPC sends call credentials only over TLS). Uses Envoy's Google gRPC client with the
   * call credential envoy.grpc_credentials.file_based_metadata instead of envoy_grpc; the
   * control plane's certificate is then verified against caFile as read at start.
   */
  xdsTokenFile?: string;
  /**
   * Port of the Prometheus scrape listener (GET /stats/prometheus, forwarded to the admin API),
   * on the admin address. Default: 15090 (Istio's) when adminPort is a fixed port — an Envoy
   * alone in its pod's network namespace — and none when the kernel picks the admin port
   * (several Envoys sharing one namespace would collide on 15090). false: none.
   */
  statsPort?: number | false;
  /**
   * The proxy's own workload, attached to every stat as fixed tags. Default: from the node id
   * (`sidecar~ip~<workload>.<namespace>~...`) and metadata (NAMESPACE, LABELS app/version,
   * WORKLOAD_NAME), see statsIdentityOf.
   */
  statsIdentity?: ProxyStatsIdentity;
  /**
   * Port of the readiness endpoint (GET /healthz/ready, answered by the admin API's /ready; Istio's
   * 15021), for a kubelet's probes. Needs a fixed adminPort. Default: none.
   */
  readinessPort?: number;
  /** App containers' HTTP probes served on the readiness port (needs readinessPort). */
  appProbes?: AppProbeRoute[];
  /**
   * Address the scrape and readiness listeners bind. Default: adminAddress. An injected sidecar
   * keeps its admin API on 127.0.0.1 and these two on 0.0.0.0 (kubelet and Prometheus reach them).
   */
  listenerAddress?: string;
  /** false: Envoy's default stat tags only (for measuring what Weft's tags cost). Default true. */
  meshStatsTags?: boolean;
}

const TEMPLATE_RELATIVE = path.join("envoy-bootstrap", "sidecar.yaml");

export function renderBootstrap(opts: BootstrapOptions, templatePath?: string): string {
  validateBootstrapOptions(opts);
  const file = templatePath ?? defaultTemplatePath();
  const template = readFileSync(file, "utf8");

  const adminAddress = opts.adminAddress ?? "127.0.0.1";
  const adminPort = opts.adminPort ?? 0;
  const statsPort = opts.statsPort ?? (adminPort !== 0 ? PROMETHEUS_STATS_PORT : false);
  const listenerAddress = opts.listenerAddress ?? adminAddress;
  const adminListeners = [
    ...(statsPort === false ? [] : [prometheusStatsListener(listenerAddress, statsPort)]),
    ...(opts.readinessPort === undefined ? [] : [readinessListener(listenerAddress, opts.readinessPort, opts.appProbes)]),
  ];
  const appProbePorts = [...new Set((opts.appProbes ?? []).map((p) => p.port))].sort((a, b) => a - b);
  const extraClusters = [
    ...(adminListeners.length === 0 ? [] : [prometheusStatsCluster(adminAddress, adminPort)]),
    ...appProbePorts.map(appProbeCluster),
  ];
  const values: Record<string, string> = {
    nodeId: JSON.stringify(opts.nodeId),
    cluster: JSON.stringify(opts.cluster),
    // The scrape listener's port is announced in the node metadata: the mesh console reads each
    // connected proxy's stats there, on the address its xDS stream comes from.
    metadata: renderFlowMapping({ ...(statsPort === false ? {} : { [STATS_PORT_METADATA]: String(statsPort) }), ...(opts.metadata ?? {}) }),
    adminAddress: JSON.stringify(adminAddress),
    adminPort: String(adminPort),
    statsConfig: JSON.stringify(meshStatsConfig({ identity: opts.statsIdentity ?? statsIdentityOf(opts), meshTags: opts.meshStatsTags })),
    statsListeners: JSON.stringify(adminListeners),
    // A whole sequence item, or nothing (the template puts it after the xds-grpc cluster).
    // Sequence items at the template's indentation (two spaces), or nothing.
    statsCluster: extraClusters.map((c) => `- ${JSON.stringify(c)}`).join("\n  "),
    adsApiType: opts.deltaXds ? "DELTA_GRPC" : "GRPC",
    xdsClusterType: isIP(opts.xdsAddress) !== 0 ? "STATIC" : "STRICT_DNS",
    xdsLbEndpoints: JSON.stringify(
      [{ address: opts.xdsAddress, port: opts.xdsPort }, ...(opts.xdsReplicas ?? [])].map((r) => ({ endpoint: { address: { socket_address: { address: r.address, port_value: r.port } } } })),
    ),
    xdsGrpcService: JSON.stringify(xdsGrpcService(opts)),
    xdsTransportSocket: JSON.stringify(
      opts.xdsTls
        ? {
            name: "envoy.transport_sockets.tls",
            typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
              sni: opts.xdsTls.sni,
              common_tls_context: {
                alpn_protocols: ["h2"],
                validation_context: {
                  trusted_ca: { filename: opts.xdsTls.caFile },
                  // Re-read the bundle when a new one is moved into its directory (root rotation).
                  watched_directory: { path: path.dirname(opts.xdsTls.caFile) },
                  match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: opts.xdsTls.sni } }],
                },
              },
            },
          }
        : null,
    ),
  };

  return template.replace(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g, (_match, name: string) => {
    const value = values[name];
    if (value === undefined) {
      throw new Error(`bootstrap template ${file}: unknown placeholder {{${name}}}; ` +
        `known ones are ${Object.keys(values).join(", ")}`);
    }
    return value;
  });
}

/** The ADS gRPC service: envoy_grpc with a static token, or google_grpc reading a token file. */
function xdsGrpcService(opts: BootstrapOptions): Record<string, unknown> {
  if (!opts.xdsTokenFile) {
    return { envoy_grpc: { cluster_name: "xds-grpc" }, initial_metadata: opts.xdsToken ? [{ key: "authorization", value: `Bearer ${opts.xdsToken}` }] : [] };
  }
  const tls = opts.xdsTls!;
  const all = [{ address: opts.xdsAddress, port: opts.xdsPort }, ...(opts.xdsReplicas ?? [])];
  const hostPort = (r: { address: string; port: number }) => `${r.address.includes(":") ? `[${r.address}]` : r.address}:${r.port}`;
  // Several replicas: gRPC's ipv4:/ipv6: target lists every address (pick_first fails over);
  // with host names only the first is dialled (its DNS answer may list several).
  const target =
    all.length === 1
      ? hostPort(all[0]!)
      : isIP(opts.xdsAddress) !== 0
        ? `${isIP(opts.xdsAddress) === 6 ? "ipv6" : "ipv4"}:${all.map(hostPort).join(",")}`
        : `dns:///${hostPort(all[0]!)}`;
  return {
    google_grpc: {
      target_uri: target,
      stat_prefix: "xds-grpc",
      channel_credentials: { ssl_credentials: { root_certs: { filename: tls.caFile } } },
      call_credentials: [
        {
          from_plugin: {
            name: "envoy.grpc_credentials.file_based_metadata",
            typed_config: {
              "@type": "type.googleapis.com/envoy.config.grpc_credential.v3.FileBasedMetadataConfig",
              secret_data: { filename: opts.xdsTokenFile },
              header_prefix: "Bearer ",
            },
          },
        },
      ],
      credentials_factory_name: "envoy.grpc_credentials.file_based_metadata",
      // The serving certificate names the control plane's service, not the address dialled.
      channel_args: { args: { "grpc.ssl_target_name_override": { string_value: tls.sni }, "grpc.keepalive_time_ms": { int_value: 30000 }, "grpc.keepalive_timeout_ms": { int_value: 5000 } } },
    },
  };
}

/** Throws an error naming the bad field and what was expected. */
function validateBootstrapOptions(opts: BootstrapOptions): void {
  const fail = (field: string, expected: string, got: unknown): never => {
    throw new Error(`renderBootstrap: ${field} must be ${expected}, got ${JSON.stringify(got)}`);
  };
  const checkText = (field: string, value: unknown): void => {
    if (typeof value !== "string" || value === "" || /[\u0000-\u001f\u007f]/.test(value)) {
      fail(field, "a non-empty string without control characters", value);
    }
  };
  const checkPort = (field: string, value: unknown, min: number): void => {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > 65535) {
      fail(field, `an integer port in ${min}..65535`, value);
    }
  };

  checkText("nodeId", opts.nodeId);
  checkText("cluster", opts.cluster);
  for (const [key, value] of Object.entries(opts.metadata ?? {})) {
    checkText("metadata key", key);
    if (typeof value !== "string") fail(`metadata["${key}"]`, "a string", value);
  }
  if (typeof opts.xdsAddress !== "string" || (isIP(opts.xdsAddress) === 0 && !isHostName(opts.xdsAddress))) {
    fail("xdsAddress", "an IP address or DNS host name", opts.xdsAddress);
  }
  checkPort("xdsPort", opts.xdsPort, 1);
  (opts.xdsReplicas ?? []).forEach((replica, i) => {
    if (typeof replica.address !== "string" || (isIP(replica.address) === 0) !== (isIP(opts.xdsAddress) === 0) || (isIP(replica.address) === 0 && !isHostName(replica.address))) {
      fail(`xdsReplicas[${i}].address`, isIP(opts.xdsAddress) !== 0 ? "an IP address (xdsAddress is one)" : "a DNS host name (xdsAddress is one)", replica.address);
    }
    checkPort(`xdsReplicas[${i}].port`, replica.port, 1);
  });
  if (opts.adminAddress !== undefined && isIP(opts.adminAddress) === 0) {
    fail("adminAddress", "an IP address (Envoy binds it; host names are not allowed)", opts.adminAddress);
  }
  if (opts.adminPort !== undefined) checkPort("adminPort", opts.adminPort, 0);
  if (opts.xdsTokenFile !== undefined) {
    checkText("xdsTokenFile", opts.xdsTokenFile);
    if (!path.isAbsolute(opts.xdsTokenFile)) fail("xdsTokenFile", "an absolute path", opts.xdsTokenFile);
    if (!opts.xdsTls) fail("xdsTls", "set when xdsTokenFile is (gRPC sends call credentials only over TLS)", opts.xdsTls);
    if (opts.xdsToken) fail("xdsToken", "unset when xdsTokenFile is (one credential per stream)", "<token>");
  }
  if (opts.statsPort !== undefined && opts.statsPort !== false) {
    checkPort("statsPort", opts.statsPort, 1);
    if (!opts.adminPort) fail("statsPort", "used with a fixed adminPort (the scrape listener forwards to the admin API)", opts.statsPort);
    if (opts.statsPort === opts.adminPort) fail("statsPort", `a port other than adminPort (${opts.adminPort})`, opts.statsPort);
  }
  if (opts.readinessPort !== undefined) {
    checkPort("readinessPort", opts.readinessPort, 1);
    if (!opts.adminPort) fail("readinessPort", "used with a fixed adminPort (the readiness listener forwards to the admin API)", opts.readinessPort);
    if (opts.readinessPort === opts.adminPort || opts.readinessPort === opts.statsPort) fail("readinessPort", "a port other than adminPort and statsPort", opts.readinessPort);
  }
  (opts.appProbes ?? []).forEach((probe, i) => {
    if (opts.readinessPort === undefined) fail("appProbes", "used with readinessPort (they are served there)", "<probes>");
    checkPort(`appProbes[${i}].port`, probe.port, 1);
    if (!/^\/[\x21-\x7e]{0,1023}$/.test(probe.path)) fail(`appProbes[${i}].path`, "an absolute path of printable characters", probe.path);
    if (!/^\/[\x21-\x7e]{0,1023}$/.test(probe.appPath)) fail(`appProbes[${i}].appPath`, "an absolute path of printable characters", probe.appPath);
  });
  if (opts.listenerAddress !== undefined && isIP(opts.listenerAddress) === 0) fail("listenerAddress", "an IP address", opts.listenerAddress);
  for (const [key, value] of Object.entries(opts.statsIdentity ?? {})) {
    if (value !== undefined && (typeof value !== "string" || value.length > 253 || /[\u0000-\u001f\u007f]/.test(value))) {
      fail(`statsIdentity.${key}`, "a string of at most 253 characters without control characters", value);
    }
  }
}

/**
 * The proxy's workload as Istio names it, from what the bootstrap already says: namespace from
 * metadata NAMESPACE (else the node id), app and version from the LABELS metadata (app /
 * app.kubernetes.io/name, version / app.kubernetes.io/version), the workload from metadata
 * WORKLOAD_NAME or the node id's `<workload>.<namespace>` part. Values that cannot be read are
 * left out (Envoy then has no such tag).
 */
export function statsIdentityOf(opts: Pick<BootstrapOptions, "nodeId" | "metadata">): ProxyStatsIdentity {
  const md = opts.metadata ?? {};
  const idPart = opts.nodeId.split("~")[2] ?? "";
  const dot = idPart.indexOf(".");
  const namespace = md.NAMESPACE ?? (dot > 0 ? idPart.slice(dot + 1) : undefined);
  const workload = md.WORKLOAD_NAME ?? (dot > 0 ? idPart.slice(0, dot) : idPart || undefined);
  let labels: Record<string, unknown> = {};
  try {
    const parsed: unknown = md.LABELS ? JSON.parse(md.LABELS) : {};
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) labels = parsed as Record<string, unknown>;
  } catch {
    labels = {};
  }
  const text = (v: unknown): string | undefined => (typeof v === "string" && v !== "" && v.length <= 253 && !/[\u0000-\u001f\u007f]/.test(v) ? v : undefined);
  const identity: ProxyStatsIdentity = {
    workload: text(workload),
    namespace: text(namespace),
    app: text(labels.app) ?? text(labels["app.kubernetes.io/name"]),
    version: text(labels.version) ?? text(labels["app.kubernetes.io/version"]),
  };
  return Object.fromEntries(Object.entries(identity).filter(([, v]) => v !== undefined)) as ProxyStatsIdentity;
}

function isHostName(name: string): boolean {
  const label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
  return name.length <= 253 && new RegExp(`^${label}(?:\\.${label})*\\.?$`).test(name);
}

/** `{ "k": "v", ... }` with sorted keys: JSON that YAML flow parsers read unambiguously. */
function renderFlowMapping(map: Record<string, string>): string {
  const entries = Object.keys(map).sort().map((k) => `${JSON.stringify(k)}: ${JSON.stringify(map[k])}`);
  return entries.length === 0 ? "{}" : `{ ${entries.join(", ")} }`;
}

/**
 * Finds envoy-bootstrap/sidecar.yaml by walking up from this module, so the same code
 * works run from source (src/envoy) and compiled (dist/src/envoy).
 */
function defaultTemplatePath(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, TEMPLATE_RELATIVE);
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(`renderBootstrap: cannot find ${TEMPLATE_RELATIVE} in any parent of ` +
        `${path.dirname(fileURLToPath(import.meta.url))}; pass templatePath explicitly`);
    }
    dir = parent;
  }
}
