// Istio duration strings -> protobuf Durations (validation already rejected malformed ones).
import { parseDurationMs } from "../api/duration.js";

export function toProtoDuration(text: string): { seconds: number; nanos: number } {
  const ms = parseDurationMs(text) ?? 0;
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1_000_000) };
}
