// The one registry of protobuf type URLs Weft sends to Envoy, each mapped to its generated
// message codec. House rule 5: type URLs are string-literal types, never bare strings.
import type _m0 from "protobufjs/minimal.js";
import { Cluster } from "../../generated/envoy/config/cluster/v3/cluster.js";
import { ClusterLoadAssignment } from "../../generated/envoy/config/endpoint/v3/endpoint.js";
import { Listener } from "../../generated/envoy/config/listener/v3/listener.js";
import { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import { VirtualHost } from "../../generated/envoy/config/route/v3/route_components.js";
import { Secret } from "../../generated/envoy/extensions/transport_sockets/tls/v3/secret.js";
import { HttpConnectionManager } from "../../generated/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js";
import { TcpProxy } from "../../generated/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.js";
import { Router } from "../../generated/envoy/extensions/filters/http/router/v3/router.js";
import { UpstreamTlsContext, DownstreamTlsContext } from "../../generated/envoy/extensions/transport_sockets/tls/v3/tls.js";
import { HttpProtocolOptions } from "../../generated/envoy/extensions/upstreams/http/v3/http_protocol_options.js";
import { HTTPFault } from "../../generated/envoy/extensions/filters/http/fault/v3/fault.js";
import { Cors, CorsPolicy } from "../../generated/envoy/extensions/filters/http/cors/v3/cors.js";
import { OriginalDst } from "../../generated/envoy/extensions/filters/listener/original_dst/v3/original_dst.js";
import { TlsInspector } from "../../generated/envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.js";
import { RBAC as HttpRbac } from "../../generated/envoy/extensions/filters/http/rbac/v3/rbac.js";
import { RBAC as NetworkRbac } from "../../generated/envoy/extensions/filters/network/rbac/v3/rbac.js";
import { JwtAuthentication } from "../../generated/envoy/extensions/filters/http/jwt_authn/v3/config.js";
import { HttpInspector } from "../../generated/envoy/extensions/filters/listener/http_inspector/v3/http_inspector.js";
import { PreviousHostsPredicate } from "../../generated/envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.js";
import { UuidRequestIdConfig } from "../../generated/envoy/extensions/request_id/uuid/v3/uuid.js";
import { FileAccessLog } from "../../generated/envoy/extensions/access_loggers/file/v3/file.js";
import { StderrAccessLog, StdoutAccessLog } from "../../generated/envoy/extensions/access_loggers/stream/v3/stream.js";
import { ExpressionFilter } from "../../generated/envoy/extensions/access_loggers/filters/cel/v3/cel.js";
import { OpenTelemetryConfig } from "../../generated/envoy/config/trace/v3/opentelemetry.js";
import { ZipkinConfig } from "../../generated/envoy/config/trace/v3/zipkin.js";
import { EnvironmentResourceDetectorConfig } from "../../generated/envoy/extensions/tracers/opentelemetry/resource_detectors/v3/environment_resource_detector.js";
import { ExtAuthz as HttpExtAuthz } from "../../generated/envoy/extensions/filters/http/ext_authz/v3/ext_authz.js";
import { ExtAuthz as NetworkExtAuthz } from "../../generated/envoy/extensions/filters/network/ext_authz/v3/ext_authz.js";
import { UriTemplateMatchConfig } from "../../generated/envoy/extensions/path/match/uri_template/v3/uri_template_match.js";

/** What every ts-proto message constant offers; enough to encode, decode and build messages. */
export interface MessageCodec<T> {
  encode(message: T, writer?: _m0.Writer): _m0.Writer;
  decode(input: _m0.Reader | Uint8Array, length?: number): T;
  fromPartial(object: never): T;
  toJSON(message: T): unknown;
}

const PREFIX = "type.googleapis.com/";

/**
 * xDS resource types served by the management server, in push order (CDS before EDS before LDS
 * before RDS before VHDS). VirtualHost: the virtual hosts of route configurations served through
 * VHDS to delta ADS clients (see src/cache/virtual-host-discovery.ts).
 */
export const XDS_TYPES = {
  cluster: `${PREFIX}envoy.config.cluster.v3.Cluster`,
  endpoint: `${PREFIX}envoy.config.endpoint.v3.ClusterLoadAssignment`,
  listener: `${PREFIX}envoy.config.listener.v3.Listener`,
  route: `${PREFIX}envoy.config.route.v3.RouteConfiguration`,
  virtualHost: `${PREFIX}envoy.config.route.v3.VirtualHost`,
  secret: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.Secret`,
} as const;

export type XdsTypeUrl = (typeof XDS_TYPES)[keyof typeof XDS_TYPES];
export type XdsTypeName = keyof typeof XDS_TYPES;

/** The order in which an ADS stream pushes types when several change at once. */
export const PUSH_ORDER: readonly XdsTypeUrl[] = [
  XDS_TYPES.cluster,
  XDS_TYPES.endpoint,
  XDS_TYPES.listener,
  XDS_TYPES.route,
  XDS_TYPES.virtualHost,
  XDS_TYPES.secret,
];

/** Message type of each xDS resource type URL. */
export interface XdsResourceTypes {
  [XDS_TYPES.cluster]: Cluster;
  [XDS_TYPES.endpoint]: ClusterLoadAssignment;
  [XDS_TYPES.listener]: Listener;
  [XDS_TYPES.route]: RouteConfiguration;
  [XDS_TYPES.virtualHost]: VirtualHost;
  [XDS_TYPES.secret]: Secret;
}

export const XDS_CODECS: { [U in XdsTypeUrl]: MessageCodec<XdsResourceTypes[U]> } = {
  [XDS_TYPES.cluster]: Cluster,
  [XDS_TYPES.endpoint]: ClusterLoadAssignment,
  [XDS_TYPES.listener]: Listener,
  [XDS_TYPES.route]: RouteConfiguration,
  [XDS_TYPES.virtualHost]: VirtualHost,
  [XDS_TYPES.secret]: Secret,
};

/** The name Envoy knows each resource by. */
export function resourceName<U extends XdsTypeUrl>(typeUrl: U, resource: XdsResourceTypes[U]): string {
  if (typeUrl === XDS_TYPES.endpoint) return (resource as ClusterLoadAssignment).clusterName ?? "";
  return (resource as Cluster | Listener | RouteConfiguration | VirtualHost | Secret).name ?? "";
}

/** Short names used in metrics, logs and status ("cds", "eds", ...). */
export const TYPE_SHORT_NAMES: { [U in XdsTypeUrl]: string } = {
  [XDS_TYPES.cluster]: "cds",
  [XDS_TYPES.endpoint]: "eds",
  [XDS_TYPES.listener]: "lds",
  [XDS_TYPES.route]: "rds",
  [XDS_TYPES.virtualHost]: "vhds",
  [XDS_TYPES.secret]: "sds",
};

export function isXdsTypeUrl(url: string): url is XdsTypeUrl {
  return Object.prototype.hasOwnProperty.call(TYPE_SHORT_NAMES, url);
}

/**
 * Types for which an empty subscription means "everything" (legacy wildcard, xDS spec). Envoy
 * (1.40, delta ADS) opens its VirtualHost (VHDS) subscription with no names, and takes the
 * virtual hosts the server then sends by their names ("<route configuration>/...").
 */
export function isWildcardByDefault(typeUrl: XdsTypeUrl): boolean {
  return typeUrl === XDS_TYPES.listener || typeUrl === XDS_TYPES.cluster || typeUrl === XDS_TYPES.virtualHost;
}

/** Extension messages packed into `typed_config` / `typed_extension_protocol_options`. */
export const EXTENSION_TYPES = {
  httpConnectionManager: `${PREFIX}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
  tcpProxy: `${PREFIX}envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`,
  router: `${PREFIX}envoy.extensions.filters.http.router.v3.Router`,
  upstreamTlsContext: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`,
  downstreamTlsContext: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`,
  httpProtocolOptions: `${PREFIX}envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
  fault: `${PREFIX}envoy.extensions.filters.http.fault.v3.HTTPFault`,
  cors: `${PREFIX}envoy.extensions.filters.http.cors.v3.Cors`,
  corsPolicy: `${PREFIX}envoy.extensions.filters.http.cors.v3.CorsPolicy`,
  originalDst: `${PREFIX}envoy.extensions.filters.listener.original_dst.v3.OriginalDst`,
  tlsInspector: `${PREFIX}envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector`,
  httpRbac: `${PREFIX}envoy.extensions.filters.http.rbac.v3.RBAC`,
  networkRbac: `${PREFIX}envoy.extensions.filters.network.rbac.v3.RBAC`,
  jwtAuthentication: `${PREFIX}envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication`,
  httpInspector: `${PREFIX}envoy.extensions.filters.listener.http_inspector.v3.HttpInspector`,
  previousHosts: `${PREFIX}envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate`,
  uuidRequestId: `${PREFIX}envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig`,
  fileAccessLog: `${PREFIX}envoy.extensions.access_loggers.file.v3.FileAccessLog`,
  stdoutAccessLog: `${PREFIX}envoy.extensions.access_loggers.stream.v3.StdoutAccessLog`,
  stderrAccessLog: `${PREFIX}envoy.extensions.access_loggers.stream.v3.StderrAccessLog`,
  celAccessLogFilter: `${PREFIX}envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter`,
  openTelemetryTracer: `${PREFIX}envoy.config.trace.v3.OpenTelemetryConfig`,
  zipkinTracer: `${PREFIX}envoy.config.trace.v3.ZipkinConfig`,
  environmentResourceDetector: `${PREFIX}envoy.extensions.tracers.opentelemetry.resource_detectors.v3.EnvironmentResourceDetectorConfig`,
  httpExtAuthz: `${PREFIX}envoy.extensions.filters.http.ext_authz.v3.ExtAuthz`,
  networkExtAuthz: `${PREFIX}envoy.extensions.filters.network.ext_authz.v3.ExtAuthz`,
  uriTemplateMatch: `${PREFIX}envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig`,
} as const;

export type ExtensionTypeUrl = (typeof EXTENSION_TYPES)[keyof typeof EXTENSION_TYPES];

export interface ExtensionMessageTypes {
  [EXTENSION_TYPES.httpConnectionManager]: HttpConnectionManager;
  [EXTENSION_TYPES.tcpProxy]: TcpProxy;
  [EXTENSION_TYPES.router]: Router;
  [EXTENSION_TYPES.upstreamTlsContext]: UpstreamTlsContext;
  [EXTENSION_TYPES.downstreamTlsContext]: DownstreamTlsContext;
  [EXTENSION_TYPES.httpProtocolOptions]: HttpProtocolOptions;
  [EXTENSION_TYPES.fault]: HTTPFault;
  [EXTENSION_TYPES.cors]: Cors;
  [EXTENSION_TYPES.corsPolicy]: CorsPolicy;
  [EXTENSION_TYPES.originalDst]: OriginalDst;
  [EXTENSION_TYPES.tlsInspector]: TlsInspector;
  [EXTENSION_TYPES.httpRbac]: HttpRbac;
  [EXTENSION_TYPES.networkRbac]: NetworkRbac;
  [EXTENSION_TYPES.jwtAuthentication]: JwtAuthentication;
  [EXTENSION_TYPES.httpInspector]: HttpInspector;
  [EXTENSION_TYPES.previousHosts]: PreviousHostsPredicate;
  [EXTENSION_TYPES.uuidRequestId]: UuidRequestIdConfig;
  [EXTENSION_TYPES.fileAccessLog]: FileAccessLog;
  [EXTENSION_TYPES.stdoutAccessLog]: StdoutAccessLog;
  [EXTENSION_TYPES.stderrAccessLog]: StderrAccessLog;
  [EXTENSION_TYPES.celAccessLogFilter]: ExpressionFilter;
  [EXTENSION_TYPES.openTelemetryTracer]: OpenTelemetryConfig;
  [EXTENSION_TYPES.zipkinTracer]: ZipkinConfig;
  [EXTENSION_TYPES.environmentResourceDetector]: EnvironmentResourceDetectorConfig;
  [EXTENSION_TYPES.httpExtAuthz]: HttpExtAuthz;
  [EXTENSION_TYPES.networkExtAuthz]: NetworkExtAuthz;
  [EXTENSION_TYPES.uriTemplateMatch]: UriTemplateMatchConfig;
}

export const EXTENSION_CODECS: { [U in ExtensionTypeUrl]: MessageCodec<ExtensionMessageTypes[U]> } = {
  [EXTENSION_TYPES.httpConnectionManager]: HttpConnectionManager,
  [EXTENSION_TYPES.tcpProxy]: TcpProxy,
  [EXTENSION_TYPES.router]: Router,
  [EXTENSION_TYPES.upstreamTlsContext]: UpstreamTlsContext,
  [EXTENSION_TYPES.downstreamTlsContext]: DownstreamTlsContext,
  [EXTENSION_TYPES.httpProtocolOptions]: HttpProtocolOptions,
  [EXTENSION_TYPES.fault]: HTTPFault,
  [EXTENSION_TYPES.cors]: Cors,
  [EXTENSION_TYPES.corsPolicy]: CorsPolicy,
  [EXTENSION_TYPES.originalDst]: OriginalDst,
  [EXTENSION_TYPES.tlsInspector]: TlsInspector,
  [EXTENSION_TYPES.httpRbac]: HttpRbac,
  [EXTENSION_TYPES.networkRbac]: NetworkRbac,
  [EXTENSION_TYPES.jwtAuthentication]: JwtAuthentication,
  [EXTENSION_TYPES.httpInspector]: HttpInspector,
  [EXTENSION_TYPES.previousHosts]: PreviousHostsPredicate,
  [EXTENSION_TYPES.uuidRequestId]: UuidRequestIdConfig,
  [EXTENSION_TYPES.fileAccessLog]: FileAccessLog,
  [EXTENSION_TYPES.stdoutAccessLog]: StdoutAccessLog,
  [EXTENSION_TYPES.stderrAccessLog]: StderrAccessLog,
  [EXTENSION_TYPES.celAccessLogFilter]: ExpressionFilter,
  [EXTENSION_TYPES.openTelemetryTracer]: OpenTelemetryConfig,
  [EXTENSION_TYPES.zipkinTracer]: ZipkinConfig,
  [EXTENSION_TYPES.environmentResourceDetector]: EnvironmentResourceDetectorConfig,
  [EXTENSION_TYPES.httpExtAuthz]: HttpExtAuthz,
  [EXTENSION_TYPES.networkExtAuthz]: NetworkExtAuthz,
  [EXTENSION_TYPES.uriTemplateMatch]: UriTemplateMatchConfig,
};
