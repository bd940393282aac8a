// Weft's xDS server with the scale-benchmark fixture (same shape as bench/go/refserver):
// C EDS clusters svc-<i> with E endpoints each, L HTTP listeners listener-<k> on 0.0.0.0:10000+k
// whose RDS route route-<k> sends "/" to svc-<k % C>. One snapshot (key "all") serves every node.
// Prints "ready" once listening.
//
//   node --import tsx bench/storm/weft-fixture-server.ts --port 18001 --clusters 100 --endpoints 10 --listeners 20
import { parseArgs } from "node:util";
import { Snapshot } from "../../src/cache/snapshot.js";
import { buildEdsCluster, buildHttpListener, buildLoadAssignment, buildPrefixRoutes } from "../../src/envoy/builders.js";
import { XDS_TYPES } from "../../src/envoy/type-urls.js";
import { silentLogger } from "../../src/log/logger.js";
import { startControlPlane } from "../../src/runner/control-plane.js";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "18001" },
    clusters: { type: "string", default: "100" },
    endpoints: { type: "string", default: "10" },
    listeners: { type: "string", default: "20" },
  },
});
const C = Number(values.clusters);
const E = Number(values.endpoints);
const L = Number(values.listeners);

export function fixture(clusters: number, endpoints: number, listeners: number): Snapshot {
  const names = Array.from({ length: clusters }, (_, i) => `svc-${i}`);
  return Snapshot.build({
    [XDS_TYPES.cluster]: names.map((name) => buildEdsCluster({ name, connectTimeoutMs: 1000 })),
    [XDS_TYPES.endpoint]: names.map((name, i) =>
      buildLoadAssignment(
        name,
        Array.from({ length: endpoints }, (_, j) => ({ address: `10.1.${Math.floor(i / 250)}.${i % 250}`, port: 8080 + j })),
      ),
    ),
    [XDS_TYPES.listener]: Array.from({ length: listeners }, (_, k) =>
      buildHttpListener({ name: `listener-${k}`, address: "0.0.0.0", port: 10000 + k, routeConfigName: `route-${k}` }),
    ),
    [XDS_TYPES.route]: Array.from({ length: listeners }, (_, k) => buildPrefixRoutes(`route-${k}`, [{ prefix: "/", cluster: names[k % clusters] ?? "svc-0" }])),
  });
}

const cp = await startControlPlane({ logger: silentLogger(), xdsAddress: "127.0.0.1", xdsPort: Number(values.port), nodeKey: () => "all" });
if (!cp.cache.set("all", fixture(C, E, L))) {
  console.error("snapshot refused");
  process.exit(1);
}
cp.markConfigLoaded();
const stop = () => {
  void cp.close(0).finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
console.log("ready");
