// Where the Kubernetes fixture's programs are: kube-apiserver, kube-controller-manager and
// kubectl built by `scripts/cached-go-build.sh kubernetes` into a cache directory, etcd from the system (Debian etcd-server).
//
//   WEFT_K8S_BIN_DIR   a directory holding the three Kubernetes binaries (overrides the cache)
//   WEFT_K8S_CACHE     the build's cache directory (default ~/.cache/weft/kubernetes/<version>)
//   WEFT_ETCD_BIN      etcd (default: `etcd` on PATH)
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { onPath } from "../../src/capture/pod-network.js";
import { goToolBinDir, goToolBuildCommand, isExecutable } from "../../src/demo/go-tool-cache.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The build command, for error messages. */
export const BUILD_COMMAND = goToolBuildCommand("kubernetes");

/** The Kubernetes version pinned in our Go module (e.g. "v1.33.13"). */
export function kubernetesVersion(): string {
  const goMod = readFileSync(path.join(HERE, "go", "go.mod"), "utf8");
  const match = /^require k8s\.io\/kubernetes (v\d+\.\d+\.\d+)$/m.exec(goMod);
  if (!match) throw new Error(`${path.join(HERE, "go", "go.mod")}: no "require k8s.io/kubernetes vX.Y.Z" line`);
  return match[1]!;
}

export interface KubernetesBinaries {
  version: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubectl: string;
  etcd: string;
}

/** The directory the build writes the binaries to (they may not be built yet). */
export function kubernetesBinDir(): string {
  return process.env.WEFT_K8S_BIN_DIR || goToolBinDir("kubernetes", kubernetesVersion(), "WEFT_K8S_CACHE");
}

/** Finds every binary, or says what is missing and how to get it. */
export function findKubernetesBinaries(): KubernetesBinaries {
  const dir = kubernetesBinDir();
  const missing: string[] = [];
  const inDir = (name: string) => {
    const file = path.join(dir, name);
    if (!isExecutable(file)) missing.push(`${file} (run ${BUILD_COMMAND}, ~10 min once)`);
    return file;
  };
  const kubeApiserver = inDir("kube-apiserver");
  const kubeControllerManager = inDir("kube-controller-manager");
  const kubectl = inDir("kubectl");
  const etcd = process.env.WEFT_ETCD_BIN || "etcd";
  if (!(etcd.includes("/") ? isExecutable(etcd) : onPath(etcd))) {
    missing.push(`${etcd} (apt-get install etcd-server, or set WEFT_ETCD_BIN)`);
  }
  if (missing.length > 0) throw new Error(`Kubernetes test fixture: missing ${missing.join("; ")}`);
  return { version: kubernetesVersion(), kubeApiserver, kubeControllerManager, kubectl, etcd };
}

/**
 * Whether e2e tests can use the fixture here, and if not why (the reason goes into the skipped
 * test's name). With WEFT_K8S_REQUIRED=1 (set by .ci/run) a missing part throws instead, so CI
 * never passes by skipping.
 */
export function kubernetesSupport(): { available: boolean; reason?: string } {
  let reason: string | undefined;
  if (process.platform !== "linux" || process.getuid?.() !== 0) reason = "needs root on Linux (pods are network namespaces)";
  else {
    try {
      findKubernetesBinaries();
    } catch (err) {
      reason = (err as Error).message;
    }
  }
  if (reason && process.env.WEFT_K8S_REQUIRED === "1") throw new Error(`WEFT_K8S_REQUIRED=1 but ${reason}`);
  return reason ? { available: false, reason } : { available: true };
}
