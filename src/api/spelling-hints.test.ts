import { describe, expect, it } from "vitest";
import { FULL_SEARCH_LIMIT, HintIndex, MAX_COMPARED, closestMatch, editDistance, type HintCounter } from "./spelling-hints.js";

/** The hosts of a large mesh: svc-<i>.ns-<i mod 20>.svc.cluster.local. */
function hosts(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `svc-${i}.ns-${i % 20}.svc.cluster.local`);
}

describe("editDistance", () => {
  it("counts inserts, deletes and substitutions, ignoring case", () => {
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("Reviews", "reviews")).toBe(0);
    expect(editDistance("", "abc")).toBe(3);
  });

  it("with a limit, gives the exact distance up to it and limit + 1 beyond", () => {
    const words = ["reviews", "review", "raviews", "ratings", "details", "productpage", "r", ""];
    for (const a of words) {
      for (const b of words) {
        const exact = editDistance(a, b);
        for (const limit of [0, 1, 2, 3, 5]) expect(editDistance(a, b, limit)).toBe(exact <= limit ? exact : limit + 1);
      }
    }
  });
});

describe("closestMatch", () => {
  it("suggests the closest candidate within reach, the first listed on a tie", () => {
    expect(closestMatch("VirtualServce", ["ServiceEntry", "VirtualService", "DestinationRule"])).toBe("VirtualService");
    expect(closestMatch("ab", ["ax", "ay"])).toBe("ax");
    expect(closestMatch("completely-different", ["reviews", "ratings"])).toBeUndefined();
  });
});

describe("HintIndex", () => {
  it("on a small list, gives exactly closestMatch's answer, comparing with every candidate", () => {
    const names = hosts(FULL_SEARCH_LIMIT);
    const counter: HintCounter = { comparisons: 0 };
    const index = new HintIndex(names, counter);
    for (const word of ["svc-12.ns-12.svc.cluster.lcoal", "svc-7.ns-8.svc.cluster.local", "nothing-like-it", "svc-200.ns-0.svc.cluster.local"]) {
      expect(index.closest(word)).toBe(closestMatch(word, names));
    }
    expect(counter.comparisons).toBe(4 * FULL_SEARCH_LIMIT);
  });

  it("on 20,000 hosts, finds the intended host for each typo with a bounded number of comparisons", () => {
    const names = hosts(20_000);
    const counter: HintCounter = { comparisons: 0 };
    const index = new HintIndex(names, counter);
    const typos = [
      ["svc-17.ns-17.svc.cluster.lcoal", "svc-17.ns-17.svc.cluster.local"],
      ["svc-1234.ns-14.svc.cluster.local.", "svc-1234.ns-14.svc.cluster.local"],
      ["svc-19999.ns-19.svc.clustr.local", "svc-19999.ns-19.svc.cluster.local"],
      ["svc-5000.ns-0.svc.cluster.loca", "svc-5000.ns-0.svc.cluster.local"],
      ["scv-42.ns-2.svc.cluster.local", "svc-42.ns-2.svc.cluster.local"],
      ["svc-808.ns-8.svc.cluster.local", "svc-808.ns-8.svc.cluster.local"],
    ] as const;
    for (const [typo, meant] of typos) expect(index.closest(typo)).toBe(meant);
    // A full search would have made 6 x 20,000 comparisons.
    expect(counter.comparisons).toBeLessThanOrEqual(typos.length * MAX_COMPARED);
  });

  it("answers a word asked again from memory", () => {
    const counter: HintCounter = { comparisons: 0 };
    const index = new HintIndex(hosts(5000), counter);
    const first = index.closest("svc-3.ns-3.svc.cluster.lcoal");
    const after = counter.comparisons;
    expect(index.closest("svc-3.ns-3.svc.cluster.lcoal")).toBe(first);
    expect(counter.comparisons).toBe(after);
  });

  it("suggests nothing when no host is close, on a large list too", () => {
    expect(new HintIndex(hosts(5000)).closest("payments.example.org")).toBeUndefined();
  });
});
