// Cross-resource meaning: checks that need the whole mesh, run after each resource passed its
// own schema checks (validate-resource.ts). Errors mean what Istio would refuse too: only a
// duplicate definition (the later one is left out of `valid`). References to things that may
// arrive later (hosts, subsets, Gateways) and conflicts between resources are warnings, with
// Istio's analyzer code where one exists (IST0101 ReferencedResourceNotFound); translation
// tolerates them (a route to an unknown host or subset answers 503, as Istio's missing
// cluster does). Where the referenced resource exists but is invalid, the warning says so.
import { runToEnd, type Steps } from "../work/work-steps.js";
import { REFERENCED_RESOURCE_NOT_FOUND as ANALYSIS_REFERENCED_RESOURCE_NOT_FOUND } from "./analysis-messages.js";
import { HintIndex, type HintCounter } from "./spelling-hints.js";
import {
  boundText,
  formatSource,
  resourceKey,
  type Destination,
  type DestinationRule,
  type NetworkingResource,
  type ServiceEntry,
  type SourceRef,
  type Sourced,
  type ValidationIssue,
  type VirtualService,
} from "./types.js";

/** Istio's analyzer code for a reference to something that does not exist (IST0101, analysis-messages.ts). */
const REFERENCED_RESOURCE_NOT_FOUND = ANALYSIS_REFERENCED_RESOURCE_NOT_FOUND.code;

/**
 * A resource that exists but is invalid (its own errors keep it out of the mesh): named so that
 * references to it say "exists but is invalid" rather than "does not exist". `hosts` are the
 * hosts it would declare (a ServiceEntry's spec.hosts, a DestinationRule's spec.host), read
 * best-effort from the invalid document.
 */
export interface InvalidResource {
  key: string;
  source: SourceRef;
  hosts: readonly string[];
}

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
export function validateMesh(resources: Sourced[], counters?: ValidationCounters, invalid: readonly InvalidResource[] = []): MeshValidation {
  return runToEnd(validateMeshSteps(resources, counters, invalid));
}

export interface MeshValidation {
  valid: Sourced[];
  issues: ValidationIssue[];
}

/** Resources checked between two steps of validateMeshSteps (a few milliseconds at most). */
const RESOURCES_PER_STEP = 64;
/** VirtualServices checked between two steps: each names several destinations, a missing one asks for a hint. */
const ROUTES_PER_STEP = 16;

/**
 * validateMesh as steps (work-steps.ts): the same checks in the same order, giving the caller a
 * chance to yield every RESOURCES_PER_STEP resources, so a mesh of 10,000 resources checked in
 * `weft serve` does not block the event loop for the whole check.
 */
export function* validateMeshSteps(resources: Sourced[], counters?: ValidationCounters, invalid: readonly InvalidResource[] = []): Steps<MeshValidation> {
  const issues: ValidationIssue[] = [];
  const rejected = new Set<Sourced>();
  const report: Report = (item, field, message, severity = "warning", code) => {
    if (severity === "error") rejected.add(item);
    issues.push({ ...item.source, resource: boundText(resourceKey(item.resource)), field: boundText(field), message: boundText(message), severity, ...(code ? { code } : {}) });
  };

  const unique = yield* dropDuplicates(resources, report);
  const ofKind = <K extends NetworkingResource["kind"]>(kind: K) =>
    unique.filter((s): s is Sourced<Extract<NetworkingResource, { kind: K }>> => s.resource.kind === kind && !rejected.has(s));

  const invalidByKind = (kind: string) => invalid.filter((i) => i.key.startsWith(`${kind}/`));
  yield* checkPortProtocols(ofKind("ServiceEntry"), report);
  const services = new ServiceIndex(ofKind("ServiceEntry"), invalidByKind("ServiceEntry"), counters);
  yield;
  yield* services.hints.indexSteps();
  const gateways = new GatewayIndex(ofKind("Gateway").map((g) => `${namespaceOf(g)}/${g.resource.metadata.name}`), invalidByKind("Gateway"), counters?.hints);
  yield;

  let checked = 0;
  for (const rule of ofKind("DestinationRule")) {
    checkDestinationRuleHost(rule, services, report);
    if (++checked % RESOURCES_PER_STEP === 0) yield;
  }
  const subsets = new SubsetIndex(ofKind("DestinationRule"), invalidByKind("DestinationRule"), counters);
  yield;

  for (const vs of ofKind("VirtualService")) {
    for (const { destination, path } of destinationsOf(vs.resource)) checkDestination(vs, destination, path, services, subsets, report);
    for (const { gateway, path } of gatewayReferencesOf(vs.resource)) checkGatewayReference(vs, gateway, path, gateways, report);
    if (++checked % ROUTES_PER_STEP === 0) yield;
  }

  return { valid: resources.filter((s) => !rejected.has(s)), issues };
}

/** Reports a problem of `item`: a warning unless said otherwise; an error also leaves it out of `valid`. */
type Report = (item: Sourced, field: string, message: string, severity?: ValidationIssue["severity"], code?: string) => void;

function namespaceOf(s: Sourced): string {
  return s.resource.metadata.namespace ?? "default";
}

function where(s: Sourced): string {
  return formatSource(s.source);
}

/**
 * The first definition of a kind/namespace/name wins; later ones are rejected (an error: one
 * of them is ignored), naming both places and why the first wins: resources are read in a fixed
 * order (sources in the order given; a directory's files in sorted path order, documents in
 * file order), so the same files always give the same winner.
 */
function* dropDuplicates(resources: Sourced[], report: Report): Steps<Sourced[]> {
  const first = new Map<string, Sourced>();
  const unique: Sourced[] = [];
  let seen = 0;
  for (const item of resources) {
    if (++seen % (RESOURCES_PER_STEP * 4) === 0) yield;
    const key = resourceKey(item.resource);
    const earlier = first.get(key);
    if (earlier) {
      report(
        item,
        "metadata.name",
        `duplicate ${key}: already defined in ${where(earlier)}, which wins (the first definition read wins: files in sorted path order, documents in file order, sources in the order given); this definition in ${where(item)} is ignored`,
        "error",
      );
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

type HostLookup = { found: true } | { found: false; hiddenBy?: Sourced<ServiceEntry>; invalidDeclarer?: InvalidResource };

/**
 * Items under the host patterns they declare, for "which items match this host" without a
 * scan: exact hosts in a map, "*.suffix" patterns by suffix (a host is looked up under each of
 * its dot-suffixes), "*" apart. A pattern such as "*foo.example.com" (Istio: any host ending in
 * "foo.example.com") is filed under the dot-suffix of what follows its "*" (".example.com", or
 * "" without a dot) and checked with endsWith. Answers keep the items' own order.
 */
class HostPatternIndex<T> {
  private readonly exact = new Map<string, number[]>();
  private readonly suffixes = new Map<string, number[]>();
  /** "*foo.x" patterns by the dot-suffix of "foo.x" (".x"), each with the text its hosts end in ("foo.x"). */
  private readonly partialSuffixes = new Map<string, { index: number; ending: string }[]>();
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
        else if (pattern.startsWith("*")) {
          const ending = pattern.slice(1);
          const dot = ending.indexOf(".");
          push(this.partialSuffixes, dot === -1 ? "" : ending.slice(dot), { index, ending });
        } else push(this.exact, pattern, index);
      }
    });
  }

  /** Items with a pattern equal to one of `names` or matching it as a host, in item order. */
  matching(...names: string[]): T[] {
    const found = new Set<number>(this.everything);
    for (const name of names) {
      for (const index of this.exact.get(name) ?? []) found.add(index);
      for (const partial of this.partialSuffixes.get("") ?? []) if (name.endsWith(partial.ending)) found.add(partial.index);
      for (let dot = name.indexOf("."); dot !== -1; dot = name.indexOf(".", dot + 1)) {
        const suffix = name.slice(dot);
        for (const index of this.suffixes.get(suffix) ?? []) found.add(index);
        for (const partial of this.partialSuffixes.get(suffix) ?? []) if (name.endsWith(partial.ending)) found.add(partial.index);
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
  private readonly declaredByInvalid: HostPatternIndex<InvalidResource>;
  readonly hints: HintIndex;

  constructor(
    entries: Sourced<ServiceEntry>[],
    /** ServiceEntries with errors: not services, but worth naming when a host is missing. */
    invalidEntries: readonly InvalidResource[],
    counter?: ValidationCounters,
  ) {
    const hostsOf = (e: Sourced<ServiceEntry>) => e.resource.spec.hosts;
    this.declared = new HostPatternIndex(entries, hostsOf, counter);
    this.declaredByInvalid = new HostPatternIndex(invalidEntries, (e) => e.hosts);
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
    const invalidDeclarer = this.declaredByInvalid.matching(host, qualified)[0];
    return invalidDeclarer ? { found: false, invalidDeclarer } : { found: false };
  }
}

function unknownHostMessage(host: string, namespace: string, lookup: HostLookup, services: ServiceIndex): string {
  const qualified = qualifyHost(host, namespace);
  const shown = qualified === host ? `"${host}"` : `"${host}" (${qualified})`;
  if (!lookup.found && lookup.hiddenBy) {
    return `host ${shown} is declared by ${resourceKey(lookup.hiddenBy.resource)} (${where(lookup.hiddenBy)}), but its exportTo does not include namespace "${namespace}"`;
  }
  if (!lookup.found && lookup.invalidDeclarer) {
    return `host ${shown} is declared only by ${lookup.invalidDeclarer.key} (${formatSource(lookup.invalidDeclarer.source)}), which exists but is invalid (see its errors)`;
  }
  const hint = services.hints.closest(qualified);
  return `unknown host ${shown}: no ServiceEntry declares it${hint ? ` (did you mean "${hint}"?)` : services.hints.size === 0 ? " (there are no ServiceEntries)" : ""}`;
}

/** A DestinationRule for a host no service declares applies to nothing (yet): a warning (Istio's analyzers have no code for it). */
function checkDestinationRuleHost(rule: Sourced<DestinationRule>, services: ServiceIndex, report: Report): void {
  const host = rule.resource.spec.host;
  if (host.includes("*")) return; // a wildcard rule applies to whichever services match it
  const lookup = services.lookup(host, namespaceOf(rule));
  if (!lookup.found) report(rule, "spec.host", `${unknownHostMessage(host, namespaceOf(rule), lookup, services)}; this DestinationRule applies to nothing until the host exists`);
}

/** The namespaces a resource with this exportTo is visible from: "*" for all, else a set ("~": none). */
function visibleFrom(exportTo: string[] | undefined, ownNamespace: string): "*" | Set<string> {
  if (!exportTo || exportTo.length === 0 || exportTo.includes("*")) return "*";
  return new Set(exportTo.filter((e) => e !== "~").map((e) => (e === "." ? ownNamespace : e)));
}

function overlaps(a: "*" | Set<string>, b: "*" | Set<string>): boolean {
  if (a === "*") return b === "*" || b.size > 0;
  if (b === "*") return a.size > 0;
  return [...a].some((ns) => b.has(ns));
}

/**
 * Two ServiceEntries that give one host's port different protocols, and that are both visible
 * from some namespace (their exportTo overlap), conflict. Istio accepts both (each resource is
 * valid alone) and picks one; so does Weft: a warning naming the winner, the ServiceEntry first
 * by namespace, then name (the order the model reads them in).
 */
function* checkPortProtocols(entries: Sourced<ServiceEntry>[], report: Report): Steps<void> {
  const declared = new Map<string, { protocol: string; entry: Sourced<ServiceEntry> }[]>();
  const order = (e: Sourced<ServiceEntry>) => `${namespaceOf(e)}/${e.resource.metadata.name}`;
  let seen = 0;
  for (const entry of entries) {
    if (++seen % RESOURCES_PER_STEP === 0) yield;
    const visible = visibleFrom(entry.resource.spec.exportTo, namespaceOf(entry));
    (entry.resource.spec.ports ?? []).forEach((port, index) => {
      if (!port.protocol) return; // unset: Istio sniffs the protocol, which conflicts with nothing
      const protocol = port.protocol.toUpperCase();
      for (const host of new Set(entry.resource.spec.hosts)) {
        const key = `${host}:${port.number}`;
        const earlier = (declared.get(key) ?? []).find(
          (d) => d.entry !== entry && d.protocol !== protocol && overlaps(visible, visibleFrom(d.entry.resource.spec.exportTo, namespaceOf(d.entry))),
        );
        if (earlier) {
          const winner = order(earlier.entry) <= order(entry) ? earlier.entry : entry;
          report(
            entry,
            `spec.ports[${index}].protocol`,
            `conflicting protocols for ${host} port ${port.number}: ${protocol} here, but ${earlier.protocol} in ${resourceKey(earlier.entry.resource)} (${where(earlier.entry)}), and both are visible from the same namespaces; ` +
              `a host's port has one protocol: ${resourceKey(winner.resource)} wins (the first by namespace, then name)`,
          );
        }
        push(declared, key, { protocol, entry });
      }
    });
  }
}

// ---------------------------------------------------------------------------------------
// Subsets

/** The DestinationRules (and so the subsets) that apply to each qualified host. */
class SubsetIndex {
  private readonly rules: HostPatternIndex<Sourced<DestinationRule>>;
  private readonly invalidRules: HostPatternIndex<InvalidResource>;

  constructor(rules: Sourced<DestinationRule>[], invalidRules: readonly InvalidResource[], counter?: ValidationCounters) {
    this.rules = new HostPatternIndex(rules, (rule) => [qualifyHost(rule.resource.spec.host, namespaceOf(rule))], counter);
    this.invalidRules = new HostPatternIndex(invalidRules, (rule) => rule.hosts.map((h) => qualifyHost(h, namespaceFromKey(rule.key))));
  }

  rulesFor(qualifiedHost: string): Sourced<DestinationRule>[] {
    return this.rules.matching(qualifiedHost);
  }

  invalidRulesFor(qualifiedHost: string): InvalidResource[] {
    return this.invalidRules.matching(qualifiedHost);
  }
}

/** The namespace of a "Kind/namespace/name" key. */
function namespaceFromKey(key: string): string {
  return key.split("/")[1] ?? "default";
}

/**
 * A destination's host and subset exist (warnings otherwise, IST0101). Istio accepts such a
 * route and its proxies answer 503 until the host or subset appears; so do Weft's.
 */
function checkDestination(vs: Sourced<VirtualService>, destination: Destination, path: string, services: ServiceIndex, subsets: SubsetIndex, report: Report): void {
  const namespace = namespaceOf(vs);
  const lookup = services.lookup(destination.host, namespace);
  if (!lookup.found) {
    report(vs, `${path}.host`, `${unknownHostMessage(destination.host, namespace, lookup, services)}; requests routed here get 503 until it exists`, "warning", REFERENCED_RESOURCE_NOT_FOUND);
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
  const invalid = subsets.invalidRulesFor(qualified).map((r) => `${r.key} (${formatSource(r.source)}) exists but is invalid (see its errors)`);
  const known = [...defined, ...invalid];
  report(
    vs,
    `${path}.subset`,
    `subset "${destination.subset}" of ${qualified} is not defined by any DestinationRule (${known.length ? known.join("; ") : "no DestinationRule applies to this host"}); requests routed here get 503 until it is`,
    "warning",
    REFERENCED_RESOURCE_NOT_FOUND,
  );
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
  private readonly invalid: Map<string, InvalidResource>;
  private readonly hints: HintIndex;

  constructor(names: string[], invalid: readonly InvalidResource[], counter?: HintCounter) {
    this.names = new Set(names);
    this.invalid = new Map(invalid.map((g) => [g.key.slice("Gateway/".length), g]));
    this.hints = new HintIndex([...this.names], counter);
  }

  has(name: string): boolean {
    return this.names.has(name);
  }

  /** The Gateway of this "namespace/name" when it exists but is invalid. */
  invalidOne(name: string): InvalidResource | undefined {
    return this.invalid.get(name);
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

/** A Gateway a VirtualService binds to exists (a warning otherwise, IST0101: it may arrive later; until then the binding has no effect). */
function checkGatewayReference(vs: Sourced<VirtualService>, gateway: string, path: string, gateways: GatewayIndex, report: Report): void {
  if (gateway === MESH_GATEWAY) return;
  const qualified = gateway.includes("/") ? gateway : `${namespaceOf(vs)}/${gateway}`;
  if (gateways.has(qualified)) return;
  const invalid = gateways.invalidOne(qualified);
  const message = invalid
    ? `Gateway "${qualified}" exists (${formatSource(invalid.source)}) but is invalid (see its errors); these routes apply to it once it is fixed`
    : `Gateway "${qualified}" does not exist (${gateways.suggestion(qualified)}); use "mesh" for the sidecars, or a Gateway as "name" or "namespace/name"; these routes apply to it once it exists`;
  report(vs, path, message, "warning", REFERENCED_RESOURCE_NOT_FOUND);
}
