// Sidecar `ingress` and `egress` listeners with REAL Envoy sidecars in pods (transparent capture) and Weft's
// control plane: the shop workload's Service declares only port 8080, its app listens on
// 127.0.0.1:8080 (loopback only: unreachable from other pods without the Sidecar), on
// 0.0.0.0:8081 and on a unix socket. A Sidecar resource gives the workload ingress listeners
// on ports nobody declares, each forwarding to its defaultEndpoint, as Istio does:
//   9080 HTTP  -> 127.0.0.1:8080          9081 HTTP -> 0.0.0.0:8081 (the pod's own address)
//   9082 HTTP  -> unix://<socket>         9443 HTTPS, tls SIMPLE (the sidecar terminates) -> 127.0.0.1:8080
//   9090 HTTP, captureMode NONE, bind 127.0.0.1 (a listener of its own) -> 127.0.0.1:8080
// A client pod calls the shop pod's IP on those ports. Before the Sidecar is applied the same
// calls fail (nothing listens there), so the test fails on a translator that ignores ingress.
// Runs under the machine-wide pod lock: flock /tmp/weft-pods.lock npx vitest run e2e/sidecar-listeners.e2e.test.ts
import { spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureSupport } from "../src/capture/iptables.js";
import { bridgeAddress } from "../src/capture/pod-network.js";
import { TestMesh, type MeshProxy } from "./harness/mesh.js";
import { startUpstream, type Upstream } from "./harness/upstream.js";

const support = await captureSupport();
const skip = !support.transparent;
const note = skip ? ` (skipped: ${support.reason})` : "";
if (skip) process.stderr.write(`sidecar-listeners e2e skipped: ${support.reason}\n`);

/** The shop app: answers "<listener> saw <peer>" on loopback 8080, on every address at 8081, and on a unix socket. */
function shopApp(socket: string): string[] {
  return [
    process.execPath,
    "-e",
    `
    const http = require("node:http"); const fs = require("node:fs");
    const serve = (name) => http.createServer((req, res) => res.end(name + " saw " + (req.socket.remoteAddress || "a unix peer")));
    let ready = 0; const up = () => { if (++ready === 3) console.log("listening"); };
    serve("loopback-8080").listen(8080, "127.0.0.1", up);
    serve("pod-8081").listen(8081, "0.0.0.0", up);
    try { fs.unlinkSync(${JSON.stringify(socket)}); } catch {}
    serve("unix-socket").listen(${JSON.stringify(socket)}, () => { fs.chmodSync(${JSON.stringify(socket)}, 0o777); up(); });`,
  ];
}

function untilListening(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = "";
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 15 s: ${stderr}`)), 15_000);
    child.stdout?.once("data", () => (clearTimeout(timer), resolve()));
    child.once("close", (code) => (clearTimeout(timer), reject(new Error(`${what} exited (${code}): ${stderr}`))));
  });
}

/** Polls `fn` until `done` says its answer is final (config reaches Envoy asynchronously), at most 15 s; returns the last answer. */
async function until(fn: () => Promise<string>, done: string | ((answer: string) => boolean)): Promise<string> {
  const isDone = typeof done === "string" ? (a: string) => a === done : done;
  const end = Date.now() + 15_000;
  let last = await fn();
  while (!isDone(last) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    last = await fn();
  }
  return last;
}

const registry = (shopIp: string) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shop }
spec:
  hosts: [shop.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: shop } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: shop-1 }
spec: { address: ${shopIp}, labels: { app: shop } }
`;

const sidecar = (socket: string, certDir: string) => `
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: shop-ingress }
spec:
  workloadSelector: { labels: { app: shop } }
  ingress:
  - port: { number: 9080, protocol: HTTP, name: http-loopback }
    defaultEndpoint: 127.0.0.1:8080
  - port: { number: 9081, protocol: HTTP, name: http-pod }
    defaultEndpoint: 0.0.0.0:8081
  - port: { number: 9082, protocol: HTTP, name: http-socket }
    defaultEndpoint: unix://${socket}
  - port: { number: 9443, protocol: HTTPS, name: https-external }
    defaultEndpoint: 127.0.0.1:8080
    tls: { mode: SIMPLE, serverCertificate: ${certDir}/cert.pem, privateKey: ${certDir}/key.pem }
  - port: { number: 9090, protocol: HTTP, name: http-bound }
    captureMode: NONE
    bind: 127.0.0.1
    defaultEndpoint: 127.0.0.1:8080
`;

describe.skipIf(skip)(`Sidecar ingress listeners with real Envoy in pods${note}`, () => {
  let mesh: TestMesh;
  let shop: MeshProxy;
  let client: MeshProxy;
  let app: ChildProcess | undefined;
  let dir: string;
  let socket: string;

  /** GET from the client pod to the shop pod's IP on `port`: "<status> <body>" or "error: ...". */
  const call = async (port: number): Promise<string> => {
    try {
      const r = await client.fetch!({ host: shop.pod!.ip, port, path: "/", headers: { host: "shop.example" }, timeoutMs: 4000 });
      return `${r.status} ${r.body}`;
    } catch (e) {
      return `error: ${(e as Error).message}`;
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "weft-sidecar-ingress-"));
    chmodSync(dir, 0o755); // Envoy runs as uid 1337: it reads the certificate and connects to the socket
    socket = path.join(dir, "app.sock");
    const cert = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=shop.example", "-keyout", `${dir}/key.pem`, "-out", `${dir}/cert.pem`], { encoding: "utf8" });
    if (cert.status !== 0) throw new Error(`openssl failed: ${cert.stderr}`);
    chmodSync(`${dir}/key.pem`, 0o644);
    mesh = await TestMesh.start({}, { transparent: true });
    shop = await mesh.startProxy({ name: "shop-ingress", labels: { app: "shop" }, capture: "transparent" });
    client = await mesh.startProxy({ name: "client-ingress", labels: { app: "client" }, capture: "transparent" });
    app = shop.pod!.exec(shopApp(socket), { stdio: ["ignore", "pipe", "pipe"] });
    await untilListening(app, "the shop app");
    await mesh.applyValid(registry(shop.pod!.ip));
  }, 120_000);

  afterAll(async () => {
    app?.kill("SIGKILL");
    await mesh?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("without the Sidecar, ports the Service does not declare lead nowhere (the app listens on loopback only)", async () => {
    expect(await call(9080)).toMatch(/^error|^50[23]/);
    expect(await call(8080)).toMatch(/^error|^50[23]/); // the declared port: the app is not on the pod IP
  });

  it("with the Sidecar, each ingress listener forwards to its defaultEndpoint: loopback, the pod's own address on another port, a unix socket", async () => {
    await mesh.applyValid(registry(shop.pod!.ip) + sidecar(socket, dir));
    // Loopback: Envoy reaches the app from 127.0.0.1 (no 127.0.0.6 bind needed on loopback).
    expect(await until(() => call(9080), "200 loopback-8080 saw 127.0.0.1")).toBe("200 loopback-8080 saw 127.0.0.1");
    // 0.0.0.0:8081: the pod's IP, from 127.0.0.6 so the capture rules let it through.
    expect(await until(() => call(9081), "200 pod-8081 saw 127.0.0.6")).toBe("200 pod-8081 saw 127.0.0.6");
    expect(await until(() => call(9082), "200 unix-socket saw a unix peer")).toBe("200 unix-socket saw a unix peer");
    // The sidecar's HTTP connection manager served it (Envoy's header on the response path is not
    // added inbound; the access log is off): Envoy's listener stats count the requests.
    const stats = await shop.envoy.stats("^http\\.inbound_0\\.0\\.0\\.0_9080\\.downstream_rq_total$");
    expect(stats.get("http.inbound_0.0.0.0_9080.downstream_rq_total") ?? 0).toBeGreaterThan(0);
  });

  it("tls SIMPLE on an ingress listener: the sidecar terminates TLS with the given certificate and forwards plain HTTP", async () => {
    const script = `
      const req = require("node:https").get({ host: ${JSON.stringify(shop.pod!.ip)}, port: 9443, path: "/", servername: "shop.example", rejectUnauthorized: false, agent: false, timeout: 4000 }, (res) => {
        let body = ""; res.on("data", (d) => body += d);
        res.on("end", () => process.stdout.write(res.statusCode + " " + body + " | " + res.socket.getPeerCertificate().subject.CN));
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (e) => { process.stdout.write("error: " + e.message); });`;
    const out = await until(async () => (await client.pod!.run([process.execPath, "-e", script], { cwd: "/", timeoutMs: 10_000 })).stdout, (a) => a.startsWith("200"));
    expect(out).toBe("200 loopback-8080 saw 127.0.0.1 | shop.example");
    // Plain text to the TLS port does not reach the app.
    expect(await call(9443)).not.toMatch(/^200/);
  });

  it("captureMode NONE: a listener of its own on bind:port (reached from inside the pod, not through capture)", async () => {
    const script = `
      require("node:http").get({ host: "127.0.0.1", port: 9090, path: "/", agent: false, timeout: 4000 }, (res) => {
        let body = ""; res.on("data", (d) => body += d); res.on("end", () => process.stdout.write(res.statusCode + " " + body));
      }).on("error", (e) => process.stdout.write("error: " + e.message));`;
    const out = await until(async () => (await shop.pod!.run([process.execPath, "-e", script], { cwd: "/", timeoutMs: 10_000 })).stdout, (a) => a.startsWith("200"));
    expect(out).toBe("200 loopback-8080 saw 127.0.0.1");
    const stats = await shop.envoy.stats("^listener\\.127\\.0\\.0\\.1_9090\\.downstream_cx_total$");
    expect(stats.get("listener.127.0.0.1_9090.downstream_cx_total") ?? 0).toBeGreaterThan(0);
  });

  it("removing the Sidecar takes the ingress listeners away again", async () => {
    await mesh.applyValid(registry(shop.pod!.ip));
    const last = await until(() => call(9080), (a) => !a.startsWith("200"));
    expect(last).toMatch(/^error|^50[23]/);
  });
});

// Sidecar `egress` listeners with ports, with a REAL Envoy client sidecar in a pod: port 9080
// serves only ratings (reviews, also on 9080, falls to the REGISTRY_ONLY catch-all route: 502);
// billing's port 8080 is a listener of its own on 127.0.0.1 (captureMode NONE) that the app
// calls directly, without capture (captured traffic to 8080 meets the black hole).
describe.skipIf(skip)(`Sidecar egress listeners with ports with real Envoy in a pod${note}`, () => {
  let mesh: TestMesh;
  let client: MeshProxy;
  const ups: Record<string, Upstream> = {};

  const registry = () =>
    ["ratings", "reviews", "billing"]
      .map(
        (name) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name} }
spec:
  hosts: [${name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${name === "billing" ? 8080 : 9080}, name: http, protocol: HTTP }]
  endpoints: [{ address: ${bridgeAddress()}, ports: { http: ${ups[name]!.port} } }]
---
`,
      )
      .join("");

  const egressSidecar = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: client-egress }
spec:
  workloadSelector: { labels: { app: client } }
  egress:
  - port: { number: 9080, protocol: HTTP, name: http }
    hosts: ["./ratings.default.svc.cluster.local"]
  - port: { number: 8080, protocol: HTTP, name: http-billing }
    captureMode: NONE
    hosts: ["./billing.default.svc.cluster.local"]
  - hosts: ["./*"]
  outboundTrafficPolicy: { mode: REGISTRY_ONLY }
`;

  /** GET through capture to an address nobody serves, on `port`, Host `host`: the upstream's name, or the status. */
  const viaCapture = async (host: string, port: number): Promise<string> => {
    try {
      const r = await client.fetch!({ host: "240.240.0.250", port, path: "/", headers: { host }, timeoutMs: 4000 });
      return r.status === 200 ? String(r.headers["x-upstream"]) : `status ${r.status}`;
    } catch (e) {
      return `error: ${(e as Error).message}`;
    }
  };

  /** GET from inside the client pod to 127.0.0.1:`port` (not captured: loopback), Host `host`. */
  const viaLoopback = async (host: string, port: number): Promise<string> => {
    const script = `
      require("node:http").get({ host: "127.0.0.1", port: ${port}, path: "/", headers: { host: ${JSON.stringify(host)} }, agent: false, timeout: 4000 }, (res) => {
        res.resume(); res.on("end", () => process.stdout.write(res.statusCode === 200 ? String(res.headers["x-upstream"]) : "status " + res.statusCode));
      }).on("error", (e) => process.stdout.write("error: " + e.message));`;
    return (await client.pod!.run([process.execPath, "-e", script], { cwd: "/", timeoutMs: 10_000 })).stdout;
  };

  beforeAll(async () => {
    for (const name of ["ratings", "reviews", "billing"]) ups[name] = await startUpstream(name, { host: "0.0.0.0" });
    mesh = await TestMesh.start({}, { transparent: true });
    client = await mesh.startProxy({ name: "client-egress", labels: { app: "client" }, capture: "transparent" });
    await mesh.applyValid(registry());
  }, 120_000);

  afterAll(async () => {
    await mesh?.close();
    await Promise.all(Object.values(ups).map((u) => u.close()));
  });

  it("without egress ports every service is reachable on its port through capture; nothing listens on 127.0.0.1:8080", async () => {
    expect(await until(() => viaCapture("ratings", 9080), "ratings")).toBe("ratings");
    expect(await viaCapture("reviews", 9080)).toBe("reviews");
    expect(await viaLoopback("billing", 8080)).toMatch(/^error: connect ECONNREFUSED/);
  });

  it("with them, port 9080 serves only its listener's hosts, and billing's port is a listener of its own on 127.0.0.1", async () => {
    await mesh.applyValid(registry() + egressSidecar);
    expect(await until(() => viaLoopback("billing", 8080), "billing")).toBe("billing");
    expect(await viaCapture("ratings", 9080)).toBe("ratings");
    // reviews is not on 9080's listener: REGISTRY_ONLY's catch-all route answers 502.
    expect(await until(() => viaCapture("reviews", 9080), "status 502")).toBe("status 502");
    // billing's port is bound, not captured: captured traffic to 8080 meets the black hole.
    expect(await viaCapture("billing", 8080)).toMatch(/^error/);
  });
});
