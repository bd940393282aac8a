// Builds the mesh console (ui/) into dist/console/: app.js (ui/src/main.ts and cytoscape, bundled
// and minified by esbuild), app.css and index.html copied. Part of `npm run build`; the admin
// server serves the result at /ui (src/admin/mesh-console.ts). Prints the bundle's size.
//   npx tsx scripts/build-console.ts [--out DIR]
import { build } from "esbuild";
import { copyFile, mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { readFileSync } from "node:fs";

const root = fileURLToPath(new URL("..", import.meta.url));

export async function buildConsole(outDir = path.join(root, "dist", "console")): Promise<{ outDir: string; bytes: number; gzipBytes: number }> {
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: [path.join(root, "ui", "src", "main.ts")],
    outfile: path.join(outDir, "app.js"),
    bundle: true,
    minify: true,
    format: "esm",
    target: ["es2022"],
    platform: "browser",
    legalComments: "eof",
    logLevel: "warning",
  });
  await copyFile(path.join(root, "ui", "index.html"), path.join(outDir, "index.html"));
  await copyFile(path.join(root, "ui", "app.css"), path.join(outDir, "app.css"));
  const js = path.join(outDir, "app.js");
  return { outDir, bytes: (await stat(js)).size, gzipBytes: gzipSync(readFileSync(js)).length };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const i = process.argv.indexOf("--out");
  const r = await buildConsole(i > 0 ? path.resolve(process.argv[i + 1]!) : undefined);
  process.stdout.write(`mesh console: ${path.relative(root, r.outDir) || "."}/app.js ${(r.bytes / 1024).toFixed(1)} KiB (${(r.gzipBytes / 1024).toFixed(1)} KiB gzip)\n`);
}
