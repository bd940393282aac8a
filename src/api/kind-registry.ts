// The one registry of Istio kinds Weft reads (house rule 9). Each kind is declared once here:
// its API group and versions, its Kubernetes names (plural, short names, scope, printer
// columns), the file holding its TypeScript type, its spec validator, and its place in the mesh
// model (which list holds it and how a change to it is diffed). Every list of kinds is derived
// from ISTIO_KINDS: the validators' accepted kinds and messages, the Kubernetes source's
// watches, the CRDs (scripts/gen-crds.ts), the model's lists (MeshModel's rule lists) and the
// model diff. To add a kind: write its type (types.ts or a group's types.ts) and its spec check
// (validate-<kind>.ts), then add one `declareKind<YourType>()({...})` entry below.
import type { IssueCollector } from "./field-checks.js";
import { checkPeerAuthenticationSpec, checkAuthorizationPolicySpec, checkRequestAuthenticationSpec } from "./security/validate-security.js";
import { SECURITY_GROUP, SECURITY_VERSIONS, type AuthorizationPolicy, type PeerAuthentication, type RequestAuthentication } from "./security/types.js";
import { NETWORKING_GROUP, NETWORKING_VERSIONS, type DestinationRule, type Gateway, type ObjectMeta, type ServiceEntry, type Sidecar, type VirtualService, type WorkloadEntry } from "./types.js";
import { checkDestinationRuleSpec } from "./validate-destination-rule.js";
import { checkGatewaySpec, checkSidecarSpec } from "./validate-gateway.js";
import { checkServiceEntrySpec, checkWorkloadEntrySpec } from "./validate-service-entry.js";
import { checkVirtualServiceSpec } from "./validate-virtual-service.js";
import type { EnvoyFilter } from "./envoy-filter.js";
import { checkEnvoyFilterSpec } from "./validate-envoy-filter.js";
import { TELEMETRY_GROUP, TELEMETRY_VERSIONS, type Telemetry } from "./telemetry/types.js";
import { checkTelemetrySpec } from "./telemetry/validate-telemetry.js";

/** Any Istio resource shape: what a kind's type must look like. */
export interface ResourceShape {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: unknown;
}

/** Checks a kind's spec, reporting every problem into `c` under `path`. */
export type SpecCheck = (c: IssueCollector, value: unknown, path: string) => void;

/** A column `kubectl get` prints for the kind (CRD additionalPrinterColumns). */
export interface PrinterColumn {
  name: string;
  type: "string" | "date";
  jsonPath: string;
  description: string;
}

/**
 * Where a kind's valid resources go in the mesh model, and what a change to them means:
 * - `rules`: a list of the model (sorted by namespace/name) compared whole by the model diff;
 *   any change regenerates everything;
 * - `by-host`: a list of the model whose changes the model diff traces to the service hosts
 *   its resources name (VirtualService hosts, DestinationRule host): only what derives from
 *   those services is translated again (the diff knows each such kind's fields);
 * - `workloads`: the list of workloads; adding or removing one changes only endpoints, a
 *   change of labels or service account re-keys proxies (full regeneration);
 * - `services`: not kept as a list; the model derives services (hosts x ports) from them, and
 *   the diff compares those (an endpoint-only change takes the EDS fast path).
 */
export type ModelSlot = { list: string; diff: "rules" | "by-host" | "workloads" } | { list?: undefined; diff: "services" };

export interface KindDeclaration<R extends ResourceShape = ResourceShape, M extends ModelSlot = ModelSlot> {
  kind: R["kind"];
  group: string;
  /** Versions Weft accepts, preferred first (the Kubernetes source watches the first one a cluster serves). */
  versions: readonly string[];
  /** The version Istio's CRD stores. */
  storageVersion: string;
  /** Lower-case plural: the resource name in API paths and RBAC rules. */
  plural: string;
  shortNames: readonly string[];
  scope: "Namespaced";
  printerColumns: readonly PrinterColumn[];
  /** The file declaring `type <Kind> = Base<"<Kind>", Spec>` (read by scripts/gen-crds.ts). */
  typesFile: string;
  /** `required`: a document without a spec is an error; `optional`: a missing spec is `{}`. */
  spec: "required" | "optional";
  check: SpecCheck;
  model: M;
  /** Carries the kind's TypeScript type; never set. */
  readonly resourceType?: R;
}

/** Declares a kind whose resources have the type R (`declareKind<VirtualService>()({...})`). */
function declareKind<R extends ResourceShape>() {
  return <const M extends ModelSlot>(declaration: Omit<KindDeclaration<R, M>, "resourceType">): KindDeclaration<R, M> => declaration;
}

const AGE: PrinterColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp", description: "Time since the object was created." };

const NETWORKING = { group: NETWORKING_GROUP, versions: NETWORKING_VERSIONS, storageVersion: "v1", scope: "Namespaced", typesFile: "src/api/types.ts", spec: "required" } as const;
const SECURITY = { group: SECURITY_GROUP, versions: SECURITY_VERSIONS, storageVersion: "v1", scope: "Namespaced", typesFile: "src/api/security/types.ts", spec: "optional" } as const;

/** Every kind Weft reads, in the order messages list them and the Kubernetes source watches them. */
export const ISTIO_KINDS = [
  declareKind<ServiceEntry>()({
    ...NETWORKING, kind: "ServiceEntry", plural: "serviceentries", shortNames: ["se"], check: checkServiceEntrySpec, model: { diff: "services" },
    printerColumns: [
      { name: "Hosts", type: "string", jsonPath: ".spec.hosts", description: "Hosts of the service." },
      { name: "Location", type: "string", jsonPath: ".spec.location", description: "MESH_EXTERNAL or MESH_INTERNAL." },
      { name: "Resolution", type: "string", jsonPath: ".spec.resolution", description: "NONE, STATIC, DNS or DNS_ROUND_ROBIN." }, AGE],
  }),
  declareKind<WorkloadEntry>()({
    ...NETWORKING, kind: "WorkloadEntry", plural: "workloadentries", shortNames: ["we"], check: checkWorkloadEntrySpec, model: { list: "workloads", diff: "workloads" },
    printerColumns: [AGE, { name: "Address", type: "string", jsonPath: ".spec.address", description: "Address of the workload." }],
  }),
  declareKind<VirtualService>()({
    ...NETWORKING, kind: "VirtualService", plural: "virtualservices", shortNames: ["vs"], check: checkVirtualServiceSpec, model: { list: "virtualServices", diff: "by-host" },
    printerColumns: [
      { name: "Gateways", type: "string", jsonPath: ".spec.gateways", description: "Gateways and sidecars the routes apply to." },
      { name: "Hosts", type: "string", jsonPath: ".spec.hosts", description: "Destination hosts the routes are for." }, AGE],
  }),
  declareKind<DestinationRule>()({
    ...NETWORKING, kind: "DestinationRule", plural: "destinationrules", shortNames: ["dr"], check: checkDestinationRuleSpec, model: { list: "destinationRules", diff: "by-host" },
    printerColumns: [{ name: "Host", type: "string", jsonPath: ".spec.host", description: "The service the policies apply to." }, AGE],
  }),
  declareKind<Gateway>()({ ...NETWORKING, kind: "Gateway", plural: "gateways", shortNames: ["gw"], check: checkGatewaySpec, model: { list: "gateways", diff: "rules" }, printerColumns: [] }),
  declareKind<Sidecar>()({ ...NETWORKING, kind: "Sidecar", plural: "sidecars", shortNames: [], check: checkSidecarSpec, model: { list: "sidecars", diff: "rules" }, printerColumns: [] }),
  declareKind<EnvoyFilter>()({
    ...NETWORKING, kind: "EnvoyFilter", versions: ["v1alpha3"], storageVersion: "v1alpha3", typesFile: "src/api/envoy-filter.ts", plural: "envoyfilters", shortNames: [],
    check: checkEnvoyFilterSpec, model: { list: "envoyFilters", diff: "rules" }, printerColumns: [AGE],
  }),
  declareKind<PeerAuthentication>()({
    ...SECURITY, kind: "PeerAuthentication", plural: "peerauthentications", shortNames: ["pa"], check: checkPeerAuthenticationSpec, model: { list: "peerAuthentications", diff: "rules" },
    printerColumns: [{ name: "Mode", type: "string", jsonPath: ".spec.mtls.mode", description: "The mutual TLS mode." }, AGE],
  }),
  declareKind<AuthorizationPolicy>()({
    ...SECURITY, kind: "AuthorizationPolicy", plural: "authorizationpolicies", shortNames: ["ap"], check: checkAuthorizationPolicySpec, model: { list: "authorizationPolicies", diff: "rules" },
    printerColumns: [{ name: "Action", type: "string", jsonPath: ".spec.action", description: "ALLOW, DENY, AUDIT or CUSTOM." }, AGE],
  }),
  declareKind<RequestAuthentication>()({
    ...SECURITY, kind: "RequestAuthentication", plural: "requestauthentications", shortNames: ["ra"], check: checkRequestAuthenticationSpec, model: { list: "requestAuthentications", diff: "rules" },
    printerColumns: [],
  }),
  declareKind<Telemetry>()({
    kind: "Telemetry", group: TELEMETRY_GROUP, versions: TELEMETRY_VERSIONS, storageVersion: "v1", scope: "Namespaced", typesFile: "src/api/telemetry/types.ts", spec: "optional",
    plural: "telemetries", shortNames: ["telemetry"], check: checkTelemetrySpec, model: { list: "telemetries", diff: "rules" }, printerColumns: [AGE],
  }),
] as const;

/** Real Istio kinds Weft does not read yet: ignored with a warning, never suggested as "did you mean". */
export const UNSUPPORTED_ISTIO_KINDS: Readonly<Record<string, readonly string[]>> = {
  [NETWORKING_GROUP]: ["WorkloadGroup", "ProxyConfig"],
};

export type DeclaredKind = (typeof ISTIO_KINDS)[number];
/** The type of a declaration's resources. */
export type ResourceOf<D> = D extends KindDeclaration<infer R, ModelSlot> ? R : never;
/** Every resource Weft reads (any declared kind). */
export type IstioResource = ResourceOf<DeclaredKind>;
export type IstioKindName = IstioResource["kind"];

/** Declarations with a list in the model, and the type of that list. */
type Listed = DeclaredKind extends infer D ? (D extends { model: { list: string } } ? D : never) : never;
/** The model's lists of resources, one per declared kind with a list: `{ virtualServices: VirtualService[]; ... }`. */
export type ModelLists = { [D in Listed as D["model"]["list"]]: ResourceOf<D>[] };
export type ModelListName = keyof ModelLists;

/** The model list holding a kind's resources, if it has one. */
export function modelListOf(d: DeclaredKind): ModelListName | undefined {
  const model: ModelSlot = d.model;
  return model.list as ModelListName | undefined;
}

/** The lists the model diff compares whole (`diff: "rules"`), in declaration order. */
export const RULE_LISTS: readonly ModelListName[] = ISTIO_KINDS.flatMap((d) => (d.model.diff === "rules" ? [modelListOf(d)!] : []));

const BY_KIND = new Map<string, DeclaredKind>(ISTIO_KINDS.map((d) => [d.kind, d]));

/** The declaration of `kind`, if Weft reads it. */
export function kindDeclaration(kind: string): DeclaredKind | undefined {
  return BY_KIND.get(kind);
}

/** One API group as declared: its versions (from its first kind; every kind of a group shares them) and kinds. */
export interface DeclaredGroup {
  group: string;
  versions: readonly string[];
  storageVersion: string;
  kinds: readonly DeclaredKind[];
  /** Real kinds of the group Weft ignores with a warning. */
  ignoredKinds: readonly string[];
}

/** The declared API groups, in declaration order. */
export const ISTIO_GROUPS: readonly DeclaredGroup[] = [...new Set(ISTIO_KINDS.map((d) => d.group))].map((group) => {
  const kinds = ISTIO_KINDS.filter((d) => d.group === group);
  return { group, versions: kinds[0]!.versions, storageVersion: kinds[0]!.storageVersion, kinds, ignoredKinds: UNSUPPORTED_ISTIO_KINDS[group] ?? [] };
});
