// The mesh console on the admin server: the page (/ui: HTML, the bundled script and styles that
// `npm run build` puts in dist/console/, see scripts/build-console.ts and ui/) and its data
// (/ui/api/mesh: the graph, sync states, certificates and config problems, see mesh-graph.ts).
// Edge metrics come from the proxies' own Envoy stats (ProxyStatsScraper), read when the page asks.
import { existsSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply } from "fastify";
import type { SnapshotSource } from "../cache/snapshot-cache.js";
import { STATS_PORT_METADATA } from "../envoy/proxy-stats.js";
import type { MeshModel } from "../model/mesh-model.js";
import type { ConfigProblemsReport } from "../runner/config-problems.js";
import { clientStatusOf } from "../xds/client-status.js";
import type { ProxyRegistry, ProxyStatus } from "../xds/proxy-registry.js";
import type { ConsoleState } from "./console-state.js";
import { buildConsoleState, type GraphProxy } from "./mesh-graph.js";
import { ProxyStatsScraper, type ScrapeTarget } from "./proxy-stats-scraper.js";
import type { PrometheusEdgeSource, WorkloadTraffic } from "./prometheus-edge-source.js";

/** The built page's files, served from memory (a fixed list: nothing else is read from disk). */
const ASSETS: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};

/** Where `npm run build` writes the console (dist/console), from this file compiled or run by tsx. */
export function consoleAssetsDir(): string | undefined {
  for (const rel of ["../../console/", "../../dist/console/"]) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}index.html`)) return dir;
  }
  return undefined;
}

function loadAssets(dir: string | undefined): Map<string, Buffer> | undefined {
  if (!dir) return undefined;
  const files = new Map<string, Buffer>();
  for (const name of Object.keys(ASSETS)) {
    if (!existsSync(dir + name)) return undefined;
    files.set(name, readFileSync(dir + name));
  }
  return files;
}

/** The host part of a gRPC peer ("10.0.0.7:51234", "[::1]:51234", "ipv4:10.0.0.7:51234"). */
export function peerHost(peer: string): string | undefined {
  const p = peer.replace(/^ipv[46]:/, "");
  const host = p.startsWith("[") ? p.slice(1, p.indexOf("]")) : p.slice(0, p.lastIndexOf(":"));
  return isIP(host) ? host : undefined;
}

/**
 * Where a proxy's stats are read: the scrape port its bootstrap announces (node metadata
 * WEFT_STATS_PORT), on the address its xDS stream comes from — a proxy can point the console
 * only at its own address. Proxies without the metadata are not scraped.
 */
export function scrapeTargetOf(p: Pick<ProxyStatus, "nodeId" | "peer" | "metadata">): ScrapeTarget | undefined {
  const raw = p.metadata[STATS_PORT_METADATA];
  const port = typeof raw === "string" && /^[0-9]{1,5}$/.test(raw) ? Number(raw) : NaN;
  const host = peerHost(p.peer);
  if (!host || !(port >= 1 && port <= 65535)) return undefined;
  return { key: p.nodeId, host, port };
}

export interface MeshConsoleOptions {
  proxies: ProxyRegistry;
  cache: SnapshotSource;
  model?: () => MeshModel | undefined;
  certificateOf?: (snapshotKey: string) => { identity: string; serial: string; notAfter: string } | undefined;
  roots?: () => { subject: string; serial: string; notAfter: string }[] | undefined;
  configProblems?: () => ConfigProblemsReport;
  /** Scraper settings (tests shorten the window). */
  scraper?: ProxyStatsScraper;
  /** Edges from this Prometheus (Istio's series from the recording rules) instead of the proxies. */
  prometheus?: PrometheusEdgeSource;
  /** The built page (default: consoleAssetsDir()). */
  assetsDir?: string;
}

/** At most this many proxies are listed (and scraped) per answer. */
export const MAX_CONSOLE_PROXIES = 500;

export function registerMeshConsole(app: FastifyInstance, opts: MeshConsoleOptions): void {
  const assets = loadAssets(opts.assetsDir ?? consoleAssetsDir());
  const scraper = opts.scraper ?? new ProxyStatsScraper();

  const state = async (): Promise<ConsoleState> => {
    const connected = opts.proxies.list().slice(0, MAX_CONSOLE_PROXIES);
    // One stream per node id (a reconnecting proxy can briefly have two): the newest.
    const byNode = new Map<string, ProxyStatus>();
    for (const p of connected) if (!byNode.has(p.nodeId) || byNode.get(p.nodeId)!.streamId < p.streamId) byNode.set(p.nodeId, p);
    const list = [...byNode.values()];
    // Prometheus when configured; the proxies' own stats when it is not, or does not answer.
    let fromPrometheus: WorkloadTraffic[] | undefined;
    let prometheusError: string | undefined;
    if (opts.prometheus) {
      try {
        fromPrometheus = await opts.prometheus.workloadTraffic();
      } catch (err) {
        prometheusError = `${opts.prometheus.baseUrl}: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}`.slice(0, 300);
      }
    }
    if (!fromPrometheus) await scraper.refresh(list.flatMap((p) => scrapeTargetOf(p) ?? []));
    const proxies: GraphProxy[] = list.map((p) => {
      const status = clientStatusOf(p, opts.cache);
      const certificate = opts.certificateOf?.(p.snapshotKey);
      const traffic = fromPrometheus ? undefined : scraper.trafficOf(p.nodeId);
      return {
        status: p,
        types: status.types.map((t) => ({ type: t.type, state: t.state, ...(t.nack ? { nack: t.nack } : {}) })),
        ...(certificate ? { certificate } : {}),
        ...(traffic ? { stats: { url: traffic.url, ...(traffic.error ? { error: traffic.error } : {}), ...(traffic.scrapedAt ? { scrapedAt: traffic.scrapedAt } : {}) } } : {}),
        ...(traffic?.traffic ? { traffic: traffic.traffic } : {}),
      };
    });
    const roots = opts.roots?.();
    const scraped = proxies.some((p) => p.stats);
    const notes = [
      ...(prometheusError ? [`Prometheus did not answer (${prometheusError}); edges from the proxies' own stats`] : []),
      ...(!fromPrometheus && !scraped ? [`no proxy announces a scrape listener (node metadata ${STATS_PORT_METADATA}; Weft's bootstraps with a fixed admin port have one)`] : []),
    ];
    return buildConsoleState({
      now: new Date(),
      model: opts.model?.(),
      proxies,
      ...(roots ? { roots } : {}),
      ...(fromPrometheus ? { workloadTraffic: fromPrometheus } : {}),
      problems: opts.configProblems?.() ?? { generation: 0, errors: 0, warnings: 0, problems: [], omitted: 0 },
      metrics: {
        source: fromPrometheus ? "prometheus" : scraped ? "envoy" : "none",
        windowSeconds: fromPrometheus ? opts.prometheus!.windowSeconds : scraper.windowMs / 1000,
        ...(notes.length ? { note: notes.join("; ") } : {}),
      },
    });
  };

  app.get("/ui/api/mesh", async (_req, reply) => {
    reply.header("cache-control", "no-store");
    return state();
  });

  const serve = (name: string, reply: FastifyReply) => {
    if (!assets) {
      reply.code(503).type("text/plain; charset=utf-8");
      return "The mesh console is not built: run `npm run build` (it bundles ui/ into dist/console/). Its data is at /ui/api/mesh.\n";
    }
    const body = assets.get(name);
    if (!body) {
      reply.code(404).type("text/plain; charset=utf-8");
      return `no such console file: ${name.slice(0, 100)}\n`;
    }
    reply.type(ASSETS[name]!).header("cache-control", "no-cache");
    return body;
  };
  app.get("/ui", async (_req, reply) => reply.redirect("/ui/"));
  app.get("/ui/", async (_req, reply) => serve("index.html", reply));
  app.get<{ Params: { file: string } }>("/ui/:file", async (req, reply) => serve(req.params.file, reply));
}
