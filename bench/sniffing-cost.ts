// What protocol sniffing costs an Envoy (issue 16): the HTTP inspector listener filter plus
// a filter chain that matches on the application protocol it reports (what Weft's capture
// listeners now run on HTTP and undeclared ports), against the same listener without them.
// The inspector runs once per connection, so every request here uses a new connection (the
// worst case; keep-alive traffic pays it once per connection).
//
//   npx tsx bench/sniffing-cost.ts
//   env: SNIFF_ROUNDS=4 SNIFF_REQUESTS=3000 SNIFF_CONCURRENCY=8 SNIFF_OUT=bench/results/sniffing-cost
//
// Two Envoys (one worker each) on loopback in front of one node:http upstream; rounds
// alternate which Envoy goes first. Reported per Envoy: CPU-seconds per 1000 connections
// (mean and range over rounds), RSS after all rounds, request latency p50/p99.
import { writeFileSync } from "node:fs";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { startEnvoy, type EnvoyProcess } from "../src/envoy/envoy-process.js";
import { freePort } from "../src/runner/free-port.js";
import { cpuSeconds, statusKb } from "./process-stats.js";

const ROUNDS = Number(process.env.SNIFF_ROUNDS ?? 4);
const REQUESTS = Number(process.env.SNIFF_REQUESTS ?? 3000);
const CONCURRENCY = Number(process.env.SNIFF_CONCURRENCY ?? 8);
const OUT = process.env.SNIFF_OUT ?? "bench/results/sniffing-cost";

function bootstrap(listenPort: number, upstreamPort: number, sniff: boolean): string {
  const inspector = sniff
    ? `
    listener_filters:
    - name: envoy.filters.listener.http_inspector
      typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector }
    listener_filters_timeout: 0s
    continue_on_listener_filters_timeout: true`
    : "";
  const match = sniff ? `
    - filter_chain_match: { transport_protocol: raw_buffer, application_protocols: [http/1.1, h2c] }
      filters:` : `
    - filters:`;
  return `
admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
static_resources:
  listeners:
  - name: front
    address: { socket_address: { address: 127.0.0.1, port_value: ${listenPort} } }${inspector}
    filter_chains:${match}
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: front
          route_config: { virtual_hosts: [{ name: all, domains: ["*"], routes: [{ match: { prefix: / }, route: { cluster: app } }] }] }
          http_filters: [{ name: envoy.filters.http.router, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router } }]
  clusters:
  - name: app
    type: STATIC
    connect_timeout: 1s
    load_assignment: { cluster_name: app, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${upstreamPort} } } } }] }] }
`;
}

function getOnce(port: number): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/", agent: false }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.setTimeout(5000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

async function load(port: number): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < REQUESTS) {
        next++;
        latencies.push(await getOnce(port));
      }
    }),
  );
  return latencies;
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function main(): Promise<void> {
  const upstream = createServer((_req, res) => res.end("ok"));
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const upstreamPort = (upstream.address() as AddressInfo).port;
  const setups: { name: string; sniff: boolean; port: number; envoy?: EnvoyProcess; cpuPer1000: number[]; latencies: number[] }[] = [
    { name: "plain listener", sniff: false, port: await freePort(), cpuPer1000: [], latencies: [] },
    { name: "http_inspector + application_protocols match", sniff: true, port: await freePort(), cpuPer1000: [], latencies: [] },
  ];
  try {
    for (const s of setups) s.envoy = await startEnvoy({ name: `sniff-${s.sniff}`, bootstrapYaml: bootstrap(s.port, upstreamPort, s.sniff), concurrency: 1 });
    for (const s of setups) await load(s.port); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? setups : [...setups].reverse();
      for (const s of order) {
        const before = cpuSeconds(s.envoy!.pid);
        s.latencies.push(...(await load(s.port)));
        s.cpuPer1000.push(((cpuSeconds(s.envoy!.pid) - before) * 1000) / REQUESTS);
        process.stderr.write(`round ${round + 1}/${ROUNDS} ${s.name}: ${s.cpuPer1000.at(-1)!.toFixed(3)} CPU-s per 1000 connections\n`);
      }
    }
    const rows = setups.map((s) => {
      const mean = s.cpuPer1000.reduce((a, b) => a + b, 0) / s.cpuPer1000.length;
      return {
        setup: s.name,
        cpuSecondsPer1000Connections: { mean: +mean.toFixed(4), min: +Math.min(...s.cpuPer1000).toFixed(4), max: +Math.max(...s.cpuPer1000).toFixed(4) },
        rssMb: +(statusKb(s.envoy!.pid, "VmRSS") / 1024).toFixed(1),
        latencyMs: { p50: +pct(s.latencies, 50).toFixed(2), p99: +pct(s.latencies, 99).toFixed(2) },
      };
    });
    const result = { date: new Date().toISOString(), machine: `${os.cpus().length} cores, ${os.cpus()[0]?.model ?? "?"}, load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`, rounds: ROUNDS, requestsPerRound: REQUESTS, concurrency: CONCURRENCY, command: "npx tsx bench/sniffing-cost.ts", rows };
    writeFileSync(`${OUT}.json`, JSON.stringify(result, null, 2) + "\n");
    const md = [
      `# Protocol sniffing cost (${result.date})`,
      "",
      `${result.machine}; ${ROUNDS} alternating rounds of ${REQUESTS} requests, each on a new connection, ${CONCURRENCY} at a time; Envoy --concurrency 1. Command: \`${result.command}\`.`,
      "",
      "| setup | CPU-s per 1000 connections (mean, min-max) | RSS MB | p50 ms | p99 ms |",
      "|---|---|---|---|---|",
      ...rows.map((r) => `| ${r.setup} | ${r.cpuSecondsPer1000Connections.mean} (${r.cpuSecondsPer1000Connections.min}-${r.cpuSecondsPer1000Connections.max}) | ${r.rssMb} | ${r.latencyMs.p50} | ${r.latencyMs.p99} |`),
      "",
    ].join("\n");
    writeFileSync(`${OUT}.md`, md);
    process.stdout.write(md);
  } finally {
    await Promise.all(setups.map((s) => s.envoy?.stop()));
    upstream.closeAllConnections();
    upstream.close();
  }
}

await main();
