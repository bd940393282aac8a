// Writes manifests/grafana/*.json from src/observability/grafana-dashboards.ts.
//   npm run gen:dashboards [-- --check]
import path from "node:path";
import { grafanaDashboardFiles } from "../src/observability/grafana-dashboards.js";
import { writeOrCheck } from "./generated-files.js";

const dir = path.resolve(import.meta.dirname, "..", "manifests", "grafana");
writeOrCheck(Object.entries(grafanaDashboardFiles()).map(([name, text]) => [path.join(dir, name), text]), "npm run gen:dashboards");
