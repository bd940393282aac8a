import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resourceKey, type NetworkingResource, type Sourced, type ValidationIssue } from "./types.js";
import { validateMesh, type ValidationCounters } from "./validate-mesh.js";
import { MAX_COMPARED } from "./spelling-hints.js";
import { parseDocuments, validateResource } from "./validate-resource.js";

const BOOKINFO = join(import.meta.dirname, "testdata", "bookinfo");

/** The bookinfo fixtures as schema-valid resources, in file order. */
function bookinfo(): Sourced[] {
  const resources: Sourced[] = [];
  for (const name of readdirSync(BOOKINFO).sort()) {
    const file = join(BOOKINFO, name);
    for (const { document, value } of parseDocuments(readFileSync(file, "utf8"), file).docs) {
      const { resource } = validateResource(value, { file, document });
      if (!resource) throw new Error(`fixture ${file} document ${document} is invalid`);
      resources.push({ resource, source: { file, document } });
    }
  }
  return resources;
}

/** A schema-valid resource from a plain object, as if read from `file`. */
function sourced(value: Record<string, unknown>, file = "extra.yaml", document = 1): Sourced {
  const { resource, issues } = validateResource({ apiVersion: "networking.istio.io/v1", ...value }, { file, document });
  if (!resource) throw new Error(`test resource is invalid: ${issues.map((i) => `${i.field}: ${i.message}`).join("; ")}`);
  return { resource, source: { file, document } };
}

function virtualService(name: string, spec: Record<string, unknown>, namespace = "default"): Sourced {
  return sourced({ kind: "VirtualService", metadata: { name, namespace }, spec });
}

function problems(issues: ValidationIssue[]): string[] {
  return issues.map((i) => `${i.resource}: ${i.field}: ${i.message}`);
}

function keys(resources: Sourced[]): string[] {
  return resources.map((s) => resourceKey(s.resource));
}

function find(resources: Sourced[], key: string): Sourced<NetworkingResource> {
  const found = resources.find((s) => resourceKey(s.resource) === key);
  if (!found) throw new Error(`no ${key}`);
  return found as Sourced<NetworkingResource>;
}

describe("validateMesh", () => {
  it("accepts the bookinfo config: short names, FQDNs, subsets and gateways all resolve", () => {
    const input = bookinfo();
    const { valid, issues } = validateMesh(input);
    expect(problems(issues)).toEqual([]);
    expect(valid).toEqual(input);
  });

  it("rejects the later of two definitions of one resource, naming both files", () => {
    const first = virtualService("ratings-extra", { hosts: ["ratings"], http: [{ route: [{ destination: { host: "ratings" } }] }] });
    const second = { ...virtualService("ratings-extra", { hosts: ["ratings"], tcp: [{ route: [{ destination: { host: "ratings" } }] }] }), source: { file: "b.yaml", document: 3 } };
    const { valid, issues } = validateMesh([...bookinfo(), first, second]);
    expect(valid).toContain(first);
    expect(valid).not.toContain(second);
    expect(issues).toEqual([
      {
        file: "b.yaml",
        document: 3,
        resource: "VirtualService/default/ratings-extra",
        field: "metadata.name",
        message:
          "duplicate VirtualService/default/ratings-extra: already defined in extra.yaml document 1, which wins (the first definition read wins: files in sorted path order, documents in file order, sources in the order given); this definition in b.yaml document 3 is ignored",
        severity: "error",
      },
    ]);
  });

  it("warns (IST0101, not an error: Istio accepts it) about a destination host no ServiceEntry declares, resolving short names in the resource's namespace", () => {
    const inProd = virtualService("reviews", { hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews" } }] }] }, "prod");
    const typo = virtualService("details", { hosts: ["details"], http: [{ route: [{ destination: { host: "detials.default.svc.cluster.local" } }] }] });
    const { valid, issues } = validateMesh([...bookinfo(), inProd, typo]);
    expect(keys(valid)).toContain("VirtualService/prod/reviews");
    expect(keys(valid)).toContain("VirtualService/default/details");
    expect(problems(issues)).toEqual([
      'VirtualService/prod/reviews: spec.http[0].route[0].destination.host: unknown host "reviews" (reviews.prod.svc.cluster.local): no ServiceEntry declares it (did you mean "reviews.default.svc.cluster.local"?); requests routed here get 503 until it exists',
      'VirtualService/default/details: spec.http[0].route[0].destination.host: unknown host "detials.default.svc.cluster.local": no ServiceEntry declares it (did you mean "details.default.svc.cluster.local"?); requests routed here get 503 until it exists',
    ]);
    expect(issues.map((i) => [i.severity, i.code])).toEqual([["warning", "IST0101"], ["warning", "IST0101"]]);
  });

  it("warns about a route to a subset that no DestinationRule for the host defines (the DestinationRule may be in another file, or arrive later)", () => {
    const input = bookinfo();
    const reviews = find(input, "VirtualService/default/reviews");
    const withV4 = { ...reviews, resource: structuredClone(reviews.resource) } as Sourced;
    if (withV4.resource.kind !== "VirtualService") throw new Error("fixture changed");
    withV4.resource.spec.http![0]!.route![0]!.destination.subset = "v4";
    const details = virtualService("details", { hosts: ["details"], http: [{ route: [{ destination: { host: "details", subset: "v1" } }] }] });

    const { valid, issues } = validateMesh([...input.filter((s) => s !== reviews), withV4, details]);
    expect(valid).toContain(withV4);
    expect(valid).toContain(details);
    expect(problems(issues)).toEqual([
      'VirtualService/default/reviews: spec.http[0].route[0].destination.subset: subset "v4" of reviews.default.svc.cluster.local is not defined by any DestinationRule (DestinationRule/default/reviews defines v1, v2, v3); requests routed here get 503 until it is',
      'VirtualService/default/details: spec.http[0].route[0].destination.subset: subset "v1" of details.default.svc.cluster.local is not defined by any DestinationRule (no DestinationRule applies to this host); requests routed here get 503 until it is',
    ]);
    expect(issues.every((i) => i.severity === "warning" && i.code === "IST0101")).toBe(true);
  });

  it("warns about a DestinationRule for an unknown host, and routes that rely on its subsets", () => {
    const input = bookinfo();
    const rule = find(input, "DestinationRule/default/ratings");
    const wrongHost = { ...rule, resource: structuredClone(rule.resource) } as Sourced;
    if (wrongHost.resource.kind !== "DestinationRule") throw new Error("fixture changed");
    wrongHost.resource.spec.host = "ratings.prod.svc.cluster.local";
    const { valid, issues } = validateMesh(input.map((s) => (s === rule ? wrongHost : s)));
    expect(keys(valid)).toContain("DestinationRule/default/ratings");
    expect(keys(valid)).toContain("VirtualService/default/ratings");
    expect(problems(issues)).toEqual([
      'DestinationRule/default/ratings: spec.host: unknown host "ratings.prod.svc.cluster.local": no ServiceEntry declares it (did you mean "ratings.default.svc.cluster.local"?); this DestinationRule applies to nothing until the host exists',
      'VirtualService/default/ratings: spec.http[0].route[0].destination.subset: subset "v1" of ratings.default.svc.cluster.local is not defined by any DestinationRule (no DestinationRule applies to this host); requests routed here get 503 until it is',
    ]);
    expect(issues.map((i) => i.severity)).toEqual(["warning", "warning"]);
  });

  it("warns about a ServiceEntry that gives a host's port a different protocol, naming the winner", () => {
    const conflicting = sourced({
      kind: "ServiceEntry",
      metadata: { name: "reviews-grpc" },
      spec: { hosts: ["reviews.default.svc.cluster.local", "reviews-grpc.example.com"], ports: [{ number: 9080, name: "grpc", protocol: "GRPC" }], resolution: "DNS" },
    }, "later.yaml", 2);
    const route = virtualService("reviews-grpc", { hosts: ["reviews-grpc.example.com"], http: [{ route: [{ destination: { host: "reviews-grpc.example.com" } }] }] });
    const { valid, issues } = validateMesh([...bookinfo(), conflicting, route]);
    expect(valid).toContain(conflicting);
    expect(valid).toContain(route);
    expect(problems(issues)).toEqual([
      `ServiceEntry/default/reviews-grpc: spec.ports[0].protocol: conflicting protocols for reviews.default.svc.cluster.local port 9080: GRPC here, but HTTP in ServiceEntry/default/reviews (${join(BOOKINFO, "services.yaml")} document 2), and both are visible from the same namespaces; a host's port has one protocol: ServiceEntry/default/reviews wins (the first by namespace, then name)`,
    ]);
    expect(issues[0]?.severity).toBe("warning");
  });

  it("does not see a protocol conflict between ServiceEntries that no namespace sees both of (exportTo)", () => {
    const entry = (name: string, namespace: string, protocol: string, exportTo: string[]) =>
      sourced({ kind: "ServiceEntry", metadata: { name, namespace }, spec: { hosts: ["db.example.com"], exportTo, ports: [{ number: 5432, name: "db", protocol }], resolution: "DNS" } });
    const a = entry("db", "team-a", "TCP", ["."]);
    const b = entry("db", "team-b", "TLS", ["."]);
    expect(problems(validateMesh([a, b]).issues)).toEqual([]);
    const everywhere = entry("db-all", "team-c", "HTTP", ["*"]);
    expect(problems(validateMesh([a, b, everywhere]).issues)).toHaveLength(1);
  });

  it('warns about references to Gateways that do not exist (yet), except the reserved "mesh"', () => {
    const vs = virtualService("edge", {
      hosts: ["shop.example.com"],
      gateways: ["mesh", "bookinfo-gateway", "default/bookinfo-gateway", "istio-system/ingress"],
      http: [{ match: [{ gateways: ["bookinfo-gatway"] }], route: [{ destination: { host: "productpage" } }] }],
    });
    const { valid, issues } = validateMesh([...bookinfo(), vs]);
    expect(valid).toContain(vs);
    expect(problems(issues)).toEqual([
      'VirtualService/default/edge: spec.gateways[3]: Gateway "istio-system/ingress" does not exist (known: default/bookinfo-gateway); use "mesh" for the sidecars, or a Gateway as "name" or "namespace/name"; these routes apply to it once it exists',
      'VirtualService/default/edge: spec.http[0].match[0].gateways[0]: Gateway "default/bookinfo-gatway" does not exist (did you mean "default/bookinfo-gateway"?); use "mesh" for the sidecars, or a Gateway as "name" or "namespace/name"; these routes apply to it once it exists',
    ]);
    expect(issues.map((i) => i.code)).toEqual(["IST0101", "IST0101"]);
  });

  it("says a referenced Gateway, DestinationRule or ServiceEntry exists but is invalid (not a knock-on 'does not exist')", () => {
    const vs = virtualService("edge", { hosts: ["shop.example.com"], gateways: ["broken-gw"], http: [{ route: [{ destination: { host: "shop.example.com", subset: "v1" } }] }] });
    const toBrokenHost = virtualService("other", { hosts: ["other"], http: [{ route: [{ destination: { host: "broken.example.com" } }] }] });
    const shop = sourced({ kind: "ServiceEntry", metadata: { name: "shop" }, spec: { hosts: ["shop.example.com"], ports: [{ number: 80, name: "http", protocol: "HTTP" }], resolution: "DNS" } });
    const invalid = [
      { key: "Gateway/default/broken-gw", source: { file: "gw.yaml", document: 1 }, hosts: [] },
      { key: "DestinationRule/default/shop", source: { file: "dr.yaml", document: 2 }, hosts: ["shop.example.com"] },
      { key: "ServiceEntry/default/broken", source: { file: "se.yaml", document: 1 }, hosts: ["broken.example.com"] },
    ];
    expect(problems(validateMesh([shop, vs, toBrokenHost], undefined, invalid).issues)).toEqual([
      'VirtualService/default/edge: spec.http[0].route[0].destination.subset: subset "v1" of shop.example.com is not defined by any DestinationRule (DestinationRule/default/shop (dr.yaml document 2) exists but is invalid (see its errors)); requests routed here get 503 until it is',
      'VirtualService/default/edge: spec.gateways[0]: Gateway "default/broken-gw" exists (gw.yaml document 1) but is invalid (see its errors); these routes apply to it once it is fixed',
      'VirtualService/default/other: spec.http[0].route[0].destination.host: host "broken.example.com" is declared only by ServiceEntry/default/broken (se.yaml document 1), which exists but is invalid (see its errors); requests routed here get 503 until it exists',
    ]);
  });

  it("respects a ServiceEntry's exportTo", () => {
    const privateEntry = sourced({
      kind: "ServiceEntry",
      metadata: { name: "ledger", namespace: "finance" },
      spec: { hosts: ["ledger.finance.svc.cluster.local"], exportTo: ["."], ports: [{ number: 80, name: "http", protocol: "HTTP" }], resolution: "DNS" },
    });
    const sameNamespace = virtualService("ledger", { hosts: ["ledger"], http: [{ route: [{ destination: { host: "ledger" } }] }] }, "finance");
    const otherNamespace = virtualService("ledger", { hosts: ["ledger.finance.svc.cluster.local"], http: [{ route: [{ destination: { host: "ledger.finance.svc.cluster.local" } }] }] });
    const { valid, issues } = validateMesh([privateEntry, sameNamespace, otherNamespace]);
    expect(valid).toEqual([privateEntry, sameNamespace, otherNamespace]);
    expect(problems(issues)).toEqual([
      'VirtualService/default/ledger: spec.http[0].route[0].destination.host: host "ledger.finance.svc.cluster.local" is declared by ServiceEntry/finance/ledger (extra.yaml document 1), but its exportTo does not include namespace "default"; requests routed here get 503 until it exists',
    ]);
  });

  it("accepts hosts covered by a wildcard ServiceEntry and mirrors to known hosts", () => {
    const wildcard = sourced({ kind: "ServiceEntry", metadata: { name: "example" }, spec: { hosts: ["*.example.com"], ports: [{ number: 443, name: "tls", protocol: "TLS" }], resolution: "NONE" } });
    const vs = virtualService("api", { hosts: ["api.example.com"], tls: [{ match: [{ sniHosts: ["api.example.com"] }], route: [{ destination: { host: "api.example.com" } }] }] });
    const mirror = virtualService("mirror", { hosts: ["ratings"], http: [{ route: [{ destination: { host: "ratings" } }], mirror: { host: "unknown-mirror" } }] });
    const { valid, issues } = validateMesh([...bookinfo(), wildcard, vs, mirror]);
    expect(valid).toContain(vs);
    expect(problems(issues)).toEqual([
      'VirtualService/default/mirror: spec.http[0].mirror.host: unknown host "unknown-mirror" (unknown-mirror.default.svc.cluster.local): no ServiceEntry declares it; requests routed here get 503 until it exists',
    ]);
  });

  it('matches "*foo.example.com" ServiceEntry hosts and DestinationRules as Istio does (any host ending in foo.example.com), not as exact names', () => {
    const entry = sourced({ kind: "ServiceEntry", metadata: { name: "partial" }, spec: { hosts: ["*api.example.com"], ports: [{ number: 80, name: "http", protocol: "HTTP" }], resolution: "NONE" } });
    const rule = sourced({ kind: "DestinationRule", metadata: { name: "partial" }, spec: { host: "*api.example.com", subsets: [{ name: "blue", labels: { color: "blue" } }] } });
    const routed = (name: string, host: string, subset?: string) => virtualService(name, { hosts: [`${name}.test`], http: [{ route: [{ destination: { host, ...(subset ? { subset } : {}) } }] }] });
    const ok = [routed("a", "payments-api.example.com", "blue"), routed("b", "api.example.com"), routed("c", "x.y.legacy-api.example.com")];
    const missing = routed("e", "api.example.org");
    const { issues } = validateMesh([entry, rule, ...ok, missing]);
    expect(problems(issues)).toEqual([
      'VirtualService/default/e: spec.http[0].route[0].destination.host: unknown host "api.example.org": no ServiceEntry declares it; requests routed here get 503 until it exists',
    ]);
  });

  it("finds subsets through a wildcard DestinationRule, and names the first hiding ServiceEntry", () => {
    const wildcard = sourced({ kind: "ServiceEntry", metadata: { name: "example" }, spec: { hosts: ["*.example.com"], ports: [{ number: 80, name: "http", protocol: "HTTP" }], resolution: "NONE" } });
    const rule = sourced({ kind: "DestinationRule", metadata: { name: "example" }, spec: { host: "*.example.com", subsets: [{ name: "blue", labels: { color: "blue" } }] } });
    const vs = virtualService("api", { hosts: ["api.example.com"], http: [{ route: [{ destination: { host: "api.example.com", subset: "blue" } }] }] });
    const hidden = (name: string) =>
      sourced({ kind: "ServiceEntry", metadata: { name, namespace: "finance" }, spec: { hosts: ["ledger.finance.svc.cluster.local"], exportTo: ["."], ports: [{ number: 80, name: "http", protocol: "HTTP" }], resolution: "DNS" } });
    const toLedger = virtualService("ledger", { hosts: ["ledger.example.com"], http: [{ route: [{ destination: { host: "ledger.finance.svc.cluster.local" } }] }] });
    const { valid, issues } = validateMesh([wildcard, rule, vs, hidden("ledger-b"), hidden("ledger-a"), toLedger]);
    expect(valid).toContain(vs);
    expect(problems(issues)).toEqual([
      'VirtualService/default/ledger: spec.http[0].route[0].destination.host: host "ledger.finance.svc.cluster.local" is declared by ServiceEntry/finance/ledger-b (extra.yaml document 1), but its exportTo does not include namespace "default"; requests routed here get 503 until it exists',
    ]);
  });

  it("looks up each reference through indexes: the work grows with the mesh, not its square", () => {
    /** n ServiceEntries and n VirtualServices, 1 in 100 routing to a misspelt host. */
    const mesh = (n: number): { input: Sourced[]; typos: number } => {
      const input: Sourced[] = [];
      let typos = 0;
      for (let i = 0; i < n; i++) {
        const namespace = `ns-${i % 20}`;
        const host = `svc-${i}.${namespace}.svc.cluster.local`;
        const source = { file: `${namespace}.yaml`, document: i + 1 };
        input.push({ resource: { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: `svc-${i}`, namespace }, spec: { hosts: [host], ports: [{ number: 80, name: "http", protocol: "HTTP" }], resolution: "STATIC" } }, source } as Sourced);
        const typo = i % 100 === 7;
        if (typo) typos++;
        const destination = typo ? host.replace("local", "lcoal") : `svc-${i}`;
        input.push({ resource: { apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name: `svc-${i}`, namespace }, spec: { hosts: [`svc-${i}`], http: [{ route: [{ destination: { host: destination } }] }] } }, source } as Sourced);
      }
      return { input, typos };
    };
    for (const n of [1000, 4000]) {
      const { input, typos } = mesh(n);
      const counters: ValidationCounters = { hostCandidates: 0, hints: { comparisons: 0 } };
      const { issues } = validateMesh(input, counters);
      expect(issues).toHaveLength(typos);
      expect(issues[0]?.message).toBe('unknown host "svc-7.ns-7.svc.cluster.lcoal": no ServiceEntry declares it (did you mean "svc-7.ns-7.svc.cluster.local"?); requests routed here get 503 until it exists');
      // Each route's lookup returns just the ServiceEntry that declares its host (none for a typo);
      // a scan would look at all n for every route.
      expect(counters.hostCandidates).toBe(n - typos);
      expect(counters.hints.comparisons).toBeLessThanOrEqual(typos * MAX_COMPARED);
    }
  });
});
