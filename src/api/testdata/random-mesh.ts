// Random meshes for property tests (test-only; imported by *.test.ts files): ServiceEntries,
// WorkloadEntries, VirtualServices, DestinationRules and Gateways drawn from small pools of
// names, so that references resolve or miss, hosts collide, definitions repeat and exportTo
// hides services, as in a real config being edited. Every resource passes validateResource.
import fc from "fast-check";
import type { Sourced } from "../types.js";
import { validateResource } from "../validate-resource.js";

const NAMESPACES = ["default", "ns-a", "ns-b"];
const SERVICES = ["a", "b", "c", "d", "e"];
const SUBSETS = ["v1", "v2", "v9"];
const GATEWAYS = ["mesh", "gw-0", "istio-system/gw-1", "istio-system/gw-2"];

const namespace = fc.constantFrom(...NAMESPACES);
const service = fc.constantFrom(...SERVICES);
/** A host as a route may write it: short, qualified, misspelt or external. */
const hostRef = fc.oneof(
  service,
  fc.tuple(service, namespace).map(([s, ns]) => `${s}.${ns}.svc.cluster.local`),
  fc.tuple(service, namespace).map(([s, ns]) => `${s}.${ns}.svc.cluster.lcoal`),
  fc.constant("api.example.com"),
);
/** ... and as a DestinationRule may: also a wildcard. */
const ruleHost = fc.oneof(hostRef, fc.constant("*.example.com"));
const port = fc.constantFrom({ number: 80, name: "http", protocol: "HTTP" }, { number: 8080, name: "http-web", protocol: "HTTP" }, { number: 8080, name: "tcp-web", protocol: "TCP" }, { number: 9090, name: "grpc", protocol: "GRPC" });
const labels = fc.record({ app: service, version: fc.constantFrom("v1", "v2") });

const serviceEntry = fc
  .record({
    name: service,
    namespace,
    hosts: fc.uniqueArray(fc.oneof(fc.tuple(service, namespace).map(([s, ns]) => `${s}.${ns}.svc.cluster.local`), fc.constantFrom("api.example.com", "*.example.com")), { minLength: 1, maxLength: 2 }),
    ports: fc.uniqueArray(port, { minLength: 1, maxLength: 3, selector: (p) => p.number }),
    exportTo: fc.option(fc.constantFrom(["."], ["*"], ["ns-a"]), { nil: undefined }),
    selector: fc.option(service, { nil: undefined }),
    endpoints: fc.array(fc.record({ address: fc.integer({ min: 1, max: 20 }).map((i) => `10.0.0.${i}`), labels }), { minLength: 1, maxLength: 3 }),
  })
  .map(({ name, namespace, hosts, ports, exportTo, selector, endpoints }) => ({
    kind: "ServiceEntry",
    metadata: { name, namespace },
    spec: { hosts, ports, location: "MESH_INTERNAL", resolution: "STATIC", ...(exportTo ? { exportTo } : {}), ...(selector ? { workloadSelector: { labels: { app: selector } } } : { endpoints }) },
  }));

const workloadEntry = fc.record({ name: fc.constantFrom("w1", "w2", "w3"), namespace, address: fc.integer({ min: 1, max: 20 }).map((i) => `10.1.0.${i}`), labels, sa: fc.constantFrom("default", "reader") }).map(({ name, namespace, address, labels, sa }) => ({
  kind: "WorkloadEntry",
  metadata: { name, namespace },
  spec: { address, labels, serviceAccount: sa },
}));

const destination = fc.record({ host: hostRef, subset: fc.option(fc.constantFrom(...SUBSETS), { nil: undefined }) }).map(({ host, subset }) => ({ host, ...(subset ? { subset } : {}) }));

const virtualService = fc
  .record({
    name: service,
    namespace,
    hosts: fc.uniqueArray(fc.oneof(service, fc.constant("api.example.com")), { minLength: 1, maxLength: 2 }),
    gateways: fc.option(fc.uniqueArray(fc.constantFrom(...GATEWAYS), { minLength: 1, maxLength: 2 }), { nil: undefined }),
    routes: fc.array(destination, { minLength: 1, maxLength: 3 }),
    mirror: fc.option(destination, { nil: undefined }),
    timeout: fc.constantFrom("1s", "5s"),
  })
  .map(({ name, namespace, hosts, gateways, routes, mirror, timeout }) => ({
    kind: "VirtualService",
    metadata: { name, namespace },
    spec: { hosts, ...(gateways ? { gateways } : {}), http: [{ route: routes.map((d, i) => ({ destination: d, ...(routes.length > 1 ? { weight: i === 0 ? 100 - 30 * (routes.length - 1) : 30 } : {}) })), timeout, ...(mirror ? { mirror } : {}) }] },
  }));

const destinationRule = fc.record({ name: service, namespace, host: ruleHost, subsets: fc.uniqueArray(fc.constantFrom("v1", "v2"), { maxLength: 2 }) }).map(({ name, namespace, host, subsets }) => ({
  kind: "DestinationRule",
  metadata: { name, namespace },
  spec: { host, subsets: subsets.map((s) => ({ name: s, labels: { version: s } })) },
}));

const gateway = fc.constantFrom("gw-1", "gw-2", "gw-3").map((name) => ({
  kind: "Gateway",
  metadata: { name, namespace: "istio-system" },
  spec: { selector: { istio: "ingressgateway" }, servers: [{ port: { number: 80, name: "http", protocol: "HTTP" }, hosts: ["*"] }] },
}));

/** One random resource as a plain object (not yet validated). */
export const randomResource = fc.oneof(serviceEntry, serviceEntry, workloadEntry, virtualService, virtualService, destinationRule, gateway);

/** Validates plain objects as if read from one file, document by document; all of them must pass their own checks. */
export function sourcedAll(values: readonly object[], file = "mesh.yaml"): Sourced[] {
  return values.map((value, i) => {
    const { resource, issues } = validateResource({ apiVersion: "networking.istio.io/v1", ...value }, { file, document: i + 1 });
    if (!resource) throw new Error(`random resource is invalid: ${issues.map((x) => `${x.field}: ${x.message}`).join("; ")}`);
    return { resource, source: { file, document: i + 1 } };
  });
}

/** A random mesh: up to `max` resources. */
export const randomMesh = (max = 40) => fc.array(randomResource, { maxLength: max }).map((values) => sourcedAll(values));

/**
 * A random mesh and an edit of it: some resources replaced by new ones, some removed, some
 * added; the rest are the same objects (as a reload shares the resources of unchanged files).
 */
export const randomEdit = (max = 40) =>
  fc.tuple(randomMesh(max), fc.array(fc.tuple(fc.nat(), fc.constantFrom("replace", "remove", "add", "readdress"), randomResource), { maxLength: 5 }), fc.boolean()).map(([before, edits, addressesOnly]) => {
    const after = [...before];
    // Half the edits only move endpoints (the EDS fast path), as most changes of a live mesh do.
    for (const [pick, kind, value] of edits) {
      const what = addressesOnly ? "readdress" : kind;
      const [fresh] = sourcedAll([value], "edited.yaml");
      if (what === "add" || after.length === 0) after.push(fresh!);
      else if (what === "remove") after.splice(pick % after.length, 1);
      else if (what === "replace") after[pick % after.length] = fresh!;
      else after[pick % after.length] = readdressed(after[pick % after.length]!);
    }
    return { before, after };
  });

/** The same resource as a new object with its endpoints' (or its workload's) addresses moved: an endpoints-only change. */
function readdressed(s: Sourced): Sourced {
  const r = s.resource;
  const move = (address: string) => address.replace(/\.(\d+)$/, (_, n: string) => `.${(Number(n) % 200) + 21}`);
  if (r.kind === "ServiceEntry" && r.spec.endpoints) return { ...s, resource: { ...r, spec: { ...r.spec, endpoints: r.spec.endpoints.map((e) => ({ ...e, ...(e.address ? { address: move(e.address) } : {}) })) } } };
  if (r.kind === "WorkloadEntry" && r.spec.address) return { ...s, resource: { ...r, spec: { ...r.spec, address: move(r.spec.address) } } };
  return s;
}
