// weft demo: the control plane, a real Envoy ingress and sample services on this machine.
// Ctrl-C / SIGTERM stops everything it started and exits 0.
import { renderBootstrap } from "../envoy/bootstrap.js";
import { startEnvoy, type EnvoyProcess } from "../envoy/envoy-process.js";
import { findEnvoyBinary } from "../envoy/find-envoy.js";
import { buildDemoSnapshot, DEMO_SERVICES } from "../demo/demo-mesh.js";
import { startSampleService, type SampleService } from "../demo/sample-service.js";
import { createLogger, silentLogger } from "../log/logger.js";
import { startControlPlane, type ControlPlane } from "../runner/control-plane.js";
import { helpText, parseFlags, parsePort, type FlagSpec } from "./flags.js";
import { UsageError } from "./usage-error.js";

const FLAGS = {
  "ingress-port": { type: "string", env: "WEFT_DEMO_INGRESS_PORT", default: "8080", help: "port of the ingress Envoy" },
  "xds-port": { type: "string", env: "WEFT_XDS_PORT", default: "15010", help: "xDS gRPC port" },
  "admin-port": { type: "string", env: "WEFT_ADMIN_PORT", default: "15014", help: "control plane admin port" },
  "reviews-v2-weight": { type: "string", default: "20", help: "percent of /reviews traffic sent to reviews v2" },
  "log-level": { type: "string", env: "WEFT_LOG_LEVEL", help: "control-plane log level (logs are off unless set)" },
} satisfies Record<string, FlagSpec>;

function progress(step: number, total: number, msg: string): void {
  process.stderr.write(`[${step}/${total}] ${msg}\n`);
}

export async function runDemo(argv: string[]): Promise<number> {
  const { help, values } = parseFlags(argv, FLAGS);
  if (help) {
    process.stdout.write(helpText("demo", "Starts the Weft control plane, a real Envoy ingress and sample services on this machine.", FLAGS));
    return 0;
  }
  const ingressPort = parsePort("ingress-port", values["ingress-port"]);
  const weight = Number(values["reviews-v2-weight"]);
  if (!Number.isInteger(weight) || weight < 0 || weight > 100) throw new UsageError(`--reviews-v2-weight must be 0-100, got "${values["reviews-v2-weight"]}"`);

  const services: SampleService[] = [];
  let cp: ControlPlane | undefined;
  let envoy: EnvoyProcess | undefined;
  const cleanup = async () => {
    await envoy?.stop();
    await cp?.close(1000);
    await Promise.all(services.map((s) => s.close()));
  };
  // Persistent listeners (not `once`): the Envoy harness's own signal hook re-raises a signal
  // that nobody else listens to, which would kill us before cleanup.
  let onSignal: (signal: NodeJS.Signals) => void = () => {};
  const stopped = new Promise<string>((resolve) => {
    onSignal = (signal) => resolve(signal);
  });
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    progress(1, 4, "finding Envoy");
    const binary = await findEnvoyBinary({ log: (m) => process.stderr.write(`      ${m}\n`) });
    progress(2, 4, `starting ${DEMO_SERVICES.length} sample services`);
    for (const s of DEMO_SERVICES) services.push(await startSampleService({ name: s.name, version: s.version }));
    progress(3, 4, "starting the control plane");
    const logger = values["log-level"] ? createLogger({ level: values["log-level"] }) : silentLogger();
    cp = await startControlPlane({
      logger,
      xdsAddress: "127.0.0.1",
      xdsPort: parsePort("xds-port", values["xds-port"]),
      adminAddress: "127.0.0.1",
      adminPort: parsePort("admin-port", values["admin-port"]),
    });
    cp.cache.set("ingress", buildDemoSnapshot({ services, ingressPort, reviewsV2Weight: weight }));
    cp.markConfigLoaded();
    progress(4, 4, "starting the ingress Envoy and waiting for it to be live");
    envoy = await startEnvoy({
      name: "ingress",
      binary,
      bootstrapYaml: renderBootstrap({ nodeId: "ingress", cluster: "ingress", xdsAddress: "127.0.0.1", xdsPort: cp.xdsPort }),
    });
    const base = `http://127.0.0.1:${ingressPort}`;
    process.stdout.write(
      [
        "",
        "Weft demo is running.",
        "",
        "Send requests through the ingress Envoy:",
        `  curl ${base}/productpage`,
        `  curl ${base}/reviews        # ${100 - weight}% reviews v1, ${weight}% v2`,
        `  curl ${base}/details`,
        "",
        "Control plane:",
        `  metrics      http://127.0.0.1:${cp.adminPort}/metrics`,
        `  sync status  http://127.0.0.1:${cp.adminPort}/debug/syncz   (or: weft status --admin http://127.0.0.1:${cp.adminPort})`,
        `  Envoy admin  ${envoy.adminUrl}`,
        "",
        "Press Ctrl-C to stop; everything started here is removed.",
        "",
      ].join("\n"),
    );
    const signal = await stopped;
    process.stderr.write(`\n${signal}: stopping the demo\n`);
    return 0;
  } finally {
    await cleanup();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
