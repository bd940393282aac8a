// The Kubernetes source (a ConfigSource, ../config-source.ts): Services, EndpointSlices, Pods,
// Nodes and Namespaces become the service registry (generated ServiceEntries, see
// service-registry.ts), and Istio's custom resources are read from the cluster and validated
// with the same validators as files. One reflector per resource type keeps small records; the
// source is "synced" once every reflector has completed its list, and again "not synced" while
// any relists after 410 Gone — the aggregator then keeps using the last synced snapshot.
import { CoreV1Api, CustomObjectsApi, DiscoveryV1Api, KubeConfig, Watch } from "@kubernetes/client-node";
import { resourceKey, type ClusterObjectRef, type Sourced } from "../../api/types.js";
import { validateIstioObject } from "./istio-object.js";
import type { ConfigSource, SourceEntry, SourceListener, SourceSnapshot } from "../config-source.js";
import type { Logger } from "../../log/logger.js";
import { ClusterRegistry, type CoreKind, type CoreRecord } from "./cluster-registry.js";
import { ISTIO_KINDS, type IstioKind } from "./istio-kinds.js";
import { endpointSliceRecord, namespaceRecord, nodeRecord, podRecord, serviceRecord, type KubeEndpointSlice, type KubeObject, type KubePod, type KubeService, type PodRecord } from "./kube-records.js";
import { Reflector, type ListPage, type ListWatchClient, type ReflectorOptions } from "./reflector.js";
import { DEFAULT_CLUSTER_DOMAIN } from "./service-registry.js";

export interface KubernetesSourceOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  /** Cluster DNS domain (Service hosts are `<name>.<namespace>.svc.<domain>`). Default cluster.local. */
  clusterDomain?: string;
  /** Name of the cluster in references and messages. Default "Kubernetes" (Istio's default cluster ID). */
  clusterId?: string;
  /** Where the client configuration came from, for the source's name ("kubeconfig ~/.kube/config"). */
  configFrom?: string;
  /** Page size of list calls. Default 500. */
  pageSize?: number;
  /** First retry delay after an API error (doubles to maxBackoffMs). Default 1000. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Also watch ServiceAccounts (uid only), for sidecar identity: a deleted ServiceAccount's
   * tokens stop proving anything at once (see ServiceAccountDirectory). Needs list/watch on
   * serviceaccounts. Default false.
   */
  watchServiceAccounts?: boolean;
}

/** A ServiceAccount as kept: its uid tells a deleted-and-recreated one apart (tokens carry it). */
export interface ServiceAccountRecord {
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: string;
}

function serviceAccountRecord(o: unknown): ServiceAccountRecord | undefined {
  const m = (o as { metadata?: { name?: unknown; namespace?: unknown; uid?: unknown; resourceVersion?: unknown } } | null)?.metadata;
  if (!m || typeof m.name !== "string" || typeof m.namespace !== "string" || typeof m.uid !== "string") return undefined;
  if (m.name.length > 253 || m.namespace.length > 63 || m.uid.length > 128) return undefined;
  return { namespace: m.namespace, name: m.name, uid: m.uid, resourceVersion: typeof m.resourceVersion === "string" ? m.resourceVersion.slice(0, 64) : "" };
}

/** One Istio custom resource as kept: the validated resource (if valid) and its issues. */
interface CustomRecord {
  namespace: string;
  name: string;
  resourceVersion: string;
  entry: SourceEntry;
}

interface CoreKindSpec {
  kind: CoreKind;
  resource: string;
  watchPath: string;
  list: (page: { limit: number; continueToken?: string }) => Promise<ListPage>;
  toRecord: (o: unknown) => CoreRecord | undefined;
}

export class KubernetesSource implements ConfigSource {
  readonly clusterId: string;
  readonly name: string;
  readonly origin: ClusterObjectRef;
  private readonly registry: ClusterRegistry;
  private readonly custom = new Map<string, Map<string, CustomRecord>>();
  private readonly reflectors: Reflector<unknown>[] = [];
  private readonly watch: Watch;
  private listener: SourceListener | undefined;
  private started = false;
  private readonly podListeners = new Set<(before: PodRecord | undefined, after: PodRecord | undefined) => void>();
  private readonly accounts = new Map<string, ServiceAccountRecord>();
  private accountsReflector: Reflector<ServiceAccountRecord> | undefined;
  private readonly accountListeners = new Set<(before: ServiceAccountRecord | undefined, after: ServiceAccountRecord | undefined) => void>();

  constructor(private readonly opts: KubernetesSourceOptions) {
    this.clusterId = opts.clusterId ?? "Kubernetes";
    this.name = `kubernetes cluster ${this.clusterId}${opts.configFrom ? ` (${opts.configFrom})` : ""}`;
    this.origin = { cluster: this.clusterId, kind: "", name: "", resourceVersion: "" };
    this.watch = new Watch(opts.kubeConfig);
    this.registry = new ClusterRegistry({
      clusterDomain: opts.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN,
      sourceOf: (s) => ({ cluster: this.clusterId, kind: "Service", namespace: s.namespace, name: s.name, resourceVersion: s.resourceVersion }),
    });
  }

  /** The pod namespace/name as last seen (the identity of a sidecar's token comes from it). */
  pod(namespace: string, name: string): PodRecord | undefined {
    return this.registry.pod(namespace, name);
  }

  /** Calls `listener` after every change of a pod (before/after undefined: added/removed); returns an unsubscribe. */
  onPodChange(listener: (before: PodRecord | undefined, after: PodRecord | undefined) => void): () => void {
    this.podListeners.add(listener);
    return () => this.podListeners.delete(listener);
  }

  /** With watchServiceAccounts: true once the ServiceAccounts are listed (before, none is known missing). */
  get serviceAccountsSynced(): boolean {
    return this.accountsReflector?.isSynced ?? false;
  }

  /** The ServiceAccount as last seen (with watchServiceAccounts). */
  serviceAccount(namespace: string, name: string): ServiceAccountRecord | undefined {
    return this.accounts.get(`${namespace}/${name}`);
  }

  /** Calls `listener` after every change of a ServiceAccount (before/after undefined: added/removed); returns an unsubscribe. */
  onServiceAccountChange(listener: (before: ServiceAccountRecord | undefined, after: ServiceAccountRecord | undefined) => void): () => void {
    this.accountListeners.add(listener);
    return () => this.accountListeners.delete(listener);
  }

  private setAccount(key: string, after: ServiceAccountRecord | undefined): void {
    const before = this.accounts.get(key);
    if (after) this.accounts.set(key, after);
    else this.accounts.delete(key);
    if (before?.uid === after?.uid) return;
    for (const l of [...this.accountListeners]) l(before, after);
  }

  /** ServiceAccounts are kept apart from the registry: they change no configuration, only who a token proves. */
  private accountReflector(core: CoreV1Api, page: (p: { limit: number; continueToken?: string }) => { limit: number; _continue?: string }): Reflector<ServiceAccountRecord> {
    const key = (r: { namespace: string; name: string }) => `${r.namespace}/${r.name}`;
    return new Reflector<ServiceAccountRecord>({
      resource: "serviceaccounts",
      client: this.watchClient(() => "/api/v1/serviceaccounts", (p) => core.listServiceAccountForAllNamespaces(page(p)) as Promise<ListPage>),
      toRecord: serviceAccountRecord,
      ...this.reflectorSettings(),
      handler: {
        replace: (records) => {
          const fresh = new Map(records.map((r) => [key(r), r]));
          for (const k of [...this.accounts.keys()]) if (!fresh.has(k)) this.setAccount(k, undefined);
          for (const [k, r] of fresh) this.setAccount(k, r);
        },
        upsert: (r) => this.setAccount(key(r), r),
        remove: (r) => this.setAccount(key(r), undefined),
        syncedChanged: () => {},
      },
    });
  }

  /** Applies a core change through `apply`, telling pod listeners what it did to a pod. */
  private podChange(kind: CoreKind, namespace: string, name: string, apply: () => boolean): boolean {
    if (kind !== "Pod" || this.podListeners.size === 0) return apply();
    const before = this.registry.pod(namespace, name);
    const changed = apply();
    const after = this.registry.pod(namespace, name);
    if (changed || before !== after) for (const l of [...this.podListeners]) l(before, after);
    return changed;
  }

  /** True once every watched type has been listed completely, false while one relists. */
  get synced(): boolean {
    return this.reflectors.length > 0 && this.reflectors.every((r) => r.isSynced);
  }

  /** Starts listing and watching; `listener.changed()` follows every change of what `snapshot()` returns. */
  async start(listener: SourceListener): Promise<void> {
    if (this.started) throw new Error("KubernetesSource is already started");
    this.started = true;
    this.listener = listener;
    const core = this.opts.kubeConfig.makeApiClient(CoreV1Api);
    const discovery = this.opts.kubeConfig.makeApiClient(DiscoveryV1Api);
    const customs = this.opts.kubeConfig.makeApiClient(CustomObjectsApi);
    const page = (p: { limit: number; continueToken?: string }) => ({ limit: p.limit, ...(p.continueToken ? { _continue: p.continueToken } : {}) });
    const coreKinds: CoreKindSpec[] = [
      { kind: "Namespace", resource: "namespaces", watchPath: "/api/v1/namespaces", list: (p) => core.listNamespace(page(p)), toRecord: (o) => namespaceRecord(o as KubeObject) },
      { kind: "Node", resource: "nodes", watchPath: "/api/v1/nodes", list: (p) => core.listNode(page(p)), toRecord: (o) => nodeRecord(o as KubeObject) },
      { kind: "Pod", resource: "pods", watchPath: "/api/v1/pods", list: (p) => core.listPodForAllNamespaces(page(p)), toRecord: (o) => podRecord(o as KubePod) },
      { kind: "Service", resource: "services", watchPath: "/api/v1/services", list: (p) => core.listServiceForAllNamespaces(page(p)), toRecord: (o) => serviceRecord(o as KubeService) },
      {
        kind: "EndpointSlice",
        resource: "endpointslices.discovery.k8s.io",
        watchPath: "/apis/discovery.k8s.io/v1/endpointslices",
        list: (p) => discovery.listEndpointSliceForAllNamespaces(page(p)),
        toRecord: (o) => endpointSliceRecord(o as KubeEndpointSlice),
      },
    ];
    for (const spec of coreKinds) this.reflectors.push(this.coreReflector(spec) as Reflector<unknown>);
    for (const kind of ISTIO_KINDS) this.reflectors.push(this.customReflector(kind, customs) as Reflector<unknown>);
    for (const r of this.reflectors) r.start();
    if (this.opts.watchServiceAccounts) {
      this.accountsReflector = this.accountReflector(core, page);
      this.accountsReflector.start();
    }
  }

  async close(): Promise<void> {
    for (const r of this.reflectors) r.stop();
    this.accountsReflector?.stop();
    this.listener = undefined;
  }

  /**
   * The registry's generated ServiceEntries, then the Istio resources (valid or not) by kind,
   * namespace and name. Not synced until every type is listed, and while one relists.
   */
  snapshot(): SourceSnapshot {
    const entries: SourceEntry[] = this.registry.serviceEntries().map((s) => ({ key: resourceKey(s.resource), source: s.source, resource: s.resource, issues: [] }));
    for (const kind of ISTIO_KINDS) {
      const records = this.custom.get(kind.kind);
      if (!records) continue;
      for (const key of [...records.keys()].sort()) entries.push(records.get(key)!.entry);
    }
    return { synced: this.synced, entries, issues: [], unreadable: [] };
  }

  /** The generated ServiceEntries and valid Istio resources now held (benchmarks, tests). */
  resources(): Sourced[] {
    return this.snapshot().entries.flatMap((e) => (e.resource ? [{ resource: e.resource, source: e.source }] : []));
  }

  /** Counts for logs, metrics and benchmarks. */
  stats(): { records: Record<string, number>; reflectors: Record<string, Reflector<unknown>["stats"]> } {
    const records: Record<string, number> = { ...this.registry.counts };
    for (const [kind, m] of this.custom) records[kind] = m.size;
    return { records, reflectors: Object.fromEntries(this.reflectors.map((r, i) => [this.reflectorNames[i] ?? String(i), r.stats])) };
  }

  private readonly reflectorNames: string[] = [];

  /** What every reflector of this source shares: logger, page size, back-off. */
  private reflectorSettings(): Pick<ReflectorOptions<unknown>, "logger" | "pageSize" | "initialBackoffMs" | "maxBackoffMs"> {
    return { logger: this.opts.logger, pageSize: this.opts.pageSize, initialBackoffMs: this.opts.initialBackoffMs, maxBackoffMs: this.opts.maxBackoffMs };
  }

  private changed(): void {
    this.listener?.changed();
  }

  private syncedChanged(): void {
    // Becoming synced is a change worth applying; becoming unsynced is reported by snapshot().
    this.listener?.changed();
  }

  private watchClient(path: () => string, list: ListWatchClient["list"]): ListWatchClient {
    return {
      list,
      watch: async (params, onEvent, done) => {
        const controller = await this.watch.watch(path(), params, onEvent, done);
        return () => controller.abort();
      },
    };
  }

  private coreReflector(spec: CoreKindSpec): Reflector<CoreRecord> {
    this.reflectorNames.push(spec.resource);
    return new Reflector<CoreRecord>({
      resource: spec.resource,
      client: this.watchClient(() => spec.watchPath, spec.list),
      toRecord: spec.toRecord,
      ...this.reflectorSettings(),
      handler: {
        replace: (records) => {
          let changed = false;
          const fresh = new Set(records.map((r) => `${r.namespace}/${r.name}`));
          for (const { namespace, name } of this.registry.keysOf(spec.kind)) {
            if (!fresh.has(`${namespace}/${name}`)) changed = this.podChange(spec.kind, namespace, name, () => this.registry.remove(spec.kind, namespace, name)) || changed;
          }
          for (const r of records) changed = this.podChange(spec.kind, r.namespace, r.name, () => this.registry.upsert(r)) || changed;
          if (changed) this.changed();
        },
        upsert: (record) => {
          if (this.podChange(spec.kind, record.namespace, record.name, () => this.registry.upsert(record))) this.changed();
        },
        remove: ({ namespace, name }) => {
          if (this.podChange(spec.kind, namespace, name, () => this.registry.remove(spec.kind, namespace, name))) this.changed();
        },
        syncedChanged: () => this.syncedChanged(),
      },
    });
  }

  private customReflector(kind: IstioKind, api: CustomObjectsApi): Reflector<CustomRecord> {
    const resource = `${kind.plural}.${kind.group}`;
    this.reflectorNames.push(resource);
    const records = new Map<string, CustomRecord>();
    this.custom.set(kind.kind, records);
    // The first version the cluster serves, found by listing (a 404 moves on to the next).
    let versionIndex = 0;
    const list = async (p: { limit: number; continueToken?: string }): Promise<ListPage> => {
      for (;;) {
        const version = kind.versions[versionIndex]!;
        try {
          return (await api.listClusterCustomObject({ group: kind.group, version, plural: kind.plural, limit: p.limit, ...(p.continueToken ? { _continue: p.continueToken } : {}) })) as ListPage;
        } catch (err) {
          const code = (err as { code?: number }).code;
          if (code === 404 && versionIndex < kind.versions.length - 1 && !p.continueToken) {
            versionIndex++;
            continue;
          }
          if (code === 404) versionIndex = 0;
          throw err;
        }
      }
    };
    const toRecord = (o: unknown): CustomRecord | undefined => this.customRecord(kind, kind.versions[versionIndex]!, o);
    const set = (r: CustomRecord): boolean => {
      const key = `${r.namespace}/${r.name}`;
      const before = records.get(key);
      records.set(key, r);
      return !before || before.resourceVersion !== r.resourceVersion || JSON.stringify(before.entry.resource) !== JSON.stringify(r.entry.resource);
    };
    return new Reflector<CustomRecord>({
      resource,
      optional: true,
      client: this.watchClient(() => `/apis/${kind.group}/${kind.versions[versionIndex]}/${kind.plural}`, list),
      toRecord,
      ...this.reflectorSettings(),
      handler: {
        replace: (fresh) => {
          let changed = fresh.length !== records.size;
          const keys = new Set(fresh.map((r) => `${r.namespace}/${r.name}`));
          for (const key of [...records.keys()]) if (!keys.has(key)) records.delete(key);
          for (const r of fresh) changed = set(r) || changed;
          if (changed) this.changed();
        },
        upsert: (r) => {
          if (set(r)) this.changed();
        },
        remove: ({ namespace, name }) => {
          if (records.delete(`${namespace}/${name}`)) this.changed();
        },
        syncedChanged: () => this.syncedChanged(),
      },
    });
  }

  /** Validates one custom resource as it arrives (istio-object.ts); the object itself is not kept. */
  private customRecord(kind: IstioKind, version: string, o: unknown): CustomRecord | undefined {
    const v = validateIstioObject(kind, version, o, this.clusterId);
    if (!v) return undefined;
    return { namespace: v.namespace, name: v.name, resourceVersion: v.resourceVersion, entry: { key: v.key, source: v.source, ...(v.resource ? { resource: v.resource } : { declaredHosts: v.declaredHosts ?? [] }), issues: v.issues } };
  }
}

/**
 * The client configuration: an explicit kubeconfig file, else the in-cluster service account
 * (inside a pod), else $KUBECONFIG, else ~/.kube/config.
 */
export function loadKubeConfig(kubeconfigFile?: string): { kubeConfig: KubeConfig; from: string } {
  const kc = new KubeConfig();
  if (kubeconfigFile) {
    kc.loadFromFile(kubeconfigFile);
    return { kubeConfig: kc, from: kubeconfigFile };
  }
  if (process.env.KUBERNETES_SERVICE_HOST && process.env.KUBERNETES_SERVICE_PORT) {
    kc.loadFromCluster();
    return { kubeConfig: kc, from: "in-cluster service account" };
  }
  kc.loadFromDefault();
  return { kubeConfig: kc, from: process.env.KUBECONFIG ? `KUBECONFIG (${process.env.KUBECONFIG})` : "~/.kube/config" };
}
