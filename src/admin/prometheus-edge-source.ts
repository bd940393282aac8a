// The mesh console's edges from a Prometheus server (weft serve/demo --prometheus-url) instead of
// the proxies: Istio's series recorded by manifests/prometheus/istio-compat.rules.yaml
// (istio_requests_total and istio_request_duration_milliseconds with reporter="source") and
// Envoy's TLS handshakes, over the last minute. Prometheus's answers are bounded in size and time.
// Local replies (fault aborts) are not in these series (see edge-traffic.ts): with Prometheus
// the console does not show them.
import type { EdgeTraffic, SourceTraffic } from "./edge-traffic.js";

export interface WorkloadTraffic {
  namespace: string;
  workload: string;
  traffic: SourceTraffic;
}

interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusEdgeOptions {
  /** PromQL range of rates (default 1m: four scrapes at Prometheus's default 15 s). */
  range?: string;
  timeoutMs?: number;
  maxBytes?: number;
}

const BY = "source_workload, source_workload_namespace, destination_service, destination_version";

export const PROMETHEUS_QUERIES = {
  total: `sum by (${BY}) (istio_requests_total{reporter="source"})`,
  requests: (range: string) => `sum by (${BY}) (increase(istio_requests_total{reporter="source"}[${range}]))`,
  errors: (range: string) => `sum by (${BY}) (increase(istio_requests_total{reporter="source",response_code=~"5.."}[${range}]))`,
  p99: (range: string) => `histogram_quantile(0.99, sum by (le, ${BY}) (rate(istio_request_duration_milliseconds_bucket{reporter="source"}[${range}])))`,
  tls: `sum by (weft_workload, weft_namespace, destination_service, destination_subset) (envoy_cluster_ssl_handshake{envoy_cluster_name=~"outbound\\\\|.*"})`,
};

/** Seconds in a PromQL duration like 1m, 90s, 2m30s (for the rate). */
export function promDurationSeconds(d: string): number {
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };
  let total = 0;
  const re = /(\d+)(ms|s|m|h)/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while ((m = re.exec(d))) {
    total += Number(m[1]) * units[m[2]!]!;
    at = re.lastIndex;
  }
  if (at !== d.length || total <= 0) throw new Error(`not a PromQL duration: "${d}" (e.g. 1m, 90s)`);
  return total;
}

export class PrometheusEdgeSource {
  private readonly range: string;
  private readonly seconds: number;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;

  constructor(
    readonly baseUrl: string,
    opts: PrometheusEdgeOptions = {},
  ) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new Error(`--prometheus-url must be http(s)://host:port, got "${baseUrl}"`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`--prometheus-url must be http(s)://host:port, got "${baseUrl}"`);
    this.range = opts.range ?? "1m";
    this.seconds = promDurationSeconds(this.range);
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.maxBytes = opts.maxBytes ?? 8 * 1024 * 1024;
  }

  get windowSeconds(): number {
    return this.seconds;
  }

  private async query(q: string): Promise<VectorSample[]> {
    const url = new URL("api/v1/query", this.baseUrl.endsWith("/") ? this.baseUrl : `${this.baseUrl}/`);
    url.searchParams.set("query", q);
    const res = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
    const reader = res.body?.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (let r = await reader?.read(); r && !r.done; r = await reader!.read()) {
      size += r.value.length;
      if (size > this.maxBytes) {
        await reader!.cancel();
        throw new Error(`Prometheus answered over ${this.maxBytes} bytes`);
      }
      chunks.push(r.value);
    }
    const text = Buffer.concat(chunks).toString("utf8");
    let body: { status?: string; error?: string; data?: { resultType?: string; result?: VectorSample[] } };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new Error(`Prometheus answered ${res.status} with something other than JSON: ${text.slice(0, 200)}`);
    }
    if (body.status !== "success" || body.data?.resultType !== "vector") throw new Error(`Prometheus refused the query (${res.status}): ${(body.error ?? text).slice(0, 300)}`);
    return body.data.result ?? [];
  }

  /** Per source workload, its edges over the range (only edges that ever carried a request). */
  async workloadTraffic(): Promise<WorkloadTraffic[]> {
    const [total, requests, errors, p99, tls] = await Promise.all([
      this.query(PROMETHEUS_QUERIES.total),
      this.query(PROMETHEUS_QUERIES.requests(this.range)),
      this.query(PROMETHEUS_QUERIES.errors(this.range)),
      this.query(PROMETHEUS_QUERIES.p99(this.range)),
      this.query(PROMETHEUS_QUERIES.tls),
    ]);
    const key = (ns: string, w: string, svc: string, version: string) => JSON.stringify([ns, w, svc, version]);
    const of = (s: VectorSample) => key(s.metric.source_workload_namespace ?? "", s.metric.source_workload ?? "", s.metric.destination_service ?? "", s.metric.destination_version ?? "");
    const num = (s: VectorSample | undefined) => (s && Number.isFinite(Number(s.value[1])) ? Number(s.value[1]) : undefined);
    const index = (list: VectorSample[]) => new Map(list.map((s) => [of(s), s]));
    const [req, err, lat] = [index(requests), index(errors), index(p99)];
    const handshakes = new Map(tls.map((s) => [key(s.metric.weft_namespace ?? "", s.metric.weft_workload ?? "", s.metric.destination_service ?? "", s.metric.destination_subset ?? ""), num(s) ?? 0]));
    const byWorkload = new Map<string, WorkloadTraffic>();
    for (const s of total) {
      const totalRequests = num(s) ?? 0;
      const { source_workload: workload = "", source_workload_namespace: namespace = "", destination_service: service = "", destination_version: version = "" } = s.metric;
      if (totalRequests <= 0 || !workload || !service) continue;
      const k = of(s);
      const n = num(req.get(k)) ?? 0;
      const e = num(err.get(k)) ?? 0;
      const p = num(lat.get(k));
      const edge: EdgeTraffic = {
        cluster: `outbound||${version}|${service}`,
        service,
        port: 0,
        subset: version,
        totalRequests,
        windowSeconds: this.seconds,
        requests: n,
        errors: e,
        rps: n / this.seconds,
        ...(n > 0 ? { errorRate: e / n } : {}),
        ...(p !== undefined && !Number.isNaN(p) ? { p99Ms: p } : {}),
        tls: (handshakes.get(k) ?? 0) > 0,
      };
      const wk = JSON.stringify([namespace, workload]);
      const entry = byWorkload.get(wk) ?? { namespace: namespace || "default", workload, traffic: { edges: [], unattributedLocalErrors: 0 } };
      entry.traffic.edges.push(edge);
      byWorkload.set(wk, entry);
    }
    return [...byWorkload.values()];
  }
}
