// Small typed builders for the Envoy resources Weft emits most; translators compose them.
import { Cluster, Cluster_DiscoveryType } from "../../generated/envoy/config/cluster/v3/cluster.js";
import { SocketAddress_Protocol } from "../../generated/envoy/config/core/v3/address.js";
import type { ConfigSource } from "../../generated/envoy/config/core/v3/config_source.js";
import { ApiVersion } from "../../generated/envoy/config/core/v3/config_source.js";
import type { ClusterLoadAssignment } from "../../generated/envoy/config/endpoint/v3/endpoint.js";
import type { Listener } from "../../generated/envoy/config/listener/v3/listener.js";
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import { packAny } from "./any.js";
import { EXTENSION_TYPES } from "./type-urls.js";

/** Resources that reference others fetch them over the same ADS stream. */
export const ADS_CONFIG_SOURCE: ConfigSource = { ads: {}, resourceApiVersion: ApiVersion.V3 };

export function durationMs(ms: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

export function socketAddress(address: string, port: number) {
  return { socketAddress: { address, portValue: port, protocol: SocketAddress_Protocol.TCP } };
}

/** An HTTP listener whose routes come from RDS over ADS. */
export function buildHttpListener(opts: { name: string; address: string; port: number; routeConfigName: string }): Listener {
  return {
    name: opts.name,
    address: socketAddress(opts.address, opts.port),
    filterChains: [
      {
        filters: [
          {
            name: "envoy.filters.network.http_connection_manager",
            typedConfig: packAny(EXTENSION_TYPES.httpConnectionManager, {
              statPrefix: opts.name,
              rds: { routeConfigName: opts.routeConfigName, configSource: ADS_CONFIG_SOURCE },
              httpFilters: [{ name: "envoy.filters.http.router", typedConfig: packAny(EXTENSION_TYPES.router, {}) }],
            }),
          },
        ],
      },
    ],
  };
}

/** A cluster whose endpoints come from EDS over ADS. */
export function buildEdsCluster(opts: { name: string; connectTimeoutMs?: number }): Cluster {
  return {
    name: opts.name,
    type: Cluster_DiscoveryType.EDS,
    edsClusterConfig: { edsConfig: ADS_CONFIG_SOURCE },
    connectTimeout: durationMs(opts.connectTimeoutMs ?? 1000),
  };
}

export function buildLoadAssignment(clusterName: string, endpoints: readonly { address: string; port: number }[]): ClusterLoadAssignment {
  return {
    clusterName,
    endpoints: [{ lbEndpoints: endpoints.map((e) => ({ endpoint: { address: socketAddress(e.address, e.port) } })) }],
  };
}

/** A route configuration with one virtual host matching every domain, routing by path prefix. */
export function buildPrefixRoutes(name: string, routes: readonly { prefix: string; cluster: string }[]): RouteConfiguration {
  return {
    name,
    virtualHosts: [
      {
        name: `${name}-all`,
        domains: ["*"],
        routes: routes.map((r) => ({ match: { prefix: r.prefix }, route: { cluster: r.cluster } })),
      },
    ],
  };
}
