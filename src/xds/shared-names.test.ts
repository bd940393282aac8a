import { describe, expect, it } from "vitest";
import { Snapshot } from "../cache/snapshot.js";
import { buildLoadAssignment } from "../envoy/builders.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import { SharedNameSets } from "./shared-names.js";

const endpoints = (names: string[], port: number) =>
  Snapshot.build({ [XDS_TYPES.endpoint]: names.map((name) => buildLoadAssignment(name, [{ address: "127.0.0.1", port }])) }).resources(XDS_TYPES.endpoint);

describe("SharedNameSets.resolve", () => {
  const all = Array.from({ length: 40 }, (_, i) => `svc-${i}`);

  it("the named resources present, in the set's order; one lookup per version of the type for a shared set", () => {
    const pool = new SharedNameSets();
    const names = pool.share(new Set([...all].reverse().concat("missing")));
    const v1 = endpoints(all, 80);
    const list = pool.resolve(names, XDS_TYPES.endpoint, v1);
    expect(list.map((r) => r.name)).toEqual([...all].reverse());
    expect(list.every((r) => r === v1.resources.get(r.name))).toBe(true);
    // Another object with the same content (same version): the same list.
    expect(pool.resolve(names, XDS_TYPES.endpoint, endpoints(all, 80))).toBe(list);
    // A new version: looked up again.
    const v2 = endpoints(all, 81);
    const list2 = pool.resolve(names, XDS_TYPES.endpoint, v2);
    expect(list2).not.toBe(list);
    expect(list2.every((r) => r === v2.resources.get(r.name))).toBe(true);
    // Another type with equal names is its own lookup.
    expect(pool.resolve(names, XDS_TYPES.cluster, Snapshot.build({}).resources(XDS_TYPES.cluster))).toEqual([]);
  });

  it("a small set (not shared) is looked up each time", () => {
    const pool = new SharedNameSets();
    const names = new Set(["svc-1", "svc-0"]);
    const v1 = endpoints(all, 80);
    const a = pool.resolve(names, XDS_TYPES.endpoint, v1);
    expect(a.map((r) => r.name)).toEqual(["svc-1", "svc-0"]);
    expect(pool.resolve(names, XDS_TYPES.endpoint, v1)).not.toBe(a);
  });
});
