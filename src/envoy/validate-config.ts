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
import type { TransportSocket } from "../../generated/envoy/config/core/v3/base.js";
import type { Secret, SdsSecretConfig } from "../../generated/envoy/extensions/transport_sockets/tls/v3/secret.js";
import type { CommonTlsContext } from "../../generated/envoy/extensions/transport_sockets/tls/v3/tls.js";
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

/** An SdsSecretConfig without its config source: Envoy then takes the secret from static_resources.secrets. */
function staticSecretRef(ref: SdsSecretConfig): SdsSecretConfig {
  return { ...ref, sdsConfig: undefined };
}

function staticSecretsIn(common: CommonTlsContext | undefined): CommonTlsContext | undefined {
  if (!common) return common;
  const combined = common.combinedValidationContext;
  return {
    ...common,
    tlsCertificateSdsSecretConfigs: (common.tlsCertificateSdsSecretConfigs ?? []).map(staticSecretRef),
    ...(common.validationContextSdsSecretConfig ? { validationContextSdsSecretConfig: staticSecretRef(common.validationContextSdsSecretConfig) } : {}),
    ...(combined?.validationContextSdsSecretConfig ? { combinedValidationContext: { ...combined, validationContextSdsSecretConfig: staticSecretRef(combined.validationContextSdsSecretConfig) } } : {}),
  };
}

/**
 * A TLS transport socket whose SDS secrets are read from the bootstrap's static secrets (Envoy
 * 1.40's validate mode crashes on SDS over ADS, as there is no ADS to ask).
 */
function withStaticSecrets(socket: TransportSocket | undefined): TransportSocket | undefined {
  if (!socket?.typedConfig) return socket;
  const upstream = unpackAny(EXTENSION_TYPES.upstreamTlsContext, socket.typedConfig);
  if (upstream) return { ...socket, typedConfig: packAny(EXTENSION_TYPES.upstreamTlsContext, { ...upstream, commonTlsContext: staticSecretsIn(upstream.commonTlsContext) }) };
  const downstream = unpackAny(EXTENSION_TYPES.downstreamTlsContext, socket.typedConfig);
  if (downstream) return { ...socket, typedConfig: packAny(EXTENSION_TYPES.downstreamTlsContext, { ...downstream, commonTlsContext: staticSecretsIn(downstream.commonTlsContext) }) };
  return socket;
}

/** Encodes a Bootstrap { static_resources { listeners, clusters, secrets } } (field numbers from bootstrap.proto). */
export function staticBootstrap(input: SnapshotInput): Buffer {
  const routes = new Map(((input[XDS_TYPES.route] ?? []) as RouteConfiguration[]).map((r) => [r.name ?? "", r]));
  const cla = new Map(((input[XDS_TYPES.endpoint] ?? []) as ClusterLoadAssignment[]).map((c) => [c.clusterName ?? "", c]));
  const chain = (c: FilterChain): FilterChain => ({ ...inlineRoutes(c, routes), transportSocket: withStaticSecrets(c.transportSocket) });
  const listeners = ((input[XDS_TYPES.listener] ?? []) as Listener[]).map((l) => ({
    ...l,
    filterChains: (l.filterChains ?? []).map(chain),
    ...(l.defaultFilterChain ? { defaultFilterChain: chain(l.defaultFilterChain) } : {}),
  }));
  const clusters = ((input[XDS_TYPES.cluster] ?? []) as Cluster[]).map((c0): Cluster => {
    const c: Cluster = {
      ...c0,
      transportSocket: withStaticSecrets(c0.transportSocket),
      transportSocketMatches: (c0.transportSocketMatches ?? []).map((m) => ({ ...m, transportSocket: withStaticSecrets(m.transportSocket) })),
    };
    if (c.type !== Cluster_DiscoveryType.EDS) return c;
    const edsName = c.edsClusterConfig?.serviceName || c.name!;
    return { ...c, type: Cluster_DiscoveryType.STATIC, edsClusterConfig: undefined, loadAssignment: { ...(cla.get(edsName) ?? {}), clusterName: c.name } };
  });
  const staticResources = _m0.Writer.create();
  for (const l of listeners) staticResources.uint32((1 << 3) | 2).bytes(encodeMessage(XDS_TYPES.listener, l));
  for (const c of clusters) staticResources.uint32((2 << 3) | 2).bytes(encodeMessage(XDS_TYPES.cluster, c));
  for (const secret of (input[XDS_TYPES.secret] ?? []) as Secret[]) staticResources.uint32((3 << 3) | 2).bytes(encodeMessage(XDS_TYPES.secret, secret));
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
      // A node id and cluster: SDS secret configs (mesh mTLS) are refused without them.
      const child = spawn(envoy, ["--mode", "validate", "-c", file, "--disable-hot-restart", "-l", "error", "--service-node", "weft-validate", "--service-cluster", "weft-validate"], { stdio: ["ignore", "pipe", "pipe"] });
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
