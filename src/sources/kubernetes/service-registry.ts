// The cluster's service registry as Istio builds it, expressed in Weft's own model input:
// each Kubernetes Service becomes a ServiceEntry generated here (never validated as user
// input, never written anywhere), with the ready endpoints of its EndpointSlices inline and
// each endpoint's labels, service account and locality taken from its Pod and Node. The mesh
// model, the mesh checks and the translators then treat cluster services exactly like
// ServiceEntries from files — VirtualServices and DestinationRules name them by host.
//
// - ClusterIP Service: resolution STATIC (EDS), its cluster IPs as addresses.
// - Headless Service (clusterIP None): resolution NONE (the client's chosen pod IP is kept);
//   each endpoint with a hostname (StatefulSet pods) also gets its own host
//   `<hostname>.<service>.<namespace>.svc.<domain>` with that one endpoint.
// - ExternalName Service: resolution DNS to the external name, MESH_EXTERNAL.
// - Endpoints: only ready ones (not-ready and terminating endpoints are left out, Istio's
//   default), one per address; ports by the slice's port names.
import type { ServiceEntry, ServicePort, Sourced, SourceRef, WorkloadEntrySpec } from "../../api/types.js";
import type { EndpointSliceRecord, NamespaceRecord, NodeRecord, PodRecord, ServiceRecord, SliceEndpointRecord } from "./kube-records.js";
import { localityOf } from "./kube-records.js";

export const DEFAULT_CLUSTER_DOMAIN = "cluster.local";

/** Prefix of generated ServiceEntry names: ":" never appears in a user's resource name, so they cannot collide. */
export const GENERATED_NAME_PREFIX = "kubernetes:";

export function serviceHostname(name: string, namespace: string, clusterDomain = DEFAULT_CLUSTER_DOMAIN): string {
  return `${name}.${namespace}.svc.${clusterDomain}`;
}

/** What the conversion looks up besides the Service and its slices. */
export interface RegistryLookups {
  pod(namespace: string, name: string): PodRecord | undefined;
  podByIp(ip: string): PodRecord | undefined;
  node(name: string): NodeRecord | undefined;
  namespace(name: string): NamespaceRecord | undefined;
}

export interface ConversionOptions {
  clusterDomain?: string;
  /** Where a generated resource came from, for messages (the Service's cluster reference). */
  sourceOf: (service: ServiceRecord) => SourceRef;
}

function portName(p: { name: string; port: number }): string {
  return p.name !== "" ? p.name : `port-${p.port}`;
}

function servicePorts(service: ServiceRecord): ServicePort[] {
  return service.ports.map((p) => ({ number: p.port, name: portName(p), ...(p.protocol ? { protocol: p.protocol } : {}), ...(p.targetPort !== undefined ? { targetPort: p.targetPort } : {}) }));
}

/** The workload behind a slice endpoint: by the slice's targetRef, else by IP. */
function podOf(e: SliceEndpointRecord, namespace: string, lookups: RegistryLookups): PodRecord | undefined {
  const byName = e.pod ? lookups.pod(namespace, e.pod) : undefined;
  if (byName) return byName;
  for (const ip of e.addresses) {
    const p = lookups.podByIp(ip);
    if (p && p.namespace === namespace && !p.finished) return p;
  }
  return undefined;
}

/** Whether an endpoint receives traffic: ready, and not terminating. */
export function endpointIsReady(e: SliceEndpointRecord): boolean {
  return e.ready && !e.terminating;
}

/** Inline ServiceEntry endpoints for one endpoint of a slice (one per address). */
function endpointSpecs(service: ServiceRecord, slice: EndpointSliceRecord, e: SliceEndpointRecord, lookups: RegistryLookups): WorkloadEntrySpec[] {
  const pod = podOf(e, service.namespace, lookups);
  const nodeName = e.nodeName ?? pod?.nodeName;
  const nodeLocality = nodeName ? lookups.node(nodeName)?.locality : undefined;
  const locality = nodeLocality || (e.zone ? localityOf("", e.zone, "") : "");
  const network = lookups.namespace(service.namespace)?.network ?? "";
  const ports: Record<string, number> = {};
  for (const sp of service.ports) {
    const match = slice.ports.find((p) => p.name === sp.name);
    if (match) ports[portName(sp)] = match.port;
  }
  return e.addresses.map((address) => ({
    address,
    ports: { ...ports },
    labels: { ...(pod?.labels ?? {}) },
    serviceAccount: pod?.serviceAccount ?? "default",
    ...(locality ? { locality } : {}),
    ...(network ? { network } : {}),
  }));
}

function byAddress(a: WorkloadEntrySpec, b: WorkloadEntrySpec): number {
  return (a.address ?? "").localeCompare(b.address ?? "");
}

/**
 * The ServiceEntries of one Kubernetes Service: one for the Service, plus one per endpoint
 * hostname of a headless Service. Pure: the same records give equal output.
 */
export function serviceEntriesOf(service: ServiceRecord, slices: readonly EndpointSliceRecord[], lookups: RegistryLookups, options: ConversionOptions): Sourced<ServiceEntry>[] {
  const domain = options.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
  const host = serviceHostname(service.name, service.namespace, domain);
  const source = options.sourceOf(service);
  const ports = servicePorts(service);
  const labels = { "weft.dev/origin": "kubernetes" };
  const entry = (name: string, spec: ServiceEntry["spec"]): Sourced<ServiceEntry> => ({
    resource: { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name, namespace: service.namespace, labels }, spec },
    source,
  });
  const exportTo = service.exportTo ? { exportTo: [...service.exportTo] } : {};

  if (service.externalName) {
    const endpointPorts = Object.fromEntries(ports.map((p) => [p.name!, p.number]));
    return [
      entry(`${GENERATED_NAME_PREFIX}${service.name}`, {
        hosts: [host],
        ports,
        location: "MESH_EXTERNAL",
        resolution: "DNS",
        endpoints: [{ address: service.externalName, ports: endpointPorts }],
        ...exportTo,
      }),
    ];
  }

  const endpoints: WorkloadEntrySpec[] = [];
  const perHostname: { hostname: string; specs: WorkloadEntrySpec[] }[] = [];
  const seen = new Set<string>();
  for (const slice of slices) {
    for (const e of slice.endpoints) {
      if (!endpointIsReady(e)) continue;
      const specs = endpointSpecs(service, slice, e, lookups).filter((s) => !seen.has(s.address!) && (seen.add(s.address!), true));
      if (specs.length === 0) continue;
      endpoints.push(...specs);
      if (service.headless && e.hostname) perHostname.push({ hostname: e.hostname, specs });
    }
  }
  endpoints.sort(byAddress);
  const result = [
    entry(`${GENERATED_NAME_PREFIX}${service.name}`, {
      hosts: [host],
      ...(service.clusterIPs.length > 0 ? { addresses: [...service.clusterIPs] } : {}),
      ports,
      location: "MESH_INTERNAL",
      resolution: service.headless ? "NONE" : "STATIC",
      endpoints,
      ...exportTo,
    }),
  ];
  const hostnames = new Set<string>();
  for (const { hostname, specs } of perHostname.sort((a, b) => a.hostname.localeCompare(b.hostname))) {
    if (hostnames.has(hostname)) continue; // two endpoints claiming one name: the first (by name order) keeps it
    hostnames.add(hostname);
    result.push(
      entry(`${GENERATED_NAME_PREFIX}${service.name}:${hostname}`, {
        hosts: [`${hostname}.${host}`],
        ports,
        location: "MESH_INTERNAL",
        resolution: "STATIC",
        endpoints: [...specs].sort(byAddress),
        ...exportTo,
      }),
    );
  }
  return result;
}
