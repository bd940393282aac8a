// The access control one workload's listeners run, as Istio applies it to sidecars' inbound
// listeners and to gateways alike: the RequestAuthentications and AuthorizationPolicies whose
// selector matches the workload (its namespace or the root namespace) become jwt_authn, CUSTOM
// (ext_authz) and RBAC filters on HTTP connection managers, and CUSTOM (gRPC) and RBAC network
// filters on TCP chains; remote JWKS need their clusters.
import type { Cluster } from "../../../generated/envoy/config/cluster/v3/cluster.js";
import type { Filter } from "../../../generated/envoy/config/listener/v3/listener_components.js";
import type { HttpFilter } from "../../../generated/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js";
import type { MeshModel } from "../../model/mesh-model.js";
import type { ProxyModel } from "../../model/proxy.js";
import { buildHttpRbacFilters, buildNetworkRbacFilters, selectPolicies } from "./authorization.js";
import { buildCustomHttpFilters, buildCustomNetworkFilters } from "./ext-authz.js";
import { buildJwksClusters, buildJwtAuthnFilter } from "./jwt.js";

export interface WorkloadAccessControl {
  /** Authentication then authorization filters, first in every HTTP connection manager. */
  httpFilters: HttpFilter[];
  /** Authorization filters ahead of a TCP proxy; `statPrefix` names the chain in their stats. */
  networkFilters(statPrefix: string): Filter[];
  /** Clusters Envoy fetches remote JWKS through (RequestAuthentication jwksUri). */
  clusters: Cluster[];
}

export function workloadAccessControl(model: MeshModel, proxy: ProxyModel, trustDomain: string): WorkloadAccessControl {
  const workload = { namespace: proxy.namespace, labels: proxy.labels, rootNamespace: model.settings.rootNamespace };
  const authz = selectPolicies(model.authorizationPolicies, workload);
  // AuthorizationPolicy CUSTOM: the mesh settings' ext_authz providers, reached through their services' outbound clusters.
  const authorizers = { providers: model.settings.authorizationProviders, service: (hostname: string) => model.serviceByHost.get(hostname) };
  const requestAuthentications = selectPolicies(model.requestAuthentications, workload);
  const jwt = buildJwtAuthnFilter(requestAuthentications);
  return {
    httpFilters: [...(jwt ? [jwt] : []), ...buildCustomHttpFilters(authz, authorizers, { trustDomain }), ...buildHttpRbacFilters(authz, { trustDomain })],
    networkFilters: (statPrefix) => [...buildCustomNetworkFilters(authz, authorizers, { trustDomain, statPrefix }), ...buildNetworkRbacFilters(authz, { trustDomain, statPrefix })],
    clusters: buildJwksClusters(requestAuthentications),
  };
}
