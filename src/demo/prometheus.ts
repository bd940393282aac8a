// A Prometheus process for the demo, tests and benchmarks (built from the Go module proxy by
// `scripts/cached-go-build.sh prometheus`): scrapes the given targets — each Envoy's
// /stats/prometheus listener (Istio's 15090) and the control plane's /metrics — with Weft's
// Istio-compatible recording rules loaded, so istio_* metrics are there to query. Storage in a
// temporary directory, the HTTP API on 127.0.0.1 at a free port; nothing is left after stop().
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { hasSetpriv } from "../capture/pod-network.js";
import { istioCompatRulesYaml } from "../envoy/istio-compat-rules.js";
import { freePort } from "../runner/free-port.js";
import { goToolBinary } from "./go-tool-cache.js";

/** One scrape job: a name, the path and targets ("host:port") with their own labels. */
export interface ScrapeJob {
  name: string;
  metricsPath: string;
  targets: { address: string; labels?: Record<string, string> }[];
}

/** One series of an instant query's answer. */
export interface PrometheusSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusProcess {
  /** The HTTP API (/api/v1/query, /api/v1/label/__name__/values, /api/v1/targets). */
  url: string;
  /** An instant query; throws with Prometheus' error text when it refuses the query. */
  query(promql: string): Promise<PrometheusSample[]>;
  /** Last lines Prometheus printed (diagnostics). */
  logTail(): string;
  stop(): Promise<void>;
}

/** Targets scraped from the proxies: Envoy's stats in Prometheus' classic text format. */
export const ENVOY_STATS_PATH = "/stats/prometheus";

export function prometheusConfig(jobs: ScrapeJob[], rulesFile: string, intervalSeconds: number): Record<string, unknown> {
  return {
    global: { scrape_interval: `${intervalSeconds}s`, evaluation_interval: `${intervalSeconds}s` },
    rule_files: [rulesFile],
    scrape_configs: jobs.map((j) => ({
      job_name: j.name,
      metrics_path: j.metricsPath,
      // Envoy answers text/plain without a version; Prometheus 3 wants to be told how to read it.
      fallback_scrape_protocol: "PrometheusText0.0.4",
      static_configs: j.targets.map((t) => ({ targets: [t.address], labels: t.labels ?? {} })),
    })),
  };
}

/**
 * Starts Prometheus and resolves once /-/ready answers (at most `timeoutMs`). `rulesYaml` defaults
 * to Weft's Istio-compatible recording rules (manifests/prometheus/istio-compat.rules.yaml).
 */
export async function startPrometheus(opts: { jobs: ScrapeJob[]; binary?: string; intervalSeconds?: number; rulesYaml?: string; timeoutMs?: number }): Promise<PrometheusProcess> {
  const binary = opts.binary ?? goToolBinary("prometheus");
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const dir = await mkdtemp(path.join(os.tmpdir(), "weft-prometheus-"));
  const rulesFile = path.join(dir, "istio-compat.rules.yaml");
  await writeFile(rulesFile, opts.rulesYaml ?? istioCompatRulesYaml());
  await writeFile(path.join(dir, "prometheus.yml"), JSON.stringify(prometheusConfig(opts.jobs, rulesFile, opts.intervalSeconds ?? 5), null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [`--config.file=${path.join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${path.join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`];
  // The kernel kills it when we die, even by SIGKILL (as the Envoys).
  const argv = hasSetpriv() ? ["setpriv", "--pdeathsig", "KILL", "--", binary, ...args] : [binary, ...args];
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  for (const s of [child.stdout, child.stderr]) {
    s?.on("data", (d: Buffer) => {
      lines.push(...d.toString().split("\n").filter(Boolean).map((l) => l.slice(0, 500)));
      lines.splice(0, Math.max(0, lines.length - 50));
    });
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let spawnError: Error | undefined;
  child.once("error", (err) => (spawnError = err));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null && !spawnError) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const query = async (promql: string): Promise<PrometheusSample[]> => {
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { status: string; data?: { result: PrometheusSample[] }; error?: string };
    if (body.status !== "success" || !body.data) throw new Error(`Prometheus refused ${promql}: ${body.error ?? res.status}`);
    return body.data.result;
  };
  for (const deadline = Date.now() + timeoutMs; ;) {
    if (spawnError || child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus (${binary}) did not start: ${spawnError?.message ?? `exit ${child.exitCode}`}\n${lines.join("\n")}`);
    }
    if (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus did not become ready on ${url} within ${timeoutMs} ms\n${lines.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, query, logTail: () => lines.join("\n"), stop };
}
