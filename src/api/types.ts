// User-facing resource types: Istio's networking API shapes (networking.istio.io v1, v1beta1,
// v1alpha3), written from Istio's public reference docs. Field names match Istio's YAML.
// Validation (schema and meaning) lives beside them; these are the shapes after parsing.

import type { IstioResource } from "./kind-registry.js";

export const NETWORKING_GROUP = "networking.istio.io";
export const NETWORKING_VERSIONS = ["v1", "v1beta1", "v1alpha3"] as const;

export type Duration = string; // "1s", "250ms", "1.5s", "1m", "1h"

export interface ObjectMeta {
  name: string;
  namespace?: string; // defaults to "default"
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/**
 * Where a resource (or a problem) came from: origin-neutral, so every source — a directory of
 * YAML, a Kubernetes cluster — can say it in its own terms. Print one with `formatSource`.
 * Tell the variants apart with `isFileRef` (a FileRef has `file`, a ClusterObjectRef `cluster`).
 */
export type SourceRef = FileRef | ClusterObjectRef;

/** A document of a YAML file: numbered from 1 in stream order; 0 means the file (or directory) as a whole. */
export interface FileRef {
  file: string;
  document: number;
}

/**
 * An object of a Kubernetes cluster, as read from its API server. `kind` is the object's kind
 * ("VirtualService"); `namespace` is absent for cluster-scoped objects; `resourceVersion` is the
 * version the problem was found in. A reference to the cluster as a whole (a problem about the
 * source itself) leaves kind, name and resourceVersion empty.
 */
export interface ClusterObjectRef {
  /** The cluster's name (Istio's cluster ID, e.g. "Kubernetes"); "" when there is only one. */
  cluster: string;
  kind: string;
  namespace?: string;
  name: string;
  resourceVersion: string;
  /** metadata.generation of that version (it moves with the spec; status reports it as observedGeneration). */
  generation?: number;
}

export function isFileRef(ref: SourceRef): ref is FileRef {
  return "file" in ref;
}

/**
 * A source reference for people: "config/reviews.yaml document 2", "config/reviews.yaml" (document 0),
 * "kubernetes VirtualService/bookinfo/reviews (resourceVersion 123)", "kubernetes cluster east ...".
 */
export function formatSource(ref: SourceRef): string {
  if (isFileRef(ref)) return ref.document > 0 ? `${ref.file} document ${ref.document}` : ref.file;
  return [clusterLabel(ref), ref.kind ? clusterObjectLabel(ref) : "", ref.resourceVersion ? `(resourceVersion ${ref.resourceVersion})` : ""].filter(Boolean).join(" ");
}

function clusterLabel(ref: ClusterObjectRef): string {
  return ref.cluster ? `kubernetes cluster ${ref.cluster}` : "kubernetes";
}

function clusterObjectLabel(ref: ClusterObjectRef): string {
  return ref.namespace ? `${ref.kind}/${ref.namespace}/${ref.name}` : `${ref.kind}/${ref.name}`;
}

interface Base<K extends string, S> {
  apiVersion: string;
  kind: K;
  metadata: ObjectMeta;
  spec: S;
}

// ---------------------------------------------------------------------------------------
// ServiceEntry / WorkloadEntry

export type Protocol = "HTTP" | "HTTPS" | "GRPC" | "HTTP2" | "MONGO" | "TCP" | "TLS";

export interface ServicePort {
  number: number;
  /** Any case, as Istio reads it ("tcp", "HTTP", "Redis"); empty or absent: detected. See port-protocols.ts. */
  protocol?: string;
  name?: string;
  targetPort?: number;
}

export interface WorkloadEntrySpec {
  address?: string;
  ports?: Record<string, number>; // port name -> target port
  labels?: Record<string, string>;
  network?: string;
  locality?: string; // region/zone/subzone
  weight?: number;
  serviceAccount?: string;
}

export interface ServiceEntrySpec {
  hosts: string[];
  addresses?: string[];
  ports?: ServicePort[];
  location?: "MESH_EXTERNAL" | "MESH_INTERNAL";
  resolution?: "NONE" | "STATIC" | "DNS" | "DNS_ROUND_ROBIN";
  endpoints?: WorkloadEntrySpec[];
  workloadSelector?: { labels?: Record<string, string> };
  exportTo?: string[];
  subjectAltNames?: string[];
}

export type ServiceEntry = Base<"ServiceEntry", ServiceEntrySpec>;
export type WorkloadEntry = Base<"WorkloadEntry", WorkloadEntrySpec>;

// ---------------------------------------------------------------------------------------
// VirtualService

export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface HTTPMatchRequest {
  name?: string;
  uri?: StringMatch;
  scheme?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  headers?: Record<string, StringMatch>;
  queryParams?: Record<string, StringMatch>;
  withoutHeaders?: Record<string, StringMatch>;
  port?: number;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  sourceNamespace?: string;
  ignoreUriCase?: boolean;
}

export interface PortSelector {
  number: number;
}

export interface Destination {
  host: string;
  subset?: string;
  port?: PortSelector;
}

export interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface Headers {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

export interface HTTPRouteDestination {
  destination: Destination;
  weight?: number;
  headers?: Headers;
}

export interface Percent {
  value: number;
}

export interface HTTPFaultInjection {
  delay?: { fixedDelay: Duration; percentage?: Percent };
  abort?: { httpStatus: number; percentage?: Percent };
}

export interface HTTPRetry {
  attempts: number;
  perTryTimeout?: Duration;
  retryOn?: string;
  retryRemoteLocalities?: boolean;
}

export interface HTTPRewrite {
  uri?: string;
  authority?: string;
}

export interface HTTPRedirect {
  uri?: string;
  authority?: string;
  port?: number;
  scheme?: string;
  redirectCode?: number;
}

export interface CorsPolicy {
  allowOrigins?: StringMatch[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: Duration;
  allowCredentials?: boolean;
}

/** A VirtualService whose HTTP rules this rule delegates to (Istio's one level of delegation). */
export interface Delegate {
  name: string;
  /** Defaults to the namespace of the VirtualService that delegates. */
  namespace?: string;
}

/** A response the proxy sends itself: a status and, optionally, a body (a string or base64 bytes). */
export interface HTTPDirectResponse {
  status: number;
  body?: { string?: string; bytes?: string };
}

/** One of several mirrors: a destination and the share of requests copied to it (default 100). */
export interface HTTPMirrorPolicy {
  destination: Destination;
  percentage?: Percent;
}

export interface HTTPRoute {
  name?: string;
  match?: HTTPMatchRequest[];
  route?: HTTPRouteDestination[];
  redirect?: HTTPRedirect;
  directResponse?: HTTPDirectResponse;
  delegate?: Delegate;
  rewrite?: HTTPRewrite;
  timeout?: Duration;
  retries?: HTTPRetry;
  fault?: HTTPFaultInjection;
  mirror?: Destination;
  mirrorPercentage?: Percent;
  /** Deprecated in Istio (a whole percentage); mirrorPercentage wins when both are set. */
  mirrorPercent?: number;
  mirrors?: HTTPMirrorPolicy[];
  corsPolicy?: CorsPolicy;
  headers?: Headers;
}

export interface L4MatchAttributes {
  destinationSubnets?: string[];
  port?: number;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  sourceNamespace?: string;
}

export interface RouteDestination {
  destination: Destination;
  weight?: number;
}

export interface TCPRoute {
  match?: L4MatchAttributes[];
  route?: RouteDestination[];
}

export interface TLSMatchAttributes extends L4MatchAttributes {
  sniHosts: string[];
}

export interface TLSRoute {
  match: TLSMatchAttributes[];
  route?: RouteDestination[];
}

export interface VirtualServiceSpec {
  hosts?: string[];
  gateways?: string[];
  http?: HTTPRoute[];
  tcp?: TCPRoute[];
  tls?: TLSRoute[];
  exportTo?: string[];
}

export type VirtualService = Base<"VirtualService", VirtualServiceSpec>;

// ---------------------------------------------------------------------------------------
// DestinationRule

export interface ConsistentHashLB {
  httpHeaderName?: string;
  httpCookie?: { name: string; path?: string; ttl?: Duration };
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  minimumRingSize?: number;
}

export interface LocalityLbSetting {
  distribute?: { from: string; to: Record<string, number> }[];
  failover?: { from: string; to: string }[];
  failoverPriority?: string[];
  enabled?: boolean;
}

export interface LoadBalancerSettings {
  simple?: "UNSPECIFIED" | "LEAST_CONN" | "RANDOM" | "PASSTHROUGH" | "ROUND_ROBIN" | "LEAST_REQUEST";
  consistentHash?: ConsistentHashLB;
  localityLbSetting?: LocalityLbSetting;
  /** Deprecated form of warmup.duration. */
  warmupDurationSecs?: Duration;
  /** Slow start of new endpoints (Envoy's slow_start_config). */
  warmup?: WarmupConfiguration;
}

/** Slow start of new endpoints: minimumPercent defaults to 10, aggression to 1 (both doubles). */
export interface WarmupConfiguration {
  duration: Duration;
  minimumPercent?: number;
  aggression?: number;
}

export interface ConnectionPoolSettings {
  tcp?: { maxConnections?: number; connectTimeout?: Duration; tcpKeepalive?: { probes?: number; time?: Duration; interval?: Duration } };
  http?: {
    http1MaxPendingRequests?: number;
    http2MaxRequests?: number;
    maxRequestsPerConnection?: number;
    maxRetries?: number;
    idleTimeout?: Duration;
    h2UpgradePolicy?: "DEFAULT" | "DO_NOT_UPGRADE" | "UPGRADE";
    /** HTTP/2 PING frames on upstream connections. */
    http2KeepAlive?: { interval: Duration; timeout: Duration };
  };
}

/** Envoy's circuit-breaker retry budget; Istio's defaults: percent 20, minRetryConcurrency 3. */
export interface RetryBudget {
  percent?: number;
  minRetryConcurrency?: number;
}

export interface OutlierDetection {
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  interval?: Duration;
  baseEjectionTime?: Duration;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
  splitExternalLocalOriginErrors?: boolean;
}

export interface ClientTLSSettings {
  mode: "DISABLE" | "SIMPLE" | "MUTUAL" | "ISTIO_MUTUAL";
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  credentialName?: string;
  subjectAltNames?: string[];
  sni?: string;
  insecureSkipVerify?: boolean;
}

export interface PortTrafficPolicy {
  port: PortSelector;
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
}

export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
  portLevelSettings?: PortTrafficPolicy[];
  retryBudget?: RetryBudget;
}

export interface Subset {
  name: string;
  labels?: Record<string, string>;
  trafficPolicy?: TrafficPolicy;
}

export interface DestinationRuleSpec {
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets?: Subset[];
  exportTo?: string[];
  workloadSelector?: { matchLabels?: Record<string, string> };
}

export type DestinationRule = Base<"DestinationRule", DestinationRuleSpec>;

// ---------------------------------------------------------------------------------------
// Gateway

export interface ServerTLSSettings {
  mode?: "PASSTHROUGH" | "SIMPLE" | "MUTUAL" | "AUTO_PASSTHROUGH" | "ISTIO_MUTUAL" | "OPTIONAL_MUTUAL";
  httpsRedirect?: boolean;
  serverCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  credentialName?: string;
  subjectAltNames?: string[];
  minProtocolVersion?: string;
  maxProtocolVersion?: string;
}

export interface Server {
  port: { number: number; protocol: string; name?: string; targetPort?: number };
  bind?: string;
  hosts: string[];
  tls?: ServerTLSSettings;
  name?: string;
}

export interface GatewaySpec {
  servers: Server[];
  selector?: Record<string, string>;
}

export type Gateway = Base<"Gateway", GatewaySpec>;

// ---------------------------------------------------------------------------------------
// Sidecar

export interface IstioEgressListener {
  port?: { number: number; protocol?: string; name?: string };
  bind?: string;
  captureMode?: "DEFAULT" | "IPTABLES" | "NONE";
  hosts: string[]; // "namespace/dnsName"
}

export interface IstioIngressListener {
  port: { number: number; protocol?: string; name?: string };
  bind?: string;
  captureMode?: "DEFAULT" | "IPTABLES" | "NONE";
  /** "127.0.0.1:PORT", "[::1]:PORT" (loopback), "0.0.0.0:PORT", "[::]:PORT" (the workload's own address), "unix://path"; unset: where the connection was going. */
  defaultEndpoint?: string;
  tls?: ServerTLSSettings;
  connectionPool?: ConnectionPoolSettings;
}

export interface SidecarSpec {
  workloadSelector?: { labels?: Record<string, string> };
  ingress?: IstioIngressListener[];
  egress?: IstioEgressListener[];
  outboundTrafficPolicy?: { mode: "ALLOW_ANY" | "REGISTRY_ONLY" };
  /** Connection pool of every inbound cluster (an ingress listener's connectionPool wins for its port). */
  inboundConnectionPool?: ConnectionPoolSettings;
}

export type Sidecar = Base<"Sidecar", SidecarSpec>;

// ---------------------------------------------------------------------------------------

export type NetworkingResource = ServiceEntry | WorkloadEntry | VirtualService | DestinationRule | Gateway | Sidecar;

/** A validated resource (any kind declared in kind-registry.ts) and where it was read from. */
export interface Sourced<R extends IstioResource = IstioResource> {
  resource: R;
  source: SourceRef;
}

/**
 * One validation problem, phrased for people: where (the SourceRef's fields, flattened: `file`
 * and `document`, or `cluster`, `kind`, `namespace`, `name`, `resourceVersion`), kind/namespace/name, field.
 * Build one as `{ ...source, resource, field, message, severity }`.
 */
export type ValidationIssue = SourceRef & {
  resource: string; // "VirtualService/default/reviews" or "(unknown)"
  field: string; // "spec.http[0].route[1].weight"
  message: string;
  severity: "error" | "warning";
  /** Istio's analyzer code when the problem has one ("IST0101" ReferencedResourceNotFound), for `weft analyze`. */
  code?: string;
};

/** Longest message, field or resource text an issue carries: what it quotes from input is cut, not echoed whole. */
export const ISSUE_TEXT_MAX = 1000;

/** At most `max` characters of a text that may quote input, saying how much was cut. */
export function boundText(text: string, max = ISSUE_TEXT_MAX): string {
  return text.length <= max ? text : `${text.slice(0, max)}... (${text.length - max} more characters)`;
}

/** The SourceRef part of an issue (without its message). */
export function issueSource(i: ValidationIssue): SourceRef {
  if (isFileRef(i)) return { file: i.file, document: i.document };
  return { cluster: i.cluster, kind: i.kind, ...(i.namespace !== undefined ? { namespace: i.namespace } : {}), name: i.name, resourceVersion: i.resourceVersion };
}

export function resourceKey(r: { kind: string; metadata: { namespace?: string; name: string } }): string {
  return `${r.kind}/${r.metadata.namespace ?? "default"}/${r.metadata.name}`;
}

/**
 * The one way an issue is printed:
 *   file:       "config/reviews.yaml: document 2: VirtualService/default/reviews: spec.http[0].route[0].weight: expected ..."
 *   Kubernetes: "kubernetes: VirtualService/bookinfo/reviews (resourceVersion 123): spec.http[0]...: expected ..."
 */
export function formatIssue(i: ValidationIssue): string {
  if (isFileRef(i)) return `${i.file}: document ${i.document}: ${i.resource}: ${i.field}: ${i.message}`;
  const object = i.resource !== "(unknown)" ? i.resource : i.kind ? clusterObjectLabel(i) : "(cluster)";
  const version = i.resourceVersion ? ` (resourceVersion ${i.resourceVersion})` : "";
  return `${clusterLabel(i)}: ${object}${version}: ${i.field}: ${i.message}`;
}

/** The mesh config as read from sources: every valid resource, plus the problems found. */
export interface MeshConfig {
  resources: Sourced[];
  issues: ValidationIssue[];
}
