// Where the e2e tests find the real observability backends: $WEFT_PROMETHEUS_BIN / $WEFT_JAEGER_BIN,
// else the caches `scripts/cached-go-build.sh prometheus|jaeger` fill. WEFT_PROMETHEUS_REQUIRED=1 /
// WEFT_JAEGER_REQUIRED=1 (set by .ci/run) make a missing binary a failure instead of a skip.
import { builtGoTool, goToolBinary, goToolBuildCommand, type GoTool } from "../../src/demo/go-tool-cache.js";

function backend(tool: GoTool, requiredEnv: string): string | undefined {
  const found = builtGoTool(tool);
  if (found) return found;
  if (process.env[requiredEnv] === "1") {
    throw new Error(`${tool} is required (${requiredEnv}=1) but ${goToolBinary(tool)} is not there: run ${goToolBuildCommand(tool)}`);
  }
  return undefined;
}

export const prometheusBinary = (): string | undefined => backend("prometheus", "WEFT_PROMETHEUS_REQUIRED");
export const jaegerBinary = (): string | undefined => backend("jaeger", "WEFT_JAEGER_REQUIRED");
