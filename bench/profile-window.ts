// Self time of a V8 .cpuprofile (from `node --cpu-prof`) within a window, and a timeline of
// busy / GC / idle per slice, to see what the server did between a push and the last ACK
// (bench/mesh logs each step's wall-clock time).
//   npx tsx bench/profile-window.ts <file.cpuprofile> [--from T] [--to T] [--top N] [--slice-ms MS] [--mark REGEX] [--total] [--end-wall ISO]
// T is a wall-clock time HH:MM:SS[.mmm] (UTC) or a number of seconds after the profile's start.
// The profile's clock is monotonic: its end is taken as the file's modification time (the
// process wrote it on exit), or --end-wall. --slice-ms 1000 without a window finds the busy
// stretch; --total adds the top functions by inclusive time.
import { readFileSync, statSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const args = process.argv.slice(2);
const file = args[0]!;
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const prof = JSON.parse(readFileSync(file, "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };
const endWallMs = opt("end-wall") ? Date.parse(opt("end-wall")!) : statSync(file).mtimeMs;
const day = new Date(endWallMs).toISOString().slice(0, 10);
const toProfUs = (wallMs: number) => prof.endTime - (endWallMs - wallMs) * 1000;
/** A window bound in the profile's clock: HH:MM:SS is wall clock, a plain number seconds after the start. */
const bound = (s: string | undefined, d: number) => (s === undefined ? d : /^[0-9.]+$/.test(s) ? prof.startTime + Number(s) * 1e6 : toProfUs(Date.parse(`${day}T${s}Z`)));
const fromUs = bound(opt("from"), -Infinity);
const toUs = bound(opt("to"), Infinity);
const inclusive = args.includes("--total");
const top = Number(opt("top") ?? 25);
const sliceUs = Number(opt("slice-ms") ?? 0) * 1000;
/** --mark REGEX: the timeline also shows the share of samples with a frame matching it on the stack. */
const mark = opt("mark") ? new RegExp(opt("mark")!) : undefined;

const byId = new Map(prof.nodes.map((x) => [x.id, x]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const keyOf = (cf: Node["callFrame"]) => `${cf.functionName || "(anonymous)"} ${cf.url.replace(/^.*\/(node_modules|src|generated|bench)\//, "$1/")}:${cf.lineNumber + 1}`;
/** The first of our own or grpc-js frames above a sample (what a native/builtin frame was called for). */
function caller(id: number): string {
  for (let p = parent.get(id); p !== undefined; p = parent.get(p)) {
    const cf = byId.get(p)!.callFrame;
    if (cf.url && !cf.url.startsWith("node:")) return keyOf(cf);
  }
  return "?";
}

const self = new Map<string, number>();
const totalTime = new Map<string, number>();
const selfWithCaller = new Map<string, number>();
const slices = new Map<number, { busy: number; gc: number; total: number; marked: number }>();
const markedIds = new Map<number, boolean>();
function isMarked(id: number): boolean {
  if (!mark) return false;
  let m = markedIds.get(id);
  if (m === undefined) {
    const p = parent.get(id);
    m = mark.test(keyOf(byId.get(id)!.callFrame)) || (p !== undefined && isMarked(p));
    markedIds.set(id, m);
  }
  return m;
}
let t = prof.startTime;
let total = 0;
let idle = 0;
let gc = 0;
prof.samples.forEach((id, i) => {
  const dt = prof.timeDeltas[i] ?? 0;
  t += dt;
  if (t < fromUs || t > toUs) return;
  total += dt;
  const node = byId.get(id)!;
  const name = node.callFrame.functionName;
  if (name === "(idle)") idle += dt;
  if (name === "(garbage collector)") gc += dt;
  const key = keyOf(node.callFrame);
  self.set(key, (self.get(key) ?? 0) + dt);
  if (inclusive) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = keyOf(byId.get(cur)!.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      totalTime.set(k, (totalTime.get(k) ?? 0) + dt);
    }
  }
  if (!node.callFrame.url || node.callFrame.url.startsWith("node:") || name.startsWith("(")) {
    const k2 = `${key}  <-  ${caller(id)}`;
    selfWithCaller.set(k2, (selfWithCaller.get(k2) ?? 0) + dt);
  }
  if (sliceUs > 0) {
    const s = Math.floor((t - prof.endTime) / sliceUs);
    const e = slices.get(s) ?? { busy: 0, gc: 0, total: 0, marked: 0 };
    if (isMarked(id)) e.marked += dt;
    e.total += dt;
    if (name !== "(idle)") e.busy += dt;
    if (name === "(garbage collector)") e.gc += dt;
    slices.set(s, e);
  }
});
const busy = total - idle;
const ms = (us: number) => (us / 1000).toFixed(0);
console.log(`window ${opt("from") ?? "start"} .. ${opt("to") ?? "end"}: total ${ms(total)} ms, busy ${ms(busy)} ms (${((100 * busy) / Math.max(1, total)).toFixed(0)}%), GC ${ms(gc)} ms (${((100 * gc) / Math.max(1, busy)).toFixed(0)}% of busy)`);
for (const [k, v] of [...self.entries()].filter(([k]) => !k.startsWith("(idle)")).sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(v / 1000).toFixed(1).padStart(8)} ms ${((100 * v) / Math.max(1, busy)).toFixed(1).padStart(5)}%  ${k}`);
console.log("\nnative/builtin/GC frames by their nearest JS caller:");
for (const [k, v] of [...selfWithCaller.entries()].filter(([k]) => !k.startsWith("(idle)")).sort((a, b) => b[1] - a[1]).slice(0, Math.ceil(top / 2))) console.log(`${(v / 1000).toFixed(1).padStart(8)} ms ${((100 * v) / Math.max(1, busy)).toFixed(1).padStart(5)}%  ${k}`);
if (inclusive) {
  console.log("\nby total (inclusive) time:");
  for (const [k, v] of [...totalTime.entries()].filter(([k]) => !k.startsWith("(")).sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(v / 1000).toFixed(1).padStart(8)} ms ${((100 * v) / Math.max(1, busy)).toFixed(1).padStart(5)}%  ${k}`);
}
if (sliceUs > 0) {
  console.log(`\ntimeline (${sliceUs / 1000} ms slices, wall clock UTC): busy% gc%${mark ? ` ${mark.source}%` : ""}`);
  for (const [s, e] of [...slices.entries()].sort((a, b) => a[0] - b[0])) {
    const at = new Date(endWallMs + (s * sliceUs) / 1000).toISOString().slice(11, 23);
    console.log(`${at}  ${((100 * e.busy) / e.total).toFixed(0).padStart(3)}%  ${((100 * e.gc) / e.total).toFixed(0).padStart(3)}%  ${mark ? `${((100 * e.marked) / e.total).toFixed(0).padStart(3)}%  ` : ""}${"#".repeat(Math.round((20 * e.busy) / e.total))}`);
  }
}
