// What changed between two mesh models, as far as generation cares: an endpoint-only change
// (the same services, ports, rules and policies; only some services' endpoints differ) can
// take the EDS fast path instead of a full regeneration.
import { RULE_LISTS } from "../api/kind-registry.js";
import type { MeshModel, ServiceModel } from "./mesh-model.js";

export type ModelChange =
  | { kind: "none" }
  | { kind: "endpoints"; services: ReadonlySet<string>; namespaces: ReadonlySet<string> }
  | { kind: "full" };

function withoutEndpoints(s: ServiceModel): string {
  const { endpoints: _endpoints, ...rest } = s;
  return JSON.stringify(rest);
}

/**
 * Whether two lists have equal JSON, element by element: an element that is the same object
 * in both (a resource from a file that did not change) is not serialized at all.
 */
function sameList(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i] || JSON.stringify(x) === JSON.stringify(b[i]));
}

/** Settings and every list the kind registry marks `diff: "rules"` (all but services and workloads). */
function sameRules(a: MeshModel, b: MeshModel): boolean {
  return JSON.stringify(a.settings) === JSON.stringify(b.settings) && RULE_LISTS.every((list) => sameList(a[list], b[list]));
}

export function diffModels(previous: MeshModel, next: MeshModel): ModelChange {
  if (previous.services.length !== next.services.length || !sameRules(previous, next)) return { kind: "full" };
  const services = new Set<string>();
  const namespaces = new Set<string>();
  for (const [i, a] of previous.services.entries()) {
    const b = next.services[i]!;
    if (a === b) continue;
    if (a.hostname !== b.hostname || a.namespace !== b.namespace || withoutEndpoints(a) !== withoutEndpoints(b)) return { kind: "full" };
    if (JSON.stringify(a.endpoints) !== JSON.stringify(b.endpoints)) {
      services.add(b.hostname);
      namespaces.add(b.namespace);
    }
  }
  // A workload whose labels or service account changed re-keys its proxies: not endpoint-only.
  // (Workloads added or removed only change endpoints; their proxies form classes on connect.)
  const identity = (w: MeshModel["workloads"][number]) => JSON.stringify([w.spec.serviceAccount, w.metadata.labels, w.spec.labels]);
  const before = new Map(previous.workloads.map((w) => [`${w.metadata.namespace}/${w.metadata.name}`, identity(w)]));
  for (const w of next.workloads) {
    const was = before.get(`${w.metadata.namespace}/${w.metadata.name}`);
    if (was !== undefined && was !== identity(w)) return { kind: "full" };
  }
  return services.size === 0 ? { kind: "none" } : { kind: "endpoints", services, namespaces };
}
