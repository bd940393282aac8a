// `weft demo` with everything real — Envoy sidecars in pods (transparent capture, mutual TLS),
// Jaeger and Prometheus built from the Go module proxy — observed the way a user would:
// - one request through the gateway -> productpage -> reviews v2 -> ratings is ONE trace in
//   Jaeger's query API with exactly the 8 spans expected (gateway, then a server span per hop
//   and a client span per call: productpage -> details, productpage -> reviews -> ratings);
// - ratings' access log has that request in Istio's default text format and in Istio's JSON
//   format, both ending with the caller's SPIFFE identity;
// - the demo prints Prometheus' URL, and every metric any Grafana dashboard in
//   manifests/grafana/ queries exists in that real scrape (and every query is valid PromQL).
import { randomBytes } from "node:crypto";
import { readFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { captureSupport } from "../../src/capture/iptables.js";
import { jaegerTraces, type JaegerTrace } from "../../src/demo/jaeger.js";
import { dashboardQueries, grafanaDashboardFiles } from "../../src/observability/grafana-dashboards.js";
import { promqlMetricNames } from "../../src/observability/promql-metric-names.js";
import { freePort } from "../../src/runner/free-port.js";
import { httpGet } from "../harness/http.js";
import { killWeftChildren, spawnWeft, until, type WeftRun } from "../harness/weft-cli.js";
import { jaegerBinary, prometheusBinary } from "./backend-binaries.js";

const jaeger = jaegerBinary();
const prometheus = prometheusBinary();
const capture = await captureSupport();
const skipReason = !jaeger ? "no Jaeger (scripts/cached-go-build.sh jaeger)" : !prometheus ? "no Prometheus (scripts/cached-go-build.sh prometheus)" : !capture.transparent ? `no transparent capture: ${capture.reason}` : undefined;
if (skipReason) process.stderr.write(`demo observability e2e: skipped, ${skipReason}\n`);

/** ratings logs each request twice: Istio's text format (the mesh default) and Istio's JSON. */
const RATINGS_TELEMETRY = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: ratings-logs, namespace: default }
spec:
  selector: { matchLabels: { app: ratings } }
  accessLogging:
  - providers: [{ name: envoy }, { name: envoy-json }]
`;
/** A TCP service, so the sidecars have outbound TCP proxies (istio_tcp_* series exist, at 0). */
const TCP_SERVICE = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: orders-db, namespace: default }
spec:
  hosts: [orders-db.example.internal]
  addresses: [240.240.0.9]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 5432, name: tcp-postgres, protocol: TCP }]
  endpoints: [{ address: 127.0.0.1 }]
`;

/**
 * Istio's default text access log format (+ the caller's certificate URI, Weft's addition):
 * [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
 * %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
 * "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
 * %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
 * "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW%
 * %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
 * %REQUESTED_SERVER_NAME% %ROUTE_NAME% "%DOWNSTREAM_PEER_URI_SAN%"
 */
const ISTIO_TEXT_LINE = new RegExp(
  String.raw`^\[(?<start>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] "(?<method>\S+) (?<path>\S+) (?<protocol>\S+)" (?<code>\d{3}) (?<flags>\S+) (?<details>\S+) (?<termination>\S+) "(?<transportFailure>[^"]*)" (?<bytesIn>\d+) (?<bytesOut>\d+) (?<duration>\d+) (?<upstreamTime>\S+) "(?<xff>[^"]*)" "(?<userAgent>[^"]*)" "(?<requestId>[^"]*)" "(?<authority>[^"]*)" "(?<upstreamHost>[^"]*)" (?<upstreamCluster>\S+) (?<upstreamLocal>\S+) (?<downstreamLocal>\S+) (?<downstreamRemote>\S+) (?<sni>\S+) (?<route>\S+) "(?<peer>[^"]*)"$`,
);

/** Istio's default JSON access log keys (logFormat.labels: {}), plus downstream_peer_uri_san. */
const ISTIO_JSON_KEYS = [
  "authority", "bytes_received", "bytes_sent", "connection_termination_details", "downstream_local_address", "downstream_peer_uri_san",
  "downstream_remote_address", "duration", "method", "path", "protocol", "request_id", "requested_server_name", "response_code",
  "response_code_details", "response_flags", "route_name", "start_time", "upstream_cluster", "upstream_host", "upstream_local_address",
  "upstream_service_time", "upstream_transport_failure_reason", "user_agent", "x_forwarded_for",
];

const REVIEWS_IDENTITY = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";

type Span = JaegerTrace["spans"][number];
const tag = (s: Span, key: string) => s.tags?.find((t) => t.key === key)?.value as string | undefined;

describe.skipIf(!!skipReason)("weft demo: one request = one trace in real Jaeger, Istio-format access logs, every dashboard metric in real Prometheus", () => {
  let demo: WeftRun;
  let configDir: string;
  let ingress: number;
  let jaegerUrl: string;
  let prometheusUrl: string;
  let logFiles: Map<string, string>;
  const diagnostics = () => `demo stdout:\n${demo.stdout().slice(-3000)}\ndemo stderr:\n${demo.stderr().slice(-3000)}`;

  beforeAll(async () => {
    configDir = await mkdtemp(path.join(os.tmpdir(), "weft-demo-observability-"));
    // Files of our own next to the demo's (it writes services, routing, workloads, telemetry).
    await writeFile(path.join(configDir, "ratings-telemetry.yaml"), RATINGS_TELEMETRY);
    await writeFile(path.join(configDir, "orders-db.yaml"), TCP_SERVICE);
    ingress = await freePort();
    const [xdsPort, adminPort] = [await freePort(), await freePort()];
    demo = spawnWeft(["demo", "--mode", "transparent", "--jaeger", jaeger!, "--prometheus", prometheus!, "--ingress-port", String(ingress), "--xds-port", String(xdsPort), "--admin-port", String(adminPort), "--config-dir", configDir]);
    await until(() => demo.stdout().includes("Weft demo is running") || demo.child.exitCode !== null, 180_000, "the demo to start");
    expect(demo.stdout(), diagnostics()).toContain("Weft demo is running (transparent mode)");
    jaegerUrl = /traces +(http:\/\/127\.0\.0\.1:\d+) +\(Jaeger/.exec(demo.stdout())?.[1] ?? "";
    prometheusUrl = /metrics +(http:\/\/127\.0\.0\.1:\d+) +\(Prometheus/.exec(demo.stdout())?.[1] ?? "";
    expect(jaegerUrl, diagnostics()).not.toBe("");
    expect(prometheusUrl, diagnostics()).not.toBe("");
    logFiles = new Map([...demo.stdout().matchAll(/^ {4}(\S+) +(\/\S+envoy\.log)$/gm)].map((m) => [m[1]!, m[2]!]));
    expect([...logFiles.keys()].sort()).toEqual(["ingressgateway", "sidecar-details-v1", "sidecar-productpage-v1", "sidecar-ratings-v1", "sidecar-reviews-v1", "sidecar-reviews-v2", "sidecar-reviews-v3"]);
  }, 240_000);

  afterAll(async () => {
    if (demo && demo.child.exitCode === null) {
      demo.child.kill("SIGTERM");
      const code = await Promise.race([demo.exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 60_000))]);
      expect(code, diagnostics()).toBe(0);
      // Jaeger and Prometheus went with it.
      for (const url of [`${jaegerUrl}/api/services`, `${prometheusUrl}/-/ready`]) await expect(httpGet(url, { timeoutMs: 2000 })).rejects.toThrow();
    }
    killWeftChildren();
    if (configDir) {
      await rm(configDir, { recursive: true, force: true });
      await rm(`${configDir}-state`, { recursive: true, force: true });
    }
  }, 90_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state === "fail") process.stderr.write(`${diagnostics()}\n`);
  });

  let requestId: string | undefined;

  it("a request with a W3C traceparent is one trace of exactly 8 spans: gateway, productpage, details, reviews v2, ratings (client + server per call)", async () => {
    const traceId = randomBytes(16).toString("hex");
    const parentSpan = randomBytes(8).toString("hex");
    const res = await httpGet(`http://127.0.0.1:${ingress}/productpage`, { headers: { "end-user": "jason", traceparent: `00-${traceId}-${parentSpan}-01` }, timeoutMs: 10_000 });
    expect(res.status, res.body).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ service: "productpage", details: { service: "details" }, reviews: { version: "v2", stars: "black" } });

    const read = async (): Promise<JaegerTrace | undefined> => {
      const r = await httpGet(`${jaegerUrl}/api/traces/${traceId}`, { timeoutMs: 5000 }).catch(() => undefined);
      if (r?.status !== 200) return undefined;
      return (JSON.parse(r.body) as { data?: JaegerTrace[] }).data?.[0];
    };
    // Envoy's OpenTelemetry tracer exports every 5 s; Jaeger batches for 200 ms.
    let trace: JaegerTrace | undefined;
    for (const deadline = Date.now() + 90_000; ;) {
      trace = await read();
      if ((trace?.spans.length ?? 0) >= 8) break;
      if (Date.now() > deadline) throw new Error(`trace ${traceId} has ${trace?.spans.length ?? 0} spans after 90 s (want 8): ${JSON.stringify(trace?.spans.map((s) => s.operationName))}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    // Nothing more arrives after another export interval.
    await new Promise((r) => setTimeout(r, 7000));
    trace = await read();
    const spans = trace!.spans;
    const byId = new Map(spans.map((s) => [s.spanID, s]));
    const describe1 = (s: Span): string => {
      const service = trace!.processes[s.processID]!.serviceName;
      const kind = tag(s, "span.kind");
      const target = kind === "client" ? ` -> ${/\|([^|.]+)\.default\.svc/.exec(tag(s, "upstream_cluster") ?? "")?.[1] ?? tag(s, "upstream_cluster")}` : "";
      return `${service} ${kind}${target}`;
    };
    // Each span as the path from the root; the root's parent is the span id we sent.
    const chain = (s: Span): string => {
      const parent = s.references?.find((r) => r.refType === "CHILD_OF")?.spanID;
      const up = parent ? byId.get(parent) : undefined;
      if (!up) return `${parent === parentSpan ? "(our traceparent)" : `(unknown parent ${parent})`} / ${describe1(s)}`;
      return `${chain(up)} / ${describe1(s)}`;
    };
    const gateway = spans.find((s) => s.references?.some((r) => r.spanID === parentSpan));
    expect(gateway, JSON.stringify(spans.map(describe1))).toBeDefined();
    const gw = `(our traceparent) / ${describe1(gateway!)}`;
    expect(describe1(gateway!)).toBe("istio-ingressgateway.istio-system client -> productpage");
    const pp = `${gw} / productpage.default server`;
    const reviews = `${pp} / productpage.default client -> reviews / reviews.default server`;
    expect(spans.map(chain).sort()).toEqual([
      gw,
      pp,
      `${pp} / productpage.default client -> details`,
      `${pp} / productpage.default client -> details / details.default server`,
      `${pp} / productpage.default client -> reviews`,
      reviews,
      `${reviews} / reviews.default client -> ratings`,
      `${reviews} / reviews.default client -> ratings / ratings.default server`,
    ].sort());
    expect(new Set(spans.map((s) => s.spanID)).size).toBe(8);
    // gateway -> productpage -> reviews -> ratings without details: 6 spans (client + server per hop).
    expect(spans.filter((s) => !chain(s).includes("details")).length).toBe(6);
    // The request id the sidecars put on the spans ties the trace to the access log lines.
    requestId = tag(spans.find((s) => describe1(s) === "ratings.default server")!, "guid:x-request-id");
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    // The query API finds it by service too.
    expect((await jaegerTraces(jaegerUrl, "ratings.default", 50)).map((t) => t.traceID)).toContain(traceId);
  }, 150_000);

  it("ratings' access log: that request in Istio's default text format and Istio's JSON, with the caller's SPIFFE ID", async () => {
    expect(requestId, "the trace test found the request id").toBeDefined();
    const file = logFiles.get("sidecar-ratings-v1")!;
    let text: RegExpExecArray | undefined;
    let json: Record<string, unknown> | undefined;
    let lines: string[] = [];
    for (const deadline = Date.now() + 30_000; !(text && json);) {
      lines = (await readFile(file, "utf8")).split("\n").filter((l) => l.includes(requestId!));
      text = lines.map((l) => ISTIO_TEXT_LINE.exec(l)).find((m): m is RegExpExecArray => !!m) ?? undefined;
      json = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>)[0];
      if (Date.now() > deadline) throw new Error(`ratings' log has no text and JSON line for ${requestId} after 30 s; lines with it: ${JSON.stringify(lines)}; last lines: ${(await readFile(file, "utf8")).slice(-2000)}`);
      if (!(text && json)) await new Promise((r) => setTimeout(r, 500));
    }
    expect(lines.length, JSON.stringify(lines)).toBe(2);
    const g = text!.groups!;
    expect(g).toMatchObject({ method: "GET", protocol: "HTTP/1.1", code: "200", flags: "-", details: "via_upstream", requestId, authority: "ratings:9080", upstreamCluster: "inbound|9080||", peer: REVIEWS_IDENTITY });
    expect(g.path).toMatch(/^\/ratings\//);
    expect(Math.abs(Date.parse(g.start!) - Date.now())).toBeLessThan(5 * 60_000);
    expect(Number(g.bytesOut)).toBeGreaterThan(0);
    expect(Number(g.duration)).toBeGreaterThanOrEqual(Number(g.upstreamTime));
    // Under mTLS the server name is the client sidecar's SNI for the ratings service.
    expect(g.sni).toBe("outbound_.9080_._.ratings.default.svc.cluster.local");

    expect(Object.keys(json!).sort()).toEqual([...ISTIO_JSON_KEYS].sort());
    expect(json).toMatchObject({ method: "GET", path: g.path, protocol: "HTTP/1.1", response_code: 200, response_flags: "-", request_id: requestId, upstream_cluster: "inbound|9080||", downstream_peer_uri_san: REVIEWS_IDENTITY, start_time: g.start, bytes_sent: Number(g.bytesOut) });
  }, 60_000);

  it("the demo's Prometheus: every metric every dashboard query names exists in the scrape, every query is valid PromQL", async () => {
    const files = grafanaDashboardFiles();
    expect(Object.keys(files).sort()).toEqual(["control-plane.json", "mesh.json", "service.json", "workload.json"]);
    const queries = Object.values(files).flatMap((t) => dashboardQueries(JSON.parse(t)));
    const wanted = [...new Set(queries.flatMap(promqlMetricNames))].sort();
    expect(wanted.length).toBeGreaterThan(25);
    // Recording rules run every 15 s; scrapes every 5 s.
    let missing: string[] = wanted;
    for (const deadline = Date.now() + 120_000; missing.length > 0;) {
      const names = new Set((JSON.parse((await httpGet(`${prometheusUrl}/api/v1/label/__name__/values`, { timeoutMs: 10_000 })).body) as { data: string[] }).data);
      missing = wanted.filter((n) => !names.has(n));
      if (missing.length === 0) break;
      if (Date.now() > deadline) {
        const targets = (await httpGet(`${prometheusUrl}/api/v1/targets`, { timeoutMs: 10_000 })).body;
        throw new Error(`metrics the dashboards query that the scrape lacks after 120 s: ${missing.join(", ")}\ntargets: ${targets.slice(0, 3000)}`);
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
    expect(missing).toEqual([]);
    // Every query (Grafana's variables given "all" values) is accepted by Prometheus.
    for (const q of queries) {
      const promql = q.replaceAll("$__rate_interval", "1m").replace(/\$(service|workload|namespace)\b/g, ".*").replace(/^label_values\((.*), *\w+\)$/, "$1");
      const r = JSON.parse((await httpGet(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`, { timeoutMs: 10_000 })).body) as { status: string; error?: string };
      expect(r, promql).toMatchObject({ status: "success" });
    }
    // The traced request is the only one ratings served: both reporters count it once, with Istio's labels.
    const count = async (q: string) => {
      const r = JSON.parse((await httpGet(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(q)}`, { timeoutMs: 10_000 })).body) as { data: { result: { value: [number, string] }[] } };
      return r.data.result.map((x) => x.value[1]);
    };
    const edges = {
      source: 'sum(istio_requests_total{reporter="source", source_workload="reviews-v2", source_app="reviews", destination_service="ratings.default.svc.cluster.local", destination_service_name="ratings", destination_service_namespace="default", response_code="200"})',
      destination: 'sum(istio_requests_total{reporter="destination", destination_workload="ratings-v1", destination_app="ratings", destination_version="v1", destination_service_name="ratings", response_code="200"})',
    };
    for (const [reporter, q] of Object.entries(edges)) {
      let last: string[] = [];
      for (const deadline = Date.now() + 90_000; ;) {
        last = await count(q);
        if (last.length === 1 && last[0] === "1") break;
        if (Date.now() > deadline) throw new Error(`reporter=${reporter}: ${q} = ${JSON.stringify(last)} after 90 s, want ["1"]`);
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    // Every Envoy (7) and the control plane are up.
    const up = JSON.parse((await httpGet(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent("sum by (job) (up)")}`)).body) as { data: { result: { metric: { job: string }; value: [number, string] }[] } };
    expect(Object.fromEntries(up.data.result.map((r) => [r.metric.job, r.value[1]]))).toEqual({ "envoy-stats": "7", weft: "1" });
  }, 180_000);
});
