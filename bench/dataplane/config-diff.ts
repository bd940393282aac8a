// What one sidecar's config has that another's does not, from two Envoy /config_dumps: used by
// bench/dataplane/run.ts to say what Weft's config adds over the minimal hand-written one.
//
// The comparison follows the request's path: in the client sidecar the outbound capture
// listener (15001), the filter chain that takes port 8080 (or its only one), the route that
// chain uses (inline or RDS) and the cluster that route names; in the server sidecar the
// inbound capture listener (15006), its TLS filter chain for 8080, route and cluster. Each of
// those is flattened to `a.b[0].c = value` leaves; the report lists leaves only one side has
// and leaves that differ, plus filter names, and then what is off the path (other listeners,
// filter chains and clusters, bootstrap sections).
import { asArray, asObject, asString, type ConfigDump, type JsonObject, type JsonValue } from "../../src/envoy/envoy-process.js";

export interface PathPart {
  /** Flattened leaves: "path" -> JSON text of the value. */
  leaves: Record<string, string>;
}

export interface EnvoyConfigSummary {
  listener?: { name: string; listenerFilters: string[]; chains: string[]; leaves: Record<string, string> };
  chain?: { name: string; networkFilters: string[]; httpFilters: string[]; hcm: Record<string, string>; tls: Record<string, string> };
  route?: PathPart & { name: string };
  cluster?: PathPart & { name: string };
  otherListeners: string[];
  otherClusters: string[];
  bootstrapSections: string[];
}

const HCM = "envoy.filters.network.http_connection_manager";

function flatten(value: JsonValue | undefined, prefix = "", out: Record<string, string> = {}): Record<string, string> {
  if (value === undefined) return out;
  if (Array.isArray(value)) {
    if (value.length === 0) out[prefix] = "[]";
    value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out));
  } else if (value !== null && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 0 && prefix) out[prefix] = "{}";
    for (const k of keys) flatten(value[k], prefix ? `${prefix}.${k}` : k, out);
  } else out[prefix] = JSON.stringify(value);
  return out;
}

/**
 * Certificates from SDS (Weft) and from files (minimal) are the same thing on the data path:
 * fold both into one leaf each so the diff shows real differences (SAN checks, ALPN, SNI).
 */
function normalizeTls(leaves: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k0, v] of Object.entries(leaves)) {
    let k = k0.replace(/^transport_socket_matches\[0\]\.transport_socket\./, "transport_socket.");
    if (/\.@type$/.test(k) && k.includes("transport_socket")) continue;
    k = k.replace("combined_validation_context.default_validation_context.", "validation_context.");
    const cert = /^(.*common_tls_context)\.(tls_certificate_sds_secret_configs|tls_certificates)\[0\]/.exec(k);
    if (cert) {
      out[`${cert[1]}.certificate`] = cert[2] === "tls_certificates" ? '"from files"' : '"over SDS"';
      continue;
    }
    const trust = /^(.*common_tls_context)\.(combined_validation_context\.validation_context_sds_secret_config|validation_context\.trusted_ca)\./.exec(k);
    if (trust) {
      out[`${trust[1]}.validation_context.trusted_ca`] = trust[2]!.startsWith("combined") ? '"over SDS"' : '"from a file"';
      continue;
    }
    out[k] = v;
  }
  return out;
}

function without(o: JsonObject | undefined, ...keys: string[]): JsonObject {
  const copy: JsonObject = { ...(o ?? {}) };
  for (const k of keys) delete copy[k];
  return copy;
}

function section(dump: ConfigDump, type: string): JsonObject | undefined {
  return dump.configs.find((c) => asString(c["@type"])?.endsWith(`.${type}`));
}

function listenersOf(dump: ConfigDump): JsonObject[] {
  const s = section(dump, "ListenersConfigDump");
  const dynamic = asArray(s?.dynamic_listeners).map((l) => asObject(asObject(asObject(l)?.active_state)?.listener));
  const statics = asArray(s?.static_listeners).map((l) => asObject(asObject(l)?.listener));
  return [...dynamic, ...statics].filter((l): l is JsonObject => !!l);
}

function clustersOf(dump: ConfigDump): JsonObject[] {
  const s = section(dump, "ClustersConfigDump");
  return [...asArray(s?.dynamic_active_clusters), ...asArray(s?.static_clusters)].map((c) => asObject(asObject(c)?.cluster)).filter((c): c is JsonObject => !!c);
}

function routeConfigsOf(dump: ConfigDump): JsonObject[] {
  const s = section(dump, "RoutesConfigDump");
  return [...asArray(s?.dynamic_route_configs), ...asArray(s?.static_route_configs)].map((r) => asObject(asObject(r)?.route_config)).filter((r): r is JsonObject => !!r);
}

function port(l: JsonObject): number | undefined {
  const p = asObject(asObject(l.address)?.socket_address)?.port_value;
  return typeof p === "number" ? p : undefined;
}

function names(list: JsonValue | undefined): string[] {
  return asArray(list).map((x) => asString(asObject(x)?.name) ?? "?");
}

/** The chain a connection to `dstPort` takes (TLS preferred when `tls`). */
function pickChain(l: JsonObject, dstPort: number, tls: boolean): JsonObject | undefined {
  const chains = asArray(l.filter_chains).map(asObject).filter((c): c is JsonObject => !!c);
  const matching = chains.filter((c) => {
    const m = asObject(c.filter_chain_match);
    const p = m?.destination_port;
    return p === undefined || p === dstPort;
  });
  const withTls = matching.filter((c) => !!c.transport_socket || asString(asObject(c.filter_chain_match)?.transport_protocol) === "tls");
  return (tls && withTls[0]) || matching[0] || chains[0];
}

/**
 * `role` "client": outbound listener 15001, chain for `dstPort`; "server": inbound listener
 * 15006, the TLS chain for `dstPort`.
 */
export function summarizeDump(dump: ConfigDump, role: "client" | "server", dstPort = 8080): EnvoyConfigSummary {
  const listeners = listenersOf(dump);
  const clusters = clustersOf(dump);
  const listener = listeners.find((l) => port(l) === (role === "client" ? 15001 : 15006));
  const chain = listener ? pickChain(listener, dstPort, role === "server") : undefined;
  const hcmFilter = asArray(chain?.filters).map(asObject).find((f) => asString(f?.name) === HCM);
  const hcm = asObject(hcmFilter?.typed_config);
  const routeName = asString(asObject(hcm?.rds)?.route_config_name);
  const route = asObject(hcm?.route_config) ?? routeConfigsOf(dump).find((r) => asString(r.name) === routeName);
  // The route entry the request takes: the first virtual host that is not a catch-all passthrough.
  const vhosts = asArray(route?.virtual_hosts).map(asObject).filter((v): v is JsonObject => !!v);
  const vhost = vhosts.find((v) => asArray(v.routes).some((r) => !/Passthrough|BlackHole/.test(asString(asObject(asObject(r)?.route)?.cluster) ?? ""))) ?? vhosts[0];
  const routeEntry = asObject(asArray(vhost?.routes)[0]);
  const clusterName = asString(asObject(routeEntry?.route)?.cluster);
  const cluster = clusters.find((c) => asString(c.name) === clusterName);
  const bootstrap = asObject(section(dump, "BootstrapConfigDump")?.bootstrap);
  return {
    ...(listener && {
      listener: {
        name: asString(listener.name) ?? "?",
        listenerFilters: names(listener.listener_filters),
        chains: [...asArray(listener.filter_chains).map((c) => asString(asObject(c)?.name) ?? "(unnamed)"), ...(listener.default_filter_chain ? ["default_filter_chain"] : [])],
        leaves: flatten(without(listener, "name", "filter_chains", "listener_filters", "default_filter_chain", "@type")),
      },
    }),
    ...(chain && {
      chain: {
        name: asString(chain.name) ?? "(unnamed)",
        networkFilters: names(chain.filters),
        httpFilters: names(hcm?.http_filters),
        hcm: flatten(without(hcm, "http_filters", "route_config", "rds", "stat_prefix", "@type")),
        tls: normalizeTls(flatten(asObject(asObject(chain.transport_socket)?.typed_config))),
      },
    }),
    ...(route && {
      route: {
        name: asString(route.name) ?? "?",
        leaves: {
          ...flatten(without(route, "name", "virtual_hosts", "@type"), "route_configuration"),
          [`virtual_hosts`]: String(vhosts.length),
          ...flatten(without(vhost, "name", "routes"), "virtual_host"),
          ...flatten(without(routeEntry, "name"), "route"),
        },
      },
    }),
    ...(cluster && {
      cluster: { name: clusterName ?? "?", leaves: normalizeTls(flatten(without(cluster, "name", "@type", "load_assignment", "eds_cluster_config"))) },
    }),
    otherListeners: listeners.filter((l) => l !== listener).map((l) => `${asString(l.name)} (port ${port(l)})`),
    otherClusters: clusters.filter((c) => c !== cluster).map((c) => asString(c.name) ?? "?"),
    bootstrapSections: Object.keys(bootstrap ?? {}),
  };
}

function leafDiff(what: string, a: Record<string, string>, b: Record<string, string>, ignore: RegExp = /^$/): string[] {
  const out: string[] = [];
  const onlyA = Object.keys(a).filter((k) => !(k in b) && !ignore.test(k));
  const onlyB = Object.keys(b).filter((k) => !(k in a) && !ignore.test(k));
  const differ = Object.keys(a).filter((k) => k in b && a[k] !== b[k] && !ignore.test(k));
  const show = (o: Record<string, string>, keys: string[]) => keys.map((k) => `\`${k}=${o[k]!.length > 80 ? o[k]!.slice(0, 77) + "..." : o[k]}\``).join(", ");
  if (onlyA.length) out.push(`${what}, only in Weft's: ${show(a, onlyA)}`);
  if (differ.length) out.push(`${what}, different: ${differ.map((k) => `\`${k}\` ${a[k]} (Weft) vs ${b[k]} (minimal)`).join(", ")}`);
  if (onlyB.length) out.push(`${what}, only in the minimal: ${show(b, onlyB)}`);
  return out;
}

function listDiff(what: string, a: string[], b: string[]): string[] {
  const extra = a.filter((x) => !b.includes(x));
  const missing = b.filter((x) => !a.includes(x));
  if (!extra.length && !missing.length) return [`${what}: the same (${a.join(", ") || "none"})`];
  return [`${what}: Weft [${a.join(", ")}] vs minimal [${b.join(", ")}]${extra.length ? `; extra in Weft: **${extra.join(", ")}**` : ""}${missing.length ? `; only in the minimal: ${missing.join(", ")}` : ""}`];
}

/** Human-readable lines: what `weft` has that `minimal` does not (and the reverse, where it matters). */
export function diffSummaries(weft: EnvoyConfigSummary, minimal: EnvoyConfigSummary): string[] {
  const out: string[] = [];
  if (weft.listener && minimal.listener) {
    out.push(...listDiff(`listener filters (${weft.listener.name} vs ${minimal.listener.name})`, weft.listener.listenerFilters, minimal.listener.listenerFilters));
    out.push(`filter chains in that listener: Weft ${weft.listener.chains.length} (${weft.listener.chains.join(", ")}) vs minimal ${minimal.listener.chains.length}`);
    out.push(...leafDiff("listener settings", weft.listener.leaves, minimal.listener.leaves, /^address\./));
  }
  if (weft.chain && minimal.chain) {
    out.push(`filter chain on the path: Weft \`${weft.chain.name}\``);
    out.push(...listDiff("network filters", weft.chain.networkFilters, minimal.chain.networkFilters));
    out.push(...listDiff("HTTP filters", weft.chain.httpFilters, minimal.chain.httpFilters));
    out.push(...leafDiff("HCM settings", weft.chain.hcm, minimal.chain.hcm, /^access_log/));
    if (Object.keys(weft.chain.hcm).some((k) => k.startsWith("access_log"))) out.push("HCM: Weft has an access log");
    if (Object.keys(minimal.chain.hcm).some((k) => k.startsWith("access_log"))) out.push("HCM: the minimal has an access log");
    out.push(...leafDiff("downstream TLS context", weft.chain.tls, minimal.chain.tls));
  }
  if (weft.route && minimal.route) out.push(`route: Weft \`${weft.route.name}\` vs minimal \`${minimal.route.name}\``, ...leafDiff("route", weft.route.leaves, minimal.route.leaves, /^virtual_host\.domains/));
  if (weft.cluster && minimal.cluster) out.push(`cluster on the path: Weft \`${weft.cluster.name}\` vs minimal \`${minimal.cluster.name}\``, ...leafDiff("cluster", weft.cluster.leaves, minimal.cluster.leaves));
  out.push(`off the path: listeners Weft [${weft.otherListeners.join(", ")}] vs minimal [${minimal.otherListeners.join(", ")}]; clusters Weft [${weft.otherClusters.join(", ")}] vs minimal [${minimal.otherClusters.join(", ")}]`);
  out.push(...listDiff("bootstrap sections", weft.bootstrapSections, minimal.bootstrapSections));
  return out;
}
