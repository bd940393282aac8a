// What telemetry costs an Envoy sidecar (issue 14): the same request load through two sidecars
// Weft configures side by side, one with what Istio users turn on and one with none of it.
//
//   telemetry     access log (Istio's default text format on stdout, as the `envoy` provider),
//                 tracing of every request (randomSamplingPercentage 100) to a real Jaeger over
//                 OTLP gRPC, Weft's stats (mesh tag extraction, fixed workload tags, request and
//                 response size histograms on every cluster), scraped on /stats/prometheus
//                 every 5 s as Prometheus would
//   no-telemetry  no Telemetry (no access log, no tracer), Envoy's default stat tags, the size
//                 histograms turned off by an EnvoyFilter (CLUSTER MERGE), no scrape listener
//
//   npx tsx bench/telemetry-cost.ts
//   env: TELEMETRY_ROUNDS=4 TELEMETRY_REQUESTS=5000 TELEMETRY_CONCURRENCY=8 TELEMETRY_OUT=bench/results/telemetry-cost
//
// Needs Jaeger (scripts/cached-go-build.sh jaeger). Both sidecars run at once (explicit outbound
// port, keep-alive clients, one node:http upstream); rounds alternate which goes first. Reported
// per sidecar: Envoy CPU-seconds per 1000 requests (mean and range over rounds), request latency
// p50/p99, and after all rounds RSS, peak RSS and Envoy's allocated heap (admin /memory).
import { writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import os from "node:os";
import { collectorServiceEntryYaml, demoTelemetrySettings } from "../src/demo/demo-telemetry.js";
import { builtGoTool, goToolBuildCommand } from "../src/demo/go-tool-cache.js";
import { jaegerTraces, startJaeger } from "../src/demo/jaeger.js";
import { freePort } from "../src/runner/free-port.js";
import { TestMesh, type MeshProxy } from "../e2e/harness/mesh.js";
import { startUpstream } from "../e2e/harness/upstream.js";
import { cpuSeconds, statusKb } from "./process-stats.js";

const ROUNDS = Number(process.env.TELEMETRY_ROUNDS ?? 4);
const REQUESTS = Number(process.env.TELEMETRY_REQUESTS ?? 5000);
const CONCURRENCY = Number(process.env.TELEMETRY_CONCURRENCY ?? 8);
const OUT = process.env.TELEMETRY_OUT ?? "bench/results/telemetry-cost";
const SCRAPE_EVERY_MS = 5000;

type Variant = "telemetry" | "no-telemetry";
const VARIANTS: Variant[] = ["telemetry", "no-telemetry"];

const jaegerBin = builtGoTool("jaeger");
if (!jaegerBin) {
  process.stderr.write(`telemetry-cost: needs Jaeger: run ${goToolBuildCommand("jaeger")}\n`);
  process.exit(2);
}

function config(upstreamPort: number, otlpPort: number, zipkinPort: number): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: app }
spec:
  hosts: [app.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: app } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: app-v1 }
spec: { address: 127.0.0.1, ports: { http: ${upstreamPort} }, labels: { app: app, version: v1 } }
---
${collectorServiceEntryYaml({ address: "127.0.0.1", otlpPort, zipkinPort })}---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: telemetry-on }
spec:
  selector: { matchLabels: { app: telemetry } }
  tracing: [{ providers: [{ name: jaeger }], randomSamplingPercentage: 100 }]
  accessLogging: [{ providers: [{ name: envoy }] }]
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: no-size-histograms }
spec:
  workloadSelector: { labels: { app: no-telemetry } }
  configPatches:
  - applyTo: CLUSTER
    match: { context: SIDECAR_OUTBOUND }
    patch:
      operation: MERGE
      value: { track_cluster_stats: { request_response_sizes: false } }
`;
}

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN;
}

/** REQUESTS GETs through `port` on keep-alive connections, CONCURRENCY at a time; latencies in ms. */
async function load(port: number, count: number): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const latencies: number[] = [];
  let next = 0;
  let failed = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = process.hrtime.bigint();
      const req = request({ host: "127.0.0.1", port, path: "/", agent, headers: { host: "app:9080" } }, (res) => {
        res.resume();
        res.on("end", () => {
          if (res.statusCode === 200) latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          else failed++;
          resolve();
        });
      });
      req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
      req.on("error", () => {
        failed++;
        resolve();
      });
      req.end();
    });
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < count) {
      next++;
      await one();
    }
  }));
  agent.destroy();
  if (failed > 0) throw new Error(`${failed} of ${count} requests failed`);
  return latencies;
}

async function memory(p: MeshProxy): Promise<{ rssMb: number; peakRssMb: number; allocatedMb: number; heapMb: number }> {
  const m = JSON.parse((await p.envoy.adminRequest("/memory")).body) as { allocated: string; heap_size: string };
  return { rssMb: statusKb(p.envoy.pid, "VmRSS") / 1024, peakRssMb: statusKb(p.envoy.pid, "VmHWM") / 1024, allocatedMb: Number(m.allocated) / 1e6, heapMb: Number(m.heap_size) / 1e6 };
}

const jaeger = await startJaeger({ binary: jaegerBin });
const upstream = await startUpstream("app-v1");
const mesh = await TestMesh.start({ telemetry: demoTelemetrySettings({ otlpPort: jaeger.otlpGrpc.port, zipkinPort: jaeger.zipkin.port }) });
const proxies = {} as Record<Variant, { proxy: MeshProxy; port: number; statsPort?: number }>;
try {
  await mesh.apply(config(upstream.port, jaeger.otlpGrpc.port, jaeger.zipkin.port));
  for (const variant of VARIANTS) {
    const [port, adminPort, statsPort] = [await freePort(), await freePort(), await freePort()];
    const bootstrap = variant === "telemetry" ? { adminPort, statsPort } : { adminPort, statsPort: false as const, meshStatsTags: false };
    const proxy = await mesh.startProxy({ name: `${variant}-v1`, labels: { app: variant, version: "v1" }, capture: "explicit", explicitPort: port, bootstrap });
    proxies[variant] = { proxy, port, ...(variant === "telemetry" ? { statsPort } : {}) };
  }
  await mesh.waitForSync();

  // Check each sidecar does what its name says before measuring it.
  for (const variant of VARIANTS) await load(proxies[variant].port, 20);
  const t = proxies.telemetry;
  const deadline = Date.now() + 30_000;
  while ((await jaegerTraces(jaeger.queryUrl, "telemetry.default", 5)).length === 0) {
    if (Date.now() > deadline) throw new Error(`no trace from the telemetry sidecar in Jaeger after 30 s\n${jaeger.logTail()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  if ((await jaegerTraces(jaeger.queryUrl, "no-telemetry.default", 5)).length !== 0) throw new Error("the no-telemetry sidecar reported spans");
  const logLines = async (v: Variant) => (await readFile(proxies[v].proxy.envoy.logPath, "utf8")).split("\n").filter((l) => l.includes('"GET / HTTP/1.1" 200')).length;
  // Envoy flushes access logs about once a second.
  for (const until = Date.now() + 15_000; (await logLines("telemetry")) < 20 && Date.now() < until;) await new Promise((r) => setTimeout(r, 250));
  if ((await logLines("telemetry")) < 20) throw new Error(`the telemetry sidecar wrote no access log lines: ${proxies.telemetry.proxy.envoy.logTail(10)}`);
  if ((await logLines("no-telemetry")) !== 0) throw new Error("the no-telemetry sidecar wrote access log lines");
  const sizeHistograms = async (v: Variant) => (await proxies[v].proxy.envoy.adminRequest("/config_dump?resource=dynamic_active_clusters")).body.includes('"request_response_sizes": true');
  if (!(await sizeHistograms("telemetry")) || (await sizeHistograms("no-telemetry"))) throw new Error("size histograms: expected on the telemetry sidecar's clusters only");
  await fetch(`http://127.0.0.1:${t.statsPort}/stats/prometheus`).then((r) => { if (!r.ok) throw new Error(`scrape: ${r.status}`); return r.text(); });

  const cpu: Record<Variant, number[]> = { telemetry: [], "no-telemetry": [] };
  const lat: Record<Variant, number[]> = { telemetry: [], "no-telemetry": [] };
  let scrapes = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
    for (const variant of order) {
      const p = proxies[variant];
      const scrape = async () => {
        if (!p.statsPort) return;
        await (await fetch(`http://127.0.0.1:${p.statsPort}/stats/prometheus`)).text();
        scrapes++;
      };
      await scrape();
      const timer = setInterval(() => void scrape().catch(() => undefined), SCRAPE_EVERY_MS);
      const before = cpuSeconds(p.proxy.envoy.pid);
      const latencies = await load(p.port, REQUESTS);
      const seconds = cpuSeconds(p.proxy.envoy.pid) - before;
      clearInterval(timer);
      cpu[variant].push((seconds * 1000) / REQUESTS);
      lat[variant].push(...latencies);
      process.stdout.write(`round ${round + 1}/${ROUNDS} ${variant.padEnd(12)} ${((seconds * 1000) / REQUESTS).toFixed(3)} CPU-s per 1000 requests\n`);
    }
  }
  // The spans of the last round reach Jaeger within an export interval (5 s); memory after that.
  await new Promise((r) => setTimeout(r, 6000));
  const results = await Promise.all(VARIANTS.map(async (variant) => {
    const sorted = [...lat[variant]].sort((a, b) => a - b);
    const c = cpu[variant];
    return {
      variant,
      cpuSecondsPer1000: c.reduce((a, b) => a + b, 0) / c.length,
      cpuRange: [Math.min(...c), Math.max(...c)],
      p50Ms: quantile(sorted, 0.5),
      p99Ms: quantile(sorted, 0.99),
      ...(await memory(proxies[variant].proxy)),
    };
  }));
  const [on, off] = [results.find((r) => r.variant === "telemetry")!, results.find((r) => r.variant === "no-telemetry")!];
  const pct = (a: number, b: number) => `${a >= b ? "+" : ""}${(((a - b) / b) * 100).toFixed(0)} %`;
  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")} at the end`;
  const lines = [
    "# Telemetry cost per Envoy sidecar (bench/telemetry-cost.ts)",
    "",
    `${new Date().toISOString()}; Envoy 1.40; ${machine}.`,
    `Command: \`TELEMETRY_ROUNDS=${ROUNDS} TELEMETRY_REQUESTS=${REQUESTS} TELEMETRY_CONCURRENCY=${CONCURRENCY} npx tsx bench/telemetry-cost.ts\``,
    `Same load on both: ${ROUNDS} rounds x ${REQUESTS} GETs, ${CONCURRENCY} keep-alive connections, through the sidecar's outbound port to one upstream; rounds alternate the order. ${scrapes} scrapes of the telemetry sidecar's /stats/prometheus (every 5 s under load).`,
    "",
    "| | telemetry (access log + tracing 100 % + Weft stats, scraped) | no telemetry | difference |",
    "|---|---|---|---|",
    `| Envoy CPU-s per 1000 requests (mean; range) | ${on.cpuSecondsPer1000.toFixed(3)} (${on.cpuRange.map((x) => x.toFixed(3)).join("-")}) | ${off.cpuSecondsPer1000.toFixed(3)} (${off.cpuRange.map((x) => x.toFixed(3)).join("-")}) | ${pct(on.cpuSecondsPer1000, off.cpuSecondsPer1000)} |`,
    `| request latency p50 / p99 (ms, client side) | ${on.p50Ms.toFixed(2)} / ${on.p99Ms.toFixed(2)} | ${off.p50Ms.toFixed(2)} / ${off.p99Ms.toFixed(2)} | |`,
    `| RSS after the load (MB) | ${on.rssMb.toFixed(1)} | ${off.rssMb.toFixed(1)} | ${pct(on.rssMb, off.rssMb)} |`,
    `| peak RSS (MB) | ${on.peakRssMb.toFixed(1)} | ${off.peakRssMb.toFixed(1)} | ${pct(on.peakRssMb, off.peakRssMb)} |`,
    `| Envoy allocated / heap (MB, admin /memory) | ${on.allocatedMb.toFixed(1)} / ${on.heapMb.toFixed(1)} | ${off.allocatedMb.toFixed(1)} / ${off.heapMb.toFixed(1)} | ${pct(on.allocatedMb, off.allocatedMb)} allocated |`,
    "",
    "Checked before measuring: the telemetry sidecar's spans are in Jaeger and its access log has the requests, its clusters have size histograms and its scrape answers; the other sidecar has none of these.",
    "",
  ];
  writeFileSync(`${OUT}.md`, lines.join("\n"));
  writeFileSync(`${OUT}.json`, JSON.stringify({ date: new Date().toISOString(), machine, rounds: ROUNDS, requests: REQUESTS, concurrency: CONCURRENCY, scrapes, results }, null, 2) + "\n");
  process.stdout.write(lines.join("\n"));
} finally {
  await mesh.close();
  await upstream.close();
  await jaeger.stop();
}
