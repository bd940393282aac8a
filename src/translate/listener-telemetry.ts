// What one side of a proxy logs and traces, from the mesh model's Telemetry resources and mesh
// settings (model/telemetry.ts decides; access-log.ts and tracing.ts build the Envoy parts).
import type { AccessLog } from "../../generated/envoy/config/accesslog/v3/accesslog.js";
import type { MeshModel, ServiceModel } from "../model/mesh-model.js";
import { telemetryLevels, telemetryPlan, telemetrySelectorKeys, type TelemetrySide } from "../model/telemetry.js";
import { buildAccessLogs } from "./access-log.js";
import type { ListenerTelemetry } from "./http-connection-manager.js";
import { buildTracing, TRACING_LABEL_KEYS, tracingProviderServices } from "./tracing.js";

export interface SideTelemetry extends ListenerTelemetry {
  accessLog: AccessLog[];
  /** Services the tracer reports to: their clusters must be in the proxy's configuration. */
  providerServices: ServiceModel[];
}

export function sideTelemetry(model: MeshModel, workload: { namespace: string; labels: Record<string, string> }, side: TelemetrySide): SideTelemetry {
  const levels = telemetryLevels(model.telemetries, model.settings.rootNamespace, workload);
  const plan = telemetryPlan(levels, model.settings.telemetry, side);
  const tracing = buildTracing(model, plan.tracing, workload);
  return { accessLog: buildAccessLogs(plan.accessLogs), ...(tracing ? { tracing } : {}), providerServices: tracingProviderServices(model, [plan.tracing]) };
}

/**
 * Label keys telemetry reads from a proxy in `namespace`: Telemetry selectors there and, when
 * any tracing is configured, the labels naming the workload's service (span service name).
 */
export function telemetryLabelKeys(model: MeshModel, namespace: string): string[] {
  const tracingInUse = (model.settings.telemetry.defaultProviders.tracing?.length ?? 0) > 0 || model.telemetries.some((t) => (t.spec.tracing ?? []).length > 0);
  return [...telemetrySelectorKeys(model.telemetries, namespace), ...(tracingInUse ? TRACING_LABEL_KEYS : [])];
}
