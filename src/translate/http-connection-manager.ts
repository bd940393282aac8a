// The HTTP connection manager every HTTP filter chain uses: fault and CORS filters (configured
// per route) before the router; routes from RDS or inline.
import type { Filter } from "../../generated/envoy/config/listener/v3/listener_components.js";
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import type { HttpFilter } from "../../generated/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js";
import { packAny } from "../envoy/any.js";
import { ADS_CONFIG_SOURCE } from "../envoy/builders.js";
import { EXTENSION_TYPES } from "../envoy/type-urls.js";
import { CORS_FILTER, FAULT_FILTER } from "./http-routes.js";
import { HttpConnectionManager_ForwardClientCertDetails } from "../../generated/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js";

export function buildHttpConnectionManager(
  statPrefix: string,
  routes: { rds: string } | { inline: RouteConfiguration },
  opts: { forwardClientCert?: boolean; authFilters?: HttpFilter[] } = {},
): Filter {
  return {
    name: "envoy.filters.network.http_connection_manager",
    typedConfig: packAny(EXTENSION_TYPES.httpConnectionManager, {
      statPrefix,
      ...("rds" in routes ? { rds: { routeConfigName: routes.rds, configSource: ADS_CONFIG_SOURCE } } : { routeConfig: routes.inline }),
      httpFilters: [
        // Authentication (jwt_authn) and authorization (RBAC DENY, then ALLOW) come first.
        ...(opts.authFilters ?? []),
        { name: FAULT_FILTER, typedConfig: packAny(EXTENSION_TYPES.fault, {}) },
        { name: CORS_FILTER, typedConfig: packAny(EXTENSION_TYPES.cors, {}) },
        { name: "envoy.filters.http.router", typedConfig: packAny(EXTENSION_TYPES.router, {}) },
      ],
      normalizePath: true,
      // Inbound with mTLS: the app sees the caller's SPIFFE ID in x-forwarded-client-cert.
      ...(opts.forwardClientCert
        ? { forwardClientCertDetails: HttpConnectionManager_ForwardClientCertDetails.SANITIZE_SET, setCurrentClientCertDetails: { uri: true } }
        : {}),
    }),
  };
}

export function buildTcpProxy(statPrefix: string, target: { cluster: string } | { weighted: { name: string; weight: number }[] }): Filter {
  return {
    name: "envoy.filters.network.tcp_proxy",
    typedConfig: packAny(EXTENSION_TYPES.tcpProxy, {
      statPrefix,
      ...("cluster" in target ? { cluster: target.cluster } : { weightedClusters: { clusters: target.weighted } }),
    }),
  };
}
