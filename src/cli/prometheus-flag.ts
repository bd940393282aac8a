// --prometheus-url (weft serve, weft demo): where the mesh console reads edge metrics.
import { PrometheusEdgeSource } from "../admin/prometheus-edge-source.js";
import { UsageError } from "./usage-error.js";

export function prometheusFlag(value: string | undefined): { prometheus?: PrometheusEdgeSource } {
  if (!value) return {};
  try {
    return { prometheus: new PrometheusEdgeSource(value) };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
