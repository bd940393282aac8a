// DestinationRule traffic policy for one (host, port, subset): Istio's merge order is
// rule-level, then the rule's port-level settings, then the subset's policy and its
// port-level settings, each replacing whole sections (loadBalancer, connectionPool, ...).
import type { DestinationRule, PortTrafficPolicy, Subset, TrafficPolicy } from "../api/types.js";
import type { MeshModel, ServiceModel } from "../model/mesh-model.js";
import { namespaceOf } from "../model/mesh-model.js";

export type EffectivePolicy = Omit<TrafficPolicy, "portLevelSettings">;

function applyPortLevel(policy: TrafficPolicy | undefined, port: number): EffectivePolicy {
  if (!policy) return {};
  const { portLevelSettings, ...base } = policy;
  const atPort: PortTrafficPolicy | undefined = portLevelSettings?.find((p) => p.port.number === port);
  if (!atPort) return base;
  const { port: _port, ...overrides } = atPort;
  return { ...base, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
}

/** The DestinationRule that applies to a service for a client in `clientNamespace`. */
export function destinationRuleFor(model: MeshModel, service: ServiceModel, clientNamespace: string): DestinationRule | undefined {
  // Most specific host first (exact, then longer wildcards: the index's order), and
  // Istio's lookup: the client's namespace first, then the service's namespace, then the root namespace.
  const matching = model.destinationRulesByHost.get(service.hostname) ?? [];
  return (
    matching.find((dr) => namespaceOf(dr) === clientNamespace) ??
    matching.find((dr) => namespaceOf(dr) === service.namespace) ??
    matching.find((dr) => namespaceOf(dr) === model.settings.rootNamespace) ??
    matching[0]
  );
}

export function effectivePolicy(dr: DestinationRule | undefined, port: number, subset?: Subset): EffectivePolicy {
  const base = applyPortLevel(dr?.spec.trafficPolicy, port);
  if (!subset?.trafficPolicy) return base;
  const sub = applyPortLevel(subset.trafficPolicy, port);
  return { ...base, ...Object.fromEntries(Object.entries(sub).filter(([, v]) => v !== undefined)) };
}
