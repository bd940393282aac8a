// Checks generated resources with Envoy itself (`envoy --mode validate`): the snapshot is
// turned into a static bootstrap (routes inlined into their listeners, EDS clusters made
// STATIC with their endpoints) and written as a binary Bootstrap proto.
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import _m0 from "protobufjs/minimal.js";
import type { Cluster } from "../../generated/envoy/config/cluster/v3/cluster.js";
import { Cluster_DiscoveryType } from "../../generated/envoy/config/cluster/v3/cluster.js";
import type { ClusterLoadAssignment } from "../../generated/envoy/config/endpoint/v3/endpoint.js";
import type { Listener } from "../../generated/envoy/config/listener/v3/listener.js";
import type { FilterChain } from "../../generated/envoy/config/listener/v3/listener_components.js";
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import type { SnapshotInput } from "../cache/snapshot.js";
import { encodeMessage, packAny, unpackAny } from "./any.js";
import { findEnvoyBinary } from "./find-envoy.js";
import { EXTENSION_TYPES, XDS_TYPES } from "./type-urls.js";

function inlineRoutes(chain: FilterChain, routes: Map<string, RouteConfiguration>): FilterChain {
  return {
    ...chain,
    filters: (chain.filters ?? []).map((f) => {
      const hcm = unpackAny(EXTENSION_TYPES.httpConnectionManager, f.typedConfig);
      if (!hcm?.rds) return f;
      const route = routes.get(hcm.rds.routeConfigName ?? "") ?? { name: hcm.rds.routeConfigName };
      return { ...f, typedConfig: packAny(EXTENSION_TYPES.httpConnectionManager, { ...hcm, rds: undefined, routeConfig: route }) };
    }),
  };
}

/** Encodes a Bootstrap { static_resources { listeners, clusters } } (field numbers from bootstrap.proto). */
export function staticBootstrap(input: SnapshotInput): Buffer {
  const routes = new Map(((input[XDS_TYPES.route] ?? []) as RouteConfiguration[]).map((r) => [r.name ?? "", r]));
  const cla = new Map(((input[XDS_TYPES.endpoint] ?? []) as ClusterLoadAssignment[]).map((c) => [c.clusterName ?? "", c]));
  const listeners = ((input[XDS_TYPES.listener] ?? []) as Listener[]).map((l) => ({
    ...l,
    filterChains: (l.filterChains ?? []).map((c) => inlineRoutes(c, routes)),
    ...(l.defaultFilterChain ? { defaultFilterChain: inlineRoutes(l.defaultFilterChain, routes) } : {}),
  }));
  const clusters = ((input[XDS_TYPES.cluster] ?? []) as Cluster[]).map((c): Cluster => {
    if (c.type !== Cluster_DiscoveryType.EDS) return c;
    const edsName = c.edsClusterConfig?.serviceName || c.name!;
    return { ...c, type: Cluster_DiscoveryType.STATIC, edsClusterConfig: undefined, loadAssignment: { ...(cla.get(edsName) ?? {}), clusterName: c.name } };
  });
  const staticResources = _m0.Writer.create();
  for (const l of listeners) staticResources.uint32((1 << 3) | 2).bytes(encodeMessage(XDS_TYPES.listener, l));
  for (const c of clusters) staticResources.uint32((2 << 3) | 2).bytes(encodeMessage(XDS_TYPES.cluster, c));
  const bootstrap = _m0.Writer.create().uint32((2 << 3) | 2).bytes(staticResources.finish()).finish();
  return Buffer.from(bootstrap.buffer, bootstrap.byteOffset, bootstrap.byteLength);
}

/** Runs `envoy --mode validate` on the resources; resolves with Envoy's verdict and output. */
export async function validateWithEnvoy(input: SnapshotInput, binary?: string): Promise<{ ok: boolean; output: string }> {
  const envoy = binary ?? (await findEnvoyBinary());
  const dir = await mkdtemp(path.join(os.tmpdir(), "weft-validate-"));
  const file = path.join(dir, "bootstrap.pb");
  try {
    await writeFile(file, staticBootstrap(input));
    return await new Promise((resolve, reject) => {
      const child = spawn(envoy, ["--mode", "validate", "-c", file, "--disable-hot-restart", "-l", "error"], { stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      child.once("error", reject);
      child.once("exit", (code) => resolve({ ok: code === 0, output }));
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
