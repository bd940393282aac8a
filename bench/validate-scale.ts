// Benchmark: validation and hot reload at scale. Generates a config directory of N
// ServiceEntries + N VirtualServices + N/2 DestinationRules + N/100 Gateways (realistic
// shapes: several ports, inline endpoints, header matches, retries, weighted routes across
// namespaces, subsets; about 1% of routes name a misspelt host, an undefined subset or a
// misspelt gateway, so "did you mean" hints are exercised), then measures
//
//   validate  `weft validate -o json DIR` (the built CLI, dist/): wall time and peak RSS
//             (/usr/bin/time), for each N;
//   serve     the `weft serve` path (startMeshRunner on the directory, one sidecar class
//             registered as a connected proxy would) on one config: a one-line edit to one
//             file, then the time until the new config is applied, the event loop's longest
//             stall during it (perf_hooks.monitorEventLoopDelay), the most main-thread CPU time
//             used in one stall (process.threadCpuUsage between two turns of a 2 ms ticker: what
//             the machine's load changes least) and the process's peak RSS.
//
//   npm run build && npx tsx bench/validate-scale.ts
//   BENCH_VALIDATE_N=500,1000,2000 BENCH_SERVE_N=5300 BENCH_TIMEOUT_S=120 npx tsx bench/validate-scale.ts
//   BENCH_SERVE_N=0 (skip serve)  BENCH_VALIDATE_N= (skip validate)  BENCH_EDITS=3
//   BENCH_KEEP=1 keeps the generated directories (printed).
//   npx tsx bench/validate-scale.ts --generate N PARENT_DIR   only writes PARENT_DIR/mesh-N
//   npx tsx bench/validate-scale.ts --render                  rewrites the .md from the .json
// Results: bench/results/validate-scale.md and .json.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";

const ROOT = path.resolve(import.meta.dirname, "..");
const CLI = path.join(ROOT, "dist", "src", "cli", "main.js");
const NAMESPACES = 20;

// ---------------------------------------------------------------------------------------
// The generated mesh

export interface GeneratedConfig {
  dir: string;
  bytes: number;
  resources: number;
  /** References made invalid on purpose: each is one validation error. */
  invalidReferences: number;
  /** The file the serve benchmark edits, and the line it changes. */
  editFile: string;
  editLine: string;
}

function nsOf(i: number): string {
  return `ns-${i % NAMESPACES}`;
}

function fqdn(i: number): string {
  return `svc-${i}.${nsOf(i)}.svc.cluster.local`;
}

function ip(base: number, i: number): string {
  return `${base}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

function serviceEntry(i: number): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: svc-${i}
  namespace: ${nsOf(i)}
  labels: { app: svc-${i}, team: team-${i % 37}, tier: ${i % 3 === 0 ? "frontend" : "backend"} }
  annotations: { owner: "team-${i % 37}@example.com", description: "generated service ${i} for the validation benchmark" }
spec:
  hosts: [${fqdn(i)}]
  addresses: [${ip(240, i)}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - { number: 8080, name: http-web, protocol: HTTP, targetPort: 18080 }
  - { number: 9090, name: grpc-api, protocol: GRPC }
  - { number: 15090, name: http-metrics, protocol: HTTP }
  endpoints:
${[0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((e) => `  - { address: ${ip(10, i * 8 + e)}, labels: { version: v${(e % 2) + 1}, zone: ${"abc"[e % 3]} }, locality: us-east/zone-${"abc"[e % 3]}, weight: ${e + 1} }`).join("\n")}
`;
}

/** What is wrong with route i, if anything (about 1% of routes). */
function mistake(i: number): "host" | "subset" | "gateway" | undefined {
  if (i % 100 === 17) return "host";
  if (i % 200 === 58) return "subset";
  if (i % 200 === 159) return "gateway";
  return undefined;
}

function virtualService(i: number, n: number): string {
  const other = (i * 7 + 3) % n;
  const wrong = mistake(i);
  const gateways = i % 10 === 0 ? `\n  gateways: [mesh, istio-system/gw-${(i / 10) % Math.max(1, Math.floor(n / 100))}${wrong === "gateway" ? "x" : ""}]` : wrong === "gateway" ? `\n  gateways: [mesh, istio-system/gw-0x]` : "";
  const host = wrong === "host" ? `svc-${i}.${nsOf(i)}.svc.cluster.lcoal` : `svc-${i}`;
  const hasRule = i % 2 === 0;
  const subset = (v: string) => (hasRule ? `, subset: ${wrong === "subset" ? "v9" : v}` : "");
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: svc-${i}
  namespace: ${nsOf(i)}
  labels: { app: svc-${i}, team: team-${i % 37} }
  annotations: { owner: "team-${i % 37}@example.com", change-ticket: "OPS-${100000 + i}" }
spec:
  hosts: [svc-${i}, ${fqdn(i)}]${gateways}
  http:
  - name: canary
    match:
    - uri: { prefix: /api/v2/ }
      headers: { x-canary: { exact: "true" } }
    - queryParams: { canary: { exact: "1" } }
    route:
    - destination: { host: ${host}${subset("v2")}, port: { number: 8080 } }
    timeout: 3s
    retries: { attempts: 3, perTryTimeout: 1s, retryOn: "5xx,reset,connect-failure" }
  - name: reports
    match:
    - uri: { regex: "^/reports/[0-9]+/(summary|detail)$" }
      method: { exact: GET }
    route:
    - destination: { host: svc-${i}, port: { number: 9090 } }
    corsPolicy: { allowOrigins: [{ exact: "https://app.example.com" }], allowMethods: [GET], maxAge: 24h }
  - name: admin
    match:
    - uri: { prefix: /admin }
      headers: { x-team: { exact: team-${i % 37} } }
    fault: { abort: { percentage: { value: 0.1 }, httpStatus: 503 } }
    route:
    - destination: { host: svc-${i}, port: { number: 8080 } }
  - name: legacy
    match:
    - uri: { prefix: /v1/ }
    - uri: { exact: /legacy }
      ignoreUriCase: true
    rewrite: { uri: /api/v1/ }
    route:
    - destination: { host: svc-${i}, port: { number: 8080 } }
    timeout: 10s
    retries: { attempts: 2, perTryTimeout: 4s }
  - name: default
    route:
    - destination: { host: svc-${i}${subset("v1")}, port: { number: 8080 } }
      weight: 90
    - destination: { host: ${fqdn(other)}, port: { number: 8080 } }
      weight: 10
    mirror: { host: svc-${i}, port: { number: 15090 } }
    mirrorPercentage: { value: 1 }
    headers:
      request: { set: { x-weft-route: svc-${i}-default }, remove: [x-debug] }
      response: { set: { x-served-by: svc-${i} } }
    timeout: 5s
`;
}

function destinationRule(i: number): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: svc-${i}
  namespace: ${nsOf(i)}
spec:
  host: svc-${i}
  trafficPolicy:
    connectionPool: { tcp: { maxConnections: 100 }, http: { http1MaxPendingRequests: 64 } }
    outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s }
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`;
}

function gateway(g: number): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: gw-${g}
  namespace: istio-system
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 80, name: http, protocol: HTTP }
    hosts: ["*/svc-${g}.example.com"]
`;
}

/** Writes the mesh: per namespace one file of ServiceEntries, one of VirtualServices, one of DestinationRules; gateways.yaml. */
export function generateConfig(n: number, parent: string): GeneratedConfig {
  const dir = path.join(parent, `mesh-${n}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const byNs = Array.from({ length: NAMESPACES }, () => ({ se: [] as string[], vs: [] as string[], dr: [] as string[] }));
  let invalid = 0;
  for (let i = 0; i < n; i++) {
    const b = byNs[i % NAMESPACES]!;
    b.se.push(serviceEntry(i));
    b.vs.push(virtualService(i, n));
    if (i % 2 === 0) b.dr.push(destinationRule(i));
    const wrong = mistake(i);
    if (wrong) invalid += wrong === "subset" ? 2 : 1; // the wrong subset is named by two routes
  }
  const gateways = Math.max(1, Math.floor(n / 100));
  let bytes = 0;
  const write = (name: string, docs: string[]): void => {
    const text = docs.join("---\n");
    writeFileSync(path.join(dir, name), text);
    bytes += Buffer.byteLength(text);
  };
  byNs.forEach((b, k) => {
    write(`ns-${k}-services.yaml`, b.se);
    write(`ns-${k}-routes.yaml`, b.vs);
    write(`ns-${k}-rules.yaml`, b.dr);
  });
  write("gateways.yaml", Array.from({ length: gateways }, (_, g) => gateway(g)));
  return { dir, bytes, resources: n * 2 + Math.ceil(n / 2) + gateways, invalidReferences: invalid, editFile: path.join(dir, "ns-1-routes.yaml"), editLine: "    timeout: 5s" };
}

// ---------------------------------------------------------------------------------------
// weft validate

interface ValidateResult {
  n: number;
  resources: number;
  mb: number;
  seconds: number | null;
  /** User + system CPU seconds: what the machine being shared (load) changes least. */
  cpuSeconds: number | null;
  peakRssMb: number | null;
  errors: number | null;
  expectedErrors: number;
  note?: string;
}

function runValidate(config: GeneratedConfig, n: number, timeoutS: number): Promise<ValidateResult> {
  const base: ValidateResult = { n, resources: config.resources, mb: round(config.bytes / 1e6, 1), seconds: null, cpuSeconds: null, peakRssMb: null, errors: null, expectedErrors: config.invalidReferences };
  return new Promise((resolve) => {
    const child = spawn("/usr/bin/time", ["-f", "TIME %e %U %S %M", process.execPath, CLI, "validate", "-o", "json", config.dir], { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutS * 1000);
    child.on("close", () => {
      clearTimeout(timer);
      const m = err.match(/TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/);
      if (!m) return resolve({ ...base, note: `no result within ${timeoutS} s (killed)` });
      let errors: number | null = null;
      try {
        // The planted references are IST0101 findings: errors before they became warnings (as in Istio), warnings since.
        const { summary } = JSON.parse(Buffer.concat(out).toString()) as { summary: { errors: number; warnings: number } };
        errors = summary.errors + summary.warnings;
      } catch {
        /* reported as null */
      }
      resolve({ ...base, seconds: Number(m[1]), cpuSeconds: round(Number(m[2]) + Number(m[3]), 2), peakRssMb: Math.round(Number(m[4]) / 1024), errors });
    });
  });
}

// ---------------------------------------------------------------------------------------
// weft serve: a one-line edit

interface ServeResult {
  n: number;
  mb: number;
  initialLoadSeconds: number;
  edits: { appliedMs: number; cpuMs: number; maxEventLoopDelayMs: number; maxStallCpuMs?: number }[];
  peakRssMb: number;
}

/** Runs in a child process (clean RSS): the mesh runner on `dir`, `edits` one-line edits. */
async function serveChild(dir: string, editFile: string, editLine: string, edits: number): Promise<void> {
  const { startMeshRunner } = await import("../src/runner/mesh-runner.js");
  const { silentLogger } = await import("../src/log/logger.js");
  const { NODE_METADATA } = await import("../src/model/proxy.js");
  const { FileSource } = await import("../src/sources/file/file-source.js");
  let applied: (() => void) | undefined;
  const t0 = performance.now();
  const runner = await startMeshRunner({ logger: silentLogger(), sources: [new FileSource(dir)], debounceMs: 100, onApplied: () => applied?.() });
  // One connected sidecar in ns-1, held as an open stream holds it (a class nobody holds is
  // released after a grace period): generated now and regenerated on each change.
  const node = { id: "sidecar~10.0.0.1~svc-1.ns-1~ns-1.svc.cluster.local", metadata: { [NODE_METADATA.namespace]: "ns-1", [NODE_METADATA.labels]: JSON.stringify({ app: "svc-1", version: "v1" }) } };
  const admission = runner.controller.admit(node as never, undefined);
  if ("refused" in admission) throw new Error(`the sidecar class was refused: ${admission.refused.message}`);
  // The class is generated in the controller's work queue (time-sliced): wait for its snapshot.
  while (!runner.cp.cache.get(admission.key)) await new Promise((r) => setTimeout(r, 20));
  const initialLoadSeconds = (performance.now() - t0) / 1000;
  const original = readFileSync(editFile, "utf8");
  const results: ServeResult["edits"] = [];
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  // Main-thread CPU between two turns of the ticker: the longest time the loop was kept, in CPU.
  let maxStallCpuUs = 0;
  let lastCpu = process.threadCpuUsage();
  let ticking = true;
  const tick = (): void => {
    const now = process.threadCpuUsage();
    maxStallCpuUs = Math.max(maxStallCpuUs, now.user + now.system - lastCpu.user - lastCpu.system);
    lastCpu = now;
    if (ticking) setTimeout(tick, 2);
  };
  tick();
  for (let k = 0; k < edits; k++) {
    await new Promise((r) => setTimeout(r, 300));
    histogram.reset();
    maxStallCpuUs = 0;
    const done = new Promise<void>((resolve) => (applied = resolve));
    const start = performance.now();
    const cpu = process.cpuUsage();
    writeFileSync(editFile, original.replace(editLine, `    timeout: ${6 + k}s`));
    await Promise.race([done, new Promise((r) => setTimeout(r, 600_000))]);
    const appliedMs = performance.now() - start;
    const used = process.cpuUsage(cpu);
    await new Promise((r) => setTimeout(r, 50)); // let the histogram see the end of the last stall
    results.push({ appliedMs: Math.round(appliedMs), cpuMs: Math.round((used.user + used.system) / 1000), maxEventLoopDelayMs: Math.round(histogram.max / 1e6), maxStallCpuMs: Math.round(maxStallCpuUs / 1000) });
  }
  histogram.disable();
  ticking = false;
  writeFileSync(editFile, original);
  admission.release?.();
  await runner.close(100);
  const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
  process.stdout.write(`RESULT ${JSON.stringify({ initialLoadSeconds: round(initialLoadSeconds, 2), edits: results, peakRssMb })}\n`);
  process.exit(0);
}

function runServe(config: GeneratedConfig, n: number, edits: number, timeoutS: number): ServeResult | { n: number; note: string } {
  try {
    const out = execFileSync(process.execPath, ["--import", "tsx", import.meta.filename, "--serve-child", config.dir, config.editFile, config.editLine, String(edits)], {
      cwd: ROOT,
      timeout: timeoutS * 1000 * (edits + 1),
      stdio: ["ignore", "pipe", "inherit"],
      maxBuffer: 1 << 20,
    }).toString();
    const line = out.split("\n").find((l) => l.startsWith("RESULT "));
    if (!line) return { n, note: "no result" };
    return { n, mb: round(config.bytes / 1e6, 1), ...(JSON.parse(line.slice(7)) as Omit<ServeResult, "n" | "mb">) };
  } catch (err) {
    return { n, note: `failed: ${(err as Error).message.split("\n")[0]}` };
  }
}

// ---------------------------------------------------------------------------------------

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function numbers(env: string | undefined, fallback: number[]): number[] {
  if (env === undefined) return fallback;
  return env
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(Number)
    .filter((x) => Number.isInteger(x) && x > 0);
}

function gitCommit(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT }).toString().trim();
  } catch {
    return "unknown";
  }
}

async function main(): Promise<void> {
  const validateNs = numbers(process.env.BENCH_VALIDATE_N, [500, 1000, 2000, 4000, 10000]);
  const serveNs = numbers(process.env.BENCH_SERVE_N, [5300]);
  const timeoutS = Number(process.env.BENCH_TIMEOUT_S ?? 600);
  const edits = Number(process.env.BENCH_EDITS ?? 3);
  if (validateNs.length > 0) statSync(CLI); // run `npm run build` first
  const parent = mkdtempSync(path.join(os.tmpdir(), "weft-bench-validate-"));
  const validate: ValidateResult[] = [];
  const serve: ReturnType<typeof runServe>[] = [];
  try {
    for (const n of validateNs) {
      const config = generateConfig(n, parent);
      process.stderr.write(`validate N=${n} (${config.resources} resources, ${round(config.bytes / 1e6, 1)} MB)... `);
      const r = await runValidate(config, n, timeoutS);
      validate.push(r);
      process.stderr.write(`${r.seconds ?? r.note} s (${r.cpuSeconds} s CPU), ${r.peakRssMb} MB, ${r.errors}/${r.expectedErrors} problems, load ${os.loadavg()[0]!.toFixed(1)}\n`);
      if (!process.env.BENCH_KEEP) rmSync(config.dir, { recursive: true, force: true });
    }
    for (const n of serveNs) {
      const config = generateConfig(n, parent);
      process.stderr.write(`serve N=${n} (${round(config.bytes / 1e6, 1)} MB): ${edits} one-line edits of ${path.basename(config.editFile)}...\n`);
      const r = runServe(config, n, edits, timeoutS);
      serve.push(r);
      process.stderr.write(`${JSON.stringify(r)}\n`);
    }
  } finally {
    if (process.env.BENCH_KEEP) process.stderr.write(`kept ${parent}\n`);
    else rmSync(parent, { recursive: true, force: true });
  }
  const meta = { note: process.env.BENCH_NOTE, date: new Date().toISOString(), loadAverage: os.loadavg().map((x) => round(x, 1)), commit: gitCommit(), node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? "", label: process.env.BENCH_LABEL ?? "" };
  const resultsDir = path.join(ROOT, "bench", "results");
  mkdirSync(resultsDir, { recursive: true });
  const jsonFile = path.join(resultsDir, "validate-scale.json");
  const previous: unknown[] = (() => {
    try {
      const old = JSON.parse(readFileSync(jsonFile, "utf8")) as unknown;
      return Array.isArray(old) ? old : [];
    } catch {
      return [];
    }
  })();
  const runs = [...previous, { meta, validate, serve }] as Run[];
  writeFileSync(jsonFile, JSON.stringify(runs, null, 2) + "\n");
  writeFileSync(path.join(resultsDir, "validate-scale.md"), markdown(runs));
  process.stdout.write(JSON.stringify({ meta, validate, serve }, null, 2) + "\n");
}

interface Run {
  meta: { date: string; commit: string; label: string; node: string; cpus: number; cpuModel: string; loadAverage?: number[]; note?: string };
  validate: ValidateResult[];
  serve: (ServeResult | { n: number; note: string })[];
}

/** bench/results/validate-scale.md: the newest run first, then every earlier run (before/after). */
function markdown(runs: Run[]): string {
  const newestFirst = [...runs].reverse();
  const md = [
    "# Validation and hot reload at scale (bench/validate-scale.ts)",
    "",
    "N ServiceEntries + N VirtualServices + N/2 DestinationRules + N/100 Gateways (about 1% of routes misspelt: host, subset or gateway).",
    "`weft validate -o json DIR` with the built CLI; serve: `startMeshRunner` on the directory with one connected sidecar class, a one-line edit of one file,",
    "time until applied and the event loop's longest stall during it. Wall times depend on the machine's load (given per run); CPU seconds much less.",
    "",
    "Commands: `npm run build && npx tsx bench/validate-scale.ts` (BENCH_VALIDATE_N, BENCH_SERVE_N, BENCH_EDITS, BENCH_TIMEOUT_S, BENCH_LABEL).",
    "",
  ];
  // The first and the newest run that validated, side by side (CPU is what load changes least).
  const validated = runs.filter((r) => r.validate.length > 0);
  const [first, last] = [validated[0], validated.at(-1)];
  if (first && last && first !== last) {
    md.push(`## Before (${first.meta.label}, ${first.meta.commit}) and after (${last.meta.label}, ${last.meta.commit})`, "");
    md.push("| N | resources | CPU s before | CPU s after | wall s before | wall s after | peak RSS MB before | after |", "|---|---|---|---|---|---|---|---|");
    for (const a of last.validate) {
      const b = first.validate.find((v) => v.n === a.n);
      md.push(`| ${a.n} | ${a.resources} | ${b?.cpuSeconds ?? "-"} | ${a.cpuSeconds ?? "-"} | ${b?.seconds ?? b?.note ?? "-"} | ${a.seconds ?? a.note ?? "-"} | ${b?.peakRssMb ?? "-"} | ${a.peakRssMb ?? "-"} |`);
    }
    md.push("");
  }
  for (const run of newestFirst) {
    const m = run.meta;
    md.push(`## ${m.label || "run"}: ${m.date}, commit ${m.commit}, Node ${m.node}, ${m.cpus} × ${m.cpuModel}, load average ${m.loadAverage?.join(" / ") ?? "?"}`, "");
    if (m.note) md.push(m.note, "");
    if (run.validate.length > 0) {
      md.push("| N | resources | MB | weft validate, s (wall) | CPU s | peak RSS, MB | problems found (errors + warnings) / planted |", "|---|---|---|---|---|---|---|");
      for (const v of run.validate) md.push(`| ${v.n} | ${v.resources} | ${v.mb} | ${v.seconds ?? v.note ?? "-"} | ${v.cpuSeconds ?? "-"} | ${v.peakRssMb ?? "-"} | ${v.errors ?? "-"} / ${v.expectedErrors} |`);
      md.push("");
    }
    for (const sv of run.serve) {
      if ("note" in sv) {
        md.push(`serve N=${sv.n}: ${sv.note}`, "");
        continue;
      }
      md.push(`serve N=${sv.n} (${sv.mb} MB): initial load ${sv.initialLoadSeconds} s, peak RSS ${sv.peakRssMb} MB`, "", "| edit | applied after, ms | CPU, ms | event loop max delay, ms | most main-thread CPU in one stall, ms |", "|---|---|---|---|---|");
      sv.edits.forEach((e, i) => md.push(`| ${i + 1} | ${e.appliedMs} | ${e.cpuMs ?? "-"} | ${e.maxEventLoopDelayMs} | ${e.maxStallCpuMs ?? "-"} |`));
      md.push("");
    }
  }
  return md.join("\n");
}

if (process.argv[2] === "--render") {
  const resultsDir = path.join(ROOT, "bench", "results");
  writeFileSync(path.join(resultsDir, "validate-scale.md"), markdown(JSON.parse(readFileSync(path.join(resultsDir, "validate-scale.json"), "utf8")) as Run[]));
} else if (process.argv[2] === "--generate") {
  process.stdout.write(JSON.stringify(generateConfig(Number(process.argv[3]), process.argv[4] ?? os.tmpdir())) + "\n");
} else if (process.argv[2] === "--serve-child") {
  await serveChild(process.argv[3]!, process.argv[4]!, process.argv[5]!, Number(process.argv[6]));
} else if (import.meta.filename === path.resolve(process.argv[1] ?? "")) {
  await main();
}

