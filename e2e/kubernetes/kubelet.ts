// The test harness that plays kubelet (and the scheduler) for the real control plane in
// cluster.ts: there is no kubelet, scheduler or container runtime on this machine.
//
// - Nodes: registers Node objects (Ready, with the labels asked for, e.g. topology zones) and
//   renews their Leases in kube-node-lease every 10 s, so the node lifecycle controller keeps
//   them Ready and never evicts their pods.
// - Scheduler: binds every unscheduled pod (default scheduler) to one of its nodes, round robin
//   among the nodes its nodeSelector allows. Deployments and ReplicaSets (run by the real
//   controller-manager) therefore work: rolling updates, pod-template-hash labels and all.
// - Kubelet: runs each pod bound to its nodes as a network namespace (src/capture/pod-network.ts)
//   holding one Node process that serves every declared TCP containerPort (an echo app) and the
//   request agent of e2e/harness/pod-agent.ts, and, when the pod is injected, an Envoy sidecar with
//   transparent capture. The pod's API status gets the namespace's IP as status.podIP, phase
//   Running, and Ready once the sidecar's Envoy is LIVE (GET /ready on its admin port: it has its
//   initial configuration), as Istio's readiness probe does. EndpointSlices made by the
//   controller-manager therefore point at the real pod.
// - Deletion: a pod marked for deletion has its processes and namespace removed (after
//   `terminationDelayMs`), then is deleted with grace period 0, as a kubelet confirms it.
//
// Secure sidecars (opts.sidecar.secure): each gets a projected ServiceAccount token volume
// (projected-token.ts: TokenRequest with the audience, bound to the pod, refreshed at 80% of its
// life, kubelet's ..data layout) and an Envoy that reads it at every new xDS stream over TLS.
//
// A pod whose stored spec has native sidecars (Weft's injector wrote them) runs from that spec
// instead (injected-pod.ts): capture init container, the sidecar's real Envoy with its own args and
// volumes, the app only after the sidecar's startupProbe passed, Ready by its readinessProbe; at
// deletion the app is stopped before the sidecar. Otherwise the harness injects by itself;
// that injection follows Istio's rules: namespace label istio-injection=enabled or pod label
// sidecar.istio.io/inject=true, and the pod label or annotation sidecar.istio.io/inject=false wins.
// Sidecars are only possible when the harness was given an xDS server (opts.sidecar).
import type { ChildProcess } from "node:child_process";
import {
  CoordinationV1Api, CoreV1Api, PatchStrategy, makeInformer, setHeaderOptions,
  type Informer, type KubeConfig, type V1Node, type V1Pod,
} from "@kubernetes/client-node";
import { applyCapture } from "../../src/capture/iptables.js";
import { bridgeAddress, cleanupLeftovers, createPod, type Pod } from "../../src/capture/pod-network.js";
import { DEFAULT_PROXY_UID, SIDECAR_ADMIN_PORT, sidecarEnvoyOptions } from "../../src/capture/sidecar.js";
import { renderBootstrap, type BootstrapOptions } from "../../src/envoy/bootstrap.js";
import { startEnvoy, type EnvoyProcess } from "../../src/envoy/envoy-process.js";
import { AGENT_PORT, POD_AGENT_SCRIPT, fetchFromPod, type AgentResponse } from "../harness/pod-agent.js";
import { ProjectedToken } from "./projected-token.js";
import { hasNativeSidecar, probeOnce, removeVolumes, runInitContainers, type InjectedPodRun } from "./injected-pod.js";
import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

export interface NodeSpec {
  name: string;
  labels?: Record<string, string>;
  /**
   * Pods bound to a virtual node run nothing: they get an address from 10.78.0.0/16 and go
   * Running and Ready at once, for tests and benchmarks that need many pods in the API (the
   * pod bridge holds at most 253 real pods). A virtual node has the label and the NoSchedule
   * taint VIRTUAL_NODE (=true): only pods that tolerate it go there (VIRTUAL_POD_PLACEMENT).
   */
  virtual?: boolean;
}

/** Label and taint key of virtual nodes. */
export const VIRTUAL_NODE = "weft.test/virtual";

/** Pod spec fields that place a pod on a virtual node. */
export const VIRTUAL_POD_PLACEMENT = {
  nodeSelector: { [VIRTUAL_NODE]: "true" },
  tolerations: [{ key: VIRTUAL_NODE, operator: "Equal", value: "true", effect: "NoSchedule" }],
};

/** A pod on a virtual node: only its API status. */
export interface VirtualPod {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly node: string;
  readonly ip: string;
}

/** What a status update needs to know about a pod. */
interface PodAddress {
  namespace: string;
  name: string;
  ip: string;
  hostIp: string;
  /** Prefix of the containerIDs reported. */
  runtimeId: string;
}

export interface SidecarSettings {
  /** The xDS server's port (Weft's), reached from pods at xdsAddress. */
  xdsPort: number;
  /** Default: the pod bridge's address (the host as pods see it). */
  xdsAddress?: string;
  /** Ports of more control-plane replicas at xdsAddress: the sidecar's xds-grpc cluster has one endpoint per replica. */
  moreXdsPorts?: number[];
  /** Change the bootstrap (token, TLS, delta xDS, ...) per pod. */
  bootstrap?: (pod: V1Pod, defaults: BootstrapOptions) => BootstrapOptions;
  /** Override Istio's injection rule. */
  inject?: (pod: V1Pod, namespaceLabels: Record<string, string>) => boolean;
  /**
   * A control plane with security (Weft --kubernetes --security): each sidecar gets a projected
   * ServiceAccount token (TokenRequest: `audience`, `expirationSeconds` (default 3600), bound to
   * its pod; asked for again at 80% of its life, as kubelet does) in a file its Envoy reads at
   * every new xDS stream (bootstrap xdsTokenFile), and verifies the control plane against `caFile`.
   */
  secure?: SecureSidecar;
}

export interface SecureSidecar {
  caFile: string;
  sni: string;
  audience: string;
  expirationSeconds?: number;
  /** Hands out each token (default: `request()`, the TokenRequest above); tests shorten lifetimes here. */
  issue?: (pod: { namespace: string; name: string; uid: string; serviceAccount: string }, request: () => Promise<string>) => Promise<string>;
}

export interface KubeletOptions {
  /** Default [{ name: "node-a" }]. */
  nodes?: NodeSpec[];
  /** Bind unscheduled pods to our nodes. Default true. */
  schedule?: boolean;
  /** Run injected pods with an Envoy sidecar connected here. Without it no pod has a sidecar. */
  sidecar?: SidecarSettings;
  /** How long a pod marked for deletion keeps running before it is stopped. Default 0. */
  terminationDelayMs?: number;
}

/** A pod this harness runs. */
export interface RunningPod {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly node: string;
  readonly labels: Record<string, string>;
  readonly serviceAccount: string;
  /** Its network namespace; `ip` is its status.podIP. */
  readonly net: Pod;
  readonly ip: string;
  /** The TCP ports its echo app serves. */
  readonly appPorts: number[];
  readonly envoy?: EnvoyProcess;
  /** Envoy's node id ("sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local"). */
  readonly nodeId?: string;
  /** Secure sidecars: the pod's projected token volume (the file, the tokens written so far). */
  readonly token?: ProjectedToken;
  /** Pods run from an injected spec: what the harness did, in order (init containers, sidecar, app, stop). */
  readonly events: readonly string[];
  /** A GET made from inside the pod (through its capture when it has a sidecar). */
  fetch(target: { host: string; port: number; path?: string; headers?: Record<string, string>; timeoutMs?: number }): Promise<AgentResponse>;
}

/** What the echo app answers (JSON body; also the header x-pod: <name>). */
export interface PodEcho {
  pod: string;
  namespace: string;
  ip: string;
  port: number;
  path: string;
  method: string;
  headers: Record<string, string | string[] | undefined>;
}

/** The echo app, appended to the request agent's script (it reuses its `http`). */
const APP_SCRIPT = `
const ports = (process.env.WEFT_APP_PORTS || "").split(",").filter((p) => p !== "").map(Number);
let listening = 0;
const ready = () => { if (++listening >= ports.length) console.log("app ready"); };
if (ports.length === 0) console.log("app ready");
for (const port of ports) {
  http.createServer((req, res) => {
    req.resume();
    const q = new URL(req.url, "http://app").searchParams;
    const body = JSON.stringify({ pod: process.env.POD_NAME, namespace: process.env.POD_NAMESPACE, ip: process.env.POD_IP,
      port, path: req.url, method: req.method, headers: req.headers });
    res.writeHead(Number(q.get("status") || 200), { "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-pod": process.env.POD_NAME });
    res.end(body);
  }).listen(port, "0.0.0.0", ready);
}
`;

const INJECT = "sidecar.istio.io/inject";
const LEASE_NAMESPACE = "kube-node-lease";
const LEASE_SECONDS = 40;
const LEASE_RENEW_MS = 10_000;

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** RFC 3339 with microseconds, as metav1.MicroTime parses. */
function microTime(date = new Date()): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

function rfc3339(date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function errorText(err: unknown): string {
  const e = err as { body?: unknown; message?: string };
  const body = typeof e.body === "string" ? e.body : e.body ? JSON.stringify(e.body) : "";
  return `${e.message?.split("\n")[0] ?? String(err)}${body ? ` ${body.slice(0, 300)}` : ""}`;
}

function isNotFound(err: unknown): boolean {
  return (err as { code?: number }).code === 404;
}

interface PodState {
  /** Operations on this pod run one after another. */
  chain: Promise<void>;
  running?: RunningPodImpl;
  virtual?: VirtualPod;
  /** run() was queued. */
  started: boolean;
  stopped: boolean;
  deletionConfirmed: boolean;
  notReadyForced: boolean;
}

class RunningPodImpl implements RunningPod {
  agent?: ChildProcess;
  envoy?: EnvoyProcess;
  nodeId?: string;
  token?: ProjectedToken;
  readonly events: string[] = [];
  /** Run from an injected spec (native sidecar): its Envoy, tokens, readiness probe and volumes. */
  fromSpec?: { run: InjectedPodRun; volumeRoot: string; pod: V1Pod };
  constructor(
    readonly namespace: string,
    readonly name: string,
    readonly uid: string,
    readonly node: string,
    readonly labels: Record<string, string>,
    readonly serviceAccount: string,
    readonly net: Pod,
    readonly appPorts: number[],
  ) {}

  get ip(): string {
    return this.net.ip;
  }

  fetch(target: { host: string; port: number; path?: string; headers?: Record<string, string>; timeoutMs?: number }): Promise<AgentResponse> {
    return fetchFromPod(this.net, { path: "/", headers: {}, ...target });
  }

  async stop(): Promise<void> {
    if (this.fromSpec) {
      // A native sidecar outlives the app: the app's container is stopped first.
      const agent = this.agent;
      if (agent && agent.exitCode === null && agent.signalCode === null) {
        const exited = new Promise((r) => agent.once("exit", r));
        agent.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      }
      this.events.push("app stopped");
      await this.envoy?.stop().catch(() => {});
      this.events.push("sidecar stopped");
      for (const t of this.fromSpec.run.tokens) await t.stop().catch(() => {});
      await removeVolumes(this.fromSpec.volumeRoot).catch(() => {});
      await this.net.destroy();
      return;
    }
    await this.envoy?.stop().catch(() => {});
    await this.token?.stop().catch(() => {});
    await this.net.destroy();
  }
}

function addressOf(running: RunningPodImpl): PodAddress {
  return { namespace: running.namespace, name: running.name, ip: running.ip, hostIp: running.net.gateway, runtimeId: `weft://${running.net.netns}` };
}

export class Kubelet {
  /** Problems running pods (each names the pod); tests assert this stays empty. */
  readonly errors: string[] = [];
  private readonly core: CoreV1Api;
  private readonly coordination: CoordinationV1Api;
  private readonly nodes: NodeSpec[];
  private readonly pods = new Map<string, PodState>();
  private readonly binding = new Set<string>();
  private readonly namespaceLabels = new Map<string, Record<string, string>>();
  private readonly virtualIps = new Set<string>();
  private informer: Informer<V1Pod> | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private roundRobin = 0;
  private stopped = false;
  /** Where secure sidecars' projected token volumes live (created on first use). */
  private tokenRoot?: Promise<string>;

  private constructor(private readonly kubeConfig: KubeConfig, private readonly opts: KubeletOptions) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.coordination = kubeConfig.makeApiClient(CoordinationV1Api);
    this.nodes = opts.nodes ?? [{ name: "node-a" }];
  }

  /** Registers the nodes and starts watching pods. */
  static async start(kubeConfig: KubeConfig, opts: KubeletOptions = {}): Promise<Kubelet> {
    // Pods a crashed or killed run left behind (their owner process is gone); live runs' pods stay.
    await cleanupLeftovers();
    const kubelet = new Kubelet(kubeConfig, opts);
    try {
      await kubelet.registerNodes();
      await kubelet.watchPods();
    } catch (err) {
      await kubelet.stop();
      throw err;
    }
    return kubelet;
  }

  /** Pods running now. */
  runningPods(): RunningPod[] {
    return [...this.pods.values()].flatMap((s) => (s.running && !s.stopped ? [s.running] : []));
  }

  /** Pods on virtual nodes, now. */
  virtualPods(): VirtualPod[] {
    return [...this.pods.values()].flatMap((s) => (s.virtual && !s.stopped ? [s.virtual] : []));
  }

  find(namespace: string, name: string): RunningPod | undefined {
    return this.runningPods().find((p) => p.namespace === namespace && p.name === name);
  }

  /** Waits until pod namespace/name runs here and (by default) its API status says Ready. */
  async waitForPod(namespace: string, name: string, opts: { ready?: boolean; timeoutMs?: number } = {}): Promise<RunningPod> {
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    for (;;) {
      const running = this.find(namespace, name);
      if (running && !(opts.ready ?? true)) return running;
      if (running) {
        const pod = await this.core.readNamespacedPodStatus({ name, namespace }).catch(() => undefined);
        if (pod?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) return running;
      }
      if (Date.now() > deadline) {
        throw new Error(`kubelet harness: pod ${namespace}/${name} not ${opts.ready ?? true ? "ready" : "running"} in time` +
          (this.errors.length ? `; errors: ${this.errors.join("; ")}` : ""));
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Sets a running pod's Ready condition (as a failing or passing readiness probe would). */
  async setReady(namespace: string, name: string, ready: boolean): Promise<void> {
    const state = [...this.pods.values()].find((s) => {
      const pod = s.running ?? s.virtual;
      return pod?.namespace === namespace && pod.name === name && !s.stopped;
    });
    if (!state?.running && !state?.virtual) throw new Error(`kubelet harness: pod ${namespace}/${name} is not running here`);
    state.notReadyForced = !ready;
    await this.patchStatus(state.running ? addressOf(state.running)
      : { ...state.virtual!, hostIp: bridgeAddress(), runtimeId: `weft-virtual://${state.virtual!.uid}` }, ready);
  }

  /** Stops watching, stops renewing leases, and stops every pod's processes and namespace (API objects stay). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    await this.informer?.stop().catch(() => {});
    await Promise.all([...this.pods.values()].map(async (s) => {
      await s.chain.catch(() => {});
      s.stopped = true;
      await s.running?.stop().catch(() => {});
    }));
    if (this.tokenRoot) await rm(await this.tokenRoot, { recursive: true, force: true }).catch(() => {});
  }

  // -------------------------------------------------------------------------------------
  // Nodes

  private nodeLabels(spec: NodeSpec): Record<string, string> {
    return { "kubernetes.io/hostname": spec.name, "kubernetes.io/os": "linux", ...(spec.virtual && { [VIRTUAL_NODE]: "true" }), ...spec.labels };
  }

  private async registerNodes(): Promise<void> {
    const hostIP = bridgeAddress();
    for (const spec of this.nodes) {
      const body: V1Node = {
        metadata: { name: spec.name, labels: this.nodeLabels(spec) },
        ...(spec.virtual && { spec: { taints: [{ key: VIRTUAL_NODE, value: "true", effect: "NoSchedule" }] } }),
      };
      await this.core.createNode({ body }).catch((err: unknown) => {
        if ((err as { code?: number }).code !== 409) throw new Error(`kubelet harness: creating node ${spec.name}: ${errorText(err)}`);
      });
      const now = rfc3339();
      const condition = (type: string, status: string, reason: string) =>
        ({ type, status, reason, message: "weft kubelet harness", lastHeartbeatTime: now, lastTransitionTime: now });
      await this.core.patchNodeStatus({
        name: spec.name,
        body: {
          status: {
            conditions: [
              condition("Ready", "True", "KubeletReady"),
              condition("MemoryPressure", "False", "KubeletHasSufficientMemory"),
              condition("DiskPressure", "False", "KubeletHasNoDiskPressure"),
              condition("PIDPressure", "False", "KubeletHasSufficientPID"),
            ],
            addresses: [{ type: "InternalIP", address: hostIP }, { type: "Hostname", address: spec.name }],
            capacity: { cpu: "2", memory: "8Gi", pods: "250" },
            allocatable: { cpu: "2", memory: "8Gi", pods: "250" },
            nodeInfo: {
              architecture: "amd64", bootID: "", containerRuntimeVersion: "weft://harness", kernelVersion: "", kubeProxyVersion: "",
              kubeletVersion: "v1.33.13", machineID: "", operatingSystem: "linux", osImage: "weft kubelet harness", systemUUID: "",
            },
          },
        },
      }, mergePatch);
      await this.coordination.createNamespacedLease({
        namespace: LEASE_NAMESPACE,
        body: { metadata: { name: spec.name }, spec: { holderIdentity: spec.name, leaseDurationSeconds: LEASE_SECONDS } },
      }).catch((err: unknown) => {
        if ((err as { code?: number }).code !== 409) throw new Error(`kubelet harness: creating lease for node ${spec.name}: ${errorText(err)}`);
      });
    }
    await this.renewLeases();
    this.leaseTimer = setInterval(() => void this.renewLeases().catch(() => {}), LEASE_RENEW_MS);
    this.leaseTimer.unref();
  }

  private async renewLeases(): Promise<void> {
    await Promise.all(this.nodes.map((spec) => this.coordination.patchNamespacedLease({
      name: spec.name,
      namespace: LEASE_NAMESPACE,
      body: { spec: { holderIdentity: spec.name, leaseDurationSeconds: LEASE_SECONDS, renewTime: microTime() } },
    }, mergePatch)));
  }

  // -------------------------------------------------------------------------------------
  // Pods

  private async watchPods(): Promise<void> {
    const informer = makeInformer<V1Pod>(this.kubeConfig, "/api/v1/pods", () => this.core.listPodForAllNamespaces());
    this.informer = informer;
    informer.on("add", (pod) => this.handle(pod, false));
    informer.on("update", (pod) => this.handle(pod, false));
    informer.on("delete", (pod) => this.handle(pod, true));
    informer.on("error", () => {
      // The apiserver went away (a restart test) or the watch expired: list and watch again.
      if (!this.stopped) setTimeout(() => void informer.start().catch(() => {}), 1000).unref();
    });
    await informer.start();
  }

  private handle(pod: V1Pod, deleted: boolean): void {
    if (this.stopped) return;
    const uid = pod.metadata?.uid;
    if (!uid) return;
    const nodeName = pod.spec?.nodeName;
    if (deleted) this.binding.delete(uid);
    if (!nodeName) {
      if (!deleted && (this.opts.schedule ?? true)) this.schedule(pod);
      return;
    }
    if (!this.nodes.some((n) => n.name === nodeName)) return;
    const state = this.stateOf(uid);
    if (deleted || pod.metadata?.deletionTimestamp) {
      this.enqueue(state, () => this.terminate(state, pod, !deleted));
    } else if (!state.started && (pod.status?.phase ?? "Pending") === "Pending") {
      state.started = true;
      this.enqueue(state, () => this.run(state, pod));
    }
  }

  private stateOf(uid: string): PodState {
    let state = this.pods.get(uid);
    if (!state) {
      state = { chain: Promise.resolve(), started: false, stopped: false, deletionConfirmed: false, notReadyForced: false };
      this.pods.set(uid, state);
    }
    return state;
  }

  private enqueue(state: PodState, op: () => Promise<void>): void {
    state.chain = state.chain.then(op).catch(() => {});
  }

  private schedule(pod: V1Pod): void {
    const uid = pod.metadata!.uid!;
    if (this.binding.has(uid) || pod.metadata?.deletionTimestamp) return;
    if ((pod.spec?.schedulerName ?? "default-scheduler") !== "default-scheduler") return;
    const selector = pod.spec?.nodeSelector ?? {};
    const tolerates = (pod.spec?.tolerations ?? []).some((t) => (t.key === VIRTUAL_NODE || (!t.key && t.operator === "Exists")) &&
      (!t.effect || t.effect === "NoSchedule"));
    const fits = this.nodes.filter((n) => {
      const labels = this.nodeLabels(n);
      return (!n.virtual || tolerates) && Object.entries(selector).every(([k, v]) => labels[k] === v);
    });
    if (fits.length === 0) return; // stays Pending, as with a real scheduler
    const node = fits[this.roundRobin++ % fits.length]!;
    this.binding.add(uid);
    const { name, namespace } = pod.metadata as { name: string; namespace: string };
    void this.core.createNamespacedPodBinding({
      name, namespace,
      body: { metadata: { name, namespace }, target: { apiVersion: "v1", kind: "Node", name: node.name } },
    }).catch((err: unknown) => {
      this.binding.delete(uid);
      if (!isNotFound(err)) this.errors.push(`binding pod ${namespace}/${name} to ${node.name}: ${errorText(err)}`);
    });
  }

  private async injected(pod: V1Pod): Promise<boolean> {
    if (!this.opts.sidecar) return false;
    const namespace = pod.metadata!.namespace!;
    let labels = this.namespaceLabels.get(namespace);
    if (!labels) {
      labels = (await this.core.readNamespace({ name: namespace })).metadata?.labels ?? {};
      this.namespaceLabels.set(namespace, labels);
    }
    if (this.opts.sidecar.inject) return this.opts.sidecar.inject(pod, labels);
    const podLabel = pod.metadata?.labels?.[INJECT];
    if (podLabel === "false" || pod.metadata?.annotations?.[INJECT] === "false") return false;
    return podLabel === "true" || labels["istio-injection"] === "enabled";
  }

  private async run(state: PodState, pod: V1Pod): Promise<void> {
    const meta = pod.metadata!;
    const namespace = meta.namespace!;
    const name = meta.name!;
    const uid = meta.uid!;
    const appPorts = (pod.spec?.containers ?? []).flatMap((c) => (c.ports ?? [])
      .filter((p) => (p.protocol ?? "TCP") === "TCP").map((p) => p.containerPort));
    if (this.nodes.find((n) => n.name === pod.spec!.nodeName)?.virtual) {
      await this.runVirtual(state, pod);
      return;
    }
    let running: RunningPodImpl | undefined;
    try {
      if (appPorts.includes(AGENT_PORT) || appPorts.some((p) => p >= 15000 && p <= 15090)) {
        throw new Error(`containerPorts ${appPorts.join(", ")}: ${AGENT_PORT} and 15000-15090 belong to the harness and the sidecar`);
      }
      const net = await createPod(`k${uid.replace(/-/g, "").slice(0, 10)}`);
      running = new RunningPodImpl(namespace, name, uid, pod.spec!.nodeName!, { ...meta.labels }, pod.spec?.serviceAccountName ?? "default", net, appPorts);
      state.running = running;
      if (hasNativeSidecar(pod)) {
        await this.runFromSpec(running, pod);
        await this.patchStatus(addressOf(running), false);
        void this.markReadyWhenLive(state, running);
        return;
      }
      const sidecar = await this.injected(pod);
      if (sidecar) await applyCapture(net.netns, { proxyUid: DEFAULT_PROXY_UID, excludeInboundPorts: [AGENT_PORT] });
      running.agent = await this.startApp(running);
      if (sidecar) await this.startSidecar(running, pod);
      await this.patchStatus(addressOf(running), false);
      // Ready once the sidecar has its configuration, outside the pod's operation chain so a
      // deletion meanwhile is not held up.
      void this.markReadyWhenLive(state, running);
    } catch (err) {
      if (state.stopped) return; // deleted while starting
      this.errors.push(`pod ${namespace}/${name}: ${errorText(err)}`);
      await this.core.patchNamespacedPodStatus({
        name, namespace,
        body: { status: { phase: "Failed", reason: "WeftHarnessError", message: errorText(err).slice(0, 1000) } },
      }, mergePatch).catch(() => {});
    }
  }

  private async runVirtual(state: PodState, pod: V1Pod): Promise<void> {
    const { namespace, name, uid } = pod.metadata as { namespace: string; name: string; uid: string };
    const ip = this.allocateVirtualIp();
    state.virtual = { namespace, name, uid, node: pod.spec!.nodeName!, ip };
    try {
      await this.patchStatus({ namespace, name, ip, hostIp: bridgeAddress(), runtimeId: `weft-virtual://${uid}` }, !state.notReadyForced);
    } catch (err) {
      if (!state.stopped && !isNotFound(err)) this.errors.push(`pod ${namespace}/${name}: ${errorText(err)}`);
    }
  }

  /** 10.78.0.1 - 10.78.255.254, lowest free first. */
  private allocateVirtualIp(): string {
    for (let i = 1; i < 65_535; i++) {
      const ip = `10.78.${i >> 8}.${i & 255}`;
      if ((i & 255) === 0 || (i & 255) === 255 || this.virtualIps.has(ip)) continue;
      this.virtualIps.add(ip);
      return ip;
    }
    throw new Error("kubelet harness: no free virtual pod address left in 10.78.0.0/16");
  }

  /** Init containers (capture, native sidecar until its startupProbe passes), then the app. */
  private async runFromSpec(running: RunningPodImpl, pod: V1Pod): Promise<void> {
    const root = await this.volumeRoot();
    const volumeRoot = path.join(root, running.uid);
    await mkdir(volumeRoot, { mode: 0o711 });
    await chmod(volumeRoot, 0o711);
    const who = { namespace: running.namespace, name: running.name, uid: running.uid, serviceAccount: running.serviceAccount };
    const run = await runInitContainers({
      pod, net: running.net, core: this.core, volumeRoot, events: running.events,
      requestToken: (audience, expirationSeconds) => this.requestToken(who, { audience, expirationSeconds, caFile: "", sni: "" }),
      onError: (err) => {
        if (!this.stopped) this.errors.push(`pod ${running.namespace}/${running.name}: projected token refresh: ${errorText(err)}`);
      },
    });
    running.fromSpec = { run, volumeRoot, pod };
    running.envoy = run.envoy;
    running.agent = await this.startApp(running);
    running.events.push("app started");
  }

  private volumeRoot(): Promise<string> {
    this.tokenRoot ??= mkdtemp(path.join(os.tmpdir(), "weft-kubelet-tokens-")).then(async (dir) => {
      await chmod(dir, 0o711); // the sidecar (uid 1337) reaches its own volume below
      return dir;
    });
    return this.tokenRoot;
  }

  private async markReadyWhenLive(state: PodState, running: RunningPodImpl): Promise<void> {
    const deadline = Date.now() + 60_000;
    try {
      const probe = running.fromSpec?.run.readinessProbe;
      const sidecar = running.fromSpec?.pod.spec?.initContainers?.find((c) => c.restartPolicy === "Always");
      // The sidecar's and the app containers' readinessProbes, made from the node to the pod's IP
      // as kubelet makes them; Ready when all pass.
      const probes = [
        ...(probe && sidecar ? [{ container: sidecar, probe }] : []),
        ...(running.fromSpec?.pod.spec?.containers ?? []).flatMap((c) => (c.readinessProbe?.httpGet ? [{ container: c, probe: c.readinessProbe }] : [])),
      ];
      while (probes.length > 0 && !state.stopped) {
        const failing: string[] = [];
        for (const p of probes) if (!(await probeOnce(p.probe, p.container, running.ip))) failing.push(p.container.name);
        if (failing.length === 0) break;
        if (Date.now() > deadline) throw new Error(`readinessProbe of ${failing.join(", ")} did not pass in 60 s\n${running.envoy?.logTail(30) ?? ""}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      while (!probe && running.envoy && !state.stopped) {
        if ((await running.envoy.adminRequest("/ready").catch(() => ({ status: 0 }))).status === 200) break;
        if (Date.now() > deadline) throw new Error("sidecar not LIVE (no initial configuration from the xDS server) in 60 s");
        await new Promise((r) => setTimeout(r, 100));
      }
      if (!state.stopped && !state.notReadyForced) await this.patchStatus(addressOf(running), true);
    } catch (err) {
      if (!state.stopped) this.errors.push(`pod ${running.namespace}/${running.name}: ${errorText(err)}`);
    }
  }

  private async startApp(running: RunningPodImpl): Promise<ChildProcess> {
    const child = running.net.exec([process.execPath, "-e", POD_AGENT_SCRIPT + APP_SCRIPT], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH, WEFT_APP_PORTS: running.appPorts.join(","), POD_NAME: running.name, POD_NAMESPACE: running.namespace, POD_IP: running.ip },
    });
    let output = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`app did not start in 15 s: ${output.slice(-500)}`)), 15_000);
      const onData = (d: Buffer) => {
        output += d.toString();
        if (output.includes("agent ready") && output.includes("app ready")) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`app exited (${code}): ${output.slice(-500)}`));
      });
    });
    return child;
  }

  private async startSidecar(running: RunningPodImpl, pod: V1Pod): Promise<void> {
    const settings = this.opts.sidecar!;
    const { namespace, name, ip } = running;
    running.nodeId = `sidecar~${ip}~${name}.${namespace}~${namespace}.svc.cluster.local`;
    const defaults: BootstrapOptions = {
      nodeId: running.nodeId,
      cluster: `${running.labels.app ?? name}.${namespace}`,
      metadata: {
        NAMESPACE: namespace,
        LABELS: JSON.stringify(running.labels),
        POD_NAME: name,
        SERVICE_ACCOUNT: running.serviceAccount,
        INTERCEPTION_MODE: "REDIRECT",
      },
      xdsAddress: settings.xdsAddress ?? bridgeAddress(),
      xdsPort: settings.xdsPort,
      ...(settings.moreXdsPorts?.length ? { xdsReplicas: settings.moreXdsPorts.map((port) => ({ address: settings.xdsAddress ?? bridgeAddress(), port })) } : {}),
      adminAddress: ip,
      adminPort: SIDECAR_ADMIN_PORT,
    };
    if (settings.secure) {
      const secure = settings.secure;
      const who = { namespace, name, uid: running.uid, serviceAccount: running.serviceAccount };
      const request = () => this.requestToken(who, secure);
      running.token = await ProjectedToken.start({
        dir: path.join(await this.volumeRoot(), running.uid),
        owner: { uid: DEFAULT_PROXY_UID, gid: DEFAULT_PROXY_UID },
        issue: () => (secure.issue ? secure.issue(who, request) : request()),
        onError: (err) => {
          if (!this.stopped) this.errors.push(`pod ${namespace}/${name}: projected token refresh: ${errorText(err)}`);
        },
      });
      defaults.xdsTls = { caFile: secure.caFile, sni: secure.sni };
      defaults.xdsTokenFile = running.token.file;
    }
    const bootstrap = settings.bootstrap ? settings.bootstrap(pod, defaults) : defaults;
    running.envoy = await startEnvoy({
      bootstrapYaml: renderBootstrap(bootstrap),
      ...sidecarEnvoyOptions(running.net),
      waitForLive: false,
      stopGraceMs: 1000,
    });
  }

  /** TokenRequest for a pod's ServiceAccount, bound to the pod (what kubelet asks for a projected volume). */
  private async requestToken(pod: { namespace: string; name: string; uid: string; serviceAccount: string }, secure: SecureSidecar): Promise<string> {
    const result = await this.core.createNamespacedServiceAccountToken({
      name: pod.serviceAccount,
      namespace: pod.namespace,
      body: { spec: { audiences: [secure.audience], expirationSeconds: secure.expirationSeconds ?? 3600, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: pod.name, uid: pod.uid } } },
    });
    const token = result.status?.token;
    if (!token) throw new Error(`TokenRequest for ${pod.namespace}/${pod.serviceAccount} (pod ${pod.name}) returned no token`);
    return token;
  }

  private async patchStatus(running: PodAddress, ready: boolean): Promise<void> {
    const now = rfc3339();
    const status = ready ? "True" : "False";
    const condition = (type: string, value: string) => ({ type, status: value, lastProbeTime: null, lastTransitionTime: now });
    const pod = await this.core.readNamespacedPod({ name: running.name, namespace: running.namespace });
    const containers = pod.spec?.containers ?? [];
    await this.core.patchNamespacedPodStatus({
      name: running.name,
      namespace: running.namespace,
      body: {
        status: {
          phase: "Running",
          hostIP: running.hostIp,
          hostIPs: [{ ip: running.hostIp }],
          podIP: running.ip,
          podIPs: [{ ip: running.ip }],
          startTime: pod.status?.startTime ? rfc3339(new Date(pod.status.startTime)) : now,
          conditions: [
            condition("PodReadyToStartContainers", "True"),
            condition("Initialized", "True"),
            condition("ContainersReady", status),
            condition("Ready", status),
            condition("PodScheduled", "True"),
          ],
          containerStatuses: containers.map((c) => ({
            name: c.name, image: c.image ?? "", imageID: "", containerID: `${running.runtimeId}/${c.name}`,
            ready, started: true, restartCount: 0, state: { running: { startedAt: now } },
          })),
        },
      },
    }, mergePatch);
  }

  private async terminate(state: PodState, pod: V1Pod, confirmDeletion: boolean): Promise<void> {
    const { name, namespace, uid } = pod.metadata as { name: string; namespace: string; uid: string };
    if (!state.stopped) {
      if (confirmDeletion && this.opts.terminationDelayMs) await new Promise((r) => setTimeout(r, this.opts.terminationDelayMs));
      state.stopped = true;
      if (state.virtual) this.virtualIps.delete(state.virtual.ip);
      await state.running?.stop().catch((err: unknown) => this.errors.push(`stopping pod ${namespace}/${name}: ${errorText(err)}`));
    }
    if (!confirmDeletion) {
      this.pods.delete(uid); // gone from the API
      return;
    }
    if (state.deletionConfirmed) return;
    state.deletionConfirmed = true;
    await this.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0, body: { gracePeriodSeconds: 0, preconditions: { uid } } })
      .catch((err: unknown) => {
        if (!isNotFound(err) && (err as { code?: number }).code !== 409) this.errors.push(`deleting pod ${namespace}/${name}: ${errorText(err)}`);
      });
  }
}
