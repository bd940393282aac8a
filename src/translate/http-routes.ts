// VirtualService HTTP rules -> Envoy routes. One Envoy route per (rule, match), in order, as
// Istio does; destinations become clusters named outbound|port|subset|host.
import type {
  HeaderMatcher,
  QueryParameterMatcher,
  Route,
  RouteAction,
  RouteAction_HashPolicy,
  RouteMatch,
} from "../../generated/envoy/config/route/v3/route_components.js";
import { RedirectAction_RedirectResponseCode } from "../../generated/envoy/config/route/v3/route_components.js";
import { HeaderValueOption_HeaderAppendAction } from "../../generated/envoy/config/core/v3/base.js";
import type { HeaderValueOption } from "../../generated/envoy/config/core/v3/base.js";
import type { StringMatcher } from "../../generated/envoy/type/matcher/v3/string.js";
import { FractionalPercent_DenominatorType } from "../../generated/envoy/type/v3/percent.js";
import type { Any } from "../../generated/google/protobuf/any.js";
import type { Destination, HeaderOperations, HTTPDirectResponse, HTTPMatchRequest, HTTPRoute, StringMatch, VirtualService } from "../api/types.js";
import { packAny } from "../envoy/any.js";
import { EXTENSION_TYPES } from "../envoy/type-urls.js";
import { parseDurationMs } from "../api/duration.js";
import { toProtoDuration } from "./proto-duration.js";
import { labelsMatch, namespaceOf, resolveHost, type MeshModel, type ServiceModel } from "../model/mesh-model.js";
import type { ProxyModel } from "../model/proxy.js";
import { outboundClusterName } from "./naming.js";
import { outboundRetryPolicy } from "./retry-policy.js";
import { destinationRuleFor, effectivePolicy } from "./traffic-policy.js";

export const FAULT_FILTER = "envoy.filters.http.fault";
export const CORS_FILTER = "envoy.filters.http.cors";

export interface RouteContext {
  model: MeshModel;
  proxy: ProxyModel;
  /** Port the request arrived on (sidecar: the service port; gateway: the server port). */
  port: number;
  /** Gateways the route configuration serves ("ns/name"), or ["mesh"] for sidecars. */
  gateways: string[];
}

function stringMatcher(m: StringMatch, ignoreCase = false): StringMatcher {
  if (m.exact !== undefined) return { exact: m.exact, ignoreCase };
  if (m.prefix !== undefined) return { prefix: m.prefix, ignoreCase };
  return { safeRegex: { regex: m.regex ?? ".*" } };
}

function headerMatcher(name: string, m: StringMatch, invert = false): HeaderMatcher {
  return { name, stringMatch: stringMatcher(m), ...(invert ? { invertMatch: true } : {}) };
}

function routeMatch(m: HTTPMatchRequest | undefined): RouteMatch {
  const match: RouteMatch = {};
  const uri = m?.uri;
  if (uri?.exact !== undefined) match.path = uri.exact;
  else if (uri?.regex !== undefined) match.safeRegex = { regex: uri.regex };
  else match.prefix = uri?.prefix ?? "/";
  if (m?.ignoreUriCase) match.caseSensitive = false;
  const headers: HeaderMatcher[] = [];
  for (const [name, sm] of Object.entries(m?.headers ?? {})) headers.push(headerMatcher(name.toLowerCase(), sm));
  for (const [name, sm] of Object.entries(m?.withoutHeaders ?? {})) headers.push(headerMatcher(name.toLowerCase(), sm, true));
  if (m?.method) headers.push(headerMatcher(":method", m.method));
  if (m?.authority) headers.push(headerMatcher(":authority", m.authority));
  if (m?.scheme) headers.push(headerMatcher(":scheme", m.scheme));
  if (headers.length) match.headers = headers;
  const query: QueryParameterMatcher[] = Object.entries(m?.queryParams ?? {}).map(([name, sm]) => ({ name, stringMatch: stringMatcher(sm) }));
  if (query.length) match.queryParameters = query;
  return match;
}

export function fractionalPercent(percent: number | undefined) {
  const value = percent ?? 100;
  return { numerator: Math.round(value * 10_000), denominator: FractionalPercent_DenominatorType.MILLION };
}

function headerOptions(ops: HeaderOperations | undefined): { add: HeaderValueOption[]; remove: string[] } {
  const add: HeaderValueOption[] = [
    ...Object.entries(ops?.set ?? {}).map(([key, value]) => ({ header: { key, value }, appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD })),
    ...Object.entries(ops?.add ?? {}).map(([key, value]) => ({ header: { key, value }, appendAction: HeaderValueOption_HeaderAppendAction.APPEND_IF_EXISTS_OR_ADD })),
  ];
  return { add, remove: ops?.remove ?? [] };
}

interface ResolvedDestination {
  cluster: string;
  service: ServiceModel;
  port: number;
}

/**
 * The route's timeout (none by default, as Istio) and gRPC deadlines: a gRPC request's
 * `grpc-timeout` header is honoured, capped by the route timeout when there is one. This is
 * max_grpc_timeout, as Istio's sidecars use: setting the newer max_stream_duration on a route
 * makes Envoy ignore the route's `timeout` (measured: a 300 ms timeout stopped applying).
 */
export function withTimeout(action: RouteAction, timeout?: string): RouteAction {
  const t = toProtoDuration(timeout ?? "0s");
  return { ...action, timeout: t, maxGrpcTimeout: t };
}

/**
 * Resolves a route destination to its cluster; undefined when the host is unknown, or the
 * subset is not defined by the DestinationRule that applies to this proxy (so there is no such
 * cluster: Istio's proxies answer 503 "no cluster", Weft's routes answer 503 directly).
 */
export function resolveDestination(ctx: RouteContext, dest: Destination, fromNamespace: string): ResolvedDestination | undefined {
  const service = resolveHost(ctx.model, dest.host, fromNamespace);
  if (!service) return undefined;
  if (dest.subset !== undefined && !destinationRuleFor(ctx.model, service, ctx.proxy.namespace)?.spec.subsets?.some((s) => s.name === dest.subset)) return undefined;
  const port = dest.port?.number ?? (service.ports.length === 1 ? service.ports[0]!.number : service.ports.some((p) => p.number === ctx.port) ? ctx.port : service.ports[0]?.number);
  if (port === undefined) return undefined;
  return { cluster: outboundClusterName(port, dest.subset ?? "", service.hostname), service, port };
}

function hashPolicies(ctx: RouteContext, dest: ResolvedDestination | undefined, subset: string | undefined): RouteAction_HashPolicy[] {
  if (!dest) return [];
  const dr = destinationRuleFor(ctx.model, dest.service, ctx.proxy.namespace);
  const sub = dr?.spec.subsets?.find((s) => s.name === subset);
  const ch = effectivePolicy(dr, dest.port, sub).loadBalancer?.consistentHash;
  if (!ch) return [];
  if (ch.httpHeaderName) return [{ header: { headerName: ch.httpHeaderName } }];
  if (ch.httpCookie) return [{ cookie: { name: ch.httpCookie.name, path: ch.httpCookie.path ?? "", ...(ch.httpCookie.ttl ? { ttl: toProtoDuration(ch.httpCookie.ttl) } : {}) } }];
  if (ch.useSourceIp) return [{ connectionProperties: { sourceIp: true } }];
  if (ch.httpQueryParameterName) return [{ queryParameter: { name: ch.httpQueryParameterName } }];
  return [];
}

function routeAction(ctx: RouteContext, rule: HTTPRoute, fromNamespace: string, match: HTTPMatchRequest | undefined): Pick<Route, "route" | "directResponse"> {
  const dests = rule.route ?? [];
  const resolved = dests.map((d) => resolveDestination(ctx, d.destination, fromNamespace));
  if (resolved.some((r) => r === undefined) || resolved.length === 0) {
    const unknown = dests.find((_, i) => !resolved[i])?.destination;
    const what = unknown?.subset !== undefined && resolveHost(ctx.model, unknown.host, fromNamespace) ? `subset ${unknown.subset} of destination host ${unknown.host}` : `service for destination host ${unknown?.host ?? "(none)"}`;
    return { directResponse: { status: 503, body: { inlineString: `weft: no ${what}\n` } } };
  }
  const action: RouteAction = withTimeout({}, rule.timeout);
  if (resolved.length === 1) {
    action.cluster = resolved[0]!.cluster;
  } else {
    action.weightedClusters = {
      clusters: dests.map((d, i) => {
        const h = headerOptions(d.headers?.request);
        const rh = headerOptions(d.headers?.response);
        return {
          name: resolved[i]!.cluster,
          weight: d.weight ?? 0,
          ...(h.add.length ? { requestHeadersToAdd: h.add } : {}),
          ...(h.remove.length ? { requestHeadersToRemove: h.remove } : {}),
          ...(rh.add.length ? { responseHeadersToAdd: rh.add } : {}),
          ...(rh.remove.length ? { responseHeadersToRemove: rh.remove } : {}),
        };
      }),
    };
  }
  const hash = hashPolicies(ctx, resolved[0], dests[0]?.destination.subset);
  if (hash.length) action.hashPolicy = hash;
  const retry = outboundRetryPolicy(rule.retries, hash.length > 0);
  if (retry) action.retryPolicy = retry;
  const mirrors = requestMirrors(ctx, rule, fromNamespace);
  if (mirrors.length) action.requestMirrorPolicies = mirrors;
  if (rule.rewrite?.uri !== undefined) {
    if (match?.uri?.regex !== undefined || match?.uri?.exact !== undefined) action.regexRewrite = { pattern: { regex: "^.*$" }, substitution: rule.rewrite.uri };
    else action.prefixRewrite = rule.rewrite.uri;
  }
  if (rule.rewrite?.authority) action.hostRewriteLiteral = rule.rewrite.authority;
  return { route: action };
}

/**
 * The mirrors of a rule: `mirror` (share: mirrorPercentage, else the deprecated mirrorPercent,
 * else 100 %) and each of `mirrors` (its own percentage, else 100 %). A mirror whose host or
 * subset does not resolve is left out (nothing to copy to), as Istio does.
 */
function requestMirrors(ctx: RouteContext, rule: HTTPRoute, fromNamespace: string): NonNullable<RouteAction["requestMirrorPolicies"]> {
  const wanted: { destination: Destination; percent: number | undefined }[] = [];
  if (rule.mirror) wanted.push({ destination: rule.mirror, percent: rule.mirrorPercentage?.value ?? rule.mirrorPercent });
  for (const m of rule.mirrors ?? []) wanted.push({ destination: m.destination, percent: m.percentage?.value });
  return wanted.flatMap(({ destination, percent }) => {
    const mirror = resolveDestination(ctx, destination, fromNamespace);
    return mirror ? [{ cluster: mirror.cluster, runtimeFraction: { defaultValue: fractionalPercent(percent) } }] : [];
  });
}

/** Istio's directResponse: the status, and the body as a string or as bytes (base64 in YAML). */
function directResponse(direct: HTTPDirectResponse): NonNullable<Route["directResponse"]> {
  const body = direct.body?.string !== undefined ? { inlineString: direct.body.string } : direct.body?.bytes !== undefined ? { inlineBytes: Buffer.from(direct.body.bytes, "base64") } : undefined;
  return { status: direct.status, ...(body ? { body } : {}) };
}

const REDIRECT_CODES: Record<number, RedirectAction_RedirectResponseCode> = {
  301: RedirectAction_RedirectResponseCode.MOVED_PERMANENTLY,
  302: RedirectAction_RedirectResponseCode.FOUND,
  303: RedirectAction_RedirectResponseCode.SEE_OTHER,
  307: RedirectAction_RedirectResponseCode.TEMPORARY_REDIRECT,
  308: RedirectAction_RedirectResponseCode.PERMANENT_REDIRECT,
};

function perFilterConfig(rule: HTTPRoute): Record<string, Any> | undefined {
  const out: Record<string, Any> = {};
  if (rule.fault) {
    out[FAULT_FILTER] = packAny(EXTENSION_TYPES.fault, {
      ...(rule.fault.delay ? { delay: { fixedDelay: toProtoDuration(rule.fault.delay.fixedDelay), percentage: fractionalPercent(rule.fault.delay.percentage?.value) } } : {}),
      ...(rule.fault.abort ? { abort: { httpStatus: rule.fault.abort.httpStatus, percentage: fractionalPercent(rule.fault.abort.percentage?.value) } } : {}),
    });
  }
  const cors = rule.corsPolicy;
  if (cors) {
    const maxAgeMs = cors.maxAge ? parseDurationMs(cors.maxAge) : undefined;
    out[CORS_FILTER] = packAny(EXTENSION_TYPES.corsPolicy, {
      allowOriginStringMatch: (cors.allowOrigins ?? []).map((o) => stringMatcher(o)),
      allowMethods: (cors.allowMethods ?? []).join(","),
      allowHeaders: (cors.allowHeaders ?? []).join(","),
      exposeHeaders: (cors.exposeHeaders ?? []).join(","),
      ...(maxAgeMs !== undefined ? { maxAge: String(Math.floor(maxAgeMs / 1000)) } : {}),
      ...(cors.allowCredentials !== undefined ? { allowCredentials: cors.allowCredentials } : {}),
    });
  }
  return Object.keys(out).length ? out : undefined;
}

/** Whether a match clause applies to this proxy and port. */
function matchApplies(ctx: RouteContext, m: HTTPMatchRequest | undefined): boolean {
  if (!m) return true;
  if (m.port !== undefined && m.port !== ctx.port) return false;
  if (m.sourceLabels && (ctx.proxy.type !== "sidecar" || !labelsMatch(m.sourceLabels, ctx.proxy.labels))) return false;
  if (m.sourceNamespace && m.sourceNamespace !== ctx.proxy.namespace) return false;
  if (m.gateways && !m.gateways.some((g) => ctx.gateways.includes(g))) return false;
  return true;
}

/** Envoy routes for one VirtualService, in rule order. */
export function buildVirtualServiceRoutes(ctx: RouteContext, vs: VirtualService): Route[] {
  const ns = namespaceOf(vs);
  const routes: Route[] = [];
  (vs.spec.http ?? []).forEach((rule, i) => {
    const matches = rule.match && rule.match.length > 0 ? rule.match : [undefined];
    for (const m of matches) {
      if (!matchApplies(ctx, m)) continue;
      const headers = headerOptions(rule.headers?.request);
      const respHeaders = headerOptions(rule.headers?.response);
      const route: Route = {
        name: rule.name ?? `${ns}.${vs.metadata.name}.${i}`,
        match: routeMatch(m),
        ...(headers.add.length ? { requestHeadersToAdd: headers.add } : {}),
        ...(headers.remove.length ? { requestHeadersToRemove: headers.remove } : {}),
        ...(respHeaders.add.length ? { responseHeadersToAdd: respHeaders.add } : {}),
        ...(respHeaders.remove.length ? { responseHeadersToRemove: respHeaders.remove } : {}),
        decorator: { operation: `${vs.metadata.name}.${ns}:${rule.name ?? i}` },
      };
      const filters = perFilterConfig(rule);
      if (filters) route.typedPerFilterConfig = filters;
      if (rule.redirect) {
        const r = rule.redirect;
        route.redirect = {
          ...(r.uri ? { pathRedirect: r.uri } : {}),
          ...(r.authority ? { hostRedirect: r.authority } : {}),
          ...(r.port ? { portRedirect: r.port } : {}),
          ...(r.scheme ? { schemeRedirect: r.scheme } : {}),
          responseCode: REDIRECT_CODES[r.redirectCode ?? 301] ?? RedirectAction_RedirectResponseCode.MOVED_PERMANENTLY,
        };
      } else if (rule.directResponse) {
        route.directResponse = directResponse(rule.directResponse);
      } else {
        Object.assign(route, routeAction(ctx, rule, ns, m));
      }
      routes.push(route);
    }
  });
  return routes;
}

/** The route Istio gives a service that no VirtualService covers. */
export function buildDefaultRoute(cluster: string): Route {
  return {
    name: "default",
    match: { prefix: "/" },
    route: withTimeout({ cluster, retryPolicy: outboundRetryPolicy(undefined)! }),
    decorator: { operation: cluster },
  };
}
