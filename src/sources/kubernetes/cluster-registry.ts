// The records of the watched core objects (Services, EndpointSlices, Pods, Nodes, Namespaces)
// and the ServiceEntries generated from them. Generation is incremental: a change marks the
// Services it can affect (a slice its Service; a Pod the Services whose slices point at it; a
// Node or Namespace every Service) and only those are converted again.
import type { ServiceEntry, Sourced, SourceRef } from "../../api/types.js";
import type { EndpointSliceRecord, NamespaceRecord, NodeRecord, PodRecord, ServiceRecord } from "./kube-records.js";
import { serviceEntriesOf, type RegistryLookups } from "./service-registry.js";

export type CoreRecord = ServiceRecord | EndpointSliceRecord | PodRecord | NodeRecord | NamespaceRecord;
export type CoreKind = CoreRecord["kind"];

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export class ClusterRegistry implements RegistryLookups {
  private readonly services = new Map<string, ServiceRecord>();
  private readonly slices = new Map<string, EndpointSliceRecord>();
  /** Slice keys by Service key. */
  private readonly slicesOfService = new Map<string, Set<string>>();
  private readonly pods = new Map<string, PodRecord>();
  private readonly podsByIp = new Map<string, PodRecord>();
  /** Service keys whose slices name a pod, by pod key (to re-convert on pod label changes). */
  private readonly servicesOfPod = new Map<string, Set<string>>();
  /** Per namespace: how many slices have endpoints without a Pod reference (found by IP instead). */
  private readonly untargetedSlices = new Map<string, number>();
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly namespaces = new Map<string, NamespaceRecord>();
  /** Generated entries per Service key; a missing key means "convert again". */
  private readonly generated = new Map<string, Sourced<ServiceEntry>[]>();
  private allDirty = true;
  /** Bumped on every change that can alter the output. */
  private generation = 0;

  constructor(
    private readonly options: { clusterDomain?: string; sourceOf: (service: ServiceRecord) => SourceRef },
  ) {}

  get version(): number {
    return this.generation;
  }

  get counts(): Record<CoreKind, number> {
    return { Service: this.services.size, EndpointSlice: this.slices.size, Pod: this.pods.size, Node: this.nodes.size, Namespace: this.namespaces.size };
  }

  // RegistryLookups
  pod(namespace: string, name: string): PodRecord | undefined {
    return this.pods.get(key(namespace, name));
  }
  podByIp(ip: string): PodRecord | undefined {
    return this.podsByIp.get(ip);
  }
  node(name: string): NodeRecord | undefined {
    return this.nodes.get(name);
  }
  namespace(name: string): NamespaceRecord | undefined {
    return this.namespaces.get(name);
  }

  /** Adds or replaces a record; returns whether anything the output depends on changed. */
  upsert(record: CoreRecord): boolean {
    const k = key(record.namespace, record.name);
    switch (record.kind) {
      case "Service": {
        const before = this.services.get(k);
        if (before && JSON.stringify(before) === JSON.stringify(record)) return false;
        this.services.set(k, record);
        this.generated.delete(k);
        break;
      }
      case "EndpointSlice": {
        const before = this.slices.get(k);
        if (before && sameSlice(before, record)) {
          this.slices.set(k, record); // keep the newest resourceVersion
          return false;
        }
        if (before) this.unlinkSlice(k, before);
        this.slices.set(k, record);
        this.linkSlice(k, record);
        break;
      }
      case "Pod": {
        const before = this.pods.get(k);
        if (before && samePod(before, record)) {
          this.pods.set(k, record);
          return false;
        }
        if (before) this.unindexPod(before);
        this.pods.set(k, record);
        if (!record.finished) for (const ip of record.ips) this.podsByIp.set(ip, record);
        this.markPod(record);
        break;
      }
      case "Node": {
        const before = this.nodes.get(record.name);
        this.nodes.set(record.name, record);
        if (before?.locality === record.locality) return false;
        this.allDirty = true;
        break;
      }
      case "Namespace": {
        const before = this.namespaces.get(record.name);
        this.namespaces.set(record.name, record);
        if (before?.network === record.network) return false;
        this.allDirty = true;
        break;
      }
    }
    this.generation++;
    return true;
  }

  /** Removes a record by kind, namespace and name; returns whether it existed. */
  remove(kind: CoreKind, namespace: string, name: string): boolean {
    const k = key(namespace, name);
    switch (kind) {
      case "Service":
        if (!this.services.delete(k)) return false;
        this.generated.delete(k);
        break;
      case "EndpointSlice": {
        const before = this.slices.get(k);
        if (!before) return false;
        this.slices.delete(k);
        this.unlinkSlice(k, before);
        break;
      }
      case "Pod": {
        const before = this.pods.get(k);
        if (!before) return false;
        this.pods.delete(k);
        this.unindexPod(before);
        this.markPod(before);
        this.servicesOfPod.delete(k);
        break;
      }
      case "Node":
        if (!this.nodes.delete(name)) return false;
        this.allDirty = true;
        break;
      case "Namespace":
        if (!this.namespaces.delete(name)) return false;
        this.allDirty = true;
        break;
    }
    this.generation++;
    return true;
  }

  /** Every record of a kind, by "namespace/name" (used to replace a kind's records after a relist). */
  keysOf(kind: CoreKind): { namespace: string; name: string }[] {
    const map = kind === "Service" ? this.services : kind === "EndpointSlice" ? this.slices : kind === "Pod" ? this.pods : kind === "Node" ? this.nodes : this.namespaces;
    return [...map.values()].map((r) => ({ namespace: r.namespace, name: r.name }));
  }

  /** The generated ServiceEntries of every Service, sorted by namespace and name. */
  serviceEntries(): Sourced<ServiceEntry>[] {
    if (this.allDirty) {
      this.generated.clear();
      this.allDirty = false;
    }
    const out: Sourced<ServiceEntry>[] = [];
    for (const k of [...this.services.keys()].sort()) {
      let entries = this.generated.get(k);
      if (!entries) {
        const service = this.services.get(k)!;
        const slices = [...(this.slicesOfService.get(k) ?? [])].sort().map((s) => this.slices.get(s)!);
        entries = serviceEntriesOf(service, slices, this, this.options);
        this.generated.set(k, entries);
      }
      out.push(...entries);
    }
    return out;
  }

  private linkSlice(sliceKey: string, slice: EndpointSliceRecord): void {
    const svc = key(slice.namespace, slice.service);
    let set = this.slicesOfService.get(svc);
    if (!set) this.slicesOfService.set(svc, (set = new Set()));
    set.add(sliceKey);
    this.generated.delete(svc);
    if (slice.endpoints.some((e) => !e.pod)) this.untargetedSlices.set(slice.namespace, (this.untargetedSlices.get(slice.namespace) ?? 0) + 1);
    for (const e of slice.endpoints) {
      if (!e.pod) continue;
      const pk = key(slice.namespace, e.pod);
      let services = this.servicesOfPod.get(pk);
      if (!services) this.servicesOfPod.set(pk, (services = new Set()));
      services.add(svc);
    }
  }

  private unlinkSlice(sliceKey: string, slice: EndpointSliceRecord): void {
    const svc = key(slice.namespace, slice.service);
    const set = this.slicesOfService.get(svc);
    set?.delete(sliceKey);
    if (set?.size === 0) this.slicesOfService.delete(svc);
    this.generated.delete(svc);
    if (slice.endpoints.some((e) => !e.pod)) {
      const n = (this.untargetedSlices.get(slice.namespace) ?? 1) - 1;
      if (n > 0) this.untargetedSlices.set(slice.namespace, n);
      else this.untargetedSlices.delete(slice.namespace);
    }
    // servicesOfPod entries are dropped with their pod; a stale entry only costs one re-conversion.
  }

  private unindexPod(pod: PodRecord): void {
    for (const ip of pod.ips) if (this.podsByIp.get(ip) === pod) this.podsByIp.delete(ip);
  }

  /** Marks the Services a pod's labels, account or IPs feed. */
  private markPod(pod: PodRecord): void {
    const services = this.servicesOfPod.get(key(pod.namespace, pod.name));
    if (services) for (const s of services) this.generated.delete(s);
    // An endpoint found by IP (slices without targetRef): the namespace's services may use it.
    if (this.untargetedSlices.has(pod.namespace)) for (const k of this.services.keys()) if (k.startsWith(`${pod.namespace}/`)) this.generated.delete(k);
  }
}

function sameSlice(a: EndpointSliceRecord, b: EndpointSliceRecord): boolean {
  return a.service === b.service && JSON.stringify(a.ports) === JSON.stringify(b.ports) && JSON.stringify(a.endpoints) === JSON.stringify(b.endpoints);
}

function samePod(a: PodRecord, b: PodRecord): boolean {
  return a.uid === b.uid && a.serviceAccount === b.serviceAccount && a.nodeName === b.nodeName && a.finished === b.finished && a.ips.join() === b.ips.join() && JSON.stringify(a.labels) === JSON.stringify(b.labels);
}
