// The Istio custom resources Weft reads from a cluster: every kind it reads from files, with
// the API versions to try (newest first; the first one the cluster serves is watched — a CRD
// serves the same objects under each of its versions).
import { NETWORKING_GROUP, NETWORKING_KINDS, NETWORKING_VERSIONS, type ResourceKind } from "../../api/types.js";
import { SECURITY_GROUP, SECURITY_KINDS, SECURITY_VERSIONS, type SecurityKind } from "../../api/security/types.js";

export interface IstioKind {
  group: string;
  versions: readonly string[];
  kind: ResourceKind | SecurityKind;
  /** Lower-case plural, the resource name in API paths and RBAC rules. */
  plural: string;
}

/** Kubernetes' plural of a kind: a consonant + "y" becomes "ies" (policy -> policies), else "s" (gateway -> gateways). */
export function pluralOf(kind: string): string {
  const lower = kind.toLowerCase();
  return /[^aeiou]y$/.test(lower) ? `${lower.slice(0, -1)}ies` : `${lower}s`;
}

export const ISTIO_KINDS: readonly IstioKind[] = [
  ...NETWORKING_KINDS.map((kind) => ({ group: NETWORKING_GROUP, versions: NETWORKING_VERSIONS, kind, plural: pluralOf(kind) })),
  ...SECURITY_KINDS.map((kind) => ({ group: SECURITY_GROUP, versions: SECURITY_VERSIONS, kind, plural: pluralOf(kind) })),
];
