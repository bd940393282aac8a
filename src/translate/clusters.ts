// Envoy clusters: outbound per service port and subset (with DestinationRule policy),
// inbound per workload port, and the passthrough / black-hole clusters.
import type { Cluster } from "../../generated/envoy/config/cluster/v3/cluster.js";
import { Cluster_DiscoveryType, Cluster_LbPolicy } from "../../generated/envoy/config/cluster/v3/cluster.js";
import { RoutingPriority } from "../../generated/envoy/config/core/v3/base.js";
import type { Subset } from "../api/types.js";
import { packAny } from "../envoy/any.js";
import { socketAddress } from "../envoy/builders.js";
import { MESH_CONFIG_SOURCE } from "./config-source.js";
import { EXTENSION_TYPES } from "../envoy/type-urls.js";
import { toProtoDuration } from "./proto-duration.js";
import type { ServiceModel, ServicePortModel } from "../model/mesh-model.js";
import { BLACKHOLE_CLUSTER, INBOUND_PASSTHROUGH_CLUSTER, PASSTHROUGH_CLUSTER, inboundClusterName, inboundClusterStatName, outboundClusterName, outboundClusterStatName } from "./naming.js";
import type { EffectivePolicy } from "./traffic-policy.js";
import { TLS_MODE_LABEL, meshSni, outboundMtlsSocket, spiffeIdOf } from "./mtls.js";
import { applySlowStart, http2KeepaliveOf, retryBudgetOf, upstreamConnectionOptionsOf } from "./cluster-connection-settings.js";
import type { CircuitBreakers_Thresholds_RetryBudget } from "../../generated/envoy/config/cluster/v3/circuit_breaker.js";

const DEFAULT_CONNECT_TIMEOUT = "10s"; // Istio's default

export function isHttpProtocol(p: ServicePortModel["protocol"]): boolean {
  return p === "HTTP" || p === "HTTP2" || p === "GRPC";
}

function lbPolicy(policy: EffectivePolicy): Cluster_LbPolicy {
  const lb = policy.loadBalancer;
  if (lb?.consistentHash) return Cluster_LbPolicy.RING_HASH;
  switch (lb?.simple) {
    case "LEAST_CONN":
    case "LEAST_REQUEST":
      return Cluster_LbPolicy.LEAST_REQUEST;
    case "RANDOM":
      return Cluster_LbPolicy.RANDOM;
    case "ROUND_ROBIN":
      return Cluster_LbPolicy.ROUND_ROBIN;
    default:
      // Istio's default: the less busy of two random endpoints.
      return Cluster_LbPolicy.LEAST_REQUEST;
  }
}

/** Istio's limits are effectively none (2^32-1) where not configured; Envoy's own defaults are 1024 (and 3 retries). */
const UNLIMITED = 4294967295;

function circuitBreakers(
  limits: { maxConnections?: number; maxPendingRequests?: number; maxRequests?: number; maxRetries?: number; retryBudget?: CircuitBreakers_Thresholds_RetryBudget } = {},
): Cluster["circuitBreakers"] {
  return {
    thresholds: [
      {
        priority: RoutingPriority.DEFAULT,
        maxConnections: limits.maxConnections ?? UNLIMITED,
        maxPendingRequests: limits.maxPendingRequests ?? UNLIMITED,
        maxRequests: limits.maxRequests ?? UNLIMITED,
        maxRetries: limits.maxRetries ?? UNLIMITED,
        ...(limits.retryBudget ? { retryBudget: limits.retryBudget } : {}),
        trackRemaining: true,
      },
    ],
  };
}

/**
 * Upstream HTTP protocol of a cluster whose callers' protocol is not known in advance
 * (passthrough, undeclared inbound ports): the one the downstream spoke, so h2c and gRPC stay
 * HTTP/2 (Istio: USE_DOWNSTREAM_PROTOCOL).
 */
function downstreamProtocol(): Cluster["typedExtensionProtocolOptions"] {
  return {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": packAny(EXTENSION_TYPES.httpProtocolOptions, {
      useDownstreamProtocolConfig: { httpProtocolOptions: {}, http2ProtocolOptions: {} },
    }),
  };
}

function applyPolicy(cluster: Cluster, policy: EffectivePolicy, port: ServicePortModel): Cluster {
  const pool = policy.connectionPool;
  cluster.connectTimeout = toProtoDuration(pool?.tcp?.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT);
  if (cluster.type !== Cluster_DiscoveryType.ORIGINAL_DST) cluster.lbPolicy = lbPolicy(policy);
  if (policy.loadBalancer?.consistentHash?.minimumRingSize) {
    cluster.ringHashLbConfig = { minimumRingSize: policy.loadBalancer.consistentHash.minimumRingSize };
  }
  cluster.circuitBreakers = circuitBreakers({
    maxConnections: pool?.tcp?.maxConnections,
    maxPendingRequests: pool?.http?.http1MaxPendingRequests,
    maxRequests: pool?.http?.http2MaxRequests,
    maxRetries: pool?.http?.maxRetries,
    retryBudget: retryBudgetOf(policy.retryBudget),
  });
  applySlowStart(cluster, policy.loadBalancer);
  const upstreamConnectionOptions = upstreamConnectionOptionsOf(pool?.tcp);
  if (upstreamConnectionOptions) cluster.upstreamConnectionOptions = upstreamConnectionOptions;
  const http2 = port.protocol === "HTTP2" || port.protocol === "GRPC" || pool?.http?.h2UpgradePolicy === "UPGRADE";
  const idle = pool?.http?.idleTimeout;
  const perConn = pool?.http?.maxRequestsPerConnection;
  // As Istio, HTTP/2 PINGs only on clusters that speak HTTP/2 upstream.
  const http2Keepalive = http2KeepaliveOf(pool?.http);
  if (isHttpProtocol(port.protocol) && (http2 || idle || perConn)) {
    cluster.typedExtensionProtocolOptions = {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": packAny(EXTENSION_TYPES.httpProtocolOptions, {
        commonHttpProtocolOptions: {
          ...(idle ? { idleTimeout: toProtoDuration(idle) } : {}),
          ...(perConn ? { maxRequestsPerConnection: perConn } : {}),
        },
        explicitHttpConfig: http2 ? { http2ProtocolOptions: http2Keepalive ? { connectionKeepalive: http2Keepalive } : {} } : { httpProtocolOptions: {} },
      }),
    };
  }
  if (policy.loadBalancer?.localityLbSetting?.distribute?.length) {
    // Locality weights in the ClusterLoadAssignment only count with locality-weighted LB on.
    cluster.commonLbConfig = { ...(cluster.commonLbConfig ?? {}), localityWeightedLbConfig: {} };
  }
  const od = policy.outlierDetection;
  if (od) {
    cluster.outlierDetection = {
      ...(od.consecutive5xxErrors !== undefined ? { consecutive5xx: od.consecutive5xxErrors, enforcingConsecutive5xx: od.consecutive5xxErrors > 0 ? 100 : 0 } : { enforcingConsecutive5xx: 0 }),
      ...(od.consecutiveGatewayErrors !== undefined ? { consecutiveGatewayFailure: od.consecutiveGatewayErrors, enforcingConsecutiveGatewayFailure: 100 } : {}),
      interval: toProtoDuration(od.interval ?? "10s"),
      baseEjectionTime: toProtoDuration(od.baseEjectionTime ?? "30s"),
      maxEjectionPercent: od.maxEjectionPercent ?? 10,
      enforcingSuccessRate: 0,
    };
    // Istio turns Envoy's panic mode off (threshold 0) unless minHealthPercent says otherwise:
    // with every endpoint ejected the caller gets 503 at once instead of the ejected endpoints.
    cluster.commonLbConfig = { ...(cluster.commonLbConfig ?? {}), healthyPanicThreshold: { value: od.minHealthPercent ?? 0 } };
  }
  const tls = policy.tls;
  if (tls && (tls.mode === "SIMPLE" || tls.mode === "MUTUAL")) {
    cluster.transportSocket = {
      name: "envoy.transport_sockets.tls",
      typedConfig: packAny(EXTENSION_TYPES.upstreamTlsContext, {
        sni: tls.sni ?? "",
        commonTlsContext: {
          ...(tls.mode === "MUTUAL" && tls.clientCertificate && tls.privateKey
            ? { tlsCertificates: [{ certificateChain: { filename: tls.clientCertificate }, privateKey: { filename: tls.privateKey } }] }
            : {}),
          ...(tls.caCertificates && !tls.insecureSkipVerify
            ? {
                validationContext: {
                  trustedCa: { filename: tls.caCertificates },
                  matchTypedSubjectAltNames: (tls.subjectAltNames ?? []).map((san) => ({ sanType: 2 /* DNS */, matcher: { exact: san } })),
                },
              }
            : {}),
        },
      }),
    };
  }
  return cluster;
}

/**
 * mTLS towards a mesh-internal service: forced by DestinationRule tls ISTIO_MUTUAL, off with
 * DISABLE/SIMPLE/MUTUAL, otherwise automatic: only endpoints labelled tlsMode=istio.
 */
function applyMeshTls(cluster: Cluster, service: ServiceModel, port: ServicePortModel, subset: string, policy: EffectivePolicy, trustDomain: string): void {
  if (service.location !== "MESH_INTERNAL" && policy.tls?.mode !== "ISTIO_MUTUAL") return;
  const mode = policy.tls?.mode;
  if (mode === "DISABLE" || mode === "SIMPLE" || mode === "MUTUAL") return;
  const identities = [
    ...new Set(
      service.endpoints
        .filter((e) => mode === "ISTIO_MUTUAL" || e.labels[TLS_MODE_LABEL] === "istio")
        .map((e) => spiffeIdOf(trustDomain, service.namespace, e.serviceAccount)),
    ),
  ].sort();
  const http2 = port.protocol === "HTTP2" || port.protocol === "GRPC" || policy.connectionPool?.http?.h2UpgradePolicy === "UPGRADE";
  const alpn = !isHttpProtocol(port.protocol) ? "tcp" : http2 ? "http2" : "http1";
  const socket = outboundMtlsSocket(policy.tls?.subjectAltNames?.length ? policy.tls.subjectAltNames : identities, policy.tls?.sni ?? meshSni(port.number, subset, service.hostname), alpn);
  if (mode === "ISTIO_MUTUAL") cluster.transportSocket = socket;
  else cluster.transportSocketMatches = [{ name: "tlsMode-istio", match: { tlsMode: "istio" }, transportSocket: socket }];
}

/** Envoy cluster for one service port and subset ("" = every endpoint). */
export function buildOutboundCluster(service: ServiceModel, port: ServicePortModel, subset: Subset | undefined, policy: EffectivePolicy, mtlsTrustDomain?: string): Cluster {
  const name = outboundClusterName(port.number, subset?.name ?? "", service.hostname);
  const passthroughLb = policy.loadBalancer?.simple === "PASSTHROUGH";
  let cluster: Cluster;
  if (service.resolution === "DNS" || service.resolution === "DNS_ROUND_ROBIN") {
    const targets = service.endpoints.length > 0 ? service.endpoints.map((e) => ({ address: e.address, port: e.ports[port.number] ?? port.targetPort })) : [{ address: service.hostname, port: port.number }];
    cluster = {
      name,
      type: service.resolution === "DNS" ? Cluster_DiscoveryType.STRICT_DNS : Cluster_DiscoveryType.LOGICAL_DNS,
      dnsLookupFamily: 1 /* V4_ONLY */,
      loadAssignment: { clusterName: name, endpoints: [{ lbEndpoints: targets.map((t) => ({ endpoint: { address: socketAddress(t.address, t.port) } })) }] },
    };
  } else if (service.resolution === "NONE" || passthroughLb) {
    cluster = { name, type: Cluster_DiscoveryType.ORIGINAL_DST, lbPolicy: Cluster_LbPolicy.CLUSTER_PROVIDED };
  } else {
    cluster = { name, type: Cluster_DiscoveryType.EDS, edsClusterConfig: { edsConfig: MESH_CONFIG_SOURCE, serviceName: name } };
  }
  cluster.altStatName = outboundClusterStatName(name);
  cluster.trackClusterStats = REQUEST_SIZE_STATS;
  applyPolicy(cluster, policy, port);
  if (mtlsTrustDomain) applyMeshTls(cluster, service, port, subset?.name ?? "", policy, mtlsTrustDomain);
  return cluster;
}

/**
 * Where an inbound cluster sends: "original" (where the caller was going: the pod IP and
 * port), "workload" (the pod IP, another port: a Sidecar ingress defaultEndpoint
 * "0.0.0.0:PORT"), "loopback" (127.0.0.1 or ::1 and a port) or "unix" (a socket path).
 */
export type LocalAppEndpoint = { kind: "original" } | { kind: "workload"; port: number } | { kind: "loopback"; address: string; port: number } | { kind: "unix"; path: string };

/**
 * The cluster to the local app for one inbound port, as Istio's: by default to the address the
 * caller asked for (the pod IP and port, ORIGINAL_DST), from 127.0.0.6 so the capture rules let
 * it through and the app sees a source that is not its own loopback, without connection limits.
 * An app listening only on 127.0.0.1 is not reachable from other pods (as with Istio) unless a
 * Sidecar ingress listener's defaultEndpoint says so (`endpoint`). `connectionPool`: the
 * Sidecar's (inboundConnectionPool or the ingress listener's), as on outbound clusters.
 */
export function buildInboundCluster(
  port: number,
  protocol: ServicePortModel["protocol"],
  serviceHost?: string,
  opts: { endpoint?: LocalAppEndpoint; connectionPool?: EffectivePolicy["connectionPool"] } = {},
): Cluster {
  const http2 = protocol === "HTTP2" || protocol === "GRPC";
  const endpoint = opts.endpoint ?? { kind: "original" };
  const name = inboundClusterName(port);
  const fixed = endpoint.kind === "loopback" || endpoint.kind === "unix";
  const cluster: Cluster = {
    ...(fixed
      ? {
          name,
          type: Cluster_DiscoveryType.STATIC,
          connectTimeout: toProtoDuration(DEFAULT_CONNECT_TIMEOUT),
          circuitBreakers: circuitBreakers(),
          loadAssignment: {
            clusterName: name,
            endpoints: [{ lbEndpoints: [{ endpoint: { address: endpoint.kind === "unix" ? { pipe: { path: endpoint.path, mode: 0 } } : socketAddress(endpoint.address, endpoint.port) } }] }],
          },
        }
      : originalDstCluster(name)),
    ...(serviceHost ? { altStatName: inboundClusterStatName(port, serviceHost) } : {}),
    trackClusterStats: REQUEST_SIZE_STATS,
    // Loopback and sockets need no way around the capture rules (as Istio: no bind for localhost).
    ...(fixed ? {} : { upstreamBindConfig: { sourceAddress: { address: INBOUND_PASSTHROUGH_SOURCE, portValue: 0 } } }),
    ...(endpoint.kind === "workload" ? { originalDstLbConfig: { useHttpHeader: false, httpHeaderName: "", upstreamPortOverride: endpoint.port } } : {}),
    ...(http2
      ? { typedExtensionProtocolOptions: { "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": packAny(EXTENSION_TYPES.httpProtocolOptions, { explicitHttpConfig: { http2ProtocolOptions: {} } }) } }
      : protocol === "AUTO" ? { typedExtensionProtocolOptions: downstreamProtocol() } : {}),
  };
  return opts.connectionPool ? applyPolicy(cluster, { connectionPool: opts.connectionPool }, { number: port, name: "", protocol, targetPort: port }) : cluster;
}

/**
 * Request and response size histograms on mesh clusters (upstream_rq_headers_size,
 * upstream_rq_body_size, upstream_rs_headers_size, upstream_rs_body_size): Istio's
 * istio_request_bytes / istio_response_bytes. Memory cost in bench/results/proxy-stats-memory.md.
 */
const REQUEST_SIZE_STATS = { requestResponseSizes: true } as const;

/** An ORIGINAL_DST cluster (to where the connection was going) without connection limits. */
function originalDstCluster(name: string): Cluster {
  return {
    name,
    type: Cluster_DiscoveryType.ORIGINAL_DST,
    lbPolicy: Cluster_LbPolicy.CLUSTER_PROVIDED,
    connectTimeout: toProtoDuration(DEFAULT_CONNECT_TIMEOUT),
    circuitBreakers: circuitBreakers(),
  };
}

/** Source address of Envoy's connections to its own pod (the capture rules let it through). */
const INBOUND_PASSTHROUGH_SOURCE = "127.0.0.6";

export function buildPassthroughClusters(): Cluster[] {
  return [
    { ...originalDstCluster(PASSTHROUGH_CLUSTER), typedExtensionProtocolOptions: downstreamProtocol() },
    {
      ...originalDstCluster(INBOUND_PASSTHROUGH_CLUSTER),
      typedExtensionProtocolOptions: downstreamProtocol(),
      // The capture rules let traffic from 127.0.0.6 through; without this bind, passthrough to an
      // undeclared port is captured again (measured: 1024 looped connections for one request).
      upstreamBindConfig: { sourceAddress: { address: INBOUND_PASSTHROUGH_SOURCE, portValue: 0 } },
    },
    { name: BLACKHOLE_CLUSTER, type: Cluster_DiscoveryType.STATIC, connectTimeout: toProtoDuration(DEFAULT_CONNECT_TIMEOUT) },
  ];
}
