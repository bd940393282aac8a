// A Kubernetes Service port's protocol as Istio reads it: `appProtocol` first, then the port
// name's prefix (`<protocol>[-<suffix>]`, case-insensitive). UDP and SCTP ports are not
// proxied and are left out. Undetermined ports return undefined: the model then treats them
// as it treats a ServiceEntry port without a protocol.
import { protocolFromPortName, servedProtocol } from "../../api/port-protocols.js";
import type { Protocol } from "../../api/types.js";

/** Kubernetes' own appProtocol values (KEP-3726). */
const KUBERNETES_APP_PROTOCOLS: Readonly<Record<string, Protocol>> = {
  "kubernetes.io/h2c": "HTTP2",
  "kubernetes.io/ws": "HTTP",
  "kubernetes.io/wss": "HTTPS",
};

/**
 * The protocol of one Service port: "skip" for UDP/SCTP (not proxied), a Protocol when
 * appProtocol or the name declares one, undefined when neither does.
 */
export function servicePortProtocol(port: { name?: string; protocol?: string; appProtocol?: string }): Protocol | "skip" | undefined {
  const transport = (port.protocol ?? "TCP").toUpperCase();
  if (transport !== "TCP") return "skip";
  if (port.appProtocol) {
    const lower = port.appProtocol.toLowerCase();
    const app = Object.hasOwn(KUBERNETES_APP_PROTOCOLS, lower) ? KUBERNETES_APP_PROTOCOLS[lower] : servedProtocol(port.appProtocol);
    if (app && app !== "skip") return app;
  }
  const named = protocolFromPortName(port.name);
  return named === "skip" ? undefined : named;
}
