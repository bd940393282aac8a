// Pure translation: (mesh model, proxy) -> the Envoy resources of that proxy's snapshot.
import type { Cluster } from "../../generated/envoy/config/cluster/v3/cluster.js";
import type { ClusterLoadAssignment } from "../../generated/envoy/config/endpoint/v3/endpoint.js";
import type { Listener } from "../../generated/envoy/config/listener/v3/listener.js";
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import type { SnapshotInput } from "../cache/snapshot.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import type { MeshModel, ServiceModel } from "../model/mesh-model.js";
import { proxyClassKey, type ProxyModel } from "../model/proxy.js";
import { buildPassthroughClusters } from "./clusters.js";
import { translateGateway } from "./gateway.js";
import { buildSecrets, type MeshSecurity } from "./mtls.js";
import { workloadEndpoint } from "./inbound-ports.js";
import { buildOutboundClusters, outboundView, providerOnlyServices, servesService, translateSidecarInbound, translateSidecarOutboundSteps, type OutboundReuse, type OutboundServicePiece } from "./sidecar.js";
import { runToEnd, type Steps } from "../work/work-steps.js";
import { visibleServices } from "./visibility.js";
import { envoyFilterId, envoyFiltersFor } from "../model/envoy-filters.js";
import { applyEnvoyFilterPatches, compilePatches, type PartContext } from "./envoy-filter-patches.js";
import { TranslationMemo } from "./translation-memo.js";

/** What the sidecar and gateway translators produce; translateProxy adds what every proxy gets. */
export interface ProxyResources {
  clusters: Cluster[];
  endpoints: ClusterLoadAssignment[];
  listeners: Listener[];
  routes: RouteConfiguration[];
}

function toInput(r: ProxyResources): SnapshotInput {
  return { [XDS_TYPES.cluster]: r.clusters, [XDS_TYPES.endpoint]: r.endpoints, [XDS_TYPES.listener]: r.listeners, [XDS_TYPES.route]: r.routes };
}

/**
 * A proxy's configuration in parts that can be generated and encoded separately:
 * - `shared`: what every proxy gets (passthrough and black-hole clusters);
 * - `outbound`: a sidecar's outbound configuration, a function of `outboundKey` only, so
 *   sidecars with the same key share one generation (one per namespace in a typical mesh);
 * - `local`: the rest — a sidecar's inbound listener, a gateway's whole configuration, and
 *   the proxy's certificates.
 * `security`: the mesh's trust domain and, for an authenticated proxy, its secrets (mTLS on).
 */
export interface ProxyPlan {
  outboundKey?: string;
  outbound: () => SnapshotInput;
  /**
   * The outbound part with the per-service pieces it was assembled from; `reuse` (pieces of
   * an earlier plan with the same outbound key, and which services changed since) lets only
   * the changed services be translated again.
   */
  outboundPieces: (reuse?: OutboundReuse) => OutboundPart;
  /** outboundPieces in steps, for time-sliced callers. */
  outboundSteps: (reuse?: OutboundReuse) => Steps<OutboundPart>;
  local: () => SnapshotInput;
}

/**
 * Whether a proxy's `local` part may differ after a change of services, VirtualServices and
 * DestinationRules only (the model diff's "services" kind: the same settings and rules). A
 * sidecar's local part (translateSidecarInbound) reads the services of its own namespace and
 * the services of the mesh settings' providers (ext_authz and tracing: CUSTOM filters and
 * tracers name their clusters), never VirtualServices or DestinationRules; a gateway's local
 * part is its whole configuration. `redefined`: hostnames of services added, removed or
 * redefined; `namespaces`: namespaces where a service was added, removed, redefined or given
 * new endpoints. With providers configured, any redefined service counts (a short provider
 * host may resolve to a service that was just added).
 */
export function localPartMayChange(model: MeshModel, proxy: ProxyModel, change: { redefined: ReadonlySet<string>; namespaces: ReadonlySet<string> }): boolean {
  if (proxy.type === "router" || change.namespaces.has(proxy.namespace)) return true;
  const providers = model.settings.authorizationProviders.length + model.settings.telemetry.extensionProviders.length;
  return providers > 0 && change.redefined.size > 0;
}

/**
 * What a sidecar's local part reads of the services an endpoints-only change touched (the
 * model diff's "endpoints" kind), per namespace, before and after: see localPartSeesEndpoints.
 */
export type EndpointChangeScope = ReadonlyMap<string, { before: readonly ServiceModel[]; after: readonly ServiceModel[] }>;

/** The mesh-internal services named `hosts` in each model, by namespace. */
export function endpointChangeScope(before: MeshModel, after: MeshModel, hosts: ReadonlySet<string>): EndpointChangeScope {
  const scope = new Map<string, { before: ServiceModel[]; after: ServiceModel[] }>();
  for (const [m, side] of [[before, "before"], [after, "after"]] as const) {
    for (const s of m.services) {
      if (s.location !== "MESH_INTERNAL" || !hosts.has(s.hostname)) continue;
      let e = scope.get(s.namespace);
      if (!e) scope.set(s.namespace, (e = { before: [], after: [] }));
      e[side].push(s);
    }
  }
  return scope;
}

/**
 * Whether a proxy's local part may differ after an endpoints-only change (same services,
 * rules and settings). A sidecar's local part reads endpoints only to find the services of its
 * namespace it serves (servesService) and, of each, its own endpoint's port mapping
 * (workloadEndpoint: named target ports); a gateway's local part is its whole configuration.
 * So a change of other workloads' endpoints (a pod of another deployment in the same
 * namespace) rebuilds no sidecar's local part: with 2000 pods in one namespace, each endpoint
 * change rebuilt all 2000 (~2 CPU-s per change, bench/results/istiod-vs-weft-full.md).
 */
export function localPartSeesEndpoints(scope: EndpointChangeScope, proxy: ProxyModel): boolean {
  if (proxy.type === "router") return true;
  const changed = scope.get(proxy.namespace);
  if (!changed) return false;
  const seen = (services: readonly ServiceModel[]) => services.map((s) => `${s.hostname}=${servesService(s, proxy) ? JSON.stringify(workloadEndpoint(proxy, s)?.ports ?? null) : "-"}`).sort().join(",");
  return seen(changed.before) !== seen(changed.after);
}

export interface OutboundPart {
  input: SnapshotInput;
  pieces: ReadonlyMap<string, OutboundServicePiece>;
  /** Pieces taken from `reuse` unchanged. */
  reused: number;
}

export const SHARED_RESOURCES: () => SnapshotInput = () => ({ [XDS_TYPES.cluster]: buildPassthroughClusters() });

/**
 * `memo`: what translating this model computed already (the caller's, one per model: see
 * translation-memo.ts); a fresh one when not given. The plan's parts may be built later: the
 * memo must stay with the model.
 */
export function planProxy(model: MeshModel, proxy: ProxyModel, security?: MeshSecurity, memo = new TranslationMemo()): ProxyPlan {
  memo.of(model);
  const secrets = security?.secrets ? { [XDS_TYPES.secret]: buildSecrets(security.secrets) } : {};
  // EnvoyFilter patches apply after translation, to each part in its context (on copies: the
  // translated objects, and so the pieces kept for reuse, are never modified).
  const filters = envoyFiltersFor(model, proxy);
  const patches = filters.length ? compilePatches(filters, memo) : [];
  const patched = (r: ProxyResources, context: PartContext, addsAnyContext: boolean) => (patches.length ? applyEnvoyFilterPatches(r, context, patches, addsAnyContext) : r);
  if (proxy.type === "router") {
    const none = (): OutboundPart => ({ input: {}, pieces: new Map(), reused: 0 });
    return { outbound: () => ({}), outboundPieces: none, outboundSteps: function* () { return none(); }, local: () => ({ ...toInput(patched(translateGateway(model, proxy, security, memo), "GATEWAY", true)), ...secrets }) };
  }
  const view = outboundView(model, proxy, memo);
  const outboundSteps = function* (reuse?: OutboundReuse): Steps<OutboundPart> {
    const out = yield* translateSidecarOutboundSteps(model, view, security, reuse, memo);
    return { input: toInput(patched(out, "SIDECAR_OUTBOUND", true)), pieces: out.pieces, reused: out.reused };
  };
  const outboundPieces = (reuse?: OutboundReuse): OutboundPart => runToEnd(outboundSteps(reuse));
  return {
    // Sidecars share an outbound part only when the same EnvoyFilters apply to them.
    outboundKey: `${proxyClassKey(view)}|mtls=${security?.secrets ? security.trustDomain : ""}${filters.length ? `|envoyfilters=${filters.map(envoyFilterId).join(",")}` : ""}`,
    outbound: () => outboundPieces().input,
    outboundPieces,
    outboundSteps,
    local: () => ({ ...toInput(patched(translateSidecarInbound(model, proxy, security, memo), "SIDECAR_INBOUND", false)), ...secrets }),
  };
}

/**
 * EDS fast path: the ClusterLoadAssignments of the outbound part that belong to `hostnames`,
 * as translateSidecarOutbound would build them (same view, same names).
 */
export function outboundEndpoints(model: MeshModel, proxy: ProxyModel, security: MeshSecurity | undefined, hostnames: ReadonlySet<string>, memo = new TranslationMemo()): ClusterLoadAssignment[] {
  if (proxy.type === "router") return [];
  const view = outboundView(model, proxy, memo);
  const visible = visibleServices(model, view);
  const services = [...visible, ...providerOnlyServices(model, view, visible)].filter((s) => hostnames.has(s.hostname));
  return buildOutboundClusters(model, view, services, security?.secrets ? security.trustDomain : undefined, memo).endpoints;
}

/** The whole configuration of one proxy, its parts merged (goldens, tests, debugging). */
export function translateProxy(model: MeshModel, proxy: ProxyModel, security?: MeshSecurity, memo?: TranslationMemo): SnapshotInput {
  const plan = planProxy(model, proxy, security, memo);
  const merged: Record<string, unknown[]> = {};
  for (const part of [plan.outbound(), plan.local(), SHARED_RESOURCES()]) for (const [t, list] of Object.entries(part)) merged[t] = [...(merged[t] ?? []), ...(list as unknown[])];
  return merged as SnapshotInput;
}
