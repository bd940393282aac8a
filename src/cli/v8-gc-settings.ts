// V8's garbage-collector setting for the long-running commands (serve, demo).
//
// Why: by default V8 starts a full (mark-compact) collection whenever memory held outside its
// heap by ArrayBuffers grows by a fixed amount (~64 MiB) since the last one, however large the
// heap. An xDS server allocates such memory all the time and drops it at once: every SotW ACK of
// an Envoy with 3300 EDS clusters is ~230 KB of request bytes (460 MB per endpoint change at
// 2000 proxies), every response a Buffer. Profile of `weft serve` (bench/mesh, 2000 SotW
// proxies): garbage collection was 48 % of the server's CPU while the ACKs of an endpoint
// change came in, and 36 % of the initial sync, each collection marking the whole ~150 MB heap.
// With --external-memory-accounted-in-global-limit that memory counts towards the heap's own
// (growing) limit instead, so short-lived buffers go with the young generation's scavenges.
// Measured in isolation (2000 x 3 ACK-like 230 KB buffers over a 150 MB heap, 2-core machine):
// 80 collections, 8.0-8.3 CPU-s -> 22-33 collections, mostly scavenges, 0.5-2.0 CPU-s.
//
// Off by default: at 2000 SotW proxies (bench/mesh, one run each, load 4-9) it cut the server's
// CPU for the initial sync from 26.8 to 16.5 s, but peak RSS rose from 928 MB to 2535 MB (RSS
// after the steps 866 -> 1244 MB): buffers that outlive two scavenges are freed only by a full
// collection, which now waits for the global limit. Change latencies did not improve. So it is
// opt-in, for CPU-bound deployments with memory to spare: WEFT_V8_GC_TUNING=1.
import v8 from "node:v8";

/** The V8 flag set, when the running V8 knows it. */
export const EXTERNAL_MEMORY_IN_GLOBAL_LIMIT = "--external-memory-accounted-in-global-limit";

/** V8 has the flag from 13.x on (Node 24); an older one would report an unknown flag. */
function v8KnowsFlag(): boolean {
  return Number((process.versions.v8 ?? "0").split(".")[0]) >= 13;
}

/** Applies the setting (see above) when asked for (WEFT_V8_GC_TUNING=1); returns whether it was applied. */
export function applyV8GcSettings(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.WEFT_V8_GC_TUNING !== "1" || !v8KnowsFlag()) return false;
  if (process.execArgv.some((a) => a.includes("external-memory-accounted-in-global-limit"))) return true; // the user chose
  v8.setFlagsFromString(EXTERNAL_MEMORY_IN_GLOBAL_LIMIT);
  return true;
}
