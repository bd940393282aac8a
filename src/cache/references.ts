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
import { runToEnd, type Steps } from "../work/work-steps.js";

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

/** What a set of resources references: every EDS name, and what it leaves to other sets. */
export interface CollectedReferences {
  /** Every EDS name fetched over ADS by the set's clusters (streams subscribe to these). */
  endpoints: Reference[];
  /** The references the set does not satisfy itself, by kind (checked when sets are composed). */
  external: SnapshotReferences;
}

type Input = { [U in XdsTypeUrl]?: readonly XdsResourceTypes[U][] };

/** Names of the set's own resources, by the kind a reference points at. */
export interface OwnNames {
  endpoints: ReadonlySet<string> | ReadonlyMap<string, unknown> | undefined;
  routes: ReadonlySet<string> | ReadonlyMap<string, unknown> | undefined;
  secrets: ReadonlySet<string> | ReadonlyMap<string, unknown> | undefined;
  clusters: ReadonlySet<string> | ReadonlyMap<string, unknown> | undefined;
}

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

/** Resources (clusters, listeners, virtual hosts) looked at between two steps. */
const RESOURCES_PER_STEP = 500;

/**
 * The references of a set of resources, in steps (one per RESOURCES_PER_STEP resources): a
 * sidecar's outbound part of a large mesh holds tens of thousands of clusters and route
 * configurations of thousands of virtual hosts, whose routes name a cluster each. Only the
 * references to names outside `own` are kept as objects (with their message), so a set that
 * satisfies itself costs no allocation per route.
 */
export function* collectReferencesSteps(input: Input, own: OwnNames): Steps<CollectedReferences> {
  const endpoints: Reference[] = [];
  const external: SnapshotReferences = { endpoints: [], routes: [], secrets: [], clusters: [] };
  const outside = (kind: keyof OwnNames, name: string): boolean => !own[kind]?.has(name);
  let n = 0;
  for (const c of (input[XDS_TYPES.cluster] ?? []) as readonly Cluster[]) {
    const from = `cluster/${c.name}`;
    if (c.type === Cluster_DiscoveryType.EDS && isAdsSourced(c.edsClusterConfig?.edsConfig)) {
      const ref = { from, name: c.edsClusterConfig?.serviceName || c.name!, what: "EDS resource" };
      endpoints.push(ref);
      if (outside("endpoints", ref.name)) external.endpoints.push(ref);
    }
    if (c.transportSocket) for (const name of secretsOfTransportSocket(c.transportSocket.typedConfig)) if (outside("secrets", name)) external.secrets.push({ from, name, what: "SDS secret" });
    if (++n % RESOURCES_PER_STEP === 0) yield;
  }
  for (const l of (input[XDS_TYPES.listener] ?? []) as readonly Listener[]) {
    const from = `listener/${l.name}`;
    for (const chain of [...(l.filterChains ?? []), ...(l.defaultFilterChain ? [l.defaultFilterChain] : [])]) {
      for (const name of secretsOfTransportSocket(chain.transportSocket?.typedConfig)) if (outside("secrets", name)) external.secrets.push({ from, name, what: "SDS secret" });
      for (const filter of chain.filters ?? []) {
        const hcm = unpackAny(EXTENSION_TYPES.httpConnectionManager, filter.typedConfig);
        if (hcm?.rds && isAdsSourced(hcm.rds.configSource)) {
          const name = hcm.rds.routeConfigName ?? "";
          if (outside("routes", name)) external.routes.push({ from, name, what: "RDS route configuration" });
        }
        const tcp = unpackAny(EXTENSION_TYPES.tcpProxy, filter.typedConfig);
        for (const name of [tcp?.cluster, ...(tcp?.weightedClusters?.clusters ?? []).map((w) => w.name)]) {
          if (name && outside("clusters", name)) external.clusters.push({ from, name, what: "TCP proxy cluster" });
        }
      }
      if (++n % RESOURCES_PER_STEP === 0) yield;
    }
  }
  for (const rc of (input[XDS_TYPES.route] ?? []) as readonly RouteConfiguration[]) {
    for (const vh of rc.virtualHosts ?? []) {
      for (const r of vh.routes ?? []) {
        const route = r.route;
        if (!route) continue;
        if (route.cluster && outside("clusters", route.cluster)) external.clusters.push({ from: `route/${rc.name}`, name: route.cluster, what: `virtual host "${vh.name}" routes to cluster` });
        for (const w of route.weightedClusters?.clusters ?? []) {
          if (w.name && outside("clusters", w.name)) external.clusters.push({ from: `route/${rc.name}`, name: w.name, what: `virtual host "${vh.name}" routes to cluster` });
        }
      }
      if (++n % RESOURCES_PER_STEP === 0) yield;
    }
  }
  return { endpoints, external };
}

/** collectReferencesSteps at once. */
export function collectReferences(input: Input, own: OwnNames): CollectedReferences {
  return runToEnd(collectReferencesSteps(input, own));
}
