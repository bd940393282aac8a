import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { DeltaDiscoveryResponse, DiscoveryResponse } from "../../generated/envoy/service/discovery/v3/discovery.js";
import { SnapshotCache } from "../cache/snapshot-cache.js";
import { Snapshot } from "../cache/snapshot.js";
import { buildEdsCluster, buildLoadAssignment } from "../envoy/builders.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import { silentLogger } from "../log/logger.js";
import { DeltaStream } from "./delta/delta-stream.js";
import { ProxyRegistry } from "./proxy-registry.js";
import { SotwStream } from "./sotw/sotw-stream.js";
import type { ResponseSink, StreamContext } from "./stream-base.js";
import { XdsMetrics } from "./xds-metrics.js";
import { SharedFrames } from "./shared-frames.js";
import { SharedNameSets } from "./shared-names.js";
import { xdsLimits } from "./xds-limits.js";

const clusters = Array.from({ length: 40 }, (_, i) => `svc-${i}`);

function setup(): { ctx: StreamContext; sink: () => { sink: ResponseSink; frames: Buffer[] } } {
  const cache = new SnapshotCache();
  cache.set("class-a", Snapshot.build({ [XDS_TYPES.cluster]: clusters.map((name) => buildEdsCluster({ name })), [XDS_TYPES.endpoint]: clusters.map((name, i) => buildLoadAssignment(name, [{ address: "127.0.0.1", port: 9000 + i }])) }));
  const ctx: StreamContext = { source: cache, admit: () => ({ key: "class-a" }), registry: new ProxyRegistry(), metrics: new XdsMetrics(new Registry()), logger: silentLogger(), controlPlaneId: "weft@test", limits: xdsLimits(), frames: new SharedFrames(), names: new SharedNameSets() };
  return {
    ctx,
    sink: () => {
      const frames: Buffer[] = [];
      return { frames, sink: { write: (f) => (frames.push(f.bytes), true), onDrain: () => undefined, end: () => undefined, fail: () => undefined } };
    },
  };
}

describe("first responses shared between proxies of one class", () => {
  it("delta: the whole CDS and the whole EDS subscription are one encoding for every proxy", () => {
    const { ctx, sink } = setup();
    const proxies = ["p1", "p2", "p3"].map((id) => {
      const s = sink();
      const stream = new DeltaStream(ctx, s.sink, "delta", "ads", id);
      stream.onRequest({ node: { id }, typeUrl: XDS_TYPES.cluster });
      stream.onRequest({ typeUrl: XDS_TYPES.endpoint, resourceNamesSubscribe: [...clusters] });
      return { stream, frames: s.frames };
    });
    for (const p of proxies) expect(p.frames).toHaveLength(2);
    for (const i of [0, 1]) {
      expect(proxies[1]!.frames[i]).toBe(proxies[0]!.frames[i]);
      expect(proxies[2]!.frames[i]).toBe(proxies[0]!.frames[i]);
    }
    const eds = DeltaDiscoveryResponse.decode(proxies[0]!.frames[1]!);
    expect(eds.resources?.map((r) => r.name)).toEqual(clusters);
    expect(eds.nonce).toMatch(/^_/);
    // A proxy that already holds some (reconnect) gets its own response.
    const s = sink();
    new DeltaStream(ctx, s.sink, "delta", "ads", "p4").onRequest({ node: { id: "p4" }, typeUrl: XDS_TYPES.cluster, initialResourceVersions: { "svc-0": "old" } });
    expect(s.frames[0]).not.toBe(proxies[0]!.frames[0]);
    expect(DeltaDiscoveryResponse.decode(s.frames[0]!).resources).toHaveLength(clusters.length);
    for (const p of proxies) p.stream.close();
  });

  it("sotw: the first EDS response to the same names is one encoding", () => {
    const { ctx, sink } = setup();
    const proxies = ["p1", "p2"].map((id) => {
      const s = sink();
      const stream = new SotwStream(ctx, s.sink, "sotw", "ads", id);
      stream.onRequest({ node: { id }, typeUrl: XDS_TYPES.cluster });
      stream.onRequest({ typeUrl: XDS_TYPES.endpoint, resourceNames: [...clusters] });
      return { stream, frames: s.frames };
    });
    expect(proxies[1]!.frames[1]).toBe(proxies[0]!.frames[1]);
    expect(DiscoveryResponse.decode(proxies[0]!.frames[1]!).resources).toHaveLength(clusters.length);
    for (const p of proxies) p.stream.close();
  });
});

describe("responses shared between proxy classes with equal content", () => {
  it("sotw: a whole CDS of equal content in two classes' snapshots (different objects) is one encoding", () => {
    const { ctx, sink } = setup();
    const build = (names: string[]) => Snapshot.build({ [XDS_TYPES.cluster]: names.map((name) => buildEdsCluster({ name })), [XDS_TYPES.endpoint]: names.map((name) => buildLoadAssignment(name, [{ address: "127.0.0.1", port: 9000 }])) });
    const cache = new SnapshotCache();
    cache.set("class-a", build(clusters));
    cache.set("class-b", build(clusters));
    cache.set("class-c", build(clusters.slice(1)));
    const shared = { ...ctx, source: cache, admit: (node: { id?: string }) => ({ key: `class-${node.id!.slice(-1)}` }) };
    const [a, b, c] = ["p-a", "p-b", "p-c"].map((id) => {
      const s = sink();
      const stream = new SotwStream(shared, s.sink, "sotw", "ads", id);
      stream.onRequest({ node: { id }, typeUrl: XDS_TYPES.cluster });
      return { stream, frames: s.frames };
    });
    expect(cache.get("class-a")!.resources(XDS_TYPES.cluster).resources).not.toBe(cache.get("class-b")!.resources(XDS_TYPES.cluster).resources);
    expect(b!.frames[0]).toBe(a!.frames[0]);
    expect(c!.frames[0]).not.toBe(a!.frames[0]); // other content, other version
    expect(DiscoveryResponse.decode(a!.frames[0]!).resources).toHaveLength(clusters.length);
    expect(DiscoveryResponse.decode(c!.frames[0]!).resources).toHaveLength(clusters.length - 1);
    for (const p of [a, b, c]) p!.stream.close();
  });
});

describe("SharedFrames", () => {
  it("a content key (string) shares one frame per variant, within the same memory bound", () => {
    const shared = new SharedFrames();
    let encodes = 0;
    const encode = () => (encodes++, Buffer.alloc(1024 * 1024));
    const first = shared.frame("whole", "cds@v1", "1", encode);
    expect(shared.frame("whole", "cds@v1", "2", encode)).toBe(first);
    expect(shared.frame("whole", "cds@v2", "3", encode)).not.toBe(first);
    expect(encodes).toBe(2);
    for (let i = 0; i < 100; i++) shared.frame("whole", `lds@${i}`, "4", encode);
    expect(shared.retainedBytes).toBeLessThanOrEqual(65 * 1024 * 1024);
    shared.frame("whole", "cds@v1", "5", encode);
    expect(encodes).toBe(103); // evicted: encoded again
  });

  it("keeps only the most recent frames: memory stays bounded, an old frame is encoded again", () => {
    const shared = new SharedFrames();
    const sharedFrame = shared.frame.bind(shared);
    let encodes = 0;
    const encode = () => (encodes++, Buffer.alloc(1024 * 1024));
    const keys = Array.from({ length: 100 }, () => ({}));
    for (const k of keys) sharedFrame(k, "v", "1", encode);
    expect(encodes).toBe(100);
    expect(shared.retainedBytes).toBeLessThanOrEqual(65 * 1024 * 1024);
    const newest = sharedFrame(keys[99]!, "v", "2", encode);
    expect(encodes).toBe(100); // recent: reused
    expect(sharedFrame(keys[99]!, "v", "3", encode)).toBe(newest);
    sharedFrame(keys[0]!, "v", "4", encode);
    expect(encodes).toBe(101); // evicted long ago: encoded again
  });

  it("segments: one encoding per content key among the most recently used, within their memory bound", () => {
    const shared = new SharedFrames({ retainedSegmentBytes: 3 * 1024 });
    let encodes = 0;
    const encode = () => (encodes++, Buffer.alloc(1024));
    const a = shared.segment("a", encode);
    expect(shared.segment("a", encode)).toBe(a);
    shared.segment("b", encode);
    shared.segment("c", encode);
    expect(encodes).toBe(3);
    shared.segment("a", encode); // used: now the most recent
    shared.segment("d", encode); // evicts b, the least recently used
    expect(shared.retainedSegmentBytes).toBe(3 * 1024);
    expect(shared.segment("a", encode)).toBe(a);
    expect(encodes).toBe(4);
    shared.segment("b", encode);
    expect(encodes).toBe(5);
    // One larger than the bound is kept alone (the newest).
    shared.segment("big", () => Buffer.alloc(8 * 1024));
    expect(shared.retainedSegmentBytes).toBe(8 * 1024);
  });

  it("belongs to its owner: another server's frames are its own, with their own nonces", () => {
    const key = {};
    const encode = (nonce: string) => Buffer.from(`response ${nonce}`);
    const a = new SharedFrames().frame(key, "v", "1", encode);
    const b = new SharedFrames().frame(key, "v", "1", encode);
    expect(b).not.toBe(a);
    expect(b.bytes.toString()).toBe(a.bytes.toString()); // both start their shared nonces at _1
  });

  it("preframed: the message is a view of its gRPC frame (header + message), framed once", () => {
    const shared = new SharedFrames({ preframe: true });
    const frame = shared.frame({}, "v", "1", (nonce) => Buffer.from(`hello xds ${nonce}`));
    const out = frame.preframed!.framed;
    expect(frame.bytes.toString()).toBe("hello xds _1");
    expect(out.length).toBe(frame.bytes.length + 5);
    expect(out[0]).toBe(0);
    expect(out.readUInt32BE(1)).toBe(frame.bytes.length);
    expect(out.buffer).toBe(frame.bytes.buffer); // no copy
    expect(new SharedFrames().frame({}, "v", "1", () => Buffer.from("x")).preframed).toBeUndefined();
  });
});
