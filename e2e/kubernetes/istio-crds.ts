// Istio's own CustomResourceDefinitions, for tests and benchmarks that run against a cluster
// with Istio's CRDs (not Weft's): kubernetes/customresourcedefinitions.gen.yaml of the istio.io/api
// module at the version istio.io/istio's go.mod requires, fetched through the Go module proxy
// (`go mod download`, cached by Go). Apply it server-side: the CRDs are too large for the
// client-side apply annotation.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** istio.io/istio as built for the istiod comparison (scripts/cached-go-build.sh --version istiod). */
export const ISTIO_VERSION = "v0.0.0-20260827124520-eed52ebb66ad";

export function istioCrdsFile(istioVersion = ISTIO_VERSION): { file: string; apiVersion: string } {
  const download = (mod: string) => JSON.parse(execFileSync("go", ["mod", "download", "-json", mod], { encoding: "utf8", cwd: os.tmpdir(), timeout: 300_000 })) as { Dir: string; GoMod: string };
  const istio = download(`istio.io/istio@${istioVersion}`);
  const apiVersion = readFileSync(istio.GoMod, "utf8").match(/^\s*istio\.io\/api (\S+)/m)?.[1];
  if (!apiVersion) throw new Error(`${istio.GoMod}: no istio.io/api requirement`);
  return { file: path.join(download(`istio.io/api@${apiVersion}`).Dir, "kubernetes", "customresourcedefinitions.gen.yaml"), apiVersion };
}
