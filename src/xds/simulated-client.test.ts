import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ClusterLoadAssignment } from "../../generated/envoy/config/endpoint/v3/endpoint.js";
import { Snapshot, type SnapshotInput } from "../cache/snapshot.js";
import { SnapshotCache } from "../cache/snapshot-cache.js";
import { buildEdsCluster, buildHttpListener, buildLoadAssignment, buildPrefixRoutes } from "../envoy/builders.js";
import { XDS_CODECS, XDS_TYPES } from "../envoy/type-urls.js";
import { silentLogger } from "../log/logger.js";
import { SimulatedClient } from "./simulated-client.js";
import { XdsMetrics } from "./xds-metrics.js";
import { XdsServer } from "./xds-server.js";

const NODE = "sidecar~10.0.0.1~app-1.default~default.svc.cluster.local";

function fixture(bPort: number): SnapshotInput {
  return {
    [XDS_TYPES.cluster]: ["a", "b"].map((name) => buildEdsCluster({ name })),
    [XDS_TYPES.endpoint]: [buildLoadAssignment("a", [{ address: "127.0.0.1", port: 9000 }]), buildLoadAssignment("b", [{ address: "127.0.0.1", port: bPort }])],
    [XDS_TYPES.listener]: [buildHttpListener({ name: "http", address: "127.0.0.1", port: 10000, routeConfigName: "http-routes" })],
    [XDS_TYPES.route]: [buildPrefixRoutes("http-routes", [{ prefix: "/", cluster: "a" }])],
  };
}

describe.each(["sotw", "delta"] as const)("simulated client (%s)", (mode) => {
  let cache: SnapshotCache;
  let server: XdsServer;
  let target: string;
  const clients: SimulatedClient[] = [];

  beforeEach(async () => {
    cache = new SnapshotCache();
    server = new XdsServer({ source: cache, metrics: new XdsMetrics(new Registry()), logger: silentLogger() });
    target = `127.0.0.1:${await server.listen("127.0.0.1", 0)}`;
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server.close(1000);
  });

  it("holds what it accepted with sizes, follows references, counts requests, sees a change", async () => {
    cache.set(NODE, Snapshot.build(fixture(9001)));
    const c = new SimulatedClient({ target, nodeId: NODE, mode, keepResponses: false });
    clients.push(c);
    c.start();
    const synced = () => c.names(XDS_TYPES.endpoint).join() === "a,b" && c.names(XDS_TYPES.route).join() === "http-routes";
    await c.waitFor(synced, 10_000, "initial sync");

    const b1 = c.held.get(XDS_TYPES.endpoint)!.get("b")!;
    const encodedB = (port: number) => Buffer.from(XDS_CODECS[XDS_TYPES.endpoint].encode(buildLoadAssignment("b", [{ address: "127.0.0.1", port }])).finish());
    expect(b1.body.equals(encodedB(9001))).toBe(true);
    expect(b1.size).toBe(encodedB(9001).length);
    expect(ClusterLoadAssignment.decode(c.held.get(XDS_TYPES.endpoint)!.get("a")!.body).clusterName).toBe("a");
    expect(c.held.get(XDS_TYPES.cluster)!.get("a")!.refs).toEqual(["a"]);
    expect(c.held.get(XDS_TYPES.listener)!.get("http")!.refs).toEqual(["http-routes"]);
    expect(c.responses).toEqual([]); // keepResponses: false
    expect(c.requestsSent).toBeGreaterThanOrEqual(4 + 4); // a subscription and an ACK per type at least

    cache.set(NODE, Snapshot.build(fixture(9002)));
    await c.waitFor(() => c.held.get(XDS_TYPES.endpoint)!.get("b")!.body.equals(encodedB(9002)), 10_000, "b's endpoints changed");
  });
});
