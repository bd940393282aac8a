// Prints the top self-time functions of a V8 .cpuprofile (from `node --cpu-prof`).
//   npx tsx bench/storm/top-profile.ts <file.cpuprofile> [N] [--from S] [--to S] [--timeline] [--total]
//   --from/--to: only samples between S seconds after the profile's start (e.g. the initial
//     sync's window, found with --timeline); --timeline: busy ms per second of the profile;
//   --total: also the top functions by total (inclusive) time.
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return Number(v);
};
const bool = (name: string) => {
  const i = args.indexOf(name);
  if (i >= 0) args.splice(i, 1);
  return i >= 0;
};
const from = flag("--from");
const to = flag("--to");
const timeline = bool("--timeline");
const inclusive = bool("--total");
const prof = JSON.parse(readFileSync(args[0]!, "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number };
const n = Number(args[1] ?? 15);
const byId = new Map(prof.nodes.map((x) => [x.id, x]));
const parent = new Map<number, number>();
for (const x of prof.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
const keyOf = (x: Node) => {
  const cf = x.callFrame;
  return `${cf.functionName || "(anonymous)"} ${cf.url.replace(/^.*\/(node_modules|src|generated|bench)\//, "$1/")}:${cf.lineNumber + 1}`;
};
const self = new Map<string, number>();
const total = new Map<string, number>();
const perSecond: { all: number; idle: number }[] = [];
let all = 0;
let t = 0;
prof.samples.forEach((id, i) => {
  const dt = prof.timeDeltas[i] ?? 0;
  t += dt;
  const sec = Math.floor(t / 1e6);
  const node = byId.get(id)!;
  const isIdle = node.callFrame.functionName === "(idle)";
  const s = (perSecond[sec] ??= { all: 0, idle: 0 });
  s.all += dt;
  if (isIdle) s.idle += dt;
  if ((from !== undefined && t < from * 1e6) || (to !== undefined && t >= to * 1e6)) return;
  all += dt;
  const key = keyOf(node);
  self.set(key, (self.get(key) ?? 0) + dt);
  if (inclusive) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = keyOf(byId.get(cur)!);
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + dt);
    }
  }
});
if (timeline) {
  console.log("second: busy ms (of the profile's start)");
  console.log(perSecond.map((s, i) => `${i}:${((s?.all ?? 0) - (s?.idle ?? 0)) / 1000 | 0}`).join(" "));
}
const idle = [...self.entries()].filter(([k]) => k.startsWith("(idle)")).reduce((a, [, v]) => a + v, 0);
const busy = all - idle;
const gc = self.get([...self.keys()].find((k) => k.startsWith("(garbage collector)")) ?? "") ?? 0;
console.log(`window ${from ?? 0}-${to ?? "end"} s: total ${(all / 1000).toFixed(0)} ms, busy ${(busy / 1000).toFixed(0)} ms, GC ${((100 * gc) / busy).toFixed(1)}% of busy`);
for (const [k, v] of [...self.entries()].filter(([k]) => !k.startsWith("(idle)")).sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${(v / 1000).toFixed(1).padStart(8)} ms ${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`);
if (inclusive) {
  console.log("by total (inclusive) time:");
  for (const [k, v] of [...total.entries()].filter(([k]) => !k.startsWith("(")).sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${(v / 1000).toFixed(1).padStart(8)} ms ${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`);
}
