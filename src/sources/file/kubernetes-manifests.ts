// Plain Kubernetes manifests next to Istio YAML in a config directory (file mode): Services,
// Endpoints, EndpointSlices and Pods become service registry entries exactly as the Kubernetes
// source makes them (kube-records.ts + ClusterRegistry/service-registry.ts, pure), so
// `samples/bookinfo/platform/kube/bookinfo.yaml` next to the networking files gives
// VirtualServices and DestinationRules the hosts they name (`reviews` =
// reviews.<namespace>.svc.cluster.local). A namespace left out is "default", as kubectl does.
// Other built-in kinds (Deployment, ServiceAccount, ConfigMap, ...) are read by nobody here
// and are skipped quietly: they are not mistakes in a mesh config directory.
import type { FileRef, ServiceEntry, Sourced } from "../../api/types.js";
import { ClusterRegistry, type CoreRecord } from "../kubernetes/cluster-registry.js";
import { endpointSliceRecord, podRecord, serviceRecord, SERVICE_NAME_LABEL, type KubeEndpointSlice, type KubePod, type KubeService } from "../kubernetes/kube-records.js";

/** Built-in API groups ("" is core v1): a document of these is a Kubernetes manifest, never an Istio resource. */
const KUBERNETES_GROUPS = new Set(["v1", "apps/v1", "batch/v1", "discovery.k8s.io/v1", "policy/v1", "rbac.authorization.k8s.io/v1", "networking.k8s.io/v1", "autoscaling/v2"]);

/** A record read from a file, with where it was read. */
export interface ManifestRecord {
  record: CoreRecord;
  source: FileRef;
}

/**
 * Reads one document as a Kubernetes manifest: a record for Services, Endpoints,
 * EndpointSlices and Pods, "skip" for another built-in kind, undefined when it is not a
 * Kubernetes manifest (then it is validated as an Istio resource).
 */
export function readKubernetesManifest(value: unknown, source: FileRef): ManifestRecord | "skip" | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const o = value as { apiVersion?: unknown; kind?: unknown; metadata?: { namespace?: unknown } };
  if (typeof o.apiVersion !== "string" || typeof o.kind !== "string" || !KUBERNETES_GROUPS.has(o.apiVersion)) return undefined;
  const object = withNamespace(value as { metadata?: Record<string, unknown> });
  let record: CoreRecord | undefined;
  if (o.apiVersion === "v1" && o.kind === "Service") record = serviceRecord(object as KubeService);
  else if (o.apiVersion === "discovery.k8s.io/v1" && o.kind === "EndpointSlice") record = endpointSliceRecord(object as KubeEndpointSlice);
  else if (o.apiVersion === "v1" && o.kind === "Endpoints") record = endpointSliceRecord(sliceOfEndpoints(object as KubeEndpoints));
  else if (o.apiVersion === "v1" && o.kind === "Pod") record = podRecord(object as KubePod);
  return record ? { record, source } : "skip";
}

/** The object with metadata.namespace filled in ("default" when absent), as kubectl applies it. */
function withNamespace<T extends { metadata?: Record<string, unknown> }>(o: T): T {
  const metadata = o.metadata ?? {};
  return typeof metadata["namespace"] === "string" && metadata["namespace"] !== "" ? o : { ...o, metadata: { ...metadata, namespace: "default" } };
}

/** The legacy Endpoints object (core v1), as far as Weft reads it. */
interface KubeEndpoints {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  subsets?: {
    addresses?: { ip?: string; hostname?: string; nodeName?: string; targetRef?: { kind?: string; name?: string } }[];
    notReadyAddresses?: { ip?: string }[];
    ports?: { name?: string; port?: number; protocol?: string }[];
  }[];
}

/**
 * An Endpoints object as the EndpointSlice Kubernetes' mirroring controller makes of it: its
 * name is the Service's, its ready addresses the slice's endpoints. (Only the first subset's
 * ports are kept: a slice has one port list; Endpoints with several port sets are rare.)
 */
function sliceOfEndpoints(o: KubeEndpoints): KubeEndpointSlice {
  const subsets = Array.isArray(o.subsets) ? o.subsets : [];
  const first = subsets[0];
  const ip = subsets.flatMap((s) => (Array.isArray(s.addresses) ? s.addresses : [])).find((a) => typeof a?.ip === "string")?.ip ?? "";
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { ...o.metadata, labels: { ...(o.metadata?.labels ?? {}), [SERVICE_NAME_LABEL]: o.metadata?.name ?? "" } },
    addressType: ip.includes(":") ? "IPv6" : "IPv4",
    ports: (Array.isArray(first?.ports) ? first.ports : []).map((p) => ({ name: p.name ?? "", port: p.port ?? null, protocol: p.protocol ?? "TCP" })),
    endpoints: subsets.flatMap((s) =>
      (Array.isArray(s.addresses) ? s.addresses : []).map((a) => ({
        addresses: typeof a?.ip === "string" ? [a.ip] : [],
        conditions: { ready: true },
        ...(typeof a?.hostname === "string" ? { hostname: a.hostname } : {}),
        ...(typeof a?.nodeName === "string" ? { nodeName: a.nodeName } : {}),
        ...(a?.targetRef?.kind === "Pod" && typeof a.targetRef.name === "string" ? { targetRef: { kind: "Pod", name: a.targetRef.name } } : {}),
      })),
    ),
  };
}

/**
 * The generated ServiceEntries of every Service read from files, with its slices and pods
 * (from any file). Each entry names the Service's file and document as its source.
 */
export function registryServiceEntries(records: readonly ManifestRecord[]): Sourced<ServiceEntry>[] {
  const serviceSources = new Map<string, FileRef>();
  for (const { record, source } of records) if (record.kind === "Service") serviceSources.set(`${record.namespace}/${record.name}`, source);
  if (serviceSources.size === 0) return [];
  const registry = new ClusterRegistry({ sourceOf: (s) => serviceSources.get(`${s.namespace}/${s.name}`)! });
  for (const { record } of records) registry.upsert(record);
  return registry.serviceEntries();
}
