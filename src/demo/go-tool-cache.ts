// Where scripts/cached-go-build.sh leaves the Go programs the demo and the tests run (Prometheus,
// Jaeger, the Kubernetes fixture): ${WEFT_<TOOL>_CACHE:-${XDG_CACHE_HOME:-~/.cache}/weft/<tool>/<version>}/bin.
// The versions here must be the ones the script builds (a unit test asks the script).
import { accessSync, constants as fsConstants } from "node:fs";
import os from "node:os";
import path from "node:path";

/** The Go-built tools the demo starts when they are built, with the version the script builds. */
export const GO_TOOLS = {
  prometheus: { version: "v0.316.0", binary: "prometheus", cacheEnv: "WEFT_PROMETHEUS_CACHE", binEnv: "WEFT_PROMETHEUS_BIN" },
  jaeger: { version: "v1.76.0", binary: "jaeger", cacheEnv: "WEFT_JAEGER_CACHE", binEnv: "WEFT_JAEGER_BIN" },
} as const;
export type GoTool = keyof typeof GO_TOOLS;

/** The build command, for messages telling people how to get a missing tool. */
export function goToolBuildCommand(tool: string): string {
  return `scripts/cached-go-build.sh ${tool}`;
}

/** The cache's binary directory for `tool` at `version` ($<cacheEnv> moves the cache). */
export function goToolBinDir(tool: string, version: string, cacheEnv?: string): string {
  const moved = cacheEnv ? process.env[cacheEnv] : undefined;
  if (moved) return path.join(moved, "bin");
  const cacheHome = process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  return path.join(cacheHome, "weft", tool, version, "bin");
}

/** The binary of `tool`: $WEFT_<TOOL>_BIN when set, else the cache's (which may not be built yet). */
export function goToolBinary(tool: GoTool): string {
  const t = GO_TOOLS[tool];
  return process.env[t.binEnv] || path.join(goToolBinDir(tool, t.version, t.cacheEnv), t.binary);
}

export function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The binary of `tool` when it is there (set explicitly or built), else undefined. */
export function builtGoTool(tool: GoTool): string | undefined {
  const file = goToolBinary(tool);
  return isExecutable(file) ? file : undefined;
}
