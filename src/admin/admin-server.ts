// Admin HTTP endpoints (fastify): Prometheus metrics, health, readiness, and sync status of
// every connected proxy (per type: sent version, ACKed version, last NACK with Envoy's text).
import Fastify, { type FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { PUSH_ORDER, TYPE_SHORT_NAMES } from "../envoy/type-urls.js";
import type { SnapshotCache } from "../cache/snapshot-cache.js";
import type { ProxyRegistry } from "../xds/proxy-registry.js";

export interface AdminServerOptions {
  metricsRegistry: Registry;
  proxies: ProxyRegistry;
  cache: SnapshotCache;
  /** Readiness: the xDS server listens and the first configuration is loaded. */
  isReady: () => { ready: boolean; reason?: string };
  /** The workload certificate a proxy holds, by snapshot key (when security is on). */
  certificateOf?: (snapshotKey: string) => { identity: string; serial: string; notAfter: string } | undefined;
  /** The CA's roots and rotation (when security is on); looked up per request. */
  rootRotation?: () => RootRotationAdmin | undefined;
}

/** What the admin API needs of the root rotation: its status, and starting one (leader only). */
export interface RootRotationAdmin {
  status(): object;
  /** code: 202 started, 200 already in progress, 409 this replica is not the leader, 500 failed. */
  request(): Promise<{ code: number; body: object }>;
}

export function buildAdminServer(opts: AdminServerOptions): FastifyInstance {
  const app = Fastify({ logger: false });

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

  /** Starts a root rotation now (weft ca rotate-root). Only the leader does; others answer 409 naming it. */
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

  return app;
}
