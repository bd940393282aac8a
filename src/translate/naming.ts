// Names of generated Envoy resources, following Istio's conventions so Istio users can read
// a config dump: clusters "outbound|port|subset|host" and "inbound|port||".
export const PASSTHROUGH_CLUSTER = "PassthroughCluster";
export const BLACKHOLE_CLUSTER = "BlackHoleCluster";
export const INBOUND_PASSTHROUGH_CLUSTER = "InboundPassthroughCluster";
export const VIRTUAL_OUTBOUND_LISTENER = "virtualOutbound";
export const VIRTUAL_INBOUND_LISTENER = "virtualInbound";
export const EXPLICIT_OUTBOUND_LISTENER = "explicitOutbound";
export const EXPLICIT_OUTBOUND_ROUTE = "explicit-outbound";

/** Ports of the sidecar's own listeners (the capture rules must exclude them). */
export const SIDECAR_PORTS = { outbound: 15001, inbound: 15006, explicitHttp: 15080 } as const;

export function outboundClusterName(port: number, subset: string, host: string): string {
  return `outbound|${port}|${subset}|${host}`;
}

/**
 * The outbound cluster's alt_stat_name: its name with a closing "|", so the stat tag rules
 * (src/envoy/proxy-stats.ts) find where a host with dots ends in `cluster.<name>|.<stat>`.
 * Envoy's %UPSTREAM_CLUSTER% in access logs prints this name; %UPSTREAM_CLUSTER_RAW% the cluster's.
 */
export function outboundClusterStatName(clusterName: string): string {
  return `${clusterName}|`;
}

export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

/**
 * The inbound cluster's alt_stat_name: `inbound|<port>||<service host>|`, so a server's stats say
 * which service was called (Istio's destination_service; Istio's own inbound names carried the
 * host before 1.10). A port shared by several services is named after the first.
 */
export function inboundClusterStatName(port: number, host: string): string {
  return `inbound|${port}||${host}|`;
}

export function outboundRouteName(port: number): string {
  return String(port);
}

export function gatewayRouteName(port: number): string {
  return `http.${port}`;
}
