// An east-west gateway (Gateway tls.mode AUTO_PASSTHROUGH) with real Envoy: mesh mTLS from
// another network's sidecars passes through it untouched, routed by the SNI Istio's sidecars
// send (outbound_.<port>_.<subset>_.<host>) to the service's endpoints, a subset's SNI only to
// that subset; a connection without the mesh's ALPN markers or with an unknown SNI is closed.
// The "destination sidecars" are TLS servers that report the SNI and ALPN they received.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadOrCreateCa } from "../src/ca/certificate-authority.js";
import { freePort } from "../src/runner/free-port.js";
import { meshConfigFromYaml, TestMesh } from "./harness/mesh.js";

interface TlsUpstream {
  name: string;
  port: number;
  close: () => Promise<void>;
}

/** A TLS server that answers each connection with "<name> <sni> <alpn>" and closes. */
async function startTlsUpstream(name: string, cert: string, key: string): Promise<TlsUpstream> {
  const server = tls.createServer({ cert, key, ALPNProtocols: ["istio-http/1.1", "istio"] }, (socket) => {
    socket.end(`${name} ${socket.servername || "-"} ${socket.alpnProtocol || "-"}`);
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return { name, port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** Connects through the gateway with this SNI and ALPN; the upstream's answer, or "closed: <reason>". */
function connect(port: number, servername: string, alpn: string[]): Promise<string> {
  return new Promise((resolve) => {
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      resolve("closed: timeout");
    }, 10_000);
    const socket = tls.connect({ host: "127.0.0.1", port, servername, ALPNProtocols: alpn, rejectUnauthorized: false });
    socket.on("data", (d) => (data += d.toString()));
    socket.on("end", () => {
      clearTimeout(timer);
      resolve(data || "closed: no data");
    });
    socket.on("error", (e) => {
      clearTimeout(timer);
      resolve(data || `closed: ${e.message}`);
    });
  });
}

const MESH_ALPN = ["istio-http/1.1", "istio", "http/1.1"];
const SNI = (subset: string) => `outbound_.9080_.${subset}_.reviews.bookinfo.svc.cluster.local`;

describe("east-west gateway (AUTO_PASSTHROUGH) with real Envoy", () => {
  let mesh: TestMesh;
  let dir: string;
  const upstreams: TlsUpstream[] = [];
  let gatewayPort: number;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "weft-east-west-"));
    const ca = await loadOrCreateCa({ dir });
    const cert = await ca.issueWorkloadCertificate({ namespace: "bookinfo", serviceAccount: "reviews" });
    for (const name of ["reviews-v1", "reviews-v2"]) upstreams.push(await startTlsUpstream(name, cert.certChainPem, cert.privateKeyPem));
    gatewayPort = await freePort();
    const [v1, v2] = upstreams;
    mesh = await TestMesh.start();
    mesh.controller.setConfig(
      meshConfigFromYaml(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: cross-network, namespace: istio-system }
spec:
  selector: { istio: eastwestgateway }
  servers:
  - port: { number: ${gatewayPort}, name: tls, protocol: TLS }
    hosts: ["*.local"]
    tls: { mode: AUTO_PASSTHROUGH }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: bookinfo }
spec:
  hosts: [reviews.bookinfo.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  endpoints:
  - { address: 127.0.0.1, ports: { http: ${v1!.port} }, labels: { app: reviews, version: v1, security.istio.io/tlsMode: istio } }
  - { address: 127.0.0.1, ports: { http: ${v2!.port} }, labels: { app: reviews, version: v2, security.istio.io/tlsMode: istio } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: bookinfo }
spec:
  host: reviews.bookinfo.svc.cluster.local
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`),
    );
    await mesh.startProxy({ name: "eastwestgateway", namespace: "istio-system", type: "router", labels: { istio: "eastwestgateway" } });
  }, 60_000);

  afterAll(async () => {
    await mesh?.close();
    await Promise.all(upstreams.map((u) => u.close()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("passes mesh mTLS through by its SNI: the service's SNI reaches its endpoints, a subset's SNI only that subset, SNI and ALPN untouched", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20 && seen.size < 2; i++) seen.add(await connect(gatewayPort, SNI(""), MESH_ALPN));
    expect([...seen].sort()).toEqual([`reviews-v1 ${SNI("")} istio-http/1.1`, `reviews-v2 ${SNI("")} istio-http/1.1`]);
    for (let i = 0; i < 5; i++) {
      expect(await connect(gatewayPort, SNI("v1"), MESH_ALPN)).toBe(`reviews-v1 ${SNI("v1")} istio-http/1.1`);
      expect(await connect(gatewayPort, SNI("v2"), ["istio"])).toBe(`reviews-v2 ${SNI("v2")} istio`);
    }
  });

  it("closes connections without the mesh ALPN markers or with an SNI it does not route", async () => {
    expect(await connect(gatewayPort, SNI("v1"), ["http/1.1"])).toMatch(/^closed: /);
    expect(await connect(gatewayPort, SNI("v1"), [])).toMatch(/^closed: /);
    expect(await connect(gatewayPort, "reviews.bookinfo.svc.cluster.local", MESH_ALPN)).toMatch(/^closed: /);
    expect(await connect(gatewayPort, SNI("v3"), MESH_ALPN)).toMatch(/^closed: /);
  });
});
