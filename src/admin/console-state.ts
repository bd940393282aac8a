// The mesh console's data (GET /ui/api/mesh), shared by the admin server (mesh-graph.ts builds
// it) and the page (ui/src reads it). Types only, without imports: the page is compiled for the
// browser.

/** The config problems part (runner/config-problems.ts's report has this shape). */
export interface ConsoleProblems {
  generation: number;
  appliedAt?: string;
  errors: number;
  warnings: number;
  problems: { severity: "error" | "warning"; text: string; resource: string; field: string; message: string; source: string }[];
  omitted: number;
}

/** An edge is drawn red at or above this share of 5xx answers (Kiali's default "failure" threshold is 10 %; Istio's SLO dashboards use 5 %). */
export const ERROR_RATE_RED = 0.05;

/** Where one proxy stands, summed over its types: NACKED if Envoy refused any type's last push. */
export type ProxySyncState = "SYNCED" | "STALE" | "NACKED" | "NOT_SENT";

export interface GraphNode {
  id: string;
  kind: "service" | "workload" | "gateway";
  label: string;
  namespace: string;
  /** A workload's service node (drawn as its box). */
  parent?: string;
  app?: string;
  version?: string;
  /** The connected proxy of a workload (node id), and its sync state. */
  proxy?: string;
  sync?: ProxySyncState;
  /** Local 5xx replies of this source that no edge could be given (see edge-traffic.ts). */
  unattributedLocalErrors?: number;
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  /** Istio cluster name (outbound|port|subset|host). */
  cluster: string;
  totalRequests: number;
  windowSeconds?: number;
  rps?: number;
  errorRate?: number;
  p99Ms?: number;
  localErrors?: number;
  mtls: boolean;
  /** "error" (>= ERROR_RATE_RED), "degraded" (some 5xx), "healthy", "idle" (no request in the window), "unknown" (one scrape only). */
  health: "error" | "degraded" | "healthy" | "idle" | "unknown";
}

export interface ConsoleProxy {
  nodeId: string;
  type: "sidecar" | "router";
  workload: string;
  namespace: string;
  api: string;
  connectedAt: string;
  state: ProxySyncState;
  types: { type: string; state: "SYNCED" | "NOT_SENT" | "STALE" | "ERROR"; nack?: { message: string; at: string; version: string } }[];
  certificate?: { identity: string; serial: string; notAfter: string };
  stats?: { url: string; error?: string; scrapedAt?: string };
}

export interface ConsoleCertificate {
  kind: "root" | "workload";
  subject: string;
  serial: string;
  notAfter: string;
  secondsLeft: number;
  /** Workload certificates: the proxies holding it. */
  proxies?: string[];
}

export interface ConsoleState {
  generatedAt: string;
  metrics: { source: "envoy" | "prometheus" | "none"; windowSeconds: number; note?: string };
  nodes: GraphNode[];
  edges: GraphEdge[];
  proxies: ConsoleProxy[];
  certificates: { security: boolean; list: ConsoleCertificate[] };
  problems: ConsoleProblems;
}

