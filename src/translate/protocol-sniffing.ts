// Protocol detection, Istio's way, on the sidecar's two capture listeners: ports whose
// protocol is not declared (AUTO) are sniffed — the HTTP inspector reads the first bytes and
// HTTP/1.1 or h2c goes to the HTTP connection manager, anything else to TCP proxying — and
// on declared HTTP ports only HTTP goes to the connection manager (raw TCP or TLS sent to
// such a port passes through instead of breaking). Inspectors run only on the ports that
// need them, and listener filters never time out (Istio's protocolDetectionTimeout 0), so a
// server-first protocol on a port without inspection is not delayed or cut.
import type { ListenerFilter } from "../../generated/envoy/config/listener/v3/listener_components.js";
import type { FilterChainMatch } from "../../generated/envoy/config/listener/v3/listener_components.js";
import type { Listener } from "../../generated/envoy/config/listener/v3/listener.js";
import type { PortProtocol } from "../model/mesh-model.js";
import { packAny } from "../envoy/any.js";
import { EXTENSION_TYPES } from "../envoy/type-urls.js";
import { isHttpProtocol } from "./clusters.js";

/** Ports that carry HTTP: declared HTTP/HTTP2/GRPC, or undeclared (sniffed). */
export function carriesHttp(protocol: PortProtocol): boolean {
  return protocol === "AUTO" || isHttpProtocol(protocol);
}

/** Plaintext HTTP as the HTTP inspector reports it (Istio's plaintextHTTPALPNs without HTTP/1.0). */
export const PLAINTEXT_HTTP_MATCH: Pick<FilterChainMatch, "transportProtocol" | "applicationProtocols"> = {
  transportProtocol: "raw_buffer",
  applicationProtocols: ["http/1.1", "h2c"],
};

/** ALPN of mesh mTLS carrying HTTP (what client sidecars offer, see mtls.ts). */
export const MESH_HTTP_ALPNS = ["istio-http/1.0", "istio-http/1.1", "istio-h2"];
/** ALPN of mesh mTLS carrying TCP. */
export const MESH_TCP_ALPNS = ["istio-peer-exchange", "istio"];
/** Any mesh mTLS. */
export const ALL_MESH_ALPNS = ["istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"];

/** A listener filter that runs only for connections to `ports` (none: undefined, leave it out). */
function onPorts(name: string, typedConfig: ListenerFilter["typedConfig"], ports: Iterable<number>): ListenerFilter | undefined {
  const sorted = [...new Set(ports)].sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const rules = sorted.map((p) => ({ destinationPortRange: { start: p, end: p + 1 } }));
  return { name, typedConfig, filterDisabled: { notMatch: rules.length === 1 ? rules[0]! : { orMatch: { rules } } } };
}

/**
 * Listener filters of a capture listener: original_dst first, then the TLS inspector on
 * `tlsPorts` and the HTTP inspector on `httpPorts`; no listener-filter timeout.
 */
export function captureListenerFilters(opts: { tlsPorts: Iterable<number>; httpPorts: Iterable<number> }): Pick<Listener, "listenerFilters" | "listenerFiltersTimeout" | "continueOnListenerFiltersTimeout"> {
  return inspectorFilters([{ name: "envoy.filters.listener.original_dst", typedConfig: packAny(EXTENSION_TYPES.originalDst, {}) }], opts);
}

/** Listener filters of a listener bound to its own port (nothing to restore): the inspectors only. */
export function boundListenerFilters(opts: { tlsPorts: Iterable<number>; httpPorts: Iterable<number> }): Pick<Listener, "listenerFilters" | "listenerFiltersTimeout" | "continueOnListenerFiltersTimeout"> {
  return inspectorFilters([], opts);
}

function inspectorFilters(filters: ListenerFilter[], opts: { tlsPorts: Iterable<number>; httpPorts: Iterable<number> }): Pick<Listener, "listenerFilters" | "listenerFiltersTimeout" | "continueOnListenerFiltersTimeout"> {
  const tls = onPorts("envoy.filters.listener.tls_inspector", packAny(EXTENSION_TYPES.tlsInspector, {}), opts.tlsPorts);
  const http = onPorts("envoy.filters.listener.http_inspector", packAny(EXTENSION_TYPES.httpInspector, {}), opts.httpPorts);
  if (tls) filters.push(tls);
  if (http) filters.push(http);
  return { listenerFilters: filters, listenerFiltersTimeout: { seconds: 0, nanos: 0 }, continueOnListenerFiltersTimeout: true };
}
