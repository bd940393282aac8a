// Benchmark: what a one-line edit to one file of a large config directory costs the file
// source, with and without its per-file parse cache, and what the whole reload (mesh checks
// included) costs. "Without cache" is a fresh FileSource per reload: it reads and parses every
// file, as the file source did before the cache.
//
//   npx tsx bench/config-file-reload.ts          (BENCH_FILES=100 BENCH_PER_FILE=50 BENCH_N=7)
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ConfigAggregator } from "../src/sources/config-aggregator.js";
import { FileSource } from "../src/sources/file/file-source.js";

const FILES = Number(process.env.BENCH_FILES ?? 100);
const PER_FILE = Number(process.env.BENCH_PER_FILE ?? 50);
const N = Number(process.env.BENCH_N ?? 7);

function fileText(f: number, port: number): string {
  const docs: string[] = [];
  for (let i = 0; i < PER_FILE; i++) {
    const host = `svc-${f}-${i}.bench.internal`;
    docs.push(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: svc-${f}-${i}
  namespace: team-${f % 10}
spec:
  hosts:
  - ${host}
  ports:
  - number: ${port}
    name: http
    protocol: HTTP
  resolution: STATIC
  endpoints:
  - address: 10.${f % 250}.${Math.floor(i / 250)}.${(i % 250) + 1}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: vs-${f}-${i}
  namespace: team-${f % 10}
spec:
  hosts:
  - ${host}
  http:
  - route:
    - destination:
        host: ${host}
      weight: 100
    timeout: 5s
`);
  }
  return docs.join("---\n");
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const dir = mkdtempSync(path.join(os.tmpdir(), "weft-bench-reload-"));
try {
  let bytes = 0;
  for (let f = 0; f < FILES; f++) {
    const text = fileText(f, 80);
    bytes += Buffer.byteLength(text);
    writeFileSync(path.join(dir, `f${String(f).padStart(4, "0")}.yaml`), text);
  }
  const edited = path.join(dir, "f0007.yaml");
  const rows: { what: string; snapshotMs: number; reloadMs: number; parsed: number }[] = [];

  // Without the cache: a fresh source each time reads and parses every file.
  const cold = { snapshot: [] as number[], reload: [] as number[], parsed: 0 };
  for (let n = 0; n < N; n++) {
    writeFileSync(edited, readFileSync(edited, "utf8").replace(/number: \d+/, `number: ${81 + n}`));
    const source = new FileSource(dir);
    let t = performance.now();
    source.snapshot();
    cold.snapshot.push(performance.now() - t);
    const aggregator = new ConfigAggregator([new FileSource(dir)]);
    t = performance.now();
    aggregator.load();
    cold.reload.push(performance.now() - t);
    cold.parsed = source.stats.parsed;
  }
  rows.push({ what: "without cache (every file read and parsed)", snapshotMs: median(cold.snapshot), reloadMs: median(cold.reload), parsed: cold.parsed });

  // With the cache: one source, a one-line edit between reloads.
  const source = new FileSource(dir);
  const aggregator = new ConfigAggregator([source]);
  aggregator.load();
  const warm = { snapshot: [] as number[], reload: [] as number[], parsed: 0 };
  for (let n = 0; n < N; n++) {
    writeFileSync(edited, readFileSync(edited, "utf8").replace(/number: \d+/, `number: ${200 + n}`));
    const before = source.stats.parsed;
    let t = performance.now();
    source.snapshot();
    warm.snapshot.push(performance.now() - t);
    warm.parsed = source.stats.parsed - before;
    writeFileSync(edited, readFileSync(edited, "utf8").replace(/number: \d+/, `number: ${300 + n}`));
    t = performance.now();
    aggregator.load();
    warm.reload.push(performance.now() - t);
  }
  rows.push({ what: "with the per-file cache (one file changed)", snapshotMs: median(warm.snapshot), reloadMs: median(warm.reload), parsed: warm.parsed });

  const header = `${FILES} files, ${FILES * PER_FILE * 2} resources, ${(bytes / 1024 / 1024).toFixed(1)} MiB; median of ${N}; ${new Date().toISOString()}, load average ${os.loadavg()[0]!.toFixed(1)}`;
  const table = [
    "| one-line edit | file source snapshot ms | whole reload ms (snapshot + mesh checks) | files parsed |",
    "|---|---|---|---|",
    ...rows.map((r) => `| ${r.what} | ${r.snapshotMs.toFixed(0)} | ${r.reloadMs.toFixed(0)} | ${r.parsed} |`),
  ].join("\n");
  process.stdout.write(`${header}\n\n${table}\n`);
  writeFileSync(path.join(import.meta.dirname, "results", "config-file-reload.md"), `# Config file reload: per-file parse cache\n\n\`npx tsx bench/config-file-reload.ts\`: ${header}\n\n${table}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
