// DestinationRule settings that tune an outbound cluster's connections and load balancing, as
// Istio maps them: loadBalancer.warmup / warmupDurationSecs -> slow start of new endpoints,
// trafficPolicy.retryBudget -> the circuit breaker's retry budget, connectionPool.tcp.tcpKeepalive
// -> SO_KEEPALIVE on upstream sockets, connectionPool.http.http2KeepAlive -> HTTP/2 PINGs.
// Pure: settings in, Envoy message parts out.
import type { Cluster, Cluster_SlowStartConfig, UpstreamConnectionOptions } from "../../generated/envoy/config/cluster/v3/cluster.js";
import { Cluster_LbPolicy } from "../../generated/envoy/config/cluster/v3/cluster.js";
import type { CircuitBreakers_Thresholds_RetryBudget } from "../../generated/envoy/config/cluster/v3/circuit_breaker.js";
import type { KeepaliveSettings } from "../../generated/envoy/config/core/v3/protocol.js";
import { parseDurationMs } from "../api/duration.js";
import type { ConnectionPoolSettings, LoadBalancerSettings, RetryBudget } from "../api/types.js";
import { toProtoDuration } from "./proto-duration.js";

/** Istio's defaults for a warmup without them (Envoy's own default minimum weight is 10 % too). */
const DEFAULT_WARMUP_MINIMUM_PERCENT = 10;
const DEFAULT_WARMUP_AGGRESSION = 1;
/**
 * Envoy reads the aggression from its runtime under a key it requires; nobody sets this one, so
 * the default below always applies.
 */
const AGGRESSION_RUNTIME_KEY = "weft.destination_rule.warmup.aggression";

/** Istio's retry budget defaults: 20 % of active requests, at least 3 retries at once. */
const DEFAULT_RETRY_BUDGET_PERCENT = 20;
const DEFAULT_MIN_RETRY_CONCURRENCY = 3;

/** Slow start from loadBalancer.warmup (preferred) or the deprecated warmupDurationSecs; undefined without either. */
function slowStartConfig(lb: LoadBalancerSettings | undefined): Cluster_SlowStartConfig | undefined {
  if (lb?.warmup) {
    return {
      slowStartWindow: toProtoDuration(lb.warmup.duration),
      aggression: { defaultValue: lb.warmup.aggression ?? DEFAULT_WARMUP_AGGRESSION, runtimeKey: AGGRESSION_RUNTIME_KEY },
      minWeightPercent: { value: lb.warmup.minimumPercent ?? DEFAULT_WARMUP_MINIMUM_PERCENT },
    };
  }
  if (lb?.warmupDurationSecs) return { slowStartWindow: toProtoDuration(lb.warmupDurationSecs) };
  return undefined;
}

/**
 * Sets slow start on a cluster whose load balancer supports it (Envoy: round robin and least
 * request, the default); Istio ignores warmup for RANDOM, consistent hashing and passthrough.
 */
export function applySlowStart(cluster: Cluster, lb: LoadBalancerSettings | undefined): void {
  const config = slowStartConfig(lb);
  if (!config) return;
  if (cluster.lbPolicy === Cluster_LbPolicy.ROUND_ROBIN) cluster.roundRobinLbConfig = { slowStartConfig: config };
  else if (cluster.lbPolicy === Cluster_LbPolicy.LEAST_REQUEST) cluster.leastRequestLbConfig = { slowStartConfig: config };
}

export function retryBudgetOf(budget: RetryBudget | undefined): CircuitBreakers_Thresholds_RetryBudget | undefined {
  if (!budget) return undefined;
  return {
    budgetPercent: { value: budget.percent ?? DEFAULT_RETRY_BUDGET_PERCENT },
    // As Istio: 0 (unset in its protobuf) means the default.
    minRetryConcurrency: budget.minRetryConcurrency || DEFAULT_MIN_RETRY_CONCURRENCY,
  };
}

/** Whole seconds as Envoy's keepalive fields take them (Istio truncates; at least 1 so a sub-second value still sets one). */
function keepaliveSeconds(duration: string): number {
  return Math.max(1, Math.floor((parseDurationMs(duration) ?? 0) / 1000));
}

/** SO_KEEPALIVE on upstream sockets: unset fields keep the kernel's values (Linux: 7200 s idle, 75 s between 9 probes). */
export function upstreamConnectionOptionsOf(tcp: ConnectionPoolSettings["tcp"]): UpstreamConnectionOptions | undefined {
  const keepalive = tcp?.tcpKeepalive;
  if (!keepalive) return undefined;
  return {
    tcpKeepalive: {
      ...(keepalive.probes ? { keepaliveProbes: keepalive.probes } : {}),
      ...(keepalive.time ? { keepaliveTime: keepaliveSeconds(keepalive.time) } : {}),
      ...(keepalive.interval ? { keepaliveInterval: keepaliveSeconds(keepalive.interval) } : {}),
    },
  };
}

/** HTTP/2 PINGs every `interval`, closing the connection when one is not answered within `timeout`. */
export function http2KeepaliveOf(http: ConnectionPoolSettings["http"]): KeepaliveSettings | undefined {
  const keepAlive = http?.http2KeepAlive;
  if (!keepAlive) return undefined;
  return { interval: toProtoDuration(keepAlive.interval), timeout: toProtoDuration(keepAlive.timeout) };
}
