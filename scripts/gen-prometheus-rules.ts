// Writes manifests/prometheus/istio-compat.rules.yaml from src/envoy/istio-compat-rules.ts.
//   npm run gen:prometheus-rules            # write
//   npm run gen:prometheus-rules -- --check # exit 1 when the file is not current
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { istioCompatRulesYaml } from "../src/envoy/istio-compat-rules.js";

const file = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "manifests", "prometheus", "istio-compat.rules.yaml");
const wanted = istioCompatRulesYaml();
if (process.argv.includes("--check")) {
  let current = "";
  try {
    current = readFileSync(file, "utf8");
  } catch {
    current = "";
  }
  if (current !== wanted) {
    process.stderr.write(`${file} is not what src/envoy/istio-compat-rules.ts generates: run npm run gen:prometheus-rules\n`);
    process.exit(1);
  }
} else {
  writeFileSync(file, wanted);
  process.stdout.write(`wrote ${file}\n`);
}
