// Small records of the Kubernetes objects the registry uses. Each watched object is turned
// into one of these as it arrives and the object itself is dropped, so memory grows with
// what Weft reads (names, IPs, ports, labels), not with whole Pods and their managed fields.
// The input shapes are written loosely (every field optional): objects come from the API
// server's JSON, and a field Weft does not understand is ignored rather than trusted.
import type { Protocol } from "../../api/types.js";
import { servicePortProtocol } from "./port-protocol.js";

/** Bounds on what one object may contribute; anything beyond is dropped (and counted). */
export const RECORD_LIMITS = {
  labels: 64,
  labelBytes: 16 * 1024,
  ports: 128,
  endpointsPerSlice: 1000, // Kubernetes caps a slice at 1000 endpoints
  addressesPerEndpoint: 4,
} as const;

export interface KubeMeta {
  name?: string;
  uid?: string;
  namespace?: string;
  resourceVersion?: string;
  labels?: Record<string, string> | null;
  annotations?: Record<string, string> | null;
  deletionTimestamp?: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: KubeMeta;
}

/** Cluster reference of a record, as issues and logs name it. */
export interface RecordRef {
  name: string;
  namespace: string;
  resourceVersion: string;
}

function refOf(o: KubeObject): RecordRef | undefined {
  const m = o.metadata;
  if (!m || typeof m.name !== "string" || m.name === "") return undefined;
  return { name: m.name, namespace: typeof m.namespace === "string" ? m.namespace : "", resourceVersion: typeof m.resourceVersion === "string" ? m.resourceVersion : "" };
}

/** Labels as a fresh, bounded string map (null/invalid values dropped). */
export function boundedLabels(labels: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!labels || typeof labels !== "object") return out;
  let count = 0;
  let bytes = 0;
  for (const [k, v] of Object.entries(labels as Record<string, unknown>)) {
    if (typeof v !== "string") continue;
    bytes += k.length + v.length;
    if (++count > RECORD_LIMITS.labels || bytes > RECORD_LIMITS.labelBytes) break;
    out[k] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Services

export interface KubeService extends KubeObject {
  spec?: {
    type?: string;
    clusterIP?: string;
    clusterIPs?: string[];
    externalName?: string;
    ports?: { name?: string; port?: number; protocol?: string; appProtocol?: string; targetPort?: number | string }[];
  };
}

export interface ServicePortRecord {
  name: string; // "" when unnamed (single-port Services)
  port: number;
  /** Undefined: neither appProtocol nor the name says (the model's default applies). */
  protocol?: Protocol;
  /** The numeric targetPort; undefined when it names a container port (EndpointSlices resolve it). */
  targetPort?: number;
}

export interface ServiceRecord extends RecordRef {
  kind: "Service";
  /** ClusterIP(s); empty for headless and ExternalName Services. */
  clusterIPs: string[];
  headless: boolean;
  externalName?: string;
  ports: ServicePortRecord[];
  /** `networking.istio.io/exportTo` annotation, comma-separated in Kubernetes. */
  exportTo?: string[];
}

export const EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo";

function isPort(n: unknown): n is number {
  return typeof n === "number" && Number.isInteger(n) && n > 0 && n < 65536;
}

export function serviceRecord(o: KubeService): ServiceRecord | undefined {
  const ref = refOf(o);
  if (!ref) return undefined;
  const spec = o.spec ?? {};
  const type = spec.type ?? "ClusterIP";
  const externalName = type === "ExternalName" && typeof spec.externalName === "string" && spec.externalName !== "" ? spec.externalName : undefined;
  const ips = (Array.isArray(spec.clusterIPs) && spec.clusterIPs.length > 0 ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : []).filter((ip): ip is string => typeof ip === "string" && ip !== "" && ip !== "None");
  const headless = !externalName && (spec.clusterIP === "None" || (Array.isArray(spec.clusterIPs) && spec.clusterIPs[0] === "None"));
  const ports: ServicePortRecord[] = [];
  for (const p of (Array.isArray(spec.ports) ? spec.ports : []).slice(0, RECORD_LIMITS.ports)) {
    if (!isPort(p.port)) continue;
    const protocol = servicePortProtocol(p);
    if (protocol === "skip") continue;
    ports.push({ name: typeof p.name === "string" ? p.name : "", port: p.port, ...(protocol ? { protocol } : {}), ...(isPort(p.targetPort) ? { targetPort: p.targetPort } : {}) });
  }
  const annotation = o.metadata?.annotations?.[EXPORT_TO_ANNOTATION];
  const exportTo = typeof annotation === "string" ? annotation.split(",").map((s) => s.trim()).filter((s) => s !== "") : undefined;
  return {
    kind: "Service",
    ...ref,
    clusterIPs: externalName || headless ? [] : ips,
    headless,
    ...(externalName ? { externalName } : {}),
    ports,
    ...(exportTo && exportTo.length > 0 ? { exportTo } : {}),
  };
}

// ---------------------------------------------------------------------------------------
// EndpointSlices

export interface KubeEndpointSlice extends KubeObject {
  addressType?: string;
  ports?: { name?: string | null; port?: number | null; protocol?: string | null }[] | null;
  endpoints?: {
    addresses?: string[];
    conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null };
    hostname?: string | null;
    nodeName?: string | null;
    zone?: string | null;
    targetRef?: { kind?: string; name?: string; namespace?: string } | null;
  }[] | null;
}

export interface SliceEndpointRecord {
  addresses: string[];
  /** Kubernetes' conditions; `ready` unset means ready (the API's rule). */
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  hostname?: string;
  nodeName?: string;
  zone?: string;
  /** Name of the Pod behind the endpoint, when the slice says. */
  pod?: string;
}

export interface EndpointSliceRecord extends RecordRef {
  kind: "EndpointSlice";
  /** The Service the slice belongs to (label kubernetes.io/service-name). */
  service: string;
  /** Port number by port name ("" for an unnamed port). */
  ports: { name: string; port: number }[];
  endpoints: SliceEndpointRecord[];
}

export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

export function endpointSliceRecord(o: KubeEndpointSlice): EndpointSliceRecord | undefined {
  const ref = refOf(o);
  const service = o.metadata?.labels?.[SERVICE_NAME_LABEL];
  if (!ref || typeof service !== "string" || service === "") return undefined;
  // FQDN slices (hand-made, for ExternalName-like use) carry no IPs: Weft does not read them.
  if (o.addressType !== "IPv4" && o.addressType !== "IPv6") return { kind: "EndpointSlice", ...ref, service, ports: [], endpoints: [] };
  const ports = (o.ports ?? [])
    .slice(0, RECORD_LIMITS.ports)
    .filter((p) => isPort(p.port) && (p.protocol ?? "TCP").toUpperCase() === "TCP")
    .map((p) => ({ name: p.name ?? "", port: p.port as number }));
  const endpoints: SliceEndpointRecord[] = [];
  for (const e of (o.endpoints ?? []).slice(0, RECORD_LIMITS.endpointsPerSlice)) {
    const addresses = (Array.isArray(e.addresses) ? e.addresses : []).filter((a): a is string => typeof a === "string" && a !== "").slice(0, RECORD_LIMITS.addressesPerEndpoint);
    if (addresses.length === 0) continue;
    const c = e.conditions ?? {};
    const ready = c.ready !== false;
    const terminating = c.terminating === true;
    const pod = e.targetRef?.kind === "Pod" && typeof e.targetRef.name === "string" ? e.targetRef.name : undefined;
    endpoints.push({
      addresses,
      ready,
      // `serving` unset: same as ready (the API's rule for servers that do not set it).
      serving: typeof c.serving === "boolean" ? c.serving : ready,
      terminating,
      ...(typeof e.hostname === "string" && e.hostname !== "" ? { hostname: e.hostname } : {}),
      ...(typeof e.nodeName === "string" && e.nodeName !== "" ? { nodeName: e.nodeName } : {}),
      ...(typeof e.zone === "string" && e.zone !== "" ? { zone: e.zone } : {}),
      ...(pod ? { pod } : {}),
    });
  }
  return { kind: "EndpointSlice", ...ref, service, ports, endpoints };
}

// ---------------------------------------------------------------------------------------
// Pods, Nodes, Namespaces

export interface KubePod extends KubeObject {
  spec?: { serviceAccountName?: string; nodeName?: string; hostNetwork?: boolean };
  status?: { podIP?: string; podIPs?: { ip?: string }[]; phase?: string };
}

export interface PodRecord extends RecordRef {
  kind: "Pod";
  /** metadata.uid: a pod deleted and created again under its name is another pod (its tokens are void). */
  uid: string;
  labels: Record<string, string>;
  serviceAccount: string;
  nodeName?: string;
  ips: string[];
  /** Succeeded/Failed, or being deleted: its IP may already belong to another pod. */
  finished: boolean;
}

export function podRecord(o: KubePod): PodRecord | undefined {
  const ref = refOf(o);
  if (!ref) return undefined;
  const status = o.status ?? {};
  const ips = [...new Set([status.podIP, ...(Array.isArray(status.podIPs) ? status.podIPs.map((p) => p?.ip) : [])].filter((ip): ip is string => typeof ip === "string" && ip !== ""))].slice(0, RECORD_LIMITS.addressesPerEndpoint);
  const phase = status.phase;
  return {
    kind: "Pod",
    ...ref,
    uid: typeof o.metadata?.uid === "string" ? o.metadata.uid.slice(0, 64) : "",
    labels: boundedLabels(o.metadata?.labels),
    serviceAccount: typeof o.spec?.serviceAccountName === "string" && o.spec.serviceAccountName !== "" ? o.spec.serviceAccountName : "default",
    ...(typeof o.spec?.nodeName === "string" && o.spec.nodeName !== "" ? { nodeName: o.spec.nodeName } : {}),
    ips,
    finished: phase === "Succeeded" || phase === "Failed" || (o.metadata?.deletionTimestamp !== undefined && o.metadata?.deletionTimestamp !== null),
  };
}

export const REGION_LABEL = "topology.kubernetes.io/region";
export const ZONE_LABEL = "topology.kubernetes.io/zone";
export const SUBZONE_LABEL = "topology.istio.io/subzone";
export const NETWORK_LABEL = "topology.istio.io/network";

export interface NodeRecord extends RecordRef {
  kind: "Node";
  /** "region/zone/subzone" (trailing empty parts dropped), "" when the node has no topology labels. */
  locality: string;
}

export function localityOf(region: string | undefined, zone: string | undefined, subzone: string | undefined): string {
  return [region ?? "", zone ?? "", subzone ?? ""].join("/").replace(/\/+$/, "");
}

export function nodeRecord(o: KubeObject): NodeRecord | undefined {
  const ref = refOf(o);
  if (!ref) return undefined;
  const l = o.metadata?.labels ?? {};
  return { kind: "Node", ...ref, locality: localityOf(l[REGION_LABEL], l[ZONE_LABEL], l[SUBZONE_LABEL]) };
}

export interface NamespaceRecord extends RecordRef {
  kind: "Namespace";
  /** `topology.istio.io/network` label: the network of the namespace's endpoints. */
  network: string;
}

export function namespaceRecord(o: KubeObject): NamespaceRecord | undefined {
  const ref = refOf(o);
  if (!ref) return undefined;
  const network = o.metadata?.labels?.[NETWORK_LABEL];
  return { kind: "Namespace", ...ref, network: typeof network === "string" ? network : "" };
}
