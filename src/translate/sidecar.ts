// Sidecar configuration: outbound (every visible service, through the virtual outbound
// listener in transparent mode or the explicit HTTP listener otherwise) and inbound (the
// workload's own service ports, transparent mode).
import type { Cluster } from "../../generated/envoy/config/cluster/v3/cluster.js";
import type { ClusterLoadAssignment } from "../../generated/envoy/config/endpoint/v3/endpoint.js";
import type { Listener } from "../../generated/envoy/config/listener/v3/listener.js";
import type { FilterChain, FilterChainMatch } from "../../generated/envoy/config/listener/v3/listener_components.js";
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import type { Route, VirtualHost } from "../../generated/envoy/config/route/v3/route_components.js";
import { TrafficDirection } from "../../generated/envoy/config/core/v3/base.js";
import type { ProxyResources } from "./translate.js";
import { runToEnd, type Steps } from "../work/work-steps.js";
import { socketAddress } from "../envoy/builders.js";
import { hostAliases, labelsMatch, namespaceOf, type EndpointModel, type MeshModel, type PortProtocol, type ServiceModel } from "../model/mesh-model.js";
import type { ProxyModel } from "../model/proxy.js";
import { buildInboundCluster, buildOutboundCluster, isHttpProtocol } from "./clusters.js";
import { buildLoadAssignmentFor } from "./endpoints.js";
import { buildHttpConnectionManager, buildTcpProxy } from "./http-connection-manager.js";
import { buildDefaultRoute, buildVirtualServiceRoutes, resolveDestination, withTimeout, type RouteContext } from "./http-routes.js";
import { inboundRetryPolicy } from "./retry-policy.js";
import { MESH_HTTP_ALPNS, PLAINTEXT_HTTP_MATCH, boundListenerFilters, captureListenerFilters, carriesHttp } from "./protocol-sniffing.js";
import { hasIngressListeners, ingressListenerPorts, servicePorts } from "./inbound-ports.js";
import { egressPorts, type EgressPorts } from "./egress-listeners.js";
import { serverTlsSocket } from "./server-tls.js";
import {
  BLACKHOLE_CLUSTER,
  EXPLICIT_OUTBOUND_LISTENER,
  EXPLICIT_OUTBOUND_ROUTE,
  INBOUND_PASSTHROUGH_CLUSTER,
  PASSTHROUGH_CLUSTER,
  SIDECAR_PORTS,
  VIRTUAL_INBOUND_LISTENER,
  VIRTUAL_OUTBOUND_LISTENER,
  inboundClusterName,
  outboundClusterName,
  outboundRouteName,
} from "./naming.js";
import { destinationRuleFor, effectivePolicy } from "./traffic-policy.js";
import { TLS_MODE_LABEL, inboundMtlsSocket, type MeshSecurity } from "./mtls.js";
import { workloadAccessControl } from "./security/access-control.js";
import { authorizerHostnames } from "./security/ext-authz.js";
import { effectiveMtlsMode } from "./security/peer-authentication.js";
import { outboundPolicy, sidecarFor, virtualServicesFor, virtualServicesForService, visibleServices } from "./visibility.js";
import { sideTelemetry, telemetryLabelKeys, type SideTelemetry } from "./listener-telemetry.js";
import { TranslationMemo, type ServiceClusters } from "./translation-memo.js";

/**
 * A service's clusters depend on the service, the DestinationRule that applies, the client's
 * locality (endpoint priorities) and mTLS — not on which namespace asks. Within one model,
 * proxies with equal inputs get the very same objects (from the model's TranslationMemo), so
 * they are also encoded only once (a ResourceEncoder encodes an object once).
 */
function serviceClusters(model: MeshModel, memo: TranslationMemo, service: ServiceModel, clientNamespace: string, locality: string, mtlsTrustDomain: string | undefined): ServiceClusters {
  const dr = destinationRuleFor(model, service, clientNamespace);
  const key = `${service.hostname}|${service.namespace}|${dr ? `${namespaceOf(dr)}/${dr.metadata.name}` : ""}|${locality}|${mtlsTrustDomain ?? ""}`;
  return memo.serviceClusters(key, () => translateServiceClusters(model, service, dr, locality, mtlsTrustDomain));
}

function translateServiceClusters(model: MeshModel, service: ServiceModel, dr: ReturnType<typeof destinationRuleFor>, locality: string, mtlsTrustDomain: string | undefined): ServiceClusters {
  const clusters: Cluster[] = [];
  const endpoints: ClusterLoadAssignment[] = [];
  for (const port of service.ports) {
    for (const subset of [undefined, ...(dr?.spec.subsets ?? [])]) {
      const policy = effectivePolicy(dr, port.number, subset);
      const cluster = buildOutboundCluster(service, port, subset, policy, mtlsTrustDomain);
      clusters.push(cluster);
      if (cluster.edsClusterConfig) {
        // Auto mTLS only towards endpoints with a sidecar whose inbound port is not DISABLE.
        const acceptsMtls = (ep: EndpointModel) =>
          ep.labels[TLS_MODE_LABEL] === "istio" &&
          effectiveMtlsMode(model.peerAuthentications, { namespace: service.namespace, labels: ep.labels, rootNamespace: model.settings.rootNamespace, port: ep.ports[port.number] ?? port.targetPort }) !== "DISABLE";
        endpoints.push(buildLoadAssignmentFor(cluster.name!, service, port, subset?.labels, policy, locality, acceptsMtls));
      }
    }
  }
  return { clusters, endpoints };
}

/** Clusters and endpoints for every port and subset of the visible services. */
export function buildOutboundClusters(model: MeshModel, proxy: ProxyModel, services: ServiceModel[], mtlsTrustDomain?: string, memo = new TranslationMemo()): ServiceClusters {
  memo.of(model);
  const clusters: Cluster[] = [];
  const endpoints: ClusterLoadAssignment[] = [];
  for (const service of services) {
    const r = serviceClusters(model, memo, service, proxy.namespace, proxy.locality, mtlsTrustDomain);
    clusters.push(...r.clusters);
    endpoints.push(...r.endpoints);
  }
  return { clusters, endpoints };
}

function catchAllVirtualHost(policy: "ALLOW_ANY" | "REGISTRY_ONLY"): VirtualHost {
  return policy === "ALLOW_ANY"
    ? { name: "allow_any", domains: ["*"], routes: [{ name: "allow_any", match: { prefix: "/" }, route: withTimeout({ cluster: PASSTHROUGH_CLUSTER }) }], includeRequestAttemptCount: true }
    : { name: "block_all", domains: ["*"], routes: [{ name: "block_all", match: { prefix: "/" }, directResponse: { status: 502 } }], includeRequestAttemptCount: true };
}

/** Virtual host for a service on one port: VirtualService routes, or the default route. */
function serviceVirtualHost(ctx: RouteContext, memo: TranslationMemo, service: ServiceModel, port: number, domains: string[]): VirtualHost {
  const vss = virtualServicesForService(ctx.model, service, virtualServicesFor(ctx.model, ["mesh"], ctx.proxy.namespace, memo));
  const routes = vss.length > 0 ? vss.flatMap((vs) => buildVirtualServiceRoutes(ctx, vs)) : [buildDefaultRoute(outboundClusterName(port, "", service.hostname))];
  // x-envoy-attempt-count tells the app which attempt it is serving (Istio's default).
  return { name: `${service.hostname}:${port}`, domains, routes, includeRequestAttemptCount: true };
}

/**
 * Host names a service answers to: its aliases, VIPs and, as Istio, the absolute FQDN with a
 * trailing dot. `withPorts`: also each as name:port (explicit mode, whose one listener serves
 * every port, so the port in Host selects the service port); `withBareNames`: also without a
 * port. Transparent mode serves one port per route configuration and ignores the Host's port.
 */
function domainsFor(service: ServiceModel, clientNamespace: string, opts: { port?: number; withBareNames: boolean }): string[] {
  const names = [...hostAliases(service, clientNamespace), ...(service.hostname.includes(".") ? [`${service.hostname}.`] : []), ...service.addresses];
  return [...(opts.port !== undefined ? names.map((n) => `${n}:${opts.port}`) : []), ...(opts.withBareNames ? names : [])];
}

/**
 * Each domain in the first virtual host that claims it. A host that loses none keeps its
 * object (so its encoding can be reused); one that loses all is dropped.
 */
function uniqueDomains(hosts: VirtualHost[]): VirtualHost[] {
  const seen = new Set<string>();
  const out: VirtualHost[] = [];
  for (const vh of hosts) {
    const domains = vh.domains ?? [];
    const kept = domains.filter((d: string) => (seen.has(d) ? false : (seen.add(d), true)));
    if (kept.length === 0) continue;
    out.push(kept.length === domains.length ? vh : { ...vh, domains: kept });
  }
  return out;
}

/**
 * The virtual hosts of one service in a sidecar's outbound routes, each with the route
 * configuration it belongs in. Transparent mode: one per HTTP port, in that port's route
 * configuration (the port in Host never decides: Istio's `reviews:8080` on port 9080 is still
 * reviews). Explicit mode: one per HTTP port in the one route configuration, by Host.
 */
function serviceVirtualHosts(model: MeshModel, memo: TranslationMemo, proxy: ProxyModel, s: ServiceModel, egress: EgressPorts): { route: string; host: VirtualHost }[] {
  const hosts: { route: string; host: VirtualHost }[] = [];
  // A Sidecar egress listener bound to its own port routes that port's services by Host, as transparent mode does.
  for (const listener of egress.bound) {
    if (!carriesHttp(listener.protocol) || !egress.boundServes(listener, s)) continue;
    const ctx: RouteContext = { model, proxy, port: listener.port, gateways: ["mesh"] };
    hosts.push({ route: outboundRouteName(listener.port), host: serviceVirtualHost(ctx, memo, s, listener.port, domainsFor(s, proxy.namespace, { withBareNames: true })) });
  }
  const httpPorts = s.ports.filter((p) => carriesHttp(p.protocol) && egress.captured(s, p.number));
  const seenPorts = new Set<number>();
  for (const p of httpPorts) {
    const ctx: RouteContext = { model, proxy, port: p.number, gateways: ["mesh"] };
    if (proxy.capture === "transparent") {
      if (seenPorts.has(p.number)) continue;
      seenPorts.add(p.number);
      hosts.push({ route: outboundRouteName(p.number), host: serviceVirtualHost(ctx, memo, s, p.number, domainsFor(s, proxy.namespace, { withBareNames: true })) });
    } else {
      hosts.push({ route: EXPLICIT_OUTBOUND_ROUTE, host: serviceVirtualHost(ctx, memo, s, p.number, domainsFor(s, proxy.namespace, { port: p.number, withBareNames: httpPorts.length === 1 })) });
    }
  }
  return hosts;
}

/** The route configurations of a sidecar's outbound listener, assembled from the services' pieces (in visible order). */
function* outboundRouteConfigs(model: MeshModel, proxy: ProxyModel, pieces: readonly OutboundServicePiece[], routePorts: number[], boundPorts: number[]): Steps<RouteConfiguration[]> {
  const byRoute = new Map<string, VirtualHost[]>();
  let n = 0;
  for (const piece of pieces) {
    for (const { route, host } of piece.virtualHosts) pushTo(byRoute, route, host);
    if (++n % 500 === 0) yield;
  }
  const catchAll = catchAllVirtualHost(outboundPolicy(model, proxy));
  const configs: RouteConfiguration[] = [];
  if (proxy.capture !== "transparent") configs.push({ name: EXPLICIT_OUTBOUND_ROUTE, virtualHosts: [...uniqueDomains(byRoute.get(EXPLICIT_OUTBOUND_ROUTE) ?? []), catchAll] });
  for (const port of [...new Set([...routePorts, ...boundPorts])].sort((a, b) => a - b)) {
    configs.push({ name: outboundRouteName(port), virtualHosts: [...uniqueDomains(byRoute.get(outboundRouteName(port)) ?? []), catchAll], validateClusters: false, ignorePortInHostMatching: true });
    yield;
  }
  return configs;
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/**
 * Filter chains of the virtual outbound listener: per HTTP port the connection manager (for
 * HTTP only, as the HTTP inspector reports it; other bytes pass through), per TCP service port
 * TCP proxying, TLS by SNI; undeclared (AUTO) ports get both, told apart by the inspector.
 */
function outboundFilterChains(model: MeshModel, memo: TranslationMemo, proxy: ProxyModel, services: ServiceModel[], telemetry: SideTelemetry, egress: EgressPorts): { chains: FilterChain[]; routePorts: number[]; tlsPorts: number[] } {
  const chains: FilterChain[] = [];
  const seen = new Set<string>();
  const add = (key: string, chain: FilterChain) => {
    if (seen.has(key)) return;
    seen.add(key);
    chains.push(chain);
  };
  const httpChain = (port: number, match: FilterChainMatch, key: string, name = `0.0.0.0_${port}`) =>
    add(key, { name, filterChainMatch: { destinationPort: port, ...match, ...PLAINTEXT_HTTP_MATCH }, filters: [buildHttpConnectionManager(`outbound_0.0.0.0_${port}`, { rds: outboundRouteName(port) }, { telemetry })] });
  const portsWhere = (pred: (p: PortProtocol) => boolean) => [...new Set(services.flatMap((s) => s.ports.filter((p) => pred(p.protocol) && egress.captured(s, p.number)).map((p) => p.number)))].sort((a, b) => a - b);
  const httpPorts = portsWhere(isHttpProtocol);
  const routePorts = portsWhere(carriesHttp);
  for (const port of httpPorts) httpChain(port, {}, `${port}`);
  const meshVs = virtualServicesFor(model, ["mesh"], proxy.namespace, memo);
  const tlsPorts = new Set<number>();
  for (const s of services) {
    const vss = virtualServicesForService(model, s, meshVs);
    for (const p of s.ports) {
      if (isHttpProtocol(p.protocol) || !egress.captured(s, p.number)) continue;
      const ips = s.addresses.length > 0 ? s.addresses : s.resolution === "STATIC" ? [...new Set(s.endpoints.map((e) => e.address))] : [];
      const prefixRanges = ips.map((ip) => ({ addressPrefix: ip.split("/")[0]!, prefixLen: Number(ip.split("/")[1] ?? 32) }));
      const ctx: RouteContext = { model, proxy, port: p.number, gateways: ["mesh"] };
      // TLS routes by SNI for this port
      for (const vs of vss) {
        for (const tls of vs.spec.tls ?? []) {
          for (const m of tls.match.filter((m) => m.port === undefined || m.port === p.number)) {
            const dests = (tls.route ?? []).map((r) => ({ r, d: resolveDestination(ctx, r.destination, namespaceOf(vs)) })).filter((x) => x.d);
            if (dests.length === 0) continue;
            tlsPorts.add(p.number);
            const target = dests.length === 1 ? { cluster: dests[0]!.d!.cluster } : { weighted: dests.map((x) => ({ name: x.d!.cluster, weight: x.r.weight ?? 0 })) };
            add(`${p.number}|sni:${m.sniHosts.join(",")}`, {
              name: `outbound_${p.number}_sni_${m.sniHosts[0]}`,
              filterChainMatch: { destinationPort: p.number, serverNames: m.sniHosts, transportProtocol: "tls" },
              filters: [buildTcpProxy(`outbound|${p.number}||${s.hostname}`, target, telemetry.accessLog)],
            });
          }
        }
      }
      const tcpRule = vss.flatMap((vs) => (vs.spec.tcp ?? []).filter((r) => !r.match || r.match.some((m) => m.port === undefined || m.port === p.number)).map((r) => ({ r, ns: namespaceOf(vs) })))[0];
      let target: { cluster: string } | { weighted: { name: string; weight: number }[] } = { cluster: outboundClusterName(p.number, "", s.hostname) };
      if (tcpRule) {
        const dests = (tcpRule.r.route ?? []).map((r) => ({ r, d: resolveDestination(ctx, r.destination, tcpRule.ns) })).filter((x) => x.d);
        if (dests.length === 1) target = { cluster: dests[0]!.d!.cluster };
        else if (dests.length > 1) target = { weighted: dests.map((x) => ({ name: x.d!.cluster, weight: x.r.weight ?? 0 })) };
      }
      if (prefixRanges.length === 0 && httpPorts.includes(p.number)) continue; // the HTTP chain owns this port
      const ipMatch: FilterChainMatch = prefixRanges.length ? { prefixRanges } : {};
      const tcpChain = (key: string, match: FilterChainMatch) =>
        add(key, { name: `outbound_${p.number}_${s.hostname}${match.transportProtocol ? "_tcp" : ""}`, filterChainMatch: { destinationPort: p.number, ...ipMatch, ...match }, filters: [buildTcpProxy(`outbound|${p.number}||${s.hostname}`, target, telemetry.accessLog)] });
      if (p.protocol === "AUTO") {
        // Sniffed: HTTP to the connection manager; other plaintext (and TLS) to this service over TCP.
        // Envoy does not fall back from a matched transport protocol, so plaintext TCP needs its own chain.
        if (prefixRanges.length) httpChain(p.number, ipMatch, `${p.number}|${ips.join(",")}|http`, `outbound_${p.number}_${s.hostname}_http`);
        else httpChain(p.number, {}, `${p.number}`);
        tcpChain(`${p.number}|${ips.join(",")}|raw`, { transportProtocol: "raw_buffer" });
      }
      tcpChain(`${p.number}|${ips.join(",")}`, {});
    }
  }
  return { chains, routePorts, tlsPorts: [...tlsPorts] };
}

/** Services whose endpoints are this proxy's workload (same namespace, labels match). */
function ownServices(model: MeshModel, memo: TranslationMemo, proxy: ProxyModel): readonly ServiceModel[] {
  if (Object.keys(proxy.labels).length === 0) return [];
  const byNs = memo.internalServicesByNamespace(() => {
    const m = new Map<string, ServiceModel[]>();
    for (const s of model.services) if (s.location === "MESH_INTERNAL") m.set(s.namespace, [...(m.get(s.namespace) ?? []), s]);
    return m;
  });
  return (byNs.get(proxy.namespace) ?? []).filter((s) => servesService(s, proxy));
}

/** Whether a sidecar serves a service of its namespace: an endpoint's labels (not none) match its own. */
export function servesService(s: ServiceModel, proxy: ProxyModel): boolean {
  return s.endpoints.some((e) => Object.keys(e.labels).length > 0 && labelsMatch(e.labels, proxy.labels));
}

/**
 * The route to the local app: no timeout, gRPC deadlines honoured, and (not for gRPC, whose
 * streams do not suit it) a retry when the request was reset before it reached the app.
 */
function inboundRoute(cluster: string, protocol: ServiceModel["ports"][number]["protocol"]): Route {
  return { name: "default", match: { prefix: "/" }, route: withTimeout({ cluster, ...(protocol === "GRPC" ? {} : { retryPolicy: inboundRetryPolicy() }) }) };
}

function inboundListenersAndClusters(model: MeshModel, memo: TranslationMemo, proxy: ProxyModel, security: MeshSecurity | undefined): { listeners: Listener[]; clusters: Cluster[] } {
  const mtls = security?.secrets ? security : undefined;
  const trustDomain = security?.trustDomain ?? "cluster.local";
  const workload = { namespace: proxy.namespace, labels: proxy.labels, rootNamespace: model.settings.rootNamespace };
  const access = workloadAccessControl(model, proxy, trustDomain);
  const sidecar = sidecarFor(model, proxy);
  const services = ownServices(model, memo, proxy);
  const ports = hasIngressListeners(sidecar) ? ingressListenerPorts(proxy, services, sidecar) : proxy.capture === "transparent" ? servicePorts(proxy, services, sidecar) : [];
  const clusters: Cluster[] = [...access.clusters];
  const telemetry = sideTelemetry(model, proxy, "server");
  const captured: { chains: FilterChain[]; tlsPorts: number[]; sniffedPorts: number[] } = { chains: [], tlsPorts: [], sniffedPorts: [] };
  const listeners: Listener[] = [];
  for (const p of ports) {
    clusters.push(p.cluster);
    const target = p.port;
    const cluster = p.cluster.name!;
    const http = [
      buildHttpConnectionManager(
        `inbound_0.0.0.0_${target}`,
        { inline: { name: `inbound|${target}`, virtualHosts: [{ name: `inbound|http|${target}`, domains: ["*"], routes: [inboundRoute(cluster, p.protocol)] }] } },
        { direction: "inbound", forwardClientCert: !!mtls, authFilters: access.httpFilters, telemetry },
      ),
    ];
    const tcp = [...access.networkFilters(`inbound_${target}`), buildTcpProxy(`inbound|${target}||${p.host}`, { cluster }, telemetry.accessLog)];
    const filters = isHttpProtocol(p.protocol) ? http : tcp;
    const sniffed = p.protocol === "AUTO";
    const chains: FilterChain[] = [];
    const tlsPorts: number[] = [];
    const sniffedPorts: number[] = [];
    const chain = (suffix: string, match: FilterChainMatch, chainFilters: FilterChain["filters"], transportSocket?: FilterChain["transportSocket"]): FilterChain => ({
      name: `inbound_${target}${suffix}`,
      filterChainMatch: { destinationPort: target, ...match },
      ...(transportSocket ? { transportSocket } : {}),
      filters: chainFilters,
    });
    // PeerAuthentication: workload > namespace > mesh policy, port-level overrides; no mTLS without a certificate.
    const mode = mtls ? effectiveMtlsMode(model.peerAuthentications, { ...workload, port: target }) : "DISABLE";
    if (p.tls && mode === "DISABLE") {
      // The Sidecar's own TLS for callers from outside the mesh (Istio: only where mesh mTLS is off).
      tlsPorts.push(target);
      chains.push(chain("_tls", { transportProtocol: "tls" }, filters, serverTlsSocket(p.tls)));
    } else {
      const meshTls = () => inboundMtlsSocket(mtls!.trustDomain, { tcp: !isHttpProtocol(p.protocol) });
      if (mode !== "DISABLE") tlsPorts.push(target);
      if (sniffed && mode !== "STRICT") sniffedPorts.push(target);
      // Mesh mTLS: HTTP when the client said so in ALPN (sniffed ports), else the port's protocol.
      if (mode !== "DISABLE") {
        if (sniffed) chains.push(chain("_mtls_http", { transportProtocol: "tls", applicationProtocols: MESH_HTTP_ALPNS }, http, meshTls()));
        chains.push(chain("_mtls", { transportProtocol: "tls" }, filters, meshTls()));
      }
      if (mode === "STRICT") {
        // Plaintext to this port is closed, not passed through by the default chain.
        chains.push(chain("_plaintext_rejected", { transportProtocol: "raw_buffer" }, [buildTcpProxy(`inbound|${target}|strict`, { cluster: BLACKHOLE_CLUSTER })]));
      } else if (sniffed) {
        // Plaintext, sniffed: HTTP as the inspector reports it, anything else over TCP.
        chains.push(chain("_plaintext_http", PLAINTEXT_HTTP_MATCH, http));
        chains.push(chain("_plaintext", { transportProtocol: "raw_buffer" }, tcp));
      } else {
        chains.push(chain(mode === "DISABLE" ? "" : "_plaintext", mode === "DISABLE" ? {} : { transportProtocol: "raw_buffer" }, filters));
      }
    }
    if (p.bind !== undefined) {
      // captureMode NONE: a listener of its own on the port (Istio's "<bind>_<port>").
      listeners.push({
        name: `${p.bind}_${target}`,
        address: socketAddress(p.bind, target),
        trafficDirection: TrafficDirection.INBOUND,
        ...boundListenerFilters({ tlsPorts, httpPorts: sniffedPorts }),
        filterChains: chains,
      });
    } else {
      captured.chains.push(...chains);
      captured.tlsPorts.push(...tlsPorts);
      captured.sniffedPorts.push(...sniffedPorts);
    }
  }
  if (proxy.capture === "transparent") {
    listeners.unshift({
      name: VIRTUAL_INBOUND_LISTENER,
      address: socketAddress("0.0.0.0", SIDECAR_PORTS.inbound),
      trafficDirection: TrafficDirection.INBOUND,
      ...captureListenerFilters({ tlsPorts: captured.tlsPorts, httpPorts: captured.sniffedPorts }),
      filterChains: captured.chains,
      defaultFilterChain: { name: "inbound-passthrough", filters: [buildTcpProxy(INBOUND_PASSTHROUGH_CLUSTER, { cluster: INBOUND_PASSTHROUGH_CLUSTER }, telemetry.accessLog)] },
    });
  }
  return { listeners, clusters };
}

/**
 * One visible service's share of a sidecar's outbound configuration: its clusters and
 * endpoints, and its virtual hosts with the route configuration each belongs in. A function
 * of the model's inputs for that service (the service, its DestinationRule, the
 * VirtualServices naming it and the services and rules those route to) and the proxy's view.
 */
export interface OutboundServicePiece {
  readonly clusters: readonly Cluster[];
  readonly endpoints: readonly ClusterLoadAssignment[];
  readonly virtualHosts: readonly { route: string; host: VirtualHost }[];
}

/** Key of a service among the pieces (a host may be declared in several namespaces). */
export function servicePieceKey(s: ServiceModel): string {
  return `${s.namespace}/${s.hostname}`;
}

/**
 * Pieces of an earlier translation to reuse: `previous` by servicePieceKey, and `rebuild`,
 * which says whose inputs changed since (the caller's model diff). Reuse is only correct
 * for the same proxy view and mTLS setting.
 */
export interface OutboundReuse {
  previous: ReadonlyMap<string, OutboundServicePiece>;
  rebuild: (service: ServiceModel) => boolean;
}

export interface SidecarOutbound extends ProxyResources {
  /** The pieces it was assembled from, by servicePieceKey (for the next translation's reuse). */
  pieces: ReadonlyMap<string, OutboundServicePiece>;
  /** How many pieces came from `reuse` rather than being translated. */
  reused: number;
}

function outboundServicePiece(model: MeshModel, memo: TranslationMemo, proxy: ProxyModel, service: ServiceModel, mtlsTrustDomain: string | undefined, egress: EgressPorts): OutboundServicePiece {
  const { clusters, endpoints } = serviceClusters(model, memo, service, proxy.namespace, proxy.locality, mtlsTrustDomain);
  return { clusters, endpoints, virtualHosts: serviceVirtualHosts(model, memo, proxy, service, egress) };
}

/**
 * Listeners of a Sidecar's egress listeners bound to their own address (captureMode NONE, or a
 * proxy without capture), Istio's "<bind>_<port>": HTTP routed by Host (route configuration of
 * the port), TCP to the first service of the listener with that port (a bound listener cannot
 * tell services apart by destination address).
 */
function boundEgressListeners(services: readonly ServiceModel[], egress: EgressPorts, telemetry: SideTelemetry): Listener[] {
  const listeners: Listener[] = [];
  for (const listener of egress.bound) {
    const served = services.filter((s) => egress.boundServes(listener, s));
    const name = `${listener.bind}_${listener.port}`;
    let filters: FilterChain["filters"];
    if (carriesHttp(listener.protocol)) {
      filters = [buildHttpConnectionManager(`outbound_${name}`, { rds: outboundRouteName(listener.port) }, { telemetry })];
    } else {
      if (served.length === 0) continue; // nothing to send to: no listener (Envoy refuses one without chains)
      const cluster = outboundClusterName(listener.port, "", served[0]!.hostname);
      filters = [buildTcpProxy(cluster, { cluster }, telemetry.accessLog)];
    }
    listeners.push({ name, address: socketAddress(listener.bind, listener.port), trafficDirection: TrafficDirection.OUTBOUND, filterChains: [{ name, filters }] });
  }
  return listeners;
}

/**
 * Outbound configuration: clusters and endpoints of the visible services, the outbound
 * listener and its routes. Reads of the proxy only what outboundView keeps, so sidecars with
 * equal views share it. Assembled from one piece per visible service; with `reuse`, a
 * service whose inputs did not change keeps its earlier piece (same objects), so only the
 * changed services are translated again (the listener and the route configurations' framing
 * are always assembled anew).
 */
export function translateSidecarOutbound(model: MeshModel, proxy: ProxyModel, security?: MeshSecurity, reuse?: OutboundReuse, memo?: TranslationMemo): SidecarOutbound {
  return runToEnd(translateSidecarOutboundSteps(model, proxy, security, reuse, memo));
}

/** translateSidecarOutbound in steps (a step after each service translated), for time-sliced callers. */
export function* translateSidecarOutboundSteps(model: MeshModel, proxy: ProxyModel, security?: MeshSecurity, reuse?: OutboundReuse, memo = new TranslationMemo()): Steps<SidecarOutbound> {
  memo.of(model);
  const services = visibleServices(model, proxy);
  const telemetry = sideTelemetry(model, proxy, "client");
  const mtlsTrustDomain = security?.secrets ? security.trustDomain : undefined;
  const egress = egressPorts(model, proxy);
  const pieces = new Map<string, OutboundServicePiece>();
  let reused = 0;
  for (const s of services) {
    const key = servicePieceKey(s);
    const earlier = reuse && !reuse.rebuild(s) ? reuse.previous.get(key) : undefined;
    if (earlier) reused++;
    pieces.set(key, earlier ?? outboundServicePiece(model, memo, proxy, s, mtlsTrustDomain, egress));
    if (!earlier || reused % 500 === 0) yield;
  }
  // Tracing collectors and external authorizers a Sidecar hides still need their clusters (no routes).
  for (const s of providerOnlyServices(model, proxy, services)) {
    const { clusters, endpoints } = serviceClusters(model, memo, s, proxy.namespace, proxy.locality, mtlsTrustDomain);
    pieces.set(servicePieceKey(s), { clusters, endpoints, virtualHosts: [] });
  }
  const ordered = [...pieces.values()];
  const clusters = ordered.flatMap((p) => p.clusters);
  const endpoints = ordered.flatMap((p) => p.endpoints);
  yield;
  const unknownDestinations = outboundPolicy(model, proxy) === "ALLOW_ANY" ? PASSTHROUGH_CLUSTER : BLACKHOLE_CLUSTER;
  const boundHttpPorts = egress.bound.filter((l) => carriesHttp(l.protocol)).map((l) => l.port);
  const listeners: Listener[] = [];
  let routes: RouteConfiguration[];
  if (proxy.capture === "transparent") {
    const { chains, routePorts, tlsPorts } = outboundFilterChains(model, memo, proxy, services, telemetry, egress);
    listeners.push({
      name: VIRTUAL_OUTBOUND_LISTENER,
      address: socketAddress("0.0.0.0", SIDECAR_PORTS.outbound),
      trafficDirection: TrafficDirection.OUTBOUND,
      ...captureListenerFilters({ tlsPorts, httpPorts: routePorts }),
      filterChains: chains,
      defaultFilterChain: { name: "passthrough", filters: [buildTcpProxy(unknownDestinations, { cluster: unknownDestinations }, telemetry.accessLog)] },
    });
    yield;
    routes = yield* outboundRouteConfigs(model, proxy, ordered, routePorts, boundHttpPorts);
  } else {
    listeners.push({
      name: EXPLICIT_OUTBOUND_LISTENER,
      address: socketAddress("127.0.0.1", proxy.explicitPort ?? SIDECAR_PORTS.explicitHttp),
      trafficDirection: TrafficDirection.OUTBOUND,
      filterChains: [{ filters: [buildHttpConnectionManager("outbound_explicit", { rds: EXPLICIT_OUTBOUND_ROUTE }, { telemetry })] }],
    });
    routes = yield* outboundRouteConfigs(model, proxy, ordered, [], boundHttpPorts);
  }
  listeners.push(...boundEgressListeners(services, egress, telemetry));
  return { clusters, endpoints, listeners, routes, pieces, reused };
}

/**
 * The providers' services that `visible` lacks: tracing collectors (both sides of the proxy)
 * and the external authorizers of AuthorizationPolicy CUSTOM (ext-authz.ts) need a cluster even
 * where a Sidecar hides them.
 */
export function providerOnlyServices(model: MeshModel, proxy: ProxyModel, visible: readonly ServiceModel[]): ServiceModel[] {
  const authorizers = authorizerHostnames(model.settings.authorizationProviders).flatMap((h) => model.serviceByHost.get(h) ?? []);
  const providers = [...sideTelemetry(model, proxy, "client").providerServices, ...sideTelemetry(model, proxy, "server").providerServices, ...authorizers];
  return [...new Set(providers)].filter((s) => !visible.includes(s));
}

/**
 * Inbound configuration of one workload: under transparent capture its listener on 15006 (and
 * a listener of its own for each Sidecar ingress listener with captureMode NONE); without
 * capture only the Sidecar's ingress listeners, each bound to its port (Istio: no inbound
 * listeners from service ports there, the app owns those ports). And the local clusters.
 */
export function translateSidecarInbound(model: MeshModel, proxy: ProxyModel, security?: MeshSecurity, memo = new TranslationMemo()): ProxyResources {
  const inbound = inboundListenersAndClusters(model, memo.of(model), proxy, security);
  if (proxy.capture !== "transparent" && inbound.listeners.length === 0) return { clusters: [], endpoints: [], listeners: [], routes: [] };
  return { clusters: inbound.clusters, endpoints: [], listeners: inbound.listeners, routes: [] };
}

/** The label keys outbound translation reads: Sidecar workload selectors of the namespace, VirtualService sourceLabels. */
function outboundLabelKeys(model: MeshModel, memo: TranslationMemo, namespace: string): Set<string> {
  const fromRoutes = memo.routeSourceLabelKeys(() => {
    const keys = new Set<string>();
    for (const vs of model.routedVirtualServices) for (const h of vs.spec.http ?? []) for (const m of h.match ?? []) for (const k of Object.keys(m.sourceLabels ?? {})) keys.add(k);
    return keys;
  });
  const keys = new Set([...fromRoutes, ...telemetryLabelKeys(model, namespace)]);
  for (const sc of model.sidecars) if (namespaceOf(sc) === namespace) for (const k of Object.keys(sc.spec.workloadSelector?.labels ?? {})) keys.add(k);
  return keys;
}

/** The proxy as outbound translation sees it: no identity, and only the labels a selector there reads. */
export function outboundView(model: MeshModel, proxy: ProxyModel, memo = new TranslationMemo()): ProxyModel {
  const keys = outboundLabelKeys(model, memo.of(model), proxy.namespace);
  const labels = Object.fromEntries(Object.entries(proxy.labels).filter(([k]) => keys.has(k)));
  const { identity: _identity, ...rest } = proxy;
  return { ...rest, labels };
}
