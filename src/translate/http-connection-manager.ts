// The HTTP connection manager every HTTP filter chain uses: fault and CORS filters (configured
// per route) before the router; routes from RDS or inline.
import type { Filter } from "../../generated/envoy/config/listener/v3/listener_components.js";
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import type { HttpConnectionManager_Tracing, HttpFilter } from "../../generated/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js";
import type { AccessLog } from "../../generated/envoy/config/accesslog/v3/accesslog.js";
import { packAny } from "../envoy/any.js";
import { MESH_CONFIG_SOURCE } from "./config-source.js";
import { EXTENSION_TYPES } from "../envoy/type-urls.js";
import { CORS_FILTER, FAULT_FILTER } from "./http-routes.js";
import { HttpConnectionManager_ForwardClientCertDetails } from "../../generated/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js";

/** Which side of the sidecar an HTTP connection manager serves (Istio's listener classes). */
export type HttpDirection = "outbound" | "inbound" | "gateway";

/**
 * Istio's defaults for every connection manager: WebSocket upgrades allowed, no stream idle
 * timeout (idle long polls, SSE and gRPC streams are not cut), `Expect: 100-continue` passed
 * to the app, a UUID request id. Inbound and gateway answer as `istio-envoy` (Istio's outbound
 * keeps Envoy's `envoy`). Inbound with mTLS appends the caller's certificate to
 * x-forwarded-client-cert (Subject, URI, DNS), as Istio's APPEND_FORWARD.
 */
export function buildHttpConnectionManager(
  statPrefix: string,
  routes: { rds: string } | { inline: RouteConfiguration },
  opts: { direction?: HttpDirection; forwardClientCert?: boolean; authFilters?: HttpFilter[]; telemetry?: ListenerTelemetry } = {},
): Filter {
  const direction = opts.direction ?? "outbound";
  return {
    name: "envoy.filters.network.http_connection_manager",
    typedConfig: packAny(EXTENSION_TYPES.httpConnectionManager, {
      statPrefix,
      ...("rds" in routes ? { rds: { routeConfigName: routes.rds, configSource: MESH_CONFIG_SOURCE } } : { routeConfig: routes.inline }),
      httpFilters: [
        // Authentication (jwt_authn) and authorization (RBAC DENY, then ALLOW) come first.
        ...(opts.authFilters ?? []),
        { name: FAULT_FILTER, typedConfig: packAny(EXTENSION_TYPES.fault, {}) },
        { name: CORS_FILTER, typedConfig: packAny(EXTENSION_TYPES.cors, {}) },
        { name: "envoy.filters.http.router", typedConfig: packAny(EXTENSION_TYPES.router, {}) },
      ],
      normalizePath: true,
      upgradeConfigs: [{ upgradeType: "websocket" }],
      streamIdleTimeout: { seconds: 0, nanos: 0 },
      proxy100Continue: true,
      requestIdExtension: { typedConfig: packAny(EXTENSION_TYPES.uuidRequestId, {}) },
      ...(direction !== "outbound" ? { serverName: ISTIO_SERVER_NAME } : {}),
      // Telemetry (access-log.ts, tracing.ts): only where a Telemetry or the mesh defaults ask for it.
      ...(opts.telemetry?.accessLog?.length ? { accessLog: opts.telemetry.accessLog } : {}),
      ...(opts.telemetry?.tracing ? { tracing: opts.telemetry.tracing } : {}),
      // Inbound with mTLS: the app sees the caller's identity in x-forwarded-client-cert.
      ...(opts.forwardClientCert
        ? { forwardClientCertDetails: HttpConnectionManager_ForwardClientCertDetails.APPEND_FORWARD, setCurrentClientCertDetails: { subject: true, uri: true, dns: true } }
        : {}),
    }),
  };
}

/** The `server` header inbound and gateway listeners answer with (Istio's). */
export const ISTIO_SERVER_NAME = "istio-envoy";

/** What a listener side logs and traces (built by access-log.ts and tracing.ts from the Telemetry plan). */
export interface ListenerTelemetry {
  accessLog?: AccessLog[];
  tracing?: HttpConnectionManager_Tracing;
}

export function buildTcpProxy(statPrefix: string, target: { cluster: string } | { weighted: { name: string; weight: number }[] }, accessLog?: AccessLog[]): Filter {
  return {
    name: "envoy.filters.network.tcp_proxy",
    typedConfig: packAny(EXTENSION_TYPES.tcpProxy, {
      statPrefix,
      ...(accessLog?.length ? { accessLog } : {}),
      ...("cluster" in target ? { cluster: target.cluster } : { weightedClusters: { clusters: target.weighted } }),
    }),
  };
}
