// weft demo: a real local mesh on one machine — the control plane on an embedded default
// config (Istio YAML written to a directory you can edit live), a bookinfo-like app of four
// services (reviews in three versions), each workload with its own Envoy sidecar in its own
// network namespace with transparent capture (explicit mode when that is impossible), and an
// ingress gateway Envoy. Ctrl-C / SIGTERM removes every process, namespace and rule it made.
import { FileSource } from "../sources/file/file-source.js";
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { applyCapture, captureSupport } from "../capture/iptables.js";
import { bridgeAddress, cleanupLeftovers, createPod, type Pod } from "../capture/pod-network.js";
import { DEFAULT_PROXY_UID, SIDECAR_ADMIN_PORT, SIDECAR_ENVOY_ARGS, sidecarEnvoyOptions } from "../capture/sidecar.js";
import { DEMO_SERVICES, DEMO_WORKLOADS, routingYaml, serviceHostNames, serviceVip, servicesYaml, workloadsYaml, type DemoWorkload } from "../demo/default-mesh.js";
import { renderBootstrap } from "../envoy/bootstrap.js";
import { DEMO_GATEWAY, demoSidecarMetadata, demoSidecarNodeId } from "../demo/compose-topology.js";
import { startEnvoy, type EnvoyProcess } from "../envoy/envoy-process.js";
import { findEnvoyBinary } from "../envoy/find-envoy.js";
import { createLogger, silentLogger } from "../log/logger.js";
import { startMeshRunner, type MeshRunner } from "../runner/mesh-runner.js";
import type { ConfigProblemsReport } from "../runner/config-problems.js";
import { waitForSync } from "../runner/wait-for-sync.js";
import { helpText, parseFlags, parsePort, type FlagSpec } from "./flags.js";
import { UsageError } from "./usage-error.js";
import { prometheusFlag } from "./prometheus-flag.js";
import { freePort } from "../runner/free-port.js";
import { startJaeger, type JaegerProcess } from "../demo/jaeger.js";
import { builtGoTool, goToolBuildCommand } from "../demo/go-tool-cache.js";
import { ENVOY_STATS_PATH, startPrometheus, type PrometheusProcess } from "../demo/prometheus.js";
import { PROMETHEUS_STATS_PORT } from "../envoy/proxy-stats.js";
import { demoTelemetrySettings, telemetryYaml } from "../demo/demo-telemetry.js";

const FLAGS = {
  "ingress-port": { type: "string", env: "WEFT_DEMO_INGRESS_PORT", default: "8080", help: "port of the ingress gateway" },
  "xds-port": { type: "string", env: "WEFT_XDS_PORT", default: "15010", help: "xDS gRPC port" },
  "admin-port": { type: "string", env: "WEFT_ADMIN_PORT", default: "15014", help: "control plane admin port" },
  "prometheus-url": { type: "string", env: "WEFT_PROMETHEUS_URL", help: "the mesh console (/ui) reads edge metrics from this Prometheus (Istio's series from manifests/prometheus rules) instead of each proxy's own stats" },
  "config-dir": { type: "string", env: "WEFT_DEMO_CONFIG_DIR", default: ".weft/demo", help: "where the demo writes its Istio YAML (edit it live)" },
  mode: { type: "string", env: "WEFT_CAPTURE_MODE", default: "auto", help: "auto, transparent (iptables in network namespaces) or explicit" },
  "log-level": { type: "string", env: "WEFT_LOG_LEVEL", help: "control-plane log level (logs are off unless set)" },
  prometheus: { type: "string", env: "WEFT_PROMETHEUS_BIN", help: "Prometheus binary (scripts/cached-go-build.sh prometheus builds it): scrapes every Envoy and the control plane, with Istio's metric names from the recording rules; default: the build cache when present; \"off\" to not start it" },
  jaeger: { type: "string", env: "WEFT_JAEGER_BIN", help: "Jaeger binary (cmd/jaeger; scripts/cached-go-build.sh jaeger builds it): traces of every request go to it; default: the build cache when present; \"off\" to not start it" },
} satisfies Record<string, FlagSpec>;

interface Running {
  runner?: MeshRunner;
  pods: Pod[];
  envoys: EnvoyProcess[];
  apps: ChildProcess[];
  hostsDirs: string[];
  jaeger?: JaegerProcess;
  prometheus?: PrometheusProcess;
}

let stepNo = 0;
function progress(msg: string): void {
  process.stderr.write(`[${++stepNo}/7] ${msg}\n`);
}


/** The command line that runs `weft <args>` again (compiled or through tsx). */
function weftCommand(args: string[]): string[] {
  return [process.execPath, ...process.execArgv, process.argv[1]!, ...args];
}

/** Resolves when a sample app prints that it listens; rejects if it exits or takes over 30 s. */
function appListening(app: ChildProcess, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`sample app ${name} did not start within 30 s`)), 30_000);
    app.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("listening on")) {
        clearTimeout(timer);
        resolve();
      }
    });
    app.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`sample app ${name} exited with code ${code}`));
    });
  });
}

async function cleanup(r: Running): Promise<void> {
  await Promise.all(r.envoys.map((e) => e.stop().catch(() => undefined)));
  for (const app of r.apps) if (app.exitCode === null) app.kill("SIGTERM");
  await Promise.all(r.pods.map((p) => p.destroy().catch(() => undefined)));
  await Promise.all(r.hostsDirs.map((d) => rm(d, { recursive: true, force: true })));
  await r.runner?.close(1000);
  await r.jaeger?.stop();
  await r.prometheus?.stop();
}

export async function runDemo(argv: string[]): Promise<number> {
  const { help, values } = parseFlags(argv, FLAGS);
  if (help) {
    process.stdout.write(helpText("demo", "Runs a local mesh: the control plane, a bookinfo-like app with Envoy sidecars, an ingress gateway.", FLAGS));
    return 0;
  }
  const ingressPort = parsePort("ingress-port", values["ingress-port"]);
  const xdsPort = parsePort("xds-port", values["xds-port"]);
  const adminPort = parsePort("admin-port", values["admin-port"]);
  const prometheus = prometheusFlag(values["prometheus-url"]);
  const requested = values.mode ?? "auto";
  if (!["auto", "transparent", "explicit"].includes(requested)) throw new UsageError(`--mode must be auto, transparent or explicit, got "${requested}"`);
  const configDir = path.resolve(values["config-dir"] ?? ".weft/demo");

  const running: Running = { pods: [], envoys: [], apps: [], hostsDirs: [] };
  let onSignal: (signal: NodeJS.Signals) => void = () => {};
  const stopped = new Promise<string>((resolve) => (onSignal = (s) => resolve(s)));
  // Persistent listeners: the Envoy harness re-raises signals nobody else listens to.
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    stepNo = 0;
    progress("finding Envoy");
    const binary = await findEnvoyBinary({ log: (m) => process.stderr.write(`      ${m}\n`) });

    progress("checking transparent capture (iptables in network namespaces)");
    let mode: "transparent" | "explicit" = "explicit";
    if (requested !== "explicit") {
      const support = await captureSupport();
      if (support.transparent) mode = "transparent";
      else if (requested === "transparent") throw new Error(`transparent mode is not possible here: ${support.reason}`);
      else process.stderr.write(`      explicit mode: ${support.reason}\n`);
    }
    if (mode === "transparent") {
      const leftovers = await cleanupLeftovers();
      if (leftovers.namespaces.length) process.stderr.write(`      removed leftovers of a previous run: ${leftovers.namespaces.join(", ")}\n`);
    }
    process.stderr.write(`      mode: ${mode}\n`);

    progress(mode === "transparent" ? `creating ${DEMO_WORKLOADS.length} pods (network namespaces)` : "placing workloads on loopback");
    const placements: { workload: DemoWorkload; address: string; port: number; pod?: Pod; sidecarPort?: number; adminPort?: number; statsPort?: number }[] = [];
    for (const w of DEMO_WORKLOADS) {
      if (mode === "transparent") {
        const pod = await createPod(`${w.app}-${w.version}`);
        running.pods.push(pod);
        // Service names resolve to their virtual IPs inside the pod, as cluster DNS would.
        const hostsDir = `/etc/netns/${pod.netns}`;
        await mkdir(hostsDir, { recursive: true });
        running.hostsDirs.push(hostsDir);
        const lines = ["127.0.0.1 localhost", ...DEMO_SERVICES.map((s) => `${serviceVip(s)} ${serviceHostNames(s).join(" ")}`)];
        await writeFile(`${hostsDir}/hosts`, lines.join("\n") + "\n");
        await applyCapture(pod.netns, { proxyUid: DEFAULT_PROXY_UID });
        placements.push({ workload: w, address: pod.ip, port: 9080, pod });
      } else {
        // Fixed admin and stats ports (free ones: the sidecars share loopback) so each serves /stats/prometheus.
        placements.push({ workload: w, address: "127.0.0.1", port: await freePort(), sidecarPort: await freePort(), adminPort: await freePort(), statsPort: await freePort() });
      }
    }

    const jaegerBinary = values.jaeger === "off" ? undefined : (values.jaeger ?? builtGoTool("jaeger"));
    if (jaegerBinary) {
      // Sidecars in pods reach the host through the bridge; the query API stays on loopback.
      running.jaeger = await startJaeger({ binary: jaegerBinary, receiverHost: mode === "transparent" ? bridgeAddress() : "127.0.0.1" });
      process.stderr.write(`      Jaeger: ${running.jaeger.queryUrl}\n`);
    }
    const jaegerPorts = running.jaeger ? { address: running.jaeger.otlpGrpc.host, otlpPort: running.jaeger.otlpGrpc.port, zipkinPort: running.jaeger.zipkin.port } : undefined;

    progress(`starting the control plane on ${configDir}`);
    await mkdir(configDir, { recursive: true });
    await writeFile(path.join(configDir, "services.yaml"), servicesYaml());
    await writeFile(path.join(configDir, "routing.yaml"), routingYaml(ingressPort));
    // In transparent mode every workload has an inbound sidecar, so clients use mTLS to it.
    await writeFile(path.join(configDir, "workloads.yaml"), workloadsYaml(placements, { sidecarInbound: mode === "transparent" }));
    await writeFile(path.join(configDir, "telemetry.yaml"), telemetryYaml(jaegerPorts));
    const logger = values["log-level"] ? createLogger({ level: values["log-level"] }) : silentLogger();
    const runner = await startMeshRunner({
      logger,
      xdsAddress: mode === "transparent" ? "0.0.0.0" : "127.0.0.1",
      xdsPort,
      adminAddress: "127.0.0.1",
      adminPort,
      ...prometheus,
      // weft_process_* and weft_nodejs_* for the control-plane dashboard, as `weft serve`.
      processMetrics: true,
      sources: [new FileSource(configDir)],
      // The control plane's log is silent here: config problems are printed as they appear and go.
      onProblemsChanged: (report) => process.stdout.write(describeProblems(report)),
      settings: { telemetry: demoTelemetrySettings(jaegerPorts) },
      security: { stateDir: `${configDir}-state`, servingNames: { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", ...(mode === "transparent" ? [bridgeAddress()] : [])] } },
    });
    running.runner = runner;
    const sec = runner.security!;
    const xdsTls = { caFile: sec.trustBundleFile, sni: sec.serverName };
    const xdsAddress = mode === "transparent" ? bridgeAddress() : "127.0.0.1";

    progress(`starting ${placements.length} workloads with their Envoy sidecars`);
    const nodes: string[] = [];
    await Promise.all(
      placements.map(async (p) => {
        const w = p.workload;
        const nodeId = demoSidecarNodeId(w, p.address);
        nodes.push(nodeId);
        const appArgs = ["sample-app", "--name", w.app, "--version", w.version, "--port", String(p.port)];
        if (p.pod) {
          const app = p.pod.exec(weftCommand(appArgs), { stdio: ["ignore", "pipe", "ignore"] });
          running.apps.push(app);
          await appListening(app, `${w.app}-${w.version}`);
          const xdsToken = sec.credentials.ensure({ namespace: "default", name: `${w.app}-${w.version}` });
          const bootstrapYaml = renderBootstrap({ nodeId, cluster: w.app, metadata: demoSidecarMetadata(w, "transparent"), xdsAddress, xdsPort: runner.cp.xdsPort, adminAddress: p.pod.ip, adminPort: SIDECAR_ADMIN_PORT, xdsToken, xdsTls });
          running.envoys.push(await startEnvoy({ bootstrapYaml, binary, ...sidecarEnvoyOptions(p.pod) }));
        } else {
          const app = spawn(weftCommand([])[0]!, [...weftCommand(appArgs).slice(1), "--host", "127.0.0.1", "--sidecar-port", String(p.sidecarPort)], { stdio: ["ignore", "pipe", "ignore"] });
          running.apps.push(app);
          await appListening(app, `${w.app}-${w.version}`);
          const xdsToken = sec.credentials.ensure({ namespace: "default", name: `${w.app}-${w.version}` });
          const bootstrapYaml = renderBootstrap({ nodeId, cluster: w.app, metadata: demoSidecarMetadata(w, "explicit", p.sidecarPort), xdsAddress, xdsPort: runner.cp.xdsPort, adminPort: p.adminPort, statsPort: p.statsPort, xdsToken, xdsTls });
          running.envoys.push(await startEnvoy({ name: `sidecar-${w.app}-${w.version}`, bootstrapYaml, binary, extraArgs: [...SIDECAR_ENVOY_ARGS] }));
        }
      }),
    );

    progress("starting the ingress gateway");
    const gwNode = DEMO_GATEWAY.nodeId("127.0.0.1");
    const gwAdminPort = await freePort();
    const gwStatsPort = await freePort();
    nodes.push(gwNode);
    const gateway = await startEnvoy({
      name: "ingressgateway",
      binary,
      bootstrapYaml: renderBootstrap({
        nodeId: gwNode,
        cluster: DEMO_GATEWAY.name,
        metadata: { ...DEMO_GATEWAY.metadata },
        xdsAddress: "127.0.0.1",
        xdsPort: runner.cp.xdsPort,
        // Fixed ports on loopback so the gateway has a scrape listener (its edges in the mesh console, Prometheus).
        adminPort: gwAdminPort,
        statsPort: gwStatsPort,
        // The gateway has no WorkloadEntry: a standalone credential carries its labels and service account.
        xdsToken: sec.credentials.ensure({ namespace: DEMO_GATEWAY.namespace, name: DEMO_GATEWAY.name, labels: { ...DEMO_GATEWAY.labels } }),
        xdsTls,
      }),
    });
    running.envoys.push(gateway);

    const prometheusBinary = values.prometheus === "off" ? undefined : (values.prometheus ?? builtGoTool("prometheus"));
    if (prometheusBinary) {
      // Every Envoy's scrape listener (Istio's 15090 in pods) and the control plane's /metrics.
      const envoyTargets = [
        ...placements.map((p) => ({ address: p.pod ? `${p.pod.ip}:${PROMETHEUS_STATS_PORT}` : `127.0.0.1:${p.statsPort}`, labels: { pod: `${p.workload.app}-${p.workload.version}`, namespace: "default" } })),
        { address: `127.0.0.1:${gwStatsPort}`, labels: { pod: DEMO_GATEWAY.name, namespace: DEMO_GATEWAY.namespace } },
      ];
      running.prometheus = await startPrometheus({
        binary: prometheusBinary,
        jobs: [
          { name: "envoy-stats", metricsPath: ENVOY_STATS_PATH, targets: envoyTargets },
          { name: "weft", metricsPath: "/metrics", targets: [{ address: `127.0.0.1:${runner.cp.adminPort}` }] },
        ],
      });
      process.stderr.write(`      Prometheus: ${running.prometheus.url}\n`);
    }

    progress("waiting for every Envoy to ACK its configuration");
    await Promise.all(
      nodes.map(async (nodeId) => {
        const key = runner.cp.xds.registry.byNode(nodeId)[0]?.snapshotKey;
        const snap = key ? runner.cp.cache.get(key) : undefined;
        if (snap) await waitForSync(runner.cp.xds.registry, nodeId, snap, 30_000);
      }),
    );

    const base = `http://127.0.0.1:${ingressPort}`;
    process.stdout.write(
      [
        "",
        `Weft demo is running (${mode} mode): ${placements.length} workloads with sidecars, an ingress gateway.`,
        mode === "transparent" ? "Sidecars talk mutual TLS with SPIFFE certificates from Weft's CA (rotated over SDS)." : "",
        "",
        "Send requests through the ingress gateway:",
        `  curl ${base}/productpage                          # reviews v1`,
        `  curl -H 'end-user: jason' ${base}/productpage     # reviews v2 (header routing)`,
        "",
        "Change routing live (saved edits reach every Envoy within a second):",
        `  ${path.join(configDir, "routing.yaml")}    VirtualServices, DestinationRules, Gateway`,
        `  ${path.join(configDir, "services.yaml")}   ServiceEntries`,
        `  ${path.join(configDir, "workloads.yaml")}  WorkloadEntries (generated)`,
        `  ${path.join(configDir, "telemetry.yaml")}  Telemetry: access logs${running.jaeger ? ", tracing" : ""}`,
        "",
        "Observability:",
        running.jaeger
          ? `  traces       ${running.jaeger.queryUrl}  (Jaeger; API: ${running.jaeger.queryUrl}/api/traces?service=productpage.default)`
          : `  traces       off (no Jaeger: build it with ${goToolBuildCommand("jaeger")}, or pass --jaeger PATH)`,
        running.prometheus
          ? `  metrics      ${running.prometheus.url}  (Prometheus: every Envoy + the control plane; try ${running.prometheus.url}/api/v1/query?query=istio_requests_total)`
          : `  metrics      no Prometheus (build it with ${goToolBuildCommand("prometheus")}, or pass --prometheus PATH); each Envoy still serves /stats/prometheus`,
        `  access logs  each Envoy's output (Istio's format):`,
        ...running.envoys.map((e) => `    ${e.name.padEnd(28)} ${e.logPath}`),
        "",
        "Control plane:",
        `  console      http://127.0.0.1:${runner.cp.adminPort}/ui/   (the mesh as a graph: traffic, mTLS, sync state, certificates, problems)`,
        `  sync status  weft status --admin http://127.0.0.1:${runner.cp.adminPort}   (or /debug/syncz)`,
        `  problems     http://127.0.0.1:${runner.cp.adminPort}/debug/config-problems (also printed here as they appear)`,
        `  metrics      http://127.0.0.1:${runner.cp.adminPort}/metrics`,
        `  gateway      ${gateway.adminUrl} (Envoy admin)`,
        "",
        "Press Ctrl-C to stop; everything started here is removed.",
        "",
      ].join("\n"),
    );
    const signal = await stopped;
    process.stderr.write(`\n${signal}: stopping the demo\n`);
    return 0;
  } finally {
    await cleanup(running);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** Problems shown in the demo's console per change; `weft status` lists all of them. */
const DEMO_PROBLEM_LINES = 5;

/** The demo's console line(s) for a config change's validation problems. */
export function describeProblems(report: ConfigProblemsReport): string {
  const time = (report.appliedAt ?? new Date().toISOString()).slice(11, 19);
  if (report.errors === 0 && report.warnings === 0) return `[${time}] config: no problems\n`;
  const head = `[${time}] config: ${report.errors} error${report.errors === 1 ? "" : "s"}, ${report.warnings} warning${report.warnings === 1 ? "" : "s"}${report.errors ? " (a broken resource keeps its last valid version)" : ""}`;
  const lines = report.problems.slice(0, DEMO_PROBLEM_LINES).map((p) => `  ${p.severity}: ${p.text}`);
  const more = report.errors + report.warnings - lines.length;
  return [head, ...lines, ...(more > 0 ? [`  ... and ${more} more: weft status`] : [])].join("\n") + "\n";
}
