// Istio's Telemetry semantics as plain data: which access logs and which tracing configuration
// apply to one side (client or server) of one workload. Three levels, each overriding the one
// before: the mesh (a Telemetry in the root namespace without selector), the namespace (without
// selector) and the workload (a selector matching its labels); at each level the oldest-named
// resource wins (Istio takes the oldest; Weft has no creation time for files: first by name).
// The mesh settings' defaultProviders (and accessLogFile) are the starting point.
import { knownProviders, type ExtensionProvider, type MeshTelemetrySettings } from "../api/telemetry/extension-providers.js";
import type { CustomTag, Telemetry, WorkloadMode } from "../api/telemetry/types.js";

/** Client: a sidecar's outbound side and gateways (Istio treats gateways as clients); server: a sidecar's inbound side. */
export type TelemetrySide = "client" | "server";

export interface AccessLogPlan {
  /** A provider with envoyFileAccessLog (the only kind translated into an access log). */
  provider: ExtensionProvider & { envoyFileAccessLog: NonNullable<ExtensionProvider["envoyFileAccessLog"]> };
  /** CEL expression: only matching requests are logged. */
  filter?: string;
}

export interface TracingPlan {
  /** An opentelemetry or zipkin provider; absent when spans are not reported (disableSpanReporting) but sampling still applies. */
  provider?: ExtensionProvider;
  samplingPercentage: number;
  customTags: Record<string, CustomTag>;
  useRequestIdForTraceSampling: boolean;
}

export interface TelemetryPlan {
  accessLogs: AccessLogPlan[];
  tracing?: TracingPlan;
}

/** Istio's default sampling when neither a Telemetry nor defaultConfig.tracing.sampling sets one. */
export const DEFAULT_SAMPLING_PERCENTAGE = 1;

export interface TelemetryWorkload {
  namespace: string;
  labels: Record<string, string>;
}

function namespaceOf(t: Telemetry): string {
  return t.metadata.namespace || "default";
}

function firstByName(list: Telemetry[]): Telemetry | undefined {
  return [...list].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))[0];
}

function selects(t: Telemetry, labels: Record<string, string>): boolean {
  const want = t.spec.selector?.matchLabels ?? {};
  return Object.keys(want).length > 0 && Object.entries(want).every(([k, v]) => labels[k] === v);
}

function hasSelector(t: Telemetry): boolean {
  return Object.keys(t.spec.selector?.matchLabels ?? {}).length > 0;
}

/** The Telemetry resources that apply to a workload, least specific first (mesh, namespace, workload). */
export function telemetryLevels(telemetries: readonly Telemetry[], rootNamespace: string, workload: TelemetryWorkload): Telemetry[] {
  // targetRef(s) are not applied (validation warns): such a resource is at no level.
  const usable = telemetries.filter((t) => !t.spec.targetRef && !(t.spec.targetRefs && t.spec.targetRefs.length > 0));
  const mesh = firstByName(usable.filter((t) => namespaceOf(t) === rootNamespace && !hasSelector(t)));
  const namespace = workload.namespace === rootNamespace ? undefined : firstByName(usable.filter((t) => namespaceOf(t) === workload.namespace && !hasSelector(t)));
  const own = firstByName(usable.filter((t) => namespaceOf(t) === workload.namespace && selects(t, workload.labels)));
  return [mesh, namespace, own].filter((t): t is Telemetry => t !== undefined);
}

/** The label keys Telemetry selectors in `namespace` read (they split proxy classes). */
export function telemetrySelectorKeys(telemetries: readonly Telemetry[], namespace: string): string[] {
  return telemetries.filter((t) => namespaceOf(t) === namespace).flatMap((t) => Object.keys(t.spec.selector?.matchLabels ?? {}));
}

function appliesTo(mode: WorkloadMode | undefined, side: TelemetrySide): boolean {
  return mode === undefined || mode === "CLIENT_AND_SERVER" || (mode === "CLIENT") === (side === "client");
}

/**
 * What one side of a workload logs and traces. Access logging: a level that names providers
 * replaces the set in force; `disabled` and `filter` apply to the providers a rule names, or to
 * every provider in force when it names none. Tracing: the first rule of a level for this side
 * overrides providers, sampling and span reporting; custom tags merge by name.
 */
export function telemetryPlan(levels: readonly Telemetry[], settings: MeshTelemetrySettings, side: TelemetrySide): TelemetryPlan {
  const providers = new Map(knownProviders(settings).map((p) => [p.name, p]));

  // Access logging
  const defaults = settings.defaultProviders.accessLogging ?? (settings.accessLogFile ? ["envoy"] : []);
  let logs = new Map<string, { disabled: boolean; filter?: string }>(defaults.map((n) => [n, { disabled: false }]));
  for (const level of levels) {
    const rules = (level.spec.accessLogging ?? []).filter((r) => appliesTo(r.match?.mode, side));
    const named = rules.flatMap((r) => (r.providers ?? []).map((p) => p.name));
    if (named.length > 0) logs = new Map(named.map((n) => [n, { disabled: false }]));
    for (const rule of rules) {
      const targets = rule.providers && rule.providers.length > 0 ? rule.providers.map((p) => p.name) : [...logs.keys()];
      for (const name of targets) {
        const entry = logs.get(name) ?? { disabled: false };
        if (rule.disabled !== undefined) entry.disabled = rule.disabled;
        if (rule.filter) entry.filter = rule.filter.expression;
        logs.set(name, entry);
      }
    }
  }
  const accessLogs: AccessLogPlan[] = [];
  for (const [name, entry] of logs) {
    const provider = providers.get(name);
    if (entry.disabled || !provider?.envoyFileAccessLog) continue; // unknown and unsupported providers: warned about by validation
    accessLogs.push({ provider: provider as AccessLogPlan["provider"], ...(entry.filter ? { filter: entry.filter } : {}) });
  }

  // Tracing
  let tracingProviders = settings.defaultProviders.tracing ?? [];
  let sampling = settings.defaultSamplingPercentage ?? DEFAULT_SAMPLING_PERCENTAGE;
  let disableSpanReporting = false;
  let useRequestId = false;
  let customTags: Record<string, CustomTag> = {};
  for (const level of levels) {
    const rule = (level.spec.tracing ?? []).find((r) => appliesTo(r.match?.mode, side));
    if (!rule) continue;
    if (rule.providers && rule.providers.length > 0) tracingProviders = rule.providers.map((p) => p.name);
    if (rule.randomSamplingPercentage !== undefined) sampling = rule.randomSamplingPercentage;
    if (rule.disableSpanReporting !== undefined) disableSpanReporting = rule.disableSpanReporting;
    if (rule.useRequestIdForTraceSampling !== undefined) useRequestId = rule.useRequestIdForTraceSampling;
    if (rule.customTags) customTags = { ...customTags, ...rule.customTags };
  }
  // As Istio: the first provider named is the one used.
  const provider = tracingProviders.map((n) => providers.get(n)).find((p) => p !== undefined);
  const tracer = provider && (provider.opentelemetry || provider.zipkin) ? provider : undefined;
  if (!tracer) return { accessLogs };
  return {
    accessLogs,
    tracing: {
      ...(disableSpanReporting ? {} : { provider: tracer }),
      samplingPercentage: sampling,
      customTags: Object.fromEntries(Object.entries(customTags).sort(([a], [b]) => a.localeCompare(b))),
      useRequestIdForTraceSampling: useRequestId,
    },
  };
}
