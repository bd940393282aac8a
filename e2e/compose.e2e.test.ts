// examples/compose/compose.yaml run without a Docker engine: each compose service's command is
// run as compose would, with real Envoy and iptables capture — the control plane, every app and
// the ingress gateway in their own network namespace at their compose address, the `-init`
// service in its app's namespace (capture rules), the `-sidecar` (upstream Envoy, uid 1337)
// there too. Volumes are bind-mapped (a container path becomes a host path), compose's DNS
// (service name -> address) and extra_hosts become the namespace's hosts file. Only images and
// the Docker network are not what compose would use. Traffic then goes through the gateway, as
// `curl http://127.0.0.1:8080/productpage` would with `docker compose up`.
//
//   npm run build && flock /tmp/weft-pods.lock npx vitest run e2e/compose.e2e.test.ts
import type { ChildProcess } from "node:child_process";
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { applyCapture, captureSupport } from "../src/capture/iptables.js";
import { cleanupLeftovers, createPod, type Pod } from "../src/capture/pod-network.js";
import { sidecarEnvoyOptions } from "../src/capture/sidecar.js";
import { COMPOSE } from "../src/demo/compose-topology.js";
import { startEnvoy, type EnvoyProcess } from "../src/envoy/envoy-process.js";
import { httpGet } from "./harness/http.js";

const support = await captureSupport();
const skip = !support.transparent;
if (skip) process.stderr.write(`compose e2e skipped: ${support.reason}\n`);

const repo = path.resolve(import.meta.dirname, "..");
const composeDir = path.join(repo, "examples/compose");
const weftCli = path.join(repo, "dist/src/cli/main.js");
const NETWORK = { bridge: "weftc0", cidr: COMPOSE.subnet, prefix: "wc-" };

interface ComposeService {
  image: string;
  command?: string[];
  user?: string;
  network_mode?: string;
  networks?: { mesh?: { ipv4_address?: string } };
  volumes?: string[];
  extra_hosts?: string[];
  cap_add?: string[];
}

describe.skipIf(skip)("examples/compose run as compose would (real Envoy, capture, no Docker engine)", () => {
  const compose = parse(readFileSync(path.join(composeDir, "compose.yaml"), "utf8")) as { services: Record<string, ComposeService> };
  const services = compose.services;
  let root: string;
  const pods = new Map<string, Pod>();
  const processes: ChildProcess[] = [];
  const envoys: EnvoyProcess[] = [];
  const hostsDirs: string[] = [];
  let weftLog = "";

  /** A compose volume ("./x:/path[:ro]" or "named:/path") as [container path, host path]. */
  const mounts = (svc: ComposeService): [string, string][] =>
    (svc.volumes ?? []).map((v) => {
      const [src, dst] = v.split(":") as [string, string];
      return [dst, src.startsWith("/") ? src : src.startsWith(".") ? path.join(composeDir, src) : path.join(root, "volumes", src)];
    });
  const mapPaths = (svc: ComposeService, text: string): string => mounts(svc).reduce((t, [dst, host]) => t.split(dst).join(host), text);
  const addressOf = (name: string): string => services[name]!.networks!.mesh!.ipv4_address!;
  /** The pod (network namespace) a service runs in: its own, or its network_mode's. */
  const podOf = (name: string): Pod => pods.get(services[name]!.network_mode?.replace(/^service:/, "") ?? name)!;

  async function podFor(name: string): Promise<Pod> {
    const svc = services[name]!;
    const pod = await createPod(name, { ...NETWORK, address: addressOf(name) });
    pods.set(name, pod);
    // compose's DNS (every service by name) and the service's extra_hosts.
    const names = Object.keys(services).filter((n) => services[n]!.networks?.mesh?.ipv4_address).map((n) => `${addressOf(n)} ${n}`);
    const extra = (svc.extra_hosts ?? []).map((h) => h.split(":")).map(([host, ip]) => `${ip} ${host}`);
    const dir = `/etc/netns/${pod.netns}`;
    mkdirSync(dir, { recursive: true });
    hostsDirs.push(dir);
    writeFileSync(`${dir}/hosts`, ["127.0.0.1 localhost", ...names, ...extra].join("\n") + "\n");
    return pod;
  }

  /** Runs a weft-image service's command in its pod; resolves once it printed `ready`. */
  function runWeft(name: string, ready: RegExp, uid?: number): Promise<void> {
    const svc = services[name]!;
    const argv = (svc.command ?? []).map((a) => mapPaths(svc, a));
    const child = podOf(name).exec([process.execPath, weftCli, ...argv], { stdio: ["ignore", "pipe", "pipe"], ...(uid !== undefined && { uid }) });
    processes.push(child);
    return new Promise((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`${name} did not print ${ready} within 60 s: ${out.slice(-2000)}`)), 60_000);
      const seen = (d: Buffer) => {
        out += d.toString();
        if (name === "weft") weftLog = out.slice(-20_000);
        if (ready.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on("data", seen);
      child.stderr?.on("data", seen);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code}): ${out.slice(-2000)}`));
      });
    });
  }

  async function runSidecar(name: string): Promise<void> {
    const svc = services[name]!;
    const [, file] = svc.command!;
    const bootstrapYaml = mapPaths(svc, readFileSync(mapPaths(svc, file!), "utf8"));
    const uid = Number(svc.user!.split(":")[0]);
    const pod = podOf(name);
    envoys.push(await startEnvoy({ bootstrapYaml, ...sidecarEnvoyOptions(pod, uid), name, logLevel: "info", extraArgs: svc.command!.slice(2), readyTimeoutMs: 60_000 }));
  }

  beforeAll(async () => {
    await cleanupLeftovers(NETWORK.prefix);
    root = mkdtempSync(path.join(tmpdir(), "weft-compose-"));
    // The named volume, owned by the uid the control plane and sidecars run as.
    const uid = Number(services.weft!.user!.split(":")[0]);
    const state = path.join(root, "volumes", "weft-state");
    mkdirSync(state, { recursive: true });
    for (const dir of [root, path.join(root, "volumes")]) chmodSync(dir, 0o755);
    chownSync(state, uid, uid);
    // The config volume is mounted read-only; weft reads it as uid 1337.
    const config = path.join(root, "config");
    cpSync(path.join(composeDir, "config"), config, { recursive: true });
    services.weft!.volumes = services.weft!.volumes!.map((v) => (v.startsWith("./config:") ? v.replace("./config", config) : v));

    await podFor("weft");
    await runWeft("weft", /weft control plane ready/, uid);
    for (const name of Object.keys(services).filter((n) => services[n]!.image === COMPOSE.weftImage && n !== "weft" && !services[n]!.network_mode)) {
      await podFor(name);
      await runWeft(name, /listening on/);
    }
    for (const name of Object.keys(services).filter((n) => n.endsWith("-init"))) {
      // `weft capture apply` in its app's namespace, as root with NET_ADMIN (what it prints: the rules).
      const svc = services[name]!;
      expect(svc.command!.slice(0, 2)).toEqual(["capture", "apply"]);
      expect(svc.cap_add).toEqual(["NET_ADMIN", "NET_RAW"]);
      await applyCapture(podOf(name).netns, { proxyUid: Number(svc.command![svc.command!.indexOf("--proxy-uid") + 1]) });
    }
    await podFor("ingressgateway");
    await Promise.all(Object.keys(services).filter((n) => n.endsWith("-sidecar") || n === "ingressgateway").map((n) => runSidecar(n)));
  }, 240_000);

  afterAll(async () => {
    await Promise.allSettled(envoys.map((e) => e.stop()));
    for (const p of processes) if (p.exitCode === null) p.kill("SIGKILL");
    await Promise.allSettled([...pods.values()].map((p) => p.destroy()));
    for (const d of hostsDirs) rmSync(d, { recursive: true, force: true });
    if (root) rmSync(root, { recursive: true, force: true });
  }, 60_000);

  it("serves the demo's traffic through the gateway with the compose bootstraps and config: reviews v1, jason gets v2", async () => {
    const url = `http://${addressOf("ingressgateway")}:${COMPOSE.ingressPort}/productpage`;
    const page = async (headers: Record<string, string> = {}) => {
      const res = await httpGet(url, { headers, timeoutMs: 5000 });
      expect(res.status).toBe(200);
      return JSON.parse(res.body) as { service: string; reviews: { version: string }; details: { service: string } };
    };
    // The first requests may meet a sidecar still receiving its endpoints: retried for 30 s.
    let first: Awaited<ReturnType<typeof page>> | undefined;
    let lastError: unknown;
    for (const until = Date.now() + 30_000; !first && Date.now() < until; ) first = await page().catch((e: unknown) => ((lastError = e), new Promise<undefined>((r) => setTimeout(() => r(undefined), 500))));
    if (!first) {
      const syncz = await httpGet(`http://${addressOf("weft")}:${COMPOSE.adminPort}/debug/syncz`, { timeoutMs: 5000 }).then((r) => r.body, (e: Error) => e.message);
      const gateway = envoys.find((e) => e.name === "ingressgateway");
      const listeners = await gateway?.configDump().then((d) => JSON.stringify(d.configs.slice(1)).slice(0, 3000), (e: Error) => e.message);
      const xds = await gateway?.stats("control_plane|xds|grpc").then((m) => JSON.stringify([...m].filter(([, v]) => v > 0)), (e: Error) => e.message);
      throw new Error(`the gateway never served /productpage: ${String(lastError)}\nsyncz: ${syncz.slice(0, 4000)}\ngateway config: ${listeners}\ngateway xDS stats: ${xds}\ngateway log: ${gateway?.logTail(15)}\nweft log: ${weftLog.slice(-3000)}`);
    }
    expect(first.service).toBe("productpage");
    expect(first.details.service).toBe("details");
    expect(first.reviews.version).toBe("v1");
    expect((await page({ "end-user": "jason" })).reviews.version).toBe("v2");
  });

  it("the sidecars got their certificates from the compose control plane (mTLS between workloads)", async () => {
    const productpage = envoys.find((e) => e.name === "productpage-v1-sidecar")!;
    const stats = await productpage.stats("ssl.handshake");
    expect([...stats.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });
});
