// Wires resource status for a running mesh in Kubernetes mode: a StatusController fed by the
// runner's xDS proxy registry, snapshot cache, model and leader election, writing through the
// status subresource of the cluster's Istio objects. The caller passes each applied config to
// `configApplied` (MeshRunnerOptions.onApplied).
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "../log/logger.js";
import { ISTIO_KINDS } from "../sources/kubernetes/istio-kinds.js";
import { KubernetesStatusWriter } from "../status/kubernetes-status-writer.js";
import { StatusController, type StatusControllerOptions } from "../status/status-controller.js";
import type { MeshRunner } from "./mesh-runner.js";

export interface StatusWritingOptions extends Partial<Pick<StatusControllerOptions, "debounceMs" | "ratePerSecond" | "burst">> {
  kubeConfig: KubeConfig;
  /** The Kubernetes source's cluster ID (default "Kubernetes"). */
  clusterId?: string;
  logger: Logger;
  /** Wraps each write (tests count them). */
  wrapWrite?: (write: StatusControllerOptions["write"]) => StatusControllerOptions["write"];
}

export function startStatusWriting(runner: MeshRunner, opts: StatusWritingOptions): StatusController {
  const writer = new KubernetesStatusWriter(opts.kubeConfig, ISTIO_KINDS);
  return new StatusController({
    clusterId: opts.clusterId ?? "Kubernetes",
    kinds: ISTIO_KINDS,
    write: opts.wrapWrite ? opts.wrapWrite(writer.write) : writer.write,
    leader: runner.leader,
    proxies: runner.cp.xds.registry,
    snapshot: (key) => runner.cp.cache.get(key),
    model: () => runner.controller.currentModel,
    logger: opts.logger,
    ...(opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {}),
    ...(opts.ratePerSecond !== undefined ? { ratePerSecond: opts.ratePerSecond } : {}),
    ...(opts.burst !== undefined ? { burst: opts.burst } : {}),
  });
}
