// Control-plane helpers for e2e tests: a real control plane (same wiring as `weft serve`)
// and waits on what proxies ACK.
import { createWriteStream } from "node:fs";
import type { Node } from "../../generated/envoy/config/core/v3/base.js";
import { createLogger, silentLogger } from "../../src/log/logger.js";
import { startControlPlane, type ControlPlane } from "../../src/runner/control-plane.js";
import type { AdmitStream } from "../../src/xds/stream-base.js";

/** Starts a control plane on loopback; logs go to $WEFT_E2E_LOG when set. */
export async function startTestControlPlane(opts: { xdsPort?: number; xdsAddress?: string; nodeKey?: (node: Node) => string; admit?: AdmitStream } = {}): Promise<ControlPlane> {
  const logFile = process.env.WEFT_E2E_LOG;
  const logger = logFile ? createLogger({ level: "debug", destination: createWriteStream(logFile, { flags: "a" }) }) : silentLogger();
  const cp = await startControlPlane({ logger, xdsAddress: opts.xdsAddress ?? "127.0.0.1", xdsPort: opts.xdsPort ?? 0, adminAddress: "127.0.0.1", adminPort: 0, nodeKey: opts.nodeKey, admit: opts.admit });
  cp.markConfigLoaded();
  return cp;
}

export { isSynced, waitForSync } from "../../src/runner/wait-for-sync.js";
