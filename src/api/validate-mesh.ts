// Cross-resource meaning: checks that need the whole mesh, run after each resource passed its
// own schema checks (validate-resource.ts). A resource with an error here is left out of
// `valid`, and resources that depend on it are checked against what is left, so a
// VirtualService routing to a dropped ServiceEntry's host is reported too.
import { closestMatch } from "./field-checks.js";
import {
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

export function validateMesh(resources: Sourced[]): { valid: Sourced[]; issues: ValidationIssue[] } {
  const issues: ValidationIssue[] = [];
  const rejected = new Set<Sourced>();
  const reject = (item: Sourced, field: string, message: string): void => {
    rejected.add(item);
    issues.push({ ...item.source, resource: resourceKey(item.resource), field, message, severity: "error" });
  };

  const unique = dropDuplicates(resources, reject);
  const ofKind = <K extends NetworkingResource["kind"]>(kind: K) =>
    unique.filter((s): s is Sourced<Extract<NetworkingResource, { kind: K }>> => s.resource.kind === kind && !rejected.has(s));

  checkPortProtocols(ofKind("ServiceEntry"), reject);
  const entries = unique.filter((s): s is Sourced<ServiceEntry> => s.resource.kind === "ServiceEntry");
  const services = new ServiceIndex(
    entries.filter((s) => !rejected.has(s)),
    entries.filter((s) => rejected.has(s)),
  );
  const gateways = new Set(ofKind("Gateway").map((g) => `${namespaceOf(g)}/${g.resource.metadata.name}`));

  for (const rule of ofKind("DestinationRule")) checkDestinationRuleHost(rule, services, reject);
  const subsets = new SubsetIndex(ofKind("DestinationRule").filter((s) => !rejected.has(s)));

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

function hostMatches(pattern: string, host: string): boolean {
  if (pattern === "*") return true;
  if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1));
  return pattern === host;
}

/** Whether a resource with this exportTo in `ownNamespace` is visible from `namespace`. */
function isExportedTo(exportTo: string[] | undefined, ownNamespace: string, namespace: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  return exportTo.some((e) => e === "*" || (e === "." && namespace === ownNamespace) || e === namespace);
}

type HostLookup = { found: true } | { found: false; hiddenBy?: Sourced<ServiceEntry>; rejectedDeclarer?: Sourced<ServiceEntry> };

/** The hosts that ServiceEntries declare: the services routes may send traffic to. */
class ServiceIndex {
  constructor(
    private readonly entries: Sourced<ServiceEntry>[],
    /** ServiceEntries with errors: not services, but worth naming when a host is missing. */
    private readonly rejectedEntries: Sourced<ServiceEntry>[],
  ) {}

  lookup(host: string, fromNamespace: string): HostLookup {
    const qualified = qualifyHost(host, fromNamespace);
    const declares = (entry: Sourced<ServiceEntry>) => entry.resource.spec.hosts.some((h) => h === host || hostMatches(h, qualified));
    let hiddenBy: Sourced<ServiceEntry> | undefined;
    for (const entry of this.entries) {
      if (!declares(entry)) continue;
      if (isExportedTo(entry.resource.spec.exportTo, namespaceOf(entry), fromNamespace)) return { found: true };
      hiddenBy ??= entry;
    }
    if (hiddenBy) return { found: false, hiddenBy };
    const rejectedDeclarer = this.rejectedEntries.find(declares);
    return rejectedDeclarer ? { found: false, rejectedDeclarer } : { found: false };
  }

  allHosts(): string[] {
    return [...new Set(this.entries.flatMap((e) => e.resource.spec.hosts))].sort();
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
  const known = services.allHosts();
  const hint = closestMatch(qualified, known);
  return `unknown host ${shown}: no ServiceEntry declares it${hint ? ` (did you mean "${hint}"?)` : known.length === 0 ? " (there are no ServiceEntries)" : ""}`;
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

/** The subsets each DestinationRule defines, by the (qualified) host it applies to. */
class SubsetIndex {
  private readonly rules: { host: string; rule: Sourced<DestinationRule> }[];

  constructor(rules: Sourced<DestinationRule>[]) {
    this.rules = rules.map((rule) => ({ host: qualifyHost(rule.resource.spec.host, namespaceOf(rule)), rule }));
  }

  rulesFor(qualifiedHost: string): Sourced<DestinationRule>[] {
    return this.rules.filter((r) => hostMatches(r.host, qualifiedHost)).map((r) => r.rule);
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

function checkGatewayReference(vs: Sourced<VirtualService>, gateway: string, path: string, gateways: Set<string>, reject: Reject): void {
  if (gateway === MESH_GATEWAY) return;
  const qualified = gateway.includes("/") ? gateway : `${namespaceOf(vs)}/${gateway}`;
  if (gateways.has(qualified)) return;
  const hint = closestMatch(qualified, [...gateways]);
  const known = gateways.size === 0 ? "there are no Gateways" : hint ? `did you mean "${hint}"?` : `known: ${[...gateways].sort().join(", ")}`;
  reject(vs, path, `Gateway "${qualified}" does not exist (${known}); use "mesh" for the sidecars, or a Gateway as "name" or "namespace/name"`);
}
