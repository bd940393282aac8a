// ClusterLoadAssignments for EDS clusters: a service's endpoints, filtered by subset labels,
// grouped by locality; with locality load balancing (Istio's failover: same zone first, then
// same region, then the configured failover region, then the rest; or `distribute` weights).
import type { ClusterLoadAssignment } from "../../generated/envoy/config/endpoint/v3/endpoint.js";
import type { LocalityLbEndpoints } from "../../generated/envoy/config/endpoint/v3/endpoint_components.js";
import type { LocalityLbSetting } from "../api/types.js";
import { socketAddress } from "../envoy/builders.js";
import { labelsMatch, type EndpointModel, type ServiceModel, type ServicePortModel } from "../model/mesh-model.js";
import type { EffectivePolicy } from "./traffic-policy.js";
import { TLS_MODE_LABEL, TLS_MODE_MATCH_KEY } from "./mtls.js";

function splitLocality(l: string): [string, string, string] {
  const [region = "", zone = "", subZone = ""] = l.split("/");
  return [region, zone, subZone];
}

/** Istio-style matching of a locality pattern ("region/zone/*"). */
function localityMatches(pattern: string, locality: string): boolean {
  const p = pattern.split("/");
  const l = locality.split("/");
  return p.every((part, i) => part === "*" || part === (l[i] ?? ""));
}

function failoverPriority(proxyLocality: string, endpointLocality: string, setting: LocalityLbSetting | undefined): number {
  const [pr, pz, ps] = splitLocality(proxyLocality);
  const [er, ez, es] = splitLocality(endpointLocality);
  if (pr === er && pz === ez && ps === es) return 0;
  if (pr === er && pz === ez) return 1;
  if (pr === er) return 2;
  const failover = setting?.failover?.find((f) => f.from === pr);
  if (failover && failover.to === er) return 3;
  return 4;
}

function distributeWeight(proxyLocality: string, endpointLocality: string, setting: LocalityLbSetting | undefined): number | undefined {
  const rule = setting?.distribute?.find((d) => localityMatches(d.from, proxyLocality));
  if (!rule) return undefined;
  for (const [to, weight] of Object.entries(rule.to)) if (localityMatches(to, endpointLocality)) return weight;
  return 0;
}

export function buildLoadAssignmentFor(
  clusterName: string,
  service: ServiceModel,
  port: ServicePortModel,
  subsetLabels: Record<string, string> | undefined,
  policy: EffectivePolicy,
  proxyLocality: string,
  /** Whether an endpoint accepts mTLS (has a sidecar and its PeerAuthentication is not DISABLE). */
  acceptsMtls: (ep: EndpointModel) => boolean = (ep) => ep.labels[TLS_MODE_LABEL] === "istio",
): ClusterLoadAssignment {
  const setting = policy.loadBalancer?.localityLbSetting;
  const localityAware = setting?.enabled !== false && !!proxyLocality && (!!policy.outlierDetection || !!setting?.distribute);
  const groups = new Map<string, EndpointModel[]>();
  for (const ep of service.endpoints) {
    if (!labelsMatch(subsetLabels, ep.labels)) continue;
    const list = groups.get(ep.locality) ?? [];
    list.push(ep);
    groups.set(ep.locality, list);
  }
  const endpoints: LocalityLbEndpoints[] = [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([locality, eps]) => {
      const [region, zone, subZone] = splitLocality(locality);
      const weight = localityAware ? distributeWeight(proxyLocality, locality, setting) : undefined;
      return {
        locality: { region, zone, subZone },
        lbEndpoints: eps.map((ep) => ({
          endpoint: { address: socketAddress(ep.address, ep.ports[port.number] ?? port.targetPort) },
          loadBalancingWeight: ep.weight,
          // Endpoints with a sidecar get mTLS from clients (the cluster's transport socket match).
          ...(acceptsMtls(ep) ? { metadata: { filterMetadata: { [TLS_MODE_MATCH_KEY]: { tlsMode: "istio" } } } } : {}),
        })),
        ...(weight !== undefined ? { loadBalancingWeight: weight } : {}),
        ...(localityAware && !setting?.distribute ? { priority: failoverPriority(proxyLocality, locality, setting) } : {}),
      };
    })
    .filter((g) => g.loadBalancingWeight !== 0);
  // Envoy requires priorities to be contiguous from 0: renumber the ones in use.
  const used = [...new Set(endpoints.map((e) => e.priority ?? 0))].sort((a, b) => a - b);
  for (const e of endpoints) if (e.priority !== undefined) e.priority = used.indexOf(e.priority);
  return { clusterName, endpoints };
}
