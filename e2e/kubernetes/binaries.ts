// Where the Kubernetes fixture's programs are: kube-apiserver, kube-controller-manager and
// kubectl built by build.sh into a cache directory, etcd from the system (Debian etcd-server).
//
//   WEFT_K8S_BIN_DIR   a directory holding the three Kubernetes binaries (overrides the cache)
//   WEFT_K8S_CACHE     build.sh's cache directory (default ~/.cache/weft/kubernetes/<version>)
//   WEFT_ETCD_BIN      etcd (default: `etcd` on PATH)
import { accessSync, constants as fsConstants, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { onPath } from "../../src/capture/pod-network.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The build script, for error messages and for tests that want to build on demand. */
export const BUILD_SCRIPT = path.join(HERE, "build.sh");

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

function executable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The directory build.sh writes the binaries to (they may not be built yet). */
export function kubernetesBinDir(): string {
  if (process.env.WEFT_K8S_BIN_DIR) return process.env.WEFT_K8S_BIN_DIR;
  const cacheHome = process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  const cache = process.env.WEFT_K8S_CACHE || path.join(cacheHome, "weft", "kubernetes", kubernetesVersion());
  return path.join(cache, "bin");
}

/** Finds every binary, or says what is missing and how to get it. */
export function findKubernetesBinaries(): KubernetesBinaries {
  const dir = kubernetesBinDir();
  const missing: string[] = [];
  const inDir = (name: string) => {
    const file = path.join(dir, name);
    if (!executable(file)) missing.push(`${file} (run ${path.relative(process.cwd(), BUILD_SCRIPT)}, ~10 min once)`);
    return file;
  };
  const kubeApiserver = inDir("kube-apiserver");
  const kubeControllerManager = inDir("kube-controller-manager");
  const kubectl = inDir("kubectl");
  const etcd = process.env.WEFT_ETCD_BIN || "etcd";
  if (!(etcd.includes("/") ? executable(etcd) : onPath(etcd))) {
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
