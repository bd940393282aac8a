// The identity an Istio sidecar presents to its control plane (what pilot-agent puts in Envoy's
// node): shared by the simulated sidecars and the real Envoys of the istiod-vs-Weft bench.

/** One pod's sidecar, as the bench reads it from the API server. */
export interface Sidecar {
  ip: string;
  pod: string;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount: string;
}

/** Envoy's node: id `sidecar~IP~pod.ns~ns.svc.cluster.local`, cluster, and Istio's metadata. */
export function istioNode(s: Sidecar): { id: string; cluster: string; metadata: Record<string, unknown> } {
  return {
    id: `sidecar~${s.ip}~${s.pod}.${s.namespace}~${s.namespace}.svc.cluster.local`,
    cluster: `${s.labels.app ?? s.pod}.${s.namespace}`,
    metadata: {
      NAMESPACE: s.namespace,
      LABELS: s.labels, // a map, as pilot-agent sends it (istiod rejects a JSON string)
      CLUSTER_ID: "Kubernetes",
      ISTIO_VERSION: "1.29.0",
      INTERCEPTION_MODE: "REDIRECT",
      POD_NAME: s.pod,
      SERVICE_ACCOUNT: s.serviceAccount,
    },
  };
}
