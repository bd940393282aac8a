// AuthorizationPolicy CUSTOM -> an external authorizer (Envoy's ext_authz), as Istio builds it.
// Pure: policies, the mesh settings' ext_authz providers and a service lookup in; filters out.
//
// Istio's evaluation: CUSTOM first, then DENY, then ALLOW (AUDIT only marks). A CUSTOM policy's
// rules say WHICH requests the authorizer decides; the authorizer says allow or deny. Envoy:
//   1. an RBAC filter whose CUSTOM rules are SHADOW rules (never enforced): a request matching
//      one gets its policy id in the RBAC filter's dynamic metadata
//      ("envoy.filters.http.rbac" / "envoy.filters.network.rbac", key
//      "ext_authz_shadow_effective_policy_id": the shadow stat prefix + "shadow_effective_policy_id");
//   2. the ext_authz filter, enabled only when that metadata names a CUSTOM policy
//      (filter_enabled_metadata, prefix CUSTOM_POLICY_PREFIX); others pass untouched.
// HTTP providers (envoyExtAuthzHttp) check HTTP requests only: on a TCP filter chain they are
// ignored, as in Istio. gRPC providers (envoyExtAuthzGrpc) check TCP connections too (the
// network ext_authz filter), with the rules built as DENY rules are on TCP.
//
// When the provider cannot be used — no provider of that name, not an ext_authz kind, its
// service or port not in the registry, or two different providers for one workload — Istio
// denies the requests the CUSTOM rules match (an RBAC DENY filter of those rules): fail closed
// for exactly what the authorizer was meant to decide. `customAuthorizationProblems` names the
// reason for status and logs.
//
// The authorizer is reached through the outbound cluster of its service,
// "outbound|<port>||<hostname>" (sidecar.ts keeps that cluster on every proxy, even one whose
// Sidecar hides the service): DestinationRules (TLS, timeouts) apply to it as to any service.
import type { Filter } from "../../../generated/envoy/config/listener/v3/listener_components.js";
import { RBAC_Action, type Policy } from "../../../generated/envoy/config/rbac/v3/rbac.js";
import { ApiVersion } from "../../../generated/envoy/config/core/v3/config_source.js";
import type { ExtAuthz as HttpExtAuthz } from "../../../generated/envoy/extensions/filters/http/ext_authz/v3/ext_authz.js";
import type { GrpcService } from "../../../generated/envoy/config/core/v3/grpc_service.js";
import type { HttpFilter } from "../../../generated/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js";
import type { ListStringMatcher, StringMatcher } from "../../../generated/envoy/type/matcher/v3/string.js";
import type { MetadataMatcher } from "../../../generated/envoy/type/matcher/v3/metadata.js";
import { extAuthzServiceHost, resolveAuthorizer, type CustomAuthorizationContext, type ExtAuthzProvider, type ResolvedAuthorizer } from "../../api/security/ext-authz-providers.js";
import type { AuthorizationPolicy } from "../../api/security/types.js";
import { packAny } from "../../envoy/any.js";
import { durationMs } from "../../envoy/builders.js";
import { EXTENSION_TYPES } from "../../envoy/type-urls.js";
import { customRulePolicies, type AuthorizationOptions, type NetworkAuthorizationOptions, type Protocol } from "./authorization.js";

export type { CustomAuthorizationContext };

/** Filter names of the CUSTOM action, in the order they run (before the other RBAC filters). */
export const CUSTOM_FILTER_NAMES = { rbac: "weft.authz.custom", extAuthz: "weft.authz.ext_authz" } as const;
/** Policy ids of CUSTOM rules start with this; the ext_authz filter runs only for them. */
export const CUSTOM_POLICY_PREFIX = "ext-authz/";
/** Shadow rules' stat prefix: also the prefix of the metadata key the RBAC filter writes. */
const SHADOW_STAT_PREFIX = "ext_authz_";
/** Istio's placeholder timeout of HTTP authorizers (a DestinationRule timeout can be shorter). */
const DEFAULT_HTTP_TIMEOUT_MS = 600_000;

function customPolicies(policies: readonly AuthorizationPolicy[]): AuthorizationPolicy[] {
  return policies.filter((p) => p.spec.action === "CUSTOM");
}

/** The one provider of a workload's CUSTOM policies, or why there is none usable. */
function workloadAuthorizer(custom: readonly AuthorizationPolicy[], ctx: CustomAuthorizationContext): ResolvedAuthorizer {
  const names = [...new Set(custom.map((p) => p.spec.provider?.name ?? ""))].sort();
  if (names.length > 1) return { problem: `the CUSTOM policies of one workload name different providers (${names.map((n) => `"${n}"`).join(", ")}); Istio allows one per workload` };
  return resolveAuthorizer(names[0]!, ctx);
}

/**
 * Why the CUSTOM policies that apply to a workload cannot reach their authorizer (their matching
 * requests are then denied), or undefined when they can or there are none.
 */
export function customAuthorizationProblem(policies: readonly AuthorizationPolicy[], ctx: CustomAuthorizationContext): string | undefined {
  const custom = customPolicies(policies);
  if (custom.length === 0) return undefined;
  const resolved = workloadAuthorizer(custom, ctx);
  return "problem" in resolved ? resolved.problem : undefined;
}

function enabledBy(filter: string): MetadataMatcher {
  return { filter, path: [{ key: `${SHADOW_STAT_PREFIX}shadow_effective_policy_id` }], value: { stringMatch: { prefix: CUSTOM_POLICY_PREFIX } } };
}

/** Istio's header patterns: "x-prefix-*", "*-suffix" or an exact name (case-insensitive). */
function headerMatchers(patterns: readonly string[] | undefined): ListStringMatcher | undefined {
  if (!patterns?.length) return undefined;
  const matcher = (p: string): StringMatcher =>
    p.endsWith("*") ? { prefix: p.slice(0, -1), ignoreCase: true } : p.startsWith("*") ? { suffix: p.slice(1), ignoreCase: true } : { exact: p, ignoreCase: true };
  return { patterns: patterns.map(matcher) };
}

function grpcService(cluster: string, hostname: string, timeoutMs: number | undefined): GrpcService {
  // The cluster name has "|", which is not valid in an :authority; the service's host name is.
  return { envoyGrpc: { clusterName: cluster, authority: hostname }, ...(timeoutMs !== undefined ? { timeout: durationMs(timeoutMs) } : {}) };
}

function httpExtAuthz(provider: ExtAuthzProvider, cluster: string, hostname: string): HttpExtAuthz {
  const common = provider.envoyExtAuthzHttp ?? provider.envoyExtAuthzGrpc!;
  const body = common.includeRequestBodyInCheck;
  const shared: HttpExtAuthz = {
    transportApiVersion: ApiVersion.V3,
    ...(common.failOpen ? { failureModeAllow: true } : {}),
    ...(common.statusOnError !== undefined ? { statusOnError: { code: common.statusOnError } } : {}),
    ...(common.clearRouteCache ? { clearRouteCache: true } : {}),
    ...(body ? { withRequestBody: { maxRequestBytes: body.maxRequestBytes ?? 0, allowPartialMessage: body.allowPartialMessage ?? false, packAsBytes: body.packAsBytes ?? false } } : {}),
    filterEnabledMetadata: enabledBy("envoy.filters.http.rbac"),
  };
  const http = provider.envoyExtAuthzHttp;
  if (!http) return { ...shared, grpcService: grpcService(cluster, hostname, common.timeoutMs) };
  const additional = Object.entries(http.includeAdditionalHeadersInCheck ?? {});
  const upstream = headerMatchers(http.headersToUpstreamOnAllow);
  const onDeny = headerMatchers(http.headersToDownstreamOnDeny);
  const onAllow = headerMatchers(http.headersToDownstreamOnAllow);
  const allowed = headerMatchers(http.includeRequestHeadersInCheck);
  return {
    ...shared,
    ...(allowed ? { allowedHeaders: allowed } : {}),
    httpService: {
      serverUri: { uri: `http://${hostname}:${http.port}`, cluster, timeout: durationMs(http.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS) },
      ...(http.pathPrefix ? { pathPrefix: http.pathPrefix } : {}),
      ...(additional.length ? { authorizationRequest: { headersToAdd: additional.map(([key, value]) => ({ key, value })) } } : {}),
      ...(upstream || onDeny || onAllow
        ? { authorizationResponse: { ...(upstream ? { allowedUpstreamHeaders: upstream } : {}), ...(onDeny ? { allowedClientHeaders: onDeny } : {}), ...(onAllow ? { allowedClientHeadersOnSuccess: onAllow } : {}) } }
        : {}),
    },
  };
}

/** Istio's answer to an unusable provider: deny what the CUSTOM rules match. */
function denyRules(custom: readonly AuthorizationPolicy[], protocol: Protocol, opts: AuthorizationOptions): { action: RBAC_Action; policies: Record<string, Policy> } {
  return { action: RBAC_Action.DENY, policies: customRulePolicies(custom, protocol, opts, `${CUSTOM_POLICY_PREFIX}unusable-provider/`) };
}

/**
 * The HTTP filters of the CUSTOM policies among those that apply to one workload: the shadow
 * RBAC filter and ext_authz, or the deny filter of an unusable provider. Place them after
 * jwt_authn and before buildHttpRbacFilters' filters. Empty without CUSTOM policies (or rules).
 */
export function buildCustomHttpFilters(policies: readonly AuthorizationPolicy[], ctx: CustomAuthorizationContext, opts: AuthorizationOptions): HttpFilter[] {
  const custom = customPolicies(policies);
  if (custom.length === 0) return [];
  const resolved = workloadAuthorizer(custom, ctx);
  if ("problem" in resolved) {
    const rules = denyRules(custom, "http", opts);
    return Object.keys(rules.policies).length ? [{ name: CUSTOM_FILTER_NAMES.rbac, typedConfig: packAny(EXTENSION_TYPES.httpRbac, { rules, rulesStatPrefix: "custom_unusable_provider" }) }] : [];
  }
  const policiesById = customRulePolicies(custom, "http", opts, CUSTOM_POLICY_PREFIX);
  if (Object.keys(policiesById).length === 0) return [];
  const { provider, cluster, hostname } = resolved.ok;
  return [
    { name: CUSTOM_FILTER_NAMES.rbac, typedConfig: packAny(EXTENSION_TYPES.httpRbac, { shadowRules: { action: RBAC_Action.DENY, policies: policiesById }, shadowRulesStatPrefix: SHADOW_STAT_PREFIX }) },
    { name: CUSTOM_FILTER_NAMES.extAuthz, typedConfig: packAny(EXTENSION_TYPES.httpExtAuthz, httpExtAuthz(provider, cluster, hostname)) },
  ];
}

/**
 * The network filters of a workload's CUSTOM policies for a TCP filter chain: with a gRPC
 * provider the shadow RBAC filter and the network ext_authz filter; with an HTTP provider none
 * (Istio ignores it on TCP); with an unusable provider a network RBAC DENY of the rules.
 */
export function buildCustomNetworkFilters(policies: readonly AuthorizationPolicy[], ctx: CustomAuthorizationContext, opts: NetworkAuthorizationOptions): Filter[] {
  const custom = customPolicies(policies);
  if (custom.length === 0) return [];
  const statPrefix = `${opts.statPrefix ? `${opts.statPrefix}.` : ""}authz_custom.`;
  const resolved = workloadAuthorizer(custom, ctx);
  if ("problem" in resolved) {
    const rules = denyRules(custom, "tcp", opts);
    return Object.keys(rules.policies).length ? [{ name: CUSTOM_FILTER_NAMES.rbac, typedConfig: packAny(EXTENSION_TYPES.networkRbac, { rules, statPrefix }) }] : [];
  }
  const { provider, cluster, hostname } = resolved.ok;
  const grpc = provider.envoyExtAuthzGrpc;
  if (!grpc) return [];
  const policiesById = customRulePolicies(custom, "tcp", opts, CUSTOM_POLICY_PREFIX);
  if (Object.keys(policiesById).length === 0) return [];
  return [
    { name: CUSTOM_FILTER_NAMES.rbac, typedConfig: packAny(EXTENSION_TYPES.networkRbac, { statPrefix, shadowRules: { action: RBAC_Action.DENY, policies: policiesById }, shadowRulesStatPrefix: SHADOW_STAT_PREFIX }) },
    {
      name: CUSTOM_FILTER_NAMES.extAuthz,
      typedConfig: packAny(EXTENSION_TYPES.networkExtAuthz, {
        statPrefix: `${opts.statPrefix ? `${opts.statPrefix}.` : ""}ext_authz.`,
        grpcService: grpcService(cluster, hostname, grpc.timeoutMs),
        transportApiVersion: ApiVersion.V3,
        ...(grpc.failOpen ? { failureModeAllow: true } : {}),
        filterEnabledMetadata: enabledBy("envoy.filters.network.rbac"),
      }),
    },
  ];
}

/** The hostnames of the services the mesh settings' authorizers run as (their clusters must exist). */
export function authorizerHostnames(providers: readonly ExtAuthzProvider[]): string[] {
  return [...new Set(providers.map((p) => extAuthzServiceHost((p.envoyExtAuthzHttp ?? p.envoyExtAuthzGrpc!).service).hostname))].sort();
}
