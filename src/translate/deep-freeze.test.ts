import { describe, expect, it } from "vitest";
import { deepFreeze } from "./deep-freeze.js";

describe("deepFreeze", () => {
  it("makes a late modification anywhere in the tree throw; byte arrays are left as they are", () => {
    const shared = { name: "outbound|80||a", lbEndpoints: [{ port: 80 }] };
    const out = deepFreeze({ clusters: [shared], routes: [{ virtualHosts: [{ domains: ["a"] }] }], body: Buffer.from("x") });
    expect(() => {
      shared.lbEndpoints[0]!.port = 81;
    }).toThrow(TypeError);
    expect(() => out.routes[0]!.virtualHosts[0]!.domains.push("b")).toThrow(TypeError);
    expect(() => {
      (out as { extra?: number }).extra = 1;
    }).toThrow(TypeError);
    expect(Object.isFrozen(out.body)).toBe(false);
  });
});
