// What a proxy may see: services exported to its namespace (exportTo) and, when a Sidecar
// resource applies, only the egress hosts it lists; the outbound traffic policy in force;
// the VirtualServices bound to a gateway ("mesh" for sidecars).
import type { Sidecar, VirtualService } from "../api/types.js";
import { hostSpecificityFor, labelsMatch, namespaceOf, type MeshModel, type ServiceModel } from "../model/mesh-model.js";
import { hostPatternMatches } from "../model/host-match.js";
import type { ProxyModel } from "../model/proxy.js";
import { TranslationMemo } from "./translation-memo.js";

function exported(exportTo: string[] | undefined, ownerNamespace: string, clientNamespace: string): boolean {
  const list = exportTo && exportTo.length > 0 ? exportTo : ["*"];
  return list.some((e) => e === "*" || (e === "." && ownerNamespace === clientNamespace) || e === clientNamespace);
}

/** The Sidecar resource for a proxy: workload-selected in its namespace, then namespace-wide, then the root namespace's. */
export function sidecarFor(model: MeshModel, proxy: ProxyModel): Sidecar | undefined {
  if (proxy.type !== "sidecar") return undefined;
  const inNs = model.sidecars.filter((s) => namespaceOf(s) === proxy.namespace);
  return (
    inNs.find((s) => s.spec.workloadSelector && labelsMatch(s.spec.workloadSelector.labels, proxy.labels)) ??
    inNs.find((s) => !s.spec.workloadSelector) ??
    model.sidecars.find((s) => namespaceOf(s) === model.settings.rootNamespace && !s.spec.workloadSelector)
  );
}

/** Whether a Sidecar egress entry "ns/host" admits a service. */
export function egressAdmits(entry: string, service: ServiceModel, sidecarNamespace: string): boolean {
  const [nsPart, hostPart] = entry.includes("/") ? entry.split("/", 2) as [string, string] : ["*", entry];
  const ns = nsPart === "." ? sidecarNamespace : nsPart;
  if (ns !== "*" && ns !== "~" && ns !== service.namespace) return false;
  if (ns === "~") return false;
  return hostPatternMatches(hostPart, service.hostname);
}

export function visibleServices(model: MeshModel, proxy: ProxyModel): ServiceModel[] {
  const sidecar = sidecarFor(model, proxy);
  const egress = sidecar?.spec.egress?.flatMap((e) => e.hosts);
  return model.services.filter(
    (s) => exported(s.exportTo, s.namespace, proxy.namespace) && (!egress || egress.some((e) => egressAdmits(e, s, namespaceOf(sidecar!)))),
  );
}

export function outboundPolicy(model: MeshModel, proxy: ProxyModel): "ALLOW_ANY" | "REGISTRY_ONLY" {
  return sidecarFor(model, proxy)?.spec.outboundTrafficPolicy?.mode ?? model.settings.outboundTrafficPolicy;
}

/** "ns/name" forms a VirtualService's `gateways` entry can take. */
export function qualifyGateway(entry: string, vsNamespace: string): string {
  return entry === "mesh" || entry.includes("/") ? entry : `${vsNamespace}/${entry}`;
}

/**
 * VirtualServices bound to one of `gateways` ("mesh" or "ns/name"), visible from `clientNamespace`.
 * Asked the same question once per service while a proxy is translated: `memo` (the model's)
 * answers repeats.
 */
export function virtualServicesFor(model: MeshModel, gateways: string[], clientNamespace: string, memo = new TranslationMemo()): VirtualService[] {
  return memo.of(model).boundVirtualServices(`${gateways.join(",")}|${clientNamespace}`, () => selectVirtualServices(model, gateways, clientNamespace));
}

function selectVirtualServices(model: MeshModel, gateways: string[], clientNamespace: string): VirtualService[] {
  return model.routedVirtualServices.filter((vs) => {
    const ns = namespaceOf(vs);
    const bound = (vs.spec.gateways && vs.spec.gateways.length > 0 ? vs.spec.gateways : ["mesh"]).map((g) => qualifyGateway(g, ns));
    return bound.some((g) => gateways.includes(g)) && (gateways.includes("mesh") ? exported(vs.spec.exportTo, ns, clientNamespace) : true);
  });
}

/**
 * The mesh VirtualServices (of `vss`, those visible) that apply to a service: the ones naming
 * it most specifically (an exact name, else the longest matching wildcard host), as Envoy's
 * domain matching picks Istio's most specific virtual host.
 */
export function virtualServicesForService(model: MeshModel, service: ServiceModel, vss: VirtualService[]): VirtualService[] {
  const naming = model.virtualServicesByHost.get(service.hostname);
  if (!naming) return [];
  const visible = naming.filter((vs) => vss.includes(vs));
  if (visible.length <= 1) return visible;
  const specificity = visible.map((vs) => hostSpecificityFor(model, vs.spec.hosts ?? [], namespaceOf(vs), service));
  const best = Math.max(...specificity);
  return visible.filter((_, i) => specificity[i] === best);
}
