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

export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

export function outboundRouteName(port: number): string {
  return String(port);
}

export function gatewayRouteName(port: number): string {
  return `http.${port}`;
}
