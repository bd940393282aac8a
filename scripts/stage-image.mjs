#!/usr/bin/env node
// Lays out what Weft's container image holds, in DIR: the compiled CLI and library (dist/src,
// dist/generated), the Envoy bootstrap template, the CRDs, package.json and the production
// dependencies only (npm ci --omit=dev from the lock). The Dockerfile runs exactly this in its
// build stage; e2e/image-layout.e2e.test.ts runs it in a temp dir and uses the result, so the
// image's layout is checked here although no Docker engine runs on this machine.
//
//   npm run build && node scripts/stage-image.mjs DIR
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const out = process.argv[2];
if (!out) {
  process.stderr.write("usage: node scripts/stage-image.mjs DIR   (after npm run build)\n");
  process.exit(2);
}
const dest = path.resolve(out);
if (!existsSync(path.join(repo, "dist", "src", "cli", "main.js"))) {
  process.stderr.write(`stage-image: ${path.join(repo, "dist/src/cli/main.js")} is missing; run npm run build first\n`);
  process.exit(1);
}
if (existsSync(dest) && readdirSync(dest).length > 0) {
  process.stderr.write(`stage-image: ${dest} is not empty\n`);
  process.exit(1);
}
mkdirSync(dest, { recursive: true });

// Compiled code without tests, source maps of tests, e2e or bench.
const keep = (src) => !/\.test\.(js|js\.map)$/.test(src) && !src.includes(`${path.sep}testdata${path.sep}`);
for (const dir of ["dist/src", "dist/generated"]) {
  cpSync(path.join(repo, dir), path.join(dest, dir), { recursive: true, filter: keep });
}
for (const dir of ["envoy-bootstrap", "manifests/crds"]) {
  cpSync(path.join(repo, dir), path.join(dest, dir), { recursive: true });
}
// package.json and the lock as they are (npm ci needs both in step); --omit=dev installs the
// production dependencies only.
for (const file of ["package.json", "package-lock.json"]) cpSync(path.join(repo, file), path.join(dest, file));
execFileSync("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], {
  cwd: dest,
  stdio: ["ignore", "inherit", "inherit"],
  env: { ...process.env, npm_config_update_notifier: "false" },
});
process.stdout.write(`stage-image: ${dest} holds the image's /opt/weft\n`);
