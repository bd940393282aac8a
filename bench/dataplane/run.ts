// Scenario 6 of issue 5: data-plane overhead of Weft's Envoy config.
//
// One HTTP/1.1 load (bench/go/httpload: open model, fixed arrival rate, latency from the
// scheduled send time) from a client pod to a server pod (network namespaces on a private
// bridge), through three set-ups:
//   direct   client pod -> server pod, no Envoy, no capture
//   weft     both pods with transparent capture and a Weft sidecar configured by a Weft control
//            plane with security on (auto mTLS between the sidecars); the client sends plain
//            HTTP to the service VIP
//   minimal  the same pods and capture, each Envoy with a hand-written static bootstrap that
//            holds only what the path needs (bench/dataplane/minimal-envoy.ts), mTLS with
//            certificates from Weft's CA (src/ca, same key type) in files
// Every run starts fresh pods, Envoys, control plane and upstream. The three set-ups run once
// per "pair" (a round), in an order that flips weft/minimal every round. Reported: added
// latency over direct (per-round differences), weft/minimal p99 ratio per round (median and
// range), CPU-seconds of both Envoys over the recorded window, their RSS, and what Weft's
// config has that the minimal one does not (from the Envoys' config_dumps).
//
//   npx tsx bench/dataplane/run.ts
//   env: BENCH_PAIRS=5 BENCH_DURATION_S=30 BENCH_WARMUP_S=5 BENCH_RATE=1000 BENCH_CONNS=16
//        BENCH_CONFIGS="direct,weft,minimal"
//        BENCH_PEER_AUTH=STRICT|PERMISSIVE  add a mesh-wide PeerAuthentication (default: none,
//                                           i.e. Weft's default, which is PERMISSIVE)
//        BENCH_MINIMAL_EXTRAS="xfcc,tlsinspector,faultcors,normalizepath,retries,accesslog,h2upstream"
//                                           add pieces of Weft's config to the minimal one (to find
//                                           what costs what); "weftlike" = the first five (all of
//                                           Weft's on-path differences); see minimal-envoy.ts
//        BENCH_OUT=bench/results/dataplane  result files <BENCH_OUT>.{md,json} (exploratory runs: /tmp/...)
//        BENCH_KEEP_DUMPS=1                 keep the config dumps (path printed)
// Needs root (network namespaces, iptables). Pods: dp-client, dp-server on bridge dp0,
// 10.86.0.0/24 (never the weft0 pods of other runs).
import { FileSource } from "../../src/sources/file/file-source.js";
import { execFileSync, type ChildProcess } from "node:child_process";
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpuSeconds, statusKb } from "../process-stats.js";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { loadOrCreateCa } from "../../src/ca/certificate-authority.js";
import { applyCapture, captureSupport } from "../../src/capture/iptables.js";
import { bridgeAddress, createPod, type Pod, type PodNetworkOptions } from "../../src/capture/pod-network.js";
import { DEFAULT_PROXY_UID, SIDECAR_ADMIN_PORT, sidecarEnvoyOptions } from "../../src/capture/sidecar.js";
import { renderBootstrap } from "../../src/envoy/bootstrap.js";
import { startEnvoy, type ConfigDump, type EnvoyProcess } from "../../src/envoy/envoy-process.js";
import { findEnvoyBinary } from "../../src/envoy/find-envoy.js";
import { silentLogger } from "../../src/log/logger.js";
import { NODE_METADATA } from "../../src/model/proxy.js";
import { startMeshRunner, type MeshRunner } from "../../src/runner/mesh-runner.js";
import { waitForAllSynced } from "../../src/runner/wait-for-sync.js";
import { EXTRAS, WEFT_LIKE, isExtra, minimalClientBootstrap, minimalServerBootstrap, type CertFiles, type Extra } from "./minimal-envoy.js";
import { summarizeDump, diffSummaries, type EnvoyConfigSummary } from "./config-diff.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const GO_DIR = path.join(ROOT, "bench/go");
const HTTPLOAD = path.join(GO_DIR, "bin", "httpload");
const list = (v: string | undefined, d: string) => (v ?? d).split(",").map((s) => s.trim()).filter(Boolean);
const PAIRS = Number(process.env.BENCH_PAIRS ?? 5);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 30);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 5);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const CONNS = Number(process.env.BENCH_CONNS ?? 16);
const PEER_AUTH = process.env.BENCH_PEER_AUTH ?? "";
/** Result files: <OUT>.json and <OUT>.md, relative to the repository root unless absolute. */
const OUT = path.resolve(ROOT, process.env.BENCH_OUT ?? "bench/results/dataplane");
const KEEP_DUMPS = !!process.env.BENCH_KEEP_DUMPS;
type Kind = "direct" | "weft" | "minimal";
const KINDS = list(process.env.BENCH_CONFIGS, "direct,weft,minimal") as Kind[];
const EXTRA_LIST = list(process.env.BENCH_MINIMAL_EXTRAS, "").flatMap((e) => (e === "weftlike" ? [...WEFT_LIKE] : [e]));
for (const k of KINDS) if (!["direct", "weft", "minimal"].includes(k)) throw new Error(`BENCH_CONFIGS: unknown set-up "${k}" (direct, weft, minimal)`);
for (const e of EXTRA_LIST) if (!isExtra(e)) throw new Error(`BENCH_MINIMAL_EXTRAS: unknown extra "${e}" (${Object.keys(EXTRAS).join(", ")})`);
const MINIMAL_EXTRAS = new Set(EXTRA_LIST as Extra[]);
if (!["", "STRICT", "PERMISSIVE"].includes(PEER_AUTH)) throw new Error(`BENCH_PEER_AUTH: STRICT, PERMISSIVE or unset, not "${PEER_AUTH}"`);

const NET: PodNetworkOptions = { bridge: "dp0", cidr: "10.86.0.0/24", prefix: "dp-" };
const APP_PORT = 8080;
const SERVICE_VIP = "240.240.0.10";
const SERVICE_HOST = "server.default.svc.cluster.local";
const TRUST_DOMAIN = "cluster.local";

function log(msg: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// Load generator and upstream (bench/go/httpload), inside pods

interface LoadResult {
  scheduled: number;
  requests: number;
  errors: number;
  non2xx: number;
  achievedRps: number;
  reconnects: number;
  bodyBytes: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  schedLagP50Ms: number;
  schedLagP99Ms: number;
  firstError?: string;
}

function loadArgs(target: string, host: string | undefined, o: { rate: number; conns: number; durationS: number; warmupS: number }): string[] {
  return [HTTPLOAD, "-target", target, ...(host ? ["-host", host] : []), "-c", String(o.conns), "-rate", String(o.rate), "-duration", `${o.durationS}s`, "-warmup", `${o.warmupS}s`, "-timeout", "5s"];
}

/** Runs httpload in `pod`; calls onMark("measure-start" | "measure-end") as the window opens and closes. */
function runLoad(pod: Pod, args: string[], onMark: (mark: string) => void, timeoutMs: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const proc = pod.exec(args);
    let stderr = "";
    let result: LoadResult | undefined;
    proc.stderr!.on("data", (d) => (stderr += d));
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      if (line.startsWith("{")) result = JSON.parse(line) as LoadResult;
      else if (line.startsWith("measure-")) onMark(line.trim());
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    proc.on("close", (code) => {
      clearTimeout(timer);
      if (result) resolve(result);
      else reject(new Error(`httpload in ${pod.netns} exited (${code}) without a result: ${stderr.trim()}`));
    });
  });
}

async function startUpstream(pod: Pod): Promise<ChildProcess> {
  const proc = pod.exec([HTTPLOAD, "-serve", `0.0.0.0:${APP_PORT}`, "-size", "1024", "-lifetime", "30m"]);
  let stderr = "";
  proc.stderr!.on("data", (d) => (stderr += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`upstream not ready in 10 s: ${stderr}`)), 10_000);
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      if (line.trim() === "ready") {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.on("close", (code) => {
      clearTimeout(timer);
      reject(new Error(`upstream exited (${code}): ${stderr}`));
    });
  });
  return proc;
}

/** Small loads until one passes with no error and only 2xx (the path is up end to end). */
async function waitForPath(pod: Pod, target: string, host: string | undefined): Promise<void> {
  let last = "";
  for (let i = 0; i < 30; i++) {
    try {
      const r = await runLoad(pod, loadArgs(target, host, { rate: 50, conns: 1, durationS: 0.2, warmupS: 0 }), () => {}, 15_000);
      if (r.errors === 0 && r.non2xx === 0 && r.requests > 0) return;
      last = `errors=${r.errors} non2xx=${r.non2xx} ${r.firstError ?? ""}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(300);
  }
  throw new Error(`the path ${target} never answered 200 from ${pod.netns}: ${last}`);
}

// ---------------------------------------------------------------------------------------
// Set-ups

interface Setup {
  target: string;
  host?: string;
  envoys: { role: "client" | "server"; envoy: EnvoyProcess }[];
  close(): Promise<void>;
}

function meshYaml(client: Pod, server: Pod): string {
  const peerAuth = PEER_AUTH
    ? `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: default }
spec: { mtls: { mode: ${PEER_AUTH} } }
`
    : "";
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: server, namespace: default }
spec:
  hosts: [${SERVICE_HOST}]
  addresses: [${SERVICE_VIP}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${APP_PORT}, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: server } }
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
${peerAuth}`;
}

async function setupWeft(client: Pod, server: Pod, tmp: string): Promise<Setup> {
  const stateDir = path.join(tmp, "state");
  const configDir = path.join(tmp, "config");
  await mkdir(stateDir, { recursive: true });
  await mkdir(configDir, { recursive: true });
  await writeFile(path.join(configDir, "mesh.yaml"), meshYaml(client, server));
  const envoys: Setup["envoys"] = [];
  let runner: MeshRunner | undefined;
  const close = async () => {
    await Promise.all(envoys.map((e) => e.envoy.stop()));
    await runner?.close(200);
  };
  try {
    runner = await startMeshRunner({
      logger: silentLogger(),
      xdsAddress: "0.0.0.0",
      xdsPort: 0,
      adminAddress: "127.0.0.1",
      adminPort: 0,
      sources: [new FileSource(configDir)],
      security: { stateDir, servingNames: { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", bridgeAddress(NET)] } },
    });
    const sec = runner.security!;
    for (const pod of [client, server]) await applyCapture(pod.netns, { proxyUid: DEFAULT_PROXY_UID });
    for (const [role, pod] of [["server", server], ["client", client]] as const) {
      const metadata = {
        [NODE_METADATA.namespace]: "default",
        [NODE_METADATA.labels]: JSON.stringify({ app: role }),
        [NODE_METADATA.interceptionMode]: "REDIRECT",
      };
      const bootstrapYaml = renderBootstrap({
        nodeId: `sidecar~${pod.ip}~${role}.default~default.svc.cluster.local`,
        cluster: role,
        metadata,
        xdsAddress: bridgeAddress(NET),
        xdsPort: runner.cp.xdsPort,
        adminAddress: pod.ip,
        adminPort: SIDECAR_ADMIN_PORT,
        xdsToken: sec.credentials.ensure({ namespace: "default", name: role }),
        xdsTls: { caFile: sec.trustBundleFile, sni: sec.serverName },
      });
      envoys.push({ role, envoy: await startEnvoy({ bootstrapYaml, ...sidecarEnvoyOptions(pod), waitForLive: true, readyTimeoutMs: 30_000 }) });
    }
    const r = runner;
    if (!(await waitForAllSynced(r.cp.xds.registry, (key) => r.cp.cache.get(key), 20_000))) throw new Error("weft: the sidecars did not ACK their config within 20 s");
    return { target: `http://${SERVICE_VIP}:${APP_PORT}/`, host: `${SERVICE_HOST}:${APP_PORT}`, envoys, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Certificates for the minimal set-up: Weft's CA (a fresh root, default ECDSA P-256), written to files Envoy (uid 1337) can read. */
async function minimalCerts(tmp: string): Promise<{ client: CertFiles; server: CertFiles }> {
  const ca = await loadOrCreateCa({ dir: path.join(tmp, "ca"), trustDomain: TRUST_DOMAIN });
  const dir = path.join(tmp, "certs");
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755);
  const trustedCa = path.join(dir, "root-cert.pem");
  await writeFile(trustedCa, ca.trustBundlePem(), { mode: 0o644 });
  const out: Record<string, CertFiles> = {};
  for (const who of ["client", "server"]) {
    const cert = await ca.issueWorkloadCertificate({ namespace: "default", serviceAccount: `${who}-sa` });
    const certChain = path.join(dir, `${who}-cert-chain.pem`);
    const privateKey = path.join(dir, `${who}-key.pem`);
    await writeFile(certChain, cert.certChainPem, { mode: 0o644 });
    await writeFile(privateKey, cert.privateKeyPem, { mode: 0o600 });
    await chown(privateKey, DEFAULT_PROXY_UID, DEFAULT_PROXY_UID);
    out[who] = { certChain, privateKey, trustedCa };
  }
  return { client: out.client!, server: out.server! };
}

async function setupMinimal(client: Pod, server: Pod, tmp: string): Promise<Setup> {
  const certs = await minimalCerts(tmp);
  const envoys: Setup["envoys"] = [];
  const close = async () => {
    await Promise.all(envoys.map((e) => e.envoy.stop()));
  };
  try {
    for (const pod of [client, server]) await applyCapture(pod.netns, { proxyUid: DEFAULT_PROXY_UID });
    const serverBootstrap = minimalServerBootstrap({ podIp: server.ip, adminPort: SIDECAR_ADMIN_PORT, appPort: APP_PORT, certs: certs.server, extras: MINIMAL_EXTRAS });
    envoys.push({ role: "server", envoy: await startEnvoy({ bootstrapYaml: JSON.stringify(serverBootstrap), ...sidecarEnvoyOptions(server) }) });
    const clientBootstrap = minimalClientBootstrap({
      podIp: client.ip,
      adminPort: SIDECAR_ADMIN_PORT,
      serverIp: server.ip,
      serverPort: APP_PORT,
      serverSpiffeId: `spiffe://${TRUST_DOMAIN}/ns/default/sa/server-sa`,
      certs: certs.client,
      extras: MINIMAL_EXTRAS,
    });
    envoys.push({ role: "client", envoy: await startEnvoy({ bootstrapYaml: JSON.stringify(clientBootstrap), ...sidecarEnvoyOptions(client) }) });
    return { target: `http://${SERVICE_VIP}:${APP_PORT}/`, host: `${SERVICE_HOST}:${APP_PORT}`, envoys, close };
  } catch (err) {
    await close();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------
// One run

interface EnvoyMeasure {
  role: "client" | "server";
  cpuS: number;
  rssMB: number;
  hwmMB: number;
  /** Sanity: TLS handshakes the server sidecar's listeners completed; upstream HTTP/1 and HTTP/2 connections of the client sidecar. */
  stats: Record<string, number>;
}

interface Run extends LoadResult {
  kind: Kind;
  pair: number;
  /** CPU-seconds of both Envoys over the recorded window (0 for direct). */
  envoyCpuS: number;
  envoys: EnvoyMeasure[];
  upstreamCpuS: number;
}

const dumps = new Map<string, ConfigDump>();

async function envoyStats(envoy: EnvoyProcess, role: "client" | "server"): Promise<Record<string, number>> {
  const stats = await envoy.stats().catch(() => new Map<string, number>());
  const out: Record<string, number> = {};
  const sum = (re: RegExp) => [...stats.entries()].filter(([k]) => re.test(k)).reduce((a, [, v]) => a + v, 0);
  if (role === "server") {
    out.listenerSslHandshakes = sum(/^listener\..*\.ssl\.handshake$/);
    out.downstreamCxTotal = sum(/^http\.(?!admin\.).*\.downstream_cx_total$/);
  } else {
    // Not the xds-grpc cluster (HTTP/2 + TLS to the control plane).
    out.upstreamHttp1Cx = sum(/^cluster\.(?!xds-grpc\.).*\.upstream_cx_http1_total$/);
    out.upstreamHttp2Cx = sum(/^cluster\.(?!xds-grpc\.).*\.upstream_cx_http2_total$/);
    out.upstreamSslHandshakes = sum(/^cluster\.(?!xds-grpc\.).*\.ssl\.handshake$/);
  }
  out.downstreamRq2xx = sum(/^http\.(?!admin\.).*\.downstream_rq_2xx$/);
  return out;
}

async function oneRun(kind: Kind, pair: number): Promise<Run> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), `weft-dp-${kind}-`));
  await chmod(tmp, 0o711); // the sidecars (uid 1337) read the trust bundle / certificates below it
  const pods: Pod[] = [];
  let setup: Setup | undefined;
  let upstream: ChildProcess | undefined;
  try {
    const client = await createPod("client", NET);
    pods.push(client);
    const server = await createPod("server", NET);
    pods.push(server);
    upstream = await startUpstream(server);
    if (kind === "weft") setup = await setupWeft(client, server, tmp);
    else if (kind === "minimal") setup = await setupMinimal(client, server, tmp);
    const target = setup?.target ?? `http://${server.ip}:${APP_PORT}/`;
    const host = setup?.host;
    await waitForPath(client, target, host);
    if (setup && pair === 0) for (const e of setup.envoys) dumps.set(`${kind}-${e.role}`, await e.envoy.configDump());

    const envoys = setup?.envoys ?? [];
    const pids = envoys.map((e) => e.envoy.pid);
    let cpuStart: number[] = [];
    let cpuEnd: number[] = [];
    let upStart = 0;
    let upEnd = 0;
    const r = await runLoad(
      client,
      loadArgs(target, host, { rate: RATE, conns: CONNS, durationS: DURATION_S, warmupS: WARMUP_S }),
      (mark) => {
        if (mark === "measure-start") {
          cpuStart = pids.map(cpuSeconds);
          upStart = cpuSeconds(upstream!.pid!);
        } else if (mark === "measure-end") {
          cpuEnd = pids.map(cpuSeconds);
          upEnd = cpuSeconds(upstream!.pid!);
        }
      },
      (DURATION_S + WARMUP_S + 60) * 1000,
    );
    const measures: EnvoyMeasure[] = [];
    for (const [i, e] of envoys.entries()) {
      measures.push({
        role: e.role,
        cpuS: (cpuEnd[i] ?? NaN) - (cpuStart[i] ?? NaN),
        rssMB: statusKb(e.envoy.pid, "VmRSS") / 1024,
        hwmMB: statusKb(e.envoy.pid, "VmHWM") / 1024,
        stats: await envoyStats(e.envoy, e.role),
      });
    }
    return { ...r, kind, pair, envoyCpuS: measures.reduce((a, m) => a + m.cpuS, 0), envoys: measures, upstreamCpuS: upEnd - upStart };
  } finally {
    await setup?.close().catch((err: Error) => log(`cleanup (${kind}): ${err.message}`));
    upstream?.kill("SIGKILL");
    for (const p of pods.reverse()) await p.destroy().catch((err: Error) => log(`destroying ${p.netns}: ${err.message}`));
    await rm(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// Summary

const median = (xs: number[]) => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const range = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x));
  return s.length ? [Math.min(...s), Math.max(...s)] : [NaN, NaN];
};
const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "—");

/** Round `pair`'s order: weft and minimal swap places every round; direct moves too. */
function order(pair: number): Kind[] {
  const orders: Kind[][] = [
    ["direct", "weft", "minimal"],
    ["direct", "minimal", "weft"],
    ["weft", "minimal", "direct"],
    ["minimal", "weft", "direct"],
    ["weft", "direct", "minimal"],
    ["minimal", "direct", "weft"],
  ];
  return orders[pair % orders.length]!.filter((k) => KINDS.includes(k));
}

async function main(): Promise<void> {
  const support = await captureSupport();
  if (!support.transparent) throw new Error(`transparent capture is not possible here: ${support.reason}`);
  log(`building bench/go/httpload`);
  execFileSync("go", ["build", "-o", HTTPLOAD, "./httpload"], { cwd: GO_DIR, stdio: "inherit" });
  const envoyBin = await findEnvoyBinary();
  const versionText = execFileSync(envoyBin, ["--version"]).toString();
  const envoyVersion = /version:\s*(\S+)/.exec(versionText)?.[1] ?? versionText.trim();
  log(`envoy: ${envoyVersion}`);
  log(`${PAIRS} rounds × [${KINDS.join(", ")}], ${RATE} rps, ${CONNS} connections, warm-up ${WARMUP_S} s, recorded ${DURATION_S} s` +
    `${PEER_AUTH ? `, PeerAuthentication ${PEER_AUTH}` : ""}${MINIMAL_EXTRAS.size ? `, minimal + ${[...MINIMAL_EXTRAS].join("+")}` : ""}`);

  const runs: Run[] = [];
  for (let pair = 0; pair < PAIRS; pair++)
    for (const kind of order(pair)) {
      const r = await oneRun(kind, pair);
      runs.push(r);
      const env = r.envoys.map((e) => `${e.role} cpu=${f(e.cpuS, 2)}s rss=${f(e.rssMB)}MB hwm=${f(e.hwmMB)}MB`).join("; ");
      log(`round ${pair + 1}/${PAIRS} ${kind}: ${r.requests}/${r.scheduled} ok, errors=${r.errors} non2xx=${r.non2xx} rps=${f(r.achievedRps)} ` +
        `p50=${f(r.p50Ms, 3)} p90=${f(r.p90Ms, 3)} p99=${f(r.p99Ms, 3)} p999=${f(r.p999Ms, 3)} max=${f(r.maxMs, 2)} ms lag50=${f(r.schedLagP50Ms, 3)}` +
        `${env ? ` | ${env}` : ""}${r.firstError ? ` | first error: ${r.firstError}` : ""}`);
    }

  // Summary per set-up, and per-round comparisons.
  const pcts = ["p50Ms", "p90Ms", "p99Ms", "p999Ms"] as const;
  const byKind = (k: Kind) => runs.filter((r) => r.kind === k);
  const inPair = (k: Kind, p: number) => runs.find((r) => r.kind === k && r.pair === p);
  const pairsIdx = [...Array(PAIRS).keys()];
  const summary = KINDS.map((k) => {
    const rs = byKind(k);
    const row: Record<string, unknown> = { kind: k, runs: rs.length, errors: rs.reduce((a, r) => a + r.errors + r.non2xx, 0), achievedRps: median(rs.map((r) => r.achievedRps)) };
    for (const m of pcts) row[m] = median(rs.map((r) => r[m]));
    if (k !== "direct") {
      for (const m of ["p50Ms", "p90Ms", "p99Ms"] as const) {
        const added = pairsIdx.map((p) => {
          const a = inPair(k, p);
          const d = inPair("direct", p);
          return a && d ? a[m] - d[m] : NaN;
        });
        row[`added_${m}`] = { median: median(added), range: range(added), perRound: added };
      }
      row.envoyCpuS = median(rs.map((r) => r.envoyCpuS));
      for (const role of ["client", "server"] as const) {
        row[`${role}CpuS`] = median(rs.map((r) => r.envoys.find((e) => e.role === role)?.cpuS ?? NaN));
        row[`${role}RssMB`] = median(rs.map((r) => r.envoys.find((e) => e.role === role)?.rssMB ?? NaN));
        row[`${role}HwmMB`] = median(rs.map((r) => r.envoys.find((e) => e.role === role)?.hwmMB ?? NaN));
      }
      row.cpuMsPerRequest = median(rs.map((r) => (r.envoyCpuS * 1000) / Math.max(1, r.requests)));
    }
    return row;
  });
  const ratios: Record<string, { median: number; range: number[]; perRound: number[] }> = {};
  if (KINDS.includes("weft") && KINDS.includes("minimal")) {
    for (const m of ["p50Ms", "p90Ms", "p99Ms", "envoyCpuS"] as const) {
      const rs = pairsIdx.map((p) => {
        const w = inPair("weft", p);
        const n = inPair("minimal", p);
        return w && n ? w[m] / n[m] : NaN;
      });
      ratios[m] = { median: median(rs), range: range(rs), perRound: rs };
    }
  }

  // What Weft's config has that the minimal one does not.
  const summaries: Record<string, EnvoyConfigSummary> = {};
  for (const [key, dump] of dumps) summaries[key] = summarizeDump(dump, key.endsWith("-client") ? "client" : "server", APP_PORT);
  const diff = {
    client: summaries["weft-client"] && summaries["minimal-client"] ? diffSummaries(summaries["weft-client"], summaries["minimal-client"]) : [],
    server: summaries["weft-server"] && summaries["minimal-server"] ? diffSummaries(summaries["weft-server"], summaries["minimal-server"]) : [],
  };
  if (KEEP_DUMPS && dumps.size) {
    const dir = await mkdtemp(path.join(os.tmpdir(), "weft-dp-dumps-"));
    for (const [key, dump] of dumps) writeFileSync(path.join(dir, `${key}.json`), JSON.stringify(dump, null, 2));
    log(`config dumps kept in ${dir}`);
  }

  let commit = "?";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT }).toString().trim() + " (+ uncommitted changes)";
  } catch {}
  const envVars = `BENCH_PAIRS=${PAIRS} BENCH_DURATION_S=${DURATION_S} BENCH_WARMUP_S=${WARMUP_S} BENCH_RATE=${RATE} BENCH_CONNS=${CONNS} BENCH_CONFIGS=${KINDS.join(",")}` +
    `${PEER_AUTH ? ` BENCH_PEER_AUTH=${PEER_AUTH}` : ""}${MINIMAL_EXTRAS.size ? ` BENCH_MINIMAL_EXTRAS=${[...MINIMAL_EXTRAS].join(",")}` : ""}${process.env.BENCH_OUT ? ` BENCH_OUT=${process.env.BENCH_OUT}` : ""}`;
  const env = {
    date: new Date().toISOString(),
    machine: `${os.cpus()[0]?.model ?? "?"} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}`,
    loadAverageAtEnd: os.loadavg(),
    envoy: envoyVersion,
    envoyBinary: envoyBin,
    node: process.version,
    go: execFileSync("go", ["version"]).toString().trim(),
    weftCommit: commit,
    load: { rate: RATE, connections: CONNS, durationS: DURATION_S, warmupS: WARMUP_S, responseBytes: 1024, protocol: "HTTP/1.1 keep-alive" },
    pairs: PAIRS,
    configs: KINDS,
    peerAuthentication: PEER_AUTH || "none (Weft default: PERMISSIVE)",
    minimalExtras: [...MINIMAL_EXTRAS].map((e) => `${e}: ${EXTRAS[e]}`),
    envoyFlags: "--concurrency 1 --disable-hot-restart --drain-time-s 1 --drain-strategy immediate -l info (startEnvoy defaults + sidecarEnvoyOptions, both set-ups)",
    commands: {
      runner: `${envVars} npx tsx bench/dataplane/run.ts`,
      upstream: `ip netns exec dp-server bench/go/bin/httpload -serve 0.0.0.0:${APP_PORT} -size 1024 -lifetime 30m`,
      load: `ip netns exec dp-client ${loadArgs("http://TARGET/", "HOST", { rate: RATE, conns: CONNS, durationS: DURATION_S, warmupS: WARMUP_S }).map((a) => a.replace(ROOT + "/", "")).join(" ")}`,
      targets: `direct: http://<dp-server ip>:${APP_PORT}/ (no -host); weft and minimal: http://${SERVICE_VIP}:${APP_PORT}/ -host ${SERVICE_HOST}:${APP_PORT} (captured to the client sidecar)`,
    },
  };
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(`${OUT}.json`, JSON.stringify({ env, runs, summary, ratios, configDiff: diff, configSummaries: summaries }, null, 2) + "\n");

  const md: string[] = [];
  md.push("# Data-plane overhead: Weft's sidecar config vs a minimal hand-written one vs no proxy", "");
  md.push(`- Date: ${env.date}`, `- Machine: ${env.machine}; load average at the end ${env.loadAverageAtEnd.map((x) => x.toFixed(2)).join(" ")}`);
  md.push(`- Envoy: ${envoyVersion}; Weft: ${commit}, Node ${process.version}; ${env.go}`);
  md.push(`- Load: bench/go/httpload, ${RATE} rps fixed arrival rate (open model; latency from the scheduled send time, so queueing is counted), ${CONNS} HTTP/1.1 keep-alive connections, 1 KiB responses from a Go upstream, ${WARMUP_S} s warm-up (not recorded) + ${DURATION_S} s recorded.`);
  md.push(`- Path: client pod (netns dp-client) -> server pod (dp-server), veths on a private bridge. direct = no Envoy, no capture. weft = Istio-style capture + Weft sidecars configured over xDS by a Weft control plane with --security (auto mTLS; PeerAuthentication: ${env.peerAuthentication}). minimal = same capture + static Envoys (bench/dataplane/minimal-envoy.ts): outbound 15001 original_dst -> HCM(router) -> mTLS cluster; inbound 15006 TLS (client cert required) -> HCM(router) -> 127.0.0.1:${APP_PORT}; certificates from Weft's CA (ECDSA P-256) in files${MINIMAL_EXTRAS.size ? `; with extras: ${env.minimalExtras.join("; ")}` : ""}.`);
  md.push(`- Envoy flags (both): ${env.envoyFlags}.`);
  md.push(`- Method: ${PAIRS} rounds; each round runs every set-up once with fresh pods, Envoys, control plane and upstream; the order changes every round (weft and minimal swap places each round). "Added" = per-round difference to direct; "ratio" = median of per-round weft/minimal ratios, [min–max].`);
  md.push(`- Envoy CPU = utime+stime of both Envoys (/proc/<pid>/stat) from measure-start to measure-end of the load generator (the recorded window). RSS = VmRSS after the load; HWM = VmHWM.`);
  md.push("", "Commands:", "", "```", ...Object.values(env.commands), "```", "");
  md.push("## Summary (medians over rounds)", "");
  md.push("| set-up | runs | errors | rps | p50 ms | p90 ms | p99 ms | p99.9 ms | added p50 ms | added p90 ms | added p99 ms | Envoy CPU s (client+server) | CPU ms/request | RSS MB client / server | HWM MB client / server |");
  md.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const row of summary as Record<string, any>[]) {
    const added = (m: string) => (Number.isFinite(row[`added_${m}`]?.median) ? `${f(row[`added_${m}`].median, 3)} [${f(row[`added_${m}`].range[0], 3)}–${f(row[`added_${m}`].range[1], 3)}]` : "—");
    md.push(`| ${row.kind} | ${row.runs} | ${row.errors} | ${f(row.achievedRps)} | ${f(row.p50Ms, 3)} | ${f(row.p90Ms, 3)} | ${f(row.p99Ms, 3)} | ${f(row.p999Ms, 3)} | ${added("p50Ms")} | ${added("p90Ms")} | ${added("p99Ms")} | ` +
      `${row.kind === "direct" ? "—" : `${f(row.envoyCpuS, 2)} (${f(row.clientCpuS, 2)} + ${f(row.serverCpuS, 2)})`} | ${row.kind === "direct" ? "—" : f(row.cpuMsPerRequest, 3)} | ` +
      `${row.kind === "direct" ? "—" : `${f(row.clientRssMB)} / ${f(row.serverRssMB)}`} | ${row.kind === "direct" ? "—" : `${f(row.clientHwmMB)} / ${f(row.serverHwmMB)}`} |`);
  }
  if (ratios.p99Ms) {
    md.push("", "Weft / minimal, per round (median [min–max]); the team's target is p99 within 5 % (ratio ≤ 1.05):", "");
    md.push("| metric | ratio | per round |", "|---|---|---|");
    for (const [m, r] of Object.entries(ratios)) md.push(`| ${m} | **${f(r.median, 3)}** [${f(r.range[0]!, 3)}–${f(r.range[1]!, 3)}] | ${r.perRound.map((x) => f(x, 3)).join(", ")} |`);
  }
  md.push("", "## Per run", "", "| round | set-up | requests | errors | non-2xx | rps | mean | p50 | p90 | p99 | p99.9 | max | sched lag p50/p99 | Envoy CPU s client / server | RSS MB client / server | HWM MB client / server | sanity stats |");
  md.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of runs) {
    const e = (role: string, k: "cpuS" | "rssMB" | "hwmMB", d: number) => f(r.envoys.find((x) => x.role === role)?.[k] ?? NaN, d);
    const stats = r.envoys.map((x) => `${x.role}: ${Object.entries(x.stats).map(([k, v]) => `${k}=${v}`).join(" ")}`).join("; ");
    md.push(`| ${r.pair + 1} | ${r.kind} | ${r.requests} | ${r.errors} | ${r.non2xx} | ${f(r.achievedRps)} | ${f(r.meanMs, 3)} | ${f(r.p50Ms, 3)} | ${f(r.p90Ms, 3)} | ${f(r.p99Ms, 3)} | ${f(r.p999Ms, 3)} | ${f(r.maxMs, 2)} | ${f(r.schedLagP50Ms, 3)} / ${f(r.schedLagP99Ms, 3)} | ` +
      `${r.envoys.length ? `${e("client", "cpuS", 2)} / ${e("server", "cpuS", 2)}` : "—"} | ${r.envoys.length ? `${e("client", "rssMB", 1)} / ${e("server", "rssMB", 1)}` : "—"} | ${r.envoys.length ? `${e("client", "hwmMB", 1)} / ${e("server", "hwmMB", 1)}` : "—"} | ${stats || "—"} |`);
  }
  if (diff.client.length || diff.server.length) {
    md.push("", "## What Weft's config has that the minimal one does not (from config_dump, round 1)", "");
    md.push("On the path the load takes (the outbound listener/filter chain and cluster in the client sidecar, the inbound filter chain and cluster in the server sidecar), then the rest of the config.", "");
    for (const role of ["client", "server"] as const) {
      md.push(`### ${role} sidecar`, "");
      for (const line of diff[role]) md.push(`- ${line}`);
      md.push("");
    }
  }
  writeFileSync(`${OUT}.md`, md.join("\n") + "\n");
  log(`wrote ${OUT.startsWith(ROOT + "/") ? path.relative(ROOT, OUT) : OUT}.md and .json`);
}

// Pods are destroyed in each run's finally block; on a signal, destroy them too (the pod module's
// own exit hook covers normal exit).
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    process.exit(130); // exit hooks of pod-network and envoy-process kill Envoys and remove the dp- pods
  });
}

await main();
