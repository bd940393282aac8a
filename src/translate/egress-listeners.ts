// Sidecar egress listeners with a port, bind or captureMode, as Istio reads them: a listener
// with a port owns that port — only the services its hosts select are served there (the
// port-less catch-all listener serves every other port of its services, and no port at all
// when there is none); captureMode NONE, a unix:// bind, or a proxy without traffic capture
// gives the port a listener of its own on `bind` (default 127.0.0.1) instead of a filter
// chain of the captured outbound listener. Pure: which service port is served where.
import type { IstioEgressListener, Sidecar } from "../api/types.js";
import { sidecarListenerProtocol } from "../api/port-protocols.js";
import { namespaceOf, type PortProtocol, type ServiceModel } from "../model/mesh-model.js";
import type { ProxyModel } from "../model/proxy.js";
import { egressAdmits, sidecarFor } from "./visibility.js";
import type { MeshModel } from "../model/mesh-model.js";

/** An egress listener on a port of its own (bound by the sidecar itself). */
export interface BoundEgressListener {
  readonly port: number;
  readonly protocol: PortProtocol;
  /** An IP address. */
  readonly bind: string;
  readonly hosts: readonly string[];
}

/** Which service ports a sidecar serves through which of its Sidecar's egress listeners. */
export interface EgressPorts {
  /** Whether the captured outbound listener (and explicit mode's one HTTP listener) serves service `s` on `port`. */
  captured(s: ServiceModel, port: number): boolean;
  /** Listeners bound to their own address, in the Sidecar's order. */
  readonly bound: readonly BoundEgressListener[];
  /** Whether a bound listener serves service `s` on its port. */
  boundServes(listener: BoundEgressListener, s: ServiceModel): boolean;
}

/** Every port of every visible service through the one outbound listener: no Sidecar egress port, bind or captureMode. */
const ALL_CAPTURED: EgressPorts = { captured: () => true, bound: [], boundServes: () => false };

function isBound(listener: IstioEgressListener, proxy: ProxyModel): boolean {
  return proxy.capture !== "transparent" || listener.captureMode === "NONE" || (listener.bind ?? "").startsWith("unix://");
}

export function egressPorts(model: MeshModel, proxy: ProxyModel): EgressPorts {
  const sidecar = sidecarFor(model, proxy);
  const listeners = sidecar?.spec.egress ?? [];
  if (!listeners.some((l) => l.port || l.bind || l.captureMode)) return ALL_CAPTURED;
  return egressPortsOf(sidecar!, listeners, proxy);
}

function egressPortsOf(sidecar: Sidecar, listeners: IstioEgressListener[], proxy: ProxyModel): EgressPorts {
  const ns = namespaceOf(sidecar);
  const admits = (l: IstioEgressListener, s: ServiceModel) => l.hosts.some((h) => egressAdmits(h, s, ns));
  const withPort = listeners.filter((l) => l.port !== undefined);
  const catchAll = listeners.find((l) => l.port === undefined);
  // A port belongs to the first listener naming it (validation refuses duplicates).
  const owner = new Map<number, IstioEgressListener>();
  for (const l of withPort) if (l.port!.number > 0 && !owner.has(l.port!.number)) owner.set(l.port!.number, l);
  const bound: BoundEgressListener[] = [];
  /** Each bound listener's Sidecar egress listener. */
  const boundListener = new Map<BoundEgressListener, IstioEgressListener>();
  for (const l of withPort) {
    // Unix-socket listeners (port 0) are not translated yet (validation warns).
    if (!isBound(l, proxy) || l.port!.number === 0) continue;
    const listener: BoundEgressListener = { port: l.port!.number, protocol: sidecarListenerProtocol(l.port!.protocol), bind: l.bind || "127.0.0.1", hosts: l.hosts };
    bound.push(listener);
    boundListener.set(listener, l);
  }
  return {
    captured: (s, port) => {
      const l = owner.get(port);
      if (l) return !isBound(l, proxy) && admits(l, s);
      // Ports no listener names: the catch-all's, captured (or, without capture, explicit mode's one listener).
      return catchAll !== undefined && admits(catchAll, s);
    },
    bound,
    boundServes: (listener, s) => {
      const l = boundListener.get(listener);
      return !!l && admits(l, s) && s.ports.some((p) => p.number === listener.port);
    },
  };
}
