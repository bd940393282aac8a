// Wires the layers into one running control plane: snapshot cache, xDS server, metrics and
// the admin server. Used by `weft serve`, `weft demo` and the e2e tests alike.
import { hostname } from "node:os";
import type { FastifyInstance } from "fastify";
import { Registry, collectDefaultMetrics } from "prom-client";
import type { Metadata } from "@grpc/grpc-js";
import type { Node } from "../../generated/envoy/config/core/v3/base.js";
import { SnapshotCache } from "../cache/snapshot-cache.js";
import { buildAdminServer, type RootRotationAdmin } from "../admin/admin-server.js";
import type { ConfigProblemsReport } from "./config-problems.js";
import type { Logger } from "../log/logger.js";
import { XdsMetrics } from "../xds/xds-metrics.js";
import { XdsServer } from "../xds/xds-server.js";
import type { AdmitStream } from "../xds/stream-base.js";
import type { XdsLimits } from "../xds/xds-limits.js";
import { isLoopbackAddress } from "./bind-address.js";
import type { MeshModel } from "../model/mesh-model.js";
import type { PrometheusEdgeSource } from "../admin/prometheus-edge-source.js";

export interface ControlPlaneOptions {
  logger: Logger;
  xdsAddress?: string;
  xdsPort?: number;
  adminAddress?: string;
  adminPort?: number;
  /** Serve the admin server's privileged routes (debug, console, POST /ca/rotate-root) to non-loopback peers too. */
  adminOpenDebug?: boolean;
  nodeKey?: (node: Node, principal: string | undefined) => string;
  /** Admission of each xDS stream (see MeshController.admit); takes precedence over nodeKey. */
  admit?: AdmitStream;
  /** Who a stream is (see XdsServerOptions.authenticate); may answer later (a TokenReview). */
  authenticate?: (metadata: Metadata) => string | undefined | Promise<string | undefined>;
  xdsTls?: { certChainPem: string; privateKeyPem: string };
  /** Bytes of xDS responses in flight across all streams (see PushBudget); default 256 MiB. */
  maxInflightBytes?: number;
  /** Bounds on what xDS clients may send and make the server keep (see xds-limits.ts). */
  xdsLimits?: Partial<XdsLimits>;
  certificateOf?: (snapshotKey: string) => { identity: string; serial: string; notAfter: string } | undefined;
  /** The CA's root rotation for the admin API (GET /debug/ca, POST /ca/rotate-root); looked up per request. */
  rootRotation?: () => RootRotationAdmin | undefined;
  /** Registry to use (e.g. one other components already registered metrics in). */
  metricsRegistry?: Registry;
  /** Validation problems of the config in force, for the admin server. */
  configProblems?: () => ConfigProblemsReport;
  /** The mesh model in force, for the admin server's console. */
  meshModel?: () => MeshModel | undefined;
  /** The console's edges from Prometheus instead of the proxies' own stats. */
  prometheus?: PrometheusEdgeSource;
  /** Collect Node.js process metrics (off in tests that run several control planes). */
  processMetrics?: boolean;
}

export interface ControlPlane {
  cache: SnapshotCache;
  xds: XdsServer;
  admin: FastifyInstance;
  metrics: XdsMetrics;
  metricsRegistry: Registry;
  xdsPort: number;
  adminPort: number;
  /** Marks the first configuration as loaded (readiness). */
  markConfigLoaded(): void;
  close(graceMs?: number): Promise<void>;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.logger;
  const metricsRegistry = opts.metricsRegistry ?? new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: metricsRegistry, prefix: "weft_" });
  const metrics = new XdsMetrics(metricsRegistry);
  const cache = new SnapshotCache({
    onSet: (key, snap) => {
      metrics.snapshotsSet.inc();
      log.debug({ key, version: snap.version }, "snapshot set");
    },
    onRefused: (key, err) => {
      metrics.snapshotsRefused.inc();
      log.error({ key, problems: err.problems }, err.message);
    },
  });
  const xds = new XdsServer({ source: cache, metrics, logger: log, nodeKey: opts.nodeKey, admit: opts.admit, authenticate: opts.authenticate, tls: opts.xdsTls, controlPlaneId: `weft@${hostname()}`, maxInflightBytes: opts.maxInflightBytes, limits: opts.xdsLimits });
  let configLoaded = false;
  let xdsListening = false;
  const admin = buildAdminServer({
    metricsRegistry,
    proxies: xds.registry,
    cache,
    certificateOf: (key) => opts.certificateOf?.(key),
    rootRotation: () => opts.rootRotation?.(),
    ...(opts.configProblems ? { configProblems: opts.configProblems } : {}),
    ...(opts.meshModel ? { meshModel: opts.meshModel } : {}),
    ...(opts.prometheus ? { prometheus: opts.prometheus } : {}),
    openDebug: opts.adminOpenDebug ?? false,
    isReady: () =>
      !xdsListening ? { ready: false, reason: "xDS server not listening" } : !configLoaded ? { ready: false, reason: "configuration not loaded yet" } : { ready: true },
  });
  const xdsAddress = opts.xdsAddress ?? "127.0.0.1";
  const xdsPort = await xds.listen(xdsAddress, opts.xdsPort ?? 0);
  xdsListening = true;
  if (!opts.xdsTls && !isLoopbackAddress(xdsAddress)) {
    log.warn(
      { xdsAddress, xdsPort },
      `xDS is served in PLAINTEXT on a non-loopback address (${xdsAddress}): anyone who can connect reads the whole mesh configuration, and the node metadata clients send (namespace, labels) is trusted as they send it. Use --security, or bind 127.0.0.1.`,
    );
  }
  try {
    await admin.listen({ host: opts.adminAddress ?? "127.0.0.1", port: opts.adminPort ?? 0 });
  } catch (err) {
    await xds.close(0);
    throw new Error(`admin server cannot listen on ${opts.adminAddress ?? "127.0.0.1"}:${opts.adminPort ?? 0}: ${(err as Error).message}`);
  }
  const address = admin.server.address();
  const adminPort = typeof address === "object" && address ? address.port : 0;
  log.info({ port: adminPort }, "admin server listening");
  return {
    cache,
    xds,
    admin,
    metrics,
    metricsRegistry,
    xdsPort,
    adminPort,
    markConfigLoaded: () => {
      configLoaded = true;
    },
    async close(graceMs = 5000) {
      await xds.close(graceMs);
      await admin.close();
      log.info("control plane stopped");
    },
  };
}
