// Per-edge traffic from a client proxy's own Envoy stats (source side, as Istio's
// reporter="source"): request rate, error rate (5xx) and p99 latency per outbound cluster over the
// time between two scrapes, and whether the cluster's connections use TLS. Pure: the scrapes come
// from ProxyStatsScraper (or a test).
//
// What Envoy's stats give (names after Weft's tag extraction, src/envoy/proxy-stats.ts):
//   envoy_cluster_upstream_rq{envoy_cluster_name, envoy_response_code}      requests per code
//   envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name, le}           latency histogram (ms)
//   envoy_cluster_ssl_handshake{envoy_cluster_name}                         TLS handshakes
//   envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix, envoy_response_code_class}
// Replies Envoy makes itself before a request reaches a cluster (a VirtualService fault abort, no
// route, a local rate limit) are counted by the connection manager only, not per cluster: they are
// the connection manager's 5xx beyond its clusters' 5xx, and are given to the edge when the
// connection manager sent traffic to one cluster only (else they stay on the source, unattributed).
import type { Sample } from "../envoy/prometheus-text.js";

/** One scrape of one proxy: when, and the samples of the families below. */
export interface ProxyScrape {
  atMs: number;
  samples: Sample[];
}

/** The metric families the console reads (the scraper keeps only these). */
export const EDGE_FAMILIES = new Set([
  "envoy_cluster_upstream_rq",
  "envoy_cluster_upstream_rq_time_bucket",
  "envoy_cluster_ssl_handshake",
  "envoy_http_downstream_rq_xx",
]);

export interface EdgeTraffic {
  /** Istio cluster name `outbound|port|subset|host`. */
  cluster: string;
  service: string;
  port: number;
  subset: string;
  /** Requests since the proxy started (the edge exists once this is > 0). */
  totalRequests: number;
  /** In the window between the two scrapes (undefined with one scrape only). */
  windowSeconds?: number;
  requests?: number;
  /** 5xx answers, including the local replies given to this edge. */
  errors?: number;
  /** Of `errors`: replies Envoy made itself (fault aborts, ...), see the header. */
  localErrors?: number;
  rps?: number;
  /** errors / requests; undefined without requests in the window. */
  errorRate?: number;
  /** 99th percentile of upstream request time (ms) in the window; undefined without samples. */
  p99Ms?: number;
  /** The cluster's connections were TLS (Istio mutual TLS in the mesh). */
  tls: boolean;
}

export interface SourceTraffic {
  edges: EdgeTraffic[];
  /** Local 5xx replies in the window that no single edge could be given. */
  unattributedLocalErrors: number;
}

interface ClusterCounters {
  byCode: Map<string, number>;
  buckets: Map<string, number>;
  handshakes: number;
}

function countersOf(scrape: ProxyScrape | undefined): { clusters: Map<string, ClusterCounters & { labels: Record<string, string> }>; hcm5xx: Map<string, number> } {
  const clusters = new Map<string, ClusterCounters & { labels: Record<string, string> }>();
  const hcm5xx = new Map<string, number>();
  for (const s of scrape?.samples ?? []) {
    if (s.name === "envoy_http_downstream_rq_xx") {
      const prefix = s.labels.envoy_http_conn_manager_prefix ?? "";
      if (prefix.startsWith("outbound_") && s.labels.envoy_response_code_class === "5") hcm5xx.set(prefix, (hcm5xx.get(prefix) ?? 0) + s.value);
      continue;
    }
    const name = s.labels.envoy_cluster_name;
    if (!name?.startsWith("outbound|")) continue;
    let c = clusters.get(name);
    if (!c) clusters.set(name, (c = { byCode: new Map(), buckets: new Map(), handshakes: 0, labels: s.labels }));
    if (s.name === "envoy_cluster_upstream_rq") {
      const code = s.labels.envoy_response_code ?? "";
      c.byCode.set(code, (c.byCode.get(code) ?? 0) + s.value);
    } else if (s.name === "envoy_cluster_upstream_rq_time_bucket") {
      const le = s.labels.le ?? "";
      c.buckets.set(le, (c.buckets.get(le) ?? 0) + s.value);
    } else if (s.name === "envoy_cluster_ssl_handshake") {
      c.handshakes += s.value;
    }
  }
  return { clusters, hcm5xx };
}

const sum = (m: Map<string, number>, pick: (k: string) => boolean = () => true) => [...m].reduce((a, [k, v]) => (pick(k) ? a + v : a), 0);
const is5xx = (code: string) => code.startsWith("5");
/** Counters restart from zero when Envoy restarts: a decrease means "since the restart". */
const delta = (now: number, before: number) => (now >= before ? now - before : now);

/**
 * The q-quantile (0..1) of a histogram given by cumulative bucket counts (`le` -> count), as
 * Prometheus's histogram_quantile: linear within the bucket, the highest finite bound when the
 * rank falls in +Inf. undefined when the histogram is empty.
 */
export function histogramQuantile(q: number, buckets: Map<string, number>): number | undefined {
  const sorted = [...buckets].map(([le, count]) => ({ le: le === "+Inf" ? Infinity : Number(le), count })).filter((b) => !Number.isNaN(b.le)).sort((a, b) => a.le - b.le);
  const total = sorted.at(-1)?.count ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of sorted) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe;
      const inBucket = b.count - prevCount;
      return inBucket <= 0 ? b.le : prevLe + ((b.le - prevLe) * (rank - prevCount)) / inBucket;
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

/** The connection manager a cluster's requests went through: outbound_<ip>_<port> by port, or the only one. */
function hcmOf(port: number, prefixes: string[]): string | undefined {
  const byPort = prefixes.filter((p) => p.endsWith(`_${port}`));
  if (byPort.length === 1) return byPort[0];
  return prefixes.length === 1 ? prefixes[0] : undefined;
}

/** Edges of one source proxy: `newer` against `older` (the window); `older` undefined gives totals only. */
export function sourceTraffic(older: ProxyScrape | undefined, newer: ProxyScrape): SourceTraffic {
  const now = countersOf(newer);
  const before = older && older.atMs < newer.atMs ? countersOf(older) : undefined;
  const windowSeconds = before ? (newer.atMs - older!.atMs) / 1000 : undefined;
  const edges: EdgeTraffic[] = [];
  for (const [cluster, c] of now.clusters) {
    const totalRequests = sum(c.byCode);
    if (totalRequests <= 0) continue;
    const [, port, subset, host] = cluster.split("|");
    const edge: EdgeTraffic = { cluster, service: (host ?? "").replace(/\|$/, ""), port: Number(port), subset: subset ?? "", totalRequests, tls: c.handshakes > 0 };
    if (before) {
      const b = before.clusters.get(cluster);
      const codes = new Set([...c.byCode.keys(), ...(b?.byCode.keys() ?? [])]);
      let requests = 0;
      let errors = 0;
      for (const code of codes) {
        const d = delta(c.byCode.get(code) ?? 0, b?.byCode.get(code) ?? 0);
        requests += d;
        if (is5xx(code)) errors += d;
      }
      const window = new Map<string, number>();
      for (const [le, count] of c.buckets) window.set(le, delta(count, b?.buckets.get(le) ?? 0));
      Object.assign(edge, { windowSeconds, requests, errors, localErrors: 0, p99Ms: histogramQuantile(0.99, window) });
    }
    edges.push(edge);
  }
  let unattributedLocalErrors = 0;
  if (before) {
    // Local replies per connection manager: its 5xx beyond what its clusters answered with 5xx.
    const prefixes = [...now.hcm5xx.keys()];
    const edgesOf = new Map<string, EdgeTraffic[]>();
    for (const e of edges) {
      const hcm = hcmOf(e.port, prefixes);
      if (hcm) edgesOf.set(hcm, [...(edgesOf.get(hcm) ?? []), e]);
    }
    for (const prefix of prefixes) {
      const downstream = delta(now.hcm5xx.get(prefix)!, before.hcm5xx.get(prefix) ?? 0);
      const mine = edgesOf.get(prefix) ?? [];
      const upstream = mine.reduce((a, e) => a + (e.errors ?? 0), 0);
      const local = Math.max(0, downstream - upstream);
      if (local === 0) continue;
      if (mine.length === 1) {
        const e = mine[0]!;
        e.requests = (e.requests ?? 0) + local;
        e.errors = (e.errors ?? 0) + local;
        e.localErrors = local;
      } else {
        unattributedLocalErrors += local;
      }
    }
  }
  for (const e of edges) {
    if (e.requests === undefined || !e.windowSeconds) continue;
    e.rps = e.requests / e.windowSeconds;
    if (e.requests > 0) e.errorRate = (e.errors ?? 0) / e.requests;
  }
  return { edges, unattributedLocalErrors };
}
