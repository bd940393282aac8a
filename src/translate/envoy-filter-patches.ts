// EnvoyFilter patches applied to what translation generated, as Istio applies them: a pure
// function of (the resources of one part of a proxy class, the part's context, the patches
// that apply to the proxy in order). Resources cross into protobuf's plain form through their
// bytes (src/envoy/proto-json.ts), are patched there and come back through the generated
// codecs, so a patch can touch any field Envoy has, typed_config included.
//
// What each part is: a sidecar's outbound part is SIDECAR_OUTBOUND (virtualOutbound, outbound
// routes and clusters), its local part SIDECAR_INBOUND (virtualInbound with its inline route
// configurations, inbound clusters); a gateway's whole configuration is GATEWAY. ADD of a
// LISTENER or CLUSTER with context ANY lands once per proxy: in a sidecar's outbound part.
// The passthrough/black-hole clusters every proxy shares are not patched.
import type { Cluster } from "../../generated/envoy/config/cluster/v3/cluster.js";
import type { Listener } from "../../generated/envoy/config/listener/v3/listener.js";
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import {
  OPERATIONS_APPLIED,
  PATCH_VALUE_TYPES,
  type EnvoyConfigObjectMatch,
  type EnvoyFilter,
  type FilterChainMatch,
  type ListenerMatch,
  type PatchContext,
  type PatchOperation,
  type ApplyTo,
  type RouteConfigurationMatch,
} from "../api/envoy-filter.js";
import { EnvoySchema, type ProtoObject } from "../envoy/proto-json.js";
import { XDS_CODECS, XDS_TYPES } from "../envoy/type-urls.js";
import { envoyFilterId } from "../model/envoy-filters.js";
import { VIRTUAL_INBOUND_LISTENER, VIRTUAL_OUTBOUND_LISTENER } from "./naming.js";
import type { ProxyResources } from "./translate.js";
import { TranslationMemo } from "./translation-memo.js";

export type PartContext = Exclude<PatchContext, "ANY">;

/** One config patch, its value read once as the Envoy message its applyTo names. */
export interface CompiledPatch {
  /** "namespace/name" of its EnvoyFilter. */
  filter: string;
  applyTo: ApplyTo;
  operation: PatchOperation;
  match: EnvoyConfigObjectMatch;
  value?: ProtoObject;
  filterClass?: string;
}

const HCM = "envoy.filters.network.http_connection_manager";
const HCM_TYPE = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const LISTENER_TYPE = "envoy.config.listener.v3.Listener";
const CLUSTER_TYPE = "envoy.config.cluster.v3.Cluster";
const ROUTE_CONFIG_TYPE = "envoy.config.route.v3.RouteConfiguration";
/** Filter names Istio still accepts in matches, with today's names. */
const FILTER_ALIASES: Record<string, string> = {
  "envoy.http_connection_manager": HCM,
  "envoy.tcp_proxy": "envoy.filters.network.tcp_proxy",
  "envoy.router": "envoy.filters.http.router",
  "envoy.lua": "envoy.filters.http.lua",
  "envoy.cors": "envoy.filters.http.cors",
  "envoy.fault": "envoy.filters.http.fault",
  "envoy.ext_authz": "envoy.filters.http.ext_authz",
  "envoy.filters.http.jwt_authn": "envoy.filters.http.jwt_authn",
  "envoy.listener.tls_inspector": "envoy.filters.listener.tls_inspector",
  "envoy.listener.http_inspector": "envoy.filters.listener.http_inspector",
  "envoy.listener.original_dst": "envoy.filters.listener.original_dst",
};
/** Where an ADDed HTTP filter with a filterClass goes: after the last filter of the class (else before the router). */
const FILTER_CLASS_AFTER: Record<string, string[]> = {
  AUTHN: ["envoy.filters.http.jwt_authn"],
  AUTHZ: ["envoy.filters.http.jwt_authn", "envoy.filters.http.rbac"],
  STATS: [],
};

const canonical = (name: string | undefined): string | undefined => (name === undefined ? undefined : (FILTER_ALIASES[name] ?? name));

/**
 * The patches of EnvoyFilters (already in Istio's order), their values read through the Envoy
 * schema; each EnvoyFilter's once per `memo` (the model's: EnvoyFilters are immutable once validated).
 */
export function compilePatches(filters: readonly EnvoyFilter[], memo = new TranslationMemo()): CompiledPatch[] {
  return filters.flatMap((f) =>
    memo.compiledPatches(f, () => {
      const schema = EnvoySchema.get();
      return (f.spec.configPatches ?? []).flatMap((cp): CompiledPatch[] => {
        if (!OPERATIONS_APPLIED[cp.applyTo].includes(cp.patch.operation)) return []; // ignored, as Istio does (validation warned)
        if (cp.match?.proxy?.proxyVersion || Object.keys(cp.match?.proxy?.metadata ?? {}).length) return []; // Weft's proxies report no Istio version or metadata to match
        if (cp.match?.routeConfiguration?.gateway) return []; // not supported yet (validation warned)
        const value = cp.patch.value !== undefined ? schema.fromJson(PATCH_VALUE_TYPES[cp.applyTo], cp.patch.value).message : undefined;
        return [{ filter: envoyFilterId(f), applyTo: cp.applyTo, operation: cp.patch.operation, match: cp.match ?? {}, ...(value ? { value } : {}), ...(cp.patch.filterClass ? { filterClass: cp.patch.filterClass } : {}) }];
      });
    }),
  );
}

function contextApplies(patch: CompiledPatch, context: PartContext): boolean {
  const c = patch.match.context ?? "ANY";
  return c === "ANY" || c === context;
}

/**
 * Applies `patches` (in order) to the resources of one part. `addsAnyContext`: this part takes
 * the LISTENER/CLUSTER ADDs whose context is ANY (so they land once per proxy).
 */
export function applyEnvoyFilterPatches(resources: ProxyResources, context: PartContext, patches: readonly CompiledPatch[], addsAnyContext: boolean): ProxyResources {
  const relevant = patches.filter((p) => contextApplies(p, context));
  if (relevant.length === 0) return resources;
  const schema = EnvoySchema.get();
  const listenerPatches = relevant.some((p) => p.applyTo !== "CLUSTER");
  const clusterPatches = relevant.some((p) => p.applyTo === "CLUSTER");
  let listeners = listenerPatches ? resources.listeners.map((l) => schema.decode(LISTENER_TYPE, XDS_CODECS[XDS_TYPES.listener].encode(l).finish())) : [];
  let routes = listenerPatches ? resources.routes.map((r) => schema.decode(ROUTE_CONFIG_TYPE, XDS_CODECS[XDS_TYPES.route].encode(r).finish())) : [];
  let clusters = clusterPatches ? resources.clusters.map((c) => schema.decode(CLUSTER_TYPE, XDS_CODECS[XDS_TYPES.cluster].encode(c).finish())) : [];
  const adds = (p: CompiledPatch) => p.operation === "ADD" && ((p.match.context ?? "ANY") !== "ANY" || addsAnyContext);
  for (const p of relevant) {
    const ctx = new PatchRun(schema, p);
    switch (p.applyTo) {
      case "LISTENER":
        if (p.operation === "ADD") {
          if (adds(p)) listeners = [...listeners, structuredClone(p.value!)];
        } else listeners = ctx.listOp(listeners, (l) => listenerMatches(l, p.match.listener, false), LISTENER_TYPE);
        break;
      case "FILTER_CHAIN":
      case "NETWORK_FILTER":
      case "HTTP_FILTER":
      case "LISTENER_FILTER":
        listeners = listeners.map((l) => ctx.patchListener(l));
        break;
      case "ROUTE_CONFIGURATION":
      case "VIRTUAL_HOST":
      case "HTTP_ROUTE":
        routes = routes.map((rc) => ctx.patchRouteConfig(rc, routeConfigPort(str(rc["name"]))));
        listeners = listeners.map((l) => ctx.patchInlineRouteConfigs(l));
        break;
      case "CLUSTER":
        if (p.operation === "ADD") {
          if (adds(p)) clusters = [...clusters, structuredClone(p.value!)];
        } else clusters = ctx.listOp(clusters, (c) => clusterMatches(c, p.match.cluster), CLUSTER_TYPE);
        break;
      default:
        break;
    }
  }
  return {
    ...resources,
    ...(listenerPatches
      ? {
          listeners: listeners.map((l) => XDS_CODECS[XDS_TYPES.listener].decode(schema.encode(LISTENER_TYPE, l))) as Listener[],
          routes: routes.map((r) => XDS_CODECS[XDS_TYPES.route].decode(schema.encode(ROUTE_CONFIG_TYPE, r))) as RouteConfiguration[],
        }
      : {}),
    ...(clusterPatches ? { clusters: clusters.map((c) => XDS_CODECS[XDS_TYPES.cluster].decode(schema.encode(CLUSTER_TYPE, c))) as Cluster[] } : {}),
  };
}

// ---------------------------------------------------------------------------------------
// Reading plain protobuf objects

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}
function obj(v: unknown): ProtoObject | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) ? (v as ProtoObject) : undefined;
}
function list(v: unknown): ProtoObject[] {
  return Array.isArray(v) ? (v as ProtoObject[]) : [];
}
function listenerPort(l: ProtoObject): number | undefined {
  const port = obj(obj(obj(l["address"])?.["socket_address"]))?.["port_value"];
  return typeof port === "number" ? port : undefined;
}
function isVirtual(l: ProtoObject): boolean {
  return l["name"] === VIRTUAL_INBOUND_LISTENER || l["name"] === VIRTUAL_OUTBOUND_LISTENER;
}
function chainPort(chain: ProtoObject): number | undefined {
  const v = obj(obj(chain["filter_chain_match"])?.["destination_port"])?.["value"];
  return typeof v === "number" ? v : undefined;
}

/**
 * Listener-level match. `forChains`: the patch works inside filter chains, so a portNumber may
 * also pick the chains of Weft's virtual listeners with that destination port (Istio's
 * per-port outbound listeners are filter chains of virtualOutbound in Weft).
 */
function listenerMatches(l: ProtoObject, m: ListenerMatch | undefined, forChains: boolean): boolean {
  if (!m) return true;
  if (m.name !== undefined && m.name !== l["name"]) return false;
  if (m.portNumber !== undefined && listenerPort(l) !== m.portNumber && !(forChains && isVirtual(l))) return false;
  return true;
}

function filtersOf(chain: ProtoObject): ProtoObject[] {
  return list(chain["filters"]);
}

function chainMatches(l: ProtoObject, chain: ProtoObject, m: ListenerMatch | undefined, schema: EnvoySchema): boolean {
  if (!m) return true;
  if (m.portNumber !== undefined && listenerPort(l) !== m.portNumber && chainPort(chain) !== m.portNumber) return false;
  const fc: FilterChainMatch | undefined = m.filterChain;
  if (!fc) return true;
  const fcm = obj(chain["filter_chain_match"]) ?? {};
  if (fc.name !== undefined && fc.name !== chain["name"]) return false;
  if (fc.sni !== undefined && !list(fcm["server_names"]).includes(fc.sni as never)) return false;
  if (fc.transportProtocol !== undefined && fc.transportProtocol !== (fcm["transport_protocol"] ?? "")) return false;
  if (fc.applicationProtocols !== undefined) {
    const have = list(fcm["application_protocols"]) as unknown[];
    if (!fc.applicationProtocols.split(",").every((p) => have.includes(p.trim()))) return false;
  }
  if (fc.destinationPort !== undefined && chainPort(chain) !== fc.destinationPort) return false;
  const name = canonical(fc.filter?.name);
  if (name !== undefined) {
    const named = filtersOf(chain).filter((f) => canonical(str(f["name"])) === name);
    if (named.length === 0) return false;
    const sub = canonical(fc.filter?.subFilter?.name);
    if (sub !== undefined && !named.some((f) => httpFiltersOf(f, schema)?.some((h) => canonical(str(h["name"])) === sub))) return false;
  }
  return true;
}

function httpFiltersOf(filter: ProtoObject, schema: EnvoySchema): ProtoObject[] | undefined {
  const hcm = schema.unpack(filter["typed_config"]);
  return hcm?.typeName === HCM_TYPE ? list(hcm.message["http_filters"]) : undefined;
}

/** The port a route configuration serves, from Weft's names: "9080" (outbound), "http.8080" (gateway), "inbound|9080". */
function routeConfigPort(name: string | undefined): number | undefined {
  const m = /^(?:http\.|inbound\|)?(\d+)$/.exec(name ?? "");
  return m ? Number(m[1]) : undefined;
}

function clusterMatches(c: ProtoObject, m: EnvoyConfigObjectMatch["cluster"]): boolean {
  if (!m) return true;
  const name = str(c["name"]) ?? "";
  if (m.name !== undefined && m.name !== name) return false;
  const [direction, port, subset, host] = name.split("|");
  const parsed = direction === "outbound" || direction === "inbound";
  if (m.portNumber !== undefined && (!parsed || Number(port) !== m.portNumber)) return false;
  if (m.subset !== undefined && (!parsed || subset !== m.subset)) return false;
  if (m.service !== undefined && (!parsed || host !== m.service)) return false;
  return true;
}

function routeAction(route: ProtoObject): string {
  if (route["route"] !== undefined) return "ROUTE";
  if (route["redirect"] !== undefined) return "REDIRECT";
  if (route["direct_response"] !== undefined) return "DIRECT_RESPONSE";
  return "";
}

// ---------------------------------------------------------------------------------------
// One patch at work

class PatchRun {
  constructor(
    private readonly schema: EnvoySchema,
    private readonly p: CompiledPatch,
  ) {}

  private get value(): ProtoObject {
    return structuredClone(this.p.value!);
  }

  /** REMOVE / MERGE / REPLACE of the matching items of a list (listeners, clusters, chains, vhosts, routes). */
  listOp(items: ProtoObject[], matches: (item: ProtoObject) => boolean, typeName: string): ProtoObject[] {
    switch (this.p.operation) {
      case "REMOVE":
        return items.filter((i) => !matches(i));
      case "MERGE":
        return items.map((i) => (matches(i) ? this.schema.merge(typeName, i, this.p.value!) : i));
      case "REPLACE":
        return items.map((i) => (matches(i) ? this.value : i));
      default:
        return items;
    }
  }

  /** Ordered-list operations relative to the first item `isTarget` picks (filters, routes). */
  private orderedOp(items: ProtoObject[], isTarget: ((item: ProtoObject) => boolean) | undefined, typeName: string, addAt?: number): ProtoObject[] {
    const at = isTarget ? items.findIndex(isTarget) : -1;
    switch (this.p.operation) {
      case "ADD":
        return addAt === undefined ? [...items, this.value] : [...items.slice(0, addAt), this.value, ...items.slice(addAt)];
      case "INSERT_FIRST":
        return [this.value, ...items];
      case "INSERT_BEFORE":
        if (!isTarget) return [this.value, ...items];
        return at < 0 ? items : [...items.slice(0, at), this.value, ...items.slice(at)];
      case "INSERT_AFTER":
        if (!isTarget) return [...items, this.value];
        return at < 0 ? items : [...items.slice(0, at + 1), this.value, ...items.slice(at + 1)];
      default:
        return this.listOp(items, isTarget ?? (() => true), typeName);
    }
  }

  patchListener(l: ProtoObject): ProtoObject {
    const m = this.p.match.listener;
    if (!listenerMatches(l, m, this.p.applyTo !== "LISTENER_FILTER")) return l;
    if (this.p.applyTo === "LISTENER_FILTER") {
      const target = canonical(m?.listenerFilter);
      const filters = this.orderedOp(list(l["listener_filters"]), target ? (f) => canonical(str(f["name"])) === target : undefined, PATCH_VALUE_TYPES.LISTENER_FILTER);
      return { ...l, listener_filters: filters };
    }
    if (this.p.applyTo === "FILTER_CHAIN" && this.p.operation === "ADD") {
      // A port in the match names the listener; the new chain says for itself what it serves.
      return { ...l, filter_chains: [...list(l["filter_chains"]), this.value] };
    }
    const out: ProtoObject = { ...l };
    const chains = list(l["filter_chains"]);
    const matches = (c: ProtoObject) => chainMatches(l, c, m, this.schema);
    if (this.p.applyTo === "FILTER_CHAIN") {
      out["filter_chains"] = this.listOp(chains, matches, PATCH_VALUE_TYPES.FILTER_CHAIN);
      const def = obj(l["default_filter_chain"]);
      if (def && matches(def)) {
        const patched = this.listOp([def], () => true, PATCH_VALUE_TYPES.FILTER_CHAIN);
        if (patched.length) out["default_filter_chain"] = patched[0];
        else delete out["default_filter_chain"];
      }
      return out;
    }
    out["filter_chains"] = chains.map((c) => (matches(c) ? this.patchChain(c) : c));
    const def = obj(l["default_filter_chain"]);
    if (def && matches(def)) out["default_filter_chain"] = this.patchChain(def);
    return out;
  }

  private patchChain(chain: ProtoObject): ProtoObject {
    const fm = this.p.match.listener?.filterChain?.filter;
    const target = canonical(fm?.name);
    const named = target ? (f: ProtoObject) => canonical(str(f["name"])) === target : undefined;
    if (this.p.applyTo === "NETWORK_FILTER") return { ...chain, filters: this.orderedOp(filtersOf(chain), named, PATCH_VALUE_TYPES.NETWORK_FILTER) };
    // HTTP_FILTER: inside every HTTP connection manager of the chain (the one the match names).
    return {
      ...chain,
      filters: filtersOf(chain).map((f) => {
        if (canonical(str(f["name"])) !== HCM || (target !== undefined && target !== HCM)) return f;
        const hcm = this.schema.unpack(f["typed_config"]);
        if (hcm?.typeName !== HCM_TYPE) return f;
        const sub = canonical(fm?.subFilter?.name);
        const httpFilters = list(hcm.message["http_filters"]);
        const patched = this.orderedOp(httpFilters, sub ? (h) => canonical(str(h["name"])) === sub : undefined, PATCH_VALUE_TYPES.HTTP_FILTER, this.filterClassPosition(httpFilters));
        return { ...f, typed_config: this.schema.pack(HCM_TYPE, { ...hcm.message, http_filters: patched }) };
      }),
    };
  }

  /** ADD with a filterClass: after the last filter of that class, else before the router. */
  private filterClassPosition(httpFilters: ProtoObject[]): number | undefined {
    if (this.p.operation !== "ADD" || !this.p.filterClass || this.p.filterClass === "UNSPECIFIED") return undefined;
    const after = FILTER_CLASS_AFTER[this.p.filterClass] ?? [];
    let last = -1;
    httpFilters.forEach((h, i) => {
      if (after.includes(str(h["name"]) ?? "")) last = i;
    });
    if (last >= 0) return last + 1;
    const router = httpFilters.findIndex((h) => canonical(str(h["name"])) === "envoy.filters.http.router");
    return router >= 0 ? router : undefined;
  }

  /** Route configurations carried inline by HTTP connection managers (Weft's inbound listener). */
  patchInlineRouteConfigs(l: ProtoObject): ProtoObject {
    const patchChain = (chain: ProtoObject): ProtoObject => ({
      ...chain,
      filters: filtersOf(chain).map((f) => {
        const hcm = this.schema.unpack(f["typed_config"]);
        const rc = hcm?.typeName === HCM_TYPE ? obj(hcm.message["route_config"]) : undefined;
        if (!hcm || !rc) return f;
        const patched = this.patchRouteConfig(rc, chainPort(chain) ?? routeConfigPort(str(rc["name"])));
        return patched === rc ? f : { ...f, typed_config: this.schema.pack(HCM_TYPE, { ...hcm.message, route_config: patched }) };
      }),
    });
    const chains = list(l["filter_chains"]);
    if (!chains.some((c) => filtersOf(c).some((f) => str(f["name"]) === HCM))) return l;
    return { ...l, filter_chains: chains.map(patchChain) };
  }

  patchRouteConfig(rc: ProtoObject, port: number | undefined): ProtoObject {
    const m: RouteConfigurationMatch = this.p.match.routeConfiguration ?? {};
    if (m.name !== undefined && m.name !== rc["name"]) return rc;
    if (m.portNumber !== undefined && m.portNumber !== port) return rc;
    if (this.p.applyTo === "ROUTE_CONFIGURATION") return this.p.operation === "MERGE" ? this.schema.merge(ROUTE_CONFIG_TYPE, rc, this.p.value!) : rc;
    const vhosts = list(rc["virtual_hosts"]);
    const vm = m.vhost;
    const vhostMatches = (vh: ProtoObject) => (vm?.name === undefined || vm.name === vh["name"]) && (vm?.domainName === undefined || list(vh["domains"]).includes(vm.domainName as never));
    if (this.p.applyTo === "VIRTUAL_HOST") {
      if (this.p.operation === "ADD") return { ...rc, virtual_hosts: [...vhosts, this.value] };
      return { ...rc, virtual_hosts: this.listOp(vhosts, vhostMatches, PATCH_VALUE_TYPES.VIRTUAL_HOST) };
    }
    // HTTP_ROUTE
    const rm = vm?.route;
    const routeMatches = rm && (rm.name !== undefined || (rm.action ?? "ANY") !== "ANY") ? (r: ProtoObject) => (rm.name === undefined || rm.name === r["name"]) && ((rm.action ?? "ANY") === "ANY" || rm.action === routeAction(r)) : undefined;
    return {
      ...rc,
      virtual_hosts: vhosts.map((vh) => (vhostMatches(vh) ? { ...vh, routes: this.orderedOp(list(vh["routes"]), routeMatches, PATCH_VALUE_TYPES.HTTP_ROUTE) } : vh)),
    };
  }
}
