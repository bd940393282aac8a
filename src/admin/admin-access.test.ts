// The admin server's privileged routes answer only loopback peers: a client that reaches the
// pod IP (probes, Prometheus, anyone else in the cluster) gets /metrics, /healthz, /readyz and
// nothing else. Real sockets: the server listens on a non-loopback address of this machine.
import { networkInterfaces } from "node:os";
import { afterEach, describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import type { FastifyInstance } from "fastify";
import { buildAdminServer, adminRequestAllowed } from "./admin-server.js";
import { SnapshotCache } from "../cache/snapshot-cache.js";
import { XdsServer } from "../xds/xds-server.js";
import { XdsMetrics } from "../xds/xds-metrics.js";
import { silentLogger } from "../log/logger.js";

/** The first non-internal IPv4 address of this machine (the test connects from and to it). */
const externalIpv4 = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === "IPv4" && !a.internal)?.address;

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function start(host: string, openDebug?: boolean): Promise<{ base: string; rotations: () => number }> {
  let rotations = 0;
  const metricsRegistry = new Registry();
  const cache = new SnapshotCache();
  const xds = new XdsServer({ source: cache, metrics: new XdsMetrics(metricsRegistry), logger: silentLogger() });
  app = buildAdminServer({
    metricsRegistry,
    proxies: xds.registry,
    cache,
    isReady: () => ({ ready: true }),
    rootRotation: () => ({
      status: () => ({ roots: [] }),
      request: async () => {
        rotations++;
        return { code: 202, body: { started: true } };
      },
    }),
    ...(openDebug === undefined ? {} : { openDebug }),
  });
  await app.listen({ host, port: 0 });
  const address = app.server.address();
  if (typeof address !== "object" || !address) throw new Error("admin server has no address");
  return { base: `http://${host}:${address.port}`, rotations: () => rotations };
}

const call = async (url: string, method = "GET") => {
  const res = await fetch(url, { method, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
};

describe("admin access: privileged routes are loopback-only", () => {
  it.skipIf(externalIpv4 === undefined)(`a non-loopback peer (${externalIpv4 ?? "none on this machine"}) gets 403 on POST /ca/rotate-root and /debug/*, 200 on /metrics and /healthz`, async () => {
    const { base, rotations } = await start(externalIpv4!);
    const rotate = await call(`${base}/ca/rotate-root`, "POST");
    expect(rotate.status, rotate.body).toBe(403);
    expect(rotate.body).toMatch(/port-forward/);
    expect(rotate.body).toMatch(/--admin-open-debug/);
    expect(rotations()).toBe(0);
    for (const path of ["/debug/config_dump?proxy=x", "/debug/syncz", "/debug/ca", "/debug/snapshots", "/debug/config-problems", "/ui/", "/ui/api/mesh", "/no-such-route"]) {
      const res = await call(base + path);
      expect(res.status, `${path}: ${res.body}`).toBe(403);
    }
    // Public only for GET: a POST to /metrics is refused too.
    expect((await call(`${base}/metrics`, "POST")).status).toBe(403);
    const metrics = await call(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/weft_/);
    expect((await call(`${base}/healthz`)).status).toBe(200);
    expect((await call(`${base}/readyz`)).status).toBe(200);
  });

  it.skipIf(externalIpv4 === undefined)("--admin-open-debug serves the privileged routes to a non-loopback peer", async () => {
    const { base, rotations } = await start(externalIpv4!, true);
    expect((await call(`${base}/ca/rotate-root`, "POST")).status).toBe(202);
    expect(rotations()).toBe(1);
    expect((await call(`${base}/debug/syncz`)).status).toBe(200);
  });

  it("a loopback peer (kubectl exec / port-forward, weft ca / status / dashboard) reaches every route", async () => {
    const { base, rotations } = await start("127.0.0.1");
    expect((await call(`${base}/ca/rotate-root`, "POST")).status).toBe(202);
    expect(rotations()).toBe(1);
    expect((await call(`${base}/debug/syncz`)).status).toBe(200);
    expect((await call(`${base}/debug/config_dump?proxy=nope`)).status).toBe(404);
    expect((await call(`${base}/metrics`)).status).toBe(200);
  });

  it("classifies by the peer address: IPv6 and IPv4-mapped loopback allowed, others and unknown refused", () => {
    for (const peer of ["127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"]) expect(adminRequestAllowed("POST", "/ca/rotate-root", peer, false), peer).toBe(true);
    for (const peer of ["10.0.0.7", "::ffff:10.0.0.7", "fd00::2", "0.0.0.0", undefined]) expect(adminRequestAllowed("POST", "/ca/rotate-root", peer, false), String(peer)).toBe(false);
    expect(adminRequestAllowed("HEAD", "/healthz", "10.0.0.7", false)).toBe(true);
    expect(adminRequestAllowed("GET", "/metrics/../debug/syncz", "10.0.0.7", false)).toBe(false);
  });
});
