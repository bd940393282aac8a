// Retry policies, Istio's defaults: outbound routes without `retries` retry twice on
// connect-failure, refused-stream, unavailable and cancelled — never on an app's 503
// (Istio's EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY, on by default: a 503 answer, POSTs included,
// reaches the caller once) — and each retry prefers a host not tried before
// (previous_hosts; not with consistent hashing, which must stay on its host). Inbound routes
// retry only requests reset before they reached the app (never processed, so safe for any
// method), twice.
import type { HTTPRetry } from "../api/types.js";
import type { RetryPolicy } from "../../generated/envoy/config/route/v3/route_components.js";
import { packAny } from "../envoy/any.js";
import { EXTENSION_TYPES } from "../envoy/type-urls.js";
import { toProtoDuration } from "./proto-duration.js";

const DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";
const DEFAULT_ATTEMPTS = 2;
const HOST_SELECTION_RETRY_MAX_ATTEMPTS = 5;
const INBOUND_RETRY_ON = "reset-before-request";

const PREVIOUS_HOSTS = { name: "envoy.retry_host_predicates.previous_hosts", typedConfig: packAny(EXTENSION_TYPES.previousHosts, {}) };

/** Splits Istio's `retryOn` into Envoy's conditions and the HTTP status codes listed among them. */
export function parseRetryOn(retryOn: string): { retryOn: string; statusCodes: number[] } {
  const conditions: string[] = [];
  const statusCodes: number[] = [];
  for (const raw of retryOn.split(",")) {
    const part = raw.trim();
    if (!part) continue;
    if (/^\d{3}$/.test(part) && Number(part) >= 100 && Number(part) <= 599) statusCodes.push(Number(part));
    else conditions.push(part);
  }
  if (statusCodes.length > 0 && !conditions.includes("retriable-status-codes")) conditions.push("retriable-status-codes");
  return { retryOn: conditions.join(","), statusCodes };
}

/**
 * The retry policy of an outbound route: `retries` from the VirtualService over Istio's
 * default; undefined when `attempts` is 0 (retries off). `consistentHash`: the destination
 * uses hash-based load balancing (retries stay on the same host).
 */
export function outboundRetryPolicy(retries: HTTPRetry | undefined, consistentHash = false): RetryPolicy | undefined {
  if (retries && retries.attempts <= 0) return undefined;
  const parsed = retries?.retryOn ? parseRetryOn(retries.retryOn) : { retryOn: DEFAULT_RETRY_ON, statusCodes: [] };
  return {
    retryOn: parsed.retryOn,
    numRetries: retries?.attempts ?? DEFAULT_ATTEMPTS,
    ...(retries?.perTryTimeout ? { perTryTimeout: toProtoDuration(retries.perTryTimeout) } : {}),
    ...(parsed.statusCodes.length ? { retriableStatusCodes: parsed.statusCodes } : {}),
    ...(consistentHash ? {} : { retryHostPredicate: [PREVIOUS_HOSTS] }),
    hostSelectionRetryMaxAttempts: HOST_SELECTION_RETRY_MAX_ATTEMPTS,
  };
}

/** Inbound routes to the local app: retry a request reset before it reached the app, twice. */
export function inboundRetryPolicy(): RetryPolicy {
  return { retryOn: INBOUND_RETRY_ON, numRetries: DEFAULT_ATTEMPTS };
}
