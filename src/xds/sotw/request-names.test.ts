import { describe, expect, it } from "vitest";
import { DiscoveryRequest } from "../../../generated/envoy/service/discovery/v3/discovery.js";
import { decodeSotwRequest, knownNames, receiveSotwRequest, sotwRequestOf, EncodedSotwRequest } from "./request-names.js";

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
});
