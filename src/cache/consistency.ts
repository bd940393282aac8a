// Checks that a snapshot is self-consistent before any proxy sees it (house rule 3):
// every EDS cluster has its ClusterLoadAssignment, every RDS name a listener uses exists,
// every cluster a route or TCP proxy names exists, every SDS secret named over ADS exists.
// A part's references to its own resources were resolved when it was built; only the
// references it leaves to other parts are checked here, so composing is cheap.
import { XDS_TYPES, type XdsTypeUrl } from "../envoy/type-urls.js";
import type { Reference } from "./references.js";
import type { Snapshot } from "./snapshot.js";

export interface ConsistencyProblem {
  resource: string;
  message: string;
}

export function checkConsistency(snapshot: Snapshot): ConsistencyProblem[] {
  const problems: ConsistencyProblem[] = [];
  const check = (typeUrl: XdsTypeUrl, refs: readonly Reference[]) => {
    const present = snapshot.resources(typeUrl).resources;
    for (const ref of refs) {
      if (!present.has(ref.name)) problems.push({ resource: ref.from, message: `${ref.what} "${ref.name}" is missing` });
    }
  };
  for (const part of snapshot.parts) {
    const { endpoints, routes, secrets, clusters } = part.external;
    check(XDS_TYPES.endpoint, endpoints);
    check(XDS_TYPES.route, routes);
    check(XDS_TYPES.secret, secrets);
    check(XDS_TYPES.cluster, clusters);
  }
  return problems;
}
