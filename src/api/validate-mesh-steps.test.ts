// validateMeshSteps (the mesh-wide check as steps, run in time slices by `weft serve`) gives
// exactly what the whole computation gives, and really is cut into small steps.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runInSlices } from "../work/work-steps.js";
import { randomMesh, sourcedAll } from "./testdata/random-mesh.js";
import type { InvalidResource } from "./validate-mesh.js";
import { validateMesh, validateMeshSteps } from "./validate-mesh.js";

describe("validateMeshSteps", () => {
  it("gives the same valid resources and issues as validateMesh, run in slices that give the event loop back after every step", async () => {
    await fc.assert(
      fc.asyncProperty(randomMesh(60), fc.boolean(), async (resources, withInvalid) => {
        // Some keys exist but are invalid: their "exists but is invalid" messages take the same path.
        const invalid: InvalidResource[] = withInvalid ? resources.slice(0, 2).map((s) => ({ key: `${s.resource.kind}/${s.resource.metadata.namespace}/${s.resource.metadata.name}-broken`, source: { file: "broken.yaml", document: 1 }, hosts: ["a.default.svc.cluster.local"] })) : [];
        const whole = validateMesh(resources, undefined, invalid);
        const sliced = await runInSlices(validateMeshSteps(resources, undefined, invalid), 0);
        expect(sliced).toEqual(whole);
        expect(sliced.valid.every((s, i) => s === whole.valid[i])).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it("checks a large mesh in many small steps (a few dozen resources each), not in one", () => {
    const values: object[] = [];
    for (let i = 0; i < 1000; i++) {
      values.push({ kind: "ServiceEntry", metadata: { name: `s${i}`, namespace: "default" }, spec: { hosts: [`s${i}.default.svc.cluster.local`], ports: [{ number: 80, name: "http", protocol: "HTTP" }], resolution: "STATIC", endpoints: [{ address: "10.0.0.1" }] } });
      // Every tenth route names a host that does not exist: the "did you mean" hints are part of the work.
      values.push({ kind: "VirtualService", metadata: { name: `s${i}`, namespace: "default" }, spec: { hosts: [`s${i}`], http: [{ route: [{ destination: { host: i % 10 === 0 ? `s${i}x` : `s${i}` } }] }] } });
    }
    const resources = sourcedAll(values);
    const steps = validateMeshSteps(resources);
    let count = 0;
    let result: ReturnType<typeof validateMesh> | undefined;
    for (;;) {
      const r = steps.next();
      if (r.done) {
        result = r.value;
        break;
      }
      count++;
    }
    expect(result.issues.filter((i) => i.message.includes("did you mean"))).toHaveLength(100);
    // 2000 resources: at least one step per 64 resources checked (the whole check was one step before).
    expect(count).toBeGreaterThanOrEqual(2000 / 64);
  });
});
