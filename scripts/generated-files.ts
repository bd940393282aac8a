// Writes generated files, or with --check only compares them: the one loop behind the npm run
// gen:* scripts. Exits 1 naming each file that differs (with --check) and how to regenerate it.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "..");

export function writeOrCheck(files: Iterable<[file: string, text: string]>, regenerate: string): void {
  const check = process.argv.includes("--check");
  let stale = 0;
  for (const [file, text] of files) {
    let current: string | undefined;
    try {
      current = readFileSync(file, "utf8");
    } catch {
      // absent
    }
    if (current === text) continue;
    if (check) {
      process.stderr.write(`${path.relative(ROOT, file)} differs from what is generated (run ${regenerate})\n`);
      stale++;
    } else {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, text);
      process.stdout.write(`wrote ${path.relative(ROOT, file)}\n`);
    }
  }
  if (stale) process.exit(1);
}
