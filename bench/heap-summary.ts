// Summarises a V8 heap snapshot: self size and count per (node type, constructor name),
// largest first. Used to see what per-proxy state is made of (bench/mesh/run.ts writes one
// with MESH_HEAP_SNAPSHOT_DIR); compare two snapshots taken at different proxy counts.
//
//   npx tsx bench/heap-summary.ts FILE.heapsnapshot [TOP=30]
import { readFileSync } from "node:fs";

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error("usage: npx tsx bench/heap-summary.ts FILE.heapsnapshot [TOP]");
  process.exit(2);
}
const snap = JSON.parse(readFileSync(file, "utf8")) as HeapSnapshot;
const fields = snap.snapshot.meta.node_fields;
const stride = fields.length;
const typeIdx = fields.indexOf("type");
const nameIdx = fields.indexOf("name");
const sizeIdx = fields.indexOf("self_size");
const typeNames = snap.snapshot.meta.node_types[0];
const groups = new Map<string, { count: number; bytes: number }>();
let total = 0;
for (let i = 0; i < snap.nodes.length; i += stride) {
  const type = typeNames[snap.nodes[i + typeIdx]!]!;
  const size = snap.nodes[i + sizeIdx]!;
  // Strings and code are grouped by type only; objects by constructor name.
  const key = type === "object" || type === "closure" ? `${type} ${snap.strings[snap.nodes[i + nameIdx]!]}` : type;
  const g = groups.get(key) ?? { count: 0, bytes: 0 };
  g.count++;
  g.bytes += size;
  total += size;
  groups.set(key, g);
}
const top = [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, Number(topArg ?? 30));
console.log(`${file}: ${(total / 1e6).toFixed(1)} MB in ${snap.nodes.length / stride} nodes`);
console.log("| what | count | MB | % |\n|---|---|---|---|");
for (const [key, g] of top) console.log(`| ${key} | ${g.count} | ${(g.bytes / 1e6).toFixed(1)} | ${((100 * g.bytes) / total).toFixed(1)} |`);
