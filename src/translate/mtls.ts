// Mutual TLS between sidecars: certificates and the trust bundle come over SDS ("default" and
// "ROOTCA", Istio's names); servers require a client certificate from the mesh's trust domain;
// clients verify the server's SPIFFE ID and use TLS only towards endpoints that have a sidecar
// (endpoint metadata tlsMode=istio, Istio's auto mTLS), unless a DestinationRule says otherwise.
import type { Secret } from "../../generated/envoy/extensions/transport_sockets/tls/v3/secret.js";
import type { CommonTlsContext } from "../../generated/envoy/extensions/transport_sockets/tls/v3/tls.js";
import { SubjectAltNameMatcher_SanType } from "../../generated/envoy/extensions/transport_sockets/tls/v3/common.js";
import type { TransportSocket } from "../../generated/envoy/config/core/v3/base.js";
import { packAny } from "../envoy/any.js";
import { MESH_CONFIG_SOURCE } from "./config-source.js";
import { EXTENSION_TYPES } from "../envoy/type-urls.js";

export const WORKLOAD_SECRET = "default";
export const ROOT_SECRET = "ROOTCA";
/** Endpoint label that says the workload runs a sidecar (set by Weft's demo, or by the user). */
export const TLS_MODE_LABEL = "security.istio.io/tlsMode";
export const TLS_MODE_MATCH_KEY = "envoy.transport_socket_match";

/** What a proxy needs to speak mTLS: its own certificate and the mesh's trust bundle (PEM). */
export interface ProxySecrets {
  certChainPem: string;
  privateKeyPem: string;
  trustBundlePem: string;
}

export interface MeshSecurity {
  trustDomain: string;
  /** The proxy's secrets; absent when the proxy did not authenticate (it gets no mTLS). */
  secrets?: ProxySecrets;
}

export function buildSecrets(secrets: ProxySecrets): Secret[] {
  return [
    {
      name: WORKLOAD_SECRET,
      tlsCertificate: { certificateChain: { inlineString: secrets.certChainPem }, privateKey: { inlineString: secrets.privateKeyPem } },
    },
    { name: ROOT_SECRET, validationContext: { trustedCa: { inlineString: secrets.trustBundlePem } } },
  ];
}

function commonContext(sans: { exact?: string[]; prefix?: string }): CommonTlsContext {
  const matchers = sans.exact
    ? sans.exact.map((san) => ({ sanType: SubjectAltNameMatcher_SanType.URI, matcher: { exact: san } }))
    : [{ sanType: SubjectAltNameMatcher_SanType.URI, matcher: { prefix: sans.prefix ?? "spiffe://" } }];
  return {
    tlsCertificateSdsSecretConfigs: [{ name: WORKLOAD_SECRET, sdsConfig: MESH_CONFIG_SOURCE }],
    combinedValidationContext: {
      defaultValidationContext: { matchTypedSubjectAltNames: matchers },
      validationContextSdsSecretConfig: { name: ROOT_SECRET, sdsConfig: MESH_CONFIG_SOURCE },
    },
  };
}

/** Server side: require a client certificate issued for this trust domain. */
export function inboundMtlsSocket(trustDomain: string): TransportSocket {
  return {
    name: "envoy.transport_sockets.tls",
    typedConfig: packAny(EXTENSION_TYPES.downstreamTlsContext, {
      commonTlsContext: { ...commonContext({ prefix: `spiffe://${trustDomain}/` }), alpnProtocols: ["h2", "http/1.1"] },
      requireClientCertificate: true,
    }),
  };
}

/** Client side: present our certificate, accept only the given server SPIFFE IDs. */
export function outboundMtlsSocket(serverIdentities: string[], sni: string): TransportSocket {
  return {
    name: "envoy.transport_sockets.tls",
    typedConfig: packAny(EXTENSION_TYPES.upstreamTlsContext, {
      sni,
      commonTlsContext: commonContext(serverIdentities.length ? { exact: serverIdentities } : { prefix: "spiffe://" }),
    }),
  };
}

export function spiffeIdOf(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
