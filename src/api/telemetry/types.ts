// User-facing resource types: Istio's Telemetry API (telemetry.istio.io v1 and v1alpha1), written
// from Istio's public reference docs; field names match Istio's YAML. Validation lives in
// validate-telemetry.ts; these are the shapes after parsing and validation. The providers a
// Telemetry names are declared in the mesh settings (extension-providers.ts).
import type { ObjectMeta } from "../types.js";

export const TELEMETRY_GROUP = "telemetry.istio.io";
export const TELEMETRY_VERSIONS = ["v1", "v1alpha1"] as const;

/** Which side of a sidecar a rule applies to: outbound (CLIENT), inbound (SERVER) or both. */
export const WORKLOAD_MODES = ["CLIENT_AND_SERVER", "CLIENT", "SERVER"] as const;
export type WorkloadMode = (typeof WORKLOAD_MODES)[number];

export interface WorkloadModeSelector {
  mode?: WorkloadMode;
}

export interface ProviderRef {
  name: string;
}

/** One custom span tag: exactly one of literal, environment or header. */
export interface CustomTag {
  literal?: { value: string };
  environment?: { name: string; defaultValue?: string };
  header?: { name: string; defaultValue?: string };
}

export interface Tracing {
  match?: WorkloadModeSelector;
  providers?: ProviderRef[];
  /** 0 to 100, in steps of 0.01. */
  randomSamplingPercentage?: number;
  disableSpanReporting?: boolean;
  customTags?: Record<string, CustomTag>;
  useRequestIdForTraceSampling?: boolean;
}

export interface AccessLogging {
  match?: WorkloadModeSelector;
  providers?: ProviderRef[];
  disabled?: boolean;
  /** A CEL expression over Envoy's attributes; only matching requests are logged. */
  filter?: { expression: string };
}

export interface PolicyTargetReference {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface TelemetrySpec {
  selector?: { matchLabels?: Record<string, string> };
  /** Accepted (Istio's API) but not applied by Weft: a warning says so. */
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  tracing?: Tracing[];
  accessLogging?: AccessLogging[];
  /** Accepted (Istio's API); Weft's metrics are not configured by Telemetry (a warning says so). */
  metrics?: MetricsRule[];
}

export interface MetricsRule {
  providers?: ProviderRef[];
  overrides?: { match?: { metric?: string; customMetric?: string; mode?: WorkloadMode }; disabled?: boolean; tagOverrides?: Record<string, { operation?: string; value?: string }> }[];
  reportingInterval?: string;
}

interface Base<K extends string, S> {
  apiVersion: string;
  kind: K;
  metadata: ObjectMeta;
  spec: S;
}

export type Telemetry = Base<"Telemetry", TelemetrySpec>;
