// A pod's sidecar Envoy against a MeshRunner with security on: transparent capture
// (INTERCEPTION_MODE REDIRECT), xDS over TLS verified against the mesh root, and the
// workload's bootstrap credential when given (without one it gets no certificate).
import type { EnvoyProcess } from "../../src/envoy/envoy-process.js";
import { startEnvoy } from "../../src/envoy/envoy-process.js";
import { renderBootstrap } from "../../src/envoy/bootstrap.js";
import { bridgeAddress, type Pod } from "../../src/capture/pod-network.js";
import { SIDECAR_ADMIN_PORT, sidecarEnvoyOptions } from "../../src/capture/sidecar.js";
import { NODE_METADATA } from "../../src/model/proxy.js";
import type { MeshRunner } from "../../src/runner/mesh-runner.js";

/** Starts the sidecar of `pod` as workload `name` in namespace default; labels default to { app: name }. */
export function startSecureSidecar(runner: MeshRunner, pod: Pod, name: string, opts: { token?: string; claimLabels?: Record<string, string> } = {}): Promise<EnvoyProcess> {
  const sec = runner.security!;
  const metadata = {
    [NODE_METADATA.namespace]: "default",
    [NODE_METADATA.labels]: JSON.stringify(opts.claimLabels ?? { app: name }),
    [NODE_METADATA.interceptionMode]: "REDIRECT",
  };
  const bootstrapYaml = renderBootstrap({
    nodeId: `sidecar~${pod.ip}~${name}.default~default.svc.cluster.local`,
    cluster: name,
    metadata,
    xdsAddress: bridgeAddress(),
    xdsPort: runner.cp.xdsPort,
    adminAddress: pod.ip,
    adminPort: SIDECAR_ADMIN_PORT,
    ...(opts.token ? { xdsToken: opts.token } : {}),
    xdsTls: { caFile: sec.trustBundleFile, sni: sec.serverName },
  });
  return startEnvoy({ bootstrapYaml, ...sidecarEnvoyOptions(pod), waitForLive: false });
}
