// Cross-resource meaning: checks that need the whole mesh, run after each resource passed its
// own schema checks (validate-resource.ts). A resource with an error here is left out of
// `valid`, and resources that depend on it are checked against what is left, so a
// VirtualService routing to a dropped ServiceEntry's host is reported too.
import { HintIndex, type HintCounter } from "./spelling-hints.js";
import {
  boundText,
  formatSource,
  resourceKey,
  type Destination,
  type DestinationRule,
  type NetworkingResource,
  type ServiceEntry,
  type Sourced,
  type ValidationIssue,
  type VirtualService,
} from "./types.js";

/** Istio's reserved gateway name: the sidecars of the mesh rather than a Gateway resource. */
const MESH_GATEWAY = "mesh";
const CLUSTER_DOMAIN = "svc.cluster.local";

/** How much cross-checking a validation did; tests use it to prove the work is linear in the mesh. */
export interface ValidationCounters {
  /** Resources returned by index lookups (hosts, DestinationRule hosts): the ones then looked at. */
  hostCandidates: number;
  /** Edit-distance comparisons for "did you mean" hints. */
  hints: HintCounter;
}

/** At most this many names are listed in a message when there is no close one to suggest. */
const MAX_LISTED = 10;

/**
 * Checks references between resources. Every lookup goes through an index built once here
 * (hosts, DestinationRule hosts, gateways, hint trigrams), so the work grows with the size of
 * the mesh, not its square.
 */
export function validateMesh(resources: Sourced[], counters?: ValidationCounters): { valid: Sourced[]; issues: ValidationIssue[] } {
  const issues: ValidationIssue[] = [];
  const rejected = new Set<Sourced>();
  const reject = (item: Sourced, field: string, message: string): void => {
    rejected.add(item);
    issues.push({ ...item.source, resource: boundText(resourceKey(item.resource)), field: boundText(field), message: boundText(message), severity: "error" });
  };

  const unique = dropDuplicates(resources, reject);
  const ofKind = <K extends NetworkingResource["kind"]>(kind: K) =>
    unique.filter((s): s is Sourced<Extract<NetworkingResource, { kind: K }>> => s.resource.kind === kind && !rejected.has(s));

  checkPortProtocols(ofKind("ServiceEntry"), reject);
  const entries = unique.filter((s): s is Sourced<ServiceEntry> => s.resource.kind === "ServiceEntry");
  const services = new ServiceIndex(
    entries.filter((s) => !rejected.has(s)),
    entries.filter((s) => rejected.has(s)),
    counters,
  );
  const gateways = new GatewayIndex(ofKind("Gateway").map((g) => `${namespaceOf(g)}/${g.resource.metadata.name}`), counters?.hints);

  for (const rule of ofKind("DestinationRule")) checkDestinationRuleHost(rule, services, reject);
  const subsets = new SubsetIndex(ofKind("DestinationRule"), counters);

  for (const vs of ofKind("VirtualService")) {
    for (const { destination, path } of destinationsOf(vs.resource)) checkDestination(vs, destination, path, services, subsets, reject);
    for (const { gateway, path } of gatewayReferencesOf(vs.resource)) checkGatewayReference(vs, gateway, path, gateways, reject);
  }

  return { valid: resources.filter((s) => !rejected.has(s)), issues };
}

type Reject = (item: Sourced, field: string, message: string) => void;

function namespaceOf(s: Sourced): string {
  return s.resource.metadata.namespace ?? "default";
}

function where(s: Sourced): string {
  return formatSource(s.source);
}

/** The first definition of a kind/namespace/name wins; later ones are rejected, naming both places. */
function dropDuplicates(resources: Sourced[], reject: Reject): Sourced[] {
  const first = new Map<string, Sourced>();
  const unique: Sourced[] = [];
  for (const item of resources) {
    const key = resourceKey(item.resource);
    const earlier = first.get(key);
    if (earlier) {
      reject(item, "metadata.name", `duplicate ${key}: already defined in ${where(earlier)}; this definition in ${where(item)} is ignored`);
      continue;
    }
    first.set(key, item);
    unique.push(item);
  }
  return unique;
}

// ---------------------------------------------------------------------------------------
// Service hosts

/** The fully qualified form of a host as Istio reads it in `namespace`: short names get ".<ns>.svc.cluster.local". */
export function qualifyHost(host: string, namespace: string): string {
  return host.includes(".") || host.includes("*") ? host : `${host}.${namespace}.${CLUSTER_DOMAIN}`;
}

/** Whether a resource with this exportTo in `ownNamespace` is visible from `namespace`. */
function isExportedTo(exportTo: string[] | undefined, ownNamespace: string, namespace: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  return exportTo.some((e) => e === "*" || (e === "." && namespace === ownNamespace) || e === namespace);
}

type HostLookup = { found: true } | { found: false; hiddenBy?: Sourced<ServiceEntry>; rejectedDeclarer?: Sourced<ServiceEntry> };

/**
 * Items under the host patterns they declare, for "which items match this host" without a
 * scan: exact hosts in a map, "*.suffix" patterns by suffix (a host is looked up under each of
 * its dot-suffixes), "*" apart. Answers keep the items' own order.
 */
class HostPatternIndex<T> {
  private readonly exact = new Map<string, number[]>();
  private readonly suffixes = new Map<string, number[]>();
  private readonly everything: number[] = [];

  constructor(
    private readonly items: readonly T[],
    patternsOf: (item: T) => readonly string[],
    private readonly counter?: ValidationCounters,
  ) {
    items.forEach((item, index) => {
      for (const pattern of new Set(patternsOf(item))) {
        if (pattern === "*") this.everything.push(index);
        else if (pattern.startsWith("*.")) push(this.suffixes, pattern.slice(1), index);
        else push(this.exact, pattern, index);
      }
    });
  }

  /** Items with a pattern equal to one of `names` or matching it as a host, in item order. */
  matching(...names: string[]): T[] {
    const found = new Set<number>(this.everything);
    for (const name of names) {
      for (const index of this.exact.get(name) ?? []) found.add(index);
      for (let dot = name.indexOf("."); dot !== -1; dot = name.indexOf(".", dot + 1)) {
        for (const index of this.suffixes.get(name.slice(dot)) ?? []) found.add(index);
      }
    }
    if (this.counter) this.counter.hostCandidates += found.size;
    return [...found].sort((a, b) => a - b).map((index) => this.items[index]!);
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** The hosts that ServiceEntries declare: the services routes may send traffic to. */
class ServiceIndex {
  private readonly declared: HostPatternIndex<Sourced<ServiceEntry>>;
  private readonly declaredByRejected: HostPatternIndex<Sourced<ServiceEntry>>;
  readonly hints: HintIndex;

  constructor(
    entries: Sourced<ServiceEntry>[],
    /** ServiceEntries with errors: not services, but worth naming when a host is missing. */
    rejectedEntries: Sourced<ServiceEntry>[],
    counter?: ValidationCounters,
  ) {
    const hostsOf = (e: Sourced<ServiceEntry>) => e.resource.spec.hosts;
    this.declared = new HostPatternIndex(entries, hostsOf, counter);
    this.declaredByRejected = new HostPatternIndex(rejectedEntries, hostsOf, counter);
    this.hints = new HintIndex([...new Set(entries.flatMap(hostsOf))].sort(), counter?.hints);
  }

  /** A host as written (`host`) in `fromNamespace`: declared as written, or matched in its qualified form. */
  lookup(host: string, fromNamespace: string): HostLookup {
    const qualified = qualifyHost(host, fromNamespace);
    let hiddenBy: Sourced<ServiceEntry> | undefined;
    for (const entry of this.declared.matching(host, qualified)) {
      if (isExportedTo(entry.resource.spec.exportTo, namespaceOf(entry), fromNamespace)) return { found: true };
      hiddenBy ??= entry;
    }
    if (hiddenBy) return { found: false, hiddenBy };
    const rejectedDeclarer = this.declaredByRejected.matching(host, qualified)[0];
    return rejectedDeclarer ? { found: false, rejectedDeclarer } : { found: false };
  }
}

function unknownHostMessage(host: string, namespace: string, lookup: HostLookup, services: ServiceIndex): string {
  const qualified = qualifyHost(host, namespace);
  const shown = qualified === host ? `"${host}"` : `"${host}" (${qualified})`;
  if (!lookup.found && lookup.hiddenBy) {
    return `host ${shown} is declared by ${resourceKey(lookup.hiddenBy.resource)} (${where(lookup.hiddenBy)}), but its exportTo does not include namespace "${namespace}"`;
  }
  if (!lookup.found && lookup.rejectedDeclarer) {
    return `unknown host ${shown}: only ${resourceKey(lookup.rejectedDeclarer.resource)} (${where(lookup.rejectedDeclarer)}) declares it, and that ServiceEntry has errors`;
  }
  const hint = services.hints.closest(qualified);
  return `unknown host ${shown}: no ServiceEntry declares it${hint ? ` (did you mean "${hint}"?)` : services.hints.size === 0 ? " (there are no ServiceEntries)" : ""}`;
}

function checkDestinationRuleHost(rule: Sourced<DestinationRule>, services: ServiceIndex, reject: Reject): void {
  const host = rule.resource.spec.host;
  if (host.includes("*")) return; // a wildcard rule applies to whichever services match it
  const lookup = services.lookup(host, namespaceOf(rule));
  if (!lookup.found) reject(rule, "spec.host", unknownHostMessage(host, namespaceOf(rule), lookup, services));
}

/** Two ServiceEntries may share a host and port only if they agree on its protocol. */
function checkPortProtocols(entries: Sourced<ServiceEntry>[], reject: Reject): void {
  const declared = new Map<string, { protocol: string; entry: Sourced<ServiceEntry> }>();
  for (const entry of entries) {
    const own: [string, { protocol: string; entry: Sourced<ServiceEntry> }][] = [];
    let conflict = false;
    (entry.resource.spec.ports ?? []).forEach((port, index) => {
      if (!port.protocol) return; // unset: Istio sniffs the protocol, which conflicts with nothing
      for (const host of entry.resource.spec.hosts) {
        const key = `${host}:${port.number}`;
        const earlier = declared.get(key);
        if (earlier && earlier.protocol !== port.protocol && earlier.entry !== entry) {
          conflict = true;
          reject(
            entry,
            `spec.ports[${index}].protocol`,
            `conflicting protocols for ${host} port ${port.number}: ${port.protocol} here, but ${earlier.protocol} in ${resourceKey(earlier.entry.resource)} (${where(earlier.entry)}); a host's port has one protocol`,
          );
        }
        own.push([key, { protocol: port.protocol, entry }]);
      }
    });
    if (!conflict) for (const [key, value] of own) if (!declared.has(key)) declared.set(key, value);
  }
}

// ---------------------------------------------------------------------------------------
// Subsets

/** The DestinationRules (and so the subsets) that apply to each qualified host. */
class SubsetIndex {
  private readonly rules: HostPatternIndex<Sourced<DestinationRule>>;

  constructor(rules: Sourced<DestinationRule>[], counter?: ValidationCounters) {
    this.rules = new HostPatternIndex(rules, (rule) => [qualifyHost(rule.resource.spec.host, namespaceOf(rule))], counter);
  }

  rulesFor(qualifiedHost: string): Sourced<DestinationRule>[] {
    return this.rules.matching(qualifiedHost);
  }
}

function checkDestination(vs: Sourced<VirtualService>, destination: Destination, path: string, services: ServiceIndex, subsets: SubsetIndex, reject: Reject): void {
  const namespace = namespaceOf(vs);
  const lookup = services.lookup(destination.host, namespace);
  if (!lookup.found) {
    reject(vs, `${path}.host`, unknownHostMessage(destination.host, namespace, lookup, services));
    return;
  }
  if (destination.subset === undefined) return;
  const qualified = qualifyHost(destination.host, namespace);
  const rules = subsets.rulesFor(qualified);
  if (rules.some((r) => (r.resource.spec.subsets ?? []).some((s) => s.name === destination.subset))) return;
  const defined = rules.map((r) => {
    const names = (r.resource.spec.subsets ?? []).map((s) => s.name);
    return `${resourceKey(r.resource)} defines ${names.length ? names.join(", ") : "no subsets"}`;
  });
  reject(vs, `${path}.subset`, `subset "${destination.subset}" of ${qualified} is not defined by any DestinationRule (${defined.length ? defined.join("; ") : "no DestinationRule applies to this host"})`);
}

/** Every destination a VirtualService sends traffic to, with its field path. */
function destinationsOf(vs: VirtualService): { destination: Destination; path: string }[] {
  const found: { destination: Destination; path: string }[] = [];
  (vs.spec.http ?? []).forEach((route, i) => {
    (route.route ?? []).forEach((d, j) => found.push({ destination: d.destination, path: `spec.http[${i}].route[${j}].destination` }));
    if (route.mirror) found.push({ destination: route.mirror, path: `spec.http[${i}].mirror` });
  });
  for (const protocol of ["tcp", "tls"] as const) {
    (vs.spec[protocol] ?? []).forEach((route, i) => {
      (route.route ?? []).forEach((d, j) => found.push({ destination: d.destination, path: `spec.${protocol}[${i}].route[${j}].destination` }));
    });
  }
  return found;
}

// ---------------------------------------------------------------------------------------
// Gateways

/** Every gateway a VirtualService names: spec.gateways and the gateways of its match conditions. */
function gatewayReferencesOf(vs: VirtualService): { gateway: string; path: string }[] {
  const found: { gateway: string; path: string }[] = [];
  (vs.spec.gateways ?? []).forEach((gateway, i) => found.push({ gateway, path: `spec.gateways[${i}]` }));
  for (const protocol of ["http", "tcp", "tls"] as const) {
    (vs.spec[protocol] ?? []).forEach((route, i) => {
      (route.match ?? []).forEach((match, j) => {
        (match.gateways ?? []).forEach((gateway, k) => found.push({ gateway, path: `spec.${protocol}[${i}].match[${j}].gateways[${k}]` }));
      });
    });
  }
  return found;
}

/** The Gateways by "namespace/name", with hints for misspelt references. */
class GatewayIndex {
  private readonly names: Set<string>;
  private readonly hints: HintIndex;

  constructor(names: string[], counter?: HintCounter) {
    this.names = new Set(names);
    this.hints = new HintIndex([...this.names], counter);
  }

  has(name: string): boolean {
    return this.names.has(name);
  }

  /** What to tell someone who named a Gateway that does not exist. */
  suggestion(name: string): string {
    if (this.names.size === 0) return "there are no Gateways";
    const hint = this.hints.closest(name);
    if (hint) return `did you mean "${hint}"?`;
    const known = [...this.names].sort();
    return `known: ${known.slice(0, MAX_LISTED).join(", ")}${known.length > MAX_LISTED ? `, and ${known.length - MAX_LISTED} more` : ""}`;
  }
}

function checkGatewayReference(vs: Sourced<VirtualService>, gateway: string, path: string, gateways: GatewayIndex, reject: Reject): void {
  if (gateway === MESH_GATEWAY) return;
  const qualified = gateway.includes("/") ? gateway : `${namespaceOf(vs)}/${gateway}`;
  if (gateways.has(qualified)) return;
  reject(vs, path, `Gateway "${qualified}" does not exist (${gateways.suggestion(qualified)}); use "mesh" for the sidecars, or a Gateway as "name" or "namespace/name"`);
}
