// The kubelet harness (kubelet.ts) running a pod whose stored spec has native sidecars
// (initContainers with restartPolicy Always), as Weft's injector writes them, from that spec:
//
// - init containers in order: the capture container (`weft capture apply ...`, must ask for
//   NET_ADMIN) runs the same CLI code in the pod's network namespace; a native sidecar whose
//   command is `envoy` starts the real Envoy with the container's args after kubelet's
//   `$(VAR)` expansion (env from the downward API), as the container's runAsUser, and the next
//   container starts only once its startupProbe (httpGet from the node to the pod IP) passes;
// - volumes: a projected serviceAccountToken (TokenRequest with the projection's audience and
//   expirationSeconds, bound to the pod, kubelet's atomic layout) and a configMap (read from the
//   API, waited for as kubelet waits) each become a per-pod directory. There is no container
//   runtime, so no mount namespace: each mountPath is replaced by its directory in the args (and
//   a mount whose path the args never name, such as kube-api-access-*, is not made).
// - What this harness adds that a pod would not have: the request agent's port (AGENT_PORT, the
//   harness's `kubectl exec`) is excluded from inbound capture; startEnvoy's own flags
//   (--concurrency 1, -l, --disable-hot-restart, --config-path) replace the args' equivalents.
import { chmod, chown, mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { CoreV1Api, V1Container, V1Pod, V1Probe } from "@kubernetes/client-node";
import { envoyCommandPrefix } from "../../src/capture/sidecar.js";
import type { Pod } from "../../src/capture/pod-network.js";
import { runCapture } from "../../src/cli/capture.js";
import { startEnvoy, type EnvoyProcess } from "../../src/envoy/envoy-process.js";
import { AGENT_PORT } from "../harness/pod-agent.js";
import { containerEnv, expandContainerReferences } from "./container-env.js";
import { ProjectedToken } from "./projected-token.js";

export interface InjectedPodContext {
  pod: V1Pod;
  net: Pod;
  core: CoreV1Api;
  /** A directory for this pod's volumes (created, searchable by the sidecar's uid). */
  volumeRoot: string;
  /** TokenRequest for the pod's ServiceAccount, bound to the pod. */
  requestToken: (audience: string, expirationSeconds: number) => Promise<string>;
  onError: (err: unknown) => void;
  /** What happened, in order ("init istio-init: capture applied", ...). */
  events: string[];
}

export interface InjectedPodRun {
  envoy?: EnvoyProcess;
  tokens: ProjectedToken[];
  /** The native sidecar's readiness probe (the pod is Ready when it passes). */
  readinessProbe?: V1Probe;
}

/** Native sidecars in the stored spec: this pod runs from its spec. */
export function hasNativeSidecar(pod: V1Pod): boolean {
  return (pod.spec?.initContainers ?? []).some((c) => c.restartPolicy === "Always");
}

/** One HTTP probe as kubelet makes it: GET http://<pod ip>:<port><path>, success on 200-399. */
export async function probeOnce(probe: V1Probe, container: V1Container, ip: string): Promise<boolean> {
  const get = probe.httpGet;
  if (!get) throw new Error(`container ${container.name}: only httpGet probes are supported by the kubelet harness`);
  const port = typeof get.port === "number" ? get.port : (container.ports ?? []).find((p) => p.name === get.port)?.containerPort;
  if (port === undefined) throw new Error(`container ${container.name}: probe port ${String(get.port)} is not one of its ports`);
  try {
    const res = await fetch(`http://${ip}:${port}${get.path ?? "/"}`, { signal: AbortSignal.timeout((probe.timeoutSeconds ?? 1) * 1000) });
    await res.arrayBuffer();
    return res.status >= 200 && res.status < 400;
  } catch {
    return false;
  }
}

/** Runs the pod's init containers (capture, native sidecars) as kubelet would; the app starts after this returns. */
export async function runInitContainers(ctx: InjectedPodContext): Promise<InjectedPodRun> {
  const run: InjectedPodRun = { tokens: [] };
  try {
    for (const container of ctx.pod.spec?.initContainers ?? []) {
      const args = container.args ?? [];
      if (container.restartPolicy === "Always") {
        if (run.envoy) throw new Error(`init container ${container.name}: one native sidecar per pod in the kubelet harness`);
        run.envoy = await startSidecar(ctx, container, run);
        ctx.events.push(`sidecar ${container.name}: started`);
        if (container.startupProbe) {
          await waitForProbe(container.startupProbe, container, ctx.net.ip, `sidecar ${container.name}: startupProbe`, () => run.envoy!.logTail(30));
          ctx.events.push(`sidecar ${container.name}: startupProbe passed`);
        }
        run.readinessProbe = container.readinessProbe;
      } else if (args[0] === "capture" && args[1] === "apply") {
        const caps = container.securityContext?.capabilities?.add ?? [];
        if (!caps.includes("NET_ADMIN") && !container.securityContext?.privileged) throw new Error(`init container ${container.name}: capture needs capability NET_ADMIN, the spec does not add it`);
        const code = await runCapture(["apply", ...withAgentExcluded(args.slice(2)), "--netns", ctx.net.netns]);
        if (code !== 0) throw new Error(`init container ${container.name}: weft capture apply exited ${code}`);
        ctx.events.push(`init ${container.name}: capture applied`);
      } else {
        ctx.events.push(`init ${container.name}: not run (the harness runs only capture and native sidecars)`);
      }
    }
    return run;
  } catch (err) {
    await run.envoy?.stop().catch(() => {});
    for (const t of run.tokens) await t.stop().catch(() => {});
    throw err;
  }
}

/** The request agent's port is the harness's exec channel, not pod traffic: never captured. */
function withAgentExcluded(args: string[]): string[] {
  const i = args.indexOf("--exclude-inbound-ports");
  if (i < 0) return [...args, "--exclude-inbound-ports", String(AGENT_PORT)];
  return args.map((a, j) => (j === i + 1 ? `${a},${AGENT_PORT}` : a));
}

async function waitForProbe(probe: V1Probe, container: V1Container, ip: string, what: string, diagnose: () => string): Promise<void> {
  const periodMs = (probe.periodSeconds ?? 10) * 1000;
  // Bounded by the probe's own failureThreshold x period, and by 90 s (a loaded test machine).
  const deadline = Date.now() + Math.min((probe.failureThreshold ?? 3) * periodMs, 90_000);
  for (;;) {
    if (await probeOnce(probe, container, ip)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not pass\n${diagnose()}`);
    await new Promise((r) => setTimeout(r, Math.min(periodMs, 500)));
  }
}

/** Flags startEnvoy sets itself, with how many values each takes. */
const HARNESS_FLAGS: Record<string, number> = { "--concurrency": 1, "-l": 1, "--log-level": 1, "--disable-hot-restart": 0, "--config-path": 1, "-c": 1 };

async function startSidecar(ctx: InjectedPodContext, container: V1Container, run: InjectedPodRun): Promise<EnvoyProcess> {
  if (path.basename(container.command?.[0] ?? "") !== "envoy") throw new Error(`native sidecar ${container.name}: command ${JSON.stringify(container.command)} is not envoy`);
  const uid = container.securityContext?.runAsUser ?? 0;
  const gid = container.securityContext?.runAsGroup ?? uid;
  const mounts = await mountVolumes(ctx, container, { uid, gid }, run);
  const env = containerEnv(container, ctx.pod, ctx.net.ip);
  let args = (container.args ?? []).map((a) => expandContainerReferences(a, env));
  for (const [mountPath, dir] of mounts) args = args.map((a) => a.split(mountPath).join(dir));
  let bootstrapYaml: string | undefined;
  let logLevel: string | undefined;
  const extraArgs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--config-yaml") bootstrapYaml = args[++i];
    else if (a in HARNESS_FLAGS) {
      if (a === "-l" || a === "--log-level") logLevel = args[i + 1];
      i += HARNESS_FLAGS[a]!;
    } else extraArgs.push(a);
  }
  if (!bootstrapYaml) throw new Error(`native sidecar ${container.name}: no --config-yaml in its args`);
  return startEnvoy({
    name: `injected-${ctx.net.name}`,
    bootstrapYaml,
    commandPrefix: envoyCommandPrefix(ctx.net, uid, gid),
    workDirOwner: { uid, gid },
    extraArgs,
    ...(logLevel ? { logLevel } : {}),
    waitForLive: false,
    adminOutOfReach: true,
    stopGraceMs: 2000,
  });
}

/** Each volumeMount's volume as a per-pod directory owned by the container's user: mountPath -> directory. */
async function mountVolumes(ctx: InjectedPodContext, container: V1Container, owner: { uid: number; gid: number }, run: InjectedPodRun): Promise<Map<string, string>> {
  const mounts = new Map<string, string>();
  const args = (container.args ?? []).join("\n");
  for (const mount of container.volumeMounts ?? []) {
    // Without a mount namespace a volume matters only where the args name its path (the
    // ServiceAccount admission plugin's kube-api-access-* mount is not read by Envoy).
    if (!args.includes(mount.mountPath)) continue;
    const volume = (ctx.pod.spec?.volumes ?? []).find((v) => v.name === mount.name);
    if (!volume) throw new Error(`container ${container.name}: volumeMount ${mount.name} names no volume of the pod`);
    const dir = path.join(ctx.volumeRoot, mount.name);
    const token = volume.projected?.sources?.find((s) => s.serviceAccountToken)?.serviceAccountToken;
    if (volume.projected && token && volume.projected.sources!.length === 1) {
      run.tokens.push(await ProjectedToken.start({
        dir,
        owner,
        fileName: token.path,
        issue: () => ctx.requestToken(token.audience ?? "", token.expirationSeconds ?? 3600),
        onError: ctx.onError,
      }));
    } else if (volume.configMap?.name) {
      const name = volume.configMap.name;
      const namespace = ctx.pod.metadata!.namespace!;
      const deadline = Date.now() + 30_000;
      let data: Record<string, string> | undefined;
      while (!data) {
        data = (await ctx.core.readNamespacedConfigMap({ name, namespace }).catch(() => undefined))?.data;
        if (!data && Date.now() > deadline) throw new Error(`volume ${mount.name}: ConfigMap ${namespace}/${name} not found in 30 s`);
        if (!data) await new Promise((r) => setTimeout(r, 200));
      }
      await mkdir(dir, { recursive: true, mode: 0o755 });
      for (const [key, value] of Object.entries(data)) {
        await writeFile(path.join(dir, key), value, { mode: 0o644 });
        await chown(path.join(dir, key), owner.uid, owner.gid);
      }
      await chmod(dir, 0o755);
    } else {
      throw new Error(`container ${container.name}: volume ${mount.name}: only a projected serviceAccountToken or a configMap is supported by the kubelet harness`);
    }
    mounts.set(mount.mountPath, dir);
  }
  // Longest first: a mountPath inside another is replaced before its parent.
  return new Map([...mounts].sort((a, b) => b[0].length - a[0].length));
}

/** Removes the pod's volume directories. */
export async function removeVolumes(volumeRoot: string): Promise<void> {
  await rm(volumeRoot, { recursive: true, force: true });
}
