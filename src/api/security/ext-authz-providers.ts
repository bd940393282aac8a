// External authorizers of the mesh settings (Istio's MeshConfig.extensionProviders entries of kind
// envoyExtAuthzHttp / envoyExtAuthzGrpc), which AuthorizationPolicy's CUSTOM action names with
// `provider.name`. Shapes and field names follow Istio's MeshConfig reference; the checks report
// against the settings file and field. Which provider a workload uses, and what happens when it
// cannot be used, is decided by the translator (src/translate/security/ext-authz.ts).
import { CheckedObject, describeValue, hostNameProblem, isMapping } from "../field-checks.js";
import type { MeshConfig, ServiceEntry, ValidationIssue } from "../types.js";
import type { AuthorizationPolicy } from "./types.js";

/** Istio's includeRequestBodyInCheck: the request body sent to the authorizer. */
export interface ExtAuthzRequestBody {
  maxRequestBytes?: number;
  allowPartialMessage?: boolean;
  packAsBytes?: boolean;
}

interface ExtAuthzCommon {
  /** "[<namespace>/]<hostname>": a service of the registry (Kubernetes Service or ServiceEntry). */
  service: string;
  port: number;
  /** Milliseconds (Istio: a duration; HTTP default 600 s so that a DestinationRule's timeout rules). */
  timeoutMs?: number;
  failOpen?: boolean;
  clearRouteCache?: boolean;
  /** The HTTP status sent when the authorizer cannot be reached (Envoy default 403). */
  statusOnError?: number;
  includeRequestBodyInCheck?: ExtAuthzRequestBody;
}

/** Istio's EnvoyExternalAuthorizationHttpProvider. Header lists take "exact", "prefix*" or "*suffix". */
export interface ExtAuthzHttpProvider extends ExtAuthzCommon {
  pathPrefix?: string;
  includeRequestHeadersInCheck?: string[];
  includeAdditionalHeadersInCheck?: Record<string, string>;
  headersToUpstreamOnAllow?: string[];
  headersToDownstreamOnAllow?: string[];
  headersToDownstreamOnDeny?: string[];
}

/** Istio's EnvoyExternalAuthorizationGrpcProvider (envoy.service.auth.v3.Authorization). */
export type ExtAuthzGrpcProvider = ExtAuthzCommon;

export interface ExtAuthzProvider {
  name: string;
  envoyExtAuthzHttp?: ExtAuthzHttpProvider;
  envoyExtAuthzGrpc?: ExtAuthzGrpcProvider;
}

export const EXT_AUTHZ_PROVIDER_KINDS = ["envoyExtAuthzHttp", "envoyExtAuthzGrpc"] as const;

const COMMON_FIELDS = ["service", "port", "timeout", "failOpen", "clearRouteCache", "statusOnError", "includeRequestBodyInCheck"] as const;
const HTTP_FIELDS = [...COMMON_FIELDS, "pathPrefix", "includeRequestHeadersInCheck", "includeHeadersInCheck", "includeAdditionalHeadersInCheck", "headersToUpstreamOnAllow", "headersToDownstreamOnAllow", "headersToDownstreamOnDeny"] as const;
/** Bound on includeRequestBodyInCheck.maxRequestBytes (Envoy buffers up to this much of each request). */
const MAX_REQUEST_BODY_BYTES = 1024 * 1024 * 1024;
const MAX_HEADER_PATTERNS = 128;
/** HTTP status codes Envoy's HttpStatus enum knows (type/v3/http_status.proto). */
const ENVOY_STATUS_CODES = new Set([
  100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424,
  426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

function headerPatternProblem(value: string): string | undefined {
  if (value === "") return "expected a header name, or a pattern \"x-prefix-*\" / \"*-suffix\", found an empty string";
  const name = value.replace(/^\*|\*$/g, "");
  if (name === "" || !/^[!#$%&'+.^_`|~0-9A-Za-z-]+$/.test(name)) return `expected a header name, or a pattern "x-prefix-*" / "*-suffix", found ${describeValue(value)}`;
  return undefined;
}

function headerList(o: CheckedObject, key: string): string[] | undefined {
  const list = o.stringList(key, { itemDescription: "header names", checkItem: headerPatternProblem });
  if (list && list.length > MAX_HEADER_PATTERNS) o.c.error(o.at(key), `expected at most ${MAX_HEADER_PATTERNS} header names, found ${list.length}`);
  return list;
}

function checkCommon(o: CheckedObject): ExtAuthzCommon | undefined {
  let service: string | undefined;
  if (o.require("service", 'the authorizer\'s service, "[<namespace>/]<hostname>" such as "foo/ext-authz.foo.svc.cluster.local"')) {
    service = o.string("service", { nonEmpty: true });
    if (service !== undefined) {
      const parts = service.split("/");
      const host = parts[parts.length - 1]!;
      const problem = parts.length > 2 ? `expected "[<namespace>/]<hostname>", found ${describeValue(service)}` : hostNameProblem(host, { wildcard: false });
      if (problem) o.c.error(o.at("service"), problem);
    }
  }
  const port = o.require("port", "the authorizer's port, a number from 1 to 65535") ? o.port("port") : undefined;
  const timeoutMs = o.duration("timeout", { positive: true });
  const failOpen = o.boolean("failOpen");
  const clearRouteCache = o.boolean("clearRouteCache");
  let statusOnError: number | undefined;
  const status = o.string("statusOnError", { nonEmpty: true });
  if (status !== undefined) {
    statusOnError = /^\d{3}$/.test(status) ? Number(status) : undefined;
    if (statusOnError === undefined || !ENVOY_STATUS_CODES.has(statusOnError)) {
      o.c.error(o.at("statusOnError"), `expected an HTTP status code as a string such as "403" or "503", found ${describeValue(status)}`);
      statusOnError = undefined;
    }
  }
  const body = o.object("includeRequestBodyInCheck", ["maxRequestBytes", "allowPartialMessage", "packAsBytes"]);
  const maxRequestBytes = body?.integer("maxRequestBytes", { min: 1, max: MAX_REQUEST_BODY_BYTES });
  const allowPartialMessage = body?.boolean("allowPartialMessage");
  const packAsBytes = body?.boolean("packAsBytes");
  if (service === undefined || port === undefined) return undefined;
  return {
    service,
    port,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(failOpen !== undefined ? { failOpen } : {}),
    ...(clearRouteCache !== undefined ? { clearRouteCache } : {}),
    ...(statusOnError !== undefined ? { statusOnError } : {}),
    ...(body
      ? {
          includeRequestBodyInCheck: {
            ...(maxRequestBytes !== undefined ? { maxRequestBytes } : {}),
            ...(allowPartialMessage !== undefined ? { allowPartialMessage } : {}),
            ...(packAsBytes !== undefined ? { packAsBytes } : {}),
          },
        }
      : {}),
  };
}

/**
 * Checks the ext_authz kind of one extension provider (`p`: the provider's mapping) and returns
 * the provider in Weft's shape, or undefined when it is not an ext_authz provider or has errors.
 */
export function checkExtAuthzProvider(p: CheckedObject, name: string | undefined): ExtAuthzProvider | undefined {
  const http = p.object("envoyExtAuthzHttp", HTTP_FIELDS);
  const grpc = p.object("envoyExtAuthzGrpc", COMMON_FIELDS);
  if (http) {
    const common = checkCommon(http);
    const pathPrefix = http.string("pathPrefix");
    if (pathPrefix !== undefined && !pathPrefix.startsWith("/")) http.c.error(http.at("pathPrefix"), `expected a path starting with "/" such as "/check", found ${describeValue(pathPrefix)}`);
    // includeHeadersInCheck is the deprecated name of includeRequestHeadersInCheck.
    if (http.has("includeHeadersInCheck") && http.has("includeRequestHeadersInCheck")) http.c.error(http.at("includeHeadersInCheck"), "expected only includeRequestHeadersInCheck (includeHeadersInCheck is its deprecated name), found both");
    else if (http.has("includeHeadersInCheck")) http.c.warning(http.at("includeHeadersInCheck"), "is deprecated in Istio; use includeRequestHeadersInCheck (read the same way here)");
    const requestHeaders = headerList(http, "includeRequestHeadersInCheck") ?? headerList(http, "includeHeadersInCheck");
    const additional = http.stringMap("includeAdditionalHeadersInCheck", { checkKey: (k) => (/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) ? undefined : `expected a header name, found ${describeValue(k)}`) });
    const upstream = headerList(http, "headersToUpstreamOnAllow");
    const downstreamAllow = headerList(http, "headersToDownstreamOnAllow");
    const downstreamDeny = headerList(http, "headersToDownstreamOnDeny");
    if (!common || name === undefined) return undefined;
    return {
      name,
      envoyExtAuthzHttp: {
        ...common,
        ...(pathPrefix !== undefined ? { pathPrefix } : {}),
        ...(requestHeaders ? { includeRequestHeadersInCheck: requestHeaders } : {}),
        ...(additional ? { includeAdditionalHeadersInCheck: additional } : {}),
        ...(upstream ? { headersToUpstreamOnAllow: upstream } : {}),
        ...(downstreamAllow ? { headersToDownstreamOnAllow: downstreamAllow } : {}),
        ...(downstreamDeny ? { headersToDownstreamOnDeny: downstreamDeny } : {}),
      },
    };
  }
  if (grpc) {
    const common = checkCommon(grpc);
    if (!common || name === undefined) return undefined;
    return { name, envoyExtAuthzGrpc: common };
  }
  return undefined;
}

/**
 * The ext_authz providers of a MeshConfig's extensionProviders (`o`: the MeshConfig mapping),
 * checked; the other kinds are checked by the telemetry settings (checkMeshTelemetrySettings).
 */
export function checkExtAuthzProviders(o: CheckedObject): ExtAuthzProvider[] {
  const list = o.value["extensionProviders"];
  if (!Array.isArray(list)) return [];
  const out: ExtAuthzProvider[] = [];
  list.forEach((item, i) => {
    if (!isMapping(item)) return; // reported by the telemetry settings' check
    const p = new CheckedObject(o.c, `${o.at("extensionProviders")}[${i}]`, item);
    if (!EXT_AUTHZ_PROVIDER_KINDS.some((k) => p.has(k))) return;
    const name = typeof p.value["name"] === "string" && p.value["name"] !== "" ? p.value["name"] : undefined;
    const provider = checkExtAuthzProvider(p, name);
    if (provider) out.push(provider);
  });
  return out;
}

/** "[<namespace>/]<hostname>" of a provider's `service`. */
export function extAuthzServiceHost(service: string): { namespace?: string; hostname: string } {
  const slash = service.indexOf("/");
  return slash < 0 ? { hostname: service } : { namespace: service.slice(0, slash), hostname: service.slice(slash + 1) };
}

/** What is needed of a registry service to reach an authorizer through it. */
export interface AuthorizerService {
  hostname: string;
  namespace: string;
  ports: readonly { number: number }[];
}

export interface CustomAuthorizationContext {
  /** The mesh settings' ext_authz providers (MeshSettings.authorizationProviders). */
  providers: readonly ExtAuthzProvider[];
  /** The registry service of a hostname (model.serviceByHost). */
  service: (hostname: string) => AuthorizerService | undefined;
}

export type ResolvedAuthorizer = { ok: { provider: ExtAuthzProvider; cluster: string; hostname: string } } | { problem: string };

/** The provider a policy names, with the cluster it is reached through, or why it cannot be used. */
export function resolveAuthorizer(name: string, ctx: CustomAuthorizationContext): ResolvedAuthorizer {
  const provider = ctx.providers.find((p) => p.name === name);
  if (!provider) {
    const known = ctx.providers.map((p) => `"${p.name}"`).join(", ");
    return { problem: `no envoyExtAuthzHttp or envoyExtAuthzGrpc extension provider named "${name}" in the mesh settings (${known ? `known: ${known}` : "none declared; weft serve --mesh-config"})` };
  }
  const config = provider.envoyExtAuthzHttp ?? provider.envoyExtAuthzGrpc!;
  const { namespace, hostname } = extAuthzServiceHost(config.service);
  const service = ctx.service(hostname);
  if (!service || (namespace !== undefined && service.namespace !== namespace)) {
    return { problem: `extension provider "${name}": its service "${config.service}" is not in the service registry (a Kubernetes Service or a ServiceEntry host)` };
  }
  if (!service.ports.some((p) => p.number === config.port)) {
    return { problem: `extension provider "${name}": the service ${hostname} has no port ${config.port} (ports: ${service.ports.map((p) => p.number).join(", ")})` };
  }
  return { ok: { provider, cluster: `outbound|${config.port}||${hostname}`, hostname } };
}


/**
 * Warnings for CUSTOM AuthorizationPolicies whose provider cannot be used with this config's
 * services (the requests their rules match are then denied, as Istio does): shown with the
 * config's problems (`weft status`, /debug/config-problems, the demo's console).
 */
export function authorizationProviderIssues(config: Pick<MeshConfig, "resources">, providers: readonly ExtAuthzProvider[]): ValidationIssue[] {
  const services = new Map<string, AuthorizerService>();
  for (const { resource } of config.resources) {
    if (resource.kind !== "ServiceEntry") continue;
    const se = resource as ServiceEntry;
    for (const hostname of se.spec.hosts ?? []) {
      if (!services.has(hostname)) services.set(hostname, { hostname, namespace: se.metadata.namespace ?? "default", ports: se.spec.ports ?? [] });
    }
  }
  const issues: ValidationIssue[] = [];
  for (const { resource, source } of config.resources) {
    if (resource.kind !== "AuthorizationPolicy") continue;
    const policy = resource as unknown as AuthorizationPolicy;
    if (policy.spec.action !== "CUSTOM" || !policy.spec.provider) continue;
    const resolved = resolveAuthorizer(policy.spec.provider.name, { providers, service: (h) => services.get(h) });
    if ("problem" in resolved) {
      issues.push({ ...source, resource: `AuthorizationPolicy/${policy.metadata.namespace ?? "default"}/${policy.metadata.name}`, field: "spec.provider.name", severity: "warning", message: `${resolved.problem}; the requests its rules match are denied until it can be used (Istio's behaviour)` });
    }
  }
  return issues;
}
