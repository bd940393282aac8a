// Prometheus recording rules that turn upstream Envoy's stats, as Weft's tags label them
// (src/envoy/proxy-stats.ts), into Istio's standard metrics — so Istio dashboards and alerts run
// on a Weft mesh. Written to manifests/prometheus/istio-compat.rules.yaml by
// `npm run gen:prometheus-rules` (a unit test checks the file is current).
//
// reporter="source"      from the client's outbound clusters (outbound|port|subset|host)
// reporter="destination" from the server's inbound clusters (inbound|port||host, see naming.ts)
// Recorded series are sums of Envoy counters/histograms: use them with rate()/increase() as
// Istio's. What cannot be derived (source_* on the destination side, destination_workload on the
// source side, response_flags, grpc_response_status, connection_security_policy) is absent; the
// README's mapping table says so.
import { PROXY_STATS_LABELS } from "./proxy-stats.js";

export interface RecordingRule {
  record: string;
  expr: string;
}

type Reporter = "source" | "destination";

const CLUSTER_OF: Record<Reporter, string> = {
  source: String.raw`envoy_cluster_name=~"outbound\\|.*"`,
  destination: String.raw`envoy_cluster_name=~"inbound\\|.*"`,
};
const TCP_OF: Record<Reporter, string> = {
  source: String.raw`envoy_tcp_prefix=~"outbound\\|.*"`,
  destination: String.raw`envoy_tcp_prefix=~"inbound\\|.*"`,
};

/** Istio labels each reporter can fill, and from which Envoy label. */
function labelMap(reporter: Reporter): [istio: string, from: string][] {
  const self = reporter === "source" ? "source" : "destination";
  return [
    [`${self}_workload`, PROXY_STATS_LABELS.workload],
    [`${self}_workload_namespace`, PROXY_STATS_LABELS.namespace],
    [`${self}_app`, PROXY_STATS_LABELS.app],
    [`${self}_version`, PROXY_STATS_LABELS.version],
    [`${self}_principal`, PROXY_STATS_LABELS.principal],
    // The source side knows the subset it picked, which is the version in Istio's convention.
    ...(reporter === "source" ? ([["destination_version", "destination_subset"]] as [string, string][]) : []),
  ];
}

const SERVICE_LABELS = ["destination_service", "destination_service_name", "destination_service_namespace"];

/** `expr` with Istio's labels added (label_replace chain). */
function withIstioLabels(expr: string, reporter: Reporter, extra: [string, string][] = []): string {
  let out = `label_replace(${expr}, "reporter", "${reporter}", "", "")`;
  for (const [to, from] of [...labelMap(reporter), ...extra]) out = `label_replace(${out}, "${to}", "$1", "${from}", "(.*)")`;
  out = `label_replace(${out}, "destination_service_name", "$1", "destination_service", "([^.]+).*")`;
  out = `label_replace(${out}, "destination_service_namespace", "$1", "destination_service", "[^.]+\\\\.([^.]+)\\\\.svc\\\\..*")`;
  return out;
}

function byLabels(reporter: Reporter, extra: string[] = []): string {
  return ["reporter", ...labelMap(reporter).map(([to]) => to), ...SERVICE_LABELS, ...extra].join(", ");
}

function rule(record: string, reporter: Reporter, envoyExpr: string, extra: string[] = [], renames: [string, string][] = []): RecordingRule {
  return { record, expr: `sum by (${byLabels(reporter, extra)}) (${withIstioLabels(envoyExpr, reporter, renames)})` };
}

/** Istio's metric name -> how it is recorded, for both reporters. */
export function istioCompatRules(): RecordingRule[] {
  const rules: RecordingRule[] = [];
  for (const reporter of ["source", "destination"] as const) {
    const c = CLUSTER_OF[reporter];
    const t = TCP_OF[reporter];
    rules.push(
      rule("istio_requests_total", reporter, `envoy_cluster_upstream_rq{${c}}`, ["response_code"], [["response_code", "envoy_response_code"]]),
      rule("istio_request_duration_milliseconds_bucket", reporter, `envoy_cluster_upstream_rq_time_bucket{${c}}`, ["le"]),
      rule("istio_request_duration_milliseconds_sum", reporter, `envoy_cluster_upstream_rq_time_sum{${c}}`),
      rule("istio_request_duration_milliseconds_count", reporter, `envoy_cluster_upstream_rq_time_count{${c}}`),
      // Istio counts headers and body; Envoy has one histogram for each: the sum is exact, the
      // buckets are the body's.
      rule("istio_request_bytes_bucket", reporter, `envoy_cluster_upstream_rq_body_size_bucket{${c}}`, ["le"]),
      rule("istio_request_bytes_sum", reporter, `envoy_cluster_upstream_rq_body_size_sum{${c}} + envoy_cluster_upstream_rq_headers_size_sum{${c}}`),
      rule("istio_request_bytes_count", reporter, `envoy_cluster_upstream_rq_body_size_count{${c}}`),
      rule("istio_response_bytes_bucket", reporter, `envoy_cluster_upstream_rs_body_size_bucket{${c}}`, ["le"]),
      rule("istio_response_bytes_sum", reporter, `envoy_cluster_upstream_rs_body_size_sum{${c}} + envoy_cluster_upstream_rs_headers_size_sum{${c}}`),
      rule("istio_response_bytes_count", reporter, `envoy_cluster_upstream_rs_body_size_count{${c}}`),
      // TCP (tcp_proxy) connections: "sent" is what the destination sent back (downstream tx on
      // both sides), "received" what the client sent.
      rule("istio_tcp_sent_bytes_total", reporter, `envoy_tcp_downstream_cx_tx_bytes_total{${t}}`),
      rule("istio_tcp_received_bytes_total", reporter, `envoy_tcp_downstream_cx_rx_bytes_total{${t}}`),
      rule("istio_tcp_connections_opened_total", reporter, `envoy_tcp_downstream_cx_total{${t}}`),
    );
    // tcp_proxy has no "closed" counter: the cluster's closed upstream connections, for the
    // clusters that carry tcp_proxy traffic (those with an opened series).
    const closed = rule("istio_tcp_connections_closed_total", reporter, `envoy_cluster_upstream_cx_destroy{${c}}`);
    rules.push({ record: closed.record, expr: `${closed.expr} and on (${byLabels(reporter)}) istio_tcp_connections_opened_total{reporter="${reporter}"}` });
  }
  return rules;
}

/** The rules file (Prometheus rule_files format), as manifests/prometheus/istio-compat.rules.yaml holds it. */
export function istioCompatRulesYaml(): string {
  const lines = [
    "# Generated by `npm run gen:prometheus-rules` from src/envoy/istio-compat-rules.ts: do not edit.",
    "# Istio's standard metrics recorded from upstream Envoy's stats on a Weft mesh (README: Observability).",
    "groups:",
    "- name: weft-istio-compat",
    "  interval: 15s",
    "  rules:",
  ];
  for (const r of istioCompatRules()) lines.push(`  - record: ${r.record}`, `    expr: ${JSON.stringify(r.expr)}`);
  return lines.join("\n") + "\n";
}
