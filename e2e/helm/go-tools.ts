// Where helm and actionlint are for the chart and kind tests: built once by
// scripts/cached-go-build.sh (recipes helm, actionlint) into its cache.
//
//   WEFT_HELM_BIN / WEFT_ACTIONLINT_BIN   the binary (overrides the cache)
//   WEFT_GO_TOOLS_REQUIRED=1              a missing tool fails the test instead of skipping it (.ci/run)
import { accessSync, constants as fsConstants } from "node:fs";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, "..", "..");
export const CHART_DIR = path.join(REPO, "charts", "weft");
export const BUILD_SCRIPT = path.join(REPO, "scripts", "cached-go-build.sh");

export type GoTool = "helm" | "actionlint";

/** The tool's binary: $WEFT_<TOOL>_BIN, else where the build script puts it (asked with --dir: nothing is built). */
export function goToolPath(tool: GoTool): string {
  const override = tool === "helm" ? process.env.WEFT_HELM_BIN : process.env.WEFT_ACTIONLINT_BIN;
  if (override) return override;
  const dir = execFileSync(BUILD_SCRIPT, ["--dir", tool], { encoding: "utf8" }).trim();
  return path.join(dir, tool);
}

/** Whether the tool is there; with WEFT_GO_TOOLS_REQUIRED=1 a missing one throws (CI never passes by skipping). */
export function goToolSupport(tool: GoTool): { available: boolean; reason?: string; path: string } {
  const file = goToolPath(tool);
  try {
    accessSync(file, fsConstants.X_OK);
    return { available: true, path: file };
  } catch {
    const reason = `${file} is missing (run scripts/cached-go-build.sh ${tool})`;
    if (process.env.WEFT_GO_TOOLS_REQUIRED === "1") throw new Error(`WEFT_GO_TOOLS_REQUIRED=1 but ${reason}`);
    return { available: false, reason, path: file };
  }
}
