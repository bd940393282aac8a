// Benchmark: Weft's CPU while 1000 pods churn. `weft serve --kubernetes` runs as its own
// process against a real API server; 100 Services; 20 simulated sidecars connected. One churn
// cycle creates 1000 pods (status with IP and Ready set through the API, so the
// controller-manager adds them to the Services' EndpointSlices) and deletes them again.
// Reported: Weft's CPU-seconds and average CPU% over the cycle (from /proc), its RSS, and the
// idle CPU before.
//
//   npm run build && npx tsx bench/kubernetes/pod-churn-cpu.ts       (BENCH_K8S_PODS=1000 by default)
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { freePort } from "../../src/runner/free-port.js";
import { SimulatedClient } from "../../src/xds/simulated-client.js";
import { startKubernetes } from "../../e2e/kubernetes/cluster.js";
import { cpuSeconds, statusKb } from "../process-stats.js";
import { apis, startVirtualNodes, createNamespace, createPods, createServices, deletePods, until } from "./cluster-load.js";

const PODS = Number(process.env.BENCH_K8S_PODS ?? 1000);
const SERVICES = 100;
const SIDECARS = 20;

async function main(): Promise<void> {
  const cluster = await startKubernetes();
  const nodes = await startVirtualNodes(cluster.kubeConfig).catch(async (err: unknown) => {
    await cluster.stop();
    throw err;
  });
  const clients: SimulatedClient[] = [];
  let weft: ReturnType<typeof spawn> | undefined;
  try {
    const api = apis(cluster.kubeConfig);
    await createNamespace(api, "churn");
    await createServices(api, "churn", SERVICES);
    const xdsPort = await freePort();
    const adminPort = await freePort();
    // The built CLI (npm run build), as users run it: no TypeScript compilation in the measured process.
    weft = spawn(process.execPath, ["dist/src/cli/main.js", "serve", "--kubernetes", "--kubeconfig", cluster.kubeconfigPath, "--xds-address", "127.0.0.1", "--xds-port", String(xdsPort), "--admin-port", String(adminPort), "--log-level", "warn"], {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, MALLOC_MMAP_THRESHOLD_: "131072" },
    });
    const pid = weft.pid!;
    await until(async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined))?.status === 200, "weft serve --kubernetes to be ready", 120_000, 200);
    for (let i = 0; i < SIDECARS; i++) {
      const c = new SimulatedClient({ target: `127.0.0.1:${xdsPort}`, nodeId: `sidecar~10.250.0.${i}~client-${i}.churn~churn.svc.cluster.local`, mode: "sotw", metadata: { NAMESPACE: "churn", LABELS: JSON.stringify({ app: `client-${i % 5}` }) } });
      c.on("error", () => undefined);
      c.start();
      clients.push(c);
    }
    await new Promise((r) => setTimeout(r, 5000));
    const idle0 = cpuSeconds(pid);
    await new Promise((r) => setTimeout(r, 10_000));
    const idleCpuPercent = ((cpuSeconds(pid) - idle0) / 10) * 100;

    const rssBefore = statusKb(pid, "VmRSS");
    const cpu0 = cpuSeconds(pid);
    const t0 = performance.now();
    await createPods(api, "churn", { from: 0, count: PODS, services: SERVICES, prefix: "churn" });
    await deletePods(api, "churn", Array.from({ length: PODS }, (_, i) => `churn-${i}`));
    const driveSeconds = (performance.now() - t0) / 1000;
    // Let Weft finish what the last events caused (debounce + generation).
    await new Promise((r) => setTimeout(r, 3000));
    const wall = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(pid) - cpu0;
    const row = {
      pods: PODS,
      services: SERVICES,
      sidecars: SIDECARS,
      cycleSeconds: +wall.toFixed(1),
      apiDriveSeconds: +driveSeconds.toFixed(1),
      weftCpuSeconds: +cpu.toFixed(2),
      weftCpuPercent: +((cpu / wall) * 100).toFixed(1),
      idleCpuPercent: +idleCpuPercent.toFixed(2),
      rssBeforeMb: +(rssBefore / 1024).toFixed(1),
      rssAfterMb: +(statusKb(pid, "VmRSS") / 1024).toFixed(1),
      rssPeakMb: +(statusKb(pid, "VmHWM") / 1024).toFixed(1),
    };
    const meta = { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, command: `npm run build && BENCH_K8S_PODS=${PODS} npx tsx bench/kubernetes/pod-churn-cpu.ts` };
    const table = [
      "| pods created then deleted | Services | sidecars | cycle s | Weft CPU-s | Weft CPU % (avg) | idle CPU % | RSS before / after / peak MB |",
      "|---|---|---|---|---|---|---|---|",
      `| ${row.pods} | ${row.services} | ${row.sidecars} | ${row.cycleSeconds} | ${row.weftCpuSeconds} | ${row.weftCpuPercent} | ${row.idleCpuPercent} | ${row.rssBeforeMb} / ${row.rssAfterMb} / ${row.rssPeakMb} |`,
    ].join("\n");
    process.stdout.write(`\nWeft's CPU while pods churn\n\n${table}\n`);
    mkdirSync("bench/results", { recursive: true });
    writeFileSync("bench/results/kubernetes-pod-churn.json", JSON.stringify({ meta, row }, null, 2) + "\n");
    writeFileSync(
      "bench/results/kubernetes-pod-churn.md",
      `# Kubernetes mode: Weft's CPU while pods churn\n\n${Object.entries(meta).map(([k, v]) => `- ${k}: ${v}`).join("\n")}\n\nThe API calls are made from the benchmark process at 8 in flight; the API server, etcd and\ncontroller-manager share the 2 cores, so the cycle's length is set by them, not by Weft.\n\n${table}\n`,
    );
  } finally {
    for (const c of clients) c.close();
    if (weft && weft.exitCode === null) {
      weft.kill("SIGTERM");
      await new Promise((r) => weft!.once("exit", r));
    }
    await nodes.stop();
    await cluster.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
