// One Istio custom resource as the cluster gives it (a watch event, or the object of an
// admission request), trimmed to what Weft reads and validated with the file validators. The
// Kubernetes source and the admission webhook both use this, so `kubectl apply` is refused with
// exactly the problems Weft would report for the stored object.
import { validateResource } from "../../api/validate-resource.js";
import { resourceKey, type ClusterObjectRef, type Sourced, type ValidationIssue } from "../../api/types.js";
import type { IstioKind } from "./istio-kinds.js";

/** The most a custom resource's spec may take as JSON before it is refused (Kubernetes' own object limit is ~1.5 MB). */
export const MAX_CUSTOM_RESOURCE_BYTES = 1536 * 1024;

export interface IstioObject {
  namespace: string;
  name: string;
  resourceVersion: string;
  /** metadata.generation (0 when absent, e.g. an object not yet stored). */
  generation: number;
  key: string;
  source: ClusterObjectRef;
  /** The validated resource, when valid. */
  resource?: Sourced["resource"];
  issues: ValidationIssue[];
  /** When invalid: the hosts it would declare (references to it then say "exists but is invalid"). */
  declaredHosts?: string[];
}

interface LooseObject {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: { name?: unknown; namespace?: unknown; resourceVersion?: unknown; generation?: unknown; labels?: unknown; annotations?: unknown };
  spec?: unknown;
}

/**
 * Validates one object of `kind` (served as `version`). Only apiVersion, kind, name, namespace,
 * labels, annotations and spec are read; status and managed fields are not. Undefined when the
 * object has no name. `namespace` fills in an object without one (an admission request's).
 */
export function validateIstioObject(kind: IstioKind, version: string, o: unknown, clusterId: string, namespaceOfRequest?: string): IstioObject | undefined {
  const object = o as LooseObject | undefined;
  const m = object?.metadata;
  if (!m || typeof m.name !== "string") return undefined;
  const namespace = typeof m.namespace === "string" && m.namespace !== "" ? m.namespace : (namespaceOfRequest ?? "");
  const resourceVersion = typeof m.resourceVersion === "string" ? m.resourceVersion : "";
  const generation = typeof m.generation === "number" && Number.isSafeInteger(m.generation) ? m.generation : 0;
  const source: ClusterObjectRef = { cluster: clusterId, kind: kind.kind, ...(namespace ? { namespace } : {}), name: m.name, resourceVersion, ...(generation ? { generation } : {}) };
  const key = `${kind.kind}/${namespace || "default"}/${m.name}`;
  const base = { namespace, name: m.name, resourceVersion, generation, key, source };
  const trimmed = {
    apiVersion: typeof object.apiVersion === "string" ? object.apiVersion : `${kind.group}/${version}`,
    kind: typeof object.kind === "string" ? object.kind : kind.kind,
    metadata: { name: m.name, namespace, ...(m.labels ? { labels: m.labels } : {}), ...(m.annotations ? { annotations: m.annotations } : {}) },
    spec: object.spec,
  };
  const size = JSON.stringify(trimmed.spec ?? null).length;
  if (size > MAX_CUSTOM_RESOURCE_BYTES) {
    const issue: ValidationIssue = { ...source, resource: key, field: "spec", message: `spec is ${size} bytes, more than Weft reads (${MAX_CUSTOM_RESOURCE_BYTES}); ignored`, severity: "error" };
    return { ...base, issues: [issue] };
  }
  const { resource, issues, declaredHosts } = validateResource(trimmed, source);
  return { ...base, ...(resource && resourceKey(resource) === key ? { resource } : { declaredHosts: declaredHosts ?? [] }), issues };
}
