import { describe, expect, it } from "vitest";
import type { VirtualService } from "../api/types.js";
import { validateResource } from "../api/validate-resource.js";
import { mergeDelegates, type UnresolvedDelegate } from "./virtual-service-delegation.js";

/** A VirtualService that passed the real validator. */
function vs(name: string, namespace: string, spec: Record<string, unknown>): VirtualService {
  const { resource, issues } = validateResource({ apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name, namespace }, spec }, { file: "t.yaml", document: 1 });
  if (!resource || issues.some((i) => i.severity === "error")) throw new Error(issues.map((i) => `${i.field}: ${i.message}`).join("; "));
  return resource as VirtualService;
}

const root = (delegate: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  vs("bookinfo", "ingress", {
    hosts: ["bookinfo.example.com"],
    gateways: ["edge"],
    http: [
      { name: "health", match: [{ uri: { exact: "/health" } }], directResponse: { status: 200 } },
      { name: "reviews", match: [{ uri: { prefix: "/reviews" } }, { uri: { prefix: "/api/reviews" }, headers: { "x-team": { exact: "a" } } }], delegate, timeout: "3s", headers: { request: { set: { "x-root": "1" } } }, ...extra },
    ],
  });

const delegate = vs("reviews", "shop", {
  http: [
    { name: "v2", match: [{ uri: { prefix: "/reviews/v2" } }], route: [{ destination: { host: "reviews", subset: "v2" } }], timeout: "1s" },
    { name: "elsewhere", match: [{ uri: { prefix: "/ratings" } }], route: [{ destination: { host: "ratings" } }] },
    { name: "team-b", match: [{ headers: { "x-team": { exact: "b" } } }], route: [{ destination: { host: "reviews", subset: "v3" } }] },
    { route: [{ destination: { host: "reviews", subset: "v1" } }], mirror: { host: "reviews-shadow" } },
  ],
});

describe("mergeDelegates (Istio's VirtualService delegation)", () => {
  it("replaces the root rule by the delegate's rules: matches ANDed (only where they fit), settings inherited, names joined, hosts read in the delegate's namespace", () => {
    const [merged, ...rest] = mergeDelegates([root({ name: "reviews", namespace: "shop" }), delegate]);
    expect(rest).toEqual([]); // the delegate itself is not a VirtualService of its own
    expect(merged!.metadata).toEqual({ name: "bookinfo", namespace: "ingress" });
    expect(merged!.spec.http).toEqual([
      { name: "health", match: [{ uri: { exact: "/health" } }], directResponse: { status: 200 } },
      // "/reviews/v2" fits in "/reviews" only; its own timeout wins; the root's headers are inherited
      {
        name: "reviews-v2",
        match: [{ uri: { prefix: "/reviews/v2" } }],
        route: [{ destination: { host: "reviews.shop.svc.cluster.local", subset: "v2" } }],
        timeout: "1s",
        headers: { request: { set: { "x-root": "1" } } },
      },
      // "/ratings" fits in no root condition: dropped. A header condition fits in both, but
      // conflicts with the second's x-team: a: ANDed with the first only.
      {
        name: "reviews-team-b",
        match: [{ uri: { prefix: "/reviews" }, headers: { "x-team": { exact: "b" } } }],
        route: [{ destination: { host: "reviews.shop.svc.cluster.local", subset: "v3" } }],
        timeout: "3s",
        headers: { request: { set: { "x-root": "1" } } },
      },
      // no conditions: the root's, as they are
      {
        name: "reviews",
        match: [{ uri: { prefix: "/reviews" } }, { uri: { prefix: "/api/reviews" }, headers: { "x-team": { exact: "a" } } }],
        route: [{ destination: { host: "reviews.shop.svc.cluster.local", subset: "v1" } }],
        mirror: { host: "reviews-shadow.shop.svc.cluster.local" },
        timeout: "3s",
        headers: { request: { set: { "x-root": "1" } } },
      },
    ]);
  });

  it("a missing delegate, one with hosts, or one not exported to the root's namespace applies nothing: the root rule is dropped", () => {
    const unresolved: UnresolvedDelegate[] = [];
    const notADelegate = vs("reviews", "ingress", { hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews" } }] }] });
    const hidden = vs("reviews", "shop", { exportTo: ["."], http: [{ route: [{ destination: { host: "reviews" } }] }] });
    const [a] = mergeDelegates([root({ name: "reviews", namespace: "nowhere" })], unresolved);
    const [b] = mergeDelegates([root({ name: "reviews" }), notADelegate], unresolved); // namespace defaults to the root's
    const [c] = mergeDelegates([root({ name: "reviews", namespace: "shop" }), hidden], unresolved);
    for (const merged of [a, b, c]) expect(merged!.spec.http!.map((r) => r.name)).toEqual(["health"]);
    expect(unresolved.map((u) => `${u.rule} ${u.delegate.namespace ?? "(root's)"}/${u.delegate.name} ${u.reason}`)).toEqual(["1 nowhere/reviews missing", "1 (root's)/reviews missing", "1 shop/reviews not-exported"]);
  });

  it("conflicts as Istio defines them: a regex beside another match, exact values that differ, a prefix under an exact value, ports, ignoreUriCase", () => {
    const leafWith = (match: Record<string, unknown>) => vs("d", "shop", { http: [{ match: [match], route: [{ destination: { host: "reviews" } }] }] });
    const rootWith = (match: Record<string, unknown>) => vs("r", "shop", { hosts: ["reviews"], http: [{ match: [match], delegate: { name: "d" } }] });
    const fits = (r: Record<string, unknown>, l: Record<string, unknown>) => (mergeDelegates([rootWith(r), leafWith(l)])[0]!.spec.http ?? []).length === 1;
    expect(fits({ uri: { regex: "/r.*" } }, { uri: { prefix: "/r" } })).toBe(false);
    expect(fits({ uri: { prefix: "/r" } }, { uri: { regex: "/r.*" } })).toBe(false);
    expect(fits({ uri: { exact: "/r" } }, { uri: { exact: "/r" } })).toBe(true);
    expect(fits({ uri: { exact: "/r" } }, { uri: { exact: "/s" } })).toBe(false);
    expect(fits({ uri: { exact: "/r" } }, { uri: { prefix: "/r" } })).toBe(false);
    expect(fits({ uri: { prefix: "/r" } }, { uri: { exact: "/r/1" } })).toBe(true);
    expect(fits({ port: 80 }, { port: 8080 })).toBe(false);
    expect(fits({ port: 80 }, { uri: { prefix: "/" } })).toBe(true);
    expect(fits({ ignoreUriCase: true, uri: { prefix: "/r" } }, { uri: { prefix: "/r" } })).toBe(false);
    expect(fits({ sourceLabels: { app: "a" } }, { sourceLabels: { app: "b" } })).toBe(false);
    expect(fits({ sourceLabels: { app: "a" } }, { sourceLabels: { version: "v1" } })).toBe(true);
    expect(fits({ gateways: ["ns/a", "ns/b"] }, { gateways: ["ns/a"] })).toBe(true);
    expect(fits({ gateways: ["ns/a"] }, { gateways: ["ns/c"] })).toBe(false);
  });

  it("VirtualServices without delegation are the same objects", () => {
    const plain = vs("plain", "shop", { hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews" } }] }] });
    expect(mergeDelegates([plain])[0]).toBe(plain);
  });
});
