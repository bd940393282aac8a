// EnvoyFilter (networking.istio.io/v1alpha3): patches to the Envoy configuration Weft
// generates, written as in Istio. Shapes from Istio's public reference docs.
import type { ObjectMeta } from "./types.js";

export const PATCH_CONTEXTS = ["ANY", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", "GATEWAY"] as const;
export type PatchContext = (typeof PATCH_CONTEXTS)[number];

export const APPLY_TO = [
  "LISTENER",
  "FILTER_CHAIN",
  "NETWORK_FILTER",
  "HTTP_FILTER",
  "ROUTE_CONFIGURATION",
  "VIRTUAL_HOST",
  "HTTP_ROUTE",
  "CLUSTER",
  "EXTENSION_CONFIG",
  "BOOTSTRAP",
  "LISTENER_FILTER",
] as const;
export type ApplyTo = (typeof APPLY_TO)[number];

export const PATCH_OPERATIONS = ["MERGE", "ADD", "REMOVE", "INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST", "REPLACE"] as const;
export type PatchOperation = (typeof PATCH_OPERATIONS)[number];

export const FILTER_CLASSES = ["UNSPECIFIED", "AUTHN", "AUTHZ", "STATS"] as const;
export const ROUTE_ACTIONS = ["ANY", "ROUTE", "REDIRECT", "DIRECT_RESPONSE"] as const;

/** The Envoy message each applyTo's patch value is (what `value` is read as). */
export const PATCH_VALUE_TYPES: Record<ApplyTo, string> = {
  LISTENER: "envoy.config.listener.v3.Listener",
  FILTER_CHAIN: "envoy.config.listener.v3.FilterChain",
  NETWORK_FILTER: "envoy.config.listener.v3.Filter",
  HTTP_FILTER: "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
  ROUTE_CONFIGURATION: "envoy.config.route.v3.RouteConfiguration",
  VIRTUAL_HOST: "envoy.config.route.v3.VirtualHost",
  HTTP_ROUTE: "envoy.config.route.v3.Route",
  CLUSTER: "envoy.config.cluster.v3.Cluster",
  EXTENSION_CONFIG: "envoy.config.core.v3.TypedExtensionConfig",
  BOOTSTRAP: "envoy.config.bootstrap.v3.Bootstrap",
  LISTENER_FILTER: "envoy.config.listener.v3.ListenerFilter",
};

/**
 * The operations Weft applies for each applyTo (Istio's). Istio accepts the others and ignores
 * them; Weft does the same and says so in a warning.
 */
export const OPERATIONS_APPLIED: Record<ApplyTo, readonly PatchOperation[]> = {
  LISTENER: ["ADD", "REMOVE", "MERGE"],
  FILTER_CHAIN: ["ADD", "REMOVE", "MERGE"],
  NETWORK_FILTER: ["ADD", "REMOVE", "MERGE", "INSERT_FIRST", "INSERT_BEFORE", "INSERT_AFTER", "REPLACE"],
  HTTP_FILTER: ["ADD", "REMOVE", "MERGE", "INSERT_FIRST", "INSERT_BEFORE", "INSERT_AFTER", "REPLACE"],
  ROUTE_CONFIGURATION: ["MERGE"],
  VIRTUAL_HOST: ["ADD", "REMOVE", "MERGE"],
  HTTP_ROUTE: ["MERGE", "REMOVE", "INSERT_FIRST", "INSERT_BEFORE", "INSERT_AFTER"],
  CLUSTER: ["ADD", "REMOVE", "MERGE"],
  EXTENSION_CONFIG: [],
  BOOTSTRAP: [],
  LISTENER_FILTER: ["ADD", "REMOVE", "INSERT_FIRST", "INSERT_BEFORE", "INSERT_AFTER", "REPLACE"],
};

export interface FilterMatch {
  name?: string;
  subFilter?: { name?: string };
}

export interface FilterChainMatch {
  name?: string;
  sni?: string;
  transportProtocol?: string;
  /** Comma-separated, as in Istio: "h2,http/1.1". */
  applicationProtocols?: string;
  filter?: FilterMatch;
  destinationPort?: number;
}

export interface ListenerMatch {
  portNumber?: number;
  filterChain?: FilterChainMatch;
  listenerFilter?: string;
  name?: string;
}

export interface RouteConfigurationMatch {
  portNumber?: number;
  portName?: string;
  gateway?: string;
  name?: string;
  vhost?: { name?: string; domainName?: string; route?: { name?: string; action?: (typeof ROUTE_ACTIONS)[number] } };
}

export interface ClusterMatch {
  portNumber?: number;
  service?: string;
  subset?: string;
  name?: string;
}

export interface EnvoyConfigObjectMatch {
  context?: PatchContext;
  proxy?: { proxyVersion?: string; metadata?: Record<string, string> };
  listener?: ListenerMatch;
  routeConfiguration?: RouteConfigurationMatch;
  cluster?: ClusterMatch;
}

export interface EnvoyConfigObjectPatch {
  applyTo: ApplyTo;
  match?: EnvoyConfigObjectMatch;
  patch: {
    operation: PatchOperation;
    /** Envoy configuration as protobuf JSON (with "@type" in every Any): the message applyTo names. */
    value?: Record<string, unknown>;
    filterClass?: (typeof FILTER_CLASSES)[number];
  };
}

export interface EnvoyFilterSpec {
  workloadSelector?: { labels?: Record<string, string> };
  targetRefs?: { group?: string; kind: string; name: string; namespace?: string }[];
  configPatches?: EnvoyConfigObjectPatch[];
  priority?: number;
}

export type EnvoyFilter = {
  apiVersion: string;
  kind: "EnvoyFilter";
  metadata: ObjectMeta;
  spec: EnvoyFilterSpec;
};
