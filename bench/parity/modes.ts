// The four xDS modes of go-control-plane's integration test, shared by the parity orchestrator,
// its bootstraps and the Weft fixture server.
export type ParityMode = "ads" | "xds" | "delta" | "delta-ads";
export const PARITY_MODES: readonly ParityMode[] = ["ads", "xds", "delta", "delta-ads"];

/** Whether the mode runs over one aggregated (ADS) stream; otherwise one stream per type. */
export function isAggregated(mode: ParityMode): boolean {
  return mode === "ads" || mode === "delta-ads";
}

/** The static cluster (the control plane) that per-type config sources name; the bootstrap defines it. */
export const XDS_CLUSTER = "xds_cluster";
