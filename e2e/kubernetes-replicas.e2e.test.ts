// Two Weft replicas (`weft serve --kubernetes`, two processes) against the real kube-apiserver,
// electing a leader with a coordination.k8s.io Lease, and sidecars (real Envoy, run by the kubelet
// harness) whose bootstrap lists both replicas. The leader is killed (SIGKILL) under traffic:
// the other takes the Lease and writes the status of a VirtualService changed after the kill
// within 15 s (the issue's bound; Weft's Lease lasts 10 s), the dead replica's proxies
// reconnect to it and resync, and no request fails. Then the new leader is stopped with
// SIGTERM: it releases the Lease, so the restarted first replica takes over within a retry period.
//
//   flock /tmp/weft-pods.lock npx vitest run e2e/kubernetes-replicas.e2e.test.ts
import { CoordinationV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKubernetes, type KubernetesCluster } from "./kubernetes/cluster.js";
import { Kubelet, type RunningPod } from "./kubernetes/kubelet.js";
import { applyCrds } from "./kubernetes/manifests.js";
import { kubeMeshUnavailable, podYaml, sleep } from "./harness/kube-mesh.js";
import { startWeftReplica, tail, type WeftReplica } from "./harness/weft-replica.js";
import { freePort } from "../src/runner/free-port.js";
import { until } from "./kubernetes/workloads.js";

const unavailable = await kubeMeshUnavailable();
const runnable = unavailable === "";
if (!runnable) process.stderr.write(`kubernetes-replicas e2e skipped: ${unavailable}\n`);

// `weft serve`'s defaults (DEFAULT_LEASE_TIMINGS: lease 10 s, renew deadline 5 s, retry 2 s).
const LEASE_DURATION_MS = 10_000;
const RETRY_PERIOD_MS = 2_000;
/** Issue 12: after the leader's death another replica leads and writes status within this. */
const TAKEOVER_BOUND_MS = 15_000;
/** A candidate polls every retry period x (1 + up to 1.2); on a loaded machine calls take a while too. */
const POLL_MS = RETRY_PERIOD_MS * 2.2;
const LOAD_SLACK_MS = 5_000;

const OBJECTS = `
apiVersion: v1
kind: Namespace
metadata: { name: istio-system }
---
apiVersion: v1
kind: Namespace
metadata: { name: ha, labels: { istio-injection: enabled } }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: ha }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
${podYaml({ name: "web-1", namespace: "ha", labels: { app: "web" }, ports: [8080] })}
---
${podYaml({ name: "web-2", namespace: "ha", labels: { app: "web" }, ports: [8080] })}
---
${podYaml({ name: "client", namespace: "ha", labels: { app: "client" } })}
`;

const PLAIN_ROUTE = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: ha }
spec:
  hosts: [web.ha.svc.cluster.local]
  http:
  - route: [{ destination: { host: web.ha.svc.cluster.local } }]
`;

const MARKED_ROUTE = `${PLAIN_ROUTE}    headers: { response: { add: { x-config: after-failover } } }
`;

interface VirtualServiceStatus {
  metadata: { generation: number };
  status?: { observedGeneration?: number; conditions?: { type: string; status: string; reason?: string; observedGeneration?: number }[] };
}

interface Traffic {
  ok: number;
  failed: string[];
  stop(): Promise<void>;
}

/** Requests from `client` to web every ~50 ms (bounded: at most 6000 and 10 min) until stopped. */
function traffic(client: RunningPod, webIp: string): Traffic {
  const state = { ok: 0, failed: [] as string[], running: true };
  const started = Date.now();
  const loop = (async () => {
    for (let i = 0; state.running && i < 6000 && Date.now() - started < 600_000; i++) {
      const at = new Date().toISOString();
      try {
        const res = await client.fetch({ host: webIp, port: 80, headers: { host: "web.ha.svc.cluster.local" }, timeoutMs: 5000 });
        if (res.status === 200) state.ok++;
        else state.failed.push(`${at} status ${res.status}: ${res.body.slice(0, 200)}`);
      } catch (err) {
        state.failed.push(`${at} ${(err as Error).message}`);
      }
      await sleep(50);
    }
  })();
  return {
    get ok() { return state.ok; },
    get failed() { return state.failed; },
    async stop() {
      state.running = false;
      await loop;
    },
  };
}


describe.skipIf(!runnable)("Kubernetes mode: two replicas, leader election", () => {
  let cluster: KubernetesCluster;
  let kubelet: Kubelet | undefined;
  const replicas: WeftReplica[] = [];
  let a: WeftReplica;
  let b: WeftReplica;
  let client: RunningPod;
  let webIp = "";
  let sidecars: string[] = [];

  const weftArgs = () => ["--kubernetes", "--kubeconfig", cluster.kubeconfigPath, "--xds-address", "0.0.0.0", "--log-level", "info", "--shutdown-grace", "1000"];
  const holder = async () => (await cluster.kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: "weft-leader", namespace: "istio-system" })).spec;
  const routeStatus = async (): Promise<VirtualServiceStatus | undefined> => {
    const api = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
    return (await api.getNamespacedCustomObject({ group: "networking.istio.io", version: "v1", namespace: "ha", plural: "virtualservices", name: "web" }).catch(() => undefined)) as VirtualServiceStatus | undefined;
  };
  /** The Reconciled condition of the route's `generation`, once written. */
  const reconciled = async (generation: number) => {
    const o = await routeStatus();
    const c = o?.status?.conditions?.find((x) => x.type === "Reconciled");
    return o && o.metadata.generation === generation && o.status?.observedGeneration === generation && c ? c : undefined;
  };
  const isLeader = async (r: WeftReplica) => (await r.metric("weft_leader").catch(() => undefined)) === 1;
  const diagnostics = async () => {
    const lease = await holder().then((s) => JSON.stringify(s), (e: Error) => e.message);
    return `Lease: ${lease}\n${replicas.map((r) => `--- ${r.name} (exit ${r.child.exitCode ?? r.child.signalCode ?? "running"}):\n${tail(r.log(), 15)}`).join("\n")}`;
  };

  beforeAll(async () => {
    cluster = await startKubernetes();
    try {
      await applyCrds(cluster.kubeConfig, 60_000);
      const applied = await cluster.kubectl(["apply", "-f", "-"], { input: OBJECTS.split("\n---\n").filter((d) => !d.includes("kind: Pod")).join("\n---\n") });
      if (applied.code !== 0) throw new Error(`kubectl apply: ${applied.stderr}`);
      // Replica a first: it takes the Lease, and every sidecar starts on it (b is not up yet).
      const [xdsA, xdsB] = [await freePort(), await freePort()];
      a = await startWeftReplica("weft-a", weftArgs(), { xdsPort: xdsA });
      replicas.push(a);
      await until("weft-a to lead", 30_000, async () => ((await isLeader(a)) ? true : undefined), diagnostics);
      kubelet = await Kubelet.start(cluster.kubeConfig, { sidecar: { xdsPort: xdsA, moreXdsPorts: [xdsB] } });
      const pods = await cluster.kubectl(["apply", "-f", "-"], { input: OBJECTS.split("\n---\n").filter((d) => d.includes("kind: Pod")).join("\n---\n") });
      if (pods.code !== 0) throw new Error(`kubectl apply: ${pods.stderr}`);
      client = await kubelet.waitForPod("ha", "client");
      for (const name of ["web-1", "web-2"]) await kubelet.waitForPod("ha", name);
      sidecars = ["client", "web-1", "web-2"].map((n) => kubelet!.find("ha", n)!.nodeId!);
      webIp = (await cluster.kubectl(["get", "service", "web", "-n", "ha", "-o", "jsonpath={.spec.clusterIP}"])).stdout.trim();
      b = await startWeftReplica("weft-b", weftArgs(), { xdsPort: xdsB });
      replicas.push(b);
      await until("every sidecar synced on weft-a", 60_000, async () => {
        const proxies = await a.proxies();
        return sidecars.every((id) => proxies.get(id) === true) ? true : undefined;
      }, diagnostics);
    } catch (err) {
      await kubelet?.stop().catch(() => {});
      for (const r of replicas) await r.stop("SIGKILL").catch(() => {});
      await cluster.stop();
      throw err;
    }
  }, 300_000);

  afterAll(async () => {
    expect(kubelet?.errors ?? []).toEqual([]);
    await kubelet?.stop().catch(() => {});
    for (const r of replicas) await r.stop("SIGKILL").catch(() => {});
    await cluster?.stop();
  }, 90_000);

  it("kill the leader under traffic: the other leads and writes status within 15 s, proxies resync on it, 0 failed requests", async () => {
    expect(await isLeader(a)).toBe(true);
    expect(await isLeader(b)).toBe(false);
    expect((await holder())?.holderIdentity).toBe("weft-a");
    expect([...(await b.proxies()).keys()]).toEqual([]); // every sidecar is on a
    // A VirtualService whose status the leader (a) writes; changed after a's death, only b can.
    const created = await cluster.kubectl(["apply", "-f", "-"], { input: PLAIN_ROUTE });
    expect(created.code, created.stderr).toBe(0);
    await until("weft-a wrote the route's status (generation 1)", 60_000, () => reconciled(1), async () => `${JSON.stringify(await routeStatus())}\n${await diagnostics()}`);

    const load = traffic(client, webIp);
    try {
      await until("the first requests", 30_000, async () => (load.ok >= 10 ? true : undefined), async () => `failed: ${load.failed.slice(0, 5).join("\n")}`);
      await sleep(RETRY_PERIOD_MS * 2); // b has watched a renew
      const lastRenewal = (await holder())?.renewTime;
      const killedAt = Date.now();
      a.child.kill("SIGKILL");
      await a.exited;
      // Proxies reconnect (to b) while b is still a follower: every replica serves xDS.
      const resyncing = until("every sidecar reconnected to weft-b and synced", 60_000, async () => {
        const proxies = await b.proxies();
        return sidecars.every((id) => proxies.get(id) === true) ? Date.now() : undefined;
      }, async () => `${JSON.stringify([...(await b.proxies())])}\n${await diagnostics()}`);
      // The route changes while nobody leads: its new status can only come from the next leader.
      const applied = await cluster.kubectl(["apply", "-f", "-"], { input: MARKED_ROUTE });
      expect(applied.code, applied.stderr).toBe(0);
      const leading = until("weft-b to lead", TAKEOVER_BOUND_MS + LOAD_SLACK_MS, async () => ((await isLeader(b)) ? Date.now() : undefined), diagnostics);
      const statusWritten = await until("weft-b wrote the changed route's status (generation 2)", TAKEOVER_BOUND_MS + LOAD_SLACK_MS, async () => ((await reconciled(2)) ? Date.now() : undefined), async () => `${JSON.stringify(await routeStatus())}\n${await diagnostics()}`);
      const tookOver = await leading;
      const takeoverMs = tookOver - killedAt;
      const statusMs = statusWritten - killedAt;
      const lease = await holder();
      expect(lease?.holderIdentity).toBe("weft-b");
      expect((await reconciled(2))?.status).toBe("True");
      const resynced = await resyncing;
      // Config now comes from b: the changed route reaches every proxy.
      await until("the route applied through weft-b", 60_000, async () => {
        const res = await client.fetch({ host: webIp, port: 80, headers: { host: "web.ha.svc.cluster.local" }, timeoutMs: 5000 });
        return res.headers["x-config"] === "after-failover" ? true : undefined;
      }, diagnostics);
      await sleep(2000);
      await load.stop();
      const sinceRenewal = lastRenewal ? ((killedAt - new Date(lastRenewal as unknown as string).getTime()) / 1000).toFixed(1) : "?";
      process.stderr.write(
        `replicas: SIGKILL of the leader (${sinceRenewal} s after its last renewal) -> weft-b leader after ${(takeoverMs / 1000).toFixed(1)} s, ` +
          `status of the route changed after the kill written after ${(statusMs / 1000).toFixed(1)} s (lease ${LEASE_DURATION_MS / 1000} s, bound ${TAKEOVER_BOUND_MS / 1000} s, transitions ${lease?.leaseTransitions}); ` +
          `3 sidecars resynced on weft-b ${((resynced - killedAt) / 1000).toFixed(1)} s after the kill; ${load.ok} requests, ${load.failed.length} failed\n`,
      );
      expect(load.failed).toEqual([]);
      expect(load.ok).toBeGreaterThan(50);
      // The leader's own metric is read every ~200 ms by until(): both figures are upper bounds.
      expect(takeoverMs).toBeLessThanOrEqual(TAKEOVER_BOUND_MS);
      expect(statusMs).toBeLessThanOrEqual(TAKEOVER_BOUND_MS);
      expect(await b.metric("weft_leader_transitions_total", 'to="leader"')).toBe(1);
    } finally {
      await load.stop();
    }
  }, 240_000);

  it("SIGTERM of the leader releases the Lease: a follower takes over within a retry period, not a lease duration", async () => {
    const a2 = await startWeftReplica("weft-a", weftArgs(), { xdsPort: a.xdsPort });
    replicas.push(a2);
    await until("weft-a (restarted) to follow", 30_000, async () => ((await a2.metric("weft_leader")) === 0 ? true : undefined), diagnostics);
    await sleep(RETRY_PERIOD_MS * 2); // a2 has watched b renew
    const load = traffic(client, webIp);
    try {
      await until("the first requests", 30_000, async () => (load.ok >= 10 ? true : undefined));
      const stoppedAt = Date.now();
      expect(await b.stop("SIGTERM")).toBe(0);
      const tookOver = await until("weft-a to lead after b released the Lease", POLL_MS + LOAD_SLACK_MS, async () => ((await isLeader(a2)) ? Date.now() : undefined), diagnostics);
      await until("every sidecar back on weft-a and synced", 60_000, async () => {
        const proxies = await a2.proxies();
        return sidecars.every((id) => proxies.get(id) === true) ? true : undefined;
      }, diagnostics);
      await sleep(2000);
      await load.stop();
      process.stderr.write(`replicas: SIGTERM of the leader -> weft-a leader after ${((tookOver - stoppedAt) / 1000).toFixed(1)} s (released); ${load.ok} requests, ${load.failed.length} failed\n`);
      expect(b.log()).toContain("released the lease");
      expect(load.failed).toEqual([]);
    } finally {
      await load.stop();
    }
  }, 180_000);
});
