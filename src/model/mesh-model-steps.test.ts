// buildMeshModelSteps and diffModelsSteps (the model build and diff as steps, run in time slices
// by `weft serve`) give exactly what the whole computations give.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runInSlices } from "../work/work-steps.js";
import { randomEdit, randomMesh } from "../api/testdata/random-mesh.js";
import { validateMesh } from "../api/validate-mesh.js";
import type { MeshConfig, Sourced } from "../api/types.js";
import { buildMeshModel, buildMeshModelSteps } from "./mesh-model.js";
import { diffModels, diffModelsSteps } from "./model-diff.js";

/** What the aggregator would give the controller for these resources. */
function configOf(resources: Sourced[]): MeshConfig {
  const { valid, issues } = validateMesh(resources);
  return { resources: valid, issues };
}

describe("mesh model and model diff as steps", () => {
  it("buildMeshModelSteps run in slices builds the same model as buildMeshModel", async () => {
    await fc.assert(
      fc.asyncProperty(randomMesh(60), async (resources) => {
        const config = configOf(resources);
        const sliced = await runInSlices(buildMeshModelSteps(config, { rootNamespace: "istio-system" }), 0);
        expect(sliced).toEqual(buildMeshModel(config, { rootNamespace: "istio-system" }));
      }),
      { numRuns: 150 },
    );
  });

  it("diffModelsSteps run in slices finds the same change as diffModels, for random edits of a random mesh", async () => {
    const kinds = new Set<string>();
    await fc.assert(
      fc.asyncProperty(randomEdit(40), async ({ before, after }) => {
        const [a, b] = [buildMeshModel(configOf(before)), buildMeshModel(configOf(after))];
        const whole = diffModels(a, b);
        kinds.add(whole.kind);
        expect(await runInSlices(diffModelsSteps(a, b), 0)).toEqual(whole);
      }),
      { numRuns: 200 },
    );
    // The edits reach every path of the diff (none, endpoints, services, full).
    expect([...kinds].sort()).toEqual(["endpoints", "full", "none", "services"]);
  });
});
