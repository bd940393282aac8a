// Writes manifests/grafana/*.json from src/observability/grafana-dashboards.ts (`--check`: only
// compares, exit 1 when a file differs).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { grafanaDashboardFiles } from "../src/observability/grafana-dashboards.js";

const dir = new URL("../manifests/grafana/", import.meta.url);
const check = process.argv.includes("--check");
let stale = 0;
mkdirSync(dir, { recursive: true });
for (const [name, text] of Object.entries(grafanaDashboardFiles())) {
  const file = new URL(name, dir);
  let current = "";
  try {
    current = readFileSync(file, "utf8");
  } catch {
    // absent
  }
  if (current === text) continue;
  if (check) {
    process.stderr.write(`manifests/grafana/${name} is not what npm run gen:dashboards writes\n`);
    stale++;
  } else {
    writeFileSync(file, text);
    process.stdout.write(`wrote manifests/grafana/${name}\n`);
  }
}
process.exit(stale ? 1 : 0);
