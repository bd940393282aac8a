// Access logs (Istio's Telemetry accessLogging with envoyFileAccessLog providers): Envoy's file
// access logger on the HTTP connection manager and on TCP proxies, in Istio's default text
// format, a given text format, or JSON from labels; a Telemetry filter becomes Envoy's CEL
// access-log filter (envoy.access_loggers.extension_filters.cel).
import type { AccessLog } from "../../generated/envoy/config/accesslog/v3/accesslog.js";
import { packAny } from "../envoy/any.js";
import { EXTENSION_TYPES } from "../envoy/type-urls.js";
import type { AccessLogPlan } from "../model/telemetry.js";

/**
 * Istio's default text format (EnvoyTextLogFormat), plus the caller's certificate URI (its SPIFFE
 * identity under mTLS) at the end: upstream Envoy has no metadata exchange to name the peer otherwise.
 */
export const ISTIO_TEXT_LOG_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% ' +
  '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ' +
  '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% ' +
  '%REQUESTED_SERVER_NAME% %ROUTE_NAME% "%DOWNSTREAM_PEER_URI_SAN%"\n';

/** Istio's default JSON labels (EnvoyJSONLogFormatIstio), plus the caller's certificate URI. */
export const ISTIO_JSON_LOG_LABELS: Readonly<Record<string, string>> = {
  start_time: "%START_TIME%",
  method: "%REQ(:METHOD)%",
  path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
  protocol: "%PROTOCOL%",
  response_code: "%RESPONSE_CODE%",
  response_flags: "%RESPONSE_FLAGS%",
  response_code_details: "%RESPONSE_CODE_DETAILS%",
  connection_termination_details: "%CONNECTION_TERMINATION_DETAILS%",
  upstream_transport_failure_reason: "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
  bytes_received: "%BYTES_RECEIVED%",
  bytes_sent: "%BYTES_SENT%",
  duration: "%DURATION%",
  upstream_service_time: "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
  x_forwarded_for: "%REQ(X-FORWARDED-FOR)%",
  user_agent: "%REQ(USER-AGENT)%",
  request_id: "%REQ(X-REQUEST-ID)%",
  authority: "%REQ(:AUTHORITY)%",
  upstream_host: "%UPSTREAM_HOST%",
  upstream_cluster: "%UPSTREAM_CLUSTER_RAW%",
  upstream_local_address: "%UPSTREAM_LOCAL_ADDRESS%",
  downstream_local_address: "%DOWNSTREAM_LOCAL_ADDRESS%",
  downstream_remote_address: "%DOWNSTREAM_REMOTE_ADDRESS%",
  requested_server_name: "%REQUESTED_SERVER_NAME%",
  route_name: "%ROUTE_NAME%",
  downstream_peer_uri_san: "%DOWNSTREAM_PEER_URI_SAN%",
};

export const FILE_ACCESS_LOGGER = "envoy.access_loggers.file";
export const STDOUT_ACCESS_LOGGER = "envoy.access_loggers.stdout";
export const STDERR_ACCESS_LOGGER = "envoy.access_loggers.stderr";
export const CEL_ACCESS_LOG_FILTER = "envoy.access_loggers.extension_filters.cel";

/** Envoy access logs for the plans of one listener side, in plan order. */
export function buildAccessLogs(plans: readonly AccessLogPlan[]): AccessLog[] {
  return plans.map((plan) => {
    const file = plan.provider.envoyFileAccessLog;
    const labels = file.logFormat?.labels;
    // Labels given: JSON with exactly those; `labels: {}` (JSON asked for, none given): Istio's default labels.
    const logFormat =
      labels !== undefined
        ? { jsonFormat: { ...(Object.keys(labels).length > 0 ? labels : ISTIO_JSON_LOG_LABELS) } }
        : { textFormatSource: { inlineString: withNewline(file.logFormat?.text ?? ISTIO_TEXT_LOG_FORMAT) } };
    const filter = plan.filter ? { filter: { extensionFilter: { name: CEL_ACCESS_LOG_FILTER, typedConfig: packAny(EXTENSION_TYPES.celAccessLogFilter, { expression: plan.filter }) } } } : {};
    // The proxy's own standard output and error through Envoy's stream loggers: opening
    // /dev/stdout fails when it is a socket (ENXIO), and the stream loggers need no open().
    if (file.path === "/dev/stdout") return { name: STDOUT_ACCESS_LOGGER, ...filter, typedConfig: packAny(EXTENSION_TYPES.stdoutAccessLog, { logFormat }) };
    if (file.path === "/dev/stderr") return { name: STDERR_ACCESS_LOGGER, ...filter, typedConfig: packAny(EXTENSION_TYPES.stderrAccessLog, { logFormat }) };
    return { name: FILE_ACCESS_LOGGER, ...filter, typedConfig: packAny(EXTENSION_TYPES.fileAccessLog, { path: file.path, logFormat }) };
  });
}

/** Envoy writes a text format as it is: a line needs its newline (Istio adds one too). */
function withNewline(format: string): string {
  return format.endsWith("\n") ? format : `${format}\n`;
}
