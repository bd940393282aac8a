import { describe, expect, it } from "vitest";
import { DiscoveryResponse } from "../../../generated/envoy/service/discovery/v3/discovery.js";
import { Snapshot } from "../../cache/snapshot.js";
import { buildPrefixRoutes } from "../../envoy/builders.js";
import { XDS_TYPES } from "../../envoy/type-urls.js";
import { SharedFrames } from "../shared-frames.js";
import { encodeDiscoveryResponse } from "./sotw-stream.js";

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
