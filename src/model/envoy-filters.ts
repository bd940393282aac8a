// Which EnvoyFilters apply to a proxy, and in what order (Istio's rules): those in the root
// namespace apply to every proxy of the mesh, those in the proxy's namespace to its proxies;
// a workloadSelector narrows either to the workloads whose labels include its labels (and a
// root-namespace filter with a selector applies to matching workloads in every namespace).
// Order: priority (lower first, default 0), then root-namespace filters before the proxy's
// namespace's, then by name (Istio uses creation time; files have none).
import type { EnvoyFilter } from "../api/envoy-filter.js";
import { namespaceOf, type MeshModel } from "./mesh-model.js";
import type { ProxyModel } from "./proxy.js";

function selects(filter: EnvoyFilter, labels: Readonly<Record<string, string>>): boolean {
  if (filter.spec.targetRefs?.length) return false; // Gateway API targets: not supported yet (a validation warning says so)
  const wanted = filter.spec.workloadSelector?.labels ?? {};
  return Object.entries(wanted).every(([k, v]) => labels[k] === v);
}

/** The EnvoyFilters that apply to `proxy`, in the order their patches are applied. */
export function envoyFiltersFor(model: MeshModel, proxy: Pick<ProxyModel, "namespace" | "labels">): EnvoyFilter[] {
  const root = model.settings.rootNamespace;
  const found: { filter: EnvoyFilter; rootFirst: number }[] = [];
  for (const filter of model.envoyFilters) {
    const ns = namespaceOf(filter);
    if (ns !== root && ns !== proxy.namespace) continue;
    if (!selects(filter, proxy.labels)) continue;
    found.push({ filter, rootFirst: ns === root && ns !== proxy.namespace ? 0 : 1 });
  }
  found.sort((a, b) => (a.filter.spec.priority ?? 0) - (b.filter.spec.priority ?? 0) || a.rootFirst - b.rootFirst || a.filter.metadata.name.localeCompare(b.filter.metadata.name));
  return found.map((f) => f.filter);
}

/** "namespace/name" of an EnvoyFilter, as messages and class keys name it. */
export function envoyFilterId(filter: EnvoyFilter): string {
  return `${namespaceOf(filter)}/${filter.metadata.name}`;
}
