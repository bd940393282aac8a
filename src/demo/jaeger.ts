// A Jaeger process for the demo, tests and benchmarks: Jaeger v2 (`cmd/jaeger`, built from the
// Go module proxy by `scripts/cached-go-build.sh jaeger`) with in-memory storage, receiving OTLP
// gRPC and Zipkin spans on `receiverHost` and answering queries (HTTP API, UI) on 127.0.0.1.
// Every port is chosen free; nothing is left running after stop().
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { hasSetpriv } from "../capture/pod-network.js";
import { freePort } from "../runner/free-port.js";
import { goToolBinary } from "./go-tool-cache.js";

export interface JaegerProcess {
  /** OTLP gRPC receiver (spans from Envoy's OpenTelemetry tracer). */
  otlpGrpc: { host: string; port: number };
  /** Zipkin receiver (POST /api/v2/spans). */
  zipkin: { host: string; port: number };
  /** Query service: the HTTP API (/api/services, /api/traces) and UI. */
  queryUrl: string;
  /** Last lines Jaeger printed (diagnostics). */
  logTail(): string;
  stop(): Promise<void>;
}


function configYaml(p: { receiverHost: string; otlp: number; otlpHttp: number; zipkin: number; query: number; queryGrpc: number; health: number }): string {
  return `service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp, zipkin]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:${p.health}
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:${p.query}
    grpc:
      endpoint: 127.0.0.1:${p.queryGrpc}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${p.receiverHost}:${p.otlp}
      http:
        endpoint: ${p.receiverHost}:${p.otlpHttp}
  zipkin:
    endpoint: ${p.receiverHost}:${p.zipkin}
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`;
}

/** Starts Jaeger and resolves once its health check and query API answer (at most `timeoutMs`). */
export async function startJaeger(opts: { binary?: string; receiverHost?: string; timeoutMs?: number } = {}): Promise<JaegerProcess> {
  const binary = opts.binary ?? goToolBinary("jaeger");
  const receiverHost = opts.receiverHost ?? "127.0.0.1";
  const ports = {
    receiverHost,
    otlp: await freePort(receiverHost),
    otlpHttp: await freePort(receiverHost),
    zipkin: await freePort(receiverHost),
    query: await freePort(),
    queryGrpc: await freePort(),
    health: await freePort(),
  };
  const dir = await mkdtemp(path.join(os.tmpdir(), "weft-jaeger-"));
  const config = path.join(dir, "jaeger.yaml");
  await writeFile(config, configYaml(ports));
  // Jaeger would trace itself to localhost:4317; nothing listens there.
  // The kernel kills it when we die, even by SIGKILL (as the Envoys).
  const argv = hasSetpriv() ? ["setpriv", "--pdeathsig", "KILL", "--", binary, "--config", config] : [binary, "--config", config];
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, OTEL_TRACES_EXPORTER: "none", OTEL_SDK_DISABLED: "true" } });
  const lines: string[] = [];
  for (const s of [child.stdout, child.stderr]) s?.on("data", (d: Buffer) => lines.push(...d.toString().split("\n").filter(Boolean).map((l) => l.slice(0, 500))) && lines.splice(0, Math.max(0, lines.length - 50)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let spawnError: Error | undefined;
  child.once("error", (err) => (spawnError = err));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const queryUrl = `http://127.0.0.1:${ports.query}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    if (spawnError || child.exitCode !== null) {
      await stop();
      throw new Error(`jaeger (${binary}) did not start: ${spawnError?.message ?? `exit ${child.exitCode}`}\n${lines.join("\n")}`);
    }
    const ok = await fetch(`http://127.0.0.1:${ports.health}/status`).then((r) => r.ok, () => false) && (await fetch(`${queryUrl}/api/services`).then((r) => r.ok, () => false));
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`jaeger did not answer on ${queryUrl} within ${opts.timeoutMs ?? 30_000} ms\n${lines.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { otlpGrpc: { host: receiverHost, port: ports.otlp }, zipkin: { host: receiverHost, port: ports.zipkin }, queryUrl, logTail: () => lines.join("\n"), stop };
}

/** One trace as Jaeger's HTTP API returns it: spans with their process (service) and references. */
export interface JaegerTrace {
  traceID: string;
  spans: { spanID: string; operationName: string; processID: string; references?: { refType: string; spanID: string }[]; tags?: { key: string; value: unknown }[] }[];
  processes: Record<string, { serviceName: string }>;
}

/** Traces of `service` from Jaeger's HTTP query API (newest first), at most `limit`. */
export async function jaegerTraces(queryUrl: string, service: string, limit = 20): Promise<JaegerTrace[]> {
  const res = await fetch(`${queryUrl}/api/traces?service=${encodeURIComponent(service)}&limit=${limit}&lookback=1h`);
  if (!res.ok) return [];
  const body = (await res.json()) as { data?: JaegerTrace[] | null };
  return body.data ?? [];
}
