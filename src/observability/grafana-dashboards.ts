// Grafana dashboards for a Weft mesh, in Istio's shape (mesh, service, workload, control plane),
// querying Istio's metric names — recorded from upstream Envoy's stats by the rules in
// manifests/prometheus/istio-compat.rules.yaml — plus Envoy's own proxy stats and the control
// plane's pilot_* / weft_* metrics. Written as JSON to manifests/grafana/ by
// `npm run gen:dashboards`; a unit test checks the files are current and an e2e test that every
// metric a query names exists in a real Prometheus scrape of the demo.
//
// Labels the recorded metrics carry (README "Metrics"): reporter="source" has source_* and
// destination_service*/destination_version; reporter="destination" has destination_workload*,
// destination_app/version and destination_service*. Envoy's own stats carry weft_workload,
// weft_namespace, weft_app, weft_version of the proxy.

/** A panel: what it shows and its queries (legend per query). */
interface PanelSpec {
  title: string;
  kind: "stat" | "timeseries";
  unit: string;
  queries: { expr: string; legend?: string }[];
  /** Width in grid units (24 = full row). */
  width?: number;
  description?: string;
}

interface RowSpec {
  title: string;
  panels: PanelSpec[];
}

interface VariableSpec {
  name: string;
  label: string;
  /** A label_values() query. */
  query: string;
  includeAll?: boolean;
}

interface DashboardSpec {
  uid: string;
  file: string;
  title: string;
  description: string;
  variables: VariableSpec[];
  rows: RowSpec[];
}

const RATE = "$__rate_interval";
const src = (extra = "") => `reporter="source"${extra ? `, ${extra}` : ""}`;
const dst = (extra = "") => `reporter="destination"${extra ? `, ${extra}` : ""}`;

/** Request rate, success rate and latency quantiles of istio_requests_total-style metrics under `sel`, grouped by `by`. */
function trafficPanels(sel: string, by: string, legend: string): PanelSpec[] {
  const rate = (extra = "") => `sum by (${by}) (rate(istio_requests_total{${sel}${extra}}[${RATE}]))`;
  const quantile = (q: number) => ({
    expr: `histogram_quantile(${q}, sum by (le, ${by}) (rate(istio_request_duration_milliseconds_bucket{${sel}}[${RATE}])))`,
    legend: `${legend} p${Math.round(q * 100)}`,
  });
  return [
    { title: "Requests", kind: "timeseries", unit: "reqps", queries: [{ expr: rate(), legend }] },
    {
      title: "Success rate (non-5xx)",
      kind: "timeseries",
      unit: "percentunit",
      queries: [{ expr: `${rate(`, response_code!~"5.."`)} / ${rate()}`, legend }],
    },
    { title: "Request duration", kind: "timeseries", unit: "ms", queries: [quantile(0.5), quantile(0.9), quantile(0.99)] },
    {
      title: "Request and response size",
      kind: "timeseries",
      unit: "bytes",
      queries: [
        { expr: `sum by (${by}) (rate(istio_request_bytes_sum{${sel}}[${RATE}])) / sum by (${by}) (rate(istio_request_bytes_count{${sel}}[${RATE}]))`, legend: `${legend} request` },
        { expr: `sum by (${by}) (rate(istio_response_bytes_sum{${sel}}[${RATE}])) / sum by (${by}) (rate(istio_response_bytes_count{${sel}}[${RATE}]))`, legend: `${legend} response` },
      ],
    },
  ];
}

/** TCP bytes and connections under `sel`, grouped by `by`. */
function tcpPanels(sel: string, by: string, legend: string): PanelSpec[] {
  return [
    {
      title: "TCP bytes",
      kind: "timeseries",
      unit: "Bps",
      queries: [
        { expr: `sum by (${by}) (rate(istio_tcp_sent_bytes_total{${sel}}[${RATE}]))`, legend: `${legend} sent` },
        { expr: `sum by (${by}) (rate(istio_tcp_received_bytes_total{${sel}}[${RATE}]))`, legend: `${legend} received` },
      ],
    },
    {
      title: "TCP connections",
      kind: "timeseries",
      unit: "cps",
      queries: [
        { expr: `sum by (${by}) (rate(istio_tcp_connections_opened_total{${sel}}[${RATE}]))`, legend: `${legend} opened` },
        { expr: `sum by (${by}) (rate(istio_tcp_connections_closed_total{${sel}}[${RATE}]))`, legend: `${legend} closed` },
      ],
    },
  ];
}

const MESH: DashboardSpec = {
  uid: "weft-mesh",
  file: "mesh.json",
  title: "Weft Mesh",
  description: "Every service in the mesh: request volume, success rate, latency (Istio's metric names, reporter=source).",
  variables: [],
  rows: [
    {
      title: "Global",
      panels: [
        { title: "Global request volume", kind: "stat", unit: "reqps", width: 6, queries: [{ expr: `round(sum(rate(istio_requests_total{${src()}}[${RATE}])), 0.001)` }] },
        {
          title: "Global success rate (non-5xx)",
          kind: "stat",
          unit: "percentunit",
          width: 6,
          queries: [{ expr: `sum(rate(istio_requests_total{${src(`response_code!~"5.."`)}}[${RATE}])) / sum(rate(istio_requests_total{${src()}}[${RATE}]))` }],
        },
        { title: "4xx", kind: "stat", unit: "reqps", width: 6, queries: [{ expr: `round(sum(rate(istio_requests_total{${src(`response_code=~"4.."`)}}[${RATE}])), 0.001) or vector(0)` }] },
        { title: "5xx", kind: "stat", unit: "reqps", width: 6, queries: [{ expr: `round(sum(rate(istio_requests_total{${src(`response_code=~"5.."`)}}[${RATE}])), 0.001) or vector(0)` }] },
      ],
    },
    { title: "HTTP services", panels: trafficPanels(src(), "destination_service", "{{destination_service}}") },
    { title: "TCP services", panels: tcpPanels(src(), "destination_service", "{{destination_service}}") },
    {
      title: "Proxies",
      panels: [
        { title: "Proxies reporting", kind: "stat", unit: "short", width: 6, queries: [{ expr: "count(envoy_server_live == 1)" }] },
        { title: "Proxy memory (allocated)", kind: "timeseries", unit: "bytes", width: 18, queries: [{ expr: "sum by (weft_workload, weft_namespace) (envoy_server_memory_allocated)", legend: "{{weft_workload}}.{{weft_namespace}}" }] },
      ],
    },
  ],
};

const SERVICE: DashboardSpec = {
  uid: "weft-service",
  file: "service.json",
  title: "Weft Service",
  description: "One service: its clients (reporter=source, by source workload) and its workloads (reporter=destination).",
  variables: [{ name: "service", label: "Service", query: `label_values(istio_requests_total{${src()}}, destination_service)` }],
  rows: [
    { title: "Service", panels: trafficPanels(src(`destination_service=~"$service"`), "destination_service", "{{destination_service}}") },
    { title: "Client workloads", panels: trafficPanels(src(`destination_service=~"$service"`), "source_workload, source_workload_namespace", "{{source_workload}}.{{source_workload_namespace}}") },
    { title: "Service workloads", panels: trafficPanels(dst(`destination_service=~"$service"`), "destination_workload, destination_workload_namespace", "{{destination_workload}}.{{destination_workload_namespace}}") },
    { title: "TCP", panels: tcpPanels(src(`destination_service=~"$service"`), "source_workload", "{{source_workload}}") },
  ],
};

const WORKLOAD: DashboardSpec = {
  uid: "weft-workload",
  file: "workload.json",
  title: "Weft Workload",
  description: "One workload: inbound (reporter=destination), outbound (reporter=source, by destination service) and its sidecar.",
  variables: [
    { name: "namespace", label: "Namespace", query: "label_values(envoy_server_live, weft_namespace)" },
    { name: "workload", label: "Workload", query: `label_values(envoy_server_live{weft_namespace=~"$namespace"}, weft_workload)` },
  ],
  rows: [
    { title: "Inbound", panels: trafficPanels(dst(`destination_workload=~"$workload", destination_workload_namespace=~"$namespace"`), "destination_service", "{{destination_service}}") },
    { title: "Outbound", panels: trafficPanels(src(`source_workload=~"$workload", source_workload_namespace=~"$namespace"`), "destination_service", "{{destination_service}}") },
    { title: "Outbound TCP", panels: tcpPanels(src(`source_workload=~"$workload", source_workload_namespace=~"$namespace"`), "destination_service", "{{destination_service}}") },
    {
      title: "Sidecar",
      panels: [
        { title: "Memory", kind: "timeseries", unit: "bytes", queries: [
          { expr: `sum by (weft_workload) (envoy_server_memory_allocated{weft_workload=~"$workload", weft_namespace=~"$namespace"})`, legend: "allocated" },
          { expr: `sum by (weft_workload) (envoy_server_memory_heap_size{weft_workload=~"$workload", weft_namespace=~"$namespace"})`, legend: "heap" },
        ] },
        { title: "Active upstream connections", kind: "timeseries", unit: "short", queries: [{ expr: `sum by (envoy_cluster_name) (envoy_cluster_upstream_cx_active{weft_workload=~"$workload", weft_namespace=~"$namespace"})`, legend: "{{envoy_cluster_name}}" }] },
        { title: "Config updates (xDS)", kind: "timeseries", unit: "short", queries: [
          { expr: `sum(rate(envoy_cluster_manager_cds_update_success{weft_workload=~"$workload", weft_namespace=~"$namespace"}[${RATE}]))`, legend: "CDS accepted" },
          { expr: `sum(rate(envoy_cluster_manager_cds_update_rejected{weft_workload=~"$workload", weft_namespace=~"$namespace"}[${RATE}]))`, legend: "CDS rejected" },
          { expr: `sum(rate(envoy_listener_manager_lds_update_success{weft_workload=~"$workload", weft_namespace=~"$namespace"}[${RATE}]))`, legend: "LDS accepted" },
          { expr: `sum(rate(envoy_listener_manager_lds_update_rejected{weft_workload=~"$workload", weft_namespace=~"$namespace"}[${RATE}]))`, legend: "LDS rejected" },
        ] },
        { title: "Uptime", kind: "stat", unit: "s", queries: [{ expr: `max(envoy_server_uptime{weft_workload=~"$workload", weft_namespace=~"$namespace"})` }] },
      ],
    },
  ],
};

const CONTROL_PLANE: DashboardSpec = {
  uid: "weft-control-plane",
  file: "control-plane.json",
  title: "Weft Control Plane",
  description: "weft serve: connected proxies, pushes, rejects (Istio's pilot_* names), push-to-ACK latency, snapshots, CA, process.",
  variables: [],
  rows: [
    {
      title: "xDS",
      panels: [
        { title: "Connected proxies", kind: "timeseries", unit: "short", queries: [{ expr: "sum by (instance) (pilot_xds)", legend: "{{instance}}" }] },
        { title: "Pushes by type", kind: "timeseries", unit: "ops", queries: [{ expr: `sum by (type) (rate(pilot_xds_pushes[${RATE}]))`, legend: "{{type}}" }] },
        { title: "Rejected (NACKs) by type", kind: "timeseries", unit: "ops", queries: [{ expr: `sum by (type) (rate(pilot_total_xds_rejects[${RATE}]))`, legend: "{{type}}" }] },
        { title: "Push to ACK", kind: "timeseries", unit: "s", queries: [
          { expr: `histogram_quantile(0.5, sum by (le) (rate(weft_xds_push_to_ack_seconds_bucket[${RATE}])))`, legend: "p50" },
          { expr: `histogram_quantile(0.99, sum by (le) (rate(weft_xds_push_to_ack_seconds_bucket[${RATE}])))`, legend: "p99" },
        ] },
        { title: "Bytes pushed", kind: "timeseries", unit: "Bps", queries: [{ expr: `sum(rate(weft_xds_push_bytes_total[${RATE}]))`, legend: "pushed" }] },
        { title: "Bytes in flight (unanswered responses)", kind: "timeseries", unit: "bytes", queries: [{ expr: "sum(weft_xds_inflight_bytes)", legend: "in flight" }] },
      ],
    },
    {
      title: "Configuration",
      panels: [
        { title: "Snapshots set / refused", kind: "timeseries", unit: "ops", queries: [
          { expr: `sum(rate(weft_snapshots_set_total[${RATE}]))`, legend: "set" },
          { expr: `sum(rate(weft_snapshots_refused_total[${RATE}]))`, legend: "refused (consistency check)" },
        ] },
        { title: "Proxy classes", kind: "timeseries", unit: "short", queries: [{ expr: "sum(weft_proxy_classes)", legend: "classes" }] },
      ],
    },
    {
      title: "Certificates",
      panels: [
        { title: "Certificates issued", kind: "timeseries", unit: "ops", queries: [{ expr: `sum(rate(weft_ca_certificates_issued_total[${RATE}]))`, legend: "issued" }] },
        { title: "Root expires in", kind: "stat", unit: "s", queries: [{ expr: "min(weft_ca_root_expiry_seconds)" }] },
      ],
    },
    {
      title: "Process",
      panels: [
        { title: "Memory (RSS)", kind: "timeseries", unit: "bytes", width: 8, queries: [{ expr: "weft_process_resident_memory_bytes", legend: "{{instance}}" }] },
        { title: "CPU", kind: "timeseries", unit: "percentunit", width: 8, queries: [{ expr: `rate(weft_process_cpu_seconds_total[${RATE}])`, legend: "{{instance}}" }] },
        { title: "Event loop lag p99", kind: "timeseries", unit: "s", width: 8, queries: [{ expr: "weft_nodejs_eventloop_lag_p99_seconds", legend: "{{instance}}" }] },
      ],
    },
  ],
};

export const DASHBOARDS: readonly DashboardSpec[] = [MESH, SERVICE, WORKLOAD, CONTROL_PLANE];

const DATASOURCE = { type: "prometheus", uid: "${datasource}" };

/** The Grafana dashboard JSON (schemaVersion 39: Grafana 10/11) of one spec. */
export function grafanaDashboard(spec: DashboardSpec): Record<string, unknown> {
  const panels: Record<string, unknown>[] = [];
  let id = 1;
  let y = 0;
  for (const row of spec.rows) {
    panels.push({ id: id++, type: "row", title: row.title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
    y += 1;
    let x = 0;
    for (const p of row.panels) {
      const w = p.width ?? 12;
      const h = p.kind === "stat" ? 4 : 8;
      if (x + w > 24) {
        x = 0;
        y += 8;
      }
      panels.push({
        id: id++,
        type: p.kind,
        title: p.title,
        ...(p.description ? { description: p.description } : {}),
        datasource: DATASOURCE,
        gridPos: { h, w, x, y },
        fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
        options: p.kind === "stat" ? { reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false }, colorMode: "value", graphMode: "area" } : { legend: { displayMode: "list", placement: "bottom", showLegend: true }, tooltip: { mode: "multi", sort: "desc" } },
        targets: p.queries.map((q, i) => ({ refId: String.fromCharCode(65 + i), datasource: DATASOURCE, expr: q.expr, ...(q.legend ? { legendFormat: q.legend } : {}), range: true })),
      });
      x += w;
    }
    y += 8;
  }
  const variables = [
    { name: "datasource", label: "Data source", type: "datasource", query: "prometheus", current: {}, hide: 0 },
    ...spec.variables.map((v) => ({
      name: v.name,
      label: v.label,
      type: "query",
      datasource: DATASOURCE,
      query: { query: v.query, refId: `${v.name}-variable` },
      definition: v.query,
      refresh: 2,
      includeAll: true,
      multi: true,
      allValue: ".*",
      current: {},
      sort: 1,
      hide: 0,
    })),
  ];
  return {
    uid: spec.uid,
    title: spec.title,
    description: spec.description,
    tags: ["weft", "istio"],
    editable: true,
    schemaVersion: 39,
    time: { from: "now-30m", to: "now" },
    refresh: "10s",
    timezone: "browser",
    templating: { list: variables },
    annotations: { list: [] },
    panels,
  };
}

/** Every dashboard file: name -> JSON text as manifests/grafana/ holds it. */
export function grafanaDashboardFiles(): Record<string, string> {
  return Object.fromEntries(DASHBOARDS.map((d) => [d.file, JSON.stringify(grafanaDashboard(d), null, 2) + "\n"]));
}

/** Every PromQL query of a dashboard JSON (panel targets and template variables). */
export function dashboardQueries(dashboard: unknown): string[] {
  const d = dashboard as { panels?: { targets?: { expr?: unknown }[] }[]; templating?: { list?: { query?: unknown }[] } };
  const out: string[] = [];
  for (const p of d.panels ?? []) for (const t of p.targets ?? []) if (typeof t.expr === "string") out.push(t.expr);
  for (const v of d.templating?.list ?? []) {
    const q = v.query;
    if (q && typeof q === "object" && typeof (q as { query?: unknown }).query === "string") out.push((q as { query: string }).query);
  }
  return out;
}
