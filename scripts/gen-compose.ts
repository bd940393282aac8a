// Writes examples/compose/ from src/demo/compose-topology.ts; --check fails (exit 1) when the
// checked-in files differ from what would be written.
//
//   npm run gen:compose [-- --check]
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { composeFiles } from "../src/demo/compose-topology.js";

const dir = path.resolve(import.meta.dirname, "..", "examples", "compose");
const check = process.argv.includes("--check");
const files = composeFiles();
const stale: string[] = [];
for (const [rel, content] of files) {
  const file = path.join(dir, rel);
  const current = existsSync(file) ? readFileSync(file, "utf8") : undefined;
  if (current === content) continue;
  if (check) stale.push(rel);
  else {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
}
for (const sub of ["config", "bootstrap"]) {
  const d = path.join(dir, sub);
  if (!existsSync(d)) continue;
  for (const name of readdirSync(d)) if (!files.has(`${sub}/${name}`)) stale.push(`${sub}/${name} (not generated: remove it)`);
}
if (stale.length) {
  process.stderr.write(`examples/compose differs from src/demo/compose-topology.ts: ${stale.join(", ")}\n` + (check ? "run: npm run gen:compose\n" : ""));
  process.exit(1);
}
process.stdout.write(`examples/compose: ${files.size} files ${check ? "up to date" : "written"}\n`);
