// EnvoyFilter checks, as Istio's: errors where Istio refuses (missing applyTo/patch/operation,
// a value missing for a non-REMOVE operation, a match of the wrong class for applyTo, a filter
// match without a name, a subFilter outside the HTTP connection manager, a patch value that
// does not read as the Envoy message applyTo names, an unknown "@type"); warnings where Istio
// warns or silently ignores (unknown fields in a value, an operation applyTo does not take,
// a filter match with LISTENER/FILTER_CHAIN, an empty workloadSelector).
import { EnvoySchema, ProtoJsonError } from "../envoy/proto-json.js";
import { APPLY_TO, FILTER_CLASSES, OPERATIONS_APPLIED, PATCH_CONTEXTS, PATCH_OPERATIONS, PATCH_VALUE_TYPES, ROUTE_ACTIONS, type ApplyTo } from "./envoy-filter.js";
import { CheckedObject, describeValue, labelKeyProblem, type IssueCollector } from "./field-checks.js";

const HCM_NAMES = ["envoy.filters.network.http_connection_manager", "envoy.http_connection_manager"];
/** Unknown fields listed per patch value; the rest are counted. */
const MAX_UNKNOWN_LISTED = 10;

const LISTENER_CLASS: readonly ApplyTo[] = ["LISTENER", "FILTER_CHAIN", "NETWORK_FILTER", "HTTP_FILTER", "LISTENER_FILTER"];
const ROUTE_CLASS: readonly ApplyTo[] = ["ROUTE_CONFIGURATION", "VIRTUAL_HOST", "HTTP_ROUTE"];

export function checkEnvoyFilterSpec(c: IssueCollector, value: unknown, path: string): void {
  const spec = CheckedObject.of(c, value, path, ["workloadSelector", "targetRefs", "configPatches", "priority"]);
  if (!spec) return;
  const selector = spec.object("workloadSelector", ["labels"]);
  if (selector) {
    const labels = selector.stringMap("labels", { checkKey: labelKeyProblem });
    if (!labels || Object.keys(labels).length === 0) c.warning(spec.at("workloadSelector"), "has no labels: the EnvoyFilter applies to every workload in its namespace");
  }
  spec.integer("priority", { min: -(2 ** 31), max: 2 ** 31 - 1 });
  spec.list(
    "targetRefs",
    (item, itemPath) => {
      const ref = CheckedObject.of(c, item, itemPath, ["group", "kind", "name", "namespace"]);
      if (!ref) return;
      ref.require("kind", "the kind of the target, e.g. Gateway");
      ref.require("name", "the target's name");
      for (const k of ["group", "kind", "name", "namespace"]) ref.string(k);
      c.warning(itemPath, "targetRefs (Gateway API targets) are not supported yet by Weft: this EnvoyFilter is not applied to them");
    },
    { itemDescription: "policy targets" },
  );
  if (spec.has("workloadSelector") && spec.has("targetRefs")) c.error(spec.at("targetRefs"), "workloadSelector and targetRefs cannot both be set");
  spec.list("configPatches", (item, itemPath) => checkConfigPatch(c, item, itemPath), { itemDescription: "config patches" });
}

function checkConfigPatch(c: IssueCollector, value: unknown, path: string): void {
  if (value === null || value === undefined) {
    c.error(path, "null config patch");
    return;
  }
  const cp = CheckedObject.of(c, value, path, ["applyTo", "match", "patch"]);
  if (!cp) return;
  if (!cp.require("applyTo", `one of ${APPLY_TO.join(", ")}`)) return;
  const applyTo = cp.enumValue("applyTo", APPLY_TO);
  if (!cp.require("patch", "a mapping with operation and value")) return;
  const patch = cp.object("patch", ["operation", "value", "filterClass"]);
  if (!patch) return;
  if (!patch.require("operation", `one of ${PATCH_OPERATIONS.join(", ")}`)) return;
  const operation = patch.enumValue("operation", PATCH_OPERATIONS);
  patch.enumValue("filterClass", FILTER_CLASSES);
  if (operation && operation !== "REMOVE" && !patch.require("value", `the Envoy configuration to ${operation === "MERGE" ? "merge" : "add"}`)) return;

  const match = cp.object("match", ["context", "proxy", "listener", "routeConfiguration", "cluster"]);
  if (match) {
    match.enumValue("context", PATCH_CONTEXTS);
    const proxy = match.object("proxy", ["proxyVersion", "metadata"]);
    if (proxy) {
      proxy.regex("proxyVersion");
      proxy.stringMap("metadata");
    }
    const kinds = ["listener", "routeConfiguration", "cluster"].filter((k) => match.has(k));
    if (kinds.length > 1) c.error(match.path, `only one of listener, routeConfiguration, cluster may be set, found ${kinds.join(" and ")}`);
    if (applyTo && kinds.length === 1) {
      const expected = LISTENER_CLASS.includes(applyTo) ? "listener" : ROUTE_CLASS.includes(applyTo) ? "routeConfiguration" : applyTo === "CLUSTER" ? "cluster" : undefined;
      if (expected && kinds[0] !== expected) c.error(match.at(kinds[0]!), `applyTo ${applyTo} needs a ${expected} match, found a ${kinds[0]} match`);
    }
    checkListenerMatch(c, match, applyTo);
    checkRouteConfigurationMatch(match);
    const cluster = match.object("cluster", ["portNumber", "service", "subset", "name"]);
    if (cluster) {
      cluster.port("portNumber");
      for (const k of ["service", "subset", "name"]) cluster.string(k);
    }
  }

  if (applyTo && operation && !OPERATIONS_APPLIED[applyTo].includes(operation)) {
    c.warning(patch.at("operation"), `${operation} has no effect with applyTo ${applyTo}${OPERATIONS_APPLIED[applyTo].length ? ` (it takes ${OPERATIONS_APPLIED[applyTo].join(", ")})` : " (Weft does not apply this applyTo yet)"}: Istio ignores it and so does Weft`);
  }
  if (applyTo && patch.has("value")) checkPatchValue(c, applyTo, patch.value["value"], patch.at("value"));
}

function checkListenerMatch(c: IssueCollector, match: CheckedObject, applyTo: ApplyTo | undefined): void {
  const listener = match.object("listener", ["portNumber", "portName", "filterChain", "listenerFilter", "name"]);
  if (!listener) return;
  listener.port("portNumber");
  if (listener.has("portName")) c.warning(listener.at("portName"), "is deprecated in Istio and not used by Weft; match on portNumber");
  listener.string("listenerFilter");
  listener.string("name");
  const chain = listener.object("filterChain", ["name", "sni", "transportProtocol", "applicationProtocols", "filter", "destinationPort"]);
  if (!chain) return;
  for (const k of ["name", "sni", "transportProtocol", "applicationProtocols"]) chain.string(k);
  chain.port("destinationPort");
  const filter = chain.object("filter", ["name", "subFilter"]);
  if (!filter) return;
  if (applyTo === "LISTENER" || applyTo === "FILTER_CHAIN") c.warning(chain.at("filter"), `a filter match has no effect with applyTo ${applyTo}`);
  const name = filter.string("name");
  if (!name) {
    c.error(filter.at("name"), "a filter match needs the name of the filter to match on");
    return;
  }
  const sub = filter.object("subFilter", ["name"]);
  if (!sub) return;
  if (applyTo !== "HTTP_FILTER") c.error(filter.at("subFilter"), `a subFilter match can be used with applyTo HTTP_FILTER only${applyTo ? `, found ${applyTo}` : ""}`);
  else if (!HCM_NAMES.includes(name)) c.error(filter.at("subFilter"), `a subFilter match needs the filter match to name ${HCM_NAMES[0]}, found ${describeValue(name)}`);
  if (!sub.string("name")) c.error(sub.at("name"), "a subFilter match needs the name of the HTTP filter to match on");
}

function checkRouteConfigurationMatch(match: CheckedObject): void {
  const rc = match.object("routeConfiguration", ["portNumber", "portName", "gateway", "name", "vhost"]);
  if (!rc) return;
  rc.port("portNumber");
  for (const k of ["portName", "gateway", "name"]) rc.string(k);
  const vhost = rc.object("vhost", ["name", "domainName", "route"]);
  if (!vhost) return;
  vhost.string("name");
  vhost.string("domainName");
  const route = vhost.object("route", ["name", "action"]);
  route?.string("name");
  route?.enumValue("action", ROUTE_ACTIONS);
}

/** The value must read as the Envoy message applyTo names (through the generated schema). */
function checkPatchValue(c: IssueCollector, applyTo: ApplyTo, value: unknown, path: string): void {
  if (applyTo === "BOOTSTRAP") {
    c.warning(path, "applyTo BOOTSTRAP is not supported by Weft (the bootstrap is not sent over xDS): this patch is ignored");
    return;
  }
  try {
    const { unknownFields } = EnvoySchema.get().fromJson(PATCH_VALUE_TYPES[applyTo], value);
    for (const f of unknownFields.slice(0, MAX_UNKNOWN_LISTED)) c.warning(`${path}.${f.split(" ")[0]!}`, `unknown field ${f.slice(f.indexOf(" ") + 1)}: it is ignored, as Istio does`);
    if (unknownFields.length > MAX_UNKNOWN_LISTED) c.warning(path, `and ${unknownFields.length - MAX_UNKNOWN_LISTED} more unknown fields`);
  } catch (err) {
    if (!(err instanceof ProtoJsonError)) throw err;
    c.error(err.path ? `${path}.${err.path}` : path, `${err.message} (the value is read as ${PATCH_VALUE_TYPES[applyTo]})`);
  }
}
