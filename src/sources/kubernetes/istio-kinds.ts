// The Istio custom resources Weft reads from a cluster: every kind declared in the kind
// registry (src/api/kind-registry.ts), with the API versions to try (newest first; the first
// one the cluster serves is watched — a CRD serves the same objects under each of its versions).
import { ISTIO_KINDS as DECLARED_KINDS, type IstioKindName } from "../../api/kind-registry.js";

export interface IstioKind {
  group: string;
  versions: readonly string[];
  kind: IstioKindName;
  /** Lower-case plural, the resource name in API paths and RBAC rules. */
  plural: string;
}

export const ISTIO_KINDS: readonly IstioKind[] = DECLARED_KINDS.map(({ group, versions, kind, plural }) => ({ group, versions, kind, plural }));
