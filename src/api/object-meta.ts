// Resource metadata shared by the networking and security validators: the name, namespace,
// labels and annotations to keep, and the "Kind/namespace/name" label used in messages.
import { CheckedObject, DNS_LABEL_RULE, DNS_SUBDOMAIN_RULE, type IssueCollector, describeValue, isDnsLabel, isDnsSubdomain, isMapping, labelKeyProblem } from "./field-checks.js";
import type { ObjectMeta } from "./types.js";

export const DEFAULT_NAMESPACE = "default";

/** Fields Kubernetes itself manages; accepted (so `kubectl get -o yaml` output validates) and dropped. */
const KUBERNETES_MANAGED_METADATA = ["uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "ownerReferences", "finalizers", "generateName", "selfLink"];
const METADATA_FIELDS = ["name", "namespace", "labels", "annotations", ...KUBERNETES_MANAGED_METADATA] as const;

/** "Kind/namespace/name" when the document names itself, else "(unknown)". Same format as resourceKey(). */
export function resourceLabel(value: Record<string, unknown>): string {
  const kind = value["kind"];
  const metadata = value["metadata"];
  if (typeof kind !== "string" || !isMapping(metadata) || typeof metadata["name"] !== "string" || metadata["name"] === "") return "(unknown)";
  const namespace = typeof metadata["namespace"] === "string" && metadata["namespace"] !== "" ? metadata["namespace"] : DEFAULT_NAMESPACE;
  return `${kind}/${namespace}/${metadata["name"]}`;
}

/** Checks metadata and returns the ObjectMeta to keep (Kubernetes-managed fields dropped). */
export function checkMetadata(c: IssueCollector, value: unknown): ObjectMeta | undefined {
  if (value === undefined || value === null) {
    c.error("metadata", "required field is missing: expected a mapping with at least a name");
    return undefined;
  }
  const meta = CheckedObject.of(c, value, "metadata", METADATA_FIELDS);
  if (!meta) return undefined;
  const name = meta.require("name", DNS_SUBDOMAIN_RULE) ? meta.string("name") : undefined;
  if (name !== undefined && !isDnsSubdomain(name)) c.error("metadata.name", `expected ${DNS_SUBDOMAIN_RULE}, found ${describeValue(name)}`);
  const namespace = meta.string("namespace");
  if (namespace !== undefined && !isDnsLabel(namespace)) c.error("metadata.namespace", `expected a namespace name, ${DNS_LABEL_RULE}; found ${describeValue(namespace)}`);
  const labels = meta.stringMap("labels", { checkKey: labelKeyProblem });
  const annotations = meta.stringMap("annotations");
  if (name === undefined) return undefined;
  return {
    name,
    namespace: namespace || DEFAULT_NAMESPACE,
    ...(labels ? { labels: { ...labels } } : {}),
    ...(annotations ? { annotations: { ...annotations } } : {}),
  };
}
