// The telemetry part of Istio's mesh settings (MeshConfig): `extensionProviders` (where access
// logs and spans go), `defaultProviders` (what applies with no Telemetry resource), and the older
// `accessLogFile` / `accessLogEncoding` / `accessLogFormat` and `enableTracing` switches. Shapes
// follow Istio's MeshConfig reference; checks report against the settings file and field.
import { CheckedObject, describeValue, hostNameProblem, isDnsSubdomain, isMapping, type IssueCollector } from "../field-checks.js";
import { EXT_AUTHZ_PROVIDER_KINDS } from "../security/ext-authz-providers.js";

/** A file access log (Envoy's file logger): text with Envoy's command operators, or JSON from labels. */
export interface EnvoyFileAccessLogProvider {
  path: string;
  logFormat?: { text?: string; labels?: Record<string, string> };
}

/** Spans over OTLP (gRPC by default, OTLP/HTTP with `http`) to `service:port`. */
export interface OpenTelemetryTracingProvider {
  service: string;
  port: number;
  maxTagLength?: number;
  http?: { path?: string; timeout?: string; headers?: { name: string; value: string }[] };
  resourceDetectors?: { environment?: Record<string, never>; dynatrace?: Record<string, never> };
}

/** Spans in Zipkin's JSON v2 format over HTTP to `service:port` (`path`, default /api/v2/spans). */
export interface ZipkinTracingProvider {
  service: string;
  port: number;
  maxTagLength?: number;
  enable64bitTraceId?: boolean;
  path?: string;
}

/** Access logs over OTLP gRPC (accepted; Weft does not send them yet, see ProviderSupport). */
export interface EnvoyOpenTelemetryLogProvider {
  service: string;
  port: number;
  logName?: string;
  logFormat?: { text?: string; labels?: Record<string, string> };
}

export interface ExtensionProvider {
  name: string;
  envoyFileAccessLog?: EnvoyFileAccessLogProvider;
  opentelemetry?: OpenTelemetryTracingProvider;
  zipkin?: ZipkinTracingProvider;
  envoyOtelAls?: EnvoyOpenTelemetryLogProvider;
}

export interface DefaultProviders {
  tracing?: string[];
  accessLogging?: string[];
  metrics?: string[];
}

/** The telemetry settings of the mesh, as validated from the settings file. */
export interface MeshTelemetrySettings {
  extensionProviders: ExtensionProvider[];
  defaultProviders: DefaultProviders;
  /** Istio's `accessLogFile` (e.g. /dev/stdout): mesh-wide access logs through the built-in "envoy" provider. */
  accessLogFile?: string;
  accessLogEncoding?: "TEXT" | "JSON";
  accessLogFormat?: string;
  /** Istio's `defaultConfig.tracing.sampling`: the sampling percentage when a Telemetry does not set one (Istio: 1). */
  defaultSamplingPercentage?: number;
}

export const EMPTY_TELEMETRY_SETTINGS: MeshTelemetrySettings = { extensionProviders: [], defaultProviders: {} };

/** The provider kinds of Istio's MeshConfig.ExtensionProvider that Weft knows, and which it sends. */
export const PROVIDER_KINDS = ["envoyFileAccessLog", "opentelemetry", "zipkin", "envoyOtelAls"] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

/** Real Istio provider kinds Weft does not implement (named "not supported yet", never "unknown"). */
const UNSUPPORTED_PROVIDER_KINDS = ["datadog", "lightstep", "skywalking", "stackdriver", "prometheus", "envoyHttpAls", "envoyTcpAls", "sds"];

/**
 * The built-in access-log provider every Istio mesh has: "envoy", a text log on the proxy's
 * standard output in Istio's default format. A provider of the same name in the settings replaces it.
 */
export const BUILTIN_ACCESS_LOG_PROVIDER: ExtensionProvider = { name: "envoy", envoyFileAccessLog: { path: "/dev/stdout" } };

export function providerKind(p: ExtensionProvider): ProviderKind | undefined {
  return PROVIDER_KINDS.find((k) => p[k] !== undefined);
}

/** The providers a Telemetry may name: those of the settings, plus the built-in "envoy" unless replaced. */
export function knownProviders(settings: MeshTelemetrySettings): ExtensionProvider[] {
  const named = settings.extensionProviders;
  const builtin = named.some((p) => p.name === BUILTIN_ACCESS_LOG_PROVIDER.name) ? [] : [withAccessLogFile(settings)];
  return [...named, ...builtin];
}

/** The built-in provider as `accessLogFile` / `accessLogEncoding` / `accessLogFormat` shape it. */
function withAccessLogFile(settings: MeshTelemetrySettings): ExtensionProvider {
  if (!settings.accessLogFile) return BUILTIN_ACCESS_LOG_PROVIDER;
  const json = settings.accessLogEncoding === "JSON";
  const format = settings.accessLogFormat;
  // Istio reads accessLogFormat as text, or as a JSON object of labels with JSON encoding.
  let logFormat: EnvoyFileAccessLogProvider["logFormat"];
  if (format && json) {
    try {
      logFormat = { labels: JSON.parse(format) as Record<string, string> };
    } catch {
      logFormat = { labels: {} };
    }
  } else if (format) logFormat = { text: format };
  else if (json) logFormat = { labels: {} };
  return { name: BUILTIN_ACCESS_LOG_PROVIDER.name, envoyFileAccessLog: { path: settings.accessLogFile, ...(logFormat ? { logFormat } : {}) } };
}

const MAX_PROVIDERS = 256;
const MAX_FORMAT_CHARS = 16 * 1024;
const MAX_LABELS = 128;

function checkServicePort(o: CheckedObject): void {
  if (o.require("service", 'the provider\'s service host such as "jaeger-collector.istio-system.svc.cluster.local" (or "namespace/host")')) {
    const service = o.string("service", { nonEmpty: true });
    if (service !== undefined) {
      const host = service.includes("/") ? service.slice(service.indexOf("/") + 1) : service;
      const problem = hostNameProblem(host, { wildcard: false });
      if (problem) o.c.error(o.at("service"), problem);
    }
  }
  if (o.require("port", "a port number from 1 to 65535")) o.port("port");
}

function checkLogFormat(o: CheckedObject): void {
  const format = o.object("logFormat", ["text", "labels"]);
  if (!format) return;
  format.atMostOneOf(["text", "labels"]);
  const text = format.string("text");
  if (text !== undefined && text.length > MAX_FORMAT_CHARS) o.c.error(format.at("text"), `expected at most ${MAX_FORMAT_CHARS} characters, found ${text.length}`);
  if (text !== undefined) checkCommandOperators(format, "text", text);
  const labels = format.stringMap("labels");
  if (labels && Object.keys(labels).length > MAX_LABELS) o.c.error(format.at("labels"), `expected at most ${MAX_LABELS} labels, found ${Object.keys(labels).length}`);
  for (const [k, v] of Object.entries(labels ?? {})) if (v.length > MAX_FORMAT_CHARS) o.c.error(`${format.at("labels")}.${k}`, `expected at most ${MAX_FORMAT_CHARS} characters`);
}

/** Every "%" in a format starts a command operator ("%START_TIME%") or is doubled ("%%"). */
function checkCommandOperators(o: CheckedObject, key: string, text: string): void {
  const unclosed = text.replace(/%%/g, "").replace(/%[A-Z0-9_]+(\([^)%]*\))?(:\d+)?%/g, "");
  if (unclosed.includes("%")) {
    o.c.error(o.at(key), `every "%" must start a command operator such as "%START_TIME%" or "%REQ(:METHOD)%" (write "%%" for a percent sign); found an unmatched "%" in ${describeValue(text)}`);
  }
}

function checkProvider(c: IssueCollector, item: unknown, path: string): void {
  // ext_authz kinds (AuthorizationPolicy CUSTOM) are checked by checkExtAuthzProviders.
  const kindsHere = [...PROVIDER_KINDS, ...EXT_AUTHZ_PROVIDER_KINDS];
  const p = CheckedObject.of(c, item, path, ["name", ...kindsHere], UNSUPPORTED_PROVIDER_KINDS);
  if (!p) return;
  if (p.require("name", "the provider's name, used by Telemetry resources and defaultProviders")) {
    const name = p.string("name", { nonEmpty: true });
    if (name !== undefined && name.length > 253) c.error(p.at("name"), "expected at most 253 characters");
  }
  const kinds = kindsHere.filter((k) => p.has(k));
  if (kinds.length === 0 && !UNSUPPORTED_PROVIDER_KINDS.some((k) => p.has(k))) c.error(path, `expected one provider kind: ${kindsHere.join(", ")}`);
  p.atMostOneOf(kindsHere, "provider kinds");
  const file = p.object("envoyFileAccessLog", ["path", "logFormat"]);
  if (file) {
    const filePath = file.string("path", { nonEmpty: true });
    if (filePath !== undefined && !filePath.startsWith("/")) c.error(file.at("path"), `expected an absolute path such as "/dev/stdout", found ${describeValue(filePath)}`);
    checkLogFormat(file);
  }
  const otel = p.object("opentelemetry", ["service", "port", "maxTagLength", "http", "resourceDetectors"], ["grpc", "dynatraceSampler"]);
  if (otel) {
    checkServicePort(otel);
    otel.integer("maxTagLength", { min: 0, max: 65536 });
    const http = otel.object("http", ["path", "timeout", "headers"]);
    if (http) {
      const httpPath = http.string("path");
      if (httpPath !== undefined && !httpPath.startsWith("/")) c.error(http.at("path"), `expected a path starting with "/" such as "/v1/traces", found ${describeValue(httpPath)}`);
      http.duration("timeout", { positive: true });
      http.list("headers", (h, hp) => {
        const header = CheckedObject.of(c, h, hp, ["name", "value"], ["envName"]);
        if (header?.require("name", "a header name")) header.string("name", { nonEmpty: true });
        header?.string("value");
      });
    }
    const detectors = otel.object("resourceDetectors", ["environment", "dynatrace"]);
    if (detectors) for (const d of ["environment", "dynatrace"]) detectors.object(d, []);
  }
  const zipkin = p.object("zipkin", ["service", "port", "maxTagLength", "enable64bitTraceId", "path"], ["headers", "timeout", "traceContextOption"]);
  if (zipkin) {
    checkServicePort(zipkin);
    zipkin.integer("maxTagLength", { min: 0, max: 65536 });
    zipkin.boolean("enable64bitTraceId");
    const zpath = zipkin.string("path");
    if (zpath !== undefined && !zpath.startsWith("/")) c.error(zipkin.at("path"), `expected a path starting with "/" such as "/api/v2/spans", found ${describeValue(zpath)}`);
  }
  const als = p.object("envoyOtelAls", ["service", "port", "logName", "logFormat"]);
  if (als) {
    checkServicePort(als);
    als.string("logName");
    checkLogFormat(als);
    c.warning(p.at("envoyOtelAls"), "is not supported yet: Weft does not send access logs over OTLP (its Envoy API types for it are not generated); a Telemetry naming this provider logs nothing through it. Use envoyFileAccessLog");
  }
}

/**
 * Checks the telemetry fields of a MeshConfig mapping (`o`) and returns them. Unknown provider
 * names in `defaultProviders` are errors here (Istio's mesh config refers to its own list).
 */
export function checkMeshTelemetrySettings(o: CheckedObject): MeshTelemetrySettings {
  const c = o.c;
  const providers = o.list("extensionProviders", (item, path) => checkProvider(c, item, path), { itemDescription: "extension providers" });
  if (providers && providers.length > MAX_PROVIDERS) c.error(o.at("extensionProviders"), `expected at most ${MAX_PROVIDERS} providers, found ${providers.length}`);
  const names = new Map<string, number>();
  (providers ?? []).forEach((p, i) => {
    const name = (p as { name?: unknown }).name;
    if (typeof name !== "string") return;
    const first = names.get(name);
    if (first !== undefined) c.error(`${o.at("extensionProviders")}[${i}].name`, `duplicate provider name "${name}" (also extensionProviders[${first}])`);
    else names.set(name, i);
  });
  const known = new Set([...names.keys(), BUILTIN_ACCESS_LOG_PROVIDER.name]);
  const defaults = o.object("defaultProviders", ["tracing", "accessLogging", "metrics"]);
  const defaultProviders: DefaultProviders = {};
  for (const key of ["tracing", "accessLogging", "metrics"] as const) {
    const list = defaults?.stringList(key, { itemDescription: "provider names" });
    if (!list) continue;
    if (key !== "metrics") {
      list.forEach((n, i) => {
        if (!known.has(n)) c.error(`${defaults!.at(key)}[${i}]`, `no extension provider named "${n}"; known: ${[...known].map((k) => `"${k}"`).join(", ")}`);
      });
    }
    defaultProviders[key] = list;
  }
  const accessLogFile = o.string("accessLogFile");
  if (accessLogFile !== undefined && accessLogFile !== "" && !accessLogFile.startsWith("/")) c.error(o.at("accessLogFile"), `expected an absolute path such as "/dev/stdout", found ${describeValue(accessLogFile)}`);
  const accessLogEncoding = o.enumValue("accessLogEncoding", ["TEXT", "JSON"] as const);
  const accessLogFormat = o.string("accessLogFormat");
  if (accessLogFormat !== undefined && accessLogFormat.length > MAX_FORMAT_CHARS) c.error(o.at("accessLogFormat"), `expected at most ${MAX_FORMAT_CHARS} characters`);
  if (accessLogFormat && accessLogEncoding === "JSON") {
    try {
      const parsed = JSON.parse(accessLogFormat) as unknown;
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
    } catch {
      c.error(o.at("accessLogFormat"), 'with accessLogEncoding JSON, expected a JSON object of labels such as {"method": "%REQ(:METHOD)%"}');
    }
  } else if (accessLogFormat) checkCommandOperators(o, "accessLogFormat", accessLogFormat);
  // defaultConfig is Istio's ProxyConfig (many fields); only tracing.sampling is read here.
  let defaultSamplingPercentage: number | undefined;
  const proxyDefaults = o.value["defaultConfig"];
  const tracingDefaults = isMapping(proxyDefaults) ? proxyDefaults["tracing"] : undefined;
  if (isMapping(tracingDefaults) && tracingDefaults["sampling"] !== undefined) {
    defaultSamplingPercentage = new CheckedObject(c, `${o.at("defaultConfig")}.tracing`, tracingDefaults).number("sampling", { min: 0, max: 100 });
  }
  return {
    // The telemetry kinds only: ext_authz providers are the mesh settings' authorizationProviders.
    extensionProviders: ((providers ?? []) as ExtensionProvider[]).filter((p) => isMapping(p) && !EXT_AUTHZ_PROVIDER_KINDS.some((k) => k in p)).map((p) => structuredClone(p)),
    defaultProviders,
    ...(accessLogFile ? { accessLogFile } : {}),
    ...(accessLogEncoding ? { accessLogEncoding } : {}),
    ...(accessLogFormat ? { accessLogFormat } : {}),
    ...(defaultSamplingPercentage !== undefined ? { defaultSamplingPercentage } : {}),
  };
}

/** Whether a provider's `service` ("ns/host" or "host") is a DNS name Weft can look up. */
export function providerServiceHost(service: string): { namespace?: string; host: string } {
  const slash = service.indexOf("/");
  if (slash < 0) return { host: service };
  const namespace = service.slice(0, slash);
  return { ...(isDnsSubdomain(namespace) ? { namespace } : {}), host: service.slice(slash + 1) };
}
