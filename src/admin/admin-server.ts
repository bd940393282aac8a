// Admin HTTP endpoints (fastify): Prometheus metrics, health, readiness, and sync status of
// every connected proxy (per type: sent version, ACKed version, last NACK with Envoy's text).
import Fastify, { type FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { PUSH_ORDER, TYPE_SHORT_NAMES } from "../envoy/type-urls.js";
import type { SnapshotCache } from "../cache/snapshot-cache.js";
import type { ProxyRegistry } from "../xds/proxy-registry.js";
import type { ConfigProblemsReport } from "../runner/config-problems.js";
import { clientStatusOf, findProxies } from "../xds/client-status.js";
import { resourceToJson } from "../envoy/readable-json.js";
import { XDS_CODECS, type XdsTypeUrl } from "../envoy/type-urls.js";
import type { MeshModel } from "../model/mesh-model.js";
import { registerMeshConsole } from "./mesh-console.js";
import type { PrometheusEdgeSource } from "./prometheus-edge-source.js";
import { isLoopbackAddress } from "../runner/bind-address.js";

export interface AdminServerOptions {
  metricsRegistry: Registry;
  proxies: ProxyRegistry;
  cache: SnapshotCache;
  /** Readiness: the xDS server listens and the first configuration is loaded. */
  isReady: () => { ready: boolean; reason?: string };
  /** The workload certificate a proxy holds, by snapshot key (when security is on). */
  certificateOf?: (snapshotKey: string) => { identity: string; serial: string; notAfter: string } | undefined;
  /** Validation problems of the config in force (/debug/config-problems). */
  configProblems?: () => ConfigProblemsReport;
  /** The CA's roots and rotation (when security is on); looked up per request. */
  rootRotation?: () => RootRotationAdmin | undefined;
  /** The mesh model in force (services and workloads of the console's graph). */
  meshModel?: () => MeshModel | undefined;
  /** The console's edges from Prometheus (--prometheus-url) instead of the proxies' own stats. */
  prometheus?: PrometheusEdgeSource;
  /**
   * Serve the privileged routes (everything but GET /metrics, /healthz, /readyz) to any peer,
   * not only loopback ones (--admin-open-debug). Off: a non-loopback peer gets 403.
   */
  openDebug?: boolean;
}

/** Routes any peer may call: what probes and Prometheus scrapers need (GET and HEAD only). */
export const PUBLIC_ADMIN_PATHS: ReadonlySet<string> = new Set(["/metrics", "/healthz", "/readyz"]);

/**
 * Whether a request may reach an admin route: the public ones from anywhere; every other route
 * (debug dumps, the console, POST /ca/rotate-root, unknown paths) only from a loopback peer
 * (the TCP peer address, never a header a client can write) unless openDebug.
 */
export function adminRequestAllowed(method: string, path: string, peerAddress: string | undefined, openDebug: boolean): boolean {
  if ((method === "GET" || method === "HEAD") && PUBLIC_ADMIN_PATHS.has(path)) return true;
  return openDebug || (peerAddress !== undefined && isLoopbackAddress(peerAddress));
}

/** What the admin API needs of the root rotation: its status, and starting one (leader only). */
export interface RootRotationAdmin {
  status(): object;
  /** code: 202 started (or, on a follower, requested from the leader), 200 already in progress, 409 not the leader and no shared store, 500 failed. */
  request(): Promise<{ code: number; body: object }>;
}

export function buildAdminServer(opts: AdminServerOptions): FastifyInstance {
  const app = Fastify({ logger: false });
  const openDebug = opts.openDebug ?? false;

  app.addHook("onRequest", async (req, reply) => {
    const path = req.url.split("?", 1)[0]!;
    if (adminRequestAllowed(req.method, path, req.socket.remoteAddress, openDebug)) return;
    return reply
      .code(403)
      .send({
        error: `${req.method} ${path.slice(0, 200)} is served only to loopback clients (this request came from ${req.socket.remoteAddress ?? "an unknown address"}); only GET /metrics, /healthz and /readyz are open to the network. Reach it from inside the pod, or through a port-forward: kubectl -n weft-system port-forward deploy/weft 15014, then http://127.0.0.1:15014${path.slice(0, 200)} (weft status / weft ca / the console /ui/ work the same way). Operators who want it open start weft serve with --admin-open-debug (WEFT_ADMIN_OPEN_DEBUG=true).`,
      });
  });

  app.get("/metrics", async (_req, reply) => {
    reply.header("content-type", opts.metricsRegistry.contentType);
    return opts.metricsRegistry.metrics();
  });

  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (_req, reply) => {
    const r = opts.isReady();
    reply.code(r.ready ? 200 : 503);
    return r.ready ? { status: "ready" } : { status: "not ready", reason: r.reason };
  });

  /** Every connected proxy and, per type, what it was sent, what it ACKed and its last NACK. */
  app.get<{ Querystring: { node?: string } }>("/debug/syncz", async (req) => {
    const list = req.query.node ? opts.proxies.byNode(req.query.node) : opts.proxies.list();
    const proxies = list.map((p) => {
      const certificate = opts.certificateOf?.(p.snapshotKey);
      return certificate ? { ...p, certificate } : p;
    });
    return { proxies, recentNacks: opts.proxies.recentNacks() };
  });

  /** The CA's trusted roots, the rotation phase, when the next rotation is due, who leads. */
  app.get("/debug/ca", async (_req, reply) => {
    const rotation = opts.rootRotation?.();
    if (!rotation) return reply.code(404).send({ error: "security is off: there is no CA (start weft serve with --security)" });
    return rotation.status();
  });

  /** Starts a root rotation now (weft ca rotate-root): the leader starts it; a follower asks the leader through the root Secret (202 requested). */
  app.post("/ca/rotate-root", async (_req, reply) => {
    const rotation = opts.rootRotation?.();
    if (!rotation) return reply.code(404).send({ error: "security is off: there is no CA to rotate (start weft serve with --security)" });
    const result = await rotation.request();
    return reply.code(result.code).send(result.body);
  });

  /** Snapshot keys with per-type versions and resource names. */
  app.get("/debug/snapshots", async () => {
    return {
      snapshots: opts.cache.keys().map((key) => {
        const snap = opts.cache.get(key)!;
        return {
          key,
          version: snap.version,
          types: Object.fromEntries(
            PUSH_ORDER.map((t) => {
              const r = snap.resources(t);
              return [TYPE_SHORT_NAMES[t], { version: r.version, names: [...r.resources.keys()] }];
            }),
          ),
        };
      }),
    };
  });

  /** Validation problems of the config in force: errors (the last valid version is kept) and warnings. */
  app.get("/debug/config-problems", async () => opts.configProblems?.() ?? { generation: 0, errors: 0, warnings: 0, problems: [], omitted: 0 });

  /**
   * What Weft sends a proxy (node id, or `name.namespace` / `name` of Istio-style ids), per
   * type: state (SYNCED, STALE, ERROR = NACKed, NOT_SENT), versions, the NACK, and every
   * resource as readable JSON (secrets' private keys redacted). `type` narrows to one type.
   */
  app.get<{ Querystring: { proxy?: string; type?: string } }>("/debug/config_dump", async (req, reply) => {
    const name = (req.query.proxy ?? "").slice(0, 1024);
    if (!name) {
      reply.code(400);
      return { error: "give the proxy: /debug/config_dump?proxy=<node id or name.namespace>" };
    }
    const found = findProxies(opts.proxies, name);
    if (found.length === 0) {
      reply.code(404);
      return { error: `no connected proxy matches "${name}"`, connected: opts.proxies.list().slice(0, 50).map((p) => p.nodeId) };
    }
    const nodes = new Set(found.map((p) => p.nodeId));
    if (nodes.size > 1) {
      reply.code(409);
      return { error: `"${name}" matches ${nodes.size} proxies; give one node id`, matches: [...nodes].slice(0, 50) };
    }
    return {
      proxies: found.map((p) => {
        const status = clientStatusOf(p, opts.cache);
        return {
          nodeId: p.nodeId,
          cluster: p.cluster,
          snapshotKey: p.snapshotKey,
          api: p.api,
          service: p.service,
          types: status.types
            .filter((t) => !req.query.type || t.type === req.query.type)
            .map(({ resources, typeUrl, ...t }) => ({
              ...t,
              typeUrl,
              resources: resources.map((r) => ({ name: r.name, version: r.version, config: resourceToJson(typeUrl as XdsTypeUrl, XDS_CODECS[typeUrl as XdsTypeUrl].decode(r.body) as never) })),
            })),
        };
      }),
    };
  });

  /** The mesh console: /ui (the page) and /ui/api/mesh (its data). */
  registerMeshConsole(app, {
    proxies: opts.proxies,
    cache: opts.cache,
    ...(opts.meshModel ? { model: opts.meshModel } : {}),
    ...(opts.certificateOf ? { certificateOf: opts.certificateOf } : {}),
    ...(opts.configProblems ? { configProblems: opts.configProblems } : {}),
    ...(opts.prometheus ? { prometheus: opts.prometheus } : {}),
    roots: () => rootsOf(opts.rootRotation?.()?.status()),
  });

  return app;
}

/** The trusted roots in a rotation status (RootRotationStatus.roots). */
function rootsOf(status: object | undefined): { subject: string; serial: string; notAfter: string }[] | undefined {
  const roots = (status as { roots?: unknown } | undefined)?.roots;
  if (!Array.isArray(roots)) return undefined;
  return roots.flatMap((r: { subject?: unknown; serial?: unknown; notAfter?: unknown }) =>
    typeof r?.serial === "string" && typeof r.notAfter === "string" ? [{ subject: String(r.subject ?? ""), serial: r.serial, notAfter: r.notAfter }] : [],
  );
}
