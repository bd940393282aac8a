// TLS a proxy terminates with certificate files from Istio's ServerTLSSettings: Gateway servers
// and Sidecar ingress listeners (SIMPLE, MUTUAL; OPTIONAL_MUTUAL verifies a client certificate
// when one is sent).
import type { TransportSocket } from "../../generated/envoy/config/core/v3/base.js";
import type { ServerTLSSettings } from "../api/types.js";
import { packAny } from "../envoy/any.js";
import { EXTENSION_TYPES } from "../envoy/type-urls.js";

export function serverTlsSocket(tls: ServerTLSSettings): TransportSocket {
  const verifies = (tls.mode === "MUTUAL" || tls.mode === "OPTIONAL_MUTUAL") && tls.caCertificates;
  return {
    name: "envoy.transport_sockets.tls",
    typedConfig: packAny(EXTENSION_TYPES.downstreamTlsContext, {
      commonTlsContext: {
        tlsCertificates: [{ certificateChain: { filename: tls.serverCertificate ?? "" }, privateKey: { filename: tls.privateKey ?? "" } }],
        ...(verifies ? { validationContext: { trustedCa: { filename: tls.caCertificates! } } } : {}),
      },
      ...(tls.mode === "MUTUAL" ? { requireClientCertificate: true } : {}),
    }),
  };
}
