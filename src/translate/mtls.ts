// Mutual TLS between sidecars: certificates and the trust bundle come over SDS ("default" and
// "ROOTCA", Istio's names); servers require a client certificate from the mesh's trust domain;
// clients verify the server's SPIFFE ID and use TLS only towards endpoints that have a sidecar
// (endpoint metadata tlsMode=istio, Istio's auto mTLS), unless a DestinationRule says otherwise.
import type { Secret } from "../../generated/envoy/extensions/transport_sockets/tls/v3/secret.js";
import type { CommonTlsContext } from "../../generated/envoy/extensions/transport_sockets/tls/v3/tls.js";
import { SubjectAltNameMatcher_SanType, TlsParameters_TlsProtocol, type TlsParameters } from "../../generated/envoy/extensions/transport_sockets/tls/v3/common.js";
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

/**
 * Mesh mTLS parameters, Istio's: TLS 1.2 to 1.3 on both sides (Envoy's client default stops at
 * 1.2), and for TLS 1.2 only ECDHE/AES-GCM suites (Istio's SupportedCiphers; TLS 1.3 suites are
 * not configurable in Envoy and are all AEAD).
 */
export const MESH_TLS_PARAMS: TlsParameters = {
  tlsMinimumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_2,
  tlsMaximumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_3,
  cipherSuites: ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-GCM-SHA256"],
  ecdhCurves: [],
  signatureAlgorithms: [],
};

/**
 * ALPN a client sidecar offers, Istio's (what its istio.alpn filter sets per upstream
 * protocol): the "istio" marker that tells a server sidecar the connection is mesh mTLS, the
 * protocol as istio-http/1.1 or istio-h2, and the real protocol for the server to negotiate.
 * TCP offers istio-peer-exchange (Istio's metadata exchange marker) and istio.
 */
export type MeshAlpnKind = "http1" | "http2" | "tcp";
export const MESH_CLIENT_ALPN: Record<MeshAlpnKind, string[]> = {
  http1: ["istio-http/1.1", "istio", "http/1.1"],
  http2: ["istio-h2", "istio", "h2"],
  tcp: ["istio-peer-exchange", "istio"],
};

/** Server side: require a client certificate issued for this trust domain. `tcp`: a TCP port (also offers istio-peer-exchange, as Istio). */
export function inboundMtlsSocket(trustDomain: string, opts: { tcp?: boolean } = {}): TransportSocket {
  return {
    name: "envoy.transport_sockets.tls",
    typedConfig: packAny(EXTENSION_TYPES.downstreamTlsContext, {
      commonTlsContext: { ...commonContext({ prefix: `spiffe://${trustDomain}/` }), alpnProtocols: opts.tcp ? ["istio-peer-exchange", "h2", "http/1.1"] : ["h2", "http/1.1"], tlsParams: MESH_TLS_PARAMS },
      requireClientCertificate: true,
    }),
  };
}

/** Client side: present our certificate, accept only the given server SPIFFE IDs; Istio's SNI and ALPN. */
export function outboundMtlsSocket(serverIdentities: string[], sni: string, alpn: MeshAlpnKind): TransportSocket {
  return {
    name: "envoy.transport_sockets.tls",
    typedConfig: packAny(EXTENSION_TYPES.upstreamTlsContext, {
      sni,
      commonTlsContext: { ...commonContext(serverIdentities.length ? { exact: serverIdentities } : { prefix: "spiffe://" }), alpnProtocols: MESH_CLIENT_ALPN[alpn], tlsParams: MESH_TLS_PARAMS },
    }),
  };
}

/**
 * Istio's SNI for mesh mTLS to a service port and subset: outbound_.9080_.v1_.ratings.default.svc.cluster.local
 * (what SNI-routing gateways, east-west and multi-cluster, route on).
 */
export function meshSni(port: number, subset: string, hostname: string): string {
  return `outbound_.${port}_.${subset}_.${hostname}`;
}

export function spiffeIdOf(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
