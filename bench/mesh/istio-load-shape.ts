// The mesh of Istio's load tests, as Istio YAML: N namespaces × S services, each service a
// ServiceEntry (cluster-local host, VIP, HTTP port 8080; every 10th also a TCP port 3306)
// selecting two WorkloadEntries (version v1 and v2), a DestinationRule (subsets v1/v2,
// connection pool, outlier detection) and a VirtualService (90/10 split v1/v2, timeout,
// retries). One simulated sidecar per workload (its namespace and labels as node metadata).
//
// The YAML goes through the same parser and validator as `weft serve --config-dir` (one file
// per service).
import { parseDocuments, validateResource } from "../../src/api/validate-resource.js";
import { validateMesh } from "../../src/api/validate-mesh.js";
import type { MeshConfig, Sourced } from "../../src/api/types.js";

export interface LoadShape {
  namespaces: number;
  servicesPerNamespace: number;
}

/** What a change may alter: service i's endpoint addresses, its route split, extra services. */
export interface ShapeVariant {
  /** Service index (global) whose v1 workload moves to another address, and the generation of that move. */
  movedEndpoint?: { service: number; generation: number };
  /** Service index (global) whose VirtualService sends 50/50 instead of 90/10. */
  shiftedRoute?: number;
  /** Extra services appended after the last one (they form namespace load-<N>, N = namespaces). */
  extraServices?: number;
}

export function serviceName(shape: LoadShape, global: number): { ns: string; name: string; host: string } {
  const ns = `load-${Math.floor(global / shape.servicesPerNamespace)}`;
  const name = `svc-${global % shape.servicesPerNamespace}`;
  return { ns, name, host: `${name}.${ns}.svc.cluster.local` };
}

function ipOf(prefix: number, n: number): string {
  return `${prefix}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

function serviceYaml(shape: LoadShape, i: number, variant: ShapeVariant): string {
  const { ns, name, host } = serviceName(shape, i);
  const tcp = i % 10 === 0;
  const moved = variant.movedEndpoint?.service === i ? variant.movedEndpoint.generation : 0;
  const v1Weight = variant.shiftedRoute === i ? 50 : 90;
  const workloads = ["v1", "v2"]
    .map(
      (version, k) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${name}-${version}, namespace: ${ns} }
spec:
  address: ${ipOf(10, (i * 2 + k) * 4 + (k === 0 ? moved % 4 : 0) + 0x400000)}
  labels: { app: ${name}, version: ${version} }
  serviceAccount: ${name}
`,
    )
    .join("---\n");
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: ${ns} }
spec:
  hosts: [${host}]
  addresses: [${ipOf(240, i + 1)}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - { number: 8080, name: http, protocol: HTTP }
${tcp ? "  - { number: 3306, name: tcp-db, protocol: TCP }\n" : ""}  workloadSelector: { labels: { app: ${name} } }
---
${workloads}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: ${ns} }
spec:
  host: ${host}
  trafficPolicy:
    connectionPool: { tcp: { maxConnections: 100 }, http: { http1MaxPendingRequests: 100, maxRequestsPerConnection: 10 } }
    outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s }
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: ${ns} }
spec:
  hosts: [${host}]
  http:
  - timeout: 5s
    retries: { attempts: 2, perTryTimeout: 2s, retryOn: "5xx,connect-failure" }
    route:
    - { destination: { host: ${host}, subset: v1 }, weight: ${v1Weight} }
    - { destination: { host: ${host}, subset: v2 }, weight: ${100 - v1Weight} }
`;
}

export function loadShapeYaml(shape: LoadShape, variant: ShapeVariant = {}): string {
  const total = shape.namespaces * shape.servicesPerNamespace + (variant.extraServices ?? 0);
  return Array.from({ length: total }, (_, i) => serviceYaml(shape, i, variant)).join("---\n");
}

/** One service's file (ServiceEntry, WorkloadEntries, DestinationRule, VirtualService), parsed and validated. */
export function parseService(shape: LoadShape, i: number, variant: ShapeVariant): Sourced[] {
  const file = `bench/mesh/load-shape/${serviceName(shape, i).ns}/${serviceName(shape, i).name}.yaml`;
  const { docs, issues } = parseDocuments(serviceYaml(shape, i, variant), file);
  const out: Sourced[] = [];
  for (const d of docs) {
    const r = validateResource(d.value, { file, document: d.document });
    issues.push(...r.issues);
    if (r.resource) out.push({ resource: r.resource, source: { file, document: d.document } });
  }
  if (issues.length > 0) throw new Error(`load shape config invalid: ${issues.slice(0, 3).map((x) => JSON.stringify(x)).join("; ")}`);
  return out;
}

/**
 * Mesh configs for a sequence of variants, parsed and validated like the file source does
 * (one file per service; a variant re-parses only the services it changes).
 */
export function loadShapeConfigs(shape: LoadShape, variants: readonly ShapeVariant[]): MeshConfig[] {
  const base = Array.from({ length: shape.namespaces * shape.servicesPerNamespace }, (_, i) => parseService(shape, i, {}));
  const checked = (files: Sourced[][]): MeshConfig => {
    const mesh = validateMesh(files.flat());
    if (mesh.issues.length > 0) throw new Error(`load shape config invalid: ${mesh.issues.slice(0, 3).map((x) => JSON.stringify(x)).join("; ")}`);
    return { resources: mesh.valid, issues: [] };
  };
  checked(base);
  return variants.map((variant) => {
    const files = [...base];
    for (const i of [variant.movedEndpoint?.service, variant.shiftedRoute]) if (i !== undefined) files[i] = parseService(shape, i, variant);
    for (let k = 0; k < (variant.extraServices ?? 0); k++) files.push(parseService(shape, base.length + k, variant));
    // A moved endpoint or a new split leaves cross-resource references as they were (the base
    // passed validateMesh); a new service is checked again.
    return variant.extraServices ? checked(files) : { resources: files.flat(), issues: [] };
  });
}

/** One config (see loadShapeConfigs). */
export function loadShapeConfig(shape: LoadShape, variant: ShapeVariant = {}): MeshConfig {
  return loadShapeConfigs(shape, [variant])[0]!;
}

/** One sidecar per workload: what bench/go/loadgen -node-meta reads. */
export function loadShapeNodes(shape: LoadShape): { id: string; cluster: string; metadata: Record<string, string> }[] {
  const out = [];
  for (let i = 0; i < shape.namespaces * shape.servicesPerNamespace; i++) {
    const { ns, name } = serviceName(shape, i);
    for (const [k, version] of ["v1", "v2"].entries()) {
      out.push({
        id: `sidecar~${ipOf(10, (i * 2 + k) * 4 + 0x400000)}~${name}-${version}.${ns}~${ns}.svc.cluster.local`,
        cluster: `${name}.${ns}`,
        metadata: { NAMESPACE: ns, LABELS: JSON.stringify({ app: name, version }), INTERCEPTION_MODE: "REDIRECT" },
      });
    }
  }
  return out;
}
