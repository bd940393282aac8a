// What changed between two mesh models, as far as generation cares:
//   - "endpoints": the same services, ports, rules and policies; only some services'
//     endpoints differ — the EDS fast path;
//   - "services": some services, VirtualServices or DestinationRules changed (added, removed
//     or edited), nothing else — only the Envoy resources derived from the named services
//     are translated again (their clusters and endpoints, their virtual hosts);
//   - "full": anything else (mesh settings, any kind the registry marks `diff: "rules"`:
//     Sidecars, Gateways, security policies...; a workload's labels) — every class is regenerated.
// VirtualServices and DestinationRules (`diff: "by-host"` in the kind registry) are traced to
// the service hosts they name.
// Lists are compared element by element: an element that is the same object in both (a
// resource from a file that did not change) is not serialized at all.
import { RULE_LISTS } from "../api/kind-registry.js";
import type { DestinationRule, VirtualService } from "../api/types.js";
import { namespaceOf, resolveHost, servicesNamedBy, type MeshModel, type ServiceModel } from "./mesh-model.js";
import { runToEnd, type Steps } from "../work/work-steps.js";

/** Services or resources compared between two steps of diffModelsSteps. */
const ITEMS_PER_STEP = 128;

export type ModelChange =
  | { kind: "none" }
  | { kind: "endpoints"; services: ReadonlySet<string>; namespaces: ReadonlySet<string> }
  | {
      kind: "services";
      /** Hostnames whose clusters and endpoints must be built again. */
      clusters: ReadonlySet<string>;
      /** Hostnames whose virtual hosts (outbound routes) must be built again. */
      routes: ReadonlySet<string>;
      /** Hostnames of services added, removed or redefined (not only their endpoints). */
      redefined: ReadonlySet<string>;
      /**
       * Namespaces with a service added, removed, redefined or given new endpoints: where a
       * workload's own services (its inbound side) may have changed. A change that is only in
       * VirtualServices and DestinationRules leaves this empty.
       */
      namespaces: ReadonlySet<string>;
    }
  | { kind: "full" };

function withoutEndpoints(s: ServiceModel): string {
  const { endpoints: _endpoints, ...rest } = s;
  return JSON.stringify(rest);
}


function same(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** Whether two lists have equal JSON, element by element. */
function sameList(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((x, i) => same(x, b[i]));
}

type Named = { metadata: { name: string; namespace?: string } };
const keyOf = (r: Named) => `${namespaceOf(r)}/${r.metadata.name}`;

/** Resources added, removed or edited between two lists (both versions of an edited one). */
function* changedResources<R extends Named>(before: readonly R[], after: readonly R[]): Steps<R[]> {
  if (before.length === after.length && before.every((r, i) => r === after[i])) return [];
  const old = new Map(before.map((r) => [keyOf(r), r]));
  yield;
  const changed: R[] = [];
  let compared = 0;
  for (const r of after) {
    if (++compared % ITEMS_PER_STEP === 0) yield;
    const was = old.get(keyOf(r));
    old.delete(keyOf(r));
    if (!was) changed.push(r);
    else if (!same(was, r)) changed.push(was, r);
  }
  changed.push(...old.values());
  return changed;
}

/** The service hostnames `hosts` (as written in a resource of `namespace`) name, wildcards included, in either model. */
function resolvedIn(models: readonly MeshModel[], hosts: readonly string[], namespace: string, into: Set<string>): void {
  for (const m of models) for (const h of hosts) for (const s of servicesNamedBy(m, h, namespace)) into.add(s.hostname);
}

/** Every value of a `host` field anywhere in a VirtualService (route, mirror, ... destinations). */
function destinationHosts(value: unknown, into: string[]): void {
  if (Array.isArray(value)) for (const v of value) destinationHosts(v, into);
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k === "host" && typeof v === "string") into.push(v);
      else destinationHosts(v, into);
    }
  }
}

/** Hostnames whose virtual hosts route to one of `targets` (through a VirtualService naming them), in either model. */
function* routingTo(models: readonly MeshModel[], targets: ReadonlySet<string>, into: Set<string>): Steps<void> {
  if (targets.size === 0) return;
  for (const m of models) {
    // As routed: a delegate's destinations are routes of its root's hosts.
    let walked = 0;
    for (const vs of m.routedVirtualServices) {
      if (++walked % ITEMS_PER_STEP === 0) yield;
      const ns = namespaceOf(vs);
      const dests: string[] = [];
      destinationHosts(vs.spec, dests);
      if (dests.some((h) => targets.has(resolveHost(m, h, ns)?.hostname ?? h))) resolvedIn([m], vs.spec.hosts ?? [], ns, into);
    }
  }
}

export function diffModels(previous: MeshModel, next: MeshModel): ModelChange {
  return runToEnd(diffModelsSteps(previous, next));
}

/**
 * diffModels as steps (work-steps.ts): the same answer, with a chance to yield every
 * ITEMS_PER_STEP services or resources compared.
 */
export function* diffModelsSteps(previous: MeshModel, next: MeshModel): Steps<ModelChange> {
  if (!same(previous.settings, next.settings) || !RULE_LISTS.every((list) => sameList(previous[list], next[list]))) return { kind: "full" };
  // A workload whose labels or service account changed re-keys its proxies.
  // (Workloads added or removed only change endpoints; their proxies form classes on connect.)
  const identity = (w: MeshModel["workloads"][number]) => JSON.stringify([w.spec.serviceAccount, w.metadata.labels, w.spec.labels]);
  const before = new Map(previous.workloads.map((w) => [`${w.metadata.namespace}/${w.metadata.name}`, identity(w)]));
  for (const w of next.workloads) {
    const was = before.get(`${w.metadata.namespace}/${w.metadata.name}`);
    if (was !== undefined && was !== identity(w)) return { kind: "full" };
  }

  // Services: added, removed, redefined (ports, addresses, visibility...), or only their endpoints.
  const endpointsOnly = new Set<string>();
  const namespaces = new Set<string>();
  const redefined = new Set<string>();
  const serviceKey = (s: ServiceModel) => `${s.namespace}/${s.hostname}`;
  const oldServices = new Map(previous.services.map((s) => [serviceKey(s), s]));
  yield;
  let compared = 0;
  for (const b of next.services) {
    if (++compared % ITEMS_PER_STEP === 0) yield;
    const a = oldServices.get(serviceKey(b));
    oldServices.delete(serviceKey(b));
    if (a === b) continue;
    if (!a || withoutEndpoints(a) !== withoutEndpoints(b)) {
      redefined.add(b.hostname);
      namespaces.add(b.namespace);
    } else if (JSON.stringify(a.endpoints) !== JSON.stringify(b.endpoints)) {
      endpointsOnly.add(b.hostname);
      namespaces.add(b.namespace);
    }
  }
  for (const a of oldServices.values()) {
    redefined.add(a.hostname);
    namespaces.add(a.namespace);
  }

  const virtualServices = yield* changedResources<VirtualService>(previous.virtualServices, next.virtualServices);
  const destinationRules = yield* changedResources<DestinationRule>(previous.destinationRules, next.destinationRules);
  if (redefined.size === 0 && virtualServices.length === 0 && destinationRules.length === 0) {
    return endpointsOnly.size === 0 ? { kind: "none" } : { kind: "endpoints", services: endpointsOnly, namespaces };
  }
  // A VirtualService without hosts (a delegate) acts through the one that includes it: not traced.
  if (virtualServices.some((vs) => (vs.spec.hosts ?? []).length === 0)) return { kind: "full" };

  const models = [previous, next];
  const withRules = new Set<string>();
  for (const dr of destinationRules) resolvedIn(models, [dr.spec.host], namespaceOf(dr), withRules);
  const clusters = new Set([...redefined, ...endpointsOnly, ...withRules]);
  const routes = new Set(redefined);
  for (const vs of virtualServices) resolvedIn(models, vs.spec.hosts ?? [], namespaceOf(vs), routes);
  // Routes read the destination's ports (a redefined service) and its load-balancer hash policy (a DestinationRule).
  yield* routingTo(models, new Set([...redefined, ...withRules]), routes);
  return { kind: "services", clusters, routes, redefined, namespaces };
}
