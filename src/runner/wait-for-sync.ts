// Waiting until a proxy has ACKed a snapshot: used by `weft demo` (to say "ready" only when
// every Envoy has its config) and by the e2e tests.
import type { Snapshot } from "../cache/snapshot.js";
import { PUSH_ORDER, TYPE_SHORT_NAMES } from "../envoy/type-urls.js";
import type { ProxyRegistry } from "../xds/proxy-registry.js";

/** True when the node has ACKed, for every type the snapshot holds resources of, that type's version. */
export function isSynced(registry: ProxyRegistry, nodeId: string, snapshot: Snapshot): boolean {
  const status = registry.byNode(nodeId)[0];
  if (!status) return false;
  return PUSH_ORDER.every((t) => {
    const r = snapshot.served(t, status.virtualHostDiscovery ?? false);
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

/**
 * Resolves once every connected proxy has ACKed its *current* snapshot (re-read on every check,
 * so a snapshot replaced meanwhile — e.g. by a certificate rotation — is not waited for forever).
 * Resolves false after timeoutMs.
 */
export async function waitForAllSynced(registry: ProxyRegistry, snapshotOf: (key: string) => Snapshot | undefined, timeoutMs = 10_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const synced = registry.list().every((p) => {
      const snap = snapshotOf(p.snapshotKey);
      return !snap || isSynced(registry, p.nodeId, snap);
    });
    if (synced) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}
