// A Kubernetes Service port's protocol as Istio reads it: `appProtocol` first, then the port
// name's prefix (`<protocol>[-<suffix>]`, case-insensitive). UDP and SCTP ports are not
// proxied and are left out. Undetermined ports return undefined: the model then treats them
// as it treats a ServiceEntry port without a protocol.
import type { Protocol } from "../../api/types.js";

/** Protocol names Istio accepts in a port name or appProtocol, and what Weft serves them as. */
const NAMED_PROTOCOLS: Readonly<Record<string, Protocol>> = {
  http: "HTTP",
  http_proxy: "HTTP",
  http2: "HTTP2",
  https: "HTTPS",
  grpc: "GRPC",
  "grpc-web": "HTTP2", // Istio serves grpc-web as http2 on sidecars
  tcp: "TCP",
  tls: "TLS",
  mongo: "MONGO",
  // Istio treats these as opaque TCP unless its experimental filters are turned on.
  mysql: "TCP",
  redis: "TCP",
};

/** Kubernetes' own appProtocol values (KEP-3726). */
const KUBERNETES_APP_PROTOCOLS: Readonly<Record<string, Protocol>> = {
  "kubernetes.io/h2c": "HTTP2",
  "kubernetes.io/ws": "HTTP",
  "kubernetes.io/wss": "HTTPS",
};

function fromName(text: string): Protocol | undefined {
  const lower = text.toLowerCase();
  // "grpc-web" contains the separator itself: look for it before splitting at the first "-".
  if (lower === "grpc-web" || lower.startsWith("grpc-web-")) return NAMED_PROTOCOLS["grpc-web"];
  const dash = lower.indexOf("-");
  return NAMED_PROTOCOLS[dash >= 0 ? lower.slice(0, dash) : lower];
}

/**
 * The protocol of one Service port: "skip" for UDP/SCTP (not proxied), a Protocol when
 * appProtocol or the name declares one, undefined when neither does.
 */
export function servicePortProtocol(port: { name?: string; protocol?: string; appProtocol?: string }): Protocol | "skip" | undefined {
  const transport = (port.protocol ?? "TCP").toUpperCase();
  if (transport !== "TCP") return "skip";
  if (port.appProtocol) {
    const app = KUBERNETES_APP_PROTOCOLS[port.appProtocol.toLowerCase()] ?? NAMED_PROTOCOLS[port.appProtocol.toLowerCase()];
    if (app) return app;
  }
  return port.name ? fromName(port.name) : undefined;
}
