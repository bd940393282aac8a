// A real Kubernetes control plane for tests: etcd + kube-apiserver + kube-controller-manager on
// loopback, with free ports, a temp directory, fresh certificates and an admin token. No kubelet
// or scheduler: kubelet.ts plays both.
//
//   const cluster = await startKubernetes();          // ~3-6 s once the binaries are built
//   const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
//   ...
//   await cluster.stop();                               // kills the three, removes the directory
//
// Leftovers: every running cluster has an owner record (/run/weft/kubernetes/<name>.json: the
// owning process and the pids it started, with their start times). startKubernetes() first
// removes clusters whose owner died (a crashed or killed test run), as pod-network.ts does for pods.
// The children also get a parent-death signal (setpriv) so they die with the test process.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { request } from "node:https";
import { createServer, type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { randomBytes } from "node:crypto";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import {
  hasSetpriv, ownerAlive, ownerIdentity, processStartTime, runCommand, type CommandResult,
} from "../../src/capture/pod-network.js";
import { findKubernetesBinaries, type KubernetesBinaries } from "./binaries.js";
import { createClusterCertificates, type ClusterCertificates } from "./certificates.js";

export type ClusterComponent = "etcd" | "kube-apiserver" | "kube-controller-manager";

export interface StartKubernetesOptions {
  /** Extra kube-apiserver flags, e.g. ["--etcd-compaction-interval=10s"]. */
  apiserverArgs?: string[];
  /** Extra kube-controller-manager flags. */
  controllerManagerArgs?: string[];
  /** Wait for the controller-manager to create namespace default's ServiceAccount. Default true. */
  waitForControllers?: boolean;
  /** Keep the directory (logs, certificates, etcd data) after stop(). Default: $WEFT_K8S_KEEP is set. */
  keepDir?: boolean;
  /** Default 90 s (a loaded 2-core machine). */
  readyTimeoutMs?: number;
}

export interface TokenOptions {
  audiences?: string[];
  /** Default 3600 (the apiserver's minimum is 600). */
  expirationSeconds?: number;
  /** Bind the token to a pod: it stops being valid when that pod is deleted. */
  boundPod?: { name: string; uid: string };
}

export interface KubernetesCluster {
  /** "https://127.0.0.1:<port>" */
  readonly server: string;
  readonly kubeconfigPath: string;
  /** Loaded from kubeconfigPath; the identity is a system:masters token. */
  readonly kubeConfig: KubeConfig;
  readonly adminToken: string;
  /** The cluster CA (signs the serving certificate; also the cluster-signing CA). */
  readonly caFile: string;
  readonly certificates: ClusterCertificates;
  readonly dir: string;
  readonly binaries: KubernetesBinaries;
  /** The issuer and audience of service-account tokens. */
  readonly serviceAccountIssuer: string;
  /** Milliseconds from the call to startKubernetes() to ready. */
  readonly startupMs: number;
  pid(component: ClusterComponent): number | undefined;
  /** A service-account token through the TokenRequest API. */
  createToken(namespace: string, serviceAccount: string, opts?: TokenOptions): Promise<string>;
  /** Waits until the ServiceAccount exists (the controller-manager creates "default" in every namespace). */
  waitForServiceAccount(namespace: string, name?: string, timeoutMs?: number): Promise<void>;
  /** Runs our kubectl against the cluster. */
  kubectl(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<CommandResult>;
  /** Stops one component (SIGTERM, then SIGKILL after 5 s) and starts it again with the same flags and ports. */
  restart(component: ClusterComponent, opts?: { downMs?: number }): Promise<void>;
  /** etcd's client URL ("http://127.0.0.1:<port>"). */
  readonly etcdUrl: string;
  /**
   * Compacts etcd's history up to its current revision: a watch or list resumed from an older
   * resourceVersion then gets 410 Gone (once the apiserver's watch cache no longer covers it).
   * Returns the revision compacted to.
   */
  compactEtcd(): Promise<number>;
  /** The last lines of a component's log (for failure messages). */
  logTail(component: ClusterComponent, lines?: number): string;
  /** Kills every component and removes the directory. Idempotent. */
  stop(): Promise<void>;
}

export const SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local";
export const SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16";

// ---------------------------------------------------------------------------------------
// Owner records

function runDir(): string {
  return path.join(process.env.WEFT_RUN_DIR || "/run/weft", "kubernetes");
}

interface ProcessRecord {
  name: string;
  pid: number;
  startTime: string;
}

interface ClusterRecord {
  owner: { pid: number; startTime: string };
  dir: string;
  processes: ProcessRecord[];
}

function killRecorded(p: ProcessRecord): void {
  if (processStartTime(p.pid) !== p.startTime) return; // gone, or the pid was reused
  try {
    process.kill(p.pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/**
 * Removes clusters whose owning process is gone: kills their etcd / apiserver /
 * controller-manager (checked by start time, so a reused pid is left alone) and deletes their
 * directories. Clusters of live processes (a concurrent test run) are left alone.
 */
export async function cleanupKubernetesLeftovers(): Promise<string[]> {
  const removed: string[] = [];
  const dir = runDir();
  for (const file of await readdir(dir).catch(() => [] as string[])) {
    if (!file.endsWith(".json")) continue;
    const recordPath = path.join(dir, file);
    let record: ClusterRecord;
    try {
      record = JSON.parse(await readFile(recordPath, "utf8")) as ClusterRecord;
    } catch {
      await rm(recordPath, { force: true });
      continue;
    }
    if (record.owner && ownerAlive(record.owner)) continue;
    for (const p of record.processes ?? []) killRecorded(p);
    if (typeof record.dir === "string" && path.basename(record.dir).startsWith("weft-k8s-")) {
      await rm(record.dir, { recursive: true, force: true });
    }
    await rm(recordPath, { force: true });
    removed.push(record.dir);
  }
  return removed;
}

// ---------------------------------------------------------------------------------------
// Processes

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

class Component {
  child: ChildProcess | undefined;
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(
    readonly name: ClusterComponent,
    readonly argv: string[],
    readonly logFile: string,
    private readonly onChange: () => void,
  ) {}

  start(): void {
    const fd = openSync(this.logFile, "a");
    const argv = hasSetpriv() ? ["setpriv", "--pdeathsig", "KILL", "--", ...this.argv] : this.argv;
    try {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", fd, fd] });
      this.child = child;
      this.exited = undefined;
      child.on("error", () => {}); // reported through 'exit' / readiness
      child.on("exit", (code, signal) => {
        if (this.child === child) this.exited = { code, signal };
      });
    } finally {
      closeSync(fd);
    }
    this.onChange();
  }

  get pid(): number | undefined {
    return this.exited ? undefined : this.child?.pid;
  }

  /** SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs: number): Promise<void> {
    const child = this.child;
    if (!child || this.exited || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill(graceMs > 0 ? "SIGTERM" : "SIGKILL");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await gone;
    clearTimeout(timer);
  }

  killNow(): void {
    if (this.child && !this.exited) this.child.kill("SIGKILL");
  }

  tail(lines = 20): string {
    try {
      return readFileSync(this.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  describeExit(): string {
    return `${this.name} exited (${this.exited?.code ?? this.exited?.signal ?? "?"}); last lines of ${this.logFile}:\n${this.tail()}`;
  }
}

const liveClusters = new Set<ClusterImpl>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const cluster of liveClusters) cluster.stopNow();
  });
}

// ---------------------------------------------------------------------------------------
// The cluster

class ClusterImpl implements KubernetesCluster {
  readonly kubeConfig = new KubeConfig();
  startupMs = 0;
  private readonly components = new Map<ClusterComponent, Component>();
  private stopping: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    readonly server: string,
    readonly kubeconfigPath: string,
    readonly adminToken: string,
    readonly certificates: ClusterCertificates,
    readonly binaries: KubernetesBinaries,
    private readonly recordPath: string,
    private readonly keepDir: boolean,
    readonly etcdUrl: string,
  ) {}

  get caFile(): string {
    return this.certificates.caCert;
  }

  get serviceAccountIssuer(): string {
    return SERVICE_ACCOUNT_ISSUER;
  }

  add(name: ClusterComponent, argv: string[]): Component {
    const c = new Component(name, argv, path.join(this.dir, "logs", `${name}.log`), () => this.writeRecord());
    this.components.set(name, c);
    return c;
  }

  component(name: ClusterComponent): Component {
    const c = this.components.get(name);
    if (!c) throw new Error(`test cluster: no component ${name}`);
    return c;
  }

  pid(component: ClusterComponent): number | undefined {
    return this.components.get(component)?.pid;
  }

  writeRecord(): void {
    const record: ClusterRecord = {
      owner: ownerIdentity(),
      dir: this.dir,
      processes: [...this.components.values()].flatMap((c) => {
        const pid = c.pid;
        const startTime = pid === undefined ? undefined : processStartTime(pid);
        return pid !== undefined && startTime !== undefined ? [{ name: c.name, pid, startTime }] : [];
      }),
    };
    // Synchronous so the record is on disk before anything else can crash.
    try {
      mkdirSync(path.dirname(this.recordPath), { recursive: true });
      writeFileSync(this.recordPath + ".tmp", JSON.stringify(record) + "\n");
      renameSync(this.recordPath + ".tmp", this.recordPath);
    } catch {
      // best effort: the parent-death signal still stops the processes
    }
  }

  /** Throws with the log of any component that exited. */
  checkAlive(): void {
    for (const c of this.components.values()) if (c.exited) throw new Error(`test cluster: ${c.describeExit()}`);
  }

  async waitReady(deadline: number): Promise<void> {
    let last = "";
    while (Date.now() < deadline) {
      this.checkAlive();
      const result = await this.get("/readyz").catch((err: Error) => ({ status: 0, body: err.message }));
      if (result.status === 200) return;
      last = `${result.status} ${result.body.slice(0, 300)}`;
      await sleep(100);
    }
    throw new Error(`test cluster: kube-apiserver at ${this.server} not ready in time (last /readyz: ${last}); ` +
      `last lines of its log:\n${this.component("kube-apiserver").tail()}`);
  }

  get(pathname: string): Promise<{ status: number; body: string }> {
    const ca = readFileSync(this.certificates.caCert);
    return new Promise((resolve, reject) => {
      const req = request(`${this.server}${pathname}`, { ca, headers: { authorization: `Bearer ${this.adminToken}` }, timeout: 5000, agent: false }, (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", reject);
      req.end();
    });
  }

  async createToken(namespace: string, serviceAccount: string, opts: TokenOptions = {}): Promise<string> {
    const core = this.kubeConfig.makeApiClient(CoreV1Api);
    const result = await core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace,
      body: {
        spec: {
          audiences: opts.audiences ?? [SERVICE_ACCOUNT_ISSUER],
          expirationSeconds: opts.expirationSeconds ?? 3600,
          ...(opts.boundPod && { boundObjectRef: { apiVersion: "v1", kind: "Pod", name: opts.boundPod.name, uid: opts.boundPod.uid } }),
        },
      },
    });
    const token = result.status?.token;
    if (!token) throw new Error(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
    return token;
  }

  async waitForServiceAccount(namespace: string, name = "default", timeoutMs = 30_000): Promise<void> {
    const core = this.kubeConfig.makeApiClient(CoreV1Api);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await core.readNamespacedServiceAccount({ name, namespace });
        return;
      } catch (err) {
        if (Date.now() > deadline) {
          throw new Error(`test cluster: ServiceAccount ${namespace}/${name} did not appear in ${timeoutMs} ms ` +
            `(${(err as Error).message.split("\n")[0]}); kube-controller-manager log:\n${this.component("kube-controller-manager").tail()}`);
        }
        this.checkAlive();
        await sleep(100);
      }
    }
  }

  kubectl(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
    return runCommand([this.binaries.kubectl, `--kubeconfig=${this.kubeconfigPath}`, ...args], opts);
  }

  async restart(name: ClusterComponent, opts: { downMs?: number } = {}): Promise<void> {
    const c = this.component(name);
    await c.stop(5000);
    this.writeRecord();
    if (opts.downMs) await sleep(opts.downMs);
    c.start();
    const deadline = Date.now() + 90_000;
    if (name === "kube-apiserver" || name === "etcd") await this.waitReady(deadline);
  }

  async compactEtcd(): Promise<number> {
    // etcd's JSON gateway; keys and ranges are base64: "\0" to "\0" means every key.
    const range = await postJson(`${this.etcdUrl}/v3/kv/range`, { key: "AA==", range_end: "AA==", count_only: true }) as { header?: { revision?: string } };
    const revision = Number(range.header?.revision);
    if (!Number.isInteger(revision) || revision <= 0) throw new Error(`etcd at ${this.etcdUrl}: no revision in ${JSON.stringify(range)}`);
    await postJson(`${this.etcdUrl}/v3/kv/compaction`, { revision: String(revision), physical: true });
    return revision;
  }

  logTail(component: ClusterComponent, lines = 20): string {
    return this.component(component).tail(lines);
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const order: ClusterComponent[] = ["kube-controller-manager", "kube-apiserver", "etcd"];
    for (const name of order) await this.components.get(name)?.stop(2000);
    liveClusters.delete(this);
    if (this.keepDir) console.error(`test cluster: kept ${this.dir}`);
    else await rm(this.dir, { recursive: true, force: true });
    await rm(this.recordPath, { force: true });
  }

  /** Synchronous, for process exit. */
  stopNow(): void {
    for (const c of this.components.values()) c.killNow();
    if (!this.keepDir) rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.recordPath, { force: true });
  }
}

/** Starts etcd, kube-apiserver and kube-controller-manager; resolves once the apiserver is ready. */
export async function startKubernetes(opts: StartKubernetesOptions = {}): Promise<KubernetesCluster> {
  const started = Date.now();
  const binaries = findKubernetesBinaries();
  await cleanupKubernetesLeftovers();
  const dir = await mkdtemp(path.join(os.tmpdir(), "weft-k8s-"));
  const recordPath = path.join(runDir(), `${path.basename(dir)}.json`);
  let cluster: ClusterImpl | undefined;
  try {
    await mkdir(path.join(dir, "logs"));
    const certificates = await createClusterCertificates(dir);
    const [etcdPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const server = `https://127.0.0.1:${apiPort}`;
    const adminToken = randomBytes(24).toString("hex");
    const tokenFile = path.join(dir, "tokens.csv");
    await writeFile(tokenFile, `${adminToken},weft-admin,weft-admin,"system:masters"\n`, { mode: 0o600 });
    const kubeconfigPath = path.join(dir, "kubeconfig");
    await writeFile(kubeconfigPath, kubeconfigYaml(server, readFileSync(certificates.caCert), adminToken), { mode: 0o600 });

    cluster = new ClusterImpl(dir, server, kubeconfigPath, adminToken, certificates, binaries, recordPath,
      opts.keepDir ?? !!process.env.WEFT_K8S_KEEP, `http://127.0.0.1:${etcdPort}`);
    liveClusters.add(cluster);
    installExitHook();
    cluster.kubeConfig.loadFromFile(kubeconfigPath);

    const etcd = cluster.add("etcd", [binaries.etcd,
      "--name=weft", `--data-dir=${path.join(dir, "etcd")}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`, `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`, `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=weft=http://127.0.0.1:${etcdPeerPort}`, "--logger=zap", "--log-level=warn",
    ]);
    const apiserver = cluster.add("kube-apiserver", [binaries.kubeApiserver,
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", `--secure-port=${apiPort}`,
      // Else it complains every 10 s that 127.0.0.1 is a loopback address.
      "--endpoint-reconciler-type=none",
      `--cert-dir=${path.join(dir, "apiserver-certs")}`,
      `--tls-cert-file=${certificates.servingCert}`, `--tls-private-key-file=${certificates.servingKey}`,
      `--client-ca-file=${certificates.caCert}`, `--token-auth-file=${tokenFile}`,
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`, `--api-audiences=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-key-file=${certificates.serviceAccountPublicKey}`,
      `--service-account-signing-key-file=${certificates.serviceAccountKey}`,
      `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
      "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount",
      "--allow-privileged=true", "--profiling=false", "--v=1",
      ...(opts.apiserverArgs ?? []),
    ]);
    const controllerManager = cluster.add("kube-controller-manager", [binaries.kubeControllerManager,
      `--kubeconfig=${kubeconfigPath}`, `--authentication-kubeconfig=${kubeconfigPath}`, `--authorization-kubeconfig=${kubeconfigPath}`,
      "--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false",
      `--service-account-private-key-file=${certificates.serviceAccountKey}`, `--root-ca-file=${certificates.caCert}`,
      `--cluster-signing-cert-file=${certificates.caCert}`, `--cluster-signing-key-file=${certificates.caKey}`,
      "--use-service-account-credentials=false", "--profiling=false", "--v=1",
      ...(opts.controllerManagerArgs ?? []),
    ]);

    const deadline = started + (opts.readyTimeoutMs ?? 90_000);
    etcd.start();
    apiserver.start(); // it retries etcd until etcd listens
    await cluster.waitReady(deadline);
    controllerManager.start();
    if (opts.waitForControllers ?? true) {
      await cluster.waitForServiceAccount("default", "default", Math.max(1000, deadline - Date.now()));
    }
    cluster.startupMs = Date.now() - started;
    return cluster;
  } catch (err) {
    if (cluster) await cluster.stop().catch(() => {});
    else await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function postJson(url: string, body: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: "POST", headers: { "content-type": "application/json" }, timeout: 5000, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => (text += d));
      res.on("end", () => {
        if (res.statusCode !== 200) reject(new Error(`POST ${url}: ${res.statusCode} ${text.slice(0, 300)}`));
        else resolve(JSON.parse(text) as unknown);
      });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

function kubeconfigYaml(server: string, ca: Buffer, token: string): string {
  // JSON is YAML: kubectl and client-node read it as a kubeconfig.
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "weft-test", cluster: { server, "certificate-authority-data": ca.toString("base64") } }],
    users: [{ name: "weft-admin", user: { token } }],
    contexts: [{ name: "weft-test", context: { cluster: "weft-test", user: "weft-admin", namespace: "default" } }],
    "current-context": "weft-test",
  }, null, 2) + "\n";
}
