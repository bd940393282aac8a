// The mesh IR: plain, sorted data built from validated Istio resources. Services come from
// ServiceEntries (hosts x ports), their endpoints from inline endpoints or from the
// WorkloadEntries a ServiceEntry's workloadSelector picks. Translators read only this.
import { ISTIO_KINDS, modelListOf, type ModelLists } from "../api/kind-registry.js";
import { protocolFromPortName, servedProtocol } from "../api/port-protocols.js";
import type { DestinationRule, MeshConfig, Protocol, ServiceEntry, VirtualService, WorkloadEntry, WorkloadEntrySpec } from "../api/types.js";
import { hostPatternMatches, hostSpecificity } from "./host-match.js";
import { mergeDelegates } from "./virtual-service-delegation.js";
import { EMPTY_TELEMETRY_SETTINGS, type MeshTelemetrySettings } from "../api/telemetry/extension-providers.js";
import type { ExtAuthzProvider } from "../api/security/ext-authz-providers.js";
import { runToEnd, type Steps } from "../work/work-steps.js";

/** Resources modelled between two steps of buildMeshModelSteps. */
const RESOURCES_PER_STEP = 128;

export const DEFAULT_NAMESPACE = "default";
export const DOMAIN_SUFFIX = "svc.cluster.local";

/** A port's protocol; AUTO when neither `protocol` nor the name's prefix declares one (Istio sniffs those). */
export type PortProtocol = Protocol | "AUTO";

export interface ServicePortModel {
  number: number;
  name: string;
  protocol: PortProtocol;
  targetPort: number;
}

export interface EndpointModel {
  address: string;
  /** Port per service port number. */
  ports: Record<number, number>;
  labels: Record<string, string>;
  locality: string; // "region/zone/subzone" or ""
  weight: number;
  network: string;
  serviceAccount: string;
  workload: string; // "ns/name" of the WorkloadEntry or "" for inline endpoints
}

export interface ServiceModel {
  hostname: string;
  namespace: string;
  /** ServiceEntry that declared it (kind/ns/name). */
  origin: string;
  ports: ServicePortModel[];
  addresses: string[];
  resolution: "NONE" | "STATIC" | "DNS" | "DNS_ROUND_ROBIN";
  location: "MESH_EXTERNAL" | "MESH_INTERNAL";
  exportTo: string[];
  endpoints: EndpointModel[];
}

export interface MeshSettings {
  rootNamespace: string;
  outboundTrafficPolicy: "ALLOW_ANY" | "REGISTRY_ONLY";
  /** extensionProviders, defaultProviders and the access-log switches of the mesh settings (weft serve --mesh-config). */
  telemetry: MeshTelemetrySettings;
  /** The ext_authz providers AuthorizationPolicy CUSTOM names (mesh settings extensionProviders). */
  authorizationProviders: ExtAuthzProvider[];
}

/**
 * The model: services derived from ServiceEntries (and their endpoints), plus one sorted list
 * per kind the kind registry gives a list (`ModelLists`: workloads, virtualServices,
 * destinationRules, gateways, sidecars, peerAuthentications, authorizationPolicies, ...).
 */
export interface MeshModel extends ModelLists {
  settings: MeshSettings;
  services: ServiceModel[];
  serviceByHost: Map<string, ServiceModel>;
  /**
   * Indexes for translators (derived from the lists above): service hostname -> the rules that
   * name it, exactly or by a wildcard host, the most specific first (see indexByHost).
   */
  virtualServicesByHost: Map<string, VirtualService[]>;
  /**
   * The VirtualServices as proxies apply them (virtual-service-delegation.ts): each root with its
   * delegates' rules merged in, delegates (no hosts) left out. `virtualServices` keeps them as written.
   */
  routedVirtualServices: VirtualService[];
  destinationRulesByHost: Map<string, DestinationRule[]>;
}

export function namespaceOf(r: { metadata: { namespace?: string } }): string {
  return r.metadata.namespace || DEFAULT_NAMESPACE;
}

export function labelsMatch(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/**
 * How a ServiceEntry port is served: its protocol (any case, Istio's names), else its name's
 * prefix, else AUTO (detected); "skip" for UDP, which Istio accepts and does not proxy.
 */
function portProtocol(port: { protocol?: string; name?: string }): PortProtocol | "skip" {
  return servedProtocol(port.protocol) ?? protocolFromPortName(port.name) ?? "AUTO";
}

function endpointFrom(spec: WorkloadEntrySpec, ports: ServicePortModel[], workload: string, fallbackAddress?: string): EndpointModel | undefined {
  const address = spec.address ?? fallbackAddress;
  if (!address) return undefined;
  const portMap: Record<number, number> = {};
  for (const p of ports) portMap[p.number] = spec.ports?.[p.name] ?? p.targetPort;
  return {
    address,
    ports: portMap,
    labels: { ...(spec.labels ?? {}) },
    locality: spec.locality ?? "",
    weight: spec.weight ?? 1,
    network: spec.network ?? "",
    serviceAccount: spec.serviceAccount ?? "default",
    workload,
  };
}

/**
 * The WorkloadEntries of one namespace by label: a workloadSelector reads only the entries
 * carrying its rarest label, not every entry of the namespace.
 */
class WorkloadsByLabel {
  private readonly byLabel = new Map<string, WorkloadEntry[]>();

  constructor(readonly all: readonly WorkloadEntry[]) {
    for (const we of all) for (const [k, v] of Object.entries(we.spec.labels ?? {})) pushTo(this.byLabel, `${k}=${v}`, we);
  }

  /** The entries whose labels include every label of `selector`, in their own order. */
  selected(selector: Record<string, string>): WorkloadEntry[] {
    let narrowest: readonly WorkloadEntry[] = this.all;
    for (const [k, v] of Object.entries(selector)) {
      const list = this.byLabel.get(`${k}=${v}`) ?? [];
      if (list.length < narrowest.length) narrowest = list;
    }
    return narrowest.filter((we) => labelsMatch(selector, we.spec.labels ?? {}));
  }
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function servicesOf(se: ServiceEntry, workloads: WorkloadsByLabel | undefined): ServiceModel[] {
  const namespace = namespaceOf(se);
  const ports: ServicePortModel[] = (se.spec.ports ?? [])
    .flatMap((p) => {
      const protocol = portProtocol(p);
      return protocol === "skip" ? [] : [{ number: p.number, name: p.name ?? `port-${p.number}`, protocol, targetPort: p.targetPort ?? p.number }];
    })
    .sort((a, b) => a.number - b.number);
  // As Istio, a selector without labels (`workloadSelector: {}`) selects every workload of the namespace.
  const selector = se.spec.workloadSelector ? (se.spec.workloadSelector.labels ?? {}) : undefined;
  const endpoints: EndpointModel[] = [];
  if (selector) {
    for (const we of workloads?.selected(selector) ?? []) {
      const ep = endpointFrom({ ...we.spec, labels: { ...(we.metadata.labels ?? {}), ...(we.spec.labels ?? {}) } }, ports, `${namespace}/${we.metadata.name}`);
      if (ep) endpoints.push(ep);
    }
  } else {
    for (const spec of se.spec.endpoints ?? []) {
      const ep = endpointFrom(spec, ports, "");
      if (ep) endpoints.push(ep);
    }
  }
  endpoints.sort((a, b) => a.address.localeCompare(b.address) || a.workload.localeCompare(b.workload));
  return [...se.spec.hosts].sort().map((hostname) => ({
    hostname,
    namespace,
    origin: `ServiceEntry/${namespace}/${se.metadata.name}`,
    ports,
    addresses: [...(se.spec.addresses ?? [])].sort(),
    resolution: se.spec.resolution ?? "NONE",
    location: se.spec.location ?? "MESH_EXTERNAL",
    exportTo: se.spec.exportTo ?? ["*"],
    endpoints,
  }));
}

function byKey<T extends { metadata: { name: string; namespace?: string } }>(a: T, b: T): number {
  return namespaceOf(a).localeCompare(namespaceOf(b)) || a.metadata.name.localeCompare(b.metadata.name);
}

/**
 * Each resource under every service host it names: resolved like resolveHost, and, for a
 * wildcard host ("*.example.com", "*"), every service hostname it matches. Each list is in
 * order of how specifically the resource names the host (an exact name first, then longer
 * wildcards before shorter ones: Istio's most specific match), then list order.
 */
function* indexByHost<R extends { metadata: { name: string; namespace?: string } }>(
  list: R[],
  hostsOf: (r: R) => string[],
  lookup: (host: string, namespace: string) => ServiceModel | undefined,
  services: readonly ServiceModel[],
): Steps<Map<string, R[]>> {
  const index = new Map<string, R[]>();
  const wildcards = new Map<string, R[]>();
  let indexed = 0;
  for (const r of list) {
    if (++indexed % (RESOURCES_PER_STEP * 4) === 0) yield;
    const hosts = new Set(hostsOf(r).map((h) => lookup(h, namespaceOf(r))?.hostname).filter((h): h is string => !!h));
    for (const h of hosts) pushTo(index, h, r);
    for (const h of new Set(hostsOf(r))) if (h.startsWith("*")) pushTo(wildcards, h, r);
  }
  if (wildcards.size === 0) return index;
  for (const service of services) {
    if (++indexed % (RESOURCES_PER_STEP * 4) === 0) yield;
    // The patterns that can match this hostname, most specific first: "*" + each suffix
    // ("*b.c", "*.b.c", "*.c", "*c"), then "*". A wildcard service ("*.b.c") is named exactly
    // by its own pattern (above) and matched by broader ones.
    const name = service.hostname.startsWith("*") ? service.hostname.slice(1) : service.hostname;
    const patterns: string[] = [];
    for (let i = service.hostname.startsWith("*") ? 1 : 0; i < name.length; i++) patterns.push(`*${name.slice(i)}`);
    for (const pattern of [...patterns, "*"]) {
      if (pattern === service.hostname) continue;
      for (const r of wildcards.get(pattern) ?? []) {
        const named = index.get(service.hostname);
        if (!named?.includes(r)) pushTo(index, service.hostname, r);
      }
    }
  }
  return index;
}

/**
 * How specifically hosts written in `namespace` name a service (higher is more specific): a name
 * that resolves to it beats any wildcard, a longer wildcard a shorter one; -1 when none does.
 */
export function hostSpecificityFor(model: MeshModel, hosts: readonly string[], namespace: string, service: ServiceModel): number {
  let best = -1;
  for (const h of hosts) {
    if (h === service.hostname || (!h.startsWith("*") && resolveHost(model, h, namespace) === service)) return Number.MAX_SAFE_INTEGER;
    if (hostPatternMatches(h, service.hostname)) best = Math.max(best, hostSpecificity(h));
  }
  return best;
}

/** The services a host as written in `namespace` names: the one it resolves to, or every one a wildcard matches. */
export function servicesNamedBy(model: MeshModel, host: string, namespace: string): ServiceModel[] {
  if (host.startsWith("*")) return model.services.filter((s) => hostPatternMatches(host, s.hostname) || s.hostname === host);
  const service = resolveHost(model, host, namespace);
  return service ? [service] : [];
}

/** The model's lists, one per kind the registry gives a list: that kind's resources sorted by namespace/name. */
function* modelLists(config: MeshConfig): Steps<ModelLists> {
  const byKind = new Map<string, { metadata: { name: string; namespace?: string } }[]>();
  for (const { resource } of config.resources) pushTo(byKind, resource.kind, resource);
  const lists: Record<string, unknown[]> = {};
  for (const d of ISTIO_KINDS) {
    const list = modelListOf(d);
    if (list) lists[list] = (byKind.get(d.kind) ?? []).sort(byKey);
    yield;
  }
  // Each list holds exactly the resources of the kind declared with it.
  return lists as unknown as ModelLists;
}

/** Builds the model from validated resources; deterministic for the same input. */
export function buildMeshModel(config: MeshConfig, settings: Partial<MeshSettings> = {}): MeshModel {
  return runToEnd(buildMeshModelSteps(config, settings));
}

/**
 * buildMeshModel as steps (work-steps.ts): the same model, built with a chance to yield every
 * RESOURCES_PER_STEP resources, so `weft serve` applying a config of thousands of services
 * does not block the event loop for the whole build.
 */
export function* buildMeshModelSteps(config: MeshConfig, settings: Partial<MeshSettings> = {}): Steps<MeshModel> {
  const lists = yield* modelLists(config);
  const { workloads, virtualServices, destinationRules } = lists;
  const serviceEntries = config.resources.map((s) => s.resource).filter((r): r is ServiceEntry => r.kind === "ServiceEntry").sort(byKey);
  yield;
  const workloadsByNamespace = new Map<string, WorkloadEntry[]>();
  for (const we of workloads) pushTo(workloadsByNamespace, namespaceOf(we), we);
  const workloadIndexes = new Map([...workloadsByNamespace].map(([ns, list]) => [ns, new WorkloadsByLabel(list)]));
  yield;
  const services: ServiceModel[] = [];
  for (const [i, se] of serviceEntries.entries()) {
    services.push(...servicesOf(se, workloadIndexes.get(namespaceOf(se))));
    if ((i + 1) % RESOURCES_PER_STEP === 0) yield;
  }
  services.sort((a, b) => a.hostname.localeCompare(b.hostname) || a.namespace.localeCompare(b.namespace));
  yield;
  const serviceByHost = new Map<string, ServiceModel>();
  for (const s of services) if (!serviceByHost.has(s.hostname)) serviceByHost.set(s.hostname, s);
  const routedVirtualServices = mergeDelegates(virtualServices);
  yield;
  const lookup = (host: string, namespace: string) => serviceByHost.get(host) ?? (host.includes(".") ? serviceByHost.get(`${host}.${DOMAIN_SUFFIX}`) : serviceByHost.get(`${host}.${namespace}.${DOMAIN_SUFFIX}`));
  return {
    ...lists,
    settings: { rootNamespace: settings.rootNamespace ?? "istio-system", outboundTrafficPolicy: settings.outboundTrafficPolicy ?? "ALLOW_ANY", telemetry: settings.telemetry ?? EMPTY_TELEMETRY_SETTINGS, authorizationProviders: settings.authorizationProviders ?? [] },
    services,
    serviceByHost,
    routedVirtualServices,
    virtualServicesByHost: yield* indexByHost(routedVirtualServices, (vs) => vs.spec.hosts ?? [], lookup, services),
    destinationRulesByHost: yield* indexByHost(destinationRules, (dr) => [dr.spec.host], lookup, services),
  };
}

/** Resolves a host as written in a resource of `namespace` to a service in the model. */
export function resolveHost(model: MeshModel, host: string, namespace: string): ServiceModel | undefined {
  return model.serviceByHost.get(host) ?? (host.includes(".") ? model.serviceByHost.get(`${host}.${DOMAIN_SUFFIX}`) : model.serviceByHost.get(`${host}.${namespace}.${DOMAIN_SUFFIX}`));
}

/** Names a client in `namespace` may use for a service: FQDN, and short forms for cluster-local hosts. */
export function hostAliases(service: ServiceModel, clientNamespace: string): string[] {
  const names = [service.hostname];
  const suffix = `.${DOMAIN_SUFFIX}`;
  if (service.hostname.endsWith(suffix)) {
    const [name, ns] = service.hostname.slice(0, -suffix.length).split(".");
    if (name && ns) {
      names.push(`${name}.${ns}`, `${name}.${ns}.svc`);
      if (ns === clientNamespace) names.push(name);
    }
  }
  return names;
}
