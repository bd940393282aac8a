import { describe, expect, it } from "vitest";
import { DiscoveryRequest } from "../../../generated/envoy/service/discovery/v3/discovery.js";
import { ChunkedMessage } from "../grpc-framing.js";
import { decodeSotwRequest, knownNames, receiveSotwRequest, sotwRequestOf, EncodedSotwRequest, type SotwRequest } from "./request-names.js";

const names = Array.from({ length: 200 }, (_, i) => `outbound|8080||svc-${i}.load-0.svc.cluster.local`);
const encode = (r: Partial<DiscoveryRequest>) => Buffer.from(DiscoveryRequest.encode(DiscoveryRequest.fromPartial(r)).finish());

describe("decodeSotwRequest", () => {
  it("decodes a large request like the generated decoder, with its names left encoded and fingerprinted", () => {
    const req = { versionInfo: "v1", node: { id: "sidecar~1" }, resourceNames: names, typeUrl: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", responseNonce: "7", errorDetail: { code: 3, message: "bad" } };
    const got = decodeSotwRequest(encode(req));
    expect(got.rawNames).toBeDefined();
    expect(got.rawNames!.decode()).toEqual(names);
    const { resourceNames: _n, ...rest } = DiscoveryRequest.decode(encode(req));
    expect({ ...got, rawNames: undefined, resourceNames: undefined }).toEqual({ ...rest, rawNames: undefined, resourceNames: undefined });
  });

  it("gives equal names equal fingerprints and different names different ones", () => {
    const a = decodeSotwRequest(encode({ resourceNames: names, responseNonce: "1" }));
    const b = decodeSotwRequest(encode({ resourceNames: names, responseNonce: "2", versionInfo: "x" }));
    const c = decodeSotwRequest(encode({ resourceNames: [...names.slice(1), "other"], responseNonce: "1" }));
    expect(a.rawNames!.fingerprint).toBe(b.rawNames!.fingerprint);
    expect(a.rawNames!.fingerprint).not.toBe(c.rawNames!.fingerprint);
  });

  it("names split by other fields (any order is valid protobuf) decode and fingerprint as one list", () => {
    const split = Buffer.concat([encode({ resourceNames: names.slice(0, 120) }), encode({ typeUrl: "t", responseNonce: "3" }), encode({ resourceNames: names.slice(120) })]);
    const got = decodeSotwRequest(split);
    expect(got.typeUrl).toBe("t");
    expect(got.responseNonce).toBe("3");
    expect(got.rawNames!.decode()).toEqual(names);
    expect(got.rawNames!.fingerprint).toBe(decodeSotwRequest(encode({ resourceNames: names })).rawNames!.fingerprint);
  });

  it("decodes small requests normally", () => {
    const got = decodeSotwRequest(encode({ resourceNames: ["a", "b"], typeUrl: "t" }));
    expect(got.rawNames).toBeUndefined();
    expect(got.resourceNames).toEqual(["a", "b"]);
  });

  describe("with the lists a stream holds (KnownNames)", () => {
    const eds = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    const known = knownNames(decodeSotwRequest(encode({ resourceNames: names, typeUrl: eds, responseNonce: "1" })).rawNames!)!;

    it("recognises the same names by their bytes, decoding the rest like the generated decoder", () => {
      const req = { versionInfo: "v2", resourceNames: names, typeUrl: eds, responseNonce: "9", errorDetail: { code: 3, message: "bad" } };
      const got = decodeSotwRequest(encode(req), [known]);
      expect(got.rawNames!.known).toBe(known);
      expect(got.rawNames!.fingerprint).toBe(decodeSotwRequest(encode(req)).rawNames!.fingerprint);
      expect(got.rawNames!.decode()).toEqual(names);
      const { resourceNames: _n, ...rest } = DiscoveryRequest.decode(encode(req));
      expect({ ...got, rawNames: undefined, resourceNames: undefined }).toEqual({ ...rest, rawNames: undefined, resourceNames: undefined });
    });

    it("does not take a longer, shorter or different list for the known one", () => {
      for (const other of [[...names, "one-more"], names.slice(0, -1), [...names.slice(0, -1), "changed-last"]]) {
        const got = decodeSotwRequest(encode({ resourceNames: other, typeUrl: eds }), [known]);
        expect(got.rawNames!.known).toBeUndefined();
        expect(got.rawNames!.decode()).toEqual(other);
        expect(got.rawNames!.fingerprint).toBe(decodeSotwRequest(encode({ resourceNames: other })).rawNames!.fingerprint);
      }
    });

    it("a known list followed by more names after another field is read as one longer list", () => {
      const split = Buffer.concat([encode({ resourceNames: names }), encode({ typeUrl: eds }), encode({ resourceNames: ["late"] })]);
      const got = decodeSotwRequest(split, [known]);
      expect(got.rawNames!.known).toBeUndefined();
      expect(got.rawNames!.decode()).toEqual([...names, "late"]);
      expect(got.typeUrl).toBe(eds);
    });

    it("the gRPC deserializer leaves large requests to the stream and decodes small ones", () => {
      const large = receiveSotwRequest(encode({ resourceNames: names, typeUrl: eds }));
      expect(large).toBeInstanceOf(EncodedSotwRequest);
      expect(sotwRequestOf(large, [known]).rawNames!.known).toBe(known);
      const small = receiveSotwRequest(encode({ resourceNames: ["a"], typeUrl: eds }));
      expect(small).not.toBeInstanceOf(EncodedSotwRequest);
      expect(sotwRequestOf(small).resourceNames).toEqual(["a"]);
    });
  });

  describe("a request received in chunks (ChunkedMessage)", () => {
    const eds = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    const known = knownNames(decodeSotwRequest(encode({ resourceNames: names, typeUrl: eds, responseNonce: "1" })).rawNames!)!;
    /** `bytes` cut at these offsets (views, as grpc-js's DATA chunks would be). */
    const chunked = (bytes: Buffer, cuts: number[]) => {
      const at = [0, ...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length];
      return new ChunkedMessage(at.slice(1).map((end, i) => bytes.subarray(at[i]!, end)), bytes.length);
    };
    /** What a stream sees of a request: the decoded fields and its names. */
    const seen = (r: SotwRequest) => ({ ...r, rawNames: undefined, resourceNames: r.rawNames ? r.rawNames.decode() : r.resourceNames, known: r.rawNames?.known, fingerprint: r.rawNames?.fingerprint });
    const requests: Partial<DiscoveryRequest>[] = [
      { versionInfo: "v2", resourceNames: names, typeUrl: eds, responseNonce: "9" }, // an ACK of the known list
      { versionInfo: "v2", node: { id: "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", cluster: "a.ns" }, resourceNames: names, typeUrl: eds, responseNonce: "9", errorDetail: { code: 3, message: "bad" } }, // a NACK
      { resourceNames: [...names, "one-more"], typeUrl: eds }, // longer
      { resourceNames: names.slice(0, -1), typeUrl: eds }, // shorter
      { resourceNames: [...names.slice(0, -1), "changed-last"], typeUrl: eds, responseNonce: "2" },
      { resourceNames: ["a", "b"], typeUrl: eds }, // small
    ];

    it("decodes every request exactly as the joined bytes decode, wherever the chunks are cut", () => {
      let seed = 7;
      const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
      for (const req of requests) {
        const bytes = encode(req);
        const expected = seen(decodeSotwRequest(bytes, [known]));
        const cutSets = [[1], [bytes.length - 1], [5, 6, 7], Array.from({ length: 15 }, (_, i) => Math.floor(((i + 1) * bytes.length) / 16)), Array.from({ length: 8 }, () => random(bytes.length))];
        for (const cuts of cutSets) {
          const msg = chunked(bytes, cuts);
          const got = sotwRequestOf(receiveSotwRequest(msg), [known]);
          expect(seen(got)).toEqual(expected);
        }
      }
    });

    it("compares the known list over the chunks without joining them", () => {
      const bytes = encode({ versionInfo: "v3", resourceNames: names, typeUrl: eds, responseNonce: "4" });
      const msg = chunked(bytes, [100, 3000, 7000]);
      let joined = 0;
      const original = msg.joined.bind(msg);
      msg.joined = () => (joined++, original());
      const got = sotwRequestOf(receiveSotwRequest(msg), [known]);
      expect(got.rawNames!.known).toBe(known);
      expect(got.versionInfo).toBe("v3");
      expect(got.responseNonce).toBe("4");
      expect(joined).toBe(0);
      // A list it does not hold: joined and scanned as before.
      const other = chunked(encode({ resourceNames: [...names, "x"], typeUrl: eds }), [100, 3000]);
      let otherJoined = 0;
      const o = other.joined.bind(other);
      other.joined = () => (otherJoined++, o());
      expect(sotwRequestOf(receiveSotwRequest(other), [known]).rawNames!.decode()).toEqual([...names, "x"]);
      expect(otherJoined).toBe(1);
    });

    it("a known list followed by more names after another field is not taken for the known one", () => {
      const split = Buffer.concat([encode({ resourceNames: names }), encode({ typeUrl: eds }), encode({ resourceNames: ["late"] })]);
      const got = sotwRequestOf(receiveSotwRequest(chunked(split, [10, 2000, split.length - 3])), [known]);
      expect(got.rawNames!.known).toBeUndefined();
      expect(got.rawNames!.decode()).toEqual([...names, "late"]);
    });

    it("a malformed request gets what the joined bytes get (the same error, or the same lenient result)", () => {
      const bytes = encode({ versionInfo: "v2", resourceNames: names, typeUrl: eds });
      const outcome = (f: () => SotwRequest) => {
        try {
          return { ok: seen(f()) };
        } catch (err) {
          return { threw: (err as Error).message };
        }
      };
      const badWireType = Buffer.concat([bytes, Buffer.from([0x0f, 0x01])]); // field 1, wire type 7
      const outOfRange = Buffer.concat([bytes, Buffer.from([0x22, 0x7f, 0x41])]); // type_url said to be 127 bytes, 1 follows
      for (const bad of [bytes.subarray(0, bytes.length - 3), badWireType, outOfRange]) {
        const joined = outcome(() => decodeSotwRequest(bad, [known]));
        expect(outcome(() => sotwRequestOf(receiveSotwRequest(chunked(bad, [50, 900, bad.length - 2])), [known]))).toEqual(joined);
      }
      expect(outcome(() => decodeSotwRequest(badWireType, [known]))).toHaveProperty("threw");
    });
  });
});
