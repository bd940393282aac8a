// weft serve: runs the control plane until SIGTERM/SIGINT, then closes streams and exits 0.
import { createLogger } from "../log/logger.js";
import { startControlPlane } from "../runner/control-plane.js";
import { helpText, parseFlags, parsePort, type FlagSpec } from "./flags.js";

const FLAGS = {
  "xds-address": { type: "string", env: "WEFT_XDS_ADDRESS", default: "0.0.0.0", help: "address the xDS gRPC server binds" },
  "xds-port": { type: "string", env: "WEFT_XDS_PORT", default: "15010", help: "xDS gRPC port" },
  "admin-address": { type: "string", env: "WEFT_ADMIN_ADDRESS", default: "127.0.0.1", help: "address of the admin HTTP server" },
  "admin-port": { type: "string", env: "WEFT_ADMIN_PORT", default: "15014", help: "admin HTTP port (/metrics, /healthz, /readyz, /debug/syncz)" },
  "log-level": { type: "string", env: "WEFT_LOG_LEVEL", default: "info", help: "log level: debug, info, warn, error" },
  "shutdown-grace": { type: "string", env: "WEFT_SHUTDOWN_GRACE_MS", default: "5000", help: "milliseconds to wait for streams to close on shutdown" },
} satisfies Record<string, FlagSpec>;

export async function runServe(argv: string[]): Promise<number> {
  const { help, values } = parseFlags(argv, FLAGS);
  if (help) {
    process.stdout.write(helpText("serve", "Runs the Weft control plane: the xDS server Envoy connects to and the admin server.", FLAGS));
    return 0;
  }
  const logger = createLogger({ level: values["log-level"] });
  const cp = await startControlPlane({
    logger,
    xdsAddress: values["xds-address"],
    xdsPort: parsePort("xds-port", values["xds-port"]),
    adminAddress: values["admin-address"],
    adminPort: parsePort("admin-port", values["admin-port"]),
    processMetrics: true,
  });
  // Configuration sources (file directory, Kubernetes) plug in here; with none, the control
  // plane serves no snapshot and proxies wait.
  cp.markConfigLoaded();
  logger.info({ xdsPort: cp.xdsPort, adminPort: cp.adminPort }, "weft control plane ready");
  const grace = Number(values["shutdown-grace"]) || 5000;
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, "shutting down");
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  await cp.close(grace);
  return 0;
}
