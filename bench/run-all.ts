// Runs every benchmark one after the other (never two at once: the machine's cores are the
// instrument) and writes bench/results/summary.md: each benchmark's summary table, how long it
// took, and where its full results are. Environment variables of each benchmark pass through;
// BENCH_ONLY=storm,mesh,... runs a subset.
//
//   npm run bench
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

interface Bench {
  name: string;
  script: string;
  result: string;
  what: string;
  env?: Record<string, string>;
}

const BENCHES: Bench[] = [
  { name: "ack", script: "bench/xds-ack-latency.ts", result: "xds-ack-latency.md", what: "snapshot update -> real Envoy ACK" },
  { name: "edit", script: "bench/file-edit-to-ack.ts", result: "file-edit-to-ack.md", what: "file edit -> 7 demo Envoys ACKed" },
  { name: "ca", script: "bench/ca-issuance.ts", result: "ca-issuance.md", what: "scenario 7: certificate issuance" },
  { name: "mesh", script: "bench/mesh/run.ts", result: "mesh.md", what: "scenarios 3 and 5: push convergence on Istio's load shape, churn" },
  { name: "storm", script: "bench/storm/run.ts", result: "storm.md", what: "scenarios 2 and 4: connection storm, memory per proxy" },
  { name: "parity", script: "bench/parity/run.ts", result: "parity.md", what: "scenario 1: Envoy parity with go-control-plane's integration shape" },
  // BENCH_PAIRS is also the storm's; DATAPLANE_PAIRS sets this one alone.
  { name: "dataplane", script: "bench/dataplane/run.ts", result: "dataplane.md", what: "scenario 6: data-plane overhead of our config", env: { BENCH_PAIRS: process.env.DATAPLANE_PAIRS ?? "5" } },
  { name: "validate", script: "bench/validate-scale.ts", result: "validate-scale.md", what: "validation and hot reload of 500..10,000-service configs (needs npm run build)" },
  { name: "istiod", script: "bench/istiod/run.ts", result: "istiod-vs-weft.md", what: "istiod vs Weft on the same kube-apiserver (needs npm run build and scripts/cached-go-build.sh istiod; BENCH_ISTIOD_SIZE=small|full)" },
  { name: "calibrate", script: "bench/calibrate/run.ts", result: "loadgen-calibration.md", what: "load generator vs 10 real Envoys" },
];

function log(msg: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

/** The first markdown table after the first "##" heading (the summary), with its heading. */
function summaryOf(file: string): string {
  if (!existsSync(file)) return "(no result file)";
  const lines = readFileSync(file, "utf8").split("\n");
  const h = lines.findIndex((l) => l.startsWith("## "));
  const start = lines.findIndex((l, i) => i > h && l.startsWith("|"));
  if (start < 0) return "(no table)";
  let end = start;
  while (end < lines.length && lines[end]!.startsWith("|")) end++;
  return [h >= 0 ? `**${lines[h]!.replace(/^##\s*/, "")}**` : "", "", ...lines.slice(start, end)].join("\n");
}

const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim());
const selected = BENCHES.filter((b) => !only || only.includes(b.name));
const ran: { bench: Bench; seconds: number; status: number | null }[] = [];
// BENCH_SUMMARY_ONLY=1: rebuild summary.md from the result files already there.
for (const [i, bench] of (process.env.BENCH_SUMMARY_ONLY ? [] : selected).entries()) {
  log(`(${i + 1}/${selected.length}) ${bench.name}: ${bench.what} — npx tsx ${bench.script}`);
  const started = Date.now();
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, bench.script)], { cwd: ROOT, stdio: "inherit", env: { ...process.env, ...bench.env } });
  const seconds = (Date.now() - started) / 1000;
  ran.push({ bench, seconds, status: r.status });
  log(`${bench.name}: ${r.status === 0 ? "done" : `FAILED (exit ${r.status})`} in ${seconds.toFixed(0)} s`);
}

if (process.env.BENCH_SUMMARY_ONLY) for (const bench of selected) ran.push({ bench, seconds: NaN, status: existsSync(path.join(ROOT, "bench/results", bench.result)) ? 0 : null });
const md = ["# Benchmark summary", "", `Run: ${new Date().toISOString()} — \`npm run bench\`${only ? ` with BENCH_ONLY=${only.join(",")}` : ""}. Each section: the summary table of one benchmark; full tables, per-run rows, machine, versions and exact commands are in the linked file.`, ""];
for (const { bench, seconds, status } of ran) {
  md.push(`## ${bench.what}`, "", `\`npx tsx ${bench.script}\` — ${status === 0 ? "ok" : `failed (exit ${status})`}, ${seconds.toFixed(0)} s — [${bench.result}](${bench.result})`, "", summaryOf(path.join(ROOT, "bench/results", bench.result)), "");
}
writeFileSync(path.join(ROOT, "bench/results/summary.md"), md.join("\n"));
log("wrote bench/results/summary.md");
process.exit(ran.every((r) => r.status === 0) ? 0 : 1);
