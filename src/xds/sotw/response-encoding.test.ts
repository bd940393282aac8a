import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DiscoveryResponse } from "../../../generated/envoy/service/discovery/v3/discovery.js";
import { Snapshot } from "../../cache/snapshot.js";
import { buildPrefixRoutes } from "../../envoy/builders.js";
import { XDS_TYPES } from "../../envoy/type-urls.js";
import { SharedFrames } from "../shared-frames.js";
import { encodeDiscoveryResponse, encodeFramedPieces, encodeFramedResponse, encodeFramedSegments, encodeResourceFields, encodeWholeTypeResponse } from "./response-encoding.js";
import { ResourceSet } from "../../cache/snapshot.js";
import { buildEdsCluster } from "../../envoy/builders.js";

describe("encodeDiscoveryResponse", () => {
  const routes = Snapshot.build({
    [XDS_TYPES.route]: [buildPrefixRoutes("r1", [{ prefix: "/", cluster: "c" }]), buildPrefixRoutes("r2", [{ prefix: "/", cluster: "d" }])],
  }).resources(XDS_TYPES.route);
  const resources = [...routes.resources.values()];
  const shared = new SharedFrames();
  const plain = (nonce: string, sent = resources) =>
    DiscoveryResponse.decode(
      DiscoveryResponse.encode({ versionInfo: routes.version, typeUrl: XDS_TYPES.route, nonce, resources: sent.map((r) => ({ typeUrl: XDS_TYPES.route, value: r.body })), controlPlane: { identifier: "weft@test" } }).finish(),
    );

  it("one resource: every stream gets the same bytes, with a shared nonce no stream's own nonce can be", () => {
    const frames = ["1", "zz", "1a2b"].map((nonce) => encodeDiscoveryResponse(shared, XDS_TYPES.route, routes.version, nonce, [resources[0]!], "weft@test"));
    expect(frames[1]!.bytes).toBe(frames[0]!.bytes);
    expect(frames[2]!.nonce).toBe(frames[0]!.nonce);
    expect(frames[0]!.nonce).toMatch(/^_[0-9a-z]+$/);
    expect(DiscoveryResponse.decode(frames[0]!.bytes)).toEqual(plain(frames[0]!.nonce, [resources[0]!]));
    // Another resource (or version) is another frame, with another nonce.
    const other = encodeDiscoveryResponse(shared, XDS_TYPES.route, routes.version, "2", [resources[1]!], "weft@test");
    expect(other.nonce).not.toBe(frames[0]!.nonce);
  });

  it("several resources picked per stream: encoded per stream with the stream's nonce", () => {
    const frame = encodeDiscoveryResponse(shared, XDS_TYPES.route, routes.version, "7", resources, "weft@test");
    expect(frame.nonce).toBe("7");
    expect(DiscoveryResponse.decode(frame.bytes)).toEqual(plain("7"));
  });
});

describe("encodeFramedResponse", () => {
  const encodeGenerated = (typeUrl: string, versionInfo: string, nonce: string, bodies: Buffer[], identifier: string) =>
    Buffer.from(DiscoveryResponse.encode({ versionInfo, typeUrl, nonce, resources: bodies.map((value) => ({ typeUrl, value })), controlPlane: { identifier } }).finish());

  it("writes the generated encoder's bytes behind a gRPC header holding their length", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme", maxLength: 200 }),
        fc.string({ maxLength: 40 }),
        fc.string({ maxLength: 12 }),
        fc.array(fc.uint8Array({ maxLength: 20_000 }).map((b) => Buffer.from(b)), { maxLength: 12 }),
        fc.string({ unit: "grapheme", maxLength: 150 }),
        (typeUrl, versionInfo, nonce, bodies, identifier) => {
          const resources = bodies.map((b, i) => ({ name: `r${i}`, version: "v", body: b }));
          const framed = encodeFramedResponse(typeUrl, versionInfo, nonce, resources, identifier).framed;
          const expected = encodeGenerated(typeUrl, versionInfo, nonce, bodies, identifier);
          expect(framed[0]).toBe(0);
          expect(framed.readUInt32BE(1)).toBe(expected.length);
          expect(framed.subarray(5).equals(expected)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("encodes thousands of resources (multi-byte lengths) as the generated encoder does", () => {
    const body = Buffer.alloc(70_000, 7);
    const resources = Array.from({ length: 3300 }, (_, i) => ({ name: `outbound|8080||svc-${i}.ns.svc.cluster.local`, version: "v", body: body.subarray(0, (i * 37) % 300) }));
    resources.push({ name: "big", version: "v", body });
    const framed = encodeFramedResponse(XDS_TYPES.endpoint, "abc123", "_1", resources, "weft@test");
    expect(framed.message.equals(encodeGenerated(XDS_TYPES.endpoint, "abc123", "_1", resources.map((r) => r.body), "weft@test"))).toBe(true);
  });
});

describe("encodeFramedSegments", () => {
  it("is encodeFramedResponse's bytes for the resources whose fields the segments are, however they are cut", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)), { maxLength: 40 }),
        fc.array(fc.nat(40), { maxLength: 5 }),
        fc.string({ maxLength: 12 }),
        (bodies, cuts, nonce) => {
          const resources = bodies.map((b, i) => ({ name: `r${i}`, version: "v", body: b }));
          const at = [0, ...cuts.map((c) => Math.min(c, resources.length)).sort((a, b) => a - b), resources.length];
          const segments = at.slice(1).map((end, i) => encodeResourceFields(XDS_TYPES.cluster, resources.slice(at[i], end)));
          const expected = encodeFramedResponse(XDS_TYPES.cluster, "v1", nonce, resources, "weft@test").framed;
          expect(encodeFramedSegments(XDS_TYPES.cluster, "v1", nonce, segments, "weft@test").framed.equals(expected)).toBe(true);
          // In pieces: the same bytes once written one after the other, the header counting them all.
          const pieces = encodeFramedPieces(XDS_TYPES.cluster, "v1", nonce, segments, "weft@test");
          expect(Buffer.concat(pieces.pieces.map((p) => p.framed)).equals(expected)).toBe(true);
          expect(pieces.size).toBe(expected.length - 5);
          expect(pieces.message.equals(expected.subarray(5))).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("encodeWholeTypeResponse", () => {
  const part = (names: string[]) => ResourceSet.build({ [XDS_TYPES.cluster]: names.map((name) => buildEdsCluster({ name })) });
  const outbound = part(Array.from({ length: 100 }, (_, i) => `outbound|80||svc-${i}.ns.svc.cluster.local`));
  const snapshotOf = (inbound: string) => Snapshot.compose([part([inbound]), outbound]).resources(XDS_TYPES.cluster);

  it("a view merged from parts: the bytes of its resources in order, each large part encoded once for every class sharing it", () => {
    const frames = new SharedFrames({ preframe: true });
    const a = snapshotOf("inbound|80||a");
    const b = snapshotOf("inbound|80||b");
    expect(a.parts).toHaveLength(2);
    const fa = encodeWholeTypeResponse(frames, XDS_TYPES.cluster, a, "1", "weft@test");
    const fb = encodeWholeTypeResponse(frames, XDS_TYPES.cluster, b, "1", "weft@test");
    for (const [frame, typed] of [[fa, a], [fb, b]] as const) {
      expect(frame.bytes.equals(encodeFramedResponse(XDS_TYPES.cluster, typed.version, frame.nonce, [...typed.resources.values()], "weft@test").message)).toBe(true);
      expect(DiscoveryResponse.decode(frame.bytes).resources).toHaveLength(101);
    }
    // Sent in pieces: the outbound part's segment itself (no copy) is a piece of both responses.
    const shared = fa.preframed?.pieces.map((p) => p.framed).filter((b) => fb.preframed?.pieces.some((q) => q.framed === b));
    expect(shared?.map((b) => b.length)).toEqual([encodeResourceFields(XDS_TYPES.cluster, outbound.resources(XDS_TYPES.cluster).resources.values()).length]);
    // The outbound part (100 clusters) is one segment kept for both; the single inbound cluster is not kept.
    expect(frames.retainedSegmentBytes).toBe(encodeResourceFields(XDS_TYPES.cluster, outbound.resources(XDS_TYPES.cluster).resources.values()).length);
    // Equal content (same version) in another object: the same frame.
    expect(encodeWholeTypeResponse(frames, XDS_TYPES.cluster, snapshotOf("inbound|80||a"), "2", "weft@test")).toBe(fa);
  });
});

