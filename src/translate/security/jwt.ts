// RequestAuthentication -> Envoy's JWT authentication filter (envoy.filters.http.jwt_authn).
//
// One provider per jwtRule. Istio's semantics: a RequestAuthentication alone rejects only
// INVALID tokens (bad signature, expired, wrong issuer or audience); a request without a token
// passes, and it is an AuthorizationPolicy (requestPrincipals, request.auth.*) that demands one.
// So the filter's single requirement is "any provider verifies the token, or there is none"
// (requires_any of every provider plus allow_missing).
//
// Conventions shared with the authorization translator (authorization.ts):
//   - every provider writes the verified payload to the dynamic metadata of the jwt_authn
//     filter (namespace "envoy.filters.http.jwt_authn") under the key "payload";
//   - the request principal (Istio's request.auth.principal) is iss + "/" + sub of that payload.
//
// Keys given inline (jwks) go into local_jwks. Keys at a URL (jwksUri) are fetched by Envoy
// through a cluster named jwksClusterName(uri): THE CALLER MUST ADD THAT CLUSTER to the proxy's
// clusters, e.g. with jwksClusterFor(uri).
import type { Cluster } from "../../../generated/envoy/config/cluster/v3/cluster.js";
import { Cluster_DiscoveryType, Cluster_DnsLookupFamily } from "../../../generated/envoy/config/cluster/v3/cluster.js";
import type { JwtProvider, JwtRequirement } from "../../../generated/envoy/extensions/filters/http/jwt_authn/v3/config.js";
import type { HttpFilter } from "../../../generated/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js";
import { SubjectAltNameMatcher_SanType } from "../../../generated/envoy/extensions/transport_sockets/tls/v3/common.js";
import { isIP } from "node:net";
import type { JwtRule, RequestAuthentication } from "../../api/security/types.js";
import { packAny } from "../../envoy/any.js";
import { buildLoadAssignment, durationMs } from "../../envoy/builders.js";
import { EXTENSION_TYPES } from "../../envoy/type-urls.js";

/** The filter's name, and the dynamic-metadata namespace it writes verified payloads to. */
export const JWT_AUTHN_FILTER = "envoy.filters.http.jwt_authn";
/** Key of the verified JWT payload in the jwt_authn filter's dynamic metadata. */
export const JWT_PAYLOAD_METADATA_KEY = "payload";
/** How long Envoy waits for a JWKS fetch. */
export const JWKS_FETCH_TIMEOUT_MS = 5000;
/** The CA bundle that verifies https JWKS servers unless the caller names another (Debian/Ubuntu path). */
export const DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

/** Provider name of one jwtRule: "<namespace>/<name>/jwtRules[<index>]". */
export function jwtProviderName(policy: RequestAuthentication, index: number): string {
  return `${policy.metadata.namespace ?? "default"}/${policy.metadata.name}/jwtRules[${index}]`;
}

/**
 * The jwt_authn filter for the RequestAuthentications that apply to one workload, or undefined
 * when they hold no JWT rules. Place it before the RBAC filters (buildHttpRbacFilters), which
 * read the payload it writes.
 */
export function buildJwtAuthnFilter(policies: readonly RequestAuthentication[]): HttpFilter | undefined {
  const providers: Record<string, JwtProvider> = {};
  for (const policy of sortByName(policies)) {
    (policy.spec.jwtRules ?? []).forEach((rule, index) => {
      providers[jwtProviderName(policy, index)] = buildJwtProvider(rule);
    });
  }
  const names = Object.keys(providers);
  if (names.length === 0) return undefined;
  const requirement: JwtRequirement = {
    requiresAny: { requirements: [...names.map((providerName) => ({ providerName })), { allowMissing: {} }] },
  };
  return {
    name: JWT_AUTHN_FILTER,
    typedConfig: packAny(EXTENSION_TYPES.jwtAuthentication, {
      providers,
      rules: [{ match: { prefix: "/" }, requires: requirement }],
    }),
  };
}

/** Claims Istio always treats as space-delimited. */
const DEFAULT_SPACE_DELIMITED_CLAIMS = ["permission", "scope"];

function buildJwtProvider(rule: JwtRule): JwtProvider {
  return {
    issuer: rule.issuer,
    ...(rule.audiences?.length ? { audiences: [...rule.audiences] } : {}),
    ...(rule.jwks !== undefined ? { localJwks: { inlineString: rule.jwks } } : {}),
    ...(rule.jwksUri !== undefined
      ? { remoteJwks: { httpUri: { uri: rule.jwksUri, cluster: jwksClusterName(rule.jwksUri), timeout: durationMs(JWKS_FETCH_TIMEOUT_MS) } } }
      : {}),
    // Neither set: Envoy's defaults, which are Istio's: "Authorization: Bearer <token>" and ?access_token=.
    ...(rule.fromHeaders?.length ? { fromHeaders: rule.fromHeaders.map((h) => ({ name: h.name, ...(h.prefix ? { valuePrefix: h.prefix } : {}) })) } : {}),
    ...(rule.fromParams?.length ? { fromParams: [...rule.fromParams] } : {}),
    forward: rule.forwardOriginalToken ?? false,
    ...(rule.outputPayloadToHeader ? { forwardPayloadHeader: rule.outputPayloadToHeader } : {}),
    payloadInMetadata: JWT_PAYLOAD_METADATA_KEY,
    // As Istio: these claims' space-separated strings become lists in the payload metadata, so
    // `request.auth.claims[scope]` matches one scope of "read write".
    normalizePayloadInMetadata: { spaceDelimitedClaims: [...new Set([...DEFAULT_SPACE_DELIMITED_CLAIMS, ...(rule.spaceDelimitedClaims ?? [])])].sort() },
    ...(rule.outputClaimToHeaders?.length ? { claimToHeaders: rule.outputClaimToHeaders.map((c) => ({ headerName: c.header, claimName: c.claim })) } : {}),
  };
}

interface JwksEndpoint {
  tls: boolean;
  host: string;
  port: number;
}

function jwksEndpoint(uri: string): JwksEndpoint {
  const url = new URL(uri);
  const tls = url.protocol === "https:";
  if (!tls && url.protocol !== "http:") throw new Error(`jwksUri must be an http:// or https:// URL, found ${JSON.stringify(uri)}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1"); // IPv6 literals come bracketed
  return { tls, host, port: url.port ? Number(url.port) : tls ? 443 : 80 };
}

/** The cluster a jwksUri is fetched through: "jwks|<host>|<port>", with "|tls" for https. */
export function jwksClusterName(uri: string): string {
  const e = jwksEndpoint(uri);
  return `jwks|${e.host}|${e.port}${e.tls ? "|tls" : ""}`;
}

/**
 * A STRICT_DNS cluster for fetching a jwksUri. For https it verifies the server certificate
 * against `caFile` (default: the system bundle) and the URI's host name.
 */
export function jwksClusterFor(uri: string, opts: { caFile?: string } = {}): Cluster {
  const e = jwksEndpoint(uri);
  const name = jwksClusterName(uri);
  const hostIsIp = isIP(e.host) !== 0;
  return {
    name,
    type: hostIsIp ? Cluster_DiscoveryType.STATIC : Cluster_DiscoveryType.STRICT_DNS,
    connectTimeout: durationMs(JWKS_FETCH_TIMEOUT_MS),
    ...(hostIsIp ? {} : { dnsLookupFamily: Cluster_DnsLookupFamily.V4_PREFERRED }),
    loadAssignment: buildLoadAssignment(name, [{ address: e.host, port: e.port }]),
    ...(e.tls
      ? {
          transportSocket: {
            name: "envoy.transport_sockets.tls",
            typedConfig: packAny(EXTENSION_TYPES.upstreamTlsContext, {
              ...(hostIsIp ? {} : { sni: e.host }),
              commonTlsContext: {
                validationContext: {
                  trustedCa: { filename: opts.caFile ?? DEFAULT_CA_BUNDLE },
                  matchTypedSubjectAltNames: [{ sanType: hostIsIp ? SubjectAltNameMatcher_SanType.IP_ADDRESS : SubjectAltNameMatcher_SanType.DNS, matcher: { exact: e.host } }],
                },
              },
            }),
          },
        }
      : {}),
  };
}

/**
 * The clusters the jwt_authn filter of these policies fetches keys through (one per distinct
 * jwksClusterName), sorted by name: add them to the proxy's clusters.
 */
export function buildJwksClusters(policies: readonly RequestAuthentication[], opts: { caFile?: string } = {}): Cluster[] {
  const byName = new Map<string, Cluster>();
  for (const uri of policies.flatMap((p) => (p.spec.jwtRules ?? []).flatMap((r) => (r.jwksUri ? [r.jwksUri] : [])))) {
    const name = jwksClusterName(uri);
    if (!byName.has(name)) byName.set(name, jwksClusterFor(uri, opts));
  }
  return [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, c]) => c);
}

function sortByName<P extends { metadata: { namespace?: string; name: string } }>(policies: readonly P[]): P[] {
  const key = (p: P) => `${p.metadata.namespace ?? "default"}/${p.metadata.name}`;
  return [...policies].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
