import { describe, expect, it } from "vitest";
import { buildEdsCluster, buildLoadAssignment } from "../envoy/builders.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import { ResourceSet, Snapshot, type SnapshotInput } from "./snapshot.js";

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
    const after = ResourceSet.build(endpoints({ b: 9001 }), undefined, sameContent);
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
    const middle = ResourceSet.build(endpoints({ a: 9005 }), undefined, first.parts[1]);
    const second = Snapshot.compose([ResourceSet.build(clusters()), middle, ResourceSet.build({ [XDS_TYPES.endpoint]: [buildLoadAssignment("x", [{ address: "127.0.0.1", port: 1 }])] })], first);
    const typed = second.resources(XDS_TYPES.endpoint);
    expect(typed.version).not.toBe(first.resources(XDS_TYPES.endpoint).version);
    expect(typed.changes).toEqual({ since: first.resources(XDS_TYPES.endpoint).version, names: new Set(["a"]) });
    // Clusters: equal content, so the previous merged view's version (nothing to send).
    expect(second.resources(XDS_TYPES.cluster).version).toBe(first.resources(XDS_TYPES.cluster).version);
  });
});
