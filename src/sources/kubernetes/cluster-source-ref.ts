// How a resource read from a cluster is named in issues and logs: cluster, kind, namespace,
// name and resourceVersion.
import type { SourceRef } from "../../api/types.js";

export interface ClusterObjectRef {
  cluster: string;
  kind: string;
  namespace: string;
  name: string;
  resourceVersion: string;
}

export function clusterSourceRef(ref: ClusterObjectRef): SourceRef {
  return { file: `cluster ${ref.cluster}: ${ref.kind}/${ref.namespace || "-"}/${ref.name} (resourceVersion ${ref.resourceVersion || "?"})`, document: 0 };
}
