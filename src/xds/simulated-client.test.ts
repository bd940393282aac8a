import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ClusterLoadAssignment } from "../../generated/envoy/config/endpoint/v3/endpoint.js";
import { Snapshot, type SnapshotInput } from "../cache/snapshot.js";
import { SnapshotCache } from "../cache/snapshot-cache.js";
import { buildEdsCluster, buildHttpListener, buildLoadAssignment, buildPrefixRoutes } from "../envoy/builders.js";
import { XDS_CODECS, XDS_TYPES } from "../envoy/type-urls.js";
import { silentLogger } from "../log/logger.js";
import { DecodedResources, SimulatedClient } from "./simulated-client.js";
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

describe.each(["sotw", "delta"] as const)("simulated client holding digests (%s)", (mode) => {
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

  it("holds SHA-1s and sizes (bytes only where keepBody says), follows references, counts requests; clients share decodes", async () => {
    cache.set(NODE, Snapshot.build(fixture(9001)));
    const decoded = new DecodedResources();
    const make = () => {
      const c = new SimulatedClient({ target, nodeId: NODE, mode, holdDigests: true, keepBody: (t, n) => t === XDS_TYPES.endpoint && n === "a", keepResponses: false, decoded });
      clients.push(c);
      c.start();
      return c;
    };
    const [c1, c2] = [make(), make()];
    const synced = (c: SimulatedClient) => c.names(XDS_TYPES.endpoint).join() === "a,b" && c.names(XDS_TYPES.route).join() === "http-routes";
    await Promise.all([c1, c2].map((c) => c.waitFor(() => synced(c), 10_000, "initial sync")));

    const b1 = c1.held.get(XDS_TYPES.endpoint)!.get("b")!;
    expect(b1.body.length).toBe(20); // a SHA-1, not the resource
    expect(b1.size).toBe(XDS_CODECS[XDS_TYPES.endpoint].encode(buildLoadAssignment("b", [{ address: "127.0.0.1", port: 9001 }])).finish().length);
    expect(ClusterLoadAssignment.decode(c1.held.get(XDS_TYPES.endpoint)!.get("a")!.body).clusterName).toBe("a"); // kept whole
    expect(c2.held.get(XDS_TYPES.endpoint)!.get("b")!.body.equals(b1.body)).toBe(true);
    expect(c1.held.get(XDS_TYPES.cluster)!.get("a")!.refs).toEqual(["a"]);
    expect(c1.held.get(XDS_TYPES.listener)!.get("http")!.refs).toEqual(["http-routes"]);
    expect(c1.responses).toEqual([]);
    expect(c1.requestsSent).toBeGreaterThanOrEqual(4 + 4); // a subscription and an ACK per type at least

    cache.set(NODE, Snapshot.build(fixture(9002)));
    await c1.waitFor(() => !c1.held.get(XDS_TYPES.endpoint)!.get("b")!.body.equals(b1.body), 10_000, "b's endpoints changed");
    expect(c1.held.get(XDS_TYPES.endpoint)!.get("b")!.body.length).toBe(20);
  });
});

describe("DecodedResources", () => {
  it("is bounded: full, it starts over", () => {
    const d = new DecodedResources(1);
    d.set("k1", { name: "one" });
    expect(d.get("k1")?.name).toBe("one");
    d.set("k2", { name: "two" });
    expect(d.get("k1")).toBeUndefined();
    expect(d.get("k2")?.name).toBe("two");
  });
});
