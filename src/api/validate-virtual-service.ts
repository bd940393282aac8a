// Schema and meaning checks for VirtualService specs: hosts, gateways, and HTTP/TCP/TLS routes.
import {
  CheckedObject,
  DNS_LABEL_RULE,
  DNS_SUBDOMAIN_RULE,
  checkExportTo,
  describeValue,
  hostNameProblem,
  isDnsLabel,
  isDnsSubdomain,
  isIpOrCidr,
  labelKeyProblem,
  type IssueCollector,
} from "./field-checks.js";
import { checkUnreachableRules } from "./unreachable-routes.js";

const VIRTUAL_SERVICE_FIELDS = ["hosts", "gateways", "http", "tcp", "tls", "exportTo"] as const;
const HTTP_ROUTE_FIELDS = [
  "name",
  "match",
  "route",
  "redirect",
  "directResponse",
  "delegate",
  "rewrite",
  "timeout",
  "retries",
  "fault",
  "mirror",
  "mirrorPercentage",
  "mirrorPercent",
  "mirrors",
  "corsPolicy",
  "headers",
] as const;
const HTTP_ROUTE_NOT_SUPPORTED = ["mirror_percent"];
/** Istio refuses a direct response body over 1 MB and warns over 100 KB (it goes to every proxy). */
const DIRECT_RESPONSE_BODY_MAX = 1024 * 1024;
const DIRECT_RESPONSE_BODY_WARN = 100 * 1024;
const HTTP_MATCH_FIELDS = ["name", "uri", "scheme", "method", "authority", "headers", "queryParams", "withoutHeaders", "port", "sourceLabels", "gateways", "sourceNamespace", "ignoreUriCase"] as const;
const STRING_MATCH_FIELDS = ["exact", "prefix", "regex"] as const;
const DESTINATION_FIELDS = ["host", "subset", "port"] as const;
const HTTP_ROUTE_DESTINATION_FIELDS = ["destination", "weight", "headers"] as const;
const ROUTE_DESTINATION_FIELDS = ["destination", "weight"] as const;
const HEADERS_FIELDS = ["request", "response"] as const;
const HEADER_OPERATIONS_FIELDS = ["set", "add", "remove"] as const;
const REDIRECT_FIELDS = ["uri", "authority", "port", "scheme", "redirectCode"] as const;
const REWRITE_FIELDS = ["uri", "authority"] as const;
const RETRY_FIELDS = ["attempts", "perTryTimeout", "retryOn", "retryRemoteLocalities"] as const;
const FAULT_FIELDS = ["delay", "abort"] as const;
const CORS_FIELDS = ["allowOrigins", "allowMethods", "allowHeaders", "exposeHeaders", "maxAge", "allowCredentials"] as const;
const L4_MATCH_FIELDS = ["destinationSubnets", "port", "sourceLabels", "gateways", "sourceNamespace"] as const;
const TLS_MATCH_FIELDS = ["sniHosts", ...L4_MATCH_FIELDS] as const;

/** Envoy's retry_on policies (HTTP and gRPC); Istio also accepts bare status codes ("503"). */
const RETRY_ON_POLICIES = [
  "5xx",
  "gateway-error",
  "reset",
  "reset-before-request",
  "connect-failure",
  "envoy-ratelimited",
  "retriable-4xx",
  "refused-stream",
  "retriable-status-codes",
  "retriable-headers",
  "http3-post-connect-failure",
  "cancelled",
  "deadline-exceeded",
  "internal",
  "resource-exhausted",
  "unavailable",
];

const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
/** The redirect codes Envoy can send (RedirectAction.RedirectResponseCode). */
const REDIRECT_CODES = [301, 302, 303, 307, 308];

export function checkVirtualServiceSpec(c: IssueCollector, value: unknown, path: string): void {
  const spec = CheckedObject.of(c, value, path, VIRTUAL_SERVICE_FIELDS);
  if (!spec) return;

  const hosts = spec.stringList("hosts", { itemDescription: "host names", checkItem: (h) => hostNameProblem(h, { wildcard: true }) });
  const gateways = spec.stringList("gateways", { itemDescription: "gateway names", checkItem: gatewayReferenceProblem });
  // Without hosts, a VirtualService is a delegate: HTTP rules that another VirtualService's
  // `delegate` includes (Istio: no gateways, no TCP or TLS routes, no further delegation).
  const isDelegate = spec.value["hosts"] === undefined || (Array.isArray(spec.value["hosts"]) && spec.value["hosts"].length === 0);
  if (isDelegate) {
    if (gateways && gateways.length > 0) c.error(spec.at("gateways"), "a delegate VirtualService (one without hosts) must have no gateways: the VirtualService that delegates to it decides where its rules apply");
    for (const kind of ["tcp", "tls"] as const) {
      if (spec.has(kind)) c.error(spec.at(kind), `a delegate VirtualService (one without hosts) must have no ${kind} routes: only HTTP rules can be delegated; give it hosts to route ${kind.toUpperCase()} itself`);
    }
  }
  const boundToMesh = gateways === undefined || gateways.length === 0 || gateways.includes("mesh");
  if (hosts?.includes("*") && boundToMesh) {
    c.error(spec.at("hosts"), 'the host "*" is not allowed for a VirtualService that applies to the mesh (no gateways, or the gateway "mesh"); name the hosts or bind it to a Gateway');
  }
  checkExportTo(spec);

  if (!spec.has("http") && !spec.has("tcp") && !spec.has("tls")) {
    c.error(path, "expected at least one of http, tcp or tls routes, found none");
  }
  spec.list("http", (item, itemPath) => checkHttpRoute(c, item, itemPath, isDelegate), { itemDescription: "HTTP routes" });
  spec.list("tcp", (item, itemPath) => checkTcpRoute(c, item, itemPath), { itemDescription: "TCP routes" });
  spec.list("tls", (item, itemPath) => checkTlsRoute(c, item, itemPath), { itemDescription: "TLS routes" });
  checkUnreachableRules(c, spec.value, path);
}

/** "mesh", "name" (a Gateway in this namespace) or "namespace/name". */
function gatewayReferenceProblem(ref: string): string | undefined {
  if (ref === "mesh") return undefined;
  const parts = ref.split("/");
  if (parts.length === 1 && isDnsSubdomain(ref)) return undefined;
  if (parts.length === 2 && isDnsLabel(parts[0]!) && isDnsSubdomain(parts[1]!)) return undefined;
  return `expected "mesh", a Gateway name, or "namespace/name" (names are ${DNS_SUBDOMAIN_RULE}), found ${describeValue(ref)}`;
}

// ---------------------------------------------------------------------------------------
// HTTP routes

function checkHttpRoute(c: IssueCollector, value: unknown, path: string, inDelegate: boolean): void {
  const route = CheckedObject.of(c, value, path, HTTP_ROUTE_FIELDS, HTTP_ROUTE_NOT_SUPPORTED);
  if (!route) return;
  route.string("name");
  route.list("match", (item, itemPath) => checkHttpMatch(c, item, itemPath), { itemDescription: "match conditions" });

  const hasRoute = route.has("route");
  const hasRedirect = route.has("redirect");
  const hasDirectResponse = route.has("directResponse");
  if (route.has("delegate")) {
    // A root rule: its requests go to the delegate's rules (merged with this rule's match).
    if (inDelegate) c.error(route.at("delegate"), "a delegate VirtualService (one without hosts) cannot delegate again: Istio supports one level of delegation");
    checkDelegate(route);
    if (hasRoute) c.error(route.at("route"), "cannot be used together with delegate: the delegate VirtualService's rules say where requests go");
    if (hasRedirect) c.error(route.at("redirect"), "cannot be used together with delegate: the delegate VirtualService's rules say where requests go");
  } else {
    const actions = [hasRoute && "route", hasRedirect && "redirect", hasDirectResponse && "directResponse"].filter((a): a is string => !!a);
    if (actions.length > 1) c.error(path, `expected one of route, redirect or directResponse, found ${actions.join(" and ")}; a redirect or direct response answers the request itself`);
    if (actions.length === 0) c.error(path, "expected route, redirect, directResponse or delegate, found none; the rule has nowhere to send requests");
  }
  for (const [answer, present] of [["redirect", hasRedirect], ["directResponse", hasDirectResponse]] as const) {
    if (!present) continue;
    if (route.has("rewrite")) c.error(route.at("rewrite"), `cannot be used together with ${answer}`);
    if (route.has("fault")) c.error(route.at("fault"), `cannot be used together with ${answer}`);
  }
  checkDirectResponse(route);

  checkDestinationList(route, "route", HTTP_ROUTE_DESTINATION_FIELDS);
  checkRedirect(route);
  checkRewrite(route);
  route.duration("timeout", { positive: false }); // 0s disables the timeout, as in Istio
  checkRetries(route);
  checkFault(route);
  const mirror = route.has("mirror") ? checkDestination(c, route.value["mirror"], route.at("mirror")) : undefined;
  checkPercent(route, "mirrorPercentage");
  // Istio accepts a mirror share without a mirror (it has no effect): a warning.
  if (route.has("mirrorPercentage") && !mirror) c.warning(route.at("mirrorPercentage"), "is set but there is no mirror destination: it has no effect (mirrors set their own percentage)");
  if (route.has("mirrorPercent")) {
    route.integer("mirrorPercent", { min: 0, max: 100 });
    if (!mirror) c.warning(route.at("mirrorPercent"), "is set but there is no mirror destination: it has no effect");
    c.warning(route.at("mirrorPercent"), `is deprecated in Istio; use mirrorPercentage: { value: N }${route.has("mirrorPercentage") ? " (mirrorPercentage is set and wins)" : ""}`);
  }
  route.list(
    "mirrors",
    (item, itemPath) => {
      const policy = CheckedObject.of(c, item, itemPath, ["destination", "percentage"]);
      if (!policy) return;
      if (policy.require("destination", "a destination with a host")) checkDestination(c, policy.value["destination"], policy.at("destination"));
      checkPercent(policy, "percentage");
    },
    { itemDescription: "mirror policies" },
  );
  if (mirror && route.has("mirrors")) c.error(route.at("mirrors"), "cannot be used together with mirror: list every mirror under mirrors");
  checkCorsPolicy(route);
  checkHeaders(route, "headers");
}

function checkHttpMatch(c: IssueCollector, value: unknown, path: string): void {
  const match = CheckedObject.of(c, value, path, HTTP_MATCH_FIELDS, ["statPrefix"]);
  if (!match) return;
  match.string("name");
  for (const key of ["uri", "scheme", "method", "authority"] as const) {
    if (match.has(key)) checkStringMatch(c, match.value[key], match.at(key), { presenceAllowed: false, prefixAllowed: true });
  }
  for (const key of ["headers", "withoutHeaders"] as const) {
    match.mapOf(key, (item, itemPath, name) => {
      if (name !== name.toLowerCase()) c.error(itemPath, `header names must be lowercase (Envoy matches them in lowercase), found "${name}"; write "${name.toLowerCase()}"`);
      // An empty match ({}) checks only that the header is present.
      checkStringMatch(c, item, itemPath, { presenceAllowed: true, prefixAllowed: true });
    });
  }
  match.mapOf("queryParams", (item, itemPath) => checkStringMatch(c, item, itemPath, { presenceAllowed: true, prefixAllowed: false }));
  match.port("port");
  match.stringMap("sourceLabels", { checkKey: labelKeyProblem });
  match.stringList("gateways", { itemDescription: "gateway names", checkItem: gatewayReferenceProblem });
  checkNamespaceName(match, "sourceNamespace");
  match.boolean("ignoreUriCase");
}

/**
 * A StringMatch holds exactly one of exact, prefix, regex. Header and query-parameter matches
 * may be empty ({}), which Istio reads as "present with any value". Regexes must be RE2.
 */
function checkStringMatch(c: IssueCollector, value: unknown, path: string, options: { presenceAllowed: boolean; prefixAllowed: boolean }): void {
  const match = CheckedObject.of(c, value, path, STRING_MATCH_FIELDS);
  if (!match) return;
  const set = STRING_MATCH_FIELDS.filter((k) => match.has(k));
  if (set.length > 1) c.error(path, `expected exactly one of exact, prefix or regex, found ${set.join(" and ")}`);
  if (set.length === 0 && !options.presenceAllowed) c.error(path, "expected exactly one of exact, prefix or regex, found none");
  match.string("exact");
  match.string("prefix");
  match.regex("regex");
  if (!options.prefixAllowed && match.has("prefix")) c.error(match.at("prefix"), "prefix matching is not supported for query parameters; use exact or regex");
}

/**
 * A list of route destinations. As Istio, weights are relative: each is 0 or more, and with
 * more than one destination they must not all be 0 (Envoy splits traffic in proportion).
 */
function checkDestinationList(parent: CheckedObject, key: string, fields: readonly string[]): void {
  const weights: (number | undefined)[] = [];
  let weightsWellFormed = true;
  const items = parent.list(
    key,
    (item, itemPath) => {
      const dest = CheckedObject.of(parent.c, item, itemPath, fields);
      if (!dest) return;
      if (dest.require("destination", "a destination with a host")) checkDestination(parent.c, dest.value["destination"], dest.at("destination"));
      const weight = dest.integer("weight", { min: 0, max: 4294967295 });
      if (dest.has("weight") && weight === undefined) weightsWellFormed = false;
      weights.push(weight);
      if (fields.includes("headers")) checkHeaders(dest, "headers");
    },
    { nonEmpty: true, itemDescription: "destinations" },
  );
  if (!items || !weightsWellFormed || weights.length !== items.length) return;
  if (items.length === 1) {
    const weight = weights[0];
    if (weight !== undefined && weight !== 100) parent.c.warning(`${parent.at(key)}[0].weight`, `a single destination receives all traffic; the weight ${weight} is ignored`);
    return;
  }
  const total = weights.reduce<number>((sum, w) => sum + (w ?? 0), 0);
  if (total === 0) {
    parent.c.error(parent.at(key), `the weights of the ${items.length} destinations are all 0 (a missing weight is 0); give at least one a weight (weights are relative: 1 and 3 send a quarter and three quarters)`);
  } else if (total > 4294967295) {
    parent.c.error(parent.at(key), `the weights of the ${items.length} destinations add up to ${total}, more than 4294967295`);
  }
}

/** Returns the checked destination, or undefined when it is not a mapping. */
function checkDestination(c: IssueCollector, value: unknown, path: string): CheckedObject | undefined {
  const dest = CheckedObject.of(c, value, path, DESTINATION_FIELDS);
  if (!dest) return undefined;
  if (dest.require("host", 'a service host name such as "reviews" or "reviews.default.svc.cluster.local"')) {
    // As Istio: a destination host may be a wildcard ("*.example.com", the host of a wildcard ServiceEntry), not "*" alone.
    const host = dest.string("host");
    const problem = host === undefined ? undefined : host === "*" ? 'expected a service host name, found "*" (a destination names a service: "reviews", "*.example.com")' : hostNameProblem(host, { wildcard: true });
    if (problem) c.error(dest.at("host"), problem);
  }
  const subset = dest.string("subset");
  if (subset !== undefined && !isDnsLabel(subset)) c.error(dest.at("subset"), `expected a subset name, ${DNS_LABEL_RULE}; found ${describeValue(subset)}`);
  const port = dest.object("port", ["number"]);
  if (port && port.require("number", "a port number from 1 to 65535")) port.port("number");
  return dest;
}

/** `delegate: { name, namespace }`: the VirtualService (without hosts) whose rules this rule includes. */
function checkDelegate(route: CheckedObject): void {
  const delegate = route.object("delegate", ["name", "namespace"]);
  if (!delegate) return;
  if (delegate.require("name", "the name of a VirtualService without hosts")) {
    const name = delegate.string("name");
    if (name !== undefined && !isDnsSubdomain(name)) route.c.error(delegate.at("name"), `expected a VirtualService name, ${DNS_SUBDOMAIN_RULE}; found ${describeValue(name)}`);
  }
  checkNamespaceName(delegate, "namespace");
}

/** `directResponse: { status, body: { string | bytes } }`: status 200-600 as Istio, a body of at most 1 MB. */
function checkDirectResponse(route: CheckedObject): void {
  const direct = route.object("directResponse", ["status", "body"]);
  if (!direct) return;
  if (direct.require("status", "an HTTP status code from 200 to 600")) direct.integer("status", { min: 200, max: 600 });
  const body = direct.object("body", ["string", "bytes"]);
  if (!body) return;
  const text = body.string("string");
  const bytes = body.string("bytes");
  if (text !== undefined && bytes !== undefined) route.c.error(body.path, "expected either string or bytes, found both");
  if (text === undefined && bytes === undefined) route.c.error(body.path, "expected string or bytes, found neither");
  if (bytes !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(bytes)) route.c.error(body.at("bytes"), "expected base64 (the body's bytes, as Kubernetes writes bytes fields)");
  const size = text !== undefined ? Buffer.byteLength(text) : bytes !== undefined ? Math.floor((bytes.length * 3) / 4) : 0;
  if (size > DIRECT_RESPONSE_BODY_MAX) route.c.error(body.path, `the body is ${size} bytes; at most ${DIRECT_RESPONSE_BODY_MAX} (1 MB) are allowed, as in Istio: every proxy the route reaches holds it`);
  else if (size > DIRECT_RESPONSE_BODY_WARN) route.c.warning(body.path, `the body is ${size} bytes: large direct responses are sent to every proxy the route reaches (Istio warns over 100 KB)`);
}

function checkRedirect(route: CheckedObject): void {
  const redirect = route.object("redirect", REDIRECT_FIELDS, ["derivePort"]);
  if (!redirect) return;
  redirect.string("uri");
  redirect.string("authority");
  redirect.port("port");
  redirect.string("scheme");
  if (redirect.has("redirectCode")) {
    const code = redirect.value["redirectCode"];
    if (typeof code !== "number" || !REDIRECT_CODES.includes(code)) {
      route.c.error(redirect.at("redirectCode"), `expected one of the redirect codes ${REDIRECT_CODES.join(", ")}, found ${describeValue(code)}`);
    }
  }
  if (!["uri", "authority", "port", "scheme"].some((k) => redirect.has(k))) {
    route.c.error(redirect.path, "expected at least one of uri, authority, port or scheme, found none");
  }
}

function checkRewrite(route: CheckedObject): void {
  const rewrite = route.object("rewrite", REWRITE_FIELDS, ["uriRegexRewrite"]);
  if (!rewrite) return;
  rewrite.string("uri");
  rewrite.string("authority");
  if (!rewrite.has("uri") && !rewrite.has("authority")) route.c.error(rewrite.path, "expected uri or authority, found neither");
}

function checkRetries(route: CheckedObject): void {
  const retries = route.object("retries", RETRY_FIELDS, ["retryIgnorePreviousHosts", "backoff"]);
  if (!retries) return;
  const attempts = retries.require("attempts", "the number of retries, 0 or more") ? retries.integer("attempts", { min: 0 }) : undefined;
  retries.duration("perTryTimeout", { positive: true });
  const retryOn = retries.string("retryOn");
  if (retryOn !== undefined) {
    for (const policy of retryOn.split(",").map((p) => p.trim())) {
      const isStatusCode = /^\d+$/.test(policy) && Number(policy) >= 100 && Number(policy) <= 599;
      if (!isStatusCode && !RETRY_ON_POLICIES.includes(policy)) {
        route.c.error(retries.at("retryOn"), `unknown retry policy "${policy}"; expected a comma-separated list of HTTP status codes and ${RETRY_ON_POLICIES.join(", ")}`);
      }
    }
  }
  retries.boolean("retryRemoteLocalities");
  if (attempts === 0 && (retries.has("perTryTimeout") || retries.has("retryOn") || retries.has("retryRemoteLocalities"))) {
    route.c.warning(retries.at("attempts"), "attempts is 0, which turns retries off; the other retry settings have no effect");
  }
}

function checkFault(route: CheckedObject): void {
  const fault = route.object("fault", FAULT_FIELDS);
  if (!fault) return;
  if (!fault.has("delay") && !fault.has("abort")) route.c.error(fault.path, "expected delay or abort, found neither");
  const delay = fault.object("delay", ["fixedDelay", "percentage"], ["exponentialDelay", "percent"]);
  if (delay) {
    if (delay.require("fixedDelay", 'a duration such as "5s"')) delay.duration("fixedDelay", { positive: true });
    checkPercent(delay, "percentage");
  }
  const abort = fault.object("abort", ["httpStatus", "percentage"], ["grpcStatus", "http2Error"]);
  if (abort) {
    if (abort.require("httpStatus", "an HTTP status code from 200 to 599")) abort.integer("httpStatus", { min: 200, max: 599 });
    checkPercent(abort, "percentage");
  }
}

/** A Percent: { value } from 0 to 100 (fractions allowed). */
function checkPercent(parent: CheckedObject, key: string): void {
  const percent = parent.object(key, ["value"]);
  if (percent && percent.require("value", "a percentage from 0 to 100")) percent.number("value", { min: 0, max: 100 });
}

function checkCorsPolicy(route: CheckedObject): void {
  const cors = route.object("corsPolicy", CORS_FIELDS, ["allowOrigin", "unmatchedPreflights"]);
  if (!cors) return;
  cors.list("allowOrigins", (item, itemPath) => checkStringMatch(route.c, item, itemPath, { presenceAllowed: false, prefixAllowed: true }), { itemDescription: "origin matches" });
  cors.stringList("allowMethods", {
    itemDescription: "HTTP methods",
    checkItem: (m) => (HTTP_METHODS.includes(m) ? undefined : `expected an HTTP method (${HTTP_METHODS.join(", ")}), found ${describeValue(m)}`),
  });
  cors.stringList("allowHeaders", { itemDescription: "header names" });
  cors.stringList("exposeHeaders", { itemDescription: "header names" });
  cors.duration("maxAge", { positive: false, wholeSeconds: true });
  cors.boolean("allowCredentials");
}

function checkHeaders(parent: CheckedObject, key: string): void {
  const headers = parent.object(key, HEADERS_FIELDS);
  if (!headers) return;
  for (const direction of HEADERS_FIELDS) {
    const ops = headers.object(direction, HEADER_OPERATIONS_FIELDS);
    if (!ops) continue;
    ops.stringMap("set", { checkKey: headerNameProblem });
    ops.stringMap("add", { checkKey: headerNameProblem });
    ops.stringList("remove", { itemDescription: "header names", checkItem: headerNameProblem });
  }
}

function headerNameProblem(name: string): string | undefined {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name) ? undefined : `expected an HTTP header name, found ${describeValue(name)}`;
}

function checkNamespaceName(parent: CheckedObject, key: string): void {
  const ns = parent.string(key);
  if (ns !== undefined && !isDnsLabel(ns)) parent.c.error(parent.at(key), `expected a namespace name, ${DNS_LABEL_RULE}; found ${describeValue(ns)}`);
}

// ---------------------------------------------------------------------------------------
// TCP and TLS routes

function checkL4Match(match: CheckedObject): void {
  match.stringList("destinationSubnets", {
    itemDescription: "IP addresses or CIDR blocks",
    checkItem: (s) => (isIpOrCidr(s) ? undefined : `expected an IP address or CIDR block such as "10.0.0.0/16", found ${describeValue(s)}`),
  });
  match.port("port");
  match.stringMap("sourceLabels", { checkKey: labelKeyProblem });
  match.stringList("gateways", { itemDescription: "gateway names", checkItem: gatewayReferenceProblem });
  checkNamespaceName(match, "sourceNamespace");
}

function checkTcpRoute(c: IssueCollector, value: unknown, path: string): void {
  const route = CheckedObject.of(c, value, path, ["match", "route"]);
  if (!route) return;
  route.list(
    "match",
    (item, itemPath) => {
      const match = CheckedObject.of(c, item, itemPath, L4_MATCH_FIELDS);
      if (match) checkL4Match(match);
    },
    { itemDescription: "match conditions" },
  );
  if (route.require("route", "a list of destinations")) checkDestinationList(route, "route", ROUTE_DESTINATION_FIELDS);
}

function checkTlsRoute(c: IssueCollector, value: unknown, path: string): void {
  const route = CheckedObject.of(c, value, path, ["match", "route"]);
  if (!route) return;
  if (route.require("match", "a list of match conditions with sniHosts")) {
    route.list(
      "match",
      (item, itemPath) => {
        const match = CheckedObject.of(c, item, itemPath, TLS_MATCH_FIELDS);
        if (!match) return;
        if (match.require("sniHosts", "a list of SNI host names")) {
          match.stringList("sniHosts", { nonEmpty: true, itemDescription: "SNI host names", checkItem: (h) => hostNameProblem(h, { wildcard: true }) });
        }
        checkL4Match(match);
      },
      { nonEmpty: true, itemDescription: "match conditions" },
    );
  }
  if (route.require("route", "a list of destinations")) checkDestinationList(route, "route", ROUTE_DESTINATION_FIELDS);
}
