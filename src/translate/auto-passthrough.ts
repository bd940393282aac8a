// Gateway servers with tls.mode AUTO_PASSTHROUGH (Istio's east-west / multi-network gateways):
// mesh mTLS from other sidecars passes through untouched, routed by the SNI Istio's (and Weft's)
// sidecars send, outbound_.<port>_.<subset>_.<host>. As Istio does it: one filter chain per
// mesh-internal service port (and DestinationRule subset) the server's hosts cover, matching that
// SNI and the mesh's ALPN markers (so only sidecar mTLS gets through, never plain TLS), each a
// TCP proxy to an "SNI-DNAT" cluster named like the SNI: the service's cluster for that port and
// subset without any TLS of its own (the client's mTLS reaches the destination sidecar).
import type { Cluster } from "../../generated/envoy/config/cluster/v3/cluster.js";
import type { ClusterLoadAssignment } from "../../generated/envoy/config/endpoint/v3/endpoint.js";
import type { FilterChain } from "../../generated/envoy/config/listener/v3/listener_components.js";
import type { Server } from "../api/types.js";
import type { MeshModel, ServiceModel } from "../model/mesh-model.js";
import type { ProxyModel } from "../model/proxy.js";
import { hostPatternMatches } from "../model/host-match.js";
import type { AccessLog } from "../../generated/envoy/config/accesslog/v3/accesslog.js";
import { buildTcpProxy } from "./http-connection-manager.js";
import { meshSni } from "./mtls.js";
import { outboundClusterName } from "./naming.js";
import { buildOutboundClusters } from "./sidecar.js";
import type { TranslationMemo } from "./translation-memo.js";
import { destinationRuleFor } from "./traffic-policy.js";

/** The ALPN values a mesh sidecar offers (any one marks mesh mTLS): Istio's list. */
export const MESH_MTLS_ALPNS = ["istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"];

export function isAutoPassthrough(server: Server): boolean {
  return server.tls?.mode === "AUTO_PASSTHROUGH";
}

/** A server host without its namespace part ("ns/host" -> "host"). */
function hostOf(serverHost: string): string {
  const slash = serverHost.indexOf("/");
  return slash === -1 ? serverHost : serverHost.slice(slash + 1);
}

/** The mesh-internal services (of those the gateway sees) whose hostname one of the servers' hosts covers. */
function routedServices(visible: readonly ServiceModel[], servers: readonly Server[]): ServiceModel[] {
  const patterns = [...new Set(servers.flatMap((s) => s.hosts.map(hostOf)))];
  return visible.filter((s) => s.location === "MESH_INTERNAL" && patterns.some((p) => hostPatternMatches(p, s.hostname)));
}

export interface AutoPassthroughPart {
  chains: FilterChain[];
  clusters: Cluster[];
  endpoints: ClusterLoadAssignment[];
}

/** An outbound cluster as its SNI-DNAT twin: named like the SNI, no TLS, no stat alias; EDS by the new name. */
function sniDnatCluster(cluster: Cluster, name: string): Cluster {
  const { transportSocket: _socket, transportSocketMatches: _matches, altStatName: _stat, ...rest } = cluster;
  return {
    ...rest,
    name,
    ...(rest.edsClusterConfig ? { edsClusterConfig: { ...rest.edsClusterConfig, serviceName: name } } : {}),
    ...(rest.loadAssignment ? { loadAssignment: { ...rest.loadAssignment, clusterName: name } } : {}),
  };
}

/**
 * The filter chains, SNI-DNAT clusters and their endpoints for the AUTO_PASSTHROUGH servers on
 * one port of a gateway proxy. `visible` are the services the gateway sees (Sidecar scoping and
 * exportTo applied).
 */
export function buildAutoPassthrough(model: MeshModel, proxy: ProxyModel, port: number, servers: readonly Server[], visible: readonly ServiceModel[], accessLog: AccessLog[], memo?: TranslationMemo): AutoPassthroughPart {
  const services = routedServices(visible, servers);
  // The plain (no mesh TLS) clusters of these services, renamed: DestinationRule policy as for any client.
  const plain = buildOutboundClusters(model, proxy, services, undefined, memo);
  const clusterByName = new Map(plain.clusters.map((c) => [c.name!, c]));
  const endpointsByName = new Map(plain.endpoints.map((e) => [e.clusterName, e]));
  const part: AutoPassthroughPart = { chains: [], clusters: [], endpoints: [] };
  for (const service of services) {
    const subsets = ["", ...(destinationRuleFor(model, service, proxy.namespace)?.spec.subsets ?? []).map((s) => s.name)];
    for (const servicePort of service.ports) {
      for (const subset of subsets) {
        const cluster = clusterByName.get(outboundClusterName(servicePort.number, subset, service.hostname));
        if (!cluster) continue;
        const sni = meshSni(servicePort.number, subset, service.hostname);
        part.clusters.push(sniDnatCluster(cluster, sni));
        const assignment = endpointsByName.get(cluster.name!);
        if (assignment && cluster.edsClusterConfig) part.endpoints.push({ ...assignment, clusterName: sni });
        part.chains.push({
          name: `auto_passthrough_${port}_${sni}`,
          filterChainMatch: { transportProtocol: "tls", serverNames: [sni], applicationProtocols: MESH_MTLS_ALPNS },
          filters: [buildTcpProxy(sni, { cluster: sni }, accessLog)],
        });
      }
    }
  }
  return part;
}
