// Zero-trust basics with real Envoy in pods: workload certificates from Weft's CA over SDS,
// mTLS between sidecars with the caller's SPIFFE ID visible to the server, identity proven by
// the bootstrap credential (never by node metadata), rotation under traffic, restart keeps
// identity.
import { PROMETHEUS_STATS_LISTENER } from "../src/envoy/proxy-stats.js";
import { FileSource } from "../src/sources/file/file-source.js";
import { mkdtemp, rm, writeFile, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { applyCapture, captureSupport } from "../src/capture/iptables.js";
import { bridgeAddress, createPod, type Pod } from "../src/capture/pod-network.js";
import { DEFAULT_PROXY_UID } from "../src/capture/sidecar.js";
import type { EnvoyProcess } from "../src/envoy/envoy-process.js";
import { createLogger, silentLogger } from "../src/log/logger.js";
import { createWriteStream } from "node:fs";

const testLogger = () => (process.env.WEFT_E2E_LOG ? createLogger({ level: "debug", destination: createWriteStream(process.env.WEFT_E2E_LOG, { flags: "a" }) }) : silentLogger());
import { startMeshRunner, type MeshRunner } from "../src/runner/mesh-runner.js";
import { waitForAllSynced } from "../src/runner/wait-for-sync.js";
import { AGENT_PORT, fetchFromPod, startPodAgent } from "./harness/pod-agent.js";
import { startSecureSidecar } from "./harness/secure-sidecar.js";
import { eventually, httpGet } from "./harness/http.js";
import { exportJWK, generateKeyPair, SignJWT } from "jose";

const support = await captureSupport();

const ECHO_SCRIPT = `
require("node:http").createServer((req, res) => {
  res.writeHead(200, { "content-type": "application/json", "x-upstream": "server" });
  res.end(JSON.stringify({ path: req.url, headers: req.headers }));
}).listen(8080, "0.0.0.0", () => console.log("listening on 8080"));
`;

function meshYaml(pods: { server: Pod; client: Pod }): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: server, namespace: default }
spec:
  hosts: [server.default.svc.cluster.local]
  addresses: [240.240.0.10]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: server } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: server, namespace: default }
spec: { address: ${pods.server.ip}, labels: { app: server, security.istio.io/tlsMode: istio }, serviceAccount: server-sa }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: client, namespace: default }
spec: { address: ${pods.client.ip}, labels: { app: client, security.istio.io/tlsMode: istio }, serviceAccount: client-sa }
`;
}

describe.skipIf(!support.transparent)(`security with real Envoy in pods${support.transparent ? "" : ` (skipped: ${support.reason})`}`, () => {
  let stateDir: string;
  let configDir: string;
  let runner: MeshRunner;
  let server: Pod;
  let client: Pod;
  const envoys: EnvoyProcess[] = [];
  const apps: ChildProcess[] = [];

  let applied = 0;
  async function startRunner(ttlMs: number): Promise<MeshRunner> {
    return startMeshRunner({
      onApplied: () => applied++,
      logger: testLogger(),
      xdsAddress: "0.0.0.0",
      xdsPort: 0,
      sources: [new FileSource(configDir)],
      security: { stateDir, workloadTtlMs: ttlMs, servingNames: { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", bridgeAddress()] } },
    });
  }

  async function sidecar(pod: Pod, name: string, opts: { token?: string; claimLabels?: Record<string, string> } = {}): Promise<EnvoyProcess> {
    const envoy = await startSecureSidecar(runner, pod, name, opts);
    envoys.push(envoy);
    return envoy;
  }

  async function secretsOf(envoy: EnvoyProcess): Promise<{ name: string; uri?: string; serial?: string }[]> {
    const res = await envoy.adminRequest("/certs");
    const certs = JSON.parse(res.body) as { certificates?: { cert_chain?: { serial_number?: string; subject_alt_names?: { uri?: string }[] }[] }[] };
    return (certs.certificates ?? []).flatMap((c) => (c.cert_chain ?? []).slice(0, 1).map((leaf) => ({ name: "default", uri: leaf.subject_alt_names?.[0]?.uri, serial: leaf.serial_number })));
  }

  const call = () => fetchFromPod(client, { host: "240.240.0.10", port: 8080, path: "/hello", headers: { host: "server:8080" }, timeoutMs: 5000 });

  beforeAll(async () => {
    stateDir = await mkdtemp(path.join(os.tmpdir(), "weft-sec-state-"));
    configDir = await mkdtemp(path.join(os.tmpdir(), "weft-sec-config-"));
    server = await createPod("sec-server");
    client = await createPod("sec-client");
    for (const pod of [server, client]) await applyCapture(pod.netns, { proxyUid: DEFAULT_PROXY_UID, excludeInboundPorts: [AGENT_PORT] });
    await writeFile(path.join(configDir, "mesh.yaml"), meshYaml({ server, client }));
    runner = await startRunner(10_000);
    const echo = server.exec([process.execPath, "-e", ECHO_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
    apps.push(echo);
    await new Promise<void>((resolve) => echo.stdout!.on("data", (d: Buffer) => d.toString().includes("listening") && resolve()));
    await startPodAgent(client);
    const creds = runner.security!.credentials;
    await sidecar(server, "server", { token: creds.ensure({ namespace: "default", name: "server" }) });
    await sidecar(client, "client", { token: creds.ensure({ namespace: "default", name: "client" }) });
  });

  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    for (const a of apps) a.kill("SIGKILL");
    await runner?.close(500);
    await Promise.all([server, client].filter(Boolean).map((p) => p.destroy()));
    await rm(stateDir, { recursive: true, force: true });
    await rm(configDir, { recursive: true, force: true });
  });

  it("traffic between two sidecars is mTLS and the server sees the caller's SPIFFE ID", async () => {
    let res = await call().catch(() => undefined);
    for (let i = 0; i < 100 && res?.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      res = await call().catch(() => undefined);
    }
    expect(res?.status).toBe(200);
    const echo = JSON.parse(res!.body) as { headers: Record<string, string> };
    expect(echo.headers["x-forwarded-client-cert"]).toContain("URI=spiffe://cluster.local/ns/default/sa/client-sa");
    const serverEnvoy = envoys[0]!;
    const handshakes = await serverEnvoy.stats("ssl.handshake");
    expect([...handshakes.entries()].some(([k, v]) => k.includes("15006") && v > 0)).toBe(true);
    const [cert] = await secretsOf(serverEnvoy);
    expect(cert?.uri).toBe("spiffe://cluster.local/ns/default/sa/server-sa");
    // Status and metrics show each proxy's certificate and its expiry.
    const norm = (s: string | undefined) => (s ?? "").toLowerCase().replace(/^0+/, "");
    const statusCert = async () => {
      const status = (await (await fetch(`http://127.0.0.1:${runner.cp.adminPort}/debug/syncz`)).json()) as { proxies: { principal: string; certificate?: { serial: string; identity: string } }[] };
      return status.proxies.find((p) => p.principal.startsWith("default/server#"))?.certificate;
    };
    expect((await statusCert())?.identity).toBe("spiffe://cluster.local/ns/default/sa/server-sa");
    // The serial in status is the one Envoy serves (allowing a rotation to be in flight).
    let same = false;
    for (let i = 0; i < 30 && !same; i++) {
      same = norm((await statusCert())?.serial) === norm((await secretsOf(serverEnvoy))[0]?.serial);
      if (!same) await new Promise((r) => setTimeout(r, 100));
    }
    expect(same).toBe(true);
    const metrics = await (await fetch(`http://127.0.0.1:${runner.cp.adminPort}/metrics`)).text();
    expect(metrics).toMatch(/weft_workload_certificate_expiry_timestamp_seconds\{identity="spiffe:\/\/cluster.local\/ns\/default\/sa\/server-sa"\} \d+/);
    expect(metrics).toContain("weft_ca_certificates_issued_total");
  });

  it("identity is proven, never claimed: a proxy with the client's token claiming to be the server gets the client's certificate; no token, no stream", async () => {
    const impostorPod = await createPod("sec-impostor");
    try {
      await applyCapture(impostorPod.netns, { proxyUid: DEFAULT_PROXY_UID });
      const token = runner.security!.credentials.ensure({ namespace: "default", name: "client" });
      const impostor = await sidecar(impostorPod, "server", { token, claimLabels: { app: "server" } });
      await impostor.waitFor(async () => ((await secretsOf(impostor)).length > 0 ? true : undefined), { what: "a certificate", timeoutMs: 15_000 });
      expect((await secretsOf(impostor))[0]?.uri).toBe("spiffe://cluster.local/ns/default/sa/client-sa");
      // Without a token (as on Istio's secure port) a stream is refused: no secrets, no configuration at all.
      const anonymousPod = await createPod("sec-anon");
      try {
        const refused = async () => {
          const m = (await runner.cp.metricsRegistry.getMetricsAsJSON()).find((x) => x.name === "weft_proxy_classes_refused_total");
          return m?.values.find((v) => v.labels.reason === "unauthenticated")?.value ?? 0;
        };
        const before = await refused();
        const anonymous = await sidecar(anonymousPod, "anon", {});
        await anonymous.waitFor(async () => ((await refused()) > before ? true : undefined), { what: "the anonymous proxy to be refused", timeoutMs: 15_000 });
        expect(await secretsOf(anonymous)).toEqual([]);
        const listeners = JSON.parse((await anonymous.adminRequest("/listeners?format=json")).body) as { listener_statuses?: { name: string }[] };
        // Only the bootstrap's own scrape listener: nothing from xDS.
        expect((listeners.listener_statuses ?? []).map((l) => l.name).filter((n) => n !== PROMETHEUS_STATS_LISTENER)).toEqual([]);
        expect(runner.cp.xds.registry.list().some((p) => p.nodeId.includes("anon"))).toBe(false);
      } finally {
        await anonymousPod.destroy();
      }
    } finally {
      await impostorPod.destroy();
    }
  });

  it("certificates rotate through SDS under continuous traffic with no failed request", async () => {
    const serverEnvoy = envoys[0]!;
    const before = (await secretsOf(serverEnvoy))[0]!.serial;
    let ok = 0;
    let failed = 0;
    const serials = new Set<string>([before!]);
    const end = Date.now() + 14_000; // 10 s certificates renew at 5-8 s: at least one rotation
    while (Date.now() < end) {
      const r = await call().catch(() => undefined);
      if (r?.status === 200) ok++;
      else failed++;
      serials.add((await secretsOf(serverEnvoy))[0]?.serial ?? "");
      await new Promise((res) => setTimeout(res, 50));
    }
    process.stderr.write(`certificate rotation: ${ok} requests, ${failed} failed, ${serials.size} serials served\n`);
    expect(failed).toBe(0);
    expect(ok).toBeGreaterThan(50);
    expect(serials.size).toBeGreaterThanOrEqual(2);
  });

  /** Writes extra policy YAML next to the mesh and waits until every proxy ACKed the result. */
  async function applyPolicy(yaml: string): Promise<void> {
    const before = applied;
    await writeFile(path.join(configDir, "policy.yaml"), yaml);
    for (let i = 0; i < 100 && applied === before; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await waitForAllSynced(runner.cp.xds.registry, (key) => runner.cp.cache.get(key), 15_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 300)); // listener updates take effect for new connections
  }

  /** Plaintext from the host straight to the server pod (no client sidecar). */
  const plaintext = () => httpGet(`http://${server.ip}:8080/plain`, { timeoutMs: 3000 }).then((r) => r.status, () => "refused");

  it("PeerAuthentication: PERMISSIVE accepts mTLS and plaintext, STRICT rejects plaintext, DISABLE sends plaintext", async () => {
    expect(await plaintext()).toBe(200);
    expect((await call()).status).toBe(200);
    await applyPolicy(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: default }
spec: { mtls: { mode: STRICT } }
`);
    expect(await eventually(plaintext, "refused")).toBe("refused");
    const strict = await call();
    expect(strict.status).toBe(200);
    expect((JSON.parse(strict.body) as { headers: Record<string, string> }).headers["x-forwarded-client-cert"]).toContain("sa/client-sa");
    await applyPolicy(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: server-off, namespace: default }
spec: { selector: { matchLabels: { app: server } }, mtls: { mode: DISABLE } }
`);
    expect(await eventually(plaintext, 200)).toBe(200);
    // The client stops using mTLS towards a DISABLE workload (auto mTLS follows PeerAuthentication).
    const xfcc = async () => (JSON.parse((await call()).body) as { headers: Record<string, string> }).headers["x-forwarded-client-cert"] ?? "none";
    expect(await eventually(xfcc, "none")).toBe("none");
    expect(await plaintext()).toBe(200);
    await applyPolicy("");
  });

  it("AuthorizationPolicy: ALLOW by principal and path, DENY by header; default deny once an ALLOW policy selects the workload", async () => {
    await applyPolicy(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: server-allow, namespace: default }
spec:
  selector: { matchLabels: { app: server } }
  action: ALLOW
  rules:
  - from: [{ source: { principals: ["cluster.local/ns/default/sa/client-sa"] } }]
    to: [{ operation: { methods: ["GET"], paths: ["/allowed*"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: server-deny, namespace: default }
spec:
  selector: { matchLabels: { app: server } }
  action: DENY
  rules:
  - when: [{ key: "request.headers[x-block]", values: ["yes"] }]
`);
    const get = (p: string, headers: Record<string, string> = {}) => fetchFromPod(client, { host: "240.240.0.10", port: 8080, path: p, headers: { host: "server:8080", ...headers } }).then((r) => r.status);
    expect(await get("/allowed/x")).toBe(200);
    expect(await eventually(() => get("/other"), 403)).toBe(403);
    expect(await get("/allowed/x", { "x-block": "yes" })).toBe(403);
    expect(await plaintext()).toBe(403); // no principal: not allowed
    // By namespace: DENY callers from namespace "default" on /ns-guarded, ALLOW them elsewhere.
    await applyPolicy(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: by-namespace, namespace: default }
spec:
  selector: { matchLabels: { app: server } }
  action: DENY
  rules: [{ from: [{ source: { namespaces: ["default"] } }], to: [{ operation: { paths: ["/ns-guarded"] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-namespace, namespace: default }
spec:
  selector: { matchLabels: { app: server } }
  action: ALLOW
  rules: [{ from: [{ source: { namespaces: ["default"] } }] }]
`);
    expect(await eventually(() => get("/ns-guarded"), 403)).toBe(403);
    expect(await get("/anything")).toBe(200);
    expect(await plaintext()).toBe(403); // no peer identity, so no namespace
    await applyPolicy("");
    expect(await eventually(() => get("/other"), 200)).toBe(200);
  });

  it("AuthorizationPolicy source.serviceAccounts / notServiceAccounts / trustDomains match the caller's certificate (spiffe://cluster.local/ns/default/sa/client-sa)", async () => {
    const get = () => fetchFromPod(client, { host: "240.240.0.10", port: 8080, path: "/sa", headers: { host: "server:8080" } }).then((r) => r.status);
    const allowFrom = (source: string) => `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: by-source, namespace: default }
spec:
  selector: { matchLabels: { app: server } }
  rules: [{ from: [{ source: ${source} }] }]
`;
    // "client-sa" is relative to the policy's namespace (default).
    await applyPolicy(allowFrom("{ serviceAccounts: [client-sa] }"));
    expect(await eventually(get, 200)).toBe(200);
    expect(await plaintext()).toBe(403); // no certificate, no service account
    // The same name in another namespace is another service account.
    await applyPolicy(allowFrom('{ serviceAccounts: ["other/client-sa"] }'));
    expect(await eventually(get, 403)).toBe(403);
    // This mesh's trust domain ("cluster.local") matches; a partner's does not.
    await applyPolicy(allowFrom("{ trustDomains: [cluster.local] }"));
    expect(await eventually(get, 200)).toBe(200);
    await applyPolicy(allowFrom('{ trustDomains: ["*.partner.example"] }'));
    expect(await eventually(get, 403)).toBe(403);
    // notServiceAccounts / notTrustDomains: everyone but the named ones.
    await applyPolicy(allowFrom('{ notServiceAccounts: ["default/server-sa"] }'));
    expect(await eventually(get, 200)).toBe(200);
    await applyPolicy(allowFrom('{ notServiceAccounts: ["default/client-sa"] }'));
    expect(await eventually(get, 403)).toBe(403);
    await applyPolicy(allowFrom("{ trustDomains: [\"*\"], notTrustDomains: [cluster.local] }"));
    expect(await eventually(get, 403)).toBe(403);
    await applyPolicy("");
    expect(await eventually(get, 200)).toBe(200);
  });

  it("RequestAuthentication + AuthorizationPolicy: valid JWT 200; missing 403; expired and wrong issuer 401; wrong audience 403", async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    await applyPolicy(`
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: default }
spec:
  selector: { matchLabels: { app: server } }
  jwtRules:
  - issuer: https://issuer.weft.test
    audiences: [server]
    jwks: '${JSON.stringify({ keys: [jwk] })}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: require-jwt, namespace: default }
spec:
  selector: { matchLabels: { app: server } }
  action: ALLOW
  rules: [{ from: [{ source: { requestPrincipals: ["https://issuer.weft.test/*"] } }] }]
`);
    const token = (opts: { iss?: string; aud?: string; exp?: number } = {}) =>
      new SignJWT({})
        .setProtectedHeader({ alg: "RS256", kid: "k1" })
        .setIssuer(opts.iss ?? "https://issuer.weft.test")
        .setAudience(opts.aud ?? "server")
        .setSubject("alice")
        .setIssuedAt()
        .setExpirationTime(opts.exp ?? Math.floor(Date.now() / 1000) + 600)
        .sign(privateKey);
    const get = async (jwt?: string) => (await fetchFromPod(client, { host: "240.240.0.10", port: 8080, path: "/", headers: { host: "server:8080", ...(jwt ? { authorization: `Bearer ${jwt}` } : {}) } })).status;
    expect(await eventually(async () => get(), 403)).toBe(403);
    expect(await get(await token())).toBe(200);
    expect(await get(await token({ exp: Math.floor(Date.now() / 1000) - 600 }))).toBe(401);
    expect(await get(await token({ iss: "https://evil.test" }))).toBe(401);
    // Envoy's jwt_authn answers a wrong audience with 403 ("Audiences in Jwt are not allowed").
    expect(await get(await token({ aud: "someone-else" }))).toBe(403);
    await applyPolicy("");
  });

  it("a control-plane restart keeps every workload's identity (same root, same credentials)", async () => {
    const bundle = await readFile(runner.security!.trustBundleFile, "utf8");
    const xdsPort = runner.cp.xdsPort;
    await runner.close(500);
    runner = await startMeshRunner({
      logger: testLogger(),
      xdsAddress: "0.0.0.0",
      xdsPort,
      sources: [new FileSource(configDir)],
      security: { stateDir, workloadTtlMs: 10_000, servingNames: { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", bridgeAddress()] } },
    });
    expect(await readFile(runner.security!.trustBundleFile, "utf8")).toBe(bundle);
    let res = await call().catch(() => undefined);
    for (let i = 0; i < 100 && res?.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      res = await call().catch(() => undefined);
    }
    expect(res?.status).toBe(200);
    // Both sidecars reconnect (TLS to the control plane, same tokens) and ACK their secrets.
    const reconnected = () => runner.cp.xds.registry.list().filter((p) => (p.principal.startsWith("default/client#") || p.principal.startsWith("default/server#")) && p.types.sds?.ackedVersion).length;
    for (let i = 0; i < 300 && reconnected() < 2; i++) await new Promise((r) => setTimeout(r, 100));
    expect(reconnected()).toBeGreaterThanOrEqual(2);
    expect((await call()).status).toBe(200);
  });

  // Runs last: after a completed rotation the control plane's serving certificate chains to the
  // new root, and Envoy reads the bootstrap's trust for the control plane only at start.
  it("root rotation: old and new roots trusted during the switch, certificates re-issued from the new root, 0 failed requests", async () => {
    const serverEnvoy = envoys[0]!;
    const rootsBefore = runner.security!.ca.roots().map((r) => r.serial);
    let ok = 0;
    let failed = 0;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        const r = await call().catch(() => undefined);
        if (r?.status === 200) ok++;
        else failed++;
        await new Promise((res) => setTimeout(res, 30));
      }
    })();
    await new Promise((r) => setTimeout(r, 1000));
    await runner.rotateRoot("begin");
    expect(runner.security!.ca.roots()).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 3000));
    await runner.rotateRoot("finish");
    const rootsAfter = runner.security!.ca.roots().map((r) => r.serial);
    expect(rootsAfter).toHaveLength(1);
    expect(rootsBefore).not.toContain(rootsAfter[0]);
    await new Promise((r) => setTimeout(r, 3000));
    stop = true;
    await loop;
    process.stderr.write(`root rotation: ${ok} requests, ${failed} failed\n`);
    expect(failed).toBe(0);
    expect(ok).toBeGreaterThan(50);
    const certs = JSON.parse((await serverEnvoy.adminRequest("/certs")).body) as { certificates?: { ca_cert?: { serial_number?: string }[] }[] };
    const caSerials = (certs.certificates ?? []).flatMap((c) => (c.ca_cert ?? []).map((x) => (x.serial_number ?? "").toLowerCase().replace(/^0+/, "")));
    expect(caSerials).toContain(rootsAfter[0]!.toLowerCase().replace(/^0+/, ""));
  });
});
