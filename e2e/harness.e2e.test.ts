// Proves the Envoy process harness with a REAL Envoy and no control plane: a static
// bootstrap proxies to a node:http upstream; the admin helpers see it; stop() leaves
// nothing behind. Also: rendered ADS bootstraps pass `envoy --mode validate`, and
// findEnvoyBinary honors ENVOY_BIN.

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderBootstrap, type BootstrapOptions } from "../src/envoy/bootstrap.js";
import { dumpedResources, startEnvoy, stopAllEnvoys } from "../src/envoy/envoy-process.js";
import { findEnvoyBinary } from "../src/envoy/find-envoy.js";
import { httpGet, requestLoop } from "./harness/http.js";
import { startUpstream, type Upstream, type UpstreamEcho } from "./harness/upstream.js";
import { freePort } from "../src/runner/free-port.js";

/** A port that was free a moment ago (bind 0, read it, close). */

/** Listener `ingress` on listenerPort routing everything to static cluster `backend`. */
function staticBootstrap(listenerPort: number, upstreamPort: number): string {
  return `
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:
  - name: ingress
    address: { socket_address: { address: 127.0.0.1, port_value: ${listenerPort} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            name: local
            virtual_hosts:
            - { name: all, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: backend } }] }
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${upstreamPort} } } }
`;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

afterAll(stopAllEnvoys);

describe("Envoy harness with a static bootstrap", () => {
  let upstream: Upstream;
  beforeAll(async () => {
    upstream = await startUpstream("backend-1");
  });
  afterAll(() => upstream?.close());

  it("proxies HTTP to the upstream, exposes admin data, and stop() leaves no process", async () => {
    const listenerPort = await freePort();
    const t0 = performance.now();
    const envoy = await startEnvoy({ name: "static", bootstrapYaml: staticBootstrap(listenerPort, upstream.port) });
    const startupMs = performance.now() - t0;
    console.log(`envoy LIVE after ${startupMs.toFixed(0)} ms (pid ${envoy.pid}, admin ${envoy.adminUrl})`);
    expect(envoy.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(isRunning(envoy.pid)).toBe(true);

    // Traffic through Envoy reaches the upstream.
    const res = await httpGet(`http://127.0.0.1:${listenerPort}/hello?x=1`, { headers: { "x-test": "yes" } });
    expect(res.status).toBe(200);
    expect(res.headers["x-upstream"]).toBe("backend-1");
    const echo = JSON.parse(res.body) as UpstreamEcho;
    expect(echo).toMatchObject({ upstream: "backend-1", path: "/hello?x=1", method: "GET" });
    expect(echo.headers["x-test"]).toBe("yes");
    expect(echo.headers["x-envoy-expected-rq-timeout-ms"]).toBeDefined(); // it really went through Envoy

    const loop = await requestLoop({ url: `http://127.0.0.1:${listenerPort}/`, count: 10, intervalMs: 5 });
    expect(loop).toMatchObject({ sent: 10, errors: 0, statuses: { 200: 10 }, byHeader: { "backend-1": 10 } });
    expect(upstream.requests).toBe(11);

    // config_dump lists the listener and the cluster.
    const dump = await envoy.configDump();
    expect(dumpedResources(dump, "listeners").map((l) => [l.name, l.state])).toEqual([["ingress", "static"]]);
    expect(dumpedResources(dump, "clusters").map((c) => c.name)).toEqual(["backend"]);
    expect(await envoy.listeners()).toEqual([{ name: "ingress", address: `127.0.0.1:${listenerPort}` }]);

    // /clusters shows the upstream host, healthy, with the requests we sent.
    expect(await envoy.clusters()).toContain(`backend::127.0.0.1:${upstream.port}::health_flags::healthy`);
    const hosts = (await envoy.clusterHosts()).get("backend");
    expect(hosts).toHaveLength(1);
    expect(hosts?.[0]).toMatchObject({ address: `127.0.0.1:${upstream.port}`, healthy: true, healthFlags: [], weight: 1 });
    expect(hosts?.[0]?.stats.rq_success).toBe(11);

    // Stats and server info.
    const stats = await envoy.stats("^server\\.live$");
    expect(stats.get("server.live")).toBe(1);
    expect(stats.size).toBe(1);
    const rq200 = await envoy.waitFor(
      async () => (await envoy.stats("cluster\\.backend\\.upstream_rq_200")).get("cluster.backend.upstream_rq_200"),
      { what: "upstream_rq_200 counter", timeoutMs: 5000 },
    );
    expect(rq200).toBe(11);
    const info = await envoy.serverInfo();
    expect(info.state).toBe("LIVE");
    expect(info.version).toMatch(/\/1\.\d+\.\d+\//);

    // waitFor times out with a message naming what it waited for, plus the log tail.
    await expect(envoy.waitFor(() => false, { what: "something impossible", timeoutMs: 200, intervalMs: 50 }))
      .rejects.toThrow(/timed out after 200 ms waiting for something impossible[\s\S]*Last lines of Envoy's log/);

    // stop(): the process is gone and so is its temp dir.
    expect(existsSync(envoy.logPath)).toBe(true);
    const t1 = performance.now();
    await envoy.stop();
    console.log(`envoy stopped in ${(performance.now() - t1).toFixed(0)} ms`);
    expect(isRunning(envoy.pid)).toBe(false);
    expect(existsSync(envoy.workDir)).toBe(false);
    await envoy.stop(); // idempotent
    await expect(httpGet(`http://127.0.0.1:${listenerPort}/`, { timeoutMs: 1000 })).rejects.toThrow();
  });

  it("runs several Envoys at once (admin port 0, no hot-restart base id clash)", async () => {
    const envoys = await Promise.all([1, 2, 3].map(async (i) =>
      startEnvoy({ name: `parallel-${i}`, bootstrapYaml: staticBootstrap(await freePort(), upstream.port) })));
    expect(new Set(envoys.map((e) => e.adminUrl)).size).toBe(3);
    for (const envoy of envoys) expect((await envoy.serverInfo()).state).toBe("LIVE");
    await stopAllEnvoys();
    for (const envoy of envoys) expect(isRunning(envoy.pid)).toBe(false);
  });

  it("rejects with Envoy's own error when the bootstrap is bad", async () => {
    const bad = staticBootstrap(await freePort(), upstream.port).replace("type: STATIC", "type: NOT_A_TYPE");
    await expect(startEnvoy({ name: "bad", bootstrapYaml: bad }))
      .rejects.toThrow(/envoy "bad" exited during startup[\s\S]*NOT_A_TYPE/);
  });
});

describe("renderBootstrap", () => {
  const options: BootstrapOptions = { nodeId: "sidecar~10.1.2.3~web-0.default~default.svc.cluster.local", cluster: "web",
    metadata: { NAMESPACE: "default", 'odd "key"': "value: with {yaml} [chars]" }, xdsAddress: "127.0.0.1", xdsPort: 15010 };

  it.each<[string, BootstrapOptions]>([
    ["state of the world, IP control plane", { ...options }],
    ["delta, DNS control plane", { ...options, deltaXds: true, xdsAddress: "localhost" }],
    ["two control-plane replicas", { ...options, xdsReplicas: [{ address: "127.0.0.2", port: 15011 }] }],
    ["pod: admin on the pod IP, Prometheus scrape listener on 15090", { ...options, adminAddress: "10.1.2.3", adminPort: 15000 }],
    ["Envoy's default stat tags only", { ...options, adminPort: 15000, statsPort: 15091, meshStatsTags: false }],
  ])("passes envoy --mode validate (%s)", async (_label, opts) => {
    const yaml = renderBootstrap(opts);
    expect(yaml).toContain(opts.deltaXds ? "api_type: DELTA_GRPC" : "api_type: GRPC");
    expect(yaml).not.toMatch(/\{\{/);
    const dir = await mkdtemp(path.join(os.tmpdir(), "weft-validate-"));
    try {
      const file = path.join(dir, "bootstrap.yaml");
      await writeFile(file, yaml);
      const binary = await findEnvoyBinary();
      const out = await new Promise<string>((resolve, reject) =>
        execFile(binary, ["--mode", "validate", "--config-path", file, "--disable-hot-restart", "-l", "warn"],
          (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))));
      expect(out).toContain("OK");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("names the bad field", () => {
    expect(() => renderBootstrap({ ...options, xdsPort: 0 })).toThrow(/xdsPort must be an integer port/);
    expect(() => renderBootstrap({ ...options, nodeId: "" })).toThrow(/nodeId must be a non-empty string/);
    expect(() => renderBootstrap({ ...options, xdsAddress: "not a host" })).toThrow(/xdsAddress/);
    expect(() => renderBootstrap({ ...options, adminAddress: "localhost" })).toThrow(/adminAddress must be an IP/);
    expect(() => renderBootstrap({ ...options, xdsReplicas: [{ address: "weft-b.local", port: 15010 }] })).toThrow(/xdsReplicas\[0\]\.address must be an IP address \(xdsAddress is one\)/);
    expect(() => renderBootstrap({ ...options, xdsReplicas: [{ address: "127.0.0.2", port: 0 }] })).toThrow(/xdsReplicas\[0\]\.port must be an integer port/);
  });
});

describe("findEnvoyBinary", () => {
  const saved = process.env.ENVOY_BIN;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "weft-find-envoy-"));
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.ENVOY_BIN;
    else process.env.ENVOY_BIN = saved;
    await rm(dir, { recursive: true, force: true });
  });

  it("honors ENVOY_BIN", async () => {
    delete process.env.ENVOY_BIN;
    const discovered = await findEnvoyBinary({ install: false });
    const link = path.join(dir, "my-envoy");
    await symlink(discovered, link);
    process.env.ENVOY_BIN = link;
    expect(await findEnvoyBinary({ install: false })).toBe(link);
  });

  it("fails clearly for a bad ENVOY_BIN", async () => {
    process.env.ENVOY_BIN = path.join(dir, "missing-envoy");
    await expect(findEnvoyBinary()).rejects.toThrow(/ENVOY_BIN is set to ".*missing-envoy", but no file exists there/);
    const notExecutable = path.join(dir, "not-executable");
    await writeFile(notExecutable, "#!/bin/sh\n");
    await chmod(notExecutable, 0o644);
    process.env.ENVOY_BIN = notExecutable;
    await expect(findEnvoyBinary()).rejects.toThrow(/ENVOY_BIN .* not executable/);
  });
});
