// Delegate VirtualServices, as Istio reads them. A VirtualService without hosts is a delegate:
// it applies only through an HTTP rule of another VirtualService (the root) that names it in
// `delegate`. Each of the delegate's rules is merged with that root rule, in the delegate's
// order, in place of the root rule:
//
// - matches: each of the delegate rule's match conditions must fit inside at least one of the
//   root rule's (a narrower URI, the same exact value, no regex beside another kind of match,
//   equal ports, ...); it is ANDed with every root condition it fits in. A delegate rule with a
//   condition that fits in none is dropped (Istio logs a conflict). No conditions on one side:
//   the other side's are used as they are.
// - everything else: the delegate rule's own setting, else the root rule's (rewrite, timeout,
//   retries, fault, mirror, mirrorPercentage/mirrorPercent, corsPolicy, headers); names join
//   as "root-delegate".
// - one level only: a delegate that is missing, has hosts (it is then not a delegate), or is not
//   exported to the root's namespace contributes nothing (the root rule is dropped).
// - the delegate's short host names and gateway names mean what they mean in its own
//   namespace: they are qualified before merging.
//
// Pure: the model keeps the resources as written (`virtualServices`, which the model diff and
// status use) and this merged view (`routedVirtualServices`) for the translators.
import type { Delegate, Destination, HTTPMatchRequest, HTTPRoute, StringMatch, VirtualService } from "../api/types.js";
import { DOMAIN_SUFFIX, namespaceOf } from "./mesh-model.js";

/** The root HTTP rules whose delegate applies nothing, and why (for analysis and status). */
export interface UnresolvedDelegate {
  root: VirtualService;
  rule: number;
  delegate: Delegate;
  reason: "missing" | "not-exported";
}

/** Roots with their delegates' rules merged in; delegates left out; other VirtualServices as they are (same objects). */
export function mergeDelegates(virtualServices: readonly VirtualService[], unresolved?: UnresolvedDelegate[]): VirtualService[] {
  const delegates = new Map<string, VirtualService>();
  for (const vs of virtualServices) if (isDelegate(vs)) delegates.set(`${namespaceOf(vs)}/${vs.metadata.name}`, vs);
  const out: VirtualService[] = [];
  for (const vs of virtualServices) {
    if (isDelegate(vs)) continue;
    if (!(vs.spec.http ?? []).some((rule) => rule.delegate)) {
      out.push(vs);
      continue;
    }
    const rootNamespace = namespaceOf(vs);
    const http: HTTPRoute[] = [];
    (vs.spec.http ?? []).forEach((rule, index) => {
      if (!rule.delegate) {
        http.push(rule);
        return;
      }
      const namespace = rule.delegate.namespace || rootNamespace;
      const delegate = delegates.get(`${namespace}/${rule.delegate.name}`);
      if (!delegate || !exportedTo(delegate, rootNamespace)) {
        unresolved?.push({ root: vs, rule: index, delegate: rule.delegate, reason: delegate ? "not-exported" : "missing" });
        return;
      }
      const root = qualifiedRule(rule, rootNamespace);
      for (const leaf of delegate.spec.http ?? []) {
        const merged = mergeRule(root, qualifiedRule(leaf, namespace));
        if (merged) http.push(merged);
      }
    });
    out.push({ ...vs, spec: { ...vs.spec, http } });
  }
  return out;
}

export function isDelegate(vs: VirtualService): boolean {
  return (vs.spec.hosts ?? []).length === 0;
}

function exportedTo(vs: VirtualService, namespace: string): boolean {
  const exportTo = vs.spec.exportTo ?? [];
  if (exportTo.length === 0) return true;
  return exportTo.some((e) => e === "*" || e === namespace || (e === "." && namespaceOf(vs) === namespace));
}

function qualifyHost(host: string, namespace: string): string {
  return host.includes(".") || host.includes("*") ? host : `${host}.${namespace}.${DOMAIN_SUFFIX}`;
}

function qualifyDestination(d: Destination, namespace: string): Destination {
  return { ...d, host: qualifyHost(d.host, namespace) };
}

function qualifyGateway(gateway: string, namespace: string): string {
  return gateway === "mesh" || gateway.includes("/") ? gateway : `${namespace}/${gateway}`;
}

/** A rule with its destinations and match gateways written as they read in `namespace`. */
function qualifiedRule(rule: HTTPRoute, namespace: string): HTTPRoute {
  return {
    ...rule,
    ...(rule.route ? { route: rule.route.map((r) => ({ ...r, destination: qualifyDestination(r.destination, namespace) })) } : {}),
    ...(rule.mirror ? { mirror: qualifyDestination(rule.mirror, namespace) } : {}),
    ...(rule.mirrors ? { mirrors: rule.mirrors.map((m) => ({ ...m, destination: qualifyDestination(m.destination, namespace) })) } : {}),
    ...(rule.match ? { match: rule.match.map((m) => (m.gateways ? { ...m, gateways: m.gateways.map((g) => qualifyGateway(g, namespace)) } : m)) } : {}),
  };
}

/** The delegate rule merged with its root rule, or undefined when its conditions do not fit the root's. */
function mergeRule(root: HTTPRoute, leaf: HTTPRoute): HTTPRoute | undefined {
  const match = mergeMatches(root.match ?? [], leaf.match ?? []);
  if (match === undefined) return undefined;
  const { delegate: _rootDelegate, match: _rootMatch, route: _rootRoute, redirect: _rootRedirect, directResponse: _rootDirect, mirrors: _rootMirrors, name: _rootName, ...inherited } = root;
  const merged: HTTPRoute = { ...inherited, ...definedOnly(leaf) };
  delete merged.delegate;
  const name = joinNames(root.name, leaf.name);
  if (name !== undefined) merged.name = name;
  else delete merged.name;
  if (match.length > 0) merged.match = match;
  else delete merged.match;
  return merged;
}

function definedOnly(rule: HTTPRoute): HTTPRoute {
  return Object.fromEntries(Object.entries(rule).filter(([, v]) => v !== undefined)) as HTTPRoute;
}

function joinNames(root: string | undefined, leaf: string | undefined): string | undefined {
  if (root && leaf) return `${root}-${leaf}`;
  return leaf || root || undefined;
}

/** Each delegate condition ANDed with every root condition it fits in; undefined when one fits in none. */
function mergeMatches(root: HTTPMatchRequest[], leaf: HTTPMatchRequest[]): HTTPMatchRequest[] | undefined {
  if (root.length === 0) return leaf;
  if (leaf.length === 0) return root;
  const out: HTTPMatchRequest[] = [];
  for (const l of leaf) {
    const fitting = root.filter((r) => fitsIn(r, l));
    if (fitting.length === 0) return undefined;
    for (const r of fitting) out.push(mergeMatch(r, l));
  }
  return out;
}

function mergeMatch(root: HTTPMatchRequest, leaf: HTTPMatchRequest): HTTPMatchRequest {
  const out: HTTPMatchRequest = { ...leaf };
  const name = joinNames(root.name, leaf.name);
  if (name !== undefined) out.name = name;
  for (const key of ["uri", "scheme", "method", "authority"] as const) {
    const value = leaf[key] ?? root[key];
    if (value !== undefined) out[key] = value;
  }
  for (const key of ["headers", "withoutHeaders", "queryParams"] as const) {
    if (root[key] || leaf[key]) out[key] = { ...(root[key] ?? {}), ...(leaf[key] ?? {}) };
  }
  if (root.sourceLabels || leaf.sourceLabels) out.sourceLabels = { ...(root.sourceLabels ?? {}), ...(leaf.sourceLabels ?? {}) };
  const port = leaf.port ?? root.port;
  if (port !== undefined) out.port = port;
  const sourceNamespace = leaf.sourceNamespace || root.sourceNamespace;
  if (sourceNamespace) out.sourceNamespace = sourceNamespace;
  const gateways = leaf.gateways && leaf.gateways.length > 0 ? leaf.gateways : root.gateways;
  if (gateways && gateways.length > 0) out.gateways = gateways;
  return out;
}

/** Whether the delegate condition `leaf` can narrow the root condition `root` (Istio's "no conflict"). */
function fitsIn(root: HTTPMatchRequest, leaf: HTTPMatchRequest): boolean {
  for (const key of ["uri", "scheme", "method", "authority"] as const) {
    if (stringMatchesConflict(root[key], leaf[key])) return false;
  }
  for (const key of ["headers", "withoutHeaders", "queryParams"] as const) {
    for (const [name, value] of Object.entries(leaf[key] ?? {})) {
      if (stringMatchesConflict(root[key]?.[name], value)) return false;
    }
  }
  if ((root.ignoreUriCase ?? false) !== (leaf.ignoreUriCase ?? false)) return false;
  if (root.port !== undefined && leaf.port !== undefined && root.port !== leaf.port) return false;
  if (root.sourceNamespace && leaf.sourceNamespace !== root.sourceNamespace) return false;
  for (const [key, value] of Object.entries(leaf.sourceLabels ?? {})) {
    if (root.sourceLabels && key in root.sourceLabels && root.sourceLabels[key] !== value) return false;
  }
  if (root.gateways?.length && leaf.gateways?.length && !leaf.gateways.every((g) => root.gateways!.includes(g))) return false;
  return true;
}

/**
 * Whether a delegate's string condition cannot narrow the root's: a regex beside anything else,
 * a different exact value, a prefix under an exact value, or a value outside the root's prefix.
 * Absent on either side: no conflict.
 */
function stringMatchesConflict(root: StringMatch | undefined, leaf: StringMatch | undefined): boolean {
  if (!root || !leaf) return false;
  const any = (m: StringMatch) => !!(m.regex || m.prefix || m.exact);
  if (root.regex && any(leaf)) return true;
  if (leaf.regex && any(root)) return true;
  if (root.exact) return !!leaf.prefix || leaf.exact !== root.exact;
  if (root.prefix) {
    if (leaf.prefix) return !leaf.prefix.startsWith(root.prefix);
    if (leaf.exact) return !leaf.exact.startsWith(root.prefix);
  }
  return true;
}
