// The per-pod settings an injected pod may ask for through Istio's annotations, read and
// checked (pure). Supported:
//   sidecar.istio.io/proxyCPU, proxyMemory, proxyCPULimit, proxyMemoryLimit   the sidecar's resources
//   sidecar.istio.io/logLevel                                                 Envoy's -l
//   sidecar.istio.io/proxyImage                                               the sidecar's image
//   traffic.sidecar.istio.io/excludeInboundPorts, excludeOutboundPorts, includeOutboundIPRanges
//                                                                             the capture rules
//   proxy.istio.io/config (ProxyConfig YAML): concurrency, terminationDrainDuration,
//                                             holdApplicationUntilProxyStarts (always true here)
// A bad value is an error naming the annotation and what was expected (the pod is refused, as
// Istio refuses it); any other sidecar.istio.io / traffic.sidecar.istio.io / proxy.istio.io
// annotation or ProxyConfig field is a warning saying Weft ignores it.
import { parse as parseYaml } from "yaml";
import { parseDurationMs } from "../api/duration.js";

export const INJECT_ANNOTATION = "sidecar.istio.io/inject";
export const STATUS_ANNOTATION = "sidecar.istio.io/status";
export const PROXY_CONFIG_ANNOTATION = "proxy.istio.io/config";

/** Longest annotation value read (Kubernetes allows 256 KiB for all annotations together). */
const MAX_VALUE_CHARS = 4096;

export interface InjectionOverrides {
  resources: { requests: { cpu?: string; memory?: string }; limits: { cpu?: string; memory?: string } };
  logLevel?: string;
  proxyImage?: string;
  excludeInboundPorts: number[];
  excludeOutboundPorts: number[];
  includeOutboundCidrs?: string;
  concurrency?: number;
  drainSeconds?: number;
}

export interface OverridesRead {
  overrides: InjectionOverrides;
  errors: string[];
  warnings: string[];
}

const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "critical", "off"];
const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/;
const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._\-/:@]{0,254}$/;
const HANDLED = new Set([
  INJECT_ANNOTATION, STATUS_ANNOTATION, PROXY_CONFIG_ANNOTATION,
  "sidecar.istio.io/proxyCPU", "sidecar.istio.io/proxyMemory", "sidecar.istio.io/proxyCPULimit", "sidecar.istio.io/proxyMemoryLimit",
  "sidecar.istio.io/logLevel", "sidecar.istio.io/proxyImage", "sidecar.istio.io/rewriteAppHTTPProbers",
  "traffic.sidecar.istio.io/excludeInboundPorts", "traffic.sidecar.istio.io/excludeOutboundPorts", "traffic.sidecar.istio.io/includeOutboundIPRanges",
]);
const PROXY_CONFIG_FIELDS = new Set(["concurrency", "terminationDrainDuration", "holdApplicationUntilProxyStarts"]);

/** Istio's reading of sidecar.istio.io/inject: y, yes, true, on (any case) are true; n, no, false, off false. */
export function injectFlag(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  if (["y", "yes", "true", "on"].includes(v)) return true;
  if (["n", "no", "false", "off"].includes(v)) return false;
  return undefined;
}

export function readOverrides(annotations: Record<string, string>): OverridesRead {
  const errors: string[] = [];
  const warnings: string[] = [];
  const overrides: InjectionOverrides = { resources: { requests: {}, limits: {} }, excludeInboundPorts: [], excludeOutboundPorts: [] };
  const get = (key: string): string | undefined => {
    const value = annotations[key];
    if (value === undefined) return undefined;
    if (value.length > MAX_VALUE_CHARS) {
      errors.push(`annotation ${key}: ${value.length} characters, more than the ${MAX_VALUE_CHARS} Weft reads`);
      return undefined;
    }
    return value.trim();
  };
  const quantity = (key: string, set: (q: string) => void): void => {
    const v = get(key);
    if (v === undefined) return;
    if (QUANTITY.test(v)) set(v);
    else errors.push(`annotation ${key}: expected a Kubernetes quantity such as "100m" or "128Mi", got ${JSON.stringify(v.slice(0, 60))}`);
  };
  quantity("sidecar.istio.io/proxyCPU", (q) => (overrides.resources.requests.cpu = q));
  quantity("sidecar.istio.io/proxyMemory", (q) => (overrides.resources.requests.memory = q));
  quantity("sidecar.istio.io/proxyCPULimit", (q) => (overrides.resources.limits.cpu = q));
  quantity("sidecar.istio.io/proxyMemoryLimit", (q) => (overrides.resources.limits.memory = q));

  const level = get("sidecar.istio.io/logLevel");
  if (level !== undefined) {
    if (LOG_LEVELS.includes(level)) overrides.logLevel = level;
    else errors.push(`annotation sidecar.istio.io/logLevel: expected one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level.slice(0, 60))}`);
  }
  const image = get("sidecar.istio.io/proxyImage");
  if (image !== undefined) {
    if (IMAGE.test(image)) overrides.proxyImage = image;
    else errors.push(`annotation sidecar.istio.io/proxyImage: expected an image reference such as "envoyproxy/envoy:v1.40.0", got ${JSON.stringify(image.slice(0, 60))}`);
  }
  const ports = (key: string): number[] => {
    const v = get(key);
    if (v === undefined || v === "") return [];
    const out: number[] = [];
    for (const part of v.split(",").map((p) => p.trim()).filter((p) => p !== "").slice(0, 100)) {
      const n = Number(part);
      if (/^\d+$/.test(part) && n >= 1 && n <= 65535) out.push(n);
      else errors.push(`annotation ${key}: expected comma-separated ports from 1 to 65535, got ${JSON.stringify(part.slice(0, 20))}`);
    }
    return out;
  };
  overrides.excludeInboundPorts = ports("traffic.sidecar.istio.io/excludeInboundPorts");
  overrides.excludeOutboundPorts = ports("traffic.sidecar.istio.io/excludeOutboundPorts");
  const ranges = get("traffic.sidecar.istio.io/includeOutboundIPRanges");
  if (ranges !== undefined) {
    const parts = ranges.split(",").map((p) => p.trim()).filter((p) => p !== "");
    const bad = parts.find((p) => p !== "*" && !validCidr(p));
    if (bad !== undefined) errors.push(`annotation traffic.sidecar.istio.io/includeOutboundIPRanges: expected "*" or comma-separated IPv4 CIDRs such as "10.0.0.0/8", got ${JSON.stringify(bad.slice(0, 40))}`);
    else overrides.includeOutboundCidrs = parts.join(",");
  }
  readProxyConfig(get(PROXY_CONFIG_ANNOTATION), overrides, errors, warnings);

  for (const key of Object.keys(annotations).sort()) {
    if (HANDLED.has(key)) continue;
    if (/^(sidecar\.istio\.io|traffic\.sidecar\.istio\.io|proxy\.istio\.io)\//.test(key)) warnings.push(`annotation ${key.slice(0, 100)} is not supported by Weft's injector and is ignored`);
  }
  return { overrides, errors, warnings };
}

function validCidr(text: string): boolean {
  const m = CIDR.exec(text);
  return !!m && m.slice(1, 5).every((o) => Number(o) <= 255) && Number(m[5]) <= 32;
}

function readProxyConfig(text: string | undefined, overrides: InjectionOverrides, errors: string[], warnings: string[]): void {
  if (text === undefined || text === "") return;
  let config: unknown;
  try {
    config = parseYaml(text, { maxAliasCount: 10 });
  } catch (err) {
    errors.push(`annotation ${PROXY_CONFIG_ANNOTATION}: not YAML: ${(err as Error).message.split("\n")[0]!.slice(0, 200)}`);
    return;
  }
  if (config === null || config === undefined) return;
  if (typeof config !== "object" || Array.isArray(config)) {
    errors.push(`annotation ${PROXY_CONFIG_ANNOTATION}: expected a ProxyConfig mapping such as "concurrency: 2"`);
    return;
  }
  const fields = config as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!PROXY_CONFIG_FIELDS.has(key)) warnings.push(`annotation ${PROXY_CONFIG_ANNOTATION}: field ${key.slice(0, 60)} is not supported by Weft's injector and is ignored`);
  }
  if (fields.concurrency !== undefined) {
    const c = fields.concurrency;
    if (typeof c === "number" && Number.isInteger(c) && c >= 0 && c <= 64) {
      overrides.concurrency = c; // 0: Envoy's own default (one worker per core), as Istio reads it
    } else errors.push(`annotation ${PROXY_CONFIG_ANNOTATION}: concurrency: expected a whole number from 0 to 64, got ${JSON.stringify(c)}`);
  }
  if (fields.terminationDrainDuration !== undefined) {
    const d = fields.terminationDrainDuration;
    const ms = typeof d === "string" ? parseDurationMs(d) : undefined;
    if (ms !== undefined && ms >= 1000 && ms <= 3_600_000) overrides.drainSeconds = Math.round(ms / 1000);
    else errors.push(`annotation ${PROXY_CONFIG_ANNOTATION}: terminationDrainDuration: expected a duration from 1s to 1h such as "5s", got ${JSON.stringify(d)}`);
  }
  if (fields.holdApplicationUntilProxyStarts === false) {
    warnings.push(`annotation ${PROXY_CONFIG_ANNOTATION}: holdApplicationUntilProxyStarts: false is ignored: the sidecar is a native sidecar, so the app always starts after it is ready`);
  }
}
