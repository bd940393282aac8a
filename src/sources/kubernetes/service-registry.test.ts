import { describe, expect, it } from "vitest";
import { buildMeshModel, resolveHost } from "../../model/mesh-model.js";
import { validateMesh } from "../../api/validate-mesh.js";
import { validateResource } from "../../api/validate-resource.js";
import type { Sourced } from "../../api/types.js";
import { ClusterRegistry } from "./cluster-registry.js";
import { endpointSliceRecord, namespaceRecord, nodeRecord, podRecord, serviceRecord, type KubeEndpointSlice, type KubePod, type KubeService } from "./kube-records.js";
import { serviceHostname } from "./service-registry.js";

const sourceOf = (s: { namespace: string; name: string }) => ({ file: `cluster: Service/${s.namespace}/${s.name}`, document: 0 });

function service(name: string, ns: string, spec: KubeService["spec"], annotations?: Record<string, string>): KubeService {
  return { metadata: { name, namespace: ns, resourceVersion: "1", ...(annotations ? { annotations } : {}) }, spec };
}

function slice(name: string, ns: string, svc: string, endpoints: NonNullable<KubeEndpointSlice["endpoints"]>, ports = [{ name: "http", port: 9080, protocol: "TCP" }]): KubeEndpointSlice {
  return { metadata: { name, namespace: ns, resourceVersion: "1", labels: { "kubernetes.io/service-name": svc } }, addressType: "IPv4", ports, endpoints };
}

function pod(name: string, ns: string, ip: string, labels: Record<string, string>, sa = "default", node = "node-a"): KubePod {
  return { metadata: { name, namespace: ns, resourceVersion: "1", labels }, spec: { serviceAccountName: sa, nodeName: node }, status: { podIP: ip, phase: "Running" } };
}

function registryWith(objects: { services?: KubeService[]; slices?: KubeEndpointSlice[]; pods?: KubePod[] }): ClusterRegistry {
  const r = new ClusterRegistry({ sourceOf });
  r.upsert(namespaceRecord({ metadata: { name: "bookinfo" } })!);
  r.upsert(nodeRecord({ metadata: { name: "node-a", labels: { "topology.kubernetes.io/region": "eu", "topology.kubernetes.io/zone": "eu-1" } } })!);
  for (const p of objects.pods ?? []) r.upsert(podRecord(p)!);
  for (const s of objects.services ?? []) r.upsert(serviceRecord(s)!);
  for (const s of objects.slices ?? []) r.upsert(endpointSliceRecord(s)!);
  return r;
}

const reviews = service("reviews", "bookinfo", { clusterIP: "10.96.0.10", clusterIPs: ["10.96.0.10"], ports: [{ name: "http", port: 9080, targetPort: 9080 }] });

describe("the registry from Services and EndpointSlices", () => {
  it("a ClusterIP Service becomes a STATIC mesh-internal ServiceEntry with its pods' labels, account and locality", () => {
    const r = registryWith({
      services: [reviews],
      pods: [pod("reviews-v1-abc", "bookinfo", "10.1.0.5", { app: "reviews", version: "v1" }, "bookinfo-reviews")],
      slices: [slice("reviews-1", "bookinfo", "reviews", [{ addresses: ["10.1.0.5"], conditions: { ready: true }, nodeName: "node-a", targetRef: { kind: "Pod", name: "reviews-v1-abc" } }])],
    });
    const [se, ...rest] = r.serviceEntries();
    expect(rest).toEqual([]);
    expect(se!.resource.metadata).toMatchObject({ name: "kubernetes:reviews", namespace: "bookinfo" });
    expect(se!.resource.spec).toEqual({
      hosts: ["reviews.bookinfo.svc.cluster.local"],
      addresses: ["10.96.0.10"],
      ports: [{ number: 9080, name: "http", protocol: "HTTP", targetPort: 9080 }],
      location: "MESH_INTERNAL",
      resolution: "STATIC",
      endpoints: [{ address: "10.1.0.5", ports: { http: 9080 }, labels: { app: "reviews", version: "v1" }, serviceAccount: "bookinfo-reviews", locality: "eu/eu-1" }],
    });
  });

  it("leaves out not-ready and terminating endpoints (serving or not)", () => {
    const r = registryWith({
      services: [reviews],
      slices: [
        slice("reviews-1", "bookinfo", "reviews", [
          { addresses: ["10.1.0.1"], conditions: { ready: true } },
          { addresses: ["10.1.0.2"], conditions: { ready: false } },
          { addresses: ["10.1.0.3"], conditions: { ready: false, serving: true, terminating: true } },
          { addresses: ["10.1.0.4"], conditions: { ready: false, serving: false, terminating: true } },
          { addresses: ["10.1.0.5"], conditions: {} }, // unset ready means ready
        ]),
      ],
    });
    expect(r.serviceEntries()[0]!.resource.spec.endpoints!.map((e) => e.address)).toEqual(["10.1.0.1", "10.1.0.5"]);
  });

  it("maps service ports to the slice's port numbers by name (named targetPort)", () => {
    const svc = service("ratings", "bookinfo", { clusterIP: "10.96.0.11", ports: [{ name: "http", port: 80, targetPort: "web" }, { name: "grpc-api", port: 81, targetPort: 7070 }] });
    const r = registryWith({
      services: [svc],
      slices: [slice("ratings-1", "bookinfo", "ratings", [{ addresses: ["10.1.0.7"] }], [{ name: "http", port: 8080, protocol: "TCP" }, { name: "grpc-api", port: 7070, protocol: "TCP" }])],
    });
    const spec = r.serviceEntries()[0]!.resource.spec;
    expect(spec.ports).toEqual([{ number: 80, name: "http", protocol: "HTTP" }, { number: 81, name: "grpc-api", protocol: "GRPC", targetPort: 7070 }]);
    expect(spec.endpoints![0]!.ports).toEqual({ http: 8080, "grpc-api": 7070 });
  });

  it("a headless Service keeps the client's pod IP (resolution NONE) and gives each endpoint hostname its own host", () => {
    const svc = service("db", "bookinfo", { clusterIP: "None", ports: [{ name: "tcp", port: 5432 }] });
    const r = registryWith({
      services: [svc],
      slices: [
        slice("db-1", "bookinfo", "db", [
          { addresses: ["10.1.0.20"], hostname: "db-0" },
          { addresses: ["10.1.0.21"], hostname: "db-1" },
          { addresses: ["10.1.0.22"], hostname: "db-2", conditions: { ready: false } },
        ], [{ name: "tcp", port: 5432, protocol: "TCP" }]),
      ],
    });
    const entries = r.serviceEntries();
    expect(entries.map((e) => [e.resource.spec.hosts[0], e.resource.spec.resolution, e.resource.spec.addresses, e.resource.spec.endpoints!.map((x) => x.address)])).toEqual([
      ["db.bookinfo.svc.cluster.local", "NONE", undefined, ["10.1.0.20", "10.1.0.21"]],
      ["db-0.db.bookinfo.svc.cluster.local", "STATIC", undefined, ["10.1.0.20"]],
      ["db-1.db.bookinfo.svc.cluster.local", "STATIC", undefined, ["10.1.0.21"]],
    ]);
  });

  it("an ExternalName Service resolves its external name by DNS, outside the mesh", () => {
    const svc = service("payments", "bookinfo", { type: "ExternalName", externalName: "api.payments.example.com", ports: [{ name: "https", port: 443 }] });
    const [se] = registryWith({ services: [svc] }).serviceEntries();
    expect(se!.resource.spec).toEqual({
      hosts: ["payments.bookinfo.svc.cluster.local"],
      ports: [{ number: 443, name: "https", protocol: "HTTPS" }],
      location: "MESH_EXTERNAL",
      resolution: "DNS",
      endpoints: [{ address: "api.payments.example.com", ports: { https: 443 } }],
    });
  });

  it("drops UDP ports, names unnamed ports, and reads exportTo from the annotation", () => {
    const svc = service("dns", "bookinfo", { clusterIP: "10.96.0.53", ports: [{ port: 53, protocol: "UDP" }, { port: 8053 }] }, { "networking.istio.io/exportTo": ".,istio-system" });
    const spec = registryWith({ services: [svc] }).serviceEntries()[0]!.resource.spec;
    expect(spec.ports).toEqual([{ number: 8053, name: "port-8053" }]);
    expect(spec.exportTo).toEqual([".", "istio-system"]);
  });

  it("a pod's label change re-converts its services; unrelated changes do not", () => {
    const r = registryWith({
      services: [reviews],
      pods: [pod("reviews-v1-abc", "bookinfo", "10.1.0.5", { app: "reviews", version: "v1" })],
      slices: [slice("reviews-1", "bookinfo", "reviews", [{ addresses: ["10.1.0.5"], targetRef: { kind: "Pod", name: "reviews-v1-abc" } }])],
    });
    const first = r.serviceEntries();
    expect(r.serviceEntries()[0]).toBe(first[0]); // memoised
    expect(r.upsert(podRecord({ ...pod("reviews-v1-abc", "bookinfo", "10.1.0.5", { app: "reviews", version: "v1" }), metadata: { name: "reviews-v1-abc", namespace: "bookinfo", resourceVersion: "2", labels: { app: "reviews", version: "v1" } } })!)).toBe(false);
    r.upsert(podRecord(pod("reviews-v1-abc", "bookinfo", "10.1.0.5", { app: "reviews", version: "v2" }))!);
    expect(r.serviceEntries()[0]!.resource.spec.endpoints![0]!.labels).toEqual({ app: "reviews", version: "v2" });
  });

  it("removing a slice removes its endpoints; removing the Service removes its entries", () => {
    const r = registryWith({ services: [reviews], slices: [slice("reviews-1", "bookinfo", "reviews", [{ addresses: ["10.1.0.5"] }])] });
    expect(r.serviceEntries()[0]!.resource.spec.endpoints).toHaveLength(1);
    r.remove("EndpointSlice", "bookinfo", "reviews-1");
    expect(r.serviceEntries()[0]!.resource.spec.endpoints).toEqual([]);
    r.remove("Service", "bookinfo", "reviews");
    expect(r.serviceEntries()).toEqual([]);
  });
});

describe("cluster services in the mesh model (short names as Istio resolves them)", () => {
  const r = registryWith({ services: [reviews], slices: [slice("reviews-1", "bookinfo", "reviews", [{ addresses: ["10.1.0.5"] }])] });
  const resources: Sourced[] = [...r.serviceEntries()];
  const vs = validateResource(
    {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name: "reviews", namespace: "bookinfo" },
      spec: { hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews" } }] }] },
    },
    { file: "vs.yaml", document: 1 },
  );

  it("a short host in a VirtualService of the same namespace names the cluster service", () => {
    const checked = validateMesh([...resources, { resource: vs.resource!, source: { file: "vs.yaml", document: 1 } }]);
    expect(checked.issues).toEqual([]);
    const model = buildMeshModel({ resources: checked.valid, issues: [] });
    expect(resolveHost(model, "reviews", "bookinfo")?.hostname).toBe("reviews.bookinfo.svc.cluster.local");
    expect(resolveHost(model, "reviews", "default")).toBeUndefined();
    expect(model.virtualServicesByHost.get("reviews.bookinfo.svc.cluster.local")).toHaveLength(1);
  });

  it("the hostname uses the cluster domain", () => {
    expect(serviceHostname("reviews", "bookinfo")).toBe("reviews.bookinfo.svc.cluster.local");
    expect(serviceHostname("reviews", "bookinfo", "corp.internal")).toBe("reviews.bookinfo.svc.corp.internal");
  });
});
