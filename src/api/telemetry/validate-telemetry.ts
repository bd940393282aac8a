// Reading and validating Istio's Telemetry resource (telemetry.istio.io v1, v1alpha1): same
// approach and message style as the networking and security validators. Errors are what Istio
// refuses (a sampling percentage over 100, selector together with targetRef, a custom tag of no
// or several kinds, a filter that is not an expression); what Istio accepts but Weft does not
// apply (targetRef, metrics, several tracing providers) is a warning saying so. Whether the
// named providers exist depends on the mesh settings: see checkTelemetryProviders.
import { CheckedObject, DNS_LABEL_RULE, IssueCollector, describeValue, isDnsLabel, labelKeyProblem } from "../field-checks.js";
import type { SourceRef, ValidationIssue } from "../types.js";
import { knownProviders, type MeshTelemetrySettings } from "./extension-providers.js";
import { WORKLOAD_MODES, type Telemetry } from "./types.js";

const SPEC_FIELDS = ["selector", "targetRef", "targetRefs", "tracing", "accessLogging", "metrics"] as const;
const TARGET_REF_FIELDS = ["group", "kind", "name", "namespace"] as const;

/** Longest filter expression accepted (Istio's CEL has no stated bound; this keeps input bounded). */
export const MAX_FILTER_EXPRESSION_CHARS = 4096;
const MAX_CUSTOM_TAGS = 64;

/** Checks a Telemetry's spec (the kind registry reads the envelope and metadata; an empty spec is valid). */
export function checkTelemetrySpec(c: IssueCollector, value: unknown, path: string): void {
  const spec = CheckedObject.of(c, value, path, SPEC_FIELDS);
  if (!spec) return;
  const selector = spec.object("selector", ["matchLabels"]);
  selector?.stringMap("matchLabels", { checkKey: labelKeyProblem });
  const set = spec.atMostOneOf(["selector", "targetRef", "targetRefs"], "ways of choosing workloads");
  if (spec.has("targetRef")) checkTargetRef(c, spec.value["targetRef"], spec.at("targetRef"));
  spec.list("targetRefs", (item, p) => checkTargetRef(c, item, p), { itemDescription: "policy target references" });
  if (set.some((k) => k !== "selector")) {
    c.warning(spec.at(set.find((k) => k !== "selector")!), "is not supported yet: Weft applies Telemetry to workloads by selector only (or to a whole namespace without one), so this Telemetry is not applied");
  }

  const tracing = spec.list("tracing", (item, p) => checkTracing(c, item, p), { itemDescription: "tracing rules" });
  if (tracing && tracing.length > 1) c.warning(spec.at("tracing"), "several tracing rules: as Istio, only one tracing rule per direction is supported; the first one for a direction wins");
  spec.list("accessLogging", (item, p) => checkAccessLogging(c, item, p), { itemDescription: "access logging rules" });
  if (spec.has("metrics")) {
    spec.list("metrics", () => undefined, { itemDescription: "metrics rules" });
    c.warning(spec.at("metrics"), "is not applied: Weft's proxies always serve their metrics (see the README's Observability section); metric overrides and providers in Telemetry are not supported yet");
  }
}

function checkTargetRef(c: IssueCollector, value: unknown, path: string): void {
  const ref = CheckedObject.of(c, value, path, TARGET_REF_FIELDS);
  if (!ref) return;
  if (ref.require("kind", 'a kind such as "Gateway" or "Service"')) ref.string("kind", { nonEmpty: true });
  if (ref.require("name", "the target's name")) ref.string("name", { nonEmpty: true });
  ref.string("group");
  const ns = ref.string("namespace");
  if (ns !== undefined && ns !== "" && !isDnsLabel(ns)) c.error(ref.at("namespace"), `expected a namespace name, ${DNS_LABEL_RULE}; found ${describeValue(ns)}`);
}

function checkMatch(o: CheckedObject): void {
  const match = o.object("match", ["mode"]);
  match?.enumValue("mode", WORKLOAD_MODES);
}

function checkProviders(o: CheckedObject): string[] {
  const names: string[] = [];
  o.list(
    "providers",
    (item, p) => {
      const ref = CheckedObject.of(o.c, item, p, ["name"]);
      if (ref?.require("name", "the name of a provider from the mesh settings' extensionProviders (or \"envoy\")")) {
        const name = ref.string("name", { nonEmpty: true });
        if (name !== undefined) names.push(name);
      }
    },
    { itemDescription: "provider references ({ name })" },
  );
  return names;
}

function checkTracing(c: IssueCollector, value: unknown, path: string): void {
  const t = CheckedObject.of(c, value, path, ["match", "providers", "randomSamplingPercentage", "disableSpanReporting", "customTags", "useRequestIdForTraceSampling"]);
  if (!t) return;
  checkMatch(t);
  const providers = checkProviders(t);
  if (providers.length > 1) c.warning(t.at("providers"), "several providers: as Istio, only the first one is used");
  t.number("randomSamplingPercentage", { min: 0, max: 100 });
  t.boolean("disableSpanReporting");
  t.boolean("useRequestIdForTraceSampling");
  const tags = t.mapOf("customTags", (item, p) => {
    const tag = CheckedObject.of(c, item, p, ["literal", "environment", "header"]);
    if (!tag) return;
    const kinds = tag.atMostOneOf(["literal", "environment", "header"], "tag kinds");
    if (kinds.length === 0) c.error(p, "expected one of literal, environment or header");
    const literal = tag.object("literal", ["value"]);
    if (literal?.require("value", "the tag's value")) literal.string("value");
    for (const k of ["environment", "header"] as const) {
      const from = tag.object(k, ["name", "defaultValue"]);
      if (from?.require("name", k === "header" ? "a request header name" : "an environment variable name of the proxy")) from.string("name", { nonEmpty: true });
      from?.string("defaultValue");
    }
  });
  if (tags && Object.keys(tags).length > MAX_CUSTOM_TAGS) c.error(t.at("customTags"), `expected at most ${MAX_CUSTOM_TAGS} tags, found ${Object.keys(tags).length}`);
}

function checkAccessLogging(c: IssueCollector, value: unknown, path: string): void {
  const a = CheckedObject.of(c, value, path, ["match", "providers", "disabled", "filter"]);
  if (!a) return;
  checkMatch(a);
  checkProviders(a);
  a.boolean("disabled");
  const filter = a.object("filter", ["expression"]);
  if (filter?.require("expression", 'a CEL expression such as "response.code >= 400"')) {
    const expression = filter.string("expression", { nonEmpty: true });
    if (expression !== undefined) {
      const problem = celSyntaxProblem(expression);
      if (problem) c.error(filter.at("expression"), problem);
    }
  }
}

/**
 * A first check of a CEL expression: bounded, quotes closed, brackets balanced. Envoy compiles
 * the expression itself; one it cannot parse is rejected there (a NACK shown in `weft status`).
 */
export function celSyntaxProblem(expression: string): string | undefined {
  if (expression.length > MAX_FILTER_EXPRESSION_CHARS) return `expected at most ${MAX_FILTER_EXPRESSION_CHARS} characters, found ${expression.length}`;
  if (expression.trim() === "") return 'expected a CEL expression such as "response.code >= 400", found only spaces';
  const closing: Record<string, string> = { ")": "(", "]": "[", "}": "{" };
  const stack: string[] = [];
  for (let i = 0; i < expression.length; i++) {
    const ch = expression[i]!;
    if (ch === '"' || ch === "'") {
      const end = findClosingQuote(expression, i, ch);
      if (end < 0) return `a CEL expression with an unclosed ${ch} quote at character ${i + 1}: ${describeValue(expression)}`;
      i = end;
    } else if (ch === "(" || ch === "[" || ch === "{") stack.push(ch);
    else if (ch in closing) {
      if (stack.pop() !== closing[ch]) return `a CEL expression with an unmatched "${ch}" at character ${i + 1}: ${describeValue(expression)}`;
    }
  }
  if (stack.length > 0) return `a CEL expression with an unclosed "${stack[stack.length - 1]}": ${describeValue(expression)}`;
  if (/(^|[^=!<>])=($|[^=])/.test(expression.replace(/"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'/g, '""'))) return `a CEL expression compares with "==", not "=": ${describeValue(expression)}`;
  return undefined;
}

function findClosingQuote(text: string, start: number, quote: string): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === quote) return i;
  }
  return -1;
}

/**
 * Provider names each Telemetry uses that the mesh settings do not declare: warnings (Istio
 * accepts the resource and logs that the provider is missing; nothing is sent through it).
 */
export function checkTelemetryProviders(telemetries: readonly { resource: Telemetry; source: SourceRef }[], settings: MeshTelemetrySettings): ValidationIssue[] {
  const known = new Set(knownProviders(settings).map((p) => p.name));
  const issues: ValidationIssue[] = [];
  for (const { resource, source } of telemetries) {
    const c = new IssueCollector(source, `Telemetry/${resource.metadata.namespace ?? "default"}/${resource.metadata.name}`);
    for (const [list, rules] of [["tracing", resource.spec.tracing ?? []], ["accessLogging", resource.spec.accessLogging ?? []]] as const) {
      rules.forEach((rule, i) =>
        (rule.providers ?? []).forEach((p, j) => {
          if (!known.has(p.name)) {
            c.warning(`spec.${list}[${i}].providers[${j}].name`, `no extension provider named "${p.name}" in the mesh settings (known: ${[...known].map((k) => `"${k}"`).join(", ")}); nothing is sent through it. Declare it under extensionProviders (weft serve --mesh-config)`);
          }
        }),
      );
    }
    issues.push(...c.issues);
  }
  return issues;
}
