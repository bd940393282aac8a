// Running a pod's sidecar Envoy: inside the pod's network namespace, as the proxy uid that
// the capture rules exempt (see iptables.ts), so Envoy's own upstream connections are not
// redirected back into it.
//
//   const envoy = await startEnvoy({ bootstrapYaml, ...sidecarEnvoyOptions(pod) });
//
// The admin API must listen on the pod's IP (not 127.0.0.1, which is the pod's own
// loopback): this process reads it from the host through the bridge. Port 15000 is never
// captured inbound, so `admin: { address: <pod.ip>, port_value: 15000 }` works.

import type { StartEnvoyOptions } from "../envoy/envoy-process.js";
import { netnsExecPrefix, type Pod } from "./pod-network.js";

/** The conventional sidecar uid/gid (Istio's). */
export const DEFAULT_PROXY_UID = 1337;
/** Where a pod's Envoy admin API listens (on the pod IP); never captured. */
export const SIDECAR_ADMIN_PORT = 15000;

/**
 * `ip netns exec <pod.netns> setpriv --reuid=<uid> --regid=<gid> --clear-groups --pdeathsig KILL --`:
 * for StartEnvoyOptions.commandPrefix. setpriv re-arms the parent-death signal after the
 * user switch (which clears it), so Envoy still dies with this process.
 */
export function envoyCommandPrefix(pod: Pick<Pod, "netns">, uid = DEFAULT_PROXY_UID, gid = uid): string[] {
  return netnsExecPrefix(pod.netns, { uid, gid });
}

/**
 * Envoy flags every sidecar runs with. Listener changes (mTLS mode, authorization) apply to new
 * connections only; draining old ones at once moves pooled keep-alive connections from other
 * sidecars to the new config within a second (the default drain is 600 s, gradual).
 */
export const SIDECAR_ENVOY_ARGS: readonly string[] = ["--drain-time-s", "1", "--drain-strategy", "immediate"];

/** commandPrefix, workDirOwner, flags and a name for startEnvoy, to run Envoy as `uid` in `pod`. */
export function sidecarEnvoyOptions(pod: Pick<Pod, "netns" | "name">, uid = DEFAULT_PROXY_UID, gid = uid):
  Required<Pick<StartEnvoyOptions, "commandPrefix" | "workDirOwner" | "name" | "extraArgs">> {
  return {
    name: `sidecar-${pod.name}`,
    commandPrefix: envoyCommandPrefix(pod, uid, gid),
    workDirOwner: { uid, gid },
    extraArgs: [...SIDECAR_ENVOY_ARGS],
  };
}
