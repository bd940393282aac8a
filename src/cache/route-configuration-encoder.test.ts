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
    expect(encoder.encodeRoute({ name: "empty" }).equals(encodeMessage(XDS_TYPES.route, { name: "empty" }))).toBe(true);
  });

  it("encodes a large configuration in steps (new frames, then the copy), byte-identically", () => {
    const encoder = new RouteConfigurationEncoder({ newFrames: 10, copiedBytes: 1000 });
    const config: RouteConfiguration = { name: "8080", virtualHosts: Array.from({ length: 100 }, (_, i) => vh(`svc-${i}`)), validateClusters: false };
    const count = (steps: Generator<void, Buffer, void>): { steps: number; body: Buffer } => {
      for (let n = 0; ; n++) {
        const r = steps.next();
        if (r.done) return { steps: n, body: r.value };
      }
    };
    const expected = encodeMessage(XDS_TYPES.route, config);
    const first = count(encoder.encodeRouteSteps(config));
    expect(first.body.equals(expected)).toBe(true);
    // 100 new frames: 10 steps; then one per ~1000 bytes copied.
    expect(first.steps).toBeGreaterThanOrEqual(10 + Math.floor(expected.length / 1000));
    // Frames reused: only the copy's steps.
    const again = count(encoder.encodeRouteSteps(config));
    expect(again.body.equals(expected)).toBe(true);
    expect(again.steps).toBeLessThan(first.steps);
    expect(again.steps).toBeGreaterThanOrEqual(Math.floor(expected.length / 1000));
  });
});
