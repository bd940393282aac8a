// Small field checkers shared by the per-kind validators. Each check records an issue phrased
// for people ("expected an integer from 0 to 100, found 150") at a field path such as
// "spec.http[0].route[1].weight", and returns the value when it has the expected type, so a
// validator can keep going and report every problem in a resource, not just the first.
import { isIP } from "node:net";
import { parseDurationMs } from "./duration.js";
import { isKnownProtocol, PROTOCOL_NAMES } from "./port-protocols.js";
import { findRe2Problem } from "./re2-regex.js";
import { closestMatch } from "./spelling-hints.js";
import { boundText, type SourceRef, type ValidationIssue } from "./types.js";

/** Collects the issues of one document. */
export class IssueCollector {
  readonly issues: ValidationIssue[] = [];

  constructor(
    readonly source: SourceRef,
    /** "Kind/namespace/name" or "(unknown)"; set once the envelope is known. */
    public resource = "(unknown)",
  ) {}

  error(field: string, message: string): void {
    this.issues.push({ ...this.source, resource: boundText(this.resource), field: boundText(field), message: boundText(message), severity: "error" });
  }

  /** A warning; `code` is Istio's analyzer code when the problem has one (analysis-messages.ts). */
  warning(field: string, message: string, code?: string): void {
    this.issues.push({ ...this.source, resource: boundText(this.resource), field: boundText(field), message: boundText(message), severity: "warning", ...(code ? { code } : {}) });
  }

  get errorCount(): number {
    return this.issues.filter((i) => i.severity === "error").length;
  }
}

// ---------------------------------------------------------------------------------------
// Describing values and paths

/** "150", "the string \"80\"", "a list", "a mapping", "null" — for "expected X, found Y". */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return "nothing (null)";
  if (typeof value === "string") return `the string ${JSON.stringify(value.length > 60 ? value.slice(0, 57) + "..." : value)}`;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `a list of ${value.length} item${value.length === 1 ? "" : "s"}`;
  if (typeof value === "object") return "a mapping";
  return typeof value;
}

/** Appends a key to a field path: `spec.hosts`, or `labels["app.kubernetes.io/name"]` when needed. */
export function fieldPath(path: string, key: string): string {
  const plain = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key);
  if (path === "") return plain ? key : `[${JSON.stringify(key)}]`;
  return plain ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function quoteList(values: readonly string[]): string {
  return values.map((v) => JSON.stringify(v)).join(", ");
}

// ---------------------------------------------------------------------------------------
// Names, hosts and addresses

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const HOST_LABEL = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;

/** A DNS-1123 label: a namespace, a subset name, a port name. */
export function isDnsLabel(value: string): boolean {
  return value.length <= 63 && DNS_LABEL.test(value);
}

/** A DNS-1123 subdomain: a Kubernetes object name. */
export function isDnsSubdomain(value: string): boolean {
  return value.length <= 253 && value.split(".").every(isDnsLabel);
}

export const DNS_LABEL_RULE = "a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)";
export const DNS_SUBDOMAIN_RULE = "a DNS-1123 name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters)";

/** A leftmost label with a wildcard, as Istio allows it: "*", or "*" (or "*-") before a label ("*.example.com", "*foo.example.com"). */
const WILDCARD_LABEL = /^\*(-?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)?$/;

/**
 * Why `host` is not a valid service host name, or undefined. Hosts are DNS names; with
 * `wildcard`, the leftmost label may hold a wildcard as Istio allows it ("*", "*.example.com",
 * "*foo.example.com", "*-foo.example.com").
 */
export function hostNameProblem(host: string, options: { wildcard: boolean }): string | undefined {
  if (host === "") return "expected a host name, found an empty string";
  const isWildcard = host.startsWith("*");
  if (isWildcard && !options.wildcard) return `expected a single host name, found the wildcard ${JSON.stringify(host)}`;
  if (host === "*") return undefined;
  const [first = "", ...rest] = host.split(".");
  const firstOk = isWildcard ? first.length <= 63 && WILDCARD_LABEL.test(first) : HOST_LABEL.test(first) && first.length <= 63;
  if (host.length > 255 || !firstOk || !rest.every((label) => HOST_LABEL.test(label) && label.length <= 63)) {
    return `expected a host name such as "reviews.default.svc.cluster.local"${options.wildcard ? ' or a wildcard such as "*.example.com"' : ""}, found ${JSON.stringify(host)}`;
  }
  return undefined;
}

/** Whether `value` is an IP address or a CIDR block ("10.0.0.0/8"). */
export function isIpOrCidr(value: string): boolean {
  const [address, prefix, ...rest] = value.split("/");
  if (rest.length > 0 || address === undefined) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

// ---------------------------------------------------------------------------------------
// Typed field access on one mapping

export interface IntegerRange {
  min?: number;
  max?: number;
}

/**
 * One mapping at a field path, checked against the fields it may hold. Unknown fields are
 * errors (like Istio's strict schema). Accessors check one field each, record an issue when
 * it is malformed, and return the value only when it is well-formed.
 */
export class CheckedObject {
  constructor(
    readonly c: IssueCollector,
    readonly path: string,
    readonly value: Record<string, unknown>,
  ) {}

  /**
   * Checks `value` is a mapping with only `allowed` fields; undefined (with an issue) if it is
   * not a mapping. `notSupported` lists real Istio fields Weft does not implement yet: they get
   * a "not supported yet" warning and are ignored (never "unknown field", so nobody mistakes
   * them for typos). A field whose absence could widen access is refused by its kind's check instead.
   */
  static of(c: IssueCollector, value: unknown, path: string, allowed: readonly string[], notSupported: readonly string[] = []): CheckedObject | undefined {
    if (!isMapping(value)) {
      c.error(path, `expected a mapping with fields ${allowed.join(", ")}; found ${describeValue(value)}`);
      return undefined;
    }
    for (const key of Object.keys(value)) {
      if (allowed.includes(key)) continue;
      if (notSupported.includes(key)) {
        c.warning(fieldPath(path, key), `is an Istio field that Weft does not support yet; it is ignored (supported here: ${allowed.join(", ")})`);
        continue;
      }
      const hint = closestMatch(key, allowed);
      c.error(fieldPath(path, key), `unknown field${hint ? ` (did you mean "${hint}"?)` : ""}; expected one of: ${allowed.join(", ")}`);
    }
    return new CheckedObject(c, path, value);
  }

  at(key: string): string {
    return fieldPath(this.path, key);
  }

  has(key: string): boolean {
    return this.value[key] !== undefined && this.value[key] !== null;
  }

  /** Reports a missing required field; returns false when missing. */
  require(key: string, expectation: string): boolean {
    if (this.has(key)) return true;
    this.c.error(this.at(key), `required field is missing: expected ${expectation}`);
    return false;
  }

  private wrongType(key: string, expectation: string): undefined {
    const found = this.value[key];
    const hint = typeof found === "string" && expectation.includes("integer") && /^-?\d+$/.test(found) ? " (remove the quotes)" : "";
    this.c.error(this.at(key), `expected ${expectation}, found ${describeValue(found)}${hint}`);
    return undefined;
  }

  string(key: string, options: { nonEmpty?: boolean } = {}): string | undefined {
    if (!this.has(key)) return undefined;
    const v = this.value[key];
    if (typeof v !== "string") return this.wrongType(key, "a string");
    if (options.nonEmpty && v === "") {
      this.c.error(this.at(key), "expected a non-empty string, found an empty string");
      return undefined;
    }
    return v;
  }

  boolean(key: string): boolean | undefined {
    if (!this.has(key)) return undefined;
    const v = this.value[key];
    if (typeof v !== "boolean") return this.wrongType(key, "true or false");
    return v;
  }

  integer(key: string, range: IntegerRange = {}): number | undefined {
    if (!this.has(key)) return undefined;
    const expectation = describeIntegerRange(range);
    const v = this.value[key];
    if (typeof v !== "number" || !Number.isInteger(v)) return this.wrongType(key, expectation);
    if ((range.min !== undefined && v < range.min) || (range.max !== undefined && v > range.max)) return this.wrongType(key, expectation);
    return v;
  }

  /** A number (integer or not) within an inclusive range, e.g. a percentage. */
  number(key: string, range: { min: number; max: number }): number | undefined {
    if (!this.has(key)) return undefined;
    const v = this.value[key];
    const expectation = `a number from ${range.min} to ${range.max}`;
    if (typeof v !== "number" || !Number.isFinite(v) || v < range.min || v > range.max) return this.wrongType(key, expectation);
    return v;
  }

  port(key: string): number | undefined {
    return this.integer(key, { min: 1, max: 65535 });
  }

  enumValue<T extends string>(key: string, values: readonly T[]): T | undefined {
    if (!this.has(key)) return undefined;
    const v = this.value[key];
    if (typeof v === "string" && (values as readonly string[]).includes(v)) return v as T;
    let hint = "";
    if (typeof v === "string") {
      const caseMatch = values.find((x) => x.toLowerCase() === v.toLowerCase());
      const close = caseMatch ?? closestMatch(v, values);
      if (caseMatch) hint = ` (values are case-sensitive: write "${caseMatch}")`;
      else if (close) hint = ` (did you mean "${close}"?)`;
    }
    this.c.error(this.at(key), `expected one of ${quoteList(values)}, found ${describeValue(v)}${hint}`);
    return undefined;
  }

  /**
   * A duration such as "1s", "250ms", "1.5s", "2m" or "1h". `positive` requires more than zero,
   * as Istio does for timeouts and intervals (Istio's minimum is 1ms; durations are accurate
   * to the millisecond). Returns milliseconds.
   */
  duration(key: string, options: { positive: boolean; wholeSeconds?: boolean }): number | undefined {
    if (!this.has(key)) return undefined;
    const v = this.value[key];
    const example = 'a duration such as "1s", "250ms", "1.5s", "2m" or "1h"';
    if (typeof v !== "string") {
      const hint = typeof v === "number" ? ` (add a unit, e.g. "${v}s")` : "";
      this.c.error(this.at(key), `expected ${example}, found ${describeValue(v)}${hint}`);
      return undefined;
    }
    const ms = parseDurationMs(v);
    if (ms === undefined) {
      this.c.error(this.at(key), `expected ${example}, found ${describeValue(v)}`);
      return undefined;
    }
    if (ms < 0) {
      this.c.error(this.at(key), `expected a duration that is not negative, found "${v}"`);
      return undefined;
    }
    if (options.positive && ms < 1) {
      this.c.error(this.at(key), `expected a duration of at least 1ms, found "${v}"`);
      return undefined;
    }
    if (!Number.isInteger(ms)) {
      this.c.error(this.at(key), `expected a duration in whole milliseconds, found "${v}"`);
      return undefined;
    }
    if (options.wholeSeconds && ms % 1000 !== 0) {
      this.c.error(this.at(key), `expected a duration in whole seconds, found "${v}"`);
      return undefined;
    }
    return ms;
  }

  /** A string that must be a valid RE2 regular expression. */
  regex(key: string): string | undefined {
    const v = this.string(key);
    if (v === undefined) return undefined;
    const problem = findRe2Problem(v);
    if (problem) {
      this.c.error(this.at(key), `the regex ${JSON.stringify(v)} ${problem}`);
      return undefined;
    }
    return v;
  }

  /** A mapping field, checked against its own allowed fields. */
  object(key: string, allowed: readonly string[], notSupported: readonly string[] = []): CheckedObject | undefined {
    if (!this.has(key)) return undefined;
    return CheckedObject.of(this.c, this.value[key], this.at(key), allowed, notSupported);
  }

  /** A list field; `check` runs on each item with its path. Returns the items when it is a list. */
  list(key: string, check: (item: unknown, path: string, index: number) => void, options: { nonEmpty?: boolean; itemDescription?: string } = {}): unknown[] | undefined {
    if (!this.has(key)) return undefined;
    const v = this.value[key];
    const what = options.itemDescription ?? "items";
    if (!Array.isArray(v)) return this.wrongType(key, `a list of ${what}`);
    if (options.nonEmpty && v.length === 0) {
      this.c.error(this.at(key), `expected a non-empty list of ${what}, found an empty list`);
      return v;
    }
    v.forEach((item, index) => check(item, `${this.at(key)}[${index}]`, index));
    return v;
  }

  /** A list of strings; `checkItem` may return a problem description for one string. */
  stringList(key: string, options: { nonEmpty?: boolean; itemDescription?: string; checkItem?: (item: string) => string | undefined } = {}): string[] | undefined {
    const what = options.itemDescription ?? "strings";
    let allStrings = true;
    const items = this.list(
      key,
      (item, path) => {
        if (typeof item !== "string") {
          allStrings = false;
          this.c.error(path, `expected ${singular(what)}, found ${describeValue(item)}`);
          return;
        }
        const problem = options.checkItem?.(item);
        if (problem) {
          allStrings = false;
          this.c.error(path, problem);
        }
      },
      { ...(options.nonEmpty ? { nonEmpty: true } : {}), itemDescription: what },
    );
    return items && allStrings ? (items as string[]) : undefined;
  }

  /** A mapping of string keys to string values (labels, selectors, header values). */
  stringMap(key: string, options: { checkKey?: (k: string) => string | undefined } = {}): Record<string, string> | undefined {
    if (!this.has(key)) return undefined;
    const v = this.value[key];
    if (!isMapping(v)) return this.wrongType(key, "a mapping of names to string values");
    let ok = true;
    for (const [k, item] of Object.entries(v)) {
      const keyProblem = options.checkKey?.(k);
      if (keyProblem) {
        ok = false;
        this.c.error(fieldPath(this.at(key), k), keyProblem);
      }
      if (typeof item !== "string") {
        ok = false;
        const hint = typeof item === "number" || typeof item === "boolean" ? ` (quote it: "${String(item)}")` : "";
        this.c.error(fieldPath(this.at(key), k), `expected a string value, found ${describeValue(item)}${hint}`);
      }
    }
    return ok ? (v as Record<string, string>) : undefined;
  }

  /** A mapping of names to sub-objects (e.g. header name -> StringMatch). */
  mapOf(key: string, check: (item: unknown, path: string, name: string) => void): Record<string, unknown> | undefined {
    if (!this.has(key)) return undefined;
    const v = this.value[key];
    if (!isMapping(v)) return this.wrongType(key, "a mapping of names to values");
    for (const [name, item] of Object.entries(v)) check(item, fieldPath(this.at(key), name), name);
    return v;
  }

  /** Reports that at most one of `keys` may be set; returns the keys that are set. */
  atMostOneOf(keys: readonly string[], what = "fields"): string[] {
    const set = keys.filter((k) => this.has(k));
    if (set.length > 1) this.c.error(this.path, `expected at most one of the ${what} ${keys.join(", ")}, found ${set.join(" and ")}`);
    return set;
  }
}

function singular(what: string): string {
  const article = /^[aeiou]/i.test(what) ? "an" : "a";
  return `${article} ${what.replace(/s$/, "")}`;
}

export function describeIntegerRange(range: IntegerRange): string {
  if (range.min !== undefined && range.max !== undefined) return `an integer from ${range.min} to ${range.max}`;
  if (range.min !== undefined) return range.min === 0 ? "an integer that is 0 or more" : `an integer of at least ${range.min}`;
  if (range.max !== undefined) return `an integer of at most ${range.max}`;
  return "an integer";
}

// ---------------------------------------------------------------------------------------
// Checks shared by several kinds

/** exportTo: "." (this namespace), "*" (all), "~" (none) or namespace names. */
export function checkExportTo(o: CheckedObject): void {
  const values = o.stringList("exportTo", {
    itemDescription: 'namespaces (".", "*" or a namespace name)',
    checkItem: (v) => (v === "." || v === "*" || v === "~" || isDnsLabel(v) ? undefined : `expected ".", "*", "~" or a namespace name (${DNS_LABEL_RULE}), found ${describeValue(v)}`),
  });
  if (!values) return;
  for (const exclusive of ["*", "~"]) {
    if (values.includes(exclusive) && values.length > 1) o.c.error(o.at("exportTo"), `"${exclusive}" cannot be combined with other values, found ${quoteList(values)}`);
  }
  const seen = new Set<string>();
  values.forEach((v, i) => {
    if (seen.has(v)) o.c.error(`${o.at("exportTo")}[${i}]`, `duplicate value "${v}"`);
    seen.add(v);
  });
}

/**
 * workloadSelector: { labels } (ServiceEntry, Sidecar) or { matchLabels } (DestinationRule).
 * As Istio: an empty selector (`workloadSelector: {}`) is accepted with a warning; a "*" in a
 * label name or value is refused (selectors match exact labels).
 */
export function checkWorkloadSelector(o: CheckedObject, labelsField: "labels" | "matchLabels", emptyMeans: string): void {
  const selector = o.object("workloadSelector", [labelsField]);
  if (!selector) return;
  const labels = selector.stringMap(labelsField, { checkKey: (k) => (k === "" ? "an empty label name is not supported in a selector" : k.includes("*") ? "a wildcard is not supported in a selector" : undefined) });
  if (labels) {
    for (const [k, v] of Object.entries(labels)) if (v.includes("*")) o.c.error(fieldPath(selector.at(labelsField), k), `a wildcard is not supported in a selector, found ${describeValue(v)}; selectors match labels exactly`);
  }
  if (selector.has(labelsField) ? labels && Object.keys(labels).length === 0 : true) o.c.warning(o.at("workloadSelector"), `a workload selector without labels: ${emptyMeans}`);
}

/** A label value as Kubernetes and Istio accept it: empty, or up to 63 letters, digits, "-", "_" and "." starting and ending alphanumeric. */
export function labelValueProblem(value: string): string | undefined {
  if (value === "" || (value.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(value))) return undefined;
  return `expected a label value (empty, or up to 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit), found ${describeValue(value)}`;
}

/** Checks the values of a labels mapping (keys are checked by stringMap's checkKey). */
export function checkLabelValues(o: CheckedObject, key: string, labels: Record<string, string> | undefined): void {
  for (const [k, v] of Object.entries(labels ?? {})) {
    const problem = labelValueProblem(v);
    if (problem) o.c.error(fieldPath(o.at(key), k), problem);
  }
}

/** Istio's port and subset names: a DNS-1123 label in either case ("http", "HTTP-web", "v1"). */
export const PORT_NAME_RULE = "a name of letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";

export function isPortName(value: string): boolean {
  return value.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/.test(value);
}

/**
 * A port protocol as Istio reads it: any case ("tcp", "Http"); `allowEmpty` where an empty or
 * missing protocol means "detect" (ServiceEntry ports). Returns the protocol as written.
 */
export function checkProtocol(o: CheckedObject, key: string, options: { allowEmpty: boolean }): string | undefined {
  const value = o.string(key);
  if (value === undefined || (value === "" && options.allowEmpty)) return value;
  if (isKnownProtocol(value)) return value;
  const close = closestMatch(value.toLowerCase(), PROTOCOL_NAMES.map((n) => n.toLowerCase()));
  const hint = close ? ` (did you mean "${PROTOCOL_NAMES.find((n) => n.toLowerCase() === close)}"?)` : "";
  o.c.error(o.at(key), `expected one of ${PROTOCOL_NAMES.join(", ")} (any case)${options.allowEmpty ? ", or empty to detect it" : ""}, found ${describeValue(value)}${hint}`);
  return undefined;
}

/** A label key: an optional DNS-subdomain prefix and a name ("app.kubernetes.io/name"). */
export function labelKeyProblem(key: string): string | undefined {
  const [prefix, name, ...rest] = key.includes("/") ? key.split("/") : [undefined, key];
  const nameOk = name !== undefined && name.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(name);
  if (rest.length === 0 && nameOk && (prefix === undefined || isDnsSubdomain(prefix))) return undefined;
  return `expected a label name such as "app" or "app.kubernetes.io/name", found ${describeValue(key)}`;
}

