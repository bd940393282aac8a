import { describe, expect, it } from "vitest";
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import { encodeMessage } from "../envoy/any.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import { RouteConfigurationEncoder } from "./route-configuration-encoder.js";

const vh = (name: string) => ({ name, domains: [name, `${name}:80`], routes: [{ name: "default", match: { prefix: "/" }, route: { cluster: `outbound|80||${name}` } }], includeRequestAttemptCount: true });

describe("RouteConfigurationEncoder", () => {
  it("encodes byte-identically to the codec, with frames reused across configurations", () => {
    const encoder = new RouteConfigurationEncoder();
    const [a, b, c] = [vh("a"), vh("b"), vh("c")];
    const first: RouteConfiguration = { name: "80", virtualHosts: [a, b], validateClusters: false, ignorePortInHostMatching: true };
    expect(encoder.encodeRoute(first).equals(encodeMessage(XDS_TYPES.route, first))).toBe(true);
    // b is reused, c is new, a is gone; the other fields come after the virtual hosts.
    const second: RouteConfiguration = { name: "80", virtualHosts: [b, c], ignorePortInHostMatching: true, requestHeadersToRemove: ["x-debug"] };
    expect(encoder.encodeRoute(second).equals(encodeMessage(XDS_TYPES.route, second))).toBe(true);
    expect(encoder.encode(XDS_TYPES.route, { name: "empty" }).equals(encodeMessage(XDS_TYPES.route, { name: "empty" }))).toBe(true);
  });
});
