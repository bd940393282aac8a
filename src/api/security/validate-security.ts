// The spec checks of Istio's security resources (security.istio.io v1, v1beta1):
// PeerAuthentication, AuthorizationPolicy and RequestAuthentication, declared in
// ../kind-registry.ts and run by validateResource (../validate-resource.ts). Every problem is
// reported against its file, document, resource and field, saying what was expected and found.
import { createPublicKey, type JsonWebKey } from "node:crypto";
import {
  CheckedObject,
  DNS_LABEL_RULE,
  IssueCollector,
  describeValue,
  isDnsLabel,
  isDnsSubdomain,
  isIpOrCidr,
  isMapping,
  labelKeyProblem,
} from "../field-checks.js";
import { closestMatch } from "../spelling-hints.js";
import { CONDITION_KEY_NAMES, parseConditionKey, type ConditionKey } from "./condition-keys.js";
import { AUTHORIZATION_ACTIONS, MTLS_MODES } from "./types.js";

/** Istio fields that attach a policy to a Gateway API resource or a Service instead of a selector. */
const TARGET_REF_FIELDS = ["targetRef", "targetRefs"] as const;

/** targetRef(s) are real Istio fields; Weft attaches policies by selector only, for now. */
function rejectTargetRefs(spec: CheckedObject): void {
  for (const key of TARGET_REF_FIELDS) {
    if (spec.has(key)) spec.c.error(spec.at(key), "is not supported yet: Weft applies policies to workloads by selector only; use selector.matchLabels (or no selector for the whole namespace)");
  }
}

/** selector: { matchLabels } — the workloads a policy applies to. Returns whether it is set. */
function checkSelector(spec: CheckedObject): boolean {
  const selector = spec.object("selector", ["matchLabels"]);
  if (!selector) return false;
  selector.stringMap("matchLabels", { checkKey: labelKeyProblem });
  return true;
}

// ---------------------------------------------------------------------------------------
// PeerAuthentication

export function checkPeerAuthenticationSpec(c: IssueCollector, value: unknown, path: string): void {
  const spec = CheckedObject.of(c, value, path, ["selector", "mtls", "portLevelMtls"]);
  if (!spec) return;
  const hasSelector = checkSelector(spec);
  checkMutualTls(spec.object("mtls", ["mode"]));
  const portLevel = spec.mapOf("portLevelMtls", (item, itemPath, port) => {
    if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) c.error(itemPath, `expected a port number from 1 to 65535 as the key, found ${describeValue(port)}`);
    const mtls = CheckedObject.of(c, item, itemPath, ["mode"]);
    if (mtls?.require("mode", `one of ${MTLS_MODES.join(", ")}`)) checkMutualTls(mtls);
  });
  if (portLevel && Object.keys(portLevel).length === 0) c.error(spec.at("portLevelMtls"), "expected at least one port (\"8080\": { mode: ... }); leave portLevelMtls out if no port needs its own mode");
  if (spec.has("portLevelMtls") && !hasSelector) {
    c.error(spec.at("portLevelMtls"), "applies only to a policy with a selector; a namespace-wide or mesh-wide PeerAuthentication cannot set port-level modes (add selector.matchLabels, or move the ports to a workload policy)");
  }
}

function checkMutualTls(mtls: CheckedObject | undefined): void {
  mtls?.enumValue("mode", MTLS_MODES);
}

// ---------------------------------------------------------------------------------------
// AuthorizationPolicy

const AUTHORIZATION_POLICY_FIELDS = ["selector", "action", "provider", "rules"] as const;
const RULE_FIELDS = ["from", "to", "when"] as const;
const SOURCE_FIELDS = [
  "principals",
  "notPrincipals",
  "requestPrincipals",
  "notRequestPrincipals",
  "namespaces",
  "notNamespaces",
  "serviceAccounts",
  "notServiceAccounts",
  "trustDomains",
  "notTrustDomains",
  "ipBlocks",
  "notIpBlocks",
  "remoteIpBlocks",
  "notRemoteIpBlocks",
] as const;
/** Istio's bounds on serviceAccounts / notServiceAccounts (its CRD schema). */
const SERVICE_ACCOUNTS_MAX_ITEMS = 16;
const SERVICE_ACCOUNT_MAX_LENGTH = 320;
const OPERATION_FIELDS = ["hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths"] as const;
const CONDITION_FIELDS = ["key", "values", "notValues"] as const;

const WILDCARD_RULE = 'a "*" only as the whole value (any value), at the start ("*abc": suffix match) or at the end ("abc*": prefix match)';

/**
 * Istio's string match forms: "abc" (exact), "abc*" (prefix), "*abc" (suffix), "*" (present).
 * A "*" anywhere else would be taken literally by Istio, which is never what was meant.
 */
export function wildcardProblem(value: string): string | undefined {
  if (value === "") return "expected a non-empty string, found an empty string";
  if (value === "*") return undefined;
  const inner = value.slice(1, -1);
  if (inner.includes("*") || (value.startsWith("*") && value.endsWith("*"))) return `expected ${WILDCARD_RULE}, found ${describeValue(value)}`;
  return undefined;
}

const PRINCIPAL_FORMAT = '"<trust domain>/ns/<namespace>/sa/<service account>" such as "cluster.local/ns/default/sa/productpage"';

/** A peer identity: "cluster.local/ns/default/sa/sleep", or a wildcard form of one. */
function principalProblem(value: string): string | undefined {
  const wildcard = wildcardProblem(value);
  if (wildcard) return wildcard;
  if (value.startsWith("spiffe://")) return `expected ${PRINCIPAL_FORMAT} (without "spiffe://"), found ${describeValue(value)}`;
  if (!value.includes("*") && !/^[^/\s]+\/ns\/[^/\s]+\/sa\/[^/\s]+$/.test(value)) return `expected ${PRINCIPAL_FORMAT}, or a wildcard form of one, found ${describeValue(value)}`;
  return undefined;
}

/** A request (JWT) identity: "<iss>/<sub>", e.g. "https://accounts.example.com/1234", or a wildcard form. */
function requestPrincipalProblem(value: string): string | undefined {
  const wildcard = wildcardProblem(value);
  if (wildcard) return wildcard;
  if (!value.includes("*") && !/^.+\/.+$/.test(value)) return `expected "<issuer>/<subject>" such as "https://accounts.example.com/1234" (the JWT's iss and sub claims joined by "/"), or a wildcard form, found ${describeValue(value)}`;
  return undefined;
}

function namespacePatternProblem(value: string): string | undefined {
  const wildcard = wildcardProblem(value);
  if (wildcard) return wildcard;
  const name = value.replace(/^\*|\*$/g, "");
  if (name !== "" && !/^[a-z0-9-]+$/.test(name)) return `expected a namespace name or a wildcard form of one ("dev", "team-*", "*-test"), found ${describeValue(value)}; a namespace name is ${DNS_LABEL_RULE}`;
  if (!value.includes("*") && !isDnsLabel(value)) return `expected a namespace name, ${DNS_LABEL_RULE}; found ${describeValue(value)}`;
  return undefined;
}

/** A service account as Istio's serviceAccounts takes it: "namespace/name", or "name" in the policy's namespace; no wildcards. */
function serviceAccountProblem(value: string): string | undefined {
  const format = `expected "<namespace>/<service account>" or "<service account>" (in the policy's namespace), without wildcards, such as "default/productpage"`;
  if (value.length > SERVICE_ACCOUNT_MAX_LENGTH) return `${format}; found ${value.length} characters, more than Istio's ${SERVICE_ACCOUNT_MAX_LENGTH}`;
  const parts = value.split("/");
  if (value.includes("*") || parts.length > 2) return `${format}, found ${describeValue(value)}`;
  const [namespace, name] = parts.length === 2 ? parts : [undefined, parts[0]];
  if (namespace !== undefined && !isDnsLabel(namespace)) return `${format}, found ${describeValue(value)}; a namespace is ${DNS_LABEL_RULE}`;
  if (!name || !isDnsSubdomain(name)) return `${format}, found ${describeValue(value)}; a service account name is a DNS-1123 name (lowercase letters, digits, '-' and '.')`;
  return undefined;
}

/** A trust domain ("cluster.local", "example.org") or a wildcard form of one ("*.example.org", "prod-*", "*"). */
function trustDomainProblem(value: string): string | undefined {
  const wildcard = wildcardProblem(value);
  if (wildcard) return wildcard;
  const name = value.replace(/^\*|\*$/g, "");
  if (name !== "" && !/^[A-Za-z0-9._-]+$/.test(name)) return `expected a trust domain such as "cluster.local" or a wildcard form of one ("*.example.org"), found ${describeValue(value)}`;
  return undefined;
}

function ipBlockProblem(value: string): string | undefined {
  if (isIpOrCidr(value)) return undefined;
  return `expected an IP address ("203.0.113.4") or a CIDR block ("203.0.113.0/24"), found ${describeValue(value)}`;
}

function portStringProblem(value: string): string | undefined {
  if (/^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 65535) return undefined;
  return `expected a port number from 1 to 65535 (as a string, e.g. "8080"), found ${describeValue(value)}`;
}

function pathProblem(value: string): string | undefined {
  if (/[{}]/.test(value)) return pathTemplateProblem(value);
  const wildcard = wildcardProblem(value);
  if (wildcard) return wildcard;
  if (!value.startsWith("/") && !value.startsWith("*")) return `expected a path starting with "/" (or a suffix match starting with "*"), found ${describeValue(value)}`;
  return undefined;
}

/** A path segment Envoy's URI template accepts as a literal (RFC 3986 pchar). */
const TEMPLATE_LITERAL = /^[A-Za-z0-9\-._~%!$&'()+,;:@=]+$/;

/**
 * Istio's path templates: "{*}" matches one path segment, "{**}" any number of them (zero or
 * more, so "/files/{**}" also matches "/files/"); each is a whole segment, "{**}" at most once
 * and after every "{*}"; the other segments are literals (no "*", no empty segment). Any other
 * "{" or "}" is refused, as Istio refuses it ("/users/{id}" is not a template Istio knows).
 */
export function pathTemplateProblem(value: string): string | undefined {
  const rule = 'a path template: "{*}" (one segment) and "{**}" (any remaining segments) as whole segments, "{**}" at most once and last among them, e.g. "/api/{*}/orders" or "/files/{**}"';
  if (!value.startsWith("/")) return `expected ${rule}; it must start with "/", found ${describeValue(value)}`;
  let sawAny = false;
  for (const segment of value.replace(/^\/+|\/+$/g, "").split("/")) {
    if (segment === "{*}" || segment === "{**}") {
      if (sawAny) return `expected ${rule}; "{**}" must be the last operator, found ${describeValue(value)}`;
      sawAny = segment === "{**}";
      continue;
    }
    if (/[{}]/.test(segment)) return `expected ${rule}; found the segment ${JSON.stringify(segment)} in ${describeValue(value)} (only "{*}" and "{**}" may use braces)`;
    if (!TEMPLATE_LITERAL.test(segment)) return `expected ${rule}; the segment ${JSON.stringify(segment)} of ${describeValue(value)} is not a literal (letters, digits and -._~%!$&'()+,;:@= only; no "*" or empty segment in a template)`;
  }
  return undefined;
}

/** Whether an AuthorizationPolicy path is a template (Envoy's uri_template matcher) rather than an exact/prefix/suffix match. */
export function isPathTemplate(value: string): boolean {
  return value.includes("{*}") || value.includes("{**}");
}

/**
 * A list of strings in a rule. Istio's schema requires strings even for ports, so numbers get
 * a "quote it" hint. Returns nothing; problems are recorded.
 */
function checkRuleStrings(o: CheckedObject, key: string, what: string, problem: (value: string) => string | undefined): void {
  if (!o.has(key)) return;
  const list = o.value[key];
  if (!Array.isArray(list)) {
    o.c.error(o.at(key), `expected a list of ${what}, found ${describeValue(list)}`);
    return;
  }
  if (list.length === 0) o.c.error(o.at(key), `expected a non-empty list of ${what}, found an empty list (omit the field to match anything)`);
  list.forEach((item, i) => {
    const itemPath = `${o.at(key)}[${i}]`;
    if (typeof item !== "string") {
      const hint = typeof item === "number" ? ` (quote it: "${item}")` : "";
      o.c.error(itemPath, `expected a string, found ${describeValue(item)}${hint}`);
      return;
    }
    const p = problem(item);
    if (p) o.c.error(itemPath, p);
  });
}

export function checkAuthorizationPolicySpec(c: IssueCollector, value: unknown, path: string): void {
  const spec = CheckedObject.of(c, value, path, [...AUTHORIZATION_POLICY_FIELDS, ...TARGET_REF_FIELDS]);
  if (!spec) return;
  rejectTargetRefs(spec);
  checkSelector(spec);
  const action = spec.enumValue("action", AUTHORIZATION_ACTIONS);
  // CUSTOM: the external authorizer is the mesh settings' extension provider named here.
  const provider = spec.object("provider", ["name"]);
  if (action === "CUSTOM") {
    if (spec.require("provider", 'the external authorizer, { name: <an envoyExtAuthzHttp or envoyExtAuthzGrpc provider of the mesh settings> }') && provider?.require("name", "the name of an extension provider of the mesh settings (weft serve --mesh-config)")) {
      provider.string("name", { nonEmpty: true });
    }
  } else if (provider) {
    provider.string("name");
    c.warning(spec.at("provider"), `is used only with action CUSTOM; this ${action ?? "ALLOW"} policy ignores it`);
  }
  spec.list("rules", (item, itemPath) => checkRule(c, item, itemPath), { itemDescription: "rules" });
  if ((action === "DENY" || action === "AUDIT") && !spec.has("rules")) {
    c.warning(spec.path, `a ${action} policy without rules matches nothing, so it has no effect (only an ALLOW policy without rules means something: deny everything)`);
  }
}

function checkRule(c: IssueCollector, value: unknown, path: string): void {
  const rule = CheckedObject.of(c, value, path, RULE_FIELDS);
  if (!rule) return;
  rule.list(
    "from",
    (item, itemPath) => {
      const from = CheckedObject.of(c, item, itemPath, ["source"]);
      if (from?.require("source", `a source with at least one of ${SOURCE_FIELDS.join(", ")}`)) checkSource(c, from.value["source"], from.at("source"));
    },
    { nonEmpty: true, itemDescription: "sources (omit from to match any source)" },
  );
  rule.list(
    "to",
    (item, itemPath) => {
      const to = CheckedObject.of(c, item, itemPath, ["operation"]);
      if (to?.require("operation", `an operation with at least one of ${OPERATION_FIELDS.join(", ")}`)) checkOperation(c, to.value["operation"], to.at("operation"));
    },
    { nonEmpty: true, itemDescription: "operations (omit to to match any operation)" },
  );
  rule.list("when", (item, itemPath) => checkCondition(c, item, itemPath), { nonEmpty: true, itemDescription: "conditions (omit when to add none)" });
}

function checkSource(c: IssueCollector, value: unknown, path: string): void {
  const source = CheckedObject.of(c, value, path, SOURCE_FIELDS);
  if (!source) return;
  if (!SOURCE_FIELDS.some((k) => source.has(k))) c.error(path, `expected at least one of ${SOURCE_FIELDS.join(", ")}, found an empty source (omit from to match any source)`);
  for (const key of ["principals", "notPrincipals"]) checkRuleStrings(source, key, "peer identities", principalProblem);
  for (const key of ["requestPrincipals", "notRequestPrincipals"]) checkRuleStrings(source, key, "request identities", requestPrincipalProblem);
  for (const key of ["namespaces", "notNamespaces"]) checkRuleStrings(source, key, "namespaces", namespacePatternProblem);
  for (const key of ["serviceAccounts", "notServiceAccounts"]) {
    checkRuleStrings(source, key, "service accounts", serviceAccountProblem);
    const list = source.value[key];
    if (Array.isArray(list) && list.length > SERVICE_ACCOUNTS_MAX_ITEMS) c.error(source.at(key), `expected at most ${SERVICE_ACCOUNTS_MAX_ITEMS} service accounts (Istio's limit), found ${list.length}; use namespaces or principals for more`);
  }
  for (const key of ["trustDomains", "notTrustDomains"]) checkRuleStrings(source, key, "trust domains", trustDomainProblem);
  for (const key of ["ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"]) checkRuleStrings(source, key, "IP addresses or CIDR blocks", ipBlockProblem);
}

function checkOperation(c: IssueCollector, value: unknown, path: string): void {
  const operation = CheckedObject.of(c, value, path, OPERATION_FIELDS);
  if (!operation) return;
  if (!OPERATION_FIELDS.some((k) => operation.has(k))) c.error(path, `expected at least one of ${OPERATION_FIELDS.join(", ")}, found an empty operation (omit to to match any operation)`);
  for (const key of ["hosts", "notHosts"]) checkRuleStrings(operation, key, "hosts", wildcardProblem);
  for (const key of ["ports", "notPorts"]) checkRuleStrings(operation, key, "ports", portStringProblem);
  for (const key of ["methods", "notMethods"]) {
    checkRuleStrings(operation, key, "HTTP methods", wildcardProblem);
    const methods = operation.value[key];
    if (Array.isArray(methods)) {
      methods.forEach((m, i) => {
        if (typeof m === "string" && m !== m.toUpperCase()) c.warning(`${operation.at(key)}[${i}]`, `HTTP methods are case-sensitive and sent in uppercase; "${m}" matches only a request whose method is literally "${m}" (did you mean "${m.toUpperCase()}"?)`);
      });
    }
  }
  for (const key of ["paths", "notPaths"]) checkRuleStrings(operation, key, "paths", pathProblem);
}

/** The problem with one condition value for a key, if any. */
function conditionValueProblem(key: ConditionKey, value: string): string | undefined {
  switch (key.kind) {
    case "source.ip":
    case "remote.ip":
    case "destination.ip":
      return ipBlockProblem(value);
    case "destination.port":
      return /^\d+$/.test(value) && Number(value) <= 65535 ? undefined : `expected a port number from 0 to 65535 (as a string), found ${describeValue(value)}`;
    case "source.namespace":
      return namespacePatternProblem(value);
    case "source.principal":
      return principalProblem(value);
    case "request.auth.principal":
      return requestPrincipalProblem(value);
    default:
      return wildcardProblem(value);
  }
}

function checkCondition(c: IssueCollector, value: unknown, path: string): void {
  const condition = CheckedObject.of(c, value, path, CONDITION_FIELDS);
  if (!condition) return;
  let key: ConditionKey | undefined;
  if (condition.require("key", `an attribute name, one of ${CONDITION_KEY_NAMES.join(", ")}`)) {
    const name = condition.string("key", { nonEmpty: true });
    if (name !== undefined) {
      key = parseConditionKey(name);
      if (!key) {
        if (name.startsWith("experimental.")) c.error(condition.at("key"), `the experimental attribute "${name}" is not supported yet; expected one of ${CONDITION_KEY_NAMES.join(", ")}`);
        else {
          const hint = closestMatch(name.replace(/\[.*$/, ""), CONDITION_KEY_NAMES.map((k) => k.replace(/\[.*$/, "")));
          c.error(condition.at("key"), `unknown attribute ${JSON.stringify(name)}${hint ? ` (did you mean "${CONDITION_KEY_NAMES.find((k) => k.startsWith(hint))}"?)` : ""}; expected one of ${CONDITION_KEY_NAMES.join(", ")}`);
        }
      }
    }
  }
  if (!condition.has("values") && !condition.has("notValues")) c.error(path, "expected values or notValues (or both), found neither");
  for (const field of ["values", "notValues"]) checkRuleStrings(condition, field, "values", (v) => (key ? conditionValueProblem(key, v) : wildcardProblem(v)));
}

// ---------------------------------------------------------------------------------------
// RequestAuthentication

const JWT_RULE_FIELDS = ["issuer", "audiences", "jwksUri", "jwks", "fromHeaders", "fromParams", "outputPayloadToHeader", "forwardOriginalToken", "outputClaimToHeaders", "spaceDelimitedClaims"] as const;
const JWT_RULE_NOT_SUPPORTED = ["fromCookies", "timeout"];
/** Istio's bound on spaceDelimitedClaims (its CRD: at most 64, each non-empty). */
const MAX_SPACE_DELIMITED_CLAIMS = 64;

/** An HTTP header name (RFC 9110 token). */
function headerNameProblem(value: string): string | undefined {
  if (/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value)) return undefined;
  return `expected an HTTP header name such as "x-jwt-payload", found ${describeValue(value)}`;
}

export function checkRequestAuthenticationSpec(c: IssueCollector, value: unknown, path: string): void {
  const spec = CheckedObject.of(c, value, path, ["selector", "jwtRules", ...TARGET_REF_FIELDS]);
  if (!spec) return;
  rejectTargetRefs(spec);
  checkSelector(spec);
  const issuers = new Map<string, number>();
  spec.list("jwtRules", (item, itemPath, index) => {
    const issuer = checkJwtRule(c, item, itemPath);
    if (issuer === undefined) return;
    const first = issuers.get(issuer);
    if (first !== undefined) c.warning(`${itemPath}.issuer`, `duplicate issuer ${JSON.stringify(issuer)}: jwtRules[${first}] already names it, and a token passes if either rule accepts it; prefer one rule per issuer`);
    else issuers.set(issuer, index);
  }, { itemDescription: "JWT rules" });
}

/** Returns the issuer when it is well-formed. */
function checkJwtRule(c: IssueCollector, value: unknown, path: string): string | undefined {
  const rule = CheckedObject.of(c, value, path, JWT_RULE_FIELDS, JWT_RULE_NOT_SUPPORTED);
  if (!rule) return undefined;
  const issuer = rule.require("issuer", 'the token issuer (its "iss" claim), e.g. "https://accounts.example.com"') ? rule.string("issuer", { nonEmpty: true }) : undefined;
  rule.stringList("audiences", { itemDescription: "audiences", checkItem: (a) => (a === "" ? "expected a non-empty audience, found an empty string" : undefined) });
  rule.stringList("spaceDelimitedClaims", { itemDescription: "claim names", checkItem: (n) => (n === "" ? "expected a claim name, found an empty string" : undefined) });
  const spaceDelimited = rule.value["spaceDelimitedClaims"];
  if (Array.isArray(spaceDelimited) && spaceDelimited.length > MAX_SPACE_DELIMITED_CLAIMS) c.error(rule.at("spaceDelimitedClaims"), `expected at most ${MAX_SPACE_DELIMITED_CLAIMS} claim names, found ${spaceDelimited.length}`);

  const jwksUri = rule.string("jwksUri", { nonEmpty: true });
  if (jwksUri !== undefined) {
    const problem = jwksUriProblem(jwksUri);
    if (problem) c.error(rule.at("jwksUri"), problem);
  }
  const jwks = rule.string("jwks", { nonEmpty: true });
  if (jwks !== undefined) {
    const problem = jwksProblem(jwks);
    if (problem) c.error(rule.at("jwks"), problem);
  }
  if (rule.has("jwks") && rule.has("jwksUri")) c.error(path, "expected only one of jwks and jwksUri, found both");
  if (!rule.has("jwks") && !rule.has("jwksUri") && issuer !== undefined) {
    // Neither: the control plane finds the keys by OpenID Connect discovery of the issuer
    // (<issuer>/.well-known/openid-configuration -> jwks_uri; src/runner/oidc-discovery.ts).
    const problem = jwksUriProblem(issuer);
    if (problem) c.error(`${path}.issuer`, `without jwks or jwksUri the keys are found by OpenID Connect discovery of the issuer, so it must be a URL: ${problem}`);
  }

  rule.list("fromHeaders", (item, itemPath) => {
    const header = CheckedObject.of(c, item, itemPath, ["name", "prefix"]);
    if (!header) return;
    const name = header.require("name", 'a header name such as "authorization"') ? header.string("name", { nonEmpty: true }) : undefined;
    const problem = name === undefined ? undefined : headerNameProblem(name);
    if (problem) c.error(header.at("name"), problem);
    header.string("prefix");
  }, { nonEmpty: true, itemDescription: "header locations" });
  rule.stringList("fromParams", { nonEmpty: true, itemDescription: "query parameter names", checkItem: (p) => (p === "" ? "expected a query parameter name, found an empty string" : undefined) });

  const payloadHeader = rule.string("outputPayloadToHeader", { nonEmpty: true });
  const payloadHeaderProblem = payloadHeader === undefined ? undefined : headerNameProblem(payloadHeader);
  if (payloadHeaderProblem) c.error(rule.at("outputPayloadToHeader"), payloadHeaderProblem);
  rule.boolean("forwardOriginalToken");

  const claimHeaders = new Map<string, number>();
  rule.list("outputClaimToHeaders", (item, itemPath, index) => {
    const claim = CheckedObject.of(c, item, itemPath, ["header", "claim"]);
    if (!claim) return;
    const header = claim.require("header", "the name of the header to set") ? claim.string("header", { nonEmpty: true }) : undefined;
    if (claim.require("claim", 'the claim to copy, e.g. "sub" or "nested.key"')) claim.string("claim", { nonEmpty: true });
    if (header === undefined) return;
    const problem = headerNameProblem(header);
    if (problem) c.error(claim.at("header"), problem);
    const first = claimHeaders.get(header.toLowerCase());
    if (first !== undefined) c.error(claim.at("header"), `duplicate header "${header}": outputClaimToHeaders[${first}] already sets it; each header must be unique`);
    else claimHeaders.set(header.toLowerCase(), index);
  }, { nonEmpty: true, itemDescription: "claim-to-header operations" });
  return issuer;
}

function jwksUriProblem(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return `expected an http:// or https:// URL such as "https://example.com/.well-known/jwks.json", found ${describeValue(uri)}`;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return `expected an http:// or https:// URL, found the scheme "${url.protocol.slice(0, -1)}"`;
  if (url.hostname === "") return `expected a URL with a host name, found ${describeValue(uri)}`;
  return undefined;
}

/** A JSON Web Key Set: {"keys": [{"kty": ...}, ...]}, as Envoy parses it. */
function jwksProblem(text: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return `expected a JSON Web Key Set (JSON such as {"keys": [...]}), but it is not valid JSON: ${(err as Error).message}`;
  }
  if (!isMapping(parsed) || !Array.isArray(parsed["keys"])) return `expected a JSON Web Key Set, a JSON object with a "keys" list, found ${isMapping(parsed) ? `an object with ${Object.keys(parsed).length ? `the fields ${Object.keys(parsed).join(", ")}` : "no fields"}` : "JSON that is not an object"}`;
  const keys = parsed["keys"];
  if (keys.length === 0) return 'expected a JSON Web Key Set with at least one key, found "keys": []';
  for (const [i, key] of keys.entries()) {
    if (!isMapping(key) || typeof key["kty"] !== "string") return `expected every key to be a JSON object with a "kty" (key type) field; keys[${i}] is not`;
    if (key["kty"] === "oct") {
      if (typeof key["k"] !== "string" || key["k"] === "") return `keys[${i}] is a symmetric ("oct") key without its "k" value`;
      continue;
    }
    try {
      createPublicKey({ key: key as JsonWebKey, format: "jwk" });
    } catch (err) {
      return `keys[${i}] (kty "${key["kty"]}") is not a usable public key: ${(err as Error).message}`;
    }
  }
  return undefined;
}
