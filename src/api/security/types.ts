// User-facing resource types: Istio's security API shapes (security.istio.io v1 and v1beta1),
// written from Istio's public reference docs. Field names match Istio's YAML. Validation lives
// in validate-security.ts; these are the shapes after parsing and validation.
import type { ObjectMeta, SourceRef } from "../types.js";

export const SECURITY_GROUP = "security.istio.io";
export const SECURITY_VERSIONS = ["v1", "v1beta1"] as const;

interface Base<K extends string, S> {
  apiVersion: string;
  kind: K;
  metadata: ObjectMeta;
  spec: S;
}

/** Which workloads a policy applies to, within its namespace (or the mesh, from the root namespace). */
export interface WorkloadSelector {
  matchLabels?: Record<string, string>;
}

// ---------------------------------------------------------------------------------------
// PeerAuthentication

export const MTLS_MODES = ["UNSET", "DISABLE", "PERMISSIVE", "STRICT"] as const;
export type MtlsMode = (typeof MTLS_MODES)[number];

export interface MutualTls {
  mode?: MtlsMode; // absent means UNSET: inherit
}

export interface PeerAuthenticationSpec {
  selector?: WorkloadSelector;
  mtls?: MutualTls;
  /** Port number (a string key, as YAML maps have) -> mode. Only with a selector. */
  portLevelMtls?: Record<string, MutualTls>;
}

export type PeerAuthentication = Base<"PeerAuthentication", PeerAuthenticationSpec>;

// ---------------------------------------------------------------------------------------
// AuthorizationPolicy

/** CUSTOM delegates the decision to an external authorizer: `provider.name` in the mesh settings' extensionProviders. */
export const AUTHORIZATION_ACTIONS = ["ALLOW", "DENY", "AUDIT", "CUSTOM"] as const;
export type AuthorizationAction = (typeof AUTHORIZATION_ACTIONS)[number];

/** Source of a request. Fields are ANDed; the values inside one field are ORed. */
export interface AuthorizationSource {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
  /** "namespace/name" or "name" (in the policy's namespace): the peer certificate's service account, any trust domain. */
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  /** The peer certificate's trust domain: exact, "prefix*", "*suffix" or "*". */
  trustDomains?: string[];
  notTrustDomains?: string[];
}

/** Operation of a request. Fields are ANDed; the values inside one field are ORed. */
export interface AuthorizationOperation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[]; // Istio writes ports as strings: ["8080"]
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface AuthorizationCondition {
  key: string; // "request.headers[x-token]", "source.ip", "request.auth.claims[groups]", ...
  values?: string[];
  notValues?: string[];
}

export interface AuthorizationRule {
  from?: { source?: AuthorizationSource }[];
  to?: { operation?: AuthorizationOperation }[];
  when?: AuthorizationCondition[];
}

export interface AuthorizationPolicySpec {
  selector?: WorkloadSelector;
  action?: AuthorizationAction; // absent means ALLOW
  /** With CUSTOM (required there): the ext_authz extension provider of the mesh settings. */
  provider?: { name: string };
  rules?: AuthorizationRule[]; // absent: matches nothing (an ALLOW policy then denies everything)
}

export type AuthorizationPolicy = Base<"AuthorizationPolicy", AuthorizationPolicySpec>;

// ---------------------------------------------------------------------------------------
// RequestAuthentication

export interface JwtHeader {
  name: string;
  prefix?: string; // e.g. "Bearer "
}

export interface ClaimToHeader {
  header: string;
  claim: string; // may be nested: "a.b.c"
}

export interface JwtRule {
  issuer: string;
  audiences?: string[];
  jwksUri?: string;
  jwks?: string; // a JSON Web Key Set, as a JSON string
  fromHeaders?: JwtHeader[];
  fromParams?: string[];
  outputPayloadToHeader?: string;
  forwardOriginalToken?: boolean;
  outputClaimToHeaders?: ClaimToHeader[];
  /** Claims whose string value is a space-separated list ("read write") for authorization matching; scope and permission always are. */
  spaceDelimitedClaims?: string[];
}

export interface RequestAuthenticationSpec {
  selector?: WorkloadSelector;
  jwtRules?: JwtRule[];
}

export type RequestAuthentication = Base<"RequestAuthentication", RequestAuthenticationSpec>;

// ---------------------------------------------------------------------------------------

export type SecurityResource = PeerAuthentication | AuthorizationPolicy | RequestAuthentication;

/**
 * A validated security resource and where it was read from: the same shape as `Sourced` in
 * ../types.ts (which is typed to networking resources), so code written for one reads the other.
 */
export interface SourcedSecurity<R extends SecurityResource = SecurityResource> {
  resource: R;
  source: SourceRef;
}
