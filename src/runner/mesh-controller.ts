// Turns mesh config into per-proxy-class snapshots: rebuilds the model when the config
// changes and regenerates each known proxy class; a class is registered (and generated) the
// moment its first proxy connects. A snapshot refused by the consistency check is logged and
// the class keeps its last good snapshot.
import type { Node } from "../../generated/envoy/config/core/v3/base.js";
import type { MeshConfig } from "../api/types.js";
import { Snapshot } from "../cache/snapshot.js";
import { InconsistentSnapshotError, type SnapshotCache } from "../cache/snapshot-cache.js";
import type { Logger } from "../log/logger.js";
import { buildMeshModel, type MeshModel, type MeshSettings } from "../model/mesh-model.js";
import { proxyClassKey, proxyFromNode, type ProxyModel } from "../model/proxy.js";
import { translateProxy } from "../translate/translate.js";

export interface GenerationStats {
  classes: number;
  changed: number;
  refused: number;
  millis: number;
}

export class MeshController {
  private model: MeshModel;
  private readonly classes = new Map<string, ProxyModel>();

  constructor(
    private readonly cache: SnapshotCache,
    private readonly logger: Logger,
    private readonly settings: Partial<MeshSettings> = {},
  ) {
    this.model = buildMeshModel({ resources: [], issues: [] }, settings);
  }

  /** The snapshot key of a node; registers and generates its class on first sight. */
  readonly nodeKey = (node: Node): string => {
    const proxy = proxyFromNode(node);
    const key = proxyClassKey(proxy);
    if (!this.classes.has(key)) {
      this.classes.set(key, proxy);
      this.generate(key, proxy);
    }
    return key;
  };

  /** Applies a new mesh config: every known proxy class is regenerated; unchanged ones wake nobody. */
  setConfig(config: MeshConfig): GenerationStats {
    const start = performance.now();
    this.model = buildMeshModel(config, this.settings);
    let changed = 0;
    let refused = 0;
    for (const [key, proxy] of this.classes) {
      const r = this.generate(key, proxy);
      if (r === "changed") changed++;
      if (r === "refused") refused++;
    }
    const stats = { classes: this.classes.size, changed, refused, millis: Math.round((performance.now() - start) * 10) / 10 };
    this.logger.info(stats, "mesh config applied");
    return stats;
  }

  get currentModel(): MeshModel {
    return this.model;
  }

  private generate(key: string, proxy: ProxyModel): "changed" | "unchanged" | "refused" {
    try {
      const snapshot = Snapshot.build(translateProxy(this.model, proxy));
      return this.cache.set(key, snapshot) ? "changed" : "unchanged";
    } catch (err) {
      if (err instanceof InconsistentSnapshotError) return "refused";
      this.logger.error({ key, err: (err as Error).message }, "translation failed; the proxy class keeps its last good snapshot");
      return "refused";
    }
  }
}
