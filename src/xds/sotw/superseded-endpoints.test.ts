// SotW EDS responses the client has read may be replaced by newer ones before their ACK
// (StreamContext.supersedeEndpoints); other types wait for the answer. Real gRPC over loopback,
// the client a raw HTTP/2 stream that ACKs only when the test says so.
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { DiscoveryRequest, DiscoveryResponse } from "../../../generated/envoy/service/discovery/v3/discovery.js";
import { SnapshotCache } from "../../cache/snapshot-cache.js";
import { Snapshot } from "../../cache/snapshot.js";
import { buildEdsCluster, buildLoadAssignment } from "../../envoy/builders.js";
import { XDS_TYPES } from "../../envoy/type-urls.js";
import { silentLogger } from "../../log/logger.js";
import { RawXdsClient, type RawXdsStream } from "../raw-xds-client.js";
import { XdsMetrics } from "../xds-metrics.js";
import { XdsServer } from "../xds-server.js";

const NODE = "sidecar~10.0.0.9~app-9.default~default.svc.cluster.local";

function snapshot(port: number, connectTimeoutMs = 1000): Snapshot {
  return Snapshot.build({
    [XDS_TYPES.cluster]: [buildEdsCluster({ name: "a", connectTimeoutMs })],
    [XDS_TYPES.endpoint]: [buildLoadAssignment("a", [{ address: "127.0.0.1", port }])],
    [XDS_TYPES.listener]: [],
    [XDS_TYPES.route]: [],
  });
}

let server: XdsServer | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await server?.close(200);
  server = undefined;
});

async function start(supersedeEndpoints: boolean): Promise<{ cache: SnapshotCache; stream: RawXdsStream }> {
  const cache = new SnapshotCache();
  cache.set(NODE, snapshot(9000));
  server = new XdsServer({ source: cache, metrics: new XdsMetrics(new Registry()), logger: silentLogger(), supersedeEndpoints });
  const port = await server.listen("127.0.0.1", 0);
  const client = new RawXdsClient(`127.0.0.1:${port}`);
  cleanups.push(() => client.close());
  return { cache, stream: client.open("sotw") };
}

const responses = (s: RawXdsStream) => s.messages.map((m) => DiscoveryResponse.decode(m));
const send = (s: RawXdsStream, req: Partial<DiscoveryRequest>) => s.send(DiscoveryRequest.encode(DiscoveryRequest.fromPartial(req)).finish());
async function until(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); ) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
const settle = () => new Promise((r) => setTimeout(r, 200));
const edsStatus = () => server!.registry.byNode(NODE)[0]?.types.eds;

describe("SotW EDS responses replaced before their ACK", () => {
  it("an endpoint change is sent while the previous EDS response is unanswered; the late answer to it is stale, the newest one counts", async () => {
    const { cache, stream } = await start(true);
    send(stream, { node: { id: NODE }, typeUrl: XDS_TYPES.endpoint, resourceNames: ["a"] });
    await until("first EDS response", () => stream.messages.length === 1);
    const [first] = responses(stream);
    cache.set(NODE, snapshot(9001));
    await until("second EDS response, no ACK sent", () => stream.messages.length === 2);
    const second = responses(stream)[1]!;
    expect(second.typeUrl).toBe(XDS_TYPES.endpoint);
    expect(second.versionInfo).not.toBe(first!.versionInfo);
    expect(second.nonce).not.toBe(first!.nonce);
    // The answer to the replaced response: stale, changes nothing.
    send(stream, { typeUrl: XDS_TYPES.endpoint, resourceNames: ["a"], versionInfo: first!.versionInfo, responseNonce: first!.nonce });
    await settle();
    expect(edsStatus()?.pending).toBe(true);
    expect(edsStatus()?.ackedVersion).toBeUndefined();
    send(stream, { typeUrl: XDS_TYPES.endpoint, resourceNames: ["a"], versionInfo: second.versionInfo, responseNonce: second.nonce });
    await until("ACK of the newest response", () => edsStatus()?.pending === false);
    expect(edsStatus()?.ackedVersion).toBe(second.versionInfo);
    expect(stream.messages).toHaveLength(2);
  });

  it("switched off, the change waits for the ACK", async () => {
    const { cache, stream } = await start(false);
    send(stream, { node: { id: NODE }, typeUrl: XDS_TYPES.endpoint, resourceNames: ["a"] });
    await until("first EDS response", () => stream.messages.length === 1);
    const [first] = responses(stream);
    cache.set(NODE, snapshot(9001));
    await settle();
    expect(stream.messages).toHaveLength(1);
    send(stream, { typeUrl: XDS_TYPES.endpoint, resourceNames: ["a"], versionInfo: first!.versionInfo, responseNonce: first!.nonce });
    await until("second EDS response after the ACK", () => stream.messages.length === 2);
  });

  it("clusters still wait for their answer", async () => {
    const { cache, stream } = await start(true);
    send(stream, { node: { id: NODE }, typeUrl: XDS_TYPES.cluster });
    await until("first CDS response", () => stream.messages.length === 1);
    const [first] = responses(stream);
    cache.set(NODE, snapshot(9000, 2000));
    await settle();
    expect(stream.messages).toHaveLength(1);
    send(stream, { typeUrl: XDS_TYPES.cluster, versionInfo: first!.versionInfo, responseNonce: first!.nonce });
    await until("second CDS response after the ACK", () => stream.messages.length === 2);
    expect(responses(stream)[1]!.typeUrl).toBe(XDS_TYPES.cluster);
  });
});
