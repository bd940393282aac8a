// Istio's sidecar defaults, observed in traffic through real Envoy (issue 16): what an
// application moving from Istio relies on without writing any configuration for it.
// The first part runs the client sidecar in explicit mode on loopback (no pods, no root); the
// second runs sidecars in pods with transparent capture and mTLS (root + iptables; run the file
// under `flock /tmp/weft-pods.lock`).
import { connect, createServer as createNetServer } from "node:net";
import { createServer, request, type Server } from "node:http";
import { createServer as createHttp2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { execFileSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpGet } from "./harness/http.js";
import { TestMesh, type MeshProxy } from "./harness/mesh.js";
import { startUpstream, type Upstream } from "./harness/upstream.js";
import { freePort } from "../src/runner/free-port.js";
import { applyCapture, captureSupport } from "../src/capture/iptables.js";
import { bridgeAddress, createPod, type Pod } from "../src/capture/pod-network.js";
import { DEFAULT_PROXY_UID } from "../src/capture/sidecar.js";
import type { EnvoyProcess } from "../src/envoy/envoy-process.js";
import { silentLogger } from "../src/log/logger.js";
import { startMeshRunner, type MeshRunner } from "../src/runner/mesh-runner.js";
import { waitForAllSynced } from "../src/runner/wait-for-sync.js";
import { FileSource } from "../src/sources/file/file-source.js";
import { AGENT_PORT, fetchFromPod, startPodAgent } from "./harness/pod-agent.js";
import { startSecureSidecar } from "./harness/secure-sidecar.js";

/** A ServiceEntry `name` on port 9080 with these endpoints (loopback ports), labelled by version. */
function service(name: string, endpoints: { port: number; version: string }[]): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name} }
spec:
  hosts: [${name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  endpoints:
${endpoints.map((e) => `  - { address: 127.0.0.1, ports: { http: ${e.port} }, labels: { version: ${e.version} } }`).join("\n")}
---`;
}

/** Every object in a /config_dump (its JSON) that `wanted` picks, wherever it sits. */
function objectsIn(dump: unknown, wanted: (o: Record<string, unknown>) => boolean): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      if (wanted(o)) out.push(o);
      Object.values(o).forEach(walk);
    }
  };
  walk(dump);
  return out;
}

/** Every HTTP connection manager in a /config_dump. */
const connectionManagers = (dump: unknown) => objectsIn(dump, (o) => typeof o["@type"] === "string" && o["@type"].endsWith(".HttpConnectionManager"));

/** Every config source in a /config_dump (ads or api_config_source: where Envoy fetches LDS, CDS, RDS, EDS, SDS from). */
const configSources = (dump: unknown) => objectsIn(dump, (o) => "ads" in o || "api_config_source" in o);

describe("Istio's sidecar defaults with real Envoy (explicit mode)", () => {
  let mesh: TestMesh;
  let client: MeshProxy;
  let port: number;
  const ups: Upstream[] = [];
  const servers: Server[] = [];

  const up = async (name: string) => {
    const u = await startUpstream(name);
    ups.push(u);
    return u;
  };
  const get = (path: string, host: string, headers: Record<string, string> = {}, timeoutMs = 5000) =>
    httpGet(`http://127.0.0.1:${port}${path}`, { headers: { host, ...headers }, timeoutMs });

  beforeAll(async () => {
    mesh = await TestMesh.start();
    port = await freePort();
    client = await mesh.startProxy({ name: "productpage-defaults", labels: { app: "productpage" }, capture: "explicit", explicitPort: port });
  });

  afterAll(async () => {
    await mesh?.close();
    await Promise.all(ups.map((u) => u.close()));
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  });

  it("item 1: a WebSocket upgrade succeeds (Istio allows the websocket upgrade)", async () => {
    const ws = createServer((_req, res) => res.end("plain"));
    servers.push(ws);
    ws.on("upgrade", (_req, socket) => {
      socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
      socket.on("data", (d: Buffer) => socket.write(Buffer.concat([Buffer.from("echo:"), d])));
    });
    await new Promise<void>((resolve) => ws.listen(0, "127.0.0.1", resolve));
    await mesh.apply(service("chat", [{ port: (ws.address() as AddressInfo).port, version: "v1" }]));
    const head = "GET /socket HTTP/1.1\r\nHost: chat:9080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    const socket = connect(port, "127.0.0.1");
    let data = "";
    socket.on("data", (d: Buffer) => {
      data += d.toString("latin1");
      if (data.includes("\r\n\r\n") && !data.includes("echo:")) socket.write("hello-frame");
    });
    socket.write(head);
    for (let i = 0; i < 50 && !data.includes("echo:hello-frame"); i++) await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    expect(data.split("\r\n")[0]).toBe("HTTP/1.1 101 Switching Protocols");
    expect(data).toContain("echo:hello-frame");
  });

  it("item 3: an app's 503 reaches the caller once (no default retry on 503) and the app sees x-envoy-attempt-count", async () => {
    const u = await up("flaky-503");
    await mesh.apply(service("flaky", [{ port: u.port, version: "v1" }]));
    const before = u.requests;
    const res = await get("/?status=503", "flaky:9080");
    expect(res.status).toBe(503);
    expect(u.requests - before).toBe(1);
    // A POST's 503 too (Weft used to retry 503s, POSTs included).
    const posted = await new Promise<number>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, method: "POST", path: "/?status=503", agent: false, headers: { host: "flaky:9080", "content-type": "text/plain" } }, (r) => {
        r.resume();
        r.on("end", () => resolve(r.statusCode ?? 0));
      });
      req.on("error", reject);
      req.setTimeout(5000, () => req.destroy(new Error("POST timed out")));
      req.end("order=1");
    });
    expect(posted).toBe(503);
    expect(u.requests - before).toBe(2);
    const ok = await get("/", "flaky:9080");
    expect((JSON.parse(ok.body) as { headers: Record<string, string> }).headers["x-envoy-attempt-count"]).toBe("1");
  });

  it("item 3: a retry after a failed connection goes to the other endpoint (previous_hosts), even with RANDOM balancing", async () => {
    const good = await up("retry-good");
    const deadPort = await freePort(); // nothing listens: connect-failure
    await mesh.apply(`${service("retrying", [{ port: good.port, version: "v1" }, { port: deadPort, version: "v2" }])}
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: retrying }
spec:
  host: retrying
  trafficPolicy: { loadBalancer: { simple: RANDOM } }
`);
    // 40 requests. About half first try the dead endpoint; a retry then picks the dead one
    // again with probability 1/2 without previous_hosts, 1/64 with it (Istio's 5 reselections).
    // "Second attempt dead" shows as attempt count 3 or a failed request. Without the
    // predicate ~10 of 20 expected: P(<= 3) = 0.13 %; with it ~0.3 expected: P(> 3) < 0.03 %.
    const attempts: string[] = [];
    let failed = 0;
    for (let i = 0; i < 40; i++) {
      const res = await get("/", "retrying:9080");
      if (res.status === 200) attempts.push((JSON.parse(res.body) as { headers: Record<string, string> }).headers["x-envoy-attempt-count"] ?? "");
      else failed++;
    }
    const firstDead = attempts.filter((a) => a !== "1").length + failed;
    const secondDead = attempts.filter((a) => a === "3").length + failed;
    expect({ firstDead: firstDead > 5, secondDeadAtMost3: secondDead <= 3 }, `attempt counts ${attempts.join(",")}, ${failed} failed`).toEqual({ firstDead: true, secondDeadAtMost3: true });
    expect(attempts.every((a) => ["1", "2", "3"].includes(a))).toBe(true);
  });

  it("item 4: a trailing-dot FQDN in Host follows the VirtualService", async () => {
    const [v1, v2] = [await up("fqdn-v1"), await up("fqdn-v2")];
    await mesh.apply(`${service("details", [{ port: v1.port, version: "v1" }, { port: v2.port, version: "v2" }])}
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: details }
spec:
  host: details
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: details }
spec:
  hosts: [details]
  http:
  - route: [{ destination: { host: details, subset: v2 } }]
`);
    for (const host of ["details.default.svc.cluster.local.", "details.default.svc.cluster.local.:9080", "details:9080"]) {
      const res = await get("/", host);
      expect({ host, status: res.status, upstream: res.headers["x-upstream"] }).toEqual({ host, status: 200, upstream: "fqdn-v2" });
    }
  });

  it("item 5: Expect: 100-continue reaches the app", async () => {
    const u = await up("continue");
    await mesh.apply(service("uploads", [{ port: u.port, version: "v1" }]));
    const echo = await new Promise<{ status: number; expect?: string; gotContinue: boolean }>((resolve, reject) => {
      let gotContinue = false;
      const req = request({ host: "127.0.0.1", port, method: "POST", path: "/upload", agent: false, headers: { host: "uploads:9080", expect: "100-continue", "content-length": "5" } }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, expect: (JSON.parse(body) as { headers: Record<string, string> }).headers.expect, gotContinue }));
      });
      req.on("continue", () => {
        gotContinue = true;
        req.end("hello");
      });
      req.on("error", reject);
      req.setTimeout(5000, () => req.destroy(new Error("100-continue request timed out")));
    });
    expect(echo).toEqual({ status: 200, expect: "100-continue", gotContinue: true });
  });

  it("item 10: a grpc-timeout header is enforced", async () => {
    const u = await up("grpc-slow");
    await mesh.apply(service("slowgrpc", [{ port: u.port, version: "v1" }]));
    const t0 = Date.now();
    const res = await get("/pkg.Service/Method?delay=3000", "slowgrpc:9080", { "content-type": "application/grpc", "grpc-timeout": "300m", te: "trailers" }, 6000);
    const took = Date.now() - t0;
    expect(took).toBeLessThan(1500);
    // The caller gets Envoy's gRPC error (a 504 turned into a grpc-status), not the app's late answer.
    expect(res.headers["x-upstream"]).toBeUndefined();
    expect({ status: res.status, grpcStatus: res.headers["grpc-status"], message: res.headers["grpc-message"] }).toEqual({ status: 200, grpcStatus: "14", message: "upstream request timeout" });
  });

  it("item 2: with every endpoint ejected, the caller gets 503 'no healthy upstream' at once, not the ejected hosts", async () => {
    const [a, b] = [await up("eject-a"), await up("eject-b")];
    a.behavior = { status: 500 };
    b.behavior = { status: 500 };
    await mesh.apply(`${service("fragile", [{ port: a.port, version: "v1" }, { port: b.port, version: "v2" }])}
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: fragile }
spec:
  host: fragile
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 100 }
`);
    // Until each host has failed once (an ejection reaches the workers' load balancers a little
    // after the failure, so one host may get two requests before the other gets one).
    for (let i = 0; i < 40 && (a.requests === 0 || b.requests === 0); i++) {
      await get("/", "fragile:9080");
      if (i >= 2) await new Promise((r) => setTimeout(r, 100));
    }
    expect({ a: a.requests > 0, b: b.requests > 0 }).toEqual({ a: true, b: true });
    // Ejections are decided on Envoy's main thread after the workers report the failure: poll.
    const ejections = async () =>
      [...(await client.envoy.stats("outlier_detection.ejections_enforced_total")).entries()].filter(([k]) => k.includes("fragile")).reduce((s, [, v]) => s + v, 0);
    let count = await ejections();
    for (let i = 0; i < 50 && count < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      count = await ejections();
    }
    expect(count).toBe(2);
    // Measured with Envoy 1.40: the second ejection reaches the workers' load balancers only at
    // the next outlier-detection interval (1 s here); wait it out.
    await new Promise((r) => setTimeout(r, 1500));
    const served = a.requests + b.requests;
    const t0 = Date.now();
    const res = await get("/", "fragile:9080");
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(res.status).toBe(503);
    expect(res.body).toContain("no healthy upstream");
    expect(a.requests + b.requests).toBe(served);
  });

  it("item 9: LEAST_REQUEST by default: a slow endpoint gets fewer requests than a fast one", async () => {
    const [slow, fast] = [await up("lr-slow"), await up("lr-fast")];
    slow.behavior = { delayMs: 1500 };
    await mesh.apply(service("spread", [{ port: slow.port, version: "v1" }, { port: fast.port, version: "v2" }]));
    // 160 requests from 8 concurrent callers. Round robin gives each endpoint half. Least
    // request (two random choices, the less busy wins) sends the slow one about a quarter: it
    // wins only when both choices fall on it, as it nearly always has more requests in flight.
    // The slow endpoint is 1.5 s slow so that stays true on a loaded machine where the "fast"
    // one takes 100-300 ms (with 300 ms the share reached 0.41 here at load ~15). Seen 0.225
    // and 0.325 (load 15-17), sd ~0.035. Round robin alternates on each worker: 0.5 within
    // 2/160, so the bound 0.45 still fails it for certain while leaving least request room.
    const total = 160;
    let next = 0;
    const counts: Record<string, number> = {};
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < total) {
          next++;
          const res = await get("/", "spread:9080", {}, 10_000);
          const who = String(res.headers["x-upstream"]);
          counts[who] = (counts[who] ?? 0) + 1;
        }
      }),
    );
    expect((counts["lr-slow"] ?? 0) + (counts["lr-fast"] ?? 0)).toBe(total);
    process.stderr.write(`least request: ${JSON.stringify(counts)}\n`);
    expect(counts["lr-slow"]! / total, JSON.stringify(counts)).toBeLessThan(0.45);
  });

  it("item 7: no stream idle timeout (Envoy's effective config from /config_dump)", async () => {
    const managers = connectionManagers(JSON.parse((await client.envoy.adminRequest("/config_dump?resource=dynamic_listeners")).body));
    expect(managers.length).toBeGreaterThan(0);
    // Every connection manager says 0s: one without the field would get Envoy's 5 minutes.
    expect(managers.filter((m) => m.stream_idle_timeout !== "0s").map((m) => m.stat_prefix)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------
// In pods (transparent capture, mTLS from Weft's CA): inbound, limits, sniffing, mTLS wire
// details. Needs root + iptables; run under `flock /tmp/weft-pods.lock`.

const support = await captureSupport();

/** An HTTP echo app inside a pod: answers with its peer address and the request headers. */
function echoApp(host: string, port: number, delayMs = 0): string[] {
  return [process.execPath, "-e", `
    require("node:http").createServer((req, res) => {
      req.resume();
      const q = new URL(req.url, "http://x").searchParams;
      setTimeout(() => {
        res.writeHead(200, { "content-type": "application/json", "x-upstream": "server" });
        res.end(JSON.stringify({ peer: req.socket.remoteAddress, headers: req.headers, version: req.httpVersion }));
      }, Number(q.get("delay") ?? ${delayMs}));
    }).listen(${port}, ${JSON.stringify(host)}, () => console.log("listening"));`];
}

interface ClientHello {
  sni?: string;
  alpn: string[];
  /** Offered cipher suites (IANA numbers), GREASE values left out. */
  ciphers: number[];
}

/** Parses a TLS ClientHello (first record) for SNI, ALPN and cipher suites; undefined when it is not one. */
function parseClientHello(buf: Buffer): ClientHello | undefined {
  if (buf.length < 44 || buf[0] !== 0x16 || buf[5] !== 0x01) return undefined;
  let i = 9 + 2 + 32; // record header 5 + handshake header 4, version, random
  i += 1 + buf[i]!; // session id
  const ciphers: number[] = [];
  const ciphersEnd = i + 2 + buf.readUInt16BE(i);
  for (let j = i + 2; j + 2 <= ciphersEnd; j += 2) if ((buf.readUInt16BE(j) & 0x0f0f) !== 0x0a0a) ciphers.push(buf.readUInt16BE(j));
  i = ciphersEnd;
  i += 1 + buf[i]!; // compression methods
  const end = i + 2 + buf.readUInt16BE(i);
  i += 2;
  const out: ClientHello = { alpn: [], ciphers };
  while (i + 4 <= end && i + 4 <= buf.length) {
    const type = buf.readUInt16BE(i);
    const len = buf.readUInt16BE(i + 2);
    const body = buf.subarray(i + 4, i + 4 + len);
    if (type === 0) out.sni = body.subarray(5, 5 + body.readUInt16BE(3)).toString();
    if (type === 16) for (let j = 2; j < body.length; j += 1 + body[j]!) out.alpn.push(body.subarray(j + 1, j + 1 + body[j]!).toString());
    i += 4 + len;
  }
  return out;
}

/** Istio's mesh TLS 1.2 cipher suites, by IANA number (hex): ECDHE-ECDSA/RSA-AES256/128-GCM and AES256/128-GCM. */
const ISTIO_TLS12_CIPHERS: Record<string, string> = {
  c02c: "ECDHE-ECDSA-AES256-GCM-SHA384",
  c030: "ECDHE-RSA-AES256-GCM-SHA384",
  c02b: "ECDHE-ECDSA-AES128-GCM-SHA256",
  c02f: "ECDHE-RSA-AES128-GCM-SHA256",
  "9d": "AES256-GCM-SHA384",
  "9c": "AES128-GCM-SHA256",
};

describe.skipIf(!support.transparent)(`Istio's sidecar defaults with real Envoy in pods${support.transparent ? "" : ` (skipped: ${support.reason})`}`, () => {
  let stateDir: string;
  let configDir: string;
  let runner: MeshRunner;
  let server: Pod;
  let client: Pod;
  const envoys: EnvoyProcess[] = [];
  const apps: ChildProcess[] = [];
  const hostServers: { close: () => void }[] = [];
  const hello: ClientHello[] = [];
  let forwarderPort = 0;
  let rawPort = 0;
  let h2Port = 0;

  async function sidecar(pod: Pod, name: string, token: string): Promise<EnvoyProcess> {
    const envoy = await startSecureSidecar(runner, pod, name, { token });
    envoys.push(envoy);
    return envoy;
  }

  const untilListening = (child: ChildProcess) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("app did not start")), 10_000);
      child.stdout!.on("data", (d: Buffer) => {
        if (d.toString().includes("listening")) {
          clearTimeout(timer);
          resolve();
        }
      });
    });

  const fromClient = (host: string, port: number, path: string, headers: Record<string, string> = {}) => fetchFromPod(client, { host, port, path, headers, timeoutMs: 8000 });

  /** Runs a node script inside the client pod; resolves with its stdout. */
  async function inClient(script: string): Promise<string> {
    const r = await client.run([process.execPath, "-e", script], { cwd: "/", timeoutMs: 15_000 });
    if (r.code !== 0) throw new Error(`script in client pod failed: ${r.stderr.trim() || `exit ${r.code}`}`);
    return r.stdout;
  }

  beforeAll(async () => {
    stateDir = await mkdtemp(path.join(os.tmpdir(), "weft-idf-state-"));
    configDir = await mkdtemp(path.join(os.tmpdir(), "weft-idf-config-"));
    server = await createPod("idf-server");
    client = await createPod("idf-client");
    for (const pod of [server, client]) await applyCapture(pod.netns, { proxyUid: DEFAULT_PROXY_UID, excludeInboundPorts: [AGENT_PORT] });
    const bridge = bridgeAddress();
    // On the host: a forwarder to the server pod that records each ClientHello (SNI, ALPN) ...
    const forwarder = createNetServer((down) => {
      down.once("data", (first: Buffer) => {
        const h = parseClientHello(first);
        if (h) hello.push(h);
        const up = connect(8080, server.ip, () => {
          up.write(first);
          down.pipe(up).pipe(down);
        });
        up.on("error", () => down.destroy());
        down.on("error", () => up.destroy());
      });
    });
    // ... a raw TCP server (PING -> PONG) and an HTTP/2 (h2c) server that says which HTTP version it got.
    const raw = createNetServer((s) => s.on("data", (d: Buffer) => s.end(d.toString().startsWith("PING") ? "PONG\n" : "WHAT\n")));
    const h2 = createHttp2Server((req, res) => res.end(JSON.stringify({ version: req.httpVersion })));
    for (const [srv, set] of [
      [forwarder, (p: number) => (forwarderPort = p)],
      [raw, (p: number) => (rawPort = p)],
      [h2, (p: number) => (h2Port = p)],
    ] as const) {
      await new Promise<void>((resolve) => srv.listen(0, bridge, resolve));
      set((srv.address() as AddressInfo).port);
      hostServers.push({ close: () => srv.close() });
    }
    await writeFile(
      path.join(configDir, "mesh.yaml"),
      `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: server, namespace: default }
spec:
  hosts: [server.default.svc.cluster.local]
  addresses: [240.240.0.20]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }, { number: 8090 }, { number: 8095, name: tcp-banner, protocol: TCP }]
  workloadSelector: { labels: { app: server } }
---
# A server-first TCP port without mTLS (the rest of the server stays PERMISSIVE).
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: server, namespace: default }
spec:
  selector: { matchLabels: { app: server } }
  portLevelMtls: { 8095: { mode: DISABLE } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: server, namespace: default }
spec: { address: ${server.ip}, labels: { app: server, security.istio.io/tlsMode: istio }, serviceAccount: server-sa }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: client, namespace: default }
spec: { address: ${client.ip}, labels: { app: client, security.istio.io/tlsMode: istio }, serviceAccount: client-sa }
---
# The server again, reached through the host's ClientHello recorder.
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: recorded, namespace: default }
spec:
  hosts: [recorded.default.svc.cluster.local]
  addresses: [240.240.0.21]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  endpoints: [{ address: ${bridge}, ports: { http: ${forwarderPort} }, labels: { security.istio.io/tlsMode: istio }, serviceAccount: server-sa }]
---
# A VirtualService on the recorded host: requests it routes say so in a response header.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: recorded, namespace: default }
spec:
  hosts: [recorded.default.svc.cluster.local]
  http:
  - route: [{ destination: { host: recorded.default.svc.cluster.local } }]
    headers: { response: { set: { x-routed-by: recorded-virtualservice } } }
---
# HTTP ports the host's raw TCP and h2c servers listen on: the client's sidecar has HTTP chains for them.
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: host-ports, namespace: default }
spec:
  hosts: [host-ports.default.svc.cluster.local]
  addresses: [240.240.0.22]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: ${rawPort}, name: http-raw, protocol: HTTP }, { number: ${h2Port}, name: http-h2, protocol: HTTP }]
  endpoints: [{ address: ${bridge} }]
`,
    );
    runner = await startMeshRunner({
      logger: silentLogger(),
      xdsAddress: "0.0.0.0",
      xdsPort: 0,
      sources: [new FileSource(configDir)],
      security: { stateDir, servingNames: { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", bridge] } },
    });
    // The app listens on the pod IP only (not 127.0.0.1), and a second one on an undeclared port.
    for (const [host, port] of [[server.ip, 8080], ["0.0.0.0", 8090]] as const) {
      const app = server.exec(echoApp(host, port), { stdio: ["ignore", "pipe", "inherit"] });
      apps.push(app);
      await untilListening(app);
    }
    const banner = server.exec([process.execPath, "-e", `require("node:net").createServer((s) => s.end("BANNER\\n")).listen(8095, "0.0.0.0", () => console.log("listening"));`], { stdio: ["ignore", "pipe", "inherit"] });
    apps.push(banner);
    await untilListening(banner);
    await startPodAgent(client);
    const creds = runner.security!.credentials;
    await sidecar(server, "server", creds.ensure({ namespace: "default", name: "server" }));
    await sidecar(client, "client", creds.ensure({ namespace: "default", name: "client" }));
    await waitForAllSynced(runner.cp.xds.registry, (key) => runner.cp.cache.get(key), 20_000);
    // Until both have certificates and the first request passes.
    const until = Date.now() + 20_000;
    while (Date.now() < until) {
      const r = await fetchFromPod(client, { host: "240.240.0.20", port: 8080, path: "/", headers: { host: "server" }, timeoutMs: 2000 }).catch((e: Error) => e);
      if (!(r instanceof Error) && r.status === 200) break;
      if (process.env.WEFT_E2E_DEBUG) process.stderr.write(`waiting for the first request: ${r instanceof Error ? r.message : `${r.status} ${r.body}`}\n`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    for (const a of apps) a.kill("SIGKILL");
    for (const s of hostServers) s.close();
    await runner?.close(500);
    await Promise.all([server, client].filter(Boolean).map((p) => p.destroy()));
    await rm(stateDir, { recursive: true, force: true });
    await rm(configDir, { recursive: true, force: true });
  });

  it("item 6: an app bound only to its pod IP is reachable and sees the 127.0.0.6 source", async () => {
    const res = await fromClient("240.240.0.20", 8080, "/", { host: "server" });
    expect(res.status).toBe(200);
    expect((JSON.parse(res.body) as { peer: string }).peer).toBe("127.0.0.6");
  });

  it("item 4: a Host with another port follows the service's routes", async () => {
    const res = await fromClient("240.240.0.20", 8080, "/", { host: "server:9999" });
    expect({ status: res.status, upstream: res.headers["x-upstream"] }).toEqual({ status: 200, upstream: "server" });
  });

  it("item 7: no stream idle timeout on the pods' sidecars either (every inbound and outbound connection manager)", async () => {
    for (const envoy of envoys) {
      const managers = connectionManagers(JSON.parse((await envoy.adminRequest("/config_dump?resource=dynamic_listeners")).body));
      expect(managers.length).toBeGreaterThan(1);
      expect(managers.filter((m) => m.stream_idle_timeout !== "0s").map((m) => m.stat_prefix)).toEqual([]);
    }
  });

  it("item 12: Envoy waits for its configuration (initial_fetch_timeout 0 on every config source), inbound answers as istio-envoy with a UUID request id", async () => {
    const res = await httpGet(`http://${server.ip}:8080/`, { timeoutMs: 5000 });
    expect(res.status).toBe(200);
    expect(res.headers.server).toBe("istio-envoy");
    expect((JSON.parse(res.body) as { headers: Record<string, string> }).headers["x-request-id"]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    for (const envoy of envoys) {
      const dump = JSON.parse((await envoy.adminRequest("/config_dump")).body) as { configs: { "@type": string; bootstrap?: { dynamic_resources?: Record<string, unknown> } }[] };
      // The bootstrap's LDS and CDS (Istio's bootstrap says 0s too), and every RDS, EDS and SDS source.
      const bootstrap = dump.configs.find((c) => c["@type"].endsWith("BootstrapConfigDump"))!.bootstrap!;
      const sources = configSources(dump);
      expect(configSources(bootstrap.dynamic_resources).length).toBe(2);
      expect(sources.length).toBeGreaterThan(4);
      expect(sources.filter((c) => c.initial_fetch_timeout !== "0s")).toEqual([]);
    }
  });

  it("item 11: mTLS between sidecars is TLS 1.3 with Istio's SNI and ALPN; XFCC carries Subject and URI", async () => {
    hello.length = 0;
    const res = await fromClient("240.240.0.21", 8080, "/", { host: "recorded" });
    expect(res.status).toBe(200);
    expect({ sni: hello[0]?.sni, alpn: hello[0]?.alpn }).toEqual({ sni: "outbound_.8080_._.recorded.default.svc.cluster.local", alpn: ["istio-http/1.1", "istio", "http/1.1"] });
    // Istio's TLS 1.2 list (ECDHE/AES-GCM and AES-GCM), nothing else besides TLS 1.3's own suites (0x13xx).
    const tls12Offered = hello[0]!.ciphers.filter((c) => c >> 8 !== 0x13 && c !== 0x00ff);
    expect(tls12Offered.map((c) => c.toString(16)).sort()).toEqual(Object.keys(ISTIO_TLS12_CIPHERS).sort());
    expect(hello[0]!.ciphers.some((c) => c >> 8 === 0x13)).toBe(true);
    const xfcc = (JSON.parse(res.body) as { headers: Record<string, string> }).headers["x-forwarded-client-cert"] ?? "";
    expect(xfcc).toContain("URI=spiffe://cluster.local/ns/default/sa/client-sa");
    expect(xfcc).toContain("Subject=");
    const stats = await envoys[0]!.stats("ssl");
    const tls13 = [...stats.entries()].filter(([k, v]) => k.includes("15006") && k.endsWith("ssl.versions.TLSv1.3") && v > 0);
    const tls12 = [...stats.entries()].filter(([k, v]) => k.includes("15006") && k.endsWith("ssl.versions.TLSv1.2") && v > 0);
    expect({ tls13: tls13.length > 0, tls12: tls12.length }).toEqual({ tls13: true, tls12: 0 });
  });

  // After item 11: these requests leave pooled connections to the recorded host, and item 11 needs a new handshake.
  it("item 4: a Host with another port, or the FQDN with a trailing dot, follows the VirtualService", async () => {
    for (const host of ["recorded", "recorded:9999", "recorded.default.svc.cluster.local.:8080", "recorded.default.svc.cluster.local:1"]) {
      const res = await fromClient("240.240.0.21", 8080, "/", { host });
      expect({ host, status: res.status, routedBy: res.headers["x-routed-by"] }).toEqual({ host, status: 200, routedBy: "recorded-virtualservice" });
    }
  });

  it("item 7: 2000 concurrent inbound requests all pass (no 1024 circuit-breaker limit, no 503 UO)", async () => {
    const statuses: Record<string, number> = {};
    await Promise.all(
      Array.from({ length: 2000 }, () =>
        httpGet(`http://${server.ip}:8080/?delay=1500`, { timeoutMs: 30_000 })
          .then((r) => String(r.status))
          .catch((e: Error) => e.message.slice(0, 60))
          .then((k) => (statuses[k] = (statuses[k] ?? 0) + 1)),
      ),
    );
    expect(statuses).toEqual({ "200": 2000 });
    const overflow = await envoys[0]!.stats("overflow");
    expect([...overflow.entries()].filter(([k, v]) => k.includes("inbound|8080") && v > 0)).toEqual([]);
  });

  it("item 8: raw TCP to a declared HTTP port (its endpoint, and its VIP) passes through instead of hitting the HTTP manager", async () => {
    const out = await inClient(`
      const s = require("node:net").connect(${rawPort}, ${JSON.stringify(bridgeAddress())}, () => s.write("PING\\n"));
      let d = ""; s.on("data", (b) => (d += b)); s.on("end", () => process.stdout.write(d));
      s.setTimeout(5000, () => { process.stdout.write("timeout:" + d); s.destroy(); });
      s.on("error", (e) => process.stdout.write("error:" + e.message));`);
    expect(out).toBe("PONG\n");
    // The same to the service's VIP, which a cluster's kube-proxy would translate: here a DNAT in
    // the client pod for the sidecar's own connections (uid 1337) plays kube-proxy.
    const bridge = bridgeAddress();
    const spec = ["-d", "240.240.0.22/32", "-p", "tcp", "--dport", String(rawPort), "-m", "owner", "--uid-owner", String(DEFAULT_PROXY_UID), "-j", "DNAT", "--to-destination", `${bridge}:${rawPort}`];
    const iptables = (args: string[]) => execFileSync("ip", ["netns", "exec", client.netns, "iptables", "-t", "nat", ...args]);
    iptables(["-I", "OUTPUT", "1", ...spec]);
    try {
      const viaVip = await inClient(`
        const s = require("node:net").connect(${rawPort}, "240.240.0.22", () => s.write("PING\\n"));
        let d = ""; s.on("data", (b) => (d += b)); s.on("end", () => process.stdout.write(d));
        s.setTimeout(5000, () => { process.stdout.write("timeout:" + d); s.destroy(); });
        s.on("error", (e) => process.stdout.write("error:" + e.message));`);
      expect(viaVip).toBe("PONG\n");
    } finally {
      iptables(["-D", "OUTPUT", ...spec]);
    }
  });

  it("item 8: an undeclared port is sniffed: HTTP goes through the HTTP manager on both sides", async () => {
    // Outbound: the client's sidecar routed it as HTTP (its router added x-envoy-attempt-count).
    const res = await fromClient("240.240.0.20", 8090, "/", { host: "server" });
    expect(res.status).toBe(200);
    expect((JSON.parse(res.body) as { headers: Record<string, string> }).headers["x-envoy-attempt-count"]).toBe("1");
    // Inbound, plaintext from outside the mesh: the server's sidecar handled it as HTTP (x-request-id).
    const plain = await httpGet(`http://${server.ip}:8090/`, { timeoutMs: 5000 });
    expect((JSON.parse(plain.body) as { headers: Record<string, string> }).headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    // No listener-filter timeout on either capture listener (Envoy's effective config).
    for (const envoy of envoys) {
      const dump = (await envoy.adminRequest("/config_dump?resource=dynamic_listeners")).body;
      expect(dump.match(/"listener_filters_timeout": "0s"/g)?.length).toBe(2);
    }
  });

  it("item 8: a server-first protocol on a port without mTLS answers at once (no inspector waits there)", async () => {
    const t0 = Date.now();
    const first = await new Promise<string>((resolve) => {
      const s = connect(8095, server.ip);
      const timer = setTimeout(() => (s.destroy(), resolve("nothing within 3 s")), 3000);
      s.once("data", (d: Buffer) => (clearTimeout(timer), s.destroy(), resolve(d.toString())));
      s.on("error", (e) => (clearTimeout(timer), resolve(`error: ${e.message}`)));
    });
    expect(first).toBe("BANNER\n");
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it("item 10: passthrough keeps the downstream protocol (h2c stays HTTP/2)", async () => {
    const out = await inClient(`
      const c = require("node:http2").connect("http://${bridgeAddress()}:${h2Port}");
      c.on("error", (e) => { process.stdout.write("error:" + e.message); c.close(); });
      const r = c.request({ ":path": "/", ":authority": "not-in-the-registry.example" });
      let d = ""; r.on("data", (b) => (d += b)); r.on("end", () => { process.stdout.write(d); c.close(); });
      r.end();`);
    expect(JSON.parse(out)).toEqual({ version: "2.0" });
  });
});
