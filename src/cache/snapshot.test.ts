import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Cluster_DiscoveryType } from "../../generated/envoy/config/cluster/v3/cluster.js";
import { buildEdsCluster, buildLoadAssignment } from "../envoy/builders.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import { checkConsistency } from "./consistency.js";
import { ResourceEncoder } from "./resource-encoder.js";
import { ResourceSet, Snapshot, versionOf, type SnapshotInput } from "./snapshot.js";

const names = ["a", "b", "c"];
const endpoints = (port: Record<string, number>): SnapshotInput => ({
  [XDS_TYPES.endpoint]: names.map((n) => buildLoadAssignment(n, [{ address: "127.0.0.1", port: port[n] ?? 9000 }])),
});
const clusters = (): SnapshotInput => ({ [XDS_TYPES.cluster]: names.map((name) => buildEdsCluster({ name })) });

// Change detection uses versions (content hashes), never which object carries them
// (DESIGN.md rule 8): parts rebuilt from new objects with equal content are "unchanged".
describe("snapshot change detection by version", () => {
  it("a part states its changes since the previous version, whichever objects carried it", () => {
    const before = ResourceSet.build(endpoints({}));
    const sameContent = ResourceSet.build(endpoints({})); // new messages, new maps, equal bytes
    expect(sameContent.resources(XDS_TYPES.endpoint)).not.toBe(before.resources(XDS_TYPES.endpoint));
    expect(sameContent.resources(XDS_TYPES.endpoint).version).toBe(before.resources(XDS_TYPES.endpoint).version);
    const after = ResourceSet.build(endpoints({ b: 9001 }), { previous: sameContent });
    expect(after.resources(XDS_TYPES.endpoint).changes).toEqual({ since: before.resources(XDS_TYPES.endpoint).version, names: new Set(["b"]) });
    // replacing() (the EDS fast path) says the same.
    const replaced = before.replacing(XDS_TYPES.endpoint, [buildLoadAssignment("c", [{ address: "127.0.0.1", port: 9002 }])]);
    expect(replaced.resources(XDS_TYPES.endpoint).changes).toEqual({ since: before.resources(XDS_TYPES.endpoint).version, names: new Set(["c"]) });
  });

  it("a composed snapshot keeps the changes of its one changed part when the others were rebuilt with equal content", () => {
    const shared = ResourceSet.build(clusters());
    const eds1 = ResourceSet.build({ [XDS_TYPES.endpoint]: [buildLoadAssignment("x", [{ address: "127.0.0.1", port: 1 }])] });
    const first = Snapshot.compose([shared, ResourceSet.build(endpoints({})), eds1]);
    // The second generation rebuilds the shared part (new objects, same content) and changes
    // one endpoint in the middle part.
    const middle = ResourceSet.build(endpoints({ a: 9005 }), { previous: first.parts[1] });
    const second = Snapshot.compose([ResourceSet.build(clusters()), middle, ResourceSet.build({ [XDS_TYPES.endpoint]: [buildLoadAssignment("x", [{ address: "127.0.0.1", port: 1 }])] })], first);
    const typed = second.resources(XDS_TYPES.endpoint);
    expect(typed.version).not.toBe(first.resources(XDS_TYPES.endpoint).version);
    expect(typed.changes).toEqual({ since: first.resources(XDS_TYPES.endpoint).version, names: new Set(["a"]) });
    // Clusters: equal content, so the previous merged view's version (nothing to send).
    expect(second.resources(XDS_TYPES.cluster).version).toBe(first.resources(XDS_TYPES.cluster).version);
  });
});

// ResourceSet in steps (issue 10: a large outbound part was hashed, sorted and scanned for
// references in single steps of 0.2-0.5 s): versions are what versionOf says for any order of
// input, and only the references a set leaves to others are kept.
const eds = { ads: {}, resourceApiVersion: 2 } as const;
const edsCluster = (name: string) => ({ name, type: Cluster_DiscoveryType.EDS, edsClusterConfig: { edsConfig: eds } });
const emptyEndpoints = (name: string) => ({ clusterName: name, endpoints: [] });

describe("ResourceSet", () => {
  it("versions a type as versionOf does, whatever the order of its resources", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z.|0-9-]{1,12}$/), { minLength: 1, maxLength: 3000 }), (clusterNames) => {
        const set = ResourceSet.build({ [XDS_TYPES.cluster]: clusterNames.map(edsCluster), [XDS_TYPES.endpoint]: clusterNames.map(emptyEndpoints) });
        for (const type of [XDS_TYPES.cluster, XDS_TYPES.endpoint]) {
          const { version, resources } = set.resources(type);
          expect(version).toBe(versionOf(resources.values()));
          expect([...resources.keys()]).toEqual([...clusterNames].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
        }
      }),
      { numRuns: 30 },
    );
  });

  it("keeps every EDS name, and as external only the references it does not satisfy itself", () => {
    const route = {
      name: "80",
      virtualHosts: [
        { name: "a", domains: ["a"], routes: [{ match: { prefix: "/" }, route: { cluster: "a" } }] },
        { name: "b", domains: ["b"], routes: [{ match: { prefix: "/" }, route: { weightedClusters: { clusters: [{ name: "a", weight: 1 }, { name: "elsewhere", weight: 1 }] } } }] },
      ],
    };
    const set = ResourceSet.build({ [XDS_TYPES.cluster]: [edsCluster("a"), edsCluster("b")], [XDS_TYPES.endpoint]: [emptyEndpoints("a")], [XDS_TYPES.route]: [route] });
    expect(set.endpointReferences.map((r) => r.name)).toEqual(["a", "b"]);
    expect(set.external.endpoints.map((r) => r.name)).toEqual(["b"]);
    expect(set.external.clusters).toEqual([{ from: "route/80", name: "elsewhere", what: 'virtual host "b" routes to cluster' }]);
    expect(checkConsistency(Snapshot.compose([set])).map((p) => p.message)).toEqual(['EDS resource "b" is missing', 'virtual host "b" routes to cluster "elsewhere" is missing']);
    const other = ResourceSet.build({ [XDS_TYPES.cluster]: [edsCluster("elsewhere")], [XDS_TYPES.endpoint]: [emptyEndpoints("b"), emptyEndpoints("elsewhere")] });
    expect(checkConsistency(Snapshot.compose([set, other]))).toEqual([]);
  });
});

describe("encodings belong to their owner (DESIGN.md rule 8)", () => {
  it("sets built with one ResourceEncoder share encodings and equal bodies; other builds share nothing with them", () => {
    const input = clusters();
    const encoder = new ResourceEncoder();
    const a = ResourceSet.build(input, { encoder }).resources(XDS_TYPES.cluster).resources.get("a")!;
    expect(ResourceSet.build(input, { encoder }).resources(XDS_TYPES.cluster).resources.get("a")).toBe(a); // same message: encoded once
    expect(ResourceSet.build(clusters(), { encoder }).resources(XDS_TYPES.cluster).resources.get("a")).toBe(a); // equal body: interned
    expect(encoder.internedBodies).toBe(names.length);
    // No module-level memo: a build without this encoder encodes again (same bytes, its own objects).
    const other = ResourceSet.build(input).resources(XDS_TYPES.cluster).resources.get("a")!;
    expect(other).not.toBe(a);
    expect(other.body.equals(a.body)).toBe(true);
    expect(other.version).toBe(a.version);
    encoder.forgetInterned();
    expect(encoder.internedBodies).toBe(0);
  });
});
