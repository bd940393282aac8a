// Resource metadata shared by the networking and security validators: the name, namespace,
// labels and annotations to keep, and the "Kind/namespace/name" label used in messages.
import { CheckedObject, DNS_LABEL_RULE, DNS_SUBDOMAIN_RULE, type IssueCollector, describeValue, isDnsLabel, isDnsSubdomain, isMapping, labelKeyProblem } from "./field-checks.js";
import { closestMatch } from "./spelling-hints.js";
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

/** One Istio API group as the validators accept it. */
export interface ApiGroup<K extends string> {
  group: string;
  versions: readonly string[];
  kinds: readonly K[];
  /** Real Istio kinds Weft ignores (warned about, never suggested as "did you mean"). */
  ignoredKinds?: readonly string[];
}

export interface Envelope {
  value: Record<string, unknown>;
  apiVersion: string;
  kind: string;
  group: string;
  version: string;
}

/** The document is a mapping with apiVersion and kind strings; names the resource in `c`. */
export function readEnvelope(c: IssueCollector, value: unknown, api: ApiGroup<string>): Envelope | undefined {
  if (!isMapping(value)) {
    c.error("(document)", `expected a resource (a mapping with apiVersion, kind, metadata and spec), found ${describeValue(value)}`);
    return undefined;
  }
  c.resource = resourceLabel(value);
  const apiVersion = value["apiVersion"];
  const kind = value["kind"];
  if (typeof apiVersion !== "string" || apiVersion === "") {
    const expected = `${api.group}/${api.versions[0]} (or ${api.versions.slice(1).join(", ")})`;
    c.error("apiVersion", `${apiVersion === undefined ? "required field is missing: " : ""}expected ${expected}, found ${describeValue(apiVersion)}`);
  }
  if (typeof kind !== "string" || kind === "") {
    c.error("kind", `${kind === undefined ? "required field is missing: " : ""}expected one of ${api.kinds.join(", ")}, found ${describeValue(kind)}`);
  }
  if (typeof apiVersion !== "string" || typeof kind !== "string") return undefined;
  const [group = "", version = ""] = apiVersion.includes("/") ? apiVersion.split("/", 2) : ["", apiVersion];
  return { value, apiVersion, kind, group, version };
}

/** Version and kind within the API group; returns the kind when Weft reads it. */
export function checkVersionAndKind<K extends string>(c: IssueCollector, env: Envelope, api: ApiGroup<K>): K | undefined {
  if (!api.versions.includes(env.version)) {
    c.error("apiVersion", `expected one of ${api.versions.map((v) => `${api.group}/${v}`).join(", ")}, found "${env.apiVersion}"`);
  }
  if ((api.kinds as readonly string[]).includes(env.kind)) return env.kind as K;
  const close = api.ignoredKinds?.includes(env.kind) ? undefined : closestMatch(env.kind, api.kinds);
  if (close) c.error("kind", `unknown kind "${env.kind}" (did you mean "${close}"?); expected one of ${api.kinds.join(", ")}`);
  else c.warning("kind", `ignored: Weft does not support the kind ${env.kind} (supported: ${api.kinds.join(", ")})`);
  return undefined;
}
