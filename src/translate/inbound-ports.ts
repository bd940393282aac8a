// A workload's inbound ports: from the ports of the services that select it, or — when its
// Sidecar resource has `ingress` listeners — from those listeners only (as Istio: a port no
// Service declares can be served, and sent to a defaultEndpoint other than the port itself).
// Pure: what each port listens on, speaks, and forwards to; sidecar.ts builds the chains.
import type { Cluster } from "../../generated/envoy/config/cluster/v3/cluster.js";
import type { IstioIngressListener, ServerTLSSettings, Sidecar } from "../api/types.js";
import { sidecarListenerProtocol } from "../api/port-protocols.js";
import { labelsMatch, namespaceOf, type PortProtocol, type ServiceModel } from "../model/mesh-model.js";
import type { ProxyModel } from "../model/proxy.js";
import { buildInboundCluster, type LocalAppEndpoint } from "./clusters.js";

/** One inbound port of a workload and how it is served. */
export interface InboundPort {
  /** The port callers reach (filter chain destination port; the bound listener's port). */
  readonly port: number;
  /** What the sidecar serves it as (after its own TLS termination, when `tls` is set). */
  readonly protocol: PortProtocol;
  /** The cluster to the app, `inbound|<port>||`. */
  readonly cluster: Cluster;
  /** Set when the sidecar binds this port itself instead of receiving it captured (captureMode NONE). */
  readonly bind?: string;
  /** TLS the sidecar terminates for callers from outside the mesh (only where mesh mTLS is off, as Istio). */
  readonly tls?: ServerTLSSettings;
  /** The service the port belongs to (stat names), or the Sidecar's name as Istio's stand-in. */
  readonly host: string;
}

/** Services whose endpoints are this proxy's workload (same namespace, labels match). */
export type OwnServices = readonly ServiceModel[];

/** The endpoint of a service that stands for this workload (its port mapping): the first its labels match. */
export function workloadEndpoint(proxy: ProxyModel, service: ServiceModel): ServiceModel["endpoints"][number] | undefined {
  return service.endpoints.find((e) => labelsMatch(e.labels, proxy.labels));
}

/** The port this workload receives a service port on: its own endpoint's port mapping, else the service's targetPort. */
function workloadPort(proxy: ProxyModel, service: ServiceModel, port: ServiceModel["ports"][number]): number {
  return workloadEndpoint(proxy, service)?.ports[port.number] ?? port.targetPort;
}

/** Inbound ports from the services' ports (no Sidecar ingress listeners): transparent capture only. */
export function servicePorts(proxy: ProxyModel, services: OwnServices, sidecar: Sidecar | undefined): InboundPort[] {
  const ports: InboundPort[] = [];
  const seen = new Set<number>();
  const pool = sidecar?.spec.inboundConnectionPool;
  for (const s of services) {
    for (const p of s.ports) {
      const target = workloadPort(proxy, s, p);
      if (seen.has(target)) continue;
      seen.add(target);
      ports.push({ port: target, protocol: p.protocol, host: s.hostname, cluster: buildInboundCluster(target, p.protocol, s.hostname, { connectionPool: pool }) });
    }
  }
  return ports;
}

/** Whether a proxy's Sidecar resource replaces its service ports with ingress listeners. */
export function hasIngressListeners(sidecar: Sidecar | undefined): sidecar is Sidecar & { spec: { ingress: IstioIngressListener[] } } {
  return (sidecar?.spec.ingress?.length ?? 0) > 0;
}

/**
 * Inbound ports from a Sidecar's ingress listeners, as Istio builds them:
 * - the port is served as its protocol (TLS terminated by the sidecar when `tls` is SIMPLE,
 *   MUTUAL or OPTIONAL_MUTUAL: HTTPS is then served as HTTP, TLS as TCP);
 * - captureMode NONE, or DEFAULT on a proxy without traffic capture, binds the port itself
 *   (`bind`, else 0.0.0.0; Istio binds the pod's IP); IPTABLES and DEFAULT under capture are
 *   filter chains of the captured inbound listener (`bind` plays no part there);
 * - defaultEndpoint: 127.0.0.1:P / [::1]:P -> that loopback address; 0.0.0.0:P / [::]:P -> the
 *   workload's own address on port P (where the connection was going, port P); unix://path ->
 *   that socket; unset -> where the connection was going, unchanged;
 * - the connection pool: the listener's connectionPool, else the Sidecar's inboundConnectionPool.
 * Listeners a proxy cannot serve (IPTABLES capture on a proxy without capture) are left out.
 */
export function ingressListenerPorts(proxy: ProxyModel, services: OwnServices, sidecar: Sidecar & { spec: { ingress: IstioIngressListener[] } }): InboundPort[] {
  const ports: InboundPort[] = [];
  const seen = new Set<number>();
  const standIn = `${sidecar.metadata.name}.${namespaceOf(sidecar)}`;
  for (const listener of sidecar.spec.ingress) {
    const number = listener.port.number;
    if (seen.has(number)) continue; // refused by validation; first wins as in Istio
    seen.add(number);
    const captureMode = listener.captureMode ?? "DEFAULT";
    const bound = captureMode === "NONE" || (captureMode === "DEFAULT" && proxy.capture !== "transparent");
    if (!bound && proxy.capture !== "transparent") continue;
    const declared = sidecarListenerProtocol(listener.port.protocol);
    const tls = listener.tls && ["SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"].includes(listener.tls.mode ?? "") ? listener.tls : undefined;
    const protocol: PortProtocol = tls ? afterTlsTermination(declared) : declared;
    // Stats under the service that declares this port, if any (Istio's findOrCreateService).
    const host = services.find((s) => s.ports.some((p) => workloadPort(proxy, s, p) === number))?.hostname ?? standIn;
    const cluster = buildInboundCluster(number, protocol, host, { endpoint: localAppEndpoint(listener.defaultEndpoint), connectionPool: listener.connectionPool ?? sidecar.spec.inboundConnectionPool });
    ports.push({ port: number, protocol, cluster, host, ...(bound ? { bind: listener.bind || "0.0.0.0" } : {}), ...(tls ? { tls } : {}) });
  }
  return ports.sort((a, b) => a.port - b.port);
}

function afterTlsTermination(protocol: Exclude<PortProtocol, "AUTO">): PortProtocol {
  return protocol === "HTTPS" ? "HTTP" : protocol === "TLS" ? "TCP" : protocol;
}

/** Where a defaultEndpoint sends (validated: one of the forms below, or unset). */
export function localAppEndpoint(defaultEndpoint: string | undefined): LocalAppEndpoint {
  if (!defaultEndpoint) return { kind: "original" };
  if (defaultEndpoint.startsWith("unix://")) return { kind: "unix", path: defaultEndpoint.slice("unix://".length) };
  const colon = defaultEndpoint.lastIndexOf(":");
  const host = defaultEndpoint.slice(0, colon);
  const port = Number(defaultEndpoint.slice(colon + 1));
  if (host === "127.0.0.1") return { kind: "loopback", address: "127.0.0.1", port };
  if (host === "[::1]") return { kind: "loopback", address: "::1", port };
  if (host === "0.0.0.0" || host === "[::]") return { kind: "workload", port };
  return { kind: "original" };
}
