// AuthorizationPolicy -> Envoy RBAC filters (HTTP: envoy.filters.http.rbac; TCP:
// envoy.filters.network.rbac). Pure: policies in, filters out, sorted and deterministic.
//
// Istio's evaluation order for one workload, and how it maps to Envoy:
//   1. AUDIT policies only mark requests for auditing: an RBAC filter with action LOG (it never
//      denies; it sets envoy.common access_log_hint). It comes first, so requests that a later
//      filter denies are still marked.
//   2. If any DENY policy matches, deny: an RBAC filter with action DENY.
//   3. If there are no ALLOW policies, allow. If any ALLOW policy matches, allow. Otherwise
//      deny: one RBAC filter with action ALLOW holding every ALLOW rule, so a request that
//      matches none is denied (an ALLOW policy without rules therefore denies everything).
// CUSTOM (external authorization) runs before all of these: ext-authz.ts builds its filters.
//
// One Istio rule becomes one Envoy policy, named "<namespace>/<name>/rules[<i>]":
//   principals  = AND( OR(from[].source), when-conditions on the requester )
//   permissions = AND( OR(to[].operation), when-conditions on the destination )
// Fields inside a source or an operation are ANDed, the values of one field ORed, and the
// not* fields become not_id / not_rule of the OR of their values.
//
// Identities:
//   - principals "cluster.local/ns/foo/sa/bar" match the peer certificate's URI SAN
//     "spiffe://cluster.local/ns/foo/sa/bar" (authenticated.principal_name). The trust domain
//     "cluster.local" is Istio's name for "this mesh's trust domain" and is replaced by
//     opts.trustDomain; other trust domains are kept as written.
//   - namespaces "foo" match the URI SAN regex "spiffe://[^/]+/ns/foo/sa/.*".
//   - serviceAccounts "foo/bar" ("bar": the policy's namespace) match "spiffe://[^/]+/ns/foo/sa/bar";
//     trustDomains "example.org" (or "prod-*", "*.org", "*") match "spiffe://example.org/.*".
//   - requestPrincipals "<iss>/<sub>" match the JWT payload that jwt.ts has jwt_authn write to
//     its dynamic metadata (namespace JWT_AUTHN_FILTER, key "payload"): iss and sub compared
//     separately, trying every "/" in the value as the place where iss ends, so issuers that
//     contain "/" ("https://example.com/") work.
//   - request.auth.claims[a][b] match payload.a.b as a string or as a list containing it.
//
// Paths: "abc", "abc*", "*abc", "*" as url_path string matches (the query is not part of the
// path); a path with Istio's template operators ("/api/{*}/orders", "/files/{**}") as Envoy's
// uri_template matcher with "{*}" -> "*" and "{**}" -> "**" (validation has checked Istio's
// template rules).
//
// TCP (network RBAC). HTTP-only attributes (requestPrincipals, hosts, methods, paths,
// request.* conditions) cannot be evaluated on a TCP connection. Following Istio's documented
// behaviour ("Authorization Policy for TCP"; AuthorizationPolicy reference):
//   - ALLOW (and AUDIT) rules that use any HTTP-only attribute are dropped: they match nothing
//     on TCP, so with an ALLOW policy present such a connection is denied.
//   - DENY rules keep only their TCP attributes: a missing attribute counts as a match, so a
//     DENY rule with `methods: ["GET"]` and `ports: ["9000"]` denies all TCP on port 9000,
//     and one with only HTTP-only attributes denies all TCP traffic.
//
// Stats (measured, Envoy 1.40): HTTP "http.<hcm stat_prefix>.rbac.<audit|deny|allow>.allowed"
// and ".denied"; TCP "<statPrefix>.authz_<audit|deny|allow>.rbac.allowed" and ".denied". The
// LOG (AUDIT) filter counts every request as allowed; the audit mark itself is the dynamic
// metadata envoy.common:access_log_hint (true/false), for access logs.
import type { CidrRange } from "../../../generated/envoy/config/core/v3/address.js";
import type { Filter } from "../../../generated/envoy/config/listener/v3/listener_components.js";
import { RBAC_Action, type Permission, type Policy, type Principal } from "../../../generated/envoy/config/rbac/v3/rbac.js";
import type { HttpFilter } from "../../../generated/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js";
import type { StringMatcher } from "../../../generated/envoy/type/matcher/v3/string.js";
import type { ValueMatcher } from "../../../generated/envoy/type/matcher/v3/value.js";
import { isIP } from "node:net";
import { isHttpOnlyCondition, parseConditionKey, type ConditionKey } from "../../api/security/condition-keys.js";
import { isPathTemplate } from "../../api/security/validate-security.js";
import type { AuthorizationCondition, AuthorizationOperation, AuthorizationPolicy, AuthorizationRule, AuthorizationSource, WorkloadSelector } from "../../api/security/types.js";
import { packAny } from "../../envoy/any.js";
import { EXTENSION_TYPES } from "../../envoy/type-urls.js";
import { JWT_AUTHN_FILTER, JWT_PAYLOAD_METADATA_KEY } from "./jwt.js";

export interface AuthorizationOptions {
  /** The mesh's trust domain (SPIFFE IDs are spiffe://<trustDomain>/ns/<ns>/sa/<sa>). */
  trustDomain: string;
}

export interface NetworkAuthorizationOptions extends AuthorizationOptions {
  /**
   * Names the filter chain in the network RBAC stats, whose names are not scoped to a listener:
   * "<statPrefix>.authz_deny.rbac.denied". Default: none ("authz_deny.rbac.denied", shared).
   */
  statPrefix?: string;
}

/** The name of the uri_template extension in RBAC permissions (path templates). */
const URI_TEMPLATE_MATCHER = "envoy.path.match.uri_template.uri_template_matcher";

/** Istio's default trust domain; in policies it means "this mesh's trust domain". */
const ISTIO_LOCAL_TRUST_DOMAIN = "cluster.local";

export type Protocol = "http" | "tcp";
type EnforcedAction = "AUDIT" | "DENY" | "ALLOW";

/** Filter names, in the order the filters run. */
export const RBAC_FILTER_NAMES: Record<EnforcedAction, string> = {
  AUDIT: "weft.authz.audit",
  DENY: "weft.authz.deny",
  ALLOW: "weft.authz.allow",
};
const ACTION_ORDER: readonly EnforcedAction[] = ["AUDIT", "DENY", "ALLOW"];
const ENVOY_ACTION: Record<EnforcedAction, RBAC_Action> = { AUDIT: RBAC_Action.LOG, DENY: RBAC_Action.DENY, ALLOW: RBAC_Action.ALLOW };

// ---------------------------------------------------------------------------------------
// Which policies apply to a workload

export interface WorkloadRef {
  namespace: string;
  labels: Readonly<Record<string, string>>;
  /** Istio's root namespace (usually "istio-system"): its policies apply mesh-wide. */
  rootNamespace: string;
}

/** Whether a selector (absent = every workload) matches a workload's labels. */
export function selectorMatches(selector: WorkloadSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

/**
 * The policies that apply to one workload: those in its namespace and those in the root
 * namespace (mesh-wide), whose selector matches its labels (no selector: every workload).
 * Works for any security kind with metadata and spec.selector. Sorted by namespace and name.
 */
export function selectPolicies<P extends { metadata: { namespace?: string; name: string }; spec: { selector?: WorkloadSelector } }>(all: readonly P[], workload: WorkloadRef): P[] {
  return sortPolicies(
    all.filter((p) => {
      const ns = p.metadata.namespace ?? "default";
      return (ns === workload.namespace || ns === workload.rootNamespace) && selectorMatches(p.spec.selector, workload.labels);
    }),
  );
}

function sortPolicies<P extends { metadata: { namespace?: string; name: string } }>(policies: readonly P[]): P[] {
  const key = (p: P) => `${p.metadata.namespace ?? "default"}\u0000${p.metadata.name}`;
  return [...policies].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

// ---------------------------------------------------------------------------------------
// Filters

/**
 * HTTP RBAC filters for the policies that apply to one workload (see selectPolicies), in the
 * order they must run: AUDIT (log only), DENY, ALLOW. Place them after the jwt_authn filter
 * and before the router. Empty when no policy applies.
 */
export function buildHttpRbacFilters(policies: readonly AuthorizationPolicy[], opts: AuthorizationOptions): HttpFilter[] {
  return buildRbacConfigs(policies, opts, "http").map(({ action, rules }) => ({
    name: RBAC_FILTER_NAMES[action],
    typedConfig: packAny(EXTENSION_TYPES.httpRbac, { rules, rulesStatPrefix: action.toLowerCase() }),
  }));
}

/**
 * Network RBAC filters for a TCP filter chain (before tcp_proxy), same order and meaning as
 * buildHttpRbacFilters; HTTP-only attributes are handled as described at the top of this file.
 */
export function buildNetworkRbacFilters(policies: readonly AuthorizationPolicy[], opts: NetworkAuthorizationOptions): Filter[] {
  return buildRbacConfigs(policies, opts, "tcp").map(({ action, rules }) => ({
    name: RBAC_FILTER_NAMES[action],
    typedConfig: packAny(EXTENSION_TYPES.networkRbac, { rules, statPrefix: `${opts.statPrefix ? `${opts.statPrefix}.` : ""}authz_${action.toLowerCase()}.` }),
  }));
}

function buildRbacConfigs(policies: readonly AuthorizationPolicy[], opts: AuthorizationOptions, protocol: Protocol): { action: EnforcedAction; rules: { action: RBAC_Action; policies: Record<string, Policy> } }[] {
  const byAction = new Map<EnforcedAction, Record<string, Policy>>();
  for (const policy of sortPolicies(policies)) {
    const action = policy.spec.action ?? "ALLOW";
    if (action === "CUSTOM") continue; // ext-authz.ts builds CUSTOM policies' filters
    const envoyPolicies = byAction.get(action) ?? {};
    byAction.set(action, envoyPolicies);
    (policy.spec.rules ?? []).forEach((rule, index) => {
      const built = buildPolicy(rule, action, protocol, opts, policy.metadata.namespace ?? "default");
      if (built) envoyPolicies[`${policy.metadata.namespace ?? "default"}/${policy.metadata.name}/rules[${index}]`] = built;
    });
  }
  const out: { action: EnforcedAction; rules: { action: RBAC_Action; policies: Record<string, Policy> } }[] = [];
  for (const action of ACTION_ORDER) {
    const envoyPolicies = byAction.get(action);
    if (!envoyPolicies) continue;
    // AUDIT or DENY with nothing to match would do nothing; ALLOW with nothing denies everything.
    if (action !== "ALLOW" && Object.keys(envoyPolicies).length === 0) continue;
    out.push({ action, rules: { action: ENVOY_ACTION[action], policies: envoyPolicies } });
  }
  return out;
}

/**
 * The Envoy policies of CUSTOM policies' rules, named "<prefix><namespace>/<name>/rules[<i>]":
 * what decides which requests (connections, on TCP) are sent to the external authorizer. On TCP
 * they are built as DENY rules are (HTTP-only attributes dropped, a missing attribute matches),
 * as Istio builds them.
 */
export function customRulePolicies(policies: readonly AuthorizationPolicy[], protocol: Protocol, opts: AuthorizationOptions, namePrefix: string): Record<string, Policy> {
  const out: Record<string, Policy> = {};
  for (const policy of sortPolicies(policies)) {
    const namespace = policy.metadata.namespace ?? "default";
    (policy.spec.rules ?? []).forEach((rule, index) => {
      const built = buildPolicy(rule, "DENY", protocol, opts, namespace);
      if (built) out[`${namePrefix}${namespace}/${policy.metadata.name}/rules[${index}]`] = built;
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// One rule -> one Envoy policy

const HTTP_ONLY_SOURCE_FIELDS = ["requestPrincipals", "notRequestPrincipals"] as const;
const HTTP_ONLY_OPERATION_FIELDS = ["hosts", "notHosts", "methods", "notMethods", "paths", "notPaths"] as const;

function usesHttpOnlyAttributes(rule: AuthorizationRule): boolean {
  return (
    (rule.from ?? []).some((f) => HTTP_ONLY_SOURCE_FIELDS.some((k) => f.source?.[k] !== undefined)) ||
    (rule.to ?? []).some((t) => HTTP_ONLY_OPERATION_FIELDS.some((k) => t.operation?.[k] !== undefined)) ||
    (rule.when ?? []).some((w) => {
      const key = parseConditionKey(w.key);
      return key !== undefined && isHttpOnlyCondition(key);
    })
  );
}

/** The rule with its HTTP-only attributes removed (a DENY rule on TCP). */
function withoutHttpOnlyAttributes(rule: AuthorizationRule): AuthorizationRule {
  const omit = <T extends object>(o: T | undefined, keys: readonly string[]): T | undefined =>
    o === undefined ? undefined : (Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k))) as T);
  return {
    ...(rule.from ? { from: rule.from.map((f) => ({ source: omit(f.source, HTTP_ONLY_SOURCE_FIELDS) })) } : {}),
    ...(rule.to ? { to: rule.to.map((t) => ({ operation: omit(t.operation, HTTP_ONLY_OPERATION_FIELDS) })) } : {}),
    ...(rule.when
      ? {
          when: rule.when.filter((w) => {
            const key = parseConditionKey(w.key);
            return key === undefined || !isHttpOnlyCondition(key);
          }),
        }
      : {}),
  };
}

/** Undefined when the rule is dropped (an ALLOW or AUDIT rule with HTTP-only attributes, on TCP). */
function buildPolicy(rule: AuthorizationRule, action: EnforcedAction, protocol: Protocol, opts: AuthorizationOptions, policyNamespace: string): Policy | undefined {
  if (protocol === "tcp" && usesHttpOnlyAttributes(rule)) {
    if (action !== "DENY") return undefined;
    rule = withoutHttpOnlyAttributes(rule);
  }
  const principalTerms: Principal[] = [];
  const permissionTerms: Permission[] = [];
  if (rule.from) principalTerms.push(orIds(rule.from.map((f) => sourcePrincipal(f.source ?? {}, opts, policyNamespace))));
  if (rule.to) permissionTerms.push(orRules(rule.to.map((t) => operationPermission(t.operation ?? {}))));
  for (const condition of rule.when ?? []) {
    const key = parseConditionKey(condition.key);
    if (!key) throw new Error(`unsupported condition key ${JSON.stringify(condition.key)}`);
    const built = buildCondition(key, condition, opts);
    if ("principal" in built) principalTerms.push(built.principal);
    else permissionTerms.push(built.permission);
  }
  return { permissions: [andRules(permissionTerms)], principals: [andIds(principalTerms)] };
}

// ---------------------------------------------------------------------------------------
// Combinators (a single term is used as is; nested ANDs and ORs are flattened; an empty AND
// matches anything)

function orIds(ids: Principal[]): Principal {
  const flat = ids.flatMap((id) => (id.orIds ? (id.orIds.ids ?? []) : [id]));
  return flat.length === 1 ? flat[0]! : { orIds: { ids: flat } };
}
function andIds(ids: Principal[]): Principal {
  const flat = ids.flatMap((id) => (id.andIds ? (id.andIds.ids ?? []) : [id])).filter((id) => !id.any);
  if (flat.length === 0) return { any: true };
  return flat.length === 1 ? flat[0]! : { andIds: { ids: flat } };
}
function orRules(rules: Permission[]): Permission {
  const flat = rules.flatMap((r) => (r.orRules ? (r.orRules.rules ?? []) : [r]));
  return flat.length === 1 ? flat[0]! : { orRules: { rules: flat } };
}
function andRules(rules: Permission[]): Permission {
  const flat = rules.flatMap((r) => (r.andRules ? (r.andRules.rules ?? []) : [r])).filter((r) => !r.any);
  if (flat.length === 0) return { any: true };
  return flat.length === 1 ? flat[0]! : { andRules: { rules: flat } };
}

/** values -> OR of their matchers; notValues -> NOT(OR ...); both -> AND of the two. */
function principalField(values: readonly string[] | undefined, notValues: readonly string[] | undefined, match: (v: string) => Principal): Principal[] {
  const out: Principal[] = [];
  if (values) out.push(orIds(values.map(match)));
  if (notValues) out.push({ notId: orIds(notValues.map(match)) });
  return out;
}
function permissionField(values: readonly string[] | undefined, notValues: readonly string[] | undefined, match: (v: string) => Permission): Permission[] {
  const out: Permission[] = [];
  if (values) out.push(orRules(values.map(match)));
  if (notValues) out.push({ notRule: orRules(notValues.map(match)) });
  return out;
}

// ---------------------------------------------------------------------------------------
// Sources and operations

function sourcePrincipal(source: AuthorizationSource, opts: AuthorizationOptions, policyNamespace: string): Principal {
  return andIds([
    ...principalField(source.principals, source.notPrincipals, (v) => peerPrincipal(v, opts)),
    ...principalField(source.requestPrincipals, source.notRequestPrincipals, requestPrincipal),
    ...principalField(source.namespaces, source.notNamespaces, peerNamespace),
    ...principalField(source.serviceAccounts, source.notServiceAccounts, (v) => peerServiceAccount(v, policyNamespace)),
    ...principalField(source.trustDomains, source.notTrustDomains, (v) => peerTrustDomain(v, opts)),
    ...principalField(source.ipBlocks, source.notIpBlocks, (v) => ({ directRemoteIp: cidr(v) })),
    ...principalField(source.remoteIpBlocks, source.notRemoteIpBlocks, (v) => ({ remoteIp: cidr(v) })),
  ]);
}

function operationPermission(operation: AuthorizationOperation): Permission {
  return andRules([
    ...permissionField(operation.hosts, operation.notHosts, (v) => ({ header: headerMatch(":authority", v, { ignoreCase: true }) })),
    ...permissionField(operation.ports, operation.notPorts, (v) => ({ destinationPort: Number(v) })),
    ...permissionField(operation.methods, operation.notMethods, (v) => ({ header: headerMatch(":method", v) })),
    ...permissionField(operation.paths, operation.notPaths, pathPermission),
  ]);
}

function buildCondition(key: ConditionKey, condition: AuthorizationCondition, opts: AuthorizationOptions): { principal: Principal } | { permission: Permission } {
  const principal = (match: (v: string) => Principal) => ({ principal: andIds(principalField(condition.values, condition.notValues, match)) });
  const permission = (match: (v: string) => Permission) => ({ permission: andRules(permissionField(condition.values, condition.notValues, match)) });
  switch (key.kind) {
    case "request.headers":
      return principal((v) => ({ header: headerMatch(key.header.toLowerCase(), v) }));
    case "source.ip":
      return principal((v) => ({ directRemoteIp: cidr(v) }));
    case "remote.ip":
      return principal((v) => ({ remoteIp: cidr(v) }));
    case "source.namespace":
      return principal(peerNamespace);
    case "source.principal":
      return principal((v) => peerPrincipal(v, opts));
    case "source.trustDomain":
      // The same as source.trustDomains (the trust domain of the peer's SPIFFE ID; needs mTLS).
      return principal((v) => peerTrustDomain(v, opts));
    case "request.auth.principal":
      return principal(requestPrincipal);
    case "request.auth.audiences":
      return principal((v) => claimPrincipal(["aud"], v));
    case "request.auth.presenter":
      return principal((v) => claimPrincipal(["azp"], v));
    case "request.auth.claims":
      return principal((v) => claimPrincipal(key.claim, v));
    case "destination.ip":
      return permission((v) => ({ destinationIp: cidr(v) }));
    case "destination.port":
      return permission((v) => ({ destinationPort: Number(v) }));
    case "connection.sni":
      return permission((v) => ({ requestedServerName: stringMatcher(v) }));
  }
}

// ---------------------------------------------------------------------------------------
// Matchers

/** Istio's string forms: "*" present (non-empty), "abc*" prefix, "*abc" suffix, else exact. */
function stringMatcher(value: string, opts: { ignoreCase?: boolean } = {}): StringMatcher {
  const ignoreCase = opts.ignoreCase ? { ignoreCase: true } : {};
  if (value === "*") return { safeRegex: { regex: ".+" } };
  if (value.endsWith("*")) return { prefix: value.slice(0, -1), ...ignoreCase };
  if (value.startsWith("*")) return { suffix: value.slice(1), ...ignoreCase };
  return { exact: value, ...ignoreCase };
}

/**
 * A path: Istio's string forms against the path without its query (url_path), or a path
 * template ("/api/{*}/orders", "/files/{**}") as Envoy's uri_template matcher, with "{*}" -> "*"
 * and "{**}" -> "**" as Istio writes it.
 */
function pathPermission(value: string): Permission {
  if (!isPathTemplate(value)) return { urlPath: { path: stringMatcher(value) } };
  const pathTemplate = value.replaceAll("{**}", "**").replaceAll("{*}", "*");
  return { uriTemplate: { name: URI_TEMPLATE_MATCHER, typedConfig: packAny(EXTENSION_TYPES.uriTemplateMatch, { pathTemplate }) } };
}

function headerMatch(name: string, value: string, opts: { ignoreCase?: boolean } = {}) {
  return value === "*" ? { name, presentMatch: true } : { name, stringMatch: stringMatcher(value, opts) };
}

function cidr(value: string): CidrRange {
  const [address, prefix] = value.split("/") as [string, string | undefined];
  return { addressPrefix: address, prefixLen: prefix !== undefined ? Number(prefix) : isIP(address) === 6 ? 128 : 32 };
}

/** A peer identity ("cluster.local/ns/foo/sa/bar", or a wildcard form) against the certificate's URI SAN. */
function peerPrincipal(value: string, opts: AuthorizationOptions): Principal {
  if (value === "*") return { authenticated: { principalName: { safeRegex: { regex: ".+" } } } };
  const local = `${ISTIO_LOCAL_TRUST_DOMAIN}/`;
  const principal = value.startsWith(local) ? `${opts.trustDomain}/${value.slice(local.length)}` : value;
  if (principal.startsWith("*")) return { authenticated: { principalName: { suffix: principal.slice(1) } } };
  if (principal.endsWith("*")) return { authenticated: { principalName: { prefix: `spiffe://${principal.slice(0, -1)}` } } };
  return { authenticated: { principalName: { exact: `spiffe://${principal}` } } };
}

function escapeRegex(text: string): string {
  return text.replace(/[\\^$.|?*+()[\]{}]/g, "\\$&");
}

/** A source namespace ("foo", "foo*", "*foo", "*") against the certificate's URI SAN. */
function peerNamespace(value: string): Principal {
  const name = value === "*" ? "[^/]+" : value.startsWith("*") ? `[^/]*${escapeRegex(value.slice(1))}` : value.endsWith("*") ? `${escapeRegex(value.slice(0, -1))}[^/]*` : escapeRegex(value);
  return { authenticated: { principalName: { safeRegex: { regex: `spiffe://[^/]+/ns/${name}/sa/.*` } } } };
}

/**
 * A source service account ("ns/name", or "name" in the policy's namespace) against the
 * certificate's URI SAN, in any trust domain: "spiffe://<any>/ns/<ns>/sa/<name>", both
 * segments literal (dots escaped: "my.sa" matches only itself).
 */
function peerServiceAccount(value: string, policyNamespace: string): Principal {
  const [namespace, name] = value.includes("/") ? (value.split("/", 2) as [string, string]) : [policyNamespace, value];
  return { authenticated: { principalName: { safeRegex: { regex: `spiffe://[^/]+/ns/${escapeRegex(namespace)}/sa/${escapeRegex(name)}` } } } };
}

/**
 * A source trust domain ("example.org", "prod-*", "*.example.org", "*") against the
 * certificate's URI SAN "spiffe://<trust domain>/...". "cluster.local" means this mesh's trust
 * domain, as in principals.
 */
function peerTrustDomain(value: string, opts: AuthorizationOptions): Principal {
  const domain = value === ISTIO_LOCAL_TRUST_DOMAIN ? opts.trustDomain : value;
  const pattern = domain === "*" ? "[^/]+" : domain.startsWith("*") ? `[^/]*${escapeRegex(domain.slice(1))}` : domain.endsWith("*") ? `${escapeRegex(domain.slice(0, -1))}[^/]*` : escapeRegex(domain);
  return { authenticated: { principalName: { safeRegex: { regex: `spiffe://${pattern}/.*` } } } };
}

function payloadMatch(path: readonly string[], value: ValueMatcher): Principal {
  return { metadata: { filter: JWT_AUTHN_FILTER, path: [JWT_PAYLOAD_METADATA_KEY, ...path].map((key) => ({ key })), value } };
}

/** A claim equal to the value, or a list claim containing it ("*": the claim is present). */
function claimPrincipal(claim: readonly string[], value: string): Principal {
  if (value === "*") return payloadMatch(claim, { presentMatch: true });
  const m = stringMatcher(value);
  return payloadMatch(claim, { orMatch: { valueMatchers: [{ stringMatch: m }, { listMatch: { oneOf: { stringMatch: m } } }] } });
}

/** A bare URL scheme ("https:", "https:/"): never a whole issuer, so never a place to split. */
const BARE_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/?$/;

/** Every way to write `text` as issuer + "/" + rest (issuer non-empty and not a bare scheme). */
function issuerSplits(text: string): { iss: string; rest: string }[] {
  const out: { iss: string; rest: string }[] = [];
  for (let i = text.indexOf("/"); i !== -1; i = text.indexOf("/", i + 1)) {
    const iss = text.slice(0, i);
    if (iss !== "" && !BARE_SCHEME.test(iss)) out.push({ iss, rest: text.slice(i + 1) });
  }
  return out;
}

/**
 * A request identity (Istio's request.auth.principal, iss + "/" + sub) against the verified
 * JWT payload. The issuer may itself contain "/", so every "/" is tried as the separator.
 */
function requestPrincipal(value: string): Principal {
  const iss = (m: ValueMatcher) => payloadMatch(["iss"], m);
  const sub = (m: ValueMatcher) => payloadMatch(["sub"], m);
  if (value === "*") return iss({ presentMatch: true });
  let options: Principal[];
  if (value.endsWith("*")) {
    const prefix = value.slice(0, -1);
    options = [
      iss({ stringMatch: { prefix } }),
      ...issuerSplits(prefix).map((s) => andIds([iss({ stringMatch: { exact: s.iss } }), sub(s.rest === "" ? { presentMatch: true } : { stringMatch: { prefix: s.rest } })])),
    ];
  } else if (value.startsWith("*")) {
    // Either sub ends with the suffix, or the suffix is <end of iss> + "/" + the whole sub.
    const suffix = value.slice(1);
    options = [sub({ stringMatch: { suffix } })];
    for (let i = suffix.indexOf("/"); i !== -1; i = suffix.indexOf("/", i + 1)) {
      const issEnd = suffix.slice(0, i);
      const subject = suffix.slice(i + 1);
      if (subject === "") continue;
      options.push(andIds([iss(issEnd === "" ? { presentMatch: true } : { stringMatch: { suffix: issEnd } }), sub({ stringMatch: { exact: subject } })]));
    }
  } else {
    options = issuerSplits(value)
      .filter((s) => s.rest !== "")
      .map((s) => andIds([iss({ stringMatch: { exact: s.iss } }), sub({ stringMatch: { exact: s.rest } })]));
  }
  // No way to split (validation requires a "/", so this is defensive): matches nothing.
  return options.length === 0 ? { notId: { any: true } } : orIds(options);
}
