// The per-type xDS services (LDS, RDS, CDS, EDS, SDS: Stream*, Delta*, Fetch*), which Envoy
// uses when a bootstrap names a gRPC API config source per type instead of ADS.
import { credentials } from "@grpc/grpc-js";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ClusterDiscoveryServiceClient } from "../../generated/envoy/service/cluster/v3/cds.js";
import type { DeltaDiscoveryResponse, DiscoveryResponse } from "../../generated/envoy/service/discovery/v3/discovery.js";
import { EndpointDiscoveryServiceClient } from "../../generated/envoy/service/endpoint/v3/eds.js";
import { ListenerDiscoveryServiceClient } from "../../generated/envoy/service/listener/v3/lds.js";
import { Snapshot } from "../cache/snapshot.js";
import { SnapshotCache } from "../cache/snapshot-cache.js";
import { buildEdsCluster, buildHttpListener, buildLoadAssignment, buildPrefixRoutes } from "../envoy/builders.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import { silentLogger } from "../log/logger.js";
import { XdsMetrics } from "./xds-metrics.js";
import { XdsServer } from "./xds-server.js";

const node = { id: "per-type", cluster: "test" };

function snapshot(clusters: string[]): Snapshot {
  return Snapshot.build({
    [XDS_TYPES.cluster]: clusters.map((name) => buildEdsCluster({ name })),
    [XDS_TYPES.endpoint]: clusters.map((name, i) => buildLoadAssignment(name, [{ address: "127.0.0.1", port: 9000 + i }])),
    [XDS_TYPES.listener]: [buildHttpListener({ name: "http", address: "127.0.0.1", port: 10000, routeConfigName: "r" })],
    [XDS_TYPES.route]: [buildPrefixRoutes("r", [{ prefix: "/", cluster: clusters[0]! }])],
  });
}

function nextMessage<T>(stream: NodeJS.EventEmitter): Promise<T> {
  return new Promise((resolve, reject) => {
    stream.once("data", resolve);
    stream.once("error", reject);
  });
}

describe("per-type xDS services", () => {
  let cache: SnapshotCache;
  let server: XdsServer;
  let target: string;

  beforeEach(async () => {
    cache = new SnapshotCache();
    server = new XdsServer({ source: cache, metrics: new XdsMetrics(new Registry()), logger: silentLogger() });
    target = `127.0.0.1:${await server.listen("127.0.0.1", 0)}`;
    cache.set(node.id, snapshot(["a", "b"]));
  });
  afterEach(async () => {
    await server.close(500);
  });

  it("StreamListeners (SotW) serves listeners without a type_url and removes by omission", async () => {
    const client = new ListenerDiscoveryServiceClient(target, credentials.createInsecure());
    const stream = client.streamListeners();
    stream.write({ node });
    const first = await nextMessage<DiscoveryResponse>(stream);
    expect(first.typeUrl).toBe(XDS_TYPES.listener);
    expect(first.resources).toHaveLength(1);
    stream.write({ responseNonce: first.nonce, versionInfo: first.versionInfo });
    const next = nextMessage<DiscoveryResponse>(stream);
    cache.set(node.id, Snapshot.build({ ...snapshot(["a"]).input, [XDS_TYPES.listener]: [], [XDS_TYPES.route]: [] }));
    const second = await next;
    expect(second.resources).toHaveLength(0);
    expect(second.versionInfo).not.toBe(first.versionInfo);
    stream.cancel();
    client.close();
  });

  it("DeltaClusters sends removed_resources; a wrong type_url on a per-type stream is ignored", async () => {
    const client = new ClusterDiscoveryServiceClient(target, credentials.createInsecure());
    const stream = client.deltaClusters();
    stream.write({ node, typeUrl: XDS_TYPES.listener }); // wrong type for CDS: ignored
    stream.write({ typeUrl: XDS_TYPES.cluster });
    const first = await nextMessage<DeltaDiscoveryResponse>(stream);
    expect(first.resources?.map((r) => r.name).sort()).toEqual(["a", "b"]);
    stream.write({ typeUrl: XDS_TYPES.cluster, responseNonce: first.nonce });
    const next = nextMessage<DeltaDiscoveryResponse>(stream);
    cache.set(node.id, snapshot(["a"]));
    const second = await next;
    expect(second.resources).toHaveLength(0);
    expect(second.removedResources).toEqual(["b"]);
    stream.cancel();
    client.close();
  });

  it("FetchEndpoints answers a unary request with the named resources", async () => {
    const client = new EndpointDiscoveryServiceClient(target, credentials.createInsecure());
    const res = await new Promise<DiscoveryResponse>((resolve, reject) =>
      client.fetchEndpoints({ node, resourceNames: ["b"] }, (err, r) => (err ? reject(err) : resolve(r))),
    );
    expect(res.resources).toHaveLength(1);
    expect(res.versionInfo).toBe(snapshot(["a", "b"]).resources(XDS_TYPES.endpoint).version);
    const err = await new Promise<Error | null>((resolve) => client.fetchEndpoints({ resourceNames: ["b"] }, (e) => resolve(e)));
    expect(err?.message).toContain("node.id is required");
    client.close();
  });

  it("a stream whose first request has no node id is refused with INVALID_ARGUMENT", async () => {
    const client = new ListenerDiscoveryServiceClient(target, credentials.createInsecure());
    const stream = client.streamListeners();
    const failed = new Promise<{ code?: number; details?: string }>((resolve) => stream.once("error", resolve));
    stream.write({});
    const err = await failed;
    expect(err.code).toBe(3);
    expect(err.details).toContain("node.id");
    client.close();
  });
});
