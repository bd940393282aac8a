import { describe, expect, it } from "vitest";
import { DiscoveryResponse } from "../../../generated/envoy/service/discovery/v3/discovery.js";
import { Snapshot } from "../../cache/snapshot.js";
import { buildPrefixRoutes } from "../../envoy/builders.js";
import { XDS_TYPES } from "../../envoy/type-urls.js";
import { encodeDiscoveryResponse } from "./sotw-stream.js";

describe("encodeDiscoveryResponse", () => {
  it("shares the encoding of the same resources between streams, each frame with its own nonce", () => {
    const routes = Snapshot.build({ [XDS_TYPES.route]: [buildPrefixRoutes("r1", [{ prefix: "/", cluster: "c" }])] }).resources(XDS_TYPES.route);
    const resources = [...routes.resources.values()];
    const frames = ["1", "zz", "1a2b"].map((nonce) => encodeDiscoveryResponse(XDS_TYPES.route, routes.version, nonce, resources, "weft@test"));
    const plain = DiscoveryResponse.decode(
      DiscoveryResponse.encode({ versionInfo: routes.version, typeUrl: XDS_TYPES.route, nonce: "1", resources: [{ typeUrl: XDS_TYPES.route, value: resources[0]!.body }], controlPlane: { identifier: "weft@test" } }).finish(),
    );
    for (const [i, nonce] of ["1", "zz", "1a2b"].entries()) {
      const decoded = DiscoveryResponse.decode(frames[i]!);
      expect(decoded).toEqual({ ...plain, nonce });
      expect(decoded.resources?.[0]?.value).toEqual(resources[0]!.body);
    }
  });
});
