// Schema and meaning checks for DestinationRule specs: traffic policies and subsets.
import {
  CheckedObject,
  DNS_LABEL_RULE,
  checkExportTo,
  checkLabelValues,
  checkWorkloadSelector,
  isPortName,
  PORT_NAME_RULE,
  describeValue,
  hostNameProblem,
  isDnsLabel,
  labelKeyProblem,
  type IssueCollector,
} from "./field-checks.js";

const DESTINATION_RULE_FIELDS = ["host", "trafficPolicy", "subsets", "exportTo", "workloadSelector"] as const;
const TRAFFIC_POLICY_FIELDS = ["loadBalancer", "connectionPool", "outlierDetection", "tls", "portLevelSettings", "retryBudget"] as const;
const PORT_TRAFFIC_POLICY_FIELDS = ["port", "loadBalancer", "connectionPool", "outlierDetection", "tls"] as const;
const LOAD_BALANCER_FIELDS = ["simple", "consistentHash", "localityLbSetting", "warmupDurationSecs", "warmup"] as const;
const CONSISTENT_HASH_KEYS = ["httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName"] as const;
const LOCALITY_LB_FIELDS = ["distribute", "failover", "failoverPriority", "enabled"] as const;
const TCP_POOL_FIELDS = ["maxConnections", "connectTimeout", "tcpKeepalive"] as const;
const HTTP_POOL_FIELDS = ["http1MaxPendingRequests", "http2MaxRequests", "maxRequestsPerConnection", "maxRetries", "idleTimeout", "h2UpgradePolicy", "http2KeepAlive"] as const;
const OUTLIER_DETECTION_FIELDS = ["consecutive5xxErrors", "consecutiveGatewayErrors", "interval", "baseEjectionTime", "maxEjectionPercent", "minHealthPercent", "splitExternalLocalOriginErrors"] as const;
const CLIENT_TLS_FIELDS = ["mode", "clientCertificate", "privateKey", "caCertificates", "credentialName", "subjectAltNames", "sni", "insecureSkipVerify"] as const;

const SIMPLE_LB = ["UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"] as const;
const H2_UPGRADE_POLICIES = ["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"] as const;
const CLIENT_TLS_MODES = ["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"] as const;
const UINT32_MAX = 4294967295;
const INT32_MAX = 2147483647;

export function checkDestinationRuleSpec(c: IssueCollector, value: unknown, path: string): void {
  const spec = CheckedObject.of(c, value, path, DESTINATION_RULE_FIELDS);
  if (!spec) return;
  if (spec.require("host", 'a service host name such as "reviews" or "reviews.default.svc.cluster.local"')) {
    const host = spec.string("host");
    const problem = host === undefined ? undefined : hostNameProblem(host, { wildcard: true });
    if (problem) c.error(spec.at("host"), problem);
  }
  if (spec.has("trafficPolicy")) checkTrafficPolicy(c, spec.value["trafficPolicy"], spec.at("trafficPolicy"));
  checkSubsets(spec);
  checkExportTo(spec);
  checkWorkloadSelector(spec, "matchLabels", "this DestinationRule applies to every workload of its namespace");
}

function checkSubsets(spec: CheckedObject): void {
  const seen = new Map<string, string>();
  spec.list(
    "subsets",
    (item, path) => {
      const subset = CheckedObject.of(spec.c, item, path, ["name", "labels", "trafficPolicy"]);
      if (!subset) return;
      const name = subset.require("name", `a subset name, ${DNS_LABEL_RULE}`) ? subset.string("name") : undefined;
      if (name !== undefined) {
        if (!isPortName(name)) spec.c.error(subset.at("name"), `expected a subset name, ${PORT_NAME_RULE}; found ${describeValue(name)}`);
        const earlier = seen.get(name);
        if (earlier) spec.c.error(subset.at("name"), `duplicate subset name "${name}", already used at ${earlier}; subset names must be unique`);
        else seen.set(name, path);
      }
      checkLabelValues(subset, "labels", subset.stringMap("labels", { checkKey: labelKeyProblem }));
      if (subset.has("trafficPolicy")) checkTrafficPolicy(spec.c, subset.value["trafficPolicy"], subset.at("trafficPolicy"));
    },
    { itemDescription: "subsets" },
  );
}

function checkTrafficPolicy(c: IssueCollector, value: unknown, path: string): void {
  const policy = CheckedObject.of(c, value, path, TRAFFIC_POLICY_FIELDS, ["tunnel", "proxyProtocol"]);
  if (!policy) return;
  checkPolicySettings(policy);
  checkRetryBudget(policy);
  const ports = new Map<number, string>();
  policy.list(
    "portLevelSettings",
    (item, itemPath) => {
      const portPolicy = CheckedObject.of(c, item, itemPath, PORT_TRAFFIC_POLICY_FIELDS);
      if (!portPolicy) return;
      if (portPolicy.require("port", "a port selector such as { number: 9080 }")) {
        const port = portPolicy.object("port", ["number"]);
        const number = port && port.require("number", "a port number from 1 to 65535") ? port.port("number") : undefined;
        if (number !== undefined) {
          const earlier = ports.get(number);
          if (earlier) c.error(`${portPolicy.at("port")}.number`, `duplicate port ${number}, already configured at ${earlier}`);
          else ports.set(number, itemPath);
        }
      }
      checkPolicySettings(portPolicy);
    },
    { itemDescription: "port-level policies" },
  );
}

/** The settings a traffic policy and a port-level policy share. */
function checkPolicySettings(policy: CheckedObject): void {
  checkLoadBalancer(policy);
  checkConnectionPool(policy);
  checkOutlierDetection(policy);
  checkClientTls(policy);
}

function checkLoadBalancer(policy: CheckedObject): void {
  const lb = policy.object("loadBalancer", LOAD_BALANCER_FIELDS, ["zoneAwareLbSetting"]);
  if (!lb) return;
  lb.atMostOneOf(["simple", "consistentHash"], "load balancer types");
  lb.enumValue("simple", SIMPLE_LB);
  // Slow start (Envoy's slow_start_config): warmupDurationSecs is the deprecated form of warmup.duration; Istio's schema allows one of them.
  lb.atMostOneOf(["warmupDurationSecs", "warmup"], "warm-up settings (warmupDurationSecs is the deprecated form of warmup.duration)");
  lb.duration("warmupDurationSecs", { positive: true });
  const warmup = lb.object("warmup", ["duration", "minimumPercent", "aggression"]);
  if (warmup) {
    if (warmup.require("duration", 'how long a new endpoint warms up, such as "60s"')) warmup.duration("duration", { positive: true });
    warmup.number("minimumPercent", { min: 0, max: 100 });
    const aggression = warmup.value["aggression"];
    if (warmup.has("aggression") && !(typeof aggression === "number" && Number.isFinite(aggression) && aggression > 0)) {
      policy.c.error(warmup.at("aggression"), `expected a number greater than 0 (1 ramps traffic up linearly, more ramps it up faster), found ${describeValue(aggression)}`);
    }
  }

  const hash = lb.object("consistentHash", [...CONSISTENT_HASH_KEYS, "minimumRingSize"], ["ringHash", "maglev"]);
  if (hash) {
    const keys = hash.atMostOneOf(CONSISTENT_HASH_KEYS, "hash keys");
    if (keys.length === 0) policy.c.error(hash.path, `expected one hash key (${CONSISTENT_HASH_KEYS.join(", ")}), found none`);
    hash.string("httpHeaderName", { nonEmpty: true });
    hash.string("httpQueryParameterName", { nonEmpty: true });
    hash.boolean("useSourceIp");
    hash.integer("minimumRingSize", { min: 0 });
    const cookie = hash.object("httpCookie", ["name", "path", "ttl"], ["attributes"]);
    if (cookie) {
      if (cookie.require("name", "the cookie's name")) cookie.string("name", { nonEmpty: true });
      cookie.string("path");
      cookie.duration("ttl", { positive: false });
    }
  }

  const locality = lb.object("localityLbSetting", LOCALITY_LB_FIELDS);
  if (locality) checkLocalityLb(locality);
}

function checkLocalityLb(locality: CheckedObject): void {
  const c = locality.c;
  if (locality.has("distribute") && locality.has("failover")) c.error(locality.path, "expected either distribute or failover, found both");
  locality.list(
    "distribute",
    (item, path) => {
      const rule = CheckedObject.of(c, item, path, ["from", "to"]);
      if (!rule) return;
      if (rule.require("from", 'a locality such as "us-west/zone1/*"')) rule.string("from", { nonEmpty: true });
      if (!rule.require("to", "a mapping of localities to weights")) return;
      let total = 0;
      let wellFormed = true;
      rule.mapOf("to", (weight, weightPath) => {
        if (typeof weight !== "number" || !Number.isInteger(weight) || weight < 0 || weight > 100) {
          wellFormed = false;
          c.error(weightPath, `expected a weight from 0 to 100, found ${describeValue(weight)}`);
        } else total += weight;
      });
      if (wellFormed && total !== 100) c.error(rule.at("to"), `expected the weights to sum to 100, found ${total}`);
    },
    { itemDescription: "distribution rules" },
  );
  locality.list(
    "failover",
    (item, path) => {
      const rule = CheckedObject.of(c, item, path, ["from", "to"]);
      if (!rule) return;
      const from = rule.require("from", 'a region such as "us-east"') ? rule.string("from", { nonEmpty: true }) : undefined;
      const to = rule.require("to", 'a region such as "us-west"') ? rule.string("to", { nonEmpty: true }) : undefined;
      for (const [key, region] of [["from", from], ["to", to]] as const) {
        if (region?.includes("/")) c.error(rule.at(key), `failover is between regions; expected a region without zones, found "${region}"`);
      }
      if (from !== undefined && from === to) c.error(path, `expected different regions in from and to, found "${from}" in both`);
    },
    { itemDescription: "failover rules" },
  );
  locality.stringList("failoverPriority", { itemDescription: "label names" });
  locality.boolean("enabled");
}

/** A ConnectionPoolSettings field (`key`) of `policy`: DestinationRule traffic policies, Sidecar inbound pools. */
export function checkConnectionPool(policy: CheckedObject, key = "connectionPool"): void {
  const pool = policy.object(key, ["tcp", "http"]);
  if (!pool) return;
  const tcp = pool.object("tcp", TCP_POOL_FIELDS, ["maxConnectionDuration", "idleTimeout"]);
  if (tcp) {
    tcp.integer("maxConnections", { min: 0, max: INT32_MAX });
    tcp.duration("connectTimeout", { positive: true });
    const keepalive = tcp.object("tcpKeepalive", ["probes", "time", "interval"]);
    if (keepalive) {
      keepalive.integer("probes", { min: 0, max: UINT32_MAX });
      keepalive.duration("time", { positive: true });
      keepalive.duration("interval", { positive: true });
    }
  }
  const http = pool.object("http", HTTP_POOL_FIELDS, ["useClientProtocol", "maxConcurrentStreams"]);
  if (http) {
    for (const key of ["http1MaxPendingRequests", "http2MaxRequests", "maxRequestsPerConnection", "maxRetries"]) http.integer(key, { min: 0, max: INT32_MAX });
    http.duration("idleTimeout", { positive: true });
    http.enumValue("h2UpgradePolicy", H2_UPGRADE_POLICIES);
    // HTTP/2 PING frames on upstream connections (Envoy's http2_protocol_options.connection_keepalive); Istio requires both.
    const keepAlive = http.object("http2KeepAlive", ["interval", "timeout"]);
    if (keepAlive) {
      if (keepAlive.require("interval", 'how often to send an HTTP/2 PING, such as "15s"')) keepAlive.duration("interval", { positive: true });
      if (keepAlive.require("timeout", 'how long to wait for the PING\'s answer before closing the connection, such as "5s"')) keepAlive.duration("timeout", { positive: true });
    }
  }
}

/** trafficPolicy.retryBudget: Envoy's circuit-breaker retry budget (Istio: percent 20 and 3 concurrent retries unless set). */
function checkRetryBudget(policy: CheckedObject): void {
  // budgetInterval (newer than the Envoy API types Weft generates from) is a "not supported yet" warning.
  const budget = policy.object("retryBudget", ["percent", "minRetryConcurrency"], ["budgetInterval"]);
  if (!budget) return;
  budget.number("percent", { min: 0, max: 100 });
  budget.integer("minRetryConcurrency", { min: 0, max: UINT32_MAX });
}

function checkOutlierDetection(policy: CheckedObject): void {
  const od = policy.object("outlierDetection", OUTLIER_DETECTION_FIELDS, ["consecutiveLocalOriginFailures", "consecutiveErrors"]);
  if (!od) return;
  od.integer("consecutive5xxErrors", { min: 0, max: UINT32_MAX });
  od.integer("consecutiveGatewayErrors", { min: 0, max: UINT32_MAX });
  od.duration("interval", { positive: true });
  od.duration("baseEjectionTime", { positive: true });
  od.integer("maxEjectionPercent", { min: 0, max: 100 });
  od.integer("minHealthPercent", { min: 0, max: 100 });
  od.boolean("splitExternalLocalOriginErrors");
}

function checkClientTls(policy: CheckedObject): void {
  const tls = policy.object("tls", CLIENT_TLS_FIELDS, ["caCrl"]);
  if (!tls) return;
  const mode = tls.require("mode", `one of ${CLIENT_TLS_MODES.join(", ")}`) ? tls.enumValue("mode", CLIENT_TLS_MODES) : undefined;
  for (const key of ["clientCertificate", "privateKey", "caCertificates", "credentialName", "sni"]) tls.string(key);
  tls.stringList("subjectAltNames");
  tls.boolean("insecureSkipVerify");
  if (mode === "MUTUAL" && !tls.has("credentialName") && !(tls.has("clientCertificate") && tls.has("privateKey"))) {
    policy.c.error(tls.path, "MUTUAL mode needs a client certificate: set clientCertificate and privateKey, or credentialName");
  }
  if (mode === "ISTIO_MUTUAL") {
    const set = ["clientCertificate", "privateKey", "caCertificates", "credentialName"].filter((k) => tls.has(k));
    if (set.length > 0) policy.c.error(tls.path, `ISTIO_MUTUAL uses the mesh's own certificates; remove ${set.join(", ")}`);
  }
}
