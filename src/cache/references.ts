// Which resources a snapshot's resources point at: EDS names of clusters, RDS names of
// listeners, SDS names of both, clusters named by routes and TCP proxies. Used by the
// consistency check and by streams to know which subscriptions a proxy is about to make.
import type { Cluster } from "../../generated/envoy/config/cluster/v3/cluster.js";
import { Cluster_DiscoveryType } from "../../generated/envoy/config/cluster/v3/cluster.js";
import type { Listener } from "../../generated/envoy/config/listener/v3/listener.js";
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import type { Any } from "../../generated/google/protobuf/any.js";
import type { SdsSecretConfig } from "../../generated/envoy/extensions/transport_sockets/tls/v3/secret.js";
import type { CommonTlsContext } from "../../generated/envoy/extensions/transport_sockets/tls/v3/tls.js";
import { unpackAny } from "../envoy/any.js";
import { EXTENSION_TYPES, XDS_TYPES, type XdsResourceTypes, type XdsTypeUrl } from "../envoy/type-urls.js";

/** A reference from one resource ("cluster/a") to another resource's name. */
export interface Reference {
  from: string;
  name: string;
  /** How the reference reads in an error message. */
  what: string;
}

export interface SnapshotReferences {
  /** EDS names fetched over ADS by EDS clusters. */
  endpoints: Reference[];
  /** RDS names fetched over ADS by HTTP connection managers. */
  routes: Reference[];
  /** SDS names fetched over ADS by TLS transport sockets. */
  secrets: Reference[];
  /** Clusters named by routes and TCP proxies. */
  clusters: Reference[];
}

type Input = { [U in XdsTypeUrl]?: readonly XdsResourceTypes[U][] };

function isAdsSourced(config: { ads?: object } | undefined): boolean {
  return config?.ads !== undefined;
}

function sdsNames(common: CommonTlsContext | undefined): string[] {
  if (!common) return [];
  const configs: (SdsSecretConfig | undefined)[] = [
    ...(common.tlsCertificateSdsSecretConfigs ?? []),
    common.validationContextSdsSecretConfig,
    common.combinedValidationContext?.validationContextSdsSecretConfig,
  ];
  return configs.filter((c): c is SdsSecretConfig => !!c?.name && isAdsSourced(c.sdsConfig)).map((c) => c.name!);
}

function secretsOfTransportSocket(typedConfig: Any | undefined): string[] {
  const upstream = unpackAny(EXTENSION_TYPES.upstreamTlsContext, typedConfig);
  if (upstream) return sdsNames(upstream.commonTlsContext);
  const downstream = unpackAny(EXTENSION_TYPES.downstreamTlsContext, typedConfig);
  if (downstream) return sdsNames(downstream.commonTlsContext);
  return [];
}

export function collectReferences(input: Input): SnapshotReferences {
  const refs: SnapshotReferences = { endpoints: [], routes: [], secrets: [], clusters: [] };
  for (const c of (input[XDS_TYPES.cluster] ?? []) as readonly Cluster[]) {
    const from = `cluster/${c.name}`;
    if (c.type === Cluster_DiscoveryType.EDS && isAdsSourced(c.edsClusterConfig?.edsConfig)) {
      refs.endpoints.push({ from, name: c.edsClusterConfig?.serviceName || c.name!, what: "EDS resource" });
    }
    for (const name of secretsOfTransportSocket(c.transportSocket?.typedConfig)) refs.secrets.push({ from, name, what: "SDS secret" });
  }
  for (const l of (input[XDS_TYPES.listener] ?? []) as readonly Listener[]) {
    const from = `listener/${l.name}`;
    for (const chain of [...(l.filterChains ?? []), ...(l.defaultFilterChain ? [l.defaultFilterChain] : [])]) {
      for (const name of secretsOfTransportSocket(chain.transportSocket?.typedConfig)) refs.secrets.push({ from, name, what: "SDS secret" });
      for (const filter of chain.filters ?? []) {
        const hcm = unpackAny(EXTENSION_TYPES.httpConnectionManager, filter.typedConfig);
        if (hcm?.rds && isAdsSourced(hcm.rds.configSource)) {
          refs.routes.push({ from, name: hcm.rds.routeConfigName ?? "", what: "RDS route configuration" });
        }
        const tcp = unpackAny(EXTENSION_TYPES.tcpProxy, filter.typedConfig);
        for (const name of [tcp?.cluster, ...(tcp?.weightedClusters?.clusters ?? []).map((w) => w.name)]) {
          if (name) refs.clusters.push({ from, name, what: "TCP proxy cluster" });
        }
      }
    }
  }
  for (const rc of (input[XDS_TYPES.route] ?? []) as readonly RouteConfiguration[]) {
    for (const vh of rc.virtualHosts ?? []) {
      for (const r of vh.routes ?? []) {
        for (const name of [r.route?.cluster, ...(r.route?.weightedClusters?.clusters ?? []).map((w) => w.name)]) {
          if (name) refs.clusters.push({ from: `route/${rc.name}`, name, what: `virtual host "${vh.name}" routes to cluster` });
        }
      }
    }
  }
  return refs;
}
