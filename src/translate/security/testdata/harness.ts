// Test support for the security translators (not shipped code): reads a case's Istio YAML
// through the real validator, wraps filters in a minimal Envoy config (a listener whose
// HTTP connection manager answers every request with a direct 200, or a TCP proxy to a static
// cluster), and renders resources as readable golden JSON. Used by the unit goldens and by
// e2e/security-filters.e2e.test.ts.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Cluster } from "../../../../generated/envoy/config/cluster/v3/cluster.js";
import { Cluster_DiscoveryType } from "../../../../generated/envoy/config/cluster/v3/cluster.js";
import type { Listener } from "../../../../generated/envoy/config/listener/v3/listener.js";
import type { Filter } from "../../../../generated/envoy/config/listener/v3/listener_components.js";
import type { HttpFilter } from "../../../../generated/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js";
import { formatIssue } from "../../../api/types.js";
import { SECURITY_GROUP, type SecurityResource } from "../../../api/security/types.js";
import { parseDocuments, validateResource } from "../../../api/validate-resource.js";
import { packAny } from "../../../envoy/any.js";
import { buildLoadAssignment, durationMs, socketAddress } from "../../../envoy/builders.js";
import { resourceToJson } from "../../../envoy/readable-json.js";
import { EXTENSION_TYPES, XDS_TYPES } from "../../../envoy/type-urls.js";

export const TESTDATA = path.dirname(new URL(import.meta.url).pathname);

/** The resources of testdata/in/<name>.yaml, validated; throws on any validation error. */
export function loadCase(name: string): SecurityResource[] {
  const file = path.join(TESTDATA, "in", `${name}.yaml`);
  return loadSecurityYaml(readFileSync(file, "utf8"), file);
}

export function loadSecurityYaml(text: string, file = "inline.yaml"): SecurityResource[] {
  const { docs, issues } = parseDocuments(text, file);
  const resources: SecurityResource[] = [];
  for (const { document, value } of docs) {
    const result = validateResource(value, { file, document });
    issues.push(...result.issues.filter((i) => i.severity === "error"));
    if (result.resource?.apiVersion.startsWith(`${SECURITY_GROUP}/`)) resources.push(result.resource as SecurityResource);
  }
  if (issues.length) throw new Error(`invalid test input:\n${issues.map(formatIssue).join("\n")}`);
  return resources;
}

export const BACKEND_CLUSTER = "backend";

/**
 * An HTTP listener: the given filters, then the router. Every request gets a direct 200 "ok",
 * or, with `cluster`, is routed to that cluster.
 */
export function httpListener(opts: { name: string; port: number; filters: readonly HttpFilter[]; cluster?: string }): Listener {
  return {
    name: opts.name,
    address: socketAddress("127.0.0.1", opts.port),
    filterChains: [
      {
        filters: [
          {
            name: "envoy.filters.network.http_connection_manager",
            typedConfig: packAny(EXTENSION_TYPES.httpConnectionManager, {
              statPrefix: opts.name,
              routeConfig: {
                name: opts.name,
                virtualHosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "/" }, ...(opts.cluster ? { route: { cluster: opts.cluster } } : { directResponse: { status: 200, body: { inlineString: "ok" } } }) }] }],
              },
              httpFilters: [...opts.filters, { name: "envoy.filters.http.router", typedConfig: packAny(EXTENSION_TYPES.router, {}) }],
            }),
          },
        ],
      },
    ],
  };
}

/** A TCP listener: the given network filters, then a TCP proxy to BACKEND_CLUSTER. */
export function tcpListener(opts: { name: string; port: number; filters: readonly Filter[] }): Listener {
  return {
    name: opts.name,
    address: socketAddress("127.0.0.1", opts.port),
    filterChains: [
      {
        filters: [...opts.filters, { name: "envoy.filters.network.tcp_proxy", typedConfig: packAny(EXTENSION_TYPES.tcpProxy, { statPrefix: opts.name, cluster: BACKEND_CLUSTER }) }],
      },
    ],
  };
}

export function backendCluster(port: number): Cluster {
  return { name: BACKEND_CLUSTER, type: Cluster_DiscoveryType.STATIC, connectTimeout: durationMs(1000), loadAssignment: buildLoadAssignment(BACKEND_CLUSTER, [{ address: "127.0.0.1", port }]) };
}

/** Golden JSON: listeners and clusters (sorted by name), every Any expanded. */
export function goldenJson(resources: { listeners: readonly Listener[]; clusters: readonly Cluster[] }): string {
  const byName = <T extends { name?: string | undefined }>(list: readonly T[]) => [...list].sort((a, b) => (a.name ?? "").localeCompare(b.name ?? ""));
  const out: Record<string, unknown[]> = {};
  if (resources.clusters.length) out["cds"] = byName(resources.clusters).map((c) => resourceToJson(XDS_TYPES.cluster, c));
  out["lds"] = byName(resources.listeners).map((l) => resourceToJson(XDS_TYPES.listener, l));
  return JSON.stringify(out, null, 2) + "\n";
}

/** Compares with testdata/out/<name>.json; writes it when missing or when UPDATE_GOLDEN is set. Returns [actual, expected]. */
export function readGolden(name: string, actual: string): [string, string] {
  const file = path.join(TESTDATA, "out", `${name}.json`);
  if (process.env.UPDATE_GOLDEN || !existsSync(file)) writeFileSync(file, actual);
  return [actual, readFileSync(file, "utf8")];
}
