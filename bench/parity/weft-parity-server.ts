// Weft's control plane serving the Envoy parity fixture (same resources as
// bench/go/parityserver, which is go-control-plane's integration-test shape): per version v,
// C EDS clusters cluster-v-<i> whose endpoint is 127.0.0.1:<upstream-base + v>, H HTTP listeners
// listener-<n> on 127.0.0.1:<base + n> whose RDS route route-v-<port> sends "/" to a cluster and
// adds "x-version: v", and T TCP listeners (tcp_proxy to a cluster). Config sources follow the
// mode: ADS for ads and delta-ads, the xds_cluster api_config_source (GRPC or DELTA_GRPC) for
// xds and delta. One snapshot (key "parity") serves every node.
//
// stdin:  "set <n>"  builds version v<n>, installs it (SnapshotCache.set) and prints
//                    "set <n> <unix-nanos> <build+set-µs>": the time set() returned, and how
//                    long building the snapshot and setting it took.
//         "nacks"    prints "nacks <count>" (NACKs Weft recorded so far; each is also logged on stderr).
// stdout: "ready" once listening. Exits on SIGTERM/SIGINT or when stdin closes.
// env:    PARITY_WEFT_LOG=debug|info|... turns Weft's JSON log on (to PARITY_WEFT_LOG_FILE or stderr).
//
//   node --import tsx bench/parity/weft-parity-server.ts --port 18001 --mode ads --clusters 4 --http 2 --tcp 2 --base 9000 --upstream-base 18100
import { createWriteStream } from "node:fs";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { Cluster } from "../../generated/envoy/config/cluster/v3/cluster.js";
import { Cluster_DiscoveryType } from "../../generated/envoy/config/cluster/v3/cluster.js";
import { HeaderValueOption_HeaderAppendAction } from "../../generated/envoy/config/core/v3/base.js";
import { ApiConfigSource_ApiType, ApiVersion, type ConfigSource } from "../../generated/envoy/config/core/v3/config_source.js";
import type { ClusterLoadAssignment } from "../../generated/envoy/config/endpoint/v3/endpoint.js";
import type { Listener } from "../../generated/envoy/config/listener/v3/listener.js";
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import { Snapshot } from "../../src/cache/snapshot.js";
import { packAny } from "../../src/envoy/any.js";
import { ADS_CONFIG_SOURCE, buildLoadAssignment, durationMs, socketAddress } from "../../src/envoy/builders.js";
import { EXTENSION_TYPES, XDS_TYPES } from "../../src/envoy/type-urls.js";
import { createLogger, silentLogger } from "../../src/log/logger.js";
import { startControlPlane } from "../../src/runner/control-plane.js";
import { PARITY_MODES, XDS_CLUSTER, isAggregated, type ParityMode } from "./modes.js";

export interface ParityShape {
  mode: ParityMode;
  clusters: number;
  http: number;
  tcp: number;
  /** Port of listener-0; listener-n listens on base + n (HTTP listeners first, then TCP). */
  base: number;
  /** Upstream port of version 0; version n's clusters point at upstreamBase + n. */
  upstreamBase: number;
}

export function parityConfigSource(mode: ParityMode): ConfigSource {
  if (isAggregated(mode)) return ADS_CONFIG_SOURCE;
  return {
    resourceApiVersion: ApiVersion.V3,
    apiConfigSource: {
      apiType: mode === "delta" ? ApiConfigSource_ApiType.DELTA_GRPC : ApiConfigSource_ApiType.GRPC,
      transportApiVersion: ApiVersion.V3,
      setNodeOnFirstMessageOnly: true,
      grpcServices: [{ envoyGrpc: { clusterName: XDS_CLUSTER } }],
    },
  };
}

/** Version n of the fixture, as go-control-plane's pkg/test/resource/v3 TestSnapshot.Generate names it. */
export function paritySnapshot(shape: ParityShape, n: number): Snapshot {
  const version = `v${n}`;
  const source = parityConfigSource(shape.mode);
  const upstream = shape.upstreamBase + n;
  const names = Array.from({ length: shape.clusters }, (_, i) => `cluster-${version}-${i}`);
  const clusters: Cluster[] = names.map((name) => ({
    name,
    connectTimeout: durationMs(5000),
    type: Cluster_DiscoveryType.EDS,
    edsClusterConfig: { edsConfig: source },
  }));
  const endpoints: ClusterLoadAssignment[] = names.map((name) => buildLoadAssignment(name, [{ address: "127.0.0.1", port: upstream }]));
  const listeners: Listener[] = [];
  const routes: RouteConfiguration[] = [];
  let port = shape.base;
  for (let i = 0; i < shape.http; i++, port++) {
    const routeName = `route-${version}-${port}`;
    routes.push({
      name: routeName,
      virtualHosts: [
        {
          name: routeName,
          domains: ["*"],
          routes: [
            {
              match: { prefix: "/" },
              route: { cluster: names[i % names.length]! },
              responseHeadersToAdd: [{ header: { key: "x-version", value: version }, appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD }],
            },
          ],
        },
      ],
    });
    listeners.push({
      name: `listener-${port - shape.base}`,
      address: socketAddress("127.0.0.1", port),
      filterChains: [
        {
          filters: [
            {
              name: "http_connection_manager",
              typedConfig: packAny(EXTENSION_TYPES.httpConnectionManager, {
                statPrefix: "http",
                rds: { routeConfigName: routeName, configSource: source },
                httpFilters: [{ name: "http-router", typedConfig: packAny(EXTENSION_TYPES.router, {}) }],
              }),
            },
          ],
        },
      ],
    });
  }
  for (let i = 0; i < shape.tcp; i++, port++) {
    listeners.push({
      name: `listener-${port - shape.base}`,
      address: socketAddress("127.0.0.1", port),
      filterChains: [{ filters: [{ name: "tcp-proxy", typedConfig: packAny(EXTENSION_TYPES.tcpProxy, { statPrefix: "tcp", cluster: names[i % names.length]! }) }] }],
    });
  }
  return Snapshot.build({
    [XDS_TYPES.cluster]: clusters,
    [XDS_TYPES.endpoint]: endpoints,
    [XDS_TYPES.listener]: listeners,
    [XDS_TYPES.route]: routes,
  });
}

/** Unix time in nanoseconds (microsecond resolution), comparable with Go's time.Now().UnixNano(). */
export function unixNanos(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "18001" },
      mode: { type: "string", default: "ads" },
      clusters: { type: "string", default: "4" },
      http: { type: "string", default: "2" },
      tcp: { type: "string", default: "2" },
      base: { type: "string", default: "9000" },
      "upstream-base": { type: "string", default: "18100" },
    },
  });
  const mode = values.mode as ParityMode;
  if (!PARITY_MODES.includes(mode)) throw new Error(`--mode must be one of ${PARITY_MODES.join(", ")}, got "${values.mode}"`);
  const shape: ParityShape = {
    mode,
    clusters: Number(values.clusters),
    http: Number(values.http),
    tcp: Number(values.tcp),
    base: Number(values.base),
    upstreamBase: Number(values["upstream-base"]),
  };
  if (!(shape.clusters >= 1)) throw new Error("--clusters must be >= 1");

  // Silent by default; PARITY_WEFT_LOG=debug (or info, ...) logs to PARITY_WEFT_LOG_FILE (default stderr).
  const logLevel = process.env.PARITY_WEFT_LOG;
  const logFile = process.env.PARITY_WEFT_LOG_FILE;
  const logger = logLevel ? createLogger({ level: logLevel, ...(logFile ? { destination: createWriteStream(logFile) } : {}) }) : silentLogger();
  const cp = await startControlPlane({ logger, xdsAddress: "127.0.0.1", xdsPort: Number(values.port), nodeKey: () => "parity" });
  cp.markConfigLoaded();
  let nacks = 0;
  cp.xds.registry.on("nack", (nack: { type: string; version: string; message: string }) => {
    nacks++;
    console.error(`NACK ${nack.type} version ${nack.version}: ${nack.message}`);
  });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void cp.close(0).finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);

  createInterface({ input: process.stdin })
    .on("line", (line) => {
      const fields = line.trim().split(/\s+/);
      if (fields.length === 2 && fields[0] === "set" && /^\d+$/.test(fields[1]!)) {
        const n = Number(fields[1]);
        const started = performance.now();
        const snapshot = paritySnapshot(shape, n);
        cp.cache.set("parity", snapshot); // throws (and exits) on an inconsistent snapshot
        const at = unixNanos();
        console.log(`set ${n} ${at} ${Math.round((performance.now() - started) * 1000)}`);
      } else if (fields.length === 1 && fields[0] === "nacks") {
        console.log(`nacks ${nacks}`);
      } else {
        console.error(`unknown command "${line}"`);
      }
    })
    .on("close", stop);
  console.log("ready");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
