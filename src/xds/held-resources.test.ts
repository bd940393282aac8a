import { describe, expect, it } from "vitest";
import type { CachedResource } from "../cache/snapshot.js";
import { ALL_NAMES, HeldResources } from "./held-resources.js";
import { SharedNameSets } from "./shared-names.js";

function map(entries: Record<string, string>): Map<string, CachedResource> {
  return new Map(Object.entries(entries).map(([name, version]) => [name, { name, version, body: Buffer.from(version) }]));
}

describe("HeldResources", () => {
  it("after a rebase holds exactly the map restricted to the subscription", () => {
    const held = new HeldResources();
    expect(held.empty).toBe(true);
    held.rebase(map({ a: "1", b: "2", c: "3" }), new Set(["a", "c", "z"]));
    expect(held.empty).toBe(false);
    expect([held.version("a"), held.version("b"), held.version("c"), held.version("z")]).toEqual(["1", undefined, "3", undefined]);
    expect([...held.names()].sort()).toEqual(["a", "c"]);
    expect(held.size).toBe(2);
    expect(held.resource("c")?.version).toBe("3");
    expect(held.resource("b")).toBeUndefined();
  });

  it("exceptions override the map: set, delete, and a name subscribed later is not held", () => {
    const resources = map({ a: "1", b: "2" });
    const held = new HeldResources();
    held.rebase(resources, new Set(["a"]), "v1");
    held.set("b", "9"); // sent since (e.g. delta)
    held.delete("a"); // forgotten (e.g. endpoints to re-send)
    held.set("new", "5");
    expect([held.version("a"), held.version("b"), held.version("new")]).toEqual([undefined, "9", "5"]);
    expect([...held.names()].sort()).toEqual(["b", "new"]);
    expect(held.isExactly("v1")).toBe(false);
    held.rebase(resources, ALL_NAMES, "v1");
    expect(held.isExactly("v1")).toBe(true);
    // Known by version (content), not by which map: another version or none is "not known".
    expect(held.isExactly("v2")).toBe(false);
    expect(held.isExactly(undefined)).toBe(false);
    held.rebase(resources, ALL_NAMES);
    expect(held.isExactly("v1")).toBe(false);
    held.rebase(resources, ALL_NAMES, "v1");
    expect([held.version("a"), held.version("b"), held.version("new")]).toEqual(["1", "2", undefined]);
    expect(held.size).toBe(2);
  });

  it("keepOnly: names unsubscribed are no longer held, even when subscribed again later", () => {
    const held = new HeldResources();
    held.rebase(map({ a: "1", b: "2", c: "3" }), ALL_NAMES);
    held.set("d", "4");
    held.keepOnly(new Set(["a", "c"]));
    expect([...held.names()].sort()).toEqual(["a", "c"]);
    held.keepOnly(new Set(["a", "b", "c", "d"])); // b and d come back: the proxy dropped them
    expect([held.version("b"), held.version("d"), held.version("c")]).toEqual([undefined, undefined, "3"]);
  });
});

describe("shared name sets", () => {
  const names = (n: number, prefix = "outbound|8080||svc-") => new Set(Array.from({ length: n }, (_, i) => `${prefix}${i}.ns.svc.cluster.local`));

  it("equal large subscriptions are one Set; different or small ones are not shared", () => {
    const pool = new SharedNameSets();
    const sharedNames = (n: ReadonlySet<string>) => pool.share(n);
    const a = sharedNames(names(100));
    const b = sharedNames(names(100));
    expect(b).toBe(a);
    expect(sharedNames(names(101))).not.toBe(a);
    const small = names(3);
    expect(sharedNames(small)).toBe(small);
    expect(sharedNames(names(3))).not.toBe(small);
    // Another owner (another server, another test) has its own pool.
    expect(new SharedNameSets().share(names(100))).not.toBe(a);
    expect(pool.size).toBe(2);
  });

  it("decodes a fingerprinted name list once while a stream holds its Set", () => {
    let decoded = 0;
    const decode = () => {
      decoded++;
      return [...names(50, "x")];
    };
    const pool = new SharedNameSets();
    const namesByFingerprint = (fp: string, d: () => string[]) => pool.byFingerprint(fp, d);
    const first = namesByFingerprint("fp-1", decode);
    const second = namesByFingerprint("fp-1", decode);
    expect(second).toBe(first);
    expect(decoded).toBe(1);
    expect(first.names.size).toBe(50);
    expect(namesByFingerprint("fp-2", decode)).not.toBe(first);
    expect(decoded).toBe(2);
  });
});
