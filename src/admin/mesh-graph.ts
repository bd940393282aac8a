// What the mesh console shows, assembled in one JSON document (GET /ui/api/mesh): the mesh as a
// graph (services with their workloads as nodes, traffic edges with rate, error rate, p99 and
// mTLS), every connected proxy's sync state (SYNCED / STALE / NACKED with Envoy's text),
// certificates and their expiry, and the config's validation problems. Pure: the admin server
// gathers the inputs (model, proxy registry, scrapes, CA) and passes them in.
import { statsIdentityOf } from "../envoy/bootstrap.js";
import type { MeshModel } from "../model/mesh-model.js";
import type { ConfigProblemsReport } from "../runner/config-problems.js";
import type { ConfigState } from "../xds/client-status.js";
import { ERROR_RATE_RED, type ConsoleCertificate, type ConsoleProxy, type ConsoleState, type GraphEdge, type GraphNode, type ProxySyncState } from "./console-state.js";
import type { ProxyStatus } from "../xds/proxy-registry.js";
import type { EdgeTraffic, SourceTraffic } from "./edge-traffic.js";
import type { WorkloadTraffic } from "./prometheus-edge-source.js";

export interface GraphProxy {
  status: ProxyStatus;
  types: ConsoleProxy["types"];
  certificate?: ConsoleProxy["certificate"];
  stats?: ConsoleProxy["stats"];
  traffic?: SourceTraffic;
}

export interface GraphInputs {
  now: Date;
  model?: Pick<MeshModel, "services" | "destinationRulesByHost">;
  proxies: GraphProxy[];
  roots?: { subject: string; serial: string; notAfter: string }[];
  problems: ConfigProblemsReport;
  metrics: ConsoleState["metrics"];
  /** Edges per source workload from Prometheus (instead of the proxies' own traffic). */
  workloadTraffic?: WorkloadTraffic[];
}

export function proxySyncState(types: { state: ConfigState }[]): ProxySyncState {
  if (types.some((t) => t.state === "ERROR")) return "NACKED";
  if (types.some((t) => t.state === "STALE")) return "STALE";
  return types.some((t) => t.state === "SYNCED") ? "SYNCED" : "NOT_SENT";
}

const workloadId = (ns: string, name: string) => `workload:${ns}/${name}`;
const serviceId = (host: string) => `service:${host}`;

function metadataStrings(md: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(md).filter(([, v]) => typeof v === "string")) as Record<string, string>;
}

/** The workload a proxy runs for: its node id's `name.namespace` part, or metadata (see statsIdentityOf). */
export function proxyWorkload(p: Pick<ProxyStatus, "nodeId" | "metadata">): { name: string; namespace: string; app?: string; version?: string } {
  const id = statsIdentityOf({ nodeId: p.nodeId, metadata: metadataStrings(p.metadata) });
  return { name: id.workload ?? p.nodeId, namespace: id.namespace ?? "default", ...(id.app ? { app: id.app } : {}), ...(id.version ? { version: id.version } : {}) };
}

function edgeHealth(e: EdgeTraffic): GraphEdge["health"] {
  if (e.requests === undefined) return "unknown";
  if (e.requests === 0) return "idle";
  const rate = e.errorRate ?? 0;
  return rate >= ERROR_RATE_RED ? "error" : rate > 0 ? "degraded" : "healthy";
}

export function buildConsoleState(inp: GraphInputs): ConsoleState {
  const nodes = new Map<string, GraphNode>();
  const services = inp.model?.services ?? [];
  // Services and the workloads (WorkloadEntries) behind them.
  const workloadsOfService = new Map<string, { id: string; labels: Record<string, string> }[]>();
  for (const s of services) {
    if (s.location === "MESH_EXTERNAL" && s.endpoints.length === 0) continue;
    const sid = serviceId(s.hostname);
    nodes.set(sid, { id: sid, kind: "service", label: s.hostname.split(".")[0]!, namespace: s.namespace });
    const list: { id: string; labels: Record<string, string> }[] = [];
    for (const ep of s.endpoints) {
      if (!ep.workload) continue;
      const [ns, name] = ep.workload.split("/") as [string, string];
      const id = workloadId(ns, name);
      list.push({ id, labels: ep.labels });
      if (!nodes.has(id)) nodes.set(id, { id, kind: "workload", label: name, namespace: ns, parent: sid, ...(ep.labels.app ? { app: ep.labels.app } : {}), ...(ep.labels.version ? { version: ep.labels.version } : {}) });
    }
    workloadsOfService.set(s.hostname, list);
  }
  // Connected proxies: their workload's node (gateways and workloads the config does not list get one).
  const proxyNode = new Map<string, string>();
  for (const p of inp.proxies) {
    const w = proxyWorkload(p.status);
    const id = workloadId(w.namespace, w.name);
    const router = p.status.nodeId.startsWith("router~");
    const node = nodes.get(id) ?? { id, kind: router ? "gateway" : "workload", label: w.name, namespace: w.namespace, ...(w.app ? { app: w.app } : {}), ...(w.version ? { version: w.version } : {}) };
    node.proxy = p.status.nodeId;
    node.sync = proxySyncState(p.types);
    if (router) node.kind = "gateway";
    nodes.set(id, node);
    proxyNode.set(p.status.nodeId, id);
  }
  // The workload(s) a cluster's traffic reaches: the subset's labels over the service's workloads.
  const targetOf = (e: EdgeTraffic): string => {
    const ws = workloadsOfService.get(e.service);
    if (!ws) {
      const sid = serviceId(e.service);
      if (!nodes.has(sid)) nodes.set(sid, { id: sid, kind: "service", label: e.service, namespace: e.service.split(".")[1] ?? "" });
      return sid;
    }
    let picked = ws;
    if (e.subset) {
      const subset = inp.model?.destinationRulesByHost.get(e.service)?.flatMap((dr) => dr.spec.subsets ?? []).find((s) => s.name === e.subset);
      picked = subset ? ws.filter((w) => Object.entries(subset.labels ?? {}).every(([k, v]) => w.labels[k] === v)) : [];
    }
    const ids = [...new Set(picked.map((w) => w.id))];
    return ids.length === 1 ? ids[0]! : serviceId(e.service);
  };
  const edges: GraphEdge[] = [];
  const addEdges = (source: string, traffic: SourceTraffic) => {
    if (traffic.unattributedLocalErrors) nodes.get(source)!.unattributedLocalErrors = traffic.unattributedLocalErrors;
    for (const e of traffic.edges) {
      const target = targetOf(e);
      edges.push({
        id: `${source}->${e.cluster}`,
        source,
        target,
        cluster: e.cluster,
        totalRequests: e.totalRequests,
        mtls: e.tls,
        health: edgeHealth(e),
        ...(e.windowSeconds !== undefined ? { windowSeconds: Math.round(e.windowSeconds * 10) / 10 } : {}),
        ...(e.rps !== undefined ? { rps: e.rps } : {}),
        ...(e.errorRate !== undefined ? { errorRate: e.errorRate } : {}),
        ...(e.p99Ms !== undefined ? { p99Ms: e.p99Ms } : {}),
        ...(e.localErrors ? { localErrors: e.localErrors } : {}),
      });
    }
  };
  if (inp.workloadTraffic) {
    for (const w of inp.workloadTraffic) {
      const id = workloadId(w.namespace, w.workload);
      if (!nodes.has(id)) nodes.set(id, { id, kind: "workload", label: w.workload, namespace: w.namespace });
      addEdges(id, w.traffic);
    }
  } else {
    for (const p of inp.proxies) if (p.traffic) addEdges(proxyNode.get(p.status.nodeId)!, p.traffic);
  }
  const proxies: ConsoleProxy[] = inp.proxies.map((p) => {
    const w = proxyWorkload(p.status);
    return {
      nodeId: p.status.nodeId,
      type: p.status.nodeId.startsWith("router~") ? "router" : "sidecar",
      workload: w.name,
      namespace: w.namespace,
      api: p.status.api,
      connectedAt: p.status.connectedAt,
      state: proxySyncState(p.types),
      types: p.types,
      ...(p.certificate ? { certificate: p.certificate } : {}),
      ...(p.stats ? { stats: p.stats } : {}),
    };
  });
  const left = (notAfter: string) => Math.round((Date.parse(notAfter) - inp.now.getTime()) / 1000);
  const certificates: ConsoleCertificate[] = (inp.roots ?? []).map((r) => ({ kind: "root", subject: r.subject, serial: r.serial, notAfter: r.notAfter, secondsLeft: left(r.notAfter) }));
  const workloadCerts = new Map<string, ConsoleCertificate>();
  for (const p of proxies) {
    if (!p.certificate) continue;
    const c = workloadCerts.get(p.certificate.serial) ?? { kind: "workload" as const, subject: p.certificate.identity, serial: p.certificate.serial, notAfter: p.certificate.notAfter, secondsLeft: left(p.certificate.notAfter), proxies: [] };
    c.proxies!.push(p.nodeId);
    workloadCerts.set(p.certificate.serial, c);
  }
  certificates.push(...[...workloadCerts.values()].sort((a, b) => a.secondsLeft - b.secondsLeft));
  return {
    generatedAt: inp.now.toISOString(),
    metrics: inp.metrics,
    nodes: [...nodes.values()].sort((a, b) => a.id.localeCompare(b.id)),
    edges: edges.sort((a, b) => a.id.localeCompare(b.id)),
    proxies: proxies.sort((a, b) => a.nodeId.localeCompare(b.nodeId)),
    certificates: { security: inp.roots !== undefined, list: certificates },
    problems: inp.problems,
  };
}
