// Writes manifests/prometheus/istio-compat.rules.yaml from src/envoy/istio-compat-rules.ts.
//   npm run gen:prometheus-rules            # write
//   npm run gen:prometheus-rules -- --check # exit 1 when the file is not current
import path from "node:path";
import { istioCompatRulesYaml } from "../src/envoy/istio-compat-rules.js";
import { writeOrCheck } from "./generated-files.js";

const file = path.resolve(import.meta.dirname, "..", "manifests", "prometheus", "istio-compat.rules.yaml");
writeOrCheck([[file, istioCompatRulesYaml()]], "npm run gen:prometheus-rules");
