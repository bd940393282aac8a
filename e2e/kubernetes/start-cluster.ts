// Starts the test cluster (and the kubelet harness, one node) by hand, until Ctrl-C:
//
//   npx tsx e2e/kubernetes/start-cluster.ts
//   export KUBECONFIG=<the printed path>; ~/.cache/weft/kubernetes/v1.33.13/bin/kubectl get nodes
//
// Pods it runs are network namespaces on the weft0 bridge: root only, and hold
// /tmp/weft-pods.lock (flock) while it runs if others use pods on this machine.
import { startKubernetes } from "./cluster.js";
import { Kubelet } from "./kubelet.js";

const cluster = await startKubernetes();
let kubelet: Kubelet | undefined;
try {
  kubelet = await Kubelet.start(cluster.kubeConfig, { nodes: [{ name: "node-a" }] });
} catch (err) {
  await cluster.stop();
  throw err;
}
console.log(`Kubernetes ${cluster.binaries.version} ready in ${cluster.startupMs} ms at ${cluster.server}`);
console.log(`export KUBECONFIG=${cluster.kubeconfigPath}`);
console.log(`kubectl: ${cluster.binaries.kubectl}`);
console.log("Ctrl-C stops it and removes everything.");
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await kubelet?.stop();
  await cluster.stop();
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
setInterval(() => {}, 60_000);
