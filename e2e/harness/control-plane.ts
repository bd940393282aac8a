// Control-plane helpers for e2e tests: a real control plane (same wiring as `weft serve`)
// and waits on what proxies ACK.
import { createWriteStream } from "node:fs";
import type { Node } from "../../generated/envoy/config/core/v3/base.js";
import type { Snapshot } from "../../src/cache/snapshot.js";
import { PUSH_ORDER, TYPE_SHORT_NAMES } from "../../src/envoy/type-urls.js";
import { createLogger, silentLogger } from "../../src/log/logger.js";
import { startControlPlane, type ControlPlane } from "../../src/runner/control-plane.js";
import type { ProxyRegistry } from "../../src/xds/proxy-registry.js";

/** Starts a control plane on loopback; logs go to $WEFT_E2E_LOG when set. */
export async function startTestControlPlane(opts: { xdsPort?: number; nodeKey?: (node: Node) => string } = {}): Promise<ControlPlane> {
  const logFile = process.env.WEFT_E2E_LOG;
  const logger = logFile ? createLogger({ level: "debug", destination: createWriteStream(logFile, { flags: "a" }) }) : silentLogger();
  const cp = await startControlPlane({ logger, xdsAddress: "127.0.0.1", xdsPort: opts.xdsPort ?? 0, adminAddress: "127.0.0.1", adminPort: 0, nodeKey: opts.nodeKey });
  cp.markConfigLoaded();
  return cp;
}

/** True when the node has ACKed, for every type the snapshot holds resources of, that type's version. */
export function isSynced(registry: ProxyRegistry, nodeId: string, snapshot: Snapshot): boolean {
  const status = registry.byNode(nodeId)[0];
  if (!status) return false;
  return PUSH_ORDER.every((t) => {
    const r = snapshot.resources(t);
    if (r.resources.size === 0) return true;
    const ts = status.types[TYPE_SHORT_NAMES[t]];
    return ts !== undefined && !ts.pending && ts.ackedVersion === r.version;
  });
}

/** Resolves once the node has ACKed the snapshot (see isSynced); rejects after timeoutMs. */
export function waitForSync(registry: ProxyRegistry, nodeId: string, snapshot: Snapshot, timeoutMs = 15_000): Promise<void> {
  if (isSynced(registry, nodeId, snapshot)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!isSynced(registry, nodeId, snapshot)) return;
      cleanup();
      resolve();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`node ${nodeId} did not ACK snapshot ${snapshot.version} within ${timeoutMs} ms; status: ${JSON.stringify(registry.byNode(nodeId)[0]?.types)}`));
    }, timeoutMs);
    // ACK events cover pushes; the poll covers reconnects where nothing needed re-sending.
    const poll = setInterval(check, 50);
    const cleanup = () => {
      clearTimeout(timer);
      clearInterval(poll);
      registry.off("ack", check);
      registry.off("connect", check);
    };
    registry.on("ack", check);
    registry.on("connect", check);
  });
}
