// Pure translation: (mesh model, proxy) -> the Envoy resources of that proxy's snapshot.
import type { Cluster } from "../../generated/envoy/config/cluster/v3/cluster.js";
import type { ClusterLoadAssignment } from "../../generated/envoy/config/endpoint/v3/endpoint.js";
import type { Listener } from "../../generated/envoy/config/listener/v3/listener.js";
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import type { SnapshotInput } from "../cache/snapshot.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import type { MeshModel } from "../model/mesh-model.js";
import type { ProxyModel } from "../model/proxy.js";
import { buildPassthroughClusters } from "./clusters.js";
import { translateGateway } from "./gateway.js";
import { buildSecrets, type MeshSecurity } from "./mtls.js";
import { translateSidecar } from "./sidecar.js";

/** What the sidecar and gateway translators produce; translateProxy adds what every proxy gets. */
export interface ProxyResources {
  clusters: Cluster[];
  endpoints: ClusterLoadAssignment[];
  listeners: Listener[];
  routes: RouteConfiguration[];
}

/** `security`: the mesh's trust domain and, for an authenticated proxy, its secrets (mTLS on). */
export function translateProxy(model: MeshModel, proxy: ProxyModel, security?: MeshSecurity): SnapshotInput {
  const r = proxy.type === "router" ? translateGateway(model, proxy, security) : translateSidecar(model, proxy, security);
  return {
    // Every proxy gets the passthrough and black-hole clusters, and its certificates when it has them.
    [XDS_TYPES.cluster]: [...r.clusters, ...buildPassthroughClusters()],
    [XDS_TYPES.endpoint]: r.endpoints,
    [XDS_TYPES.listener]: r.listeners,
    [XDS_TYPES.route]: r.routes,
    ...(security?.secrets ? { [XDS_TYPES.secret]: buildSecrets(security.secrets) } : {}),
  };
}
