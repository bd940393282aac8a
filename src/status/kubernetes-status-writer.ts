// Writes a status on an Istio custom resource: server-side apply on the status subresource
// with field manager "weft", so Weft owns only the fields it sets (observedGeneration, its
// Reconciled condition — conditions are a list keyed by type in Weft's CRDs —, validationMessages)
// and never touches the spec or other managers' fields. The API version written is the first one
// the cluster serves (tried in the kind's order, remembered per kind by the writer).
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from "@kubernetes/client-node";
import type { IstioKind } from "../sources/kubernetes/istio-kinds.js";
import type { ResourceStatus } from "./resource-status.js";
import type { StatusTarget, WriteOutcome } from "./status-queue.js";

export const STATUS_FIELD_MANAGER = "weft";

const serverSideApply = setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply);

export class KubernetesStatusWriter {
  private readonly api: CustomObjectsApi;
  private readonly kinds: Map<string, IstioKind>;
  /** Index into the kind's versions of the one the cluster serves (found on first write). */
  private readonly versionIndex = new Map<string, number>();

  constructor(kubeConfig: KubeConfig, kinds: readonly IstioKind[]) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
    this.kinds = new Map(kinds.map((k) => [k.kind, k]));
  }

  /** "gone" when the object (or its kind) no longer exists. */
  readonly write = async (target: StatusTarget, status: ResourceStatus): Promise<WriteOutcome> => {
    const kind = this.kinds.get(target.kind);
    if (!kind) return "gone";
    let index = this.versionIndex.get(kind.kind) ?? 0;
    for (;;) {
      const version = kind.versions[index]!;
      try {
        await this.api.patchNamespacedCustomObjectStatus(
          {
            group: kind.group,
            version,
            namespace: target.namespace,
            plural: kind.plural,
            name: target.name,
            body: { apiVersion: `${kind.group}/${version}`, kind: kind.kind, metadata: { name: target.name, namespace: target.namespace }, status },
            fieldManager: STATUS_FIELD_MANAGER,
            force: true,
          },
          serverSideApply,
        );
        this.versionIndex.set(kind.kind, index);
        return "written";
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw err;
        // Either the object is gone or the cluster does not serve this version: try the next.
        if (index + 1 >= kind.versions.length) return "gone";
        index++;
      }
    }
  };
}
