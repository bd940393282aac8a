// The running mesh control plane: control plane + mesh controller + a config source.
// Used by `weft serve --config-dir` and `weft demo`.
import { formatIssue, type MeshConfig } from "../api/types.js";
import type { Logger } from "../log/logger.js";
import type { MeshSettings } from "../model/mesh-model.js";
import { FileSource } from "../sources/file/file-source.js";
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from "./control-plane.js";
import { MeshController } from "./mesh-controller.js";

export interface MeshRunnerOptions extends Omit<ControlPlaneOptions, "nodeKey"> {
  configDir?: string;
  settings?: Partial<MeshSettings>;
  debounceMs?: number;
  /** Called after every applied config (tests and the demo use it to measure). */
  onApplied?: (config: MeshConfig) => void;
}

export interface MeshRunner {
  cp: ControlPlane;
  controller: MeshController;
  source?: FileSource;
  close(graceMs?: number): Promise<void>;
}

function logIssues(logger: Logger, config: MeshConfig): void {
  for (const issue of config.issues) {
    const fields = { file: issue.file, document: issue.document, resource: issue.resource, field: issue.field };
    if (issue.severity === "error") logger.error(fields, formatIssue(issue));
    else logger.warn(fields, formatIssue(issue));
  }
}

export async function startMeshRunner(opts: MeshRunnerOptions): Promise<MeshRunner> {
  const logger = opts.logger;
  let controller: MeshController | undefined;
  const cp = await startControlPlane({ ...opts, nodeKey: (node) => controller!.nodeKey(node) });
  controller = new MeshController(cp.cache, logger.child({ component: "mesh" }), opts.settings);
  let source: FileSource | undefined;
  if (opts.configDir) {
    source = new FileSource(opts.configDir, { debounceMs: opts.debounceMs });
    const apply = (config: MeshConfig) => {
      logIssues(logger, config);
      controller!.setConfig(config);
      opts.onApplied?.(config);
    };
    const initial = source.start(apply);
    logger.info({ dir: opts.configDir, resources: initial.resources.length, issues: initial.issues.length }, "watching config directory");
    apply(initial);
  }
  cp.markConfigLoaded();
  return {
    cp,
    controller,
    source,
    async close(graceMs = 5000) {
      source?.close();
      await cp.close(graceMs);
    },
  };
}
