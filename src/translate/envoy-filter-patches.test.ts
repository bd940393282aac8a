// EnvoyFilter patches on Weft's output: one test per operation and applyTo, on bookinfo
// (testdata/in/bookinfo.yaml) with EnvoyFilters read by the real validator; and a golden of
// istio.io's own examples (testdata/in/envoy-filter.yaml) that Envoy must accept.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { Cluster } from "../../generated/envoy/config/cluster/v3/cluster.js";
import type { Listener } from "../../generated/envoy/config/listener/v3/listener.js";
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import type { HttpConnectionManager } from "../../generated/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js";
import type { MeshConfig } from "../api/types.js";
import type { ValidationIssue } from "../api/types.js";
import { parseDocuments, validateResource } from "../api/validate-resource.js";
import { checkConsistency } from "../cache/consistency.js";
import { Snapshot, type SnapshotInput } from "../cache/snapshot.js";
import { unpackAny } from "../envoy/any.js";
import { resourceToJson } from "../envoy/readable-json.js";
import { EXTENSION_TYPES, PUSH_ORDER, TYPE_SHORT_NAMES, XDS_TYPES, resourceName, type XdsResourceTypes, type XdsTypeUrl } from "../envoy/type-urls.js";
import { validateWithEnvoy } from "../envoy/validate-config.js";
import { buildMeshModel } from "../model/mesh-model.js";
import type { ProxyModel } from "../model/proxy.js";
import { planProxy, translateProxy as translateOnce } from "./translate.js";
import { TranslationMemo } from "./translation-memo.js";
import { deepFreeze } from "./deep-freeze.js";

const DATA = path.join(path.dirname(new URL(import.meta.url).pathname), "testdata");

function read(text: string, file: string): { config: MeshConfig; issues: ValidationIssue[] } {
  const { docs, issues } = parseDocuments(text, file);
  const config: MeshConfig = { resources: [], issues: [] };
  for (const d of docs) {
    const r = validateResource(d.value, { file, document: d.document });
    issues.push(...r.issues);
    if (r.resource) config.resources.push({ resource: r.resource, source: { file, document: d.document } });
  }
  return { config, issues };
}

/**
 * Translates twice with one memo, the first output frozen: the second translation gets the
 * objects the memo kept (clusters, endpoints, compiled patches), so a patch or translator that
 * modified translated objects in place throws here instead of corrupting shared resources.
 */
function translateProxy(model: Parameters<typeof translateOnce>[0], proxy: ProxyModel): SnapshotInput {
  const memo = new TranslationMemo();
  const first = deepFreeze(translateOnce(model, proxy, undefined, memo));
  expect(translateOnce(model, proxy, undefined, memo)).toEqual(first);
  return first;
}

const BOOKINFO = readFileSync(path.join(DATA, "in", "bookinfo.yaml"), "utf8");

/** Bookinfo plus EnvoyFilters (YAML documents); throws on any validation error. */
function mesh(envoyFilters: string) {
  const { config, issues } = read(`${BOOKINFO}\n---\n${envoyFilters}`, "mesh.yaml");
  const errors = issues.filter((i) => i.severity === "error");
  if (errors.length) throw new Error(errors.map((e) => `${e.resource}: ${e.field}: ${e.message}`).join("\n"));
  return buildMeshModel(config);
}

const productpage: ProxyModel = { type: "sidecar", namespace: "bookinfo", labels: { app: "productpage", version: "v1" }, capture: "transparent", locality: "" };
const reviews: ProxyModel = { ...productpage, labels: { app: "reviews", version: "v1" } };
const gateway: ProxyModel = { type: "router", namespace: "istio-system", labels: { istio: "ingressgateway" }, capture: "transparent", locality: "" };

function resources<U extends XdsTypeUrl>(input: SnapshotInput, t: U): XdsResourceTypes[U][] {
  return (input[t] ?? []) as XdsResourceTypes[U][];
}
function listener(input: SnapshotInput, name: string): Listener {
  const l = resources(input, XDS_TYPES.listener).find((x) => x.name === name);
  if (!l) throw new Error(`no listener ${name}`);
  return l;
}
function hcmOf(l: Listener, chain = 0): HttpConnectionManager {
  const f = l.filterChains![chain]!.filters!.find((x) => x.name === "envoy.filters.network.http_connection_manager");
  return unpackAny(EXTENSION_TYPES.httpConnectionManager, f?.typedConfig)!;
}
const httpFilterNames = (l: Listener, chain = 0) => hcmOf(l, chain).httpFilters!.map((h) => h.name);
const route = (input: SnapshotInput, name: string): RouteConfiguration => resources(input, XDS_TYPES.route).find((r) => r.name === name)!;
const cluster = (input: SnapshotInput, name: string): Cluster | undefined => resources(input, XDS_TYPES.cluster).find((c) => c.name === name);

function ef(name: string, spec: string, namespace = "bookinfo"): string {
  return `apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec:\n${spec.replace(/^/gm, "  ")}\n---\n`;
}
const LUA = `{ name: envoy.filters.http.lua, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua, default_source_code: { inline_string: "function envoy_on_response(h) end" } } }`;
const HCM_MATCH = `listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: envoy.filters.http.router } } } }`;

describe("EnvoyFilter HTTP_FILTER", () => {
  const base = translateProxy(mesh(""), productpage);
  const before = httpFilterNames(listener(base, "virtualInbound"));

  it("INSERT_BEFORE the router, in the inbound listener only (SIDECAR_INBOUND)", () => {
    const out = translateProxy(mesh(ef("lua", `configPatches:\n- applyTo: HTTP_FILTER\n  match: { context: SIDECAR_INBOUND, ${HCM_MATCH} }\n  patch: { operation: INSERT_BEFORE, value: ${LUA} }`)), productpage);
    expect(httpFilterNames(listener(out, "virtualInbound"))).toEqual([...before.slice(0, -1), "envoy.filters.http.lua", "envoy.filters.http.router"]);
    expect(httpFilterNames(listener(out, "virtualOutbound"))).toEqual(httpFilterNames(listener(base, "virtualOutbound")));
  });

  it("INSERT_FIRST, INSERT_AFTER, ADD, REPLACE and REMOVE, applied in priority order", () => {
    const m = mesh(
      ef("b-second", `priority: 10\nconfigPatches:\n- applyTo: HTTP_FILTER\n  match: { context: SIDECAR_INBOUND, listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: envoy.filters.http.lua } } } } }\n  patch: { operation: INSERT_AFTER, value: { name: after-lua, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer, max_request_bytes: 1024 } } }`) +
        ef("a-third", `priority: 20\nconfigPatches:\n- applyTo: HTTP_FILTER\n  match: { context: SIDECAR_INBOUND, listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: after-lua } } } } }\n  patch: { operation: REPLACE, value: { name: replaced, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer, max_request_bytes: 2048 } } }\n- applyTo: HTTP_FILTER\n  match: { context: SIDECAR_INBOUND, listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: envoy.filters.http.cors } } } } }\n  patch: { operation: REMOVE }`) +
        ef("c-first", `priority: -5\nconfigPatches:\n- applyTo: HTTP_FILTER\n  match: { context: SIDECAR_INBOUND }\n  patch: { operation: INSERT_FIRST, value: ${LUA} }`),
    );
    const names = httpFilterNames(listener(translateProxy(m, productpage), "virtualInbound"));
    expect(names[0]).toBe("envoy.filters.http.lua");
    expect(names[1]).toBe("replaced");
    expect(names).not.toContain("after-lua");
    expect(names).not.toContain("envoy.filters.http.cors");
    expect(names.at(-1)).toBe("envoy.filters.http.router");
  });

  it("ADD with filterClass AUTHZ goes before the router; plain ADD appends", () => {
    const m = mesh(ef("add", `configPatches:\n- applyTo: HTTP_FILTER\n  match: { context: SIDECAR_INBOUND }\n  patch: { operation: ADD, filterClass: AUTHZ, value: ${LUA} }`));
    expect(httpFilterNames(listener(translateProxy(m, productpage), "virtualInbound")).slice(-2)).toEqual(["envoy.filters.http.lua", "envoy.filters.http.router"]);
    const plain = mesh(ef("add", `configPatches:\n- applyTo: HTTP_FILTER\n  match: { context: SIDECAR_INBOUND }\n  patch: { operation: ADD, value: ${LUA} }`));
    expect(httpFilterNames(listener(translateProxy(plain, productpage), "virtualInbound")).at(-1)).toBe("envoy.filters.http.lua");
  });

  it("a portNumber picks the virtual listener's filter chains for that port; another port changes nothing", () => {
    const patch = (port: number) => mesh(ef("lua", `configPatches:\n- applyTo: HTTP_FILTER\n  match: { context: SIDECAR_OUTBOUND, listener: { portNumber: ${port}, filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: envoy.filters.http.router } } } } }\n  patch: { operation: INSERT_BEFORE, value: ${LUA} }`));
    expect(httpFilterNames(listener(translateProxy(patch(9080), productpage), "virtualOutbound"))).toContain("envoy.filters.http.lua");
    expect(httpFilterNames(listener(translateProxy(patch(9999), productpage), "virtualOutbound"))).not.toContain("envoy.filters.http.lua");
  });
});

describe("EnvoyFilter selection and context", () => {
  const lua = (ns: string, selector: string, context = "ANY") => ef("lua", `${selector}configPatches:\n- applyTo: HTTP_FILTER\n  match: { context: ${context}, ${HCM_MATCH} }\n  patch: { operation: INSERT_BEFORE, value: ${LUA} }`, ns);
  const has = (m: ReturnType<typeof mesh>, p: ProxyModel, l: string) => httpFilterNames(listener(translateProxy(m, p), l)).includes("envoy.filters.http.lua");

  it("workloadSelector picks workloads by label; the root namespace applies mesh-wide; other namespaces not at all", () => {
    const selected = mesh(lua("bookinfo", "workloadSelector: { labels: { app: reviews } }\n"));
    expect(has(selected, reviews, "virtualInbound")).toBe(true);
    expect(has(selected, productpage, "virtualInbound")).toBe(false);
    const root = mesh(lua("istio-system", ""));
    expect(has(root, productpage, "virtualInbound")).toBe(true);
    expect(has(root, gateway, "0.0.0.0_8080")).toBe(true);
    const elsewhere = mesh(lua("other", ""));
    expect(has(elsewhere, productpage, "virtualInbound")).toBe(false);
  });

  it("GATEWAY context patches gateways only; SIDECAR_OUTBOUND only the outbound listener", () => {
    const gw = mesh(lua("istio-system", "", "GATEWAY"));
    expect(has(gw, gateway, "0.0.0.0_8080")).toBe(true);
    expect(has(gw, productpage, "virtualInbound") || has(gw, productpage, "virtualOutbound")).toBe(false);
    const out = mesh(lua("bookinfo", "", "SIDECAR_OUTBOUND"));
    expect(has(out, productpage, "virtualOutbound")).toBe(true);
    expect(has(out, productpage, "virtualInbound")).toBe(false);
  });

  it("sidecars share an outbound part only when the same EnvoyFilters apply to them", () => {
    const m = mesh(lua("bookinfo", "workloadSelector: { labels: { app: reviews } }\n", "SIDECAR_OUTBOUND"));
    expect(planProxy(m, reviews).outboundKey).not.toBe(planProxy(m, productpage).outboundKey);
    expect(has(m, reviews, "virtualOutbound")).toBe(true);
    expect(has(m, productpage, "virtualOutbound")).toBe(false);
  });
});

describe("EnvoyFilter LISTENER, FILTER_CHAIN, NETWORK_FILTER", () => {
  it("LISTENER MERGE by name, ADD (once per proxy), REMOVE", () => {
    const m = mesh(
      ef("listeners", `configPatches:
- applyTo: LISTENER
  match: { listener: { name: virtualOutbound } }
  patch: { operation: MERGE, value: { per_connection_buffer_limit_bytes: 32768 } }
- applyTo: LISTENER
  patch: { operation: ADD, value: { name: extra, address: { socket_address: { address: 127.0.0.1, port_value: 15099 } }, filter_chains: [{ filters: [{ name: envoy.filters.network.tcp_proxy, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: extra, cluster: PassthroughCluster } }] }] } }`),
    );
    const out = translateProxy(m, productpage);
    expect(listener(out, "virtualOutbound").perConnectionBufferLimitBytes).toBe(32768);
    expect(resources(out, XDS_TYPES.listener).filter((l) => l.name === "extra")).toHaveLength(1);
    const removed = translateProxy(mesh(ef("rm", `configPatches:\n- applyTo: LISTENER\n  match: { context: SIDECAR_INBOUND, listener: { name: virtualInbound } }\n  patch: { operation: REMOVE }`)), productpage);
    expect(resources(removed, XDS_TYPES.listener).map((l) => l.name)).toEqual(["virtualOutbound"]);
  });

  it("FILTER_CHAIN MERGE and REMOVE by filter chain name and destination port", () => {
    const m = mesh(ef("chains", `configPatches:
- applyTo: FILTER_CHAIN
  match: { context: SIDECAR_INBOUND, listener: { filterChain: { name: inbound_9080 } } }
  patch: { operation: MERGE, value: { transport_socket_connect_timeout: 3s } }
- applyTo: FILTER_CHAIN
  match: { context: SIDECAR_OUTBOUND, listener: { filterChain: { destinationPort: 9080 } } }
  patch: { operation: REMOVE }`));
    const out = translateProxy(m, productpage);
    expect(listener(out, "virtualInbound").filterChains![0]!.transportSocketConnectTimeout).toEqual({ seconds: 3, nanos: 0 });
    expect(listener(out, "virtualOutbound").filterChains ?? []).toHaveLength(0);
  });

  it("NETWORK_FILTER MERGE into the HTTP connection manager's typed_config (context ANY: sidecars and gateways)", () => {
    const m = mesh(
      ef("hcm", `configPatches:
- applyTo: NETWORK_FILTER
  match: { listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager } } } }
  patch:
    operation: MERGE
    value: { name: envoy.filters.network.http_connection_manager, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager, common_http_protocol_options: { idle_timeout: 30s } } }`, "istio-system"),
    );
    const gw = translateProxy(m, gateway);
    const hcm = hcmOf(listener(gw, "0.0.0.0_8080"));
    expect(hcm.commonHttpProtocolOptions?.idleTimeout).toEqual({ seconds: 30, nanos: 0 });
    // Merged, not replaced: Weft's own settings are still there.
    expect(hcm.httpFilters!.at(-1)?.name).toBe("envoy.filters.http.router");
    expect(hcm.serverName).toBe("istio-envoy");
    expect(hcmOf(listener(translateProxy(m, productpage), "virtualInbound")).commonHttpProtocolOptions?.idleTimeout).toEqual({ seconds: 30, nanos: 0 });
  });

  it("NETWORK_FILTER INSERT_BEFORE the HTTP connection manager", () => {
    const m = mesh(ef("net", `configPatches:
- applyTo: NETWORK_FILTER
  match: { context: SIDECAR_INBOUND, listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager } } } }
  patch:
    operation: INSERT_BEFORE
    value: { name: envoy.filters.network.local_ratelimit, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit, stat_prefix: conn, token_bucket: { max_tokens: 10, fill_interval: 1s } } }`));
    expect(listener(translateProxy(m, productpage), "virtualInbound").filterChains![0]!.filters!.map((f) => f.name)).toEqual(["envoy.filters.network.local_ratelimit", "envoy.filters.network.http_connection_manager"]);
  });
});

describe("EnvoyFilter ROUTE_CONFIGURATION, VIRTUAL_HOST, HTTP_ROUTE, CLUSTER", () => {
  it("ROUTE_CONFIGURATION MERGE by port; VIRTUAL_HOST ADD, MERGE by domain, REMOVE by name", () => {
    const m = mesh(ef("routes", `configPatches:
- applyTo: ROUTE_CONFIGURATION
  match: { context: SIDECAR_OUTBOUND, routeConfiguration: { portNumber: 9080 } }
  patch: { operation: MERGE, value: { request_headers_to_add: [{ header: { key: x-patched, value: "yes" } }] } }
- applyTo: VIRTUAL_HOST
  match: { context: SIDECAR_OUTBOUND, routeConfiguration: { name: "9080" } }
  patch: { operation: ADD, value: { name: added, domains: [added.example], routes: [{ match: { prefix: / }, direct_response: { status: 204 } }] } }
- applyTo: VIRTUAL_HOST
  match: { context: SIDECAR_OUTBOUND, routeConfiguration: { vhost: { domainName: ratings.bookinfo.svc.cluster.local } } }
  patch: { operation: MERGE, value: { include_attempt_count_in_response: true } }
- applyTo: VIRTUAL_HOST
  match: { context: SIDECAR_OUTBOUND, routeConfiguration: { vhost: { name: "details.bookinfo.svc.cluster.local:9080" } } }
  patch: { operation: REMOVE }`));
    const rc = route(translateProxy(m, productpage), "9080");
    expect(rc.requestHeadersToAdd!.map((h) => h.header?.key)).toEqual(["x-patched"]);
    const names = rc.virtualHosts!.map((v) => v.name);
    expect(names).toContain("added");
    expect(names).not.toContain("details.bookinfo.svc.cluster.local:9080");
    expect(rc.virtualHosts!.find((v) => v.name === "ratings.bookinfo.svc.cluster.local:9080")?.includeAttemptCountInResponse).toBe(true);
  });

  it("HTTP_ROUTE MERGE by route name and INSERT_FIRST; inbound inline routes by vhost name (Istio's inbound|http|PORT)", () => {
    const m = mesh(ef("http-routes", `configPatches:
- applyTo: HTTP_ROUTE
  match: { context: SIDECAR_OUTBOUND, routeConfiguration: { vhost: { name: "reviews.bookinfo.svc.cluster.local:9080", route: { name: bookinfo.reviews.0 } } } }
  patch: { operation: MERGE, value: { route: { timeout: 7s } } }
- applyTo: HTTP_ROUTE
  match: { context: SIDECAR_OUTBOUND, routeConfiguration: { vhost: { name: "reviews.bookinfo.svc.cluster.local:9080" } } }
  patch: { operation: INSERT_FIRST, value: { name: first, match: { prefix: /health }, direct_response: { status: 200 } } }
- applyTo: HTTP_ROUTE
  match: { context: SIDECAR_INBOUND, routeConfiguration: { vhost: { name: "inbound|http|9080", route: { action: ANY } } } }
  patch: { operation: MERGE, value: { request_headers_to_add: [{ header: { key: x-inbound, value: "1" } }] } }`));
    const out = translateProxy(m, productpage);
    const vh = route(out, "9080").virtualHosts!.find((v) => v.name === "reviews.bookinfo.svc.cluster.local:9080")!;
    expect(vh.routes![0]!.name).toBe("first");
    expect(vh.routes!.find((r) => r.name === "bookinfo.reviews.0")?.route?.timeout).toEqual({ seconds: 7, nanos: 0 });
    const inbound = hcmOf(listener(out, "virtualInbound")).routeConfig!;
    expect(inbound.virtualHosts![0]!.routes![0]!.requestHeadersToAdd!.map((h) => h.header?.key)).toEqual(["x-inbound"]);
  });

  it("CLUSTER MERGE by service and subset, REMOVE by name, ADD", () => {
    const m = mesh(ef("clusters", `configPatches:
- applyTo: CLUSTER
  match: { context: SIDECAR_OUTBOUND, cluster: { service: reviews.bookinfo.svc.cluster.local, subset: v2, portNumber: 9080 } }
  patch: { operation: MERGE, value: { connect_timeout: 2.5s } }
- applyTo: CLUSTER
  match: { cluster: { name: "outbound|9080||details.bookinfo.svc.cluster.local" } }
  patch: { operation: REMOVE }
- applyTo: CLUSTER
  patch: { operation: ADD, value: { name: extra, type: STATIC, connect_timeout: 1s, load_assignment: { cluster_name: extra, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 9 } } } }] }] } } }`));
    const out = translateProxy(m, productpage);
    expect(cluster(out, "outbound|9080|v2|reviews.bookinfo.svc.cluster.local")?.connectTimeout).toEqual({ seconds: 2, nanos: 500_000_000 });
    const v1 = "outbound|9080|v1|reviews.bookinfo.svc.cluster.local";
    expect(cluster(out, v1)?.connectTimeout).toEqual(cluster(translateProxy(mesh(""), productpage), v1)?.connectTimeout);
    expect(cluster(out, "outbound|9080||details.bookinfo.svc.cluster.local")).toBeUndefined();
    expect(resources(out, XDS_TYPES.cluster).filter((c) => c.name === "extra")).toHaveLength(1);
  });

  it("a snapshot whose patched routes name a missing cluster is refused by the consistency check", () => {
    const m = mesh(ef("bad", `configPatches:
- applyTo: HTTP_ROUTE
  match: { context: SIDECAR_OUTBOUND, routeConfiguration: { vhost: { name: "reviews.bookinfo.svc.cluster.local:9080" } } }
  patch: { operation: INSERT_FIRST, value: { match: { prefix: /x }, route: { cluster: no-such-cluster } } }`));
    expect(JSON.stringify(checkConsistency(Snapshot.build(translateProxy(m, productpage))))).toMatch(/no-such-cluster/);
  });
});

describe("EnvoyFilter validation (Istio's rules)", () => {
  const issuesOf = (spec: string) => read(ef("f", spec), "f.yaml").issues.map((i) => `${i.severity}: ${i.field}: ${i.message}`);

  it("an unknown @type and a wrong field type are errors naming the EnvoyFilter and the field", () => {
    const { issues } = read(ef("f", `configPatches:\n- applyTo: HTTP_FILTER\n  patch: { operation: ADD, value: { name: x, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.nope.v3.Nope } } }`), "f.yaml");
    expect(issues[0]).toMatchObject({ severity: "error", resource: "EnvoyFilter/bookinfo/f", field: "spec.configPatches[0].patch.value.typed_config.@type" });
    expect(issues[0]!.message).toMatch(/unknown type "type.googleapis.com\/envoy.extensions.filters.http.nope.v3.Nope"/);
    expect(issuesOf(`configPatches:\n- applyTo: CLUSTER\n  patch: { operation: MERGE, value: { connect_timeout: 5 } }`)).toEqual([
      expect.stringMatching(/^error: spec.configPatches\[0\].patch.value.connect_timeout: expected a duration in seconds/),
    ]);
    expect(issuesOf(`configPatches:\n- applyTo: HTTP_FILTER\n  patch: { operation: ADD, value: { name: x, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua, inline_code: 3 } } }`)[0]).toMatch(/^error: spec.configPatches\[0\].patch.value.typed_config.inline_code: expected a string/);
  });

  it("unknown fields are warnings (as Istio's), ignored operations are warnings", () => {
    expect(issuesOf(`configPatches:\n- applyTo: CLUSTER\n  patch: { operation: MERGE, value: { connect_timeot: 1s } }`)).toEqual([expect.stringMatching(/^warning: spec.configPatches\[0\].patch.value.connect_timeot: unknown field/)]);
    expect(issuesOf(`configPatches:\n- applyTo: ROUTE_CONFIGURATION\n  patch: { operation: ADD, value: { name: x } }`)).toEqual([expect.stringMatching(/^warning: .*operation: ADD has no effect with applyTo ROUTE_CONFIGURATION/)]);
  });

  it("applyTo, match and patch must line up", () => {
    expect(issuesOf(`configPatches:\n- applyTo: NETWORK_FILTER\n  match: { ${HCM_MATCH} }\n  patch: { operation: REMOVE }`)).toEqual([expect.stringMatching(/^error: .*subFilter: a subFilter match can be used with applyTo HTTP_FILTER only/)]);
    expect(issuesOf(`configPatches:\n- applyTo: CLUSTER\n  match: { listener: { portNumber: 80 } }\n  patch: { operation: REMOVE }`)).toEqual([expect.stringMatching(/^error: .*listener: applyTo CLUSTER needs a cluster match/)]);
    expect(issuesOf(`configPatches:\n- applyTo: HTTP_FILTER\n  patch: { operation: INSERT_FIRST }`)).toEqual([expect.stringMatching(/^error: .*value: required field is missing/)]);
    expect(issuesOf(`configPatches:\n- applyTo: HTTP_FILTER\n  match: { listener: { filterChain: { filter: { subFilter: { name: x } } } } }\n  patch: { operation: REMOVE }`)).toEqual([expect.stringMatching(/^error: .*filter.name: a filter match needs the name/)]);
    expect(issuesOf(`configPatches:\n- applyTo: HTTP_FILTER\n  match: { listener: { filterChain: { filter: { name: envoy.filters.network.tcp_proxy, subFilter: { name: x } } } } }\n  patch: { operation: REMOVE }`)).toEqual([expect.stringMatching(/^error: .*subFilter: a subFilter match needs the filter match to name envoy.filters.network.http_connection_manager/)]);
  });
});

describe("EnvoyFilter golden: istio.io's examples (testdata/in/envoy-filter.yaml)", () => {
  const { config, issues } = read(readFileSync(path.join(DATA, "in", "envoy-filter.yaml"), "utf8"), "envoy-filter.yaml");
  const model = buildMeshModel(config);
  const cases: [string, ProxyModel][] = [
    ["envoy-filter.productpage", productpage],
    ["envoy-filter.reviews", reviews],
    ["envoy-filter.ingressgateway", gateway],
  ];

  it("reads without errors", () => {
    expect(issues.filter((i) => i.severity === "error")).toEqual([]);
    expect(model.envoyFilters).toHaveLength(3);
  });

  for (const [name, proxy] of cases) {
    it(`${name}: matches testdata/out/${name}.json, is consistent, and Envoy accepts it`, async () => {
      const input = translateProxy(model, proxy);
      expect(checkConsistency(Snapshot.build(input))).toEqual([]);
      const out: Record<string, unknown[]> = {};
      for (const t of PUSH_ORDER) {
        const list = [...resources(input, t)].sort((a, b) => resourceName(t, a).localeCompare(resourceName(t, b)));
        if (list.length) out[TYPE_SHORT_NAMES[t]] = list.map((r) => resourceToJson(t, r as never));
      }
      const actual = JSON.stringify(out, null, 2) + "\n";
      const file = path.join(DATA, "out", `${name}.json`);
      if (process.env.UPDATE_GOLDEN || !existsSync(file)) writeFileSync(file, actual);
      expect(actual).toBe(readFileSync(file, "utf8"));
      const verdict = await validateWithEnvoy(input);
      expect(verdict.output).not.toMatch(/error/i);
      expect(verdict.ok).toBe(true);
    });
  }
});
