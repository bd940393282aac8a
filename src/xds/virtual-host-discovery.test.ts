// VHDS on the wire (src/cache/virtual-host-discovery.ts, delta-stream.ts): a delta ADS client
// gets route configurations with `vhds` and their virtual hosts as VirtualHost resources, one
// changed virtual host as one resource, a removed one as a removal, a new route configuration's
// virtual hosts only after the route configuration; a SotW client of the same snapshot gets
// whole route configurations. (Real Envoy: e2e/vhds.e2e.test.ts.)
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import { VirtualHost } from "../../generated/envoy/config/route/v3/route_components.js";
import { Snapshot, type SnapshotInput } from "../cache/snapshot.js";
import { SnapshotCache } from "../cache/snapshot-cache.js";
import { virtualHostResourceName } from "../cache/virtual-host-discovery.js";
import { buildEdsCluster, buildHttpListener, buildLoadAssignment } from "../envoy/builders.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import { silentLogger } from "../log/logger.js";
import { SimulatedClient } from "./simulated-client.js";
import { XdsMetrics } from "./xds-metrics.js";
import { XdsServer } from "./xds-server.js";

const NODE = "sidecar~10.0.0.1~app-1.default~default.svc.cluster.local";

const vh = (name: string, cluster: string): VirtualHost => ({ name, domains: [name], routes: [{ match: { prefix: "/" }, route: { cluster } }] });

function input(routes: Record<string, VirtualHost[]>): SnapshotInput {
  return {
    [XDS_TYPES.cluster]: ["a", "b"].map((name) => buildEdsCluster({ name })),
    [XDS_TYPES.endpoint]: ["a", "b"].map((name) => buildLoadAssignment(name, [{ address: "127.0.0.1", port: 9000 }])),
    [XDS_TYPES.listener]: Object.keys(routes).map((rc, i) => buildHttpListener({ name: `l-${rc}`, address: "127.0.0.1", port: 10000 + i, routeConfigName: rc })),
    [XDS_TYPES.route]: Object.entries(routes).map(([name, virtualHosts]) => ({ name, virtualHosts })),
  };
}

describe("VHDS (delta ADS) next to SotW", () => {
  let cache: SnapshotCache;
  let server: XdsServer;
  let target: string;
  const clients: SimulatedClient[] = [];
  const client = (mode: "sotw" | "delta") => {
    const c = new SimulatedClient({ target, nodeId: NODE, mode });
    clients.push(c);
    c.start();
    return c;
  };
  const set = (routes: Record<string, VirtualHost[]>) => cache.set(NODE, Snapshot.build(input(routes), { virtualHostDiscovery: true }));

  beforeEach(async () => {
    cache = new SnapshotCache();
    server = new XdsServer({ source: cache, metrics: new XdsMetrics(new Registry()), logger: silentLogger() });
    target = `127.0.0.1:${await server.listen("127.0.0.1", 0)}`;
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server.close(1000);
  });

  it("sends changed virtual hosts alone, removals as removals, a new route configuration's virtual hosts after it", async () => {
    const routes = { r1: [vh("x.example", "a"), vh("y.example", "a"), vh("z/ns.example", "a")] };
    set(routes);
    const delta = client("delta");
    const sotw = client("sotw");
    const names = [virtualHostResourceName("r1", "x.example"), virtualHostResourceName("r1", "y.example"), "r1/z%2Fns.example"];
    expect(virtualHostResourceName("r1", "z/ns.example")).toBe("r1/z%2Fns.example");
    await delta.waitFor(() => delta.names(XDS_TYPES.virtualHost).join() === names.join(), 10_000, "virtual hosts");
    await sotw.waitFor(() => sotw.names(XDS_TYPES.route).join() === "r1", 10_000, "routes");
    const rc = RouteConfiguration.decode(delta.held.get(XDS_TYPES.route)!.get("r1")!.body);
    expect(rc.virtualHosts).toEqual([]);
    expect(rc.vhds?.configSource?.ads).toBeDefined();
    expect(VirtualHost.decode(delta.held.get(XDS_TYPES.virtualHost)!.get(names[2]!)!.body).name).toBe(names[2]);
    expect(RouteConfiguration.decode(sotw.held.get(XDS_TYPES.route)!.get("r1")!.body).virtualHosts!.map((v) => v.name)).toEqual(["x.example", "y.example", "z/ns.example"]);
    expect(sotw.names(XDS_TYPES.virtualHost)).toEqual([]);

    // One virtual host changes: one VirtualHost resource, no route configuration.
    const seen = delta.responses.length;
    set({ r1: [routes.r1[0]!, vh("y.example", "b"), routes.r1[2]!] });
    await delta.waitFor(() => delta.responses.slice(seen).some((r) => r.typeUrl === XDS_TYPES.virtualHost), 10_000, "virtual host update");
    const after = delta.responses.slice(seen);
    expect(after.map((r) => [r.typeUrl, r.names, r.removed])).toEqual([[XDS_TYPES.virtualHost, [names[1]], []]]);

    // One goes: a removal.
    const seen2 = delta.responses.length;
    set({ r1: [routes.r1[0]!, vh("y.example", "b")] });
    await delta.waitFor(() => delta.responses.slice(seen2).some((r) => r.typeUrl === XDS_TYPES.virtualHost), 10_000, "virtual host removal");
    expect(delta.responses.slice(seen2).map((r) => [r.typeUrl, r.names, r.removed])).toEqual([[XDS_TYPES.virtualHost, [], [names[2]]]]);

    // A new route configuration (new listener): its virtual hosts come after it.
    const seen3 = delta.responses.length;
    set({ r1: [routes.r1[0]!, vh("y.example", "b")], r2: [vh("w.example", "b")] });
    await delta.waitFor(() => delta.names(XDS_TYPES.virtualHost).includes("r2/w.example"), 10_000, "new route configuration's virtual hosts");
    const order = delta.responses.slice(seen3).map((r) => r.typeUrl);
    expect(order.indexOf(XDS_TYPES.route)).toBeGreaterThanOrEqual(0);
    expect(order.indexOf(XDS_TYPES.route)).toBeLessThan(order.indexOf(XDS_TYPES.virtualHost));
    await sotw.waitFor(() => sotw.names(XDS_TYPES.route).join() === "r1,r2", 10_000, "sotw routes");
  });
});
