// Where the e2e tests find Prometheus: WEFT_PROMETHEUS_BIN, else the cache that
// e2e/observability/build-prometheus.sh fills. WEFT_PROMETHEUS_REQUIRED=1 (CI) makes a missing
// binary a failure instead of a skip.
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export const PROMETHEUS_VERSION = "v0.316.0";

export function prometheusBinary(): string | undefined {
  const fromEnv = process.env.WEFT_PROMETHEUS_BIN;
  if (fromEnv) return fromEnv;
  const cache = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache");
  const cached = path.join(cache, "weft", "prometheus", PROMETHEUS_VERSION, "bin", "prometheus");
  if (existsSync(cached)) return cached;
  if (process.env.WEFT_PROMETHEUS_REQUIRED === "1") {
    throw new Error(`Prometheus is required (WEFT_PROMETHEUS_REQUIRED=1) but neither WEFT_PROMETHEUS_BIN nor ${cached} exists: run e2e/observability/build-prometheus.sh`);
  }
  return undefined;
}
