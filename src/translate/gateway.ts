// Gateway proxies (ingress/egress "router" Envoys selected by a Gateway's selector): one
// listener per server port, HTTP routes from the VirtualServices bound to the gateway,
// TLS passthrough by SNI, TLS termination with certificate files, TCP routes.
import type { Cluster } from "../../generated/envoy/config/cluster/v3/cluster.js";
import type { ClusterLoadAssignment } from "../../generated/envoy/config/endpoint/v3/endpoint.js";
import type { Listener } from "../../generated/envoy/config/listener/v3/listener.js";
import type { FilterChain } from "../../generated/envoy/config/listener/v3/listener_components.js";
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import type { VirtualHost } from "../../generated/envoy/config/route/v3/route_components.js";
import { TrafficDirection } from "../../generated/envoy/config/core/v3/base.js";
import type { Gateway, Server } from "../api/types.js";
import type { ProxyResources } from "./translate.js";
import { packAny } from "../envoy/any.js";
import { socketAddress } from "../envoy/builders.js";
import { EXTENSION_TYPES } from "../envoy/type-urls.js";
import { labelsMatch, namespaceOf, type MeshModel } from "../model/mesh-model.js";
import type { ProxyModel } from "../model/proxy.js";
import { buildHttpConnectionManager, buildTcpProxy } from "./http-connection-manager.js";
import { buildVirtualServiceRoutes, resolveDestination, type RouteContext } from "./http-routes.js";
import { gatewayRouteName } from "./naming.js";
import { buildOutboundClusters } from "./sidecar.js";
import { virtualServicesFor, visibleServices } from "./visibility.js";
import { TranslationMemo } from "./translation-memo.js";
import type { MeshSecurity } from "./mtls.js";
import { serverTlsSocket } from "./server-tls.js";
import { sideTelemetry } from "./listener-telemetry.js";
import { buildAutoPassthrough, isAutoPassthrough } from "./auto-passthrough.js";
import { workloadAccessControl } from "./security/access-control.js";
import { authorizerHostnames } from "./security/ext-authz.js";

interface BoundServer {
  gateway: string; // "ns/name"
  server: Server;
}

function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.includes("/") ? pattern.split("/")[1]! : pattern;
  if (p === "*") return true;
  if (p.startsWith("*.")) return host.endsWith(p.slice(1)) || host === p;
  return p === host;
}

function isHttp(protocol: string): boolean {
  return ["HTTP", "HTTP2", "GRPC"].includes(protocol.toUpperCase());
}

export function gatewaysFor(model: MeshModel, proxy: ProxyModel): Gateway[] {
  return model.gateways.filter((g) => g.spec.selector && Object.keys(g.spec.selector).length > 0 && labelsMatch(g.spec.selector, proxy.labels));
}

function httpRouteConfig(model: MeshModel, memo: TranslationMemo, proxy: ProxyModel, port: number, servers: BoundServer[]): RouteConfiguration {
  const gatewayKeys = [...new Set(servers.map((s) => s.gateway))];
  const ctx: RouteContext = { model, proxy, port, gateways: gatewayKeys };
  const hosts: VirtualHost[] = [];
  const seen = new Set<string>();
  for (const vs of virtualServicesFor(model, gatewayKeys, proxy.namespace, memo)) {
    const vsHosts = (vs.spec.hosts ?? []).filter((h) => servers.some((s) => s.server.hosts.some((p) => hostMatches(p, h))));
    const domains = vsHosts.filter((d) => !seen.has(d));
    if (domains.length === 0) continue;
    domains.forEach((d) => seen.add(d));
    hosts.push({ name: `${namespaceOf(vs)}/${vs.metadata.name}:${port}`, domains, routes: buildVirtualServiceRoutes(ctx, vs), includeRequestAttemptCount: true });
  }
  // As Istio's gateways: the port in Host does not take part in matching.
  return { name: gatewayRouteName(port), virtualHosts: hosts, ignorePortInHostMatching: true };
}

export function translateGateway(model: MeshModel, proxy: ProxyModel, security?: MeshSecurity, memo = new TranslationMemo()): ProxyResources {
  memo.of(model);
  const byPort = new Map<number, BoundServer[]>();
  for (const g of gatewaysFor(model, proxy)) {
    for (const server of g.spec.servers) {
      const list = byPort.get(server.port.number) ?? [];
      list.push({ gateway: `${namespaceOf(g)}/${g.metadata.name}`, server });
      byPort.set(server.port.number, list);
    }
  }
  const listeners: Listener[] = [];
  const routes: RouteConfiguration[] = [];
  // Gateways log and trace as clients (Istio's CLIENT mode covers them).
  const telemetry = sideTelemetry(model, proxy, "client");
  const visible = visibleServices(model, proxy);
  const sniDnat: { clusters: Cluster[]; endpoints: ClusterLoadAssignment[] } = { clusters: [], endpoints: [] };
  // AuthorizationPolicy and RequestAuthentication selecting the gateway run on its listeners, as Istio's;
  // callers are mostly outside the mesh: ipBlocks match the client's address, remoteIpBlocks x-forwarded-for.
  const access = workloadAccessControl(model, proxy, security?.trustDomain ?? "cluster.local");
  for (const [port, servers] of [...byPort.entries()].sort(([a], [b]) => a - b)) {
    const chains: FilterChain[] = [];
    let needsTlsInspector = false;
    const autoPassthrough = servers.filter((s) => isAutoPassthrough(s.server));
    if (autoPassthrough.length > 0) {
      const part = buildAutoPassthrough(model, proxy, port, autoPassthrough.map((s) => s.server), visible, telemetry.accessLog, memo);
      chains.push(...part.chains);
      sniDnat.clusters.push(...part.clusters);
      sniDnat.endpoints.push(...part.endpoints);
      needsTlsInspector ||= part.chains.length > 0;
    }
    const httpServers = servers.filter(
      (s) => isHttp(s.server.port.protocol) || (s.server.port.protocol.toUpperCase() === "HTTPS" && s.server.tls?.mode !== "PASSTHROUGH" && !isAutoPassthrough(s.server)),
    );
    if (httpServers.length > 0) {
      routes.push(httpRouteConfig(model, memo, proxy, port, httpServers));
      const terminating = httpServers.filter((s) => s.server.tls && s.server.tls.mode !== "PASSTHROUGH" && s.server.port.protocol.toUpperCase() === "HTTPS");
      for (const s of terminating) {
        needsTlsInspector = true;
        const names = s.server.hosts.map((h) => (h.includes("/") ? h.split("/")[1]! : h)).filter((h) => h !== "*");
        chains.push({
          name: `https_${port}_${s.gateway}`,
          filterChainMatch: { transportProtocol: "tls", ...(names.length ? { serverNames: names } : {}) },
          transportSocket: serverTlsSocket(s.server.tls!),
          filters: [buildHttpConnectionManager(`outbound_0.0.0.0_${port}`, { rds: gatewayRouteName(port) }, { direction: "gateway", telemetry, authFilters: access.httpFilters })],
        });
      }
      if (httpServers.some((s) => isHttp(s.server.port.protocol))) {
        chains.push({ name: `http_${port}`, filters: [buildHttpConnectionManager(`outbound_0.0.0.0_${port}`, { rds: gatewayRouteName(port) }, { direction: "gateway", telemetry, authFilters: access.httpFilters })] });
      }
    }
    const gatewayKeys = [...new Set(servers.map((s) => s.gateway))];
    const ctx: RouteContext = { model, proxy, port, gateways: gatewayKeys };
    for (const vs of virtualServicesFor(model, gatewayKeys, proxy.namespace, memo)) {
      const ns = namespaceOf(vs);
      if (servers.some((s) => s.server.tls?.mode === "PASSTHROUGH")) {
        for (const tls of vs.spec.tls ?? []) {
          for (const m of tls.match.filter((m) => m.port === undefined || m.port === port)) {
            const dests = (tls.route ?? []).map((r) => ({ r, d: resolveDestination(ctx, r.destination, ns) })).filter((x) => x.d);
            if (!dests.length) continue;
            needsTlsInspector = true;
            chains.push({
              name: `sni_${port}_${m.sniHosts[0]}`,
              filterChainMatch: { transportProtocol: "tls", serverNames: m.sniHosts },
              filters: [...access.networkFilters(`gateway_${port}_tls`), buildTcpProxy(`gateway_${port}_tls`, dests.length === 1 ? { cluster: dests[0]!.d!.cluster } : { weighted: dests.map((x) => ({ name: x.d!.cluster, weight: x.r.weight ?? 0 })) }, telemetry.accessLog)],
            });
          }
        }
      }
      if (servers.some((s) => s.server.port.protocol.toUpperCase() === "TCP")) {
        const rule = (vs.spec.tcp ?? []).find((r) => !r.match || r.match.some((m) => m.port === undefined || m.port === port));
        const dests = (rule?.route ?? []).map((r) => ({ r, d: resolveDestination(ctx, r.destination, ns) })).filter((x) => x.d);
        if (dests.length && !chains.some((c) => !c.filterChainMatch)) {
          chains.push({ name: `tcp_${port}`, filters: [...access.networkFilters(`gateway_${port}_tcp`), buildTcpProxy(`gateway_${port}_tcp`, dests.length === 1 ? { cluster: dests[0]!.d!.cluster } : { weighted: dests.map((x) => ({ name: x.d!.cluster, weight: x.r.weight ?? 0 })) }, telemetry.accessLog)] });
        }
      }
    }
    if (chains.length === 0) continue;
    listeners.push({
      name: `0.0.0.0_${port}`,
      address: socketAddress("0.0.0.0", port),
      trafficDirection: TrafficDirection.OUTBOUND,
      ...(needsTlsInspector ? { listenerFilters: [{ name: "envoy.filters.listener.tls_inspector", typedConfig: packAny(EXTENSION_TYPES.tlsInspector, {}) }] } : {}),
      filterChains: chains,
    });
  }
  // A gateway with an identity talks mTLS to sidecars (auto mTLS), like Istio's gateways.
  const authorizers = authorizerHostnames(model.settings.authorizationProviders).flatMap((h) => model.serviceByHost.get(h) ?? []);
  const services = [...new Set([...visible, ...telemetry.providerServices, ...authorizers])];
  const { clusters, endpoints } = buildOutboundClusters(model, proxy, services, security?.secrets ? security.trustDomain : undefined, memo);
  return { clusters: [...clusters, ...access.clusters, ...dedupeByName(sniDnat.clusters, (c) => c.name!)], endpoints: [...endpoints, ...dedupeByName(sniDnat.endpoints, (e) => e.clusterName ?? "")], listeners, routes };
}

/** The first of each name (SNI-DNAT clusters of two AUTO_PASSTHROUGH ports may coincide). */
function dedupeByName<T>(items: T[], nameOf: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => (seen.has(nameOf(item)) ? false : (seen.add(nameOf(item)), true)));
}
