// Port protocols as Istio reads them, and what Weft serves each as. Istio parses a protocol
// case-insensitively ("tcp", "Http", "HTTPS"); an empty protocol means "detect" (sniffing). The
// same names are read from a port name's prefix ("http-web") and from Kubernetes' appProtocol.
import type { Protocol } from "./types.js";

/** The protocols Istio accepts (its spelling), and what Weft's proxies treat them as ("skip": not proxied). */
const ISTIO_PROTOCOLS: Readonly<Record<string, { name: string; served: Protocol | "skip" }>> = {
  http: { name: "HTTP", served: "HTTP" },
  https: { name: "HTTPS", served: "HTTPS" },
  http2: { name: "HTTP2", served: "HTTP2" },
  grpc: { name: "GRPC", served: "GRPC" },
  "grpc-web": { name: "GRPC-Web", served: "HTTP2" }, // Istio serves grpc-web as HTTP/2 on sidecars
  http_proxy: { name: "HTTP_PROXY", served: "HTTP" },
  tcp: { name: "TCP", served: "TCP" },
  tls: { name: "TLS", served: "TLS" },
  mongo: { name: "Mongo", served: "MONGO" },
  // Istio treats these as opaque TCP unless its experimental filters are turned on.
  redis: { name: "Redis", served: "TCP" },
  mysql: { name: "MySQL", served: "TCP" },
  // Istio accepts UDP ports and does not proxy them (its proxies carry TCP only).
  udp: { name: "UDP", served: "skip" },
};

/** The protocol names Istio accepts, for messages. */
export const PROTOCOL_NAMES: readonly string[] = Object.values(ISTIO_PROTOCOLS).map((p) => p.name);

/** Whether Istio accepts `text` as a protocol (any case). */
export function isKnownProtocol(text: string): boolean {
  return Object.hasOwn(ISTIO_PROTOCOLS, text.toLowerCase());
}

/** What Weft serves a declared protocol as: a Protocol, "skip" (UDP: not proxied), or undefined (unknown or empty: detect). */
export function servedProtocol(text: string | undefined): Protocol | "skip" | undefined {
  if (!text) return undefined;
  const known = ISTIO_PROTOCOLS[text.toLowerCase()];
  return Object.hasOwn(ISTIO_PROTOCOLS, text.toLowerCase()) ? known!.served : undefined;
}

/**
 * What a Sidecar listener's port (ingress or egress) serves: its declared protocol, or TCP when it
 * declares none, an unknown one or UDP (Istio builds plain TCP listeners for those).
 */
export function sidecarListenerProtocol(text: string | undefined): Protocol {
  const served = servedProtocol(text);
  return served === undefined || served === "skip" ? "TCP" : served;
}

/** The protocol a port name declares by its prefix ("http-web", "grpc-web-x", "TCP"), as served; undefined when none. */
export function protocolFromPortName(name: string | undefined): Protocol | "skip" | undefined {
  if (!name) return undefined;
  const lower = name.toLowerCase();
  // "grpc-web" contains the separator itself: look for it before splitting at the first "-".
  if (lower === "grpc-web" || lower.startsWith("grpc-web-")) return servedProtocol("grpc-web");
  const dash = lower.indexOf("-");
  return servedProtocol(dash >= 0 ? lower.slice(0, dash) : lower);
}
