// Reading and validating one resource at a time: multi-document YAML in, Istio resources out
// (every kind declared in kind-registry.ts), with every problem reported against its file,
// document and field. The per-kind spec checks live in validate-<kind>.ts (security/ for
// security.istio.io); cross-resource checks in validate-mesh.ts.
import { FAILSAFE_SCHEMA, loadAll, Type } from "js-yaml";
import { isScalar, LineCounter, parseAllDocuments, visit, type Document } from "yaml";
import { isIP } from "node:net";
import { CheckedObject, fieldPath, IssueCollector } from "./field-checks.js";
import { ISTIO_GROUPS, kindDeclaration, type IstioResource } from "./kind-registry.js";
import { boundText, type SourceRef, type ValidationIssue } from "./types.js";
import { checkMetadata, checkVersionAndKind, readEnvelope, type ApiGroup } from "./object-meta.js";
import { runToEnd, type Steps } from "../work/work-steps.js";

/** Each declared API group as the envelope checks read it. */
const API_GROUPS = new Map<string, ApiGroup<string>>(ISTIO_GROUPS.map((g) => [g.group, { group: g.group, versions: g.versions, kinds: g.kinds.map((d) => d.kind), ignoredKinds: g.ignoredKinds }]));
/** What an apiVersion of no declared group is told: "networking.istio.io and security.istio.io". */
const GROUP_NAMES = ((names) => (names.length > 1 ? `${names.slice(0, -1).join(", ")} and ${names.at(-1)}` : names.join("")))(ISTIO_GROUPS.map((g) => g.group));
/** The envelope check before the group is known: the first group's versions and kinds name the expected shape. */
const FIRST_GROUP = API_GROUPS.values().next().value!;

const TOP_LEVEL_FIELDS = ["apiVersion", "kind", "metadata", "spec", "status"] as const;
export { DEFAULT_NAMESPACE } from "./object-meta.js";

/**
 * The fast reader (js-yaml 4) reads YAML 1.2's core schema as `yaml` does, at about 15 times
 * the speed (20 MB of Istio YAML: about 0.4 s of CPU instead of 15 s; js-yaml 5 reads through
 * an event list and takes 2.5-3 times as long as 4 on the same text). It is used only where
 * both readers give the same result. A text goes to `yaml` when it has (found by the
 * differential tests in validate-resource.test.ts, or known):
 * - an anchor, so no alias can expand (an alias without its anchor is an error), or a tag:
 *   looked for where a node's properties may stand ("&a", "!x" after a space, "[", "{", ","
 *   or ":"); a scalar that merely holds one there is read by `yaml` too (slower, same result);
 * - a directive ("%YAML 1.1" changes the schema); an explicit "?" key; a merge key "<<"
 *   (js-yaml also merges sequences);
 * - a null key: `yaml` turns `null:`, "{~}" or "{? }" into the key "", js-yaml into "null";
 *   an empty key in a flow collection ("[: x]"); a collection as a key ("[object Object]");
 * - a tab in a line's indentation; "---" or "..." at a line's start before other text (js-yaml
 *   takes a marker); an empty sequence entry ("- - " then "- b": js-yaml puts b inside);
 * - a comment right after a quote, a bracket or a comma (js-yaml takes it, `yaml` refuses it);
 * - a block scalar with an indentation indicator ("|2": js-yaml counts from another column),
 *   an empty first line, or its header first on a line ("  >" at the top level);
 * - a quoted scalar over several lines (js-yaml takes less indented continuation lines).
 * Anything the fast reader refuses, `yaml` reads, with its warnings and precise errors.
 */
const NEEDS_FULL_READER = /^%|^[ \t-]*\?(?:[ \t]|$)|(?:^|[\s{,?-])(?:~|null|Null|NULL)[ \t]*:(?:[ \t]|$)|(?:^|[\s[{,:])[&!]|<<|^ *\t|[|>][-+]?[1-9]|['"[\]{},]#|(?:^|[ \t])-[ \t]*(?:#.*)?$|^(?:---|\.\.\.)[^ \t\r\n]|[|>][-+]?[ \t]*(?:#.*)?\r?\n[ \t]*\r?\n|[[{,]\s*:(?:[\s\]},]|$)|[\]}][ \t]*:(?:[ \t]|$)|[[{,]\s*\?(?:\s|$)|^[ \t-]*[|>]|[{,]\s*(?:~|null|Null|NULL)\s*[,}]|(?:^|[\s[{,:])(?:"(?:[^"\\\r\n]|\\.)*|'[^'\r\n]*(?:''[^'\r\n]*)*)$/m;

/**
 * YAML 1.2's core schema exactly as `yaml` resolves plain scalars (js-yaml's own core schema
 * also reads "0b1", "1_000" and "+.5e" forms as numbers), in `yaml`'s order: the first rule
 * whose pattern matches gives the value; no match, a string.
 */
const CORE_SCALAR_RULES: readonly (readonly [RegExp, (text: string) => unknown])[] = [
  [/^(?:~|[Nn]ull|NULL)?$/, () => null],
  [/^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/, (text) => text[0] === "t" || text[0] === "T"],
  [/^0o[0-7]+$/, (text) => parseInt(text.slice(2), 8)],
  [/^[-+]?[0-9]+$/, (text) => parseInt(text, 10)],
  [/^0x[0-9a-fA-F]+$/, (text) => parseInt(text.slice(2), 16)],
  [/^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/, (text) => (text.slice(-3).toLowerCase() === "nan" ? Number.NaN : text[0] === "-" ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY)],
  [/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/, (text) => parseFloat(text)],
  [/^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/, (text) => parseFloat(text)],
];
/** The first characters of every non-string above: most plain scalars (names, hosts) start otherwise and skip the patterns. */
const CORE_SCALAR_START = /^[-+.0-9~nNtTfF]/;

/** The rule that reads a plain scalar as something other than a string, if any. */
function coreScalarRule(text: string): ((text: string) => unknown) | undefined {
  if (text !== "" && !CORE_SCALAR_START.test(text)) return undefined;
  for (const [pattern, value] of CORE_SCALAR_RULES) if (pattern.test(text)) return value;
  return undefined;
}

/**
 * js-yaml's schema for the fast reader: strings, sequences and mappings (failsafe) and the core
 * scalars under Weft's own tag (so an explicit "!!int" is an unknown tag to js-yaml: refused,
 * and read by `yaml`).
 */
const FAST_SCHEMA = FAILSAFE_SCHEMA.extend({
  implicit: [
    new Type("tag:weft.io,2026:core-scalar", { kind: "scalar", resolve: (text: unknown) => typeof text === "string" && coreScalarRule(text) !== undefined, construct: (text: string) => coreScalarRule(text)!(text) }),
  ],
});

/** Every document of `text` (null for an empty one), or undefined when `yaml` must read it. */
function readQuickly(text: string): unknown[] | undefined {
  try {
    return loadAll(text, null, { schema: FAST_SCHEMA });
  } catch {
    return undefined; // a syntax error, an alias, a tag: `yaml` says precisely what and where
  }
}

/** Text read by the fast reader between two steps (whole documents: at least one per step). */
const QUICK_BYTES_PER_STEP = 32 * 1024;
/** A document start marker: "---" at the start of a line, then a space, a tab or the line's end. */
const DOCUMENT_START = /^---(?=[ \t\r\n]|$)/gm;

/**
 * readQuickly in steps of about QUICK_BYTES_PER_STEP: the text is cut before document start
 * markers ("---" at column 0 always starts a document in YAML: no scalar may contain such a
 * line), and each piece read by itself gives the same documents as the whole would (a piece
 * before the first marker holding only comments gives none, as the stream's start does). A
 * piece that does not read (a scalar the cut went through is one) sends the whole text to `yaml`.
 */
function* readQuicklySteps(text: string): Steps<unknown[] | undefined> {
  if (text.length <= QUICK_BYTES_PER_STEP) return readQuickly(text);
  const docs: unknown[] = [];
  let start = 0;
  DOCUMENT_START.lastIndex = 0;
  for (;;) {
    let cut = text.length;
    for (let m = DOCUMENT_START.exec(text); m; m = DOCUMENT_START.exec(text)) {
      if (m.index - start >= QUICK_BYTES_PER_STEP) {
        cut = m.index;
        break;
      }
    }
    const piece = readQuickly(text.slice(start, cut));
    if (!piece) return undefined;
    for (const value of piece) docs.push(value);
    if (cut === text.length) return docs;
    start = cut;
    DOCUMENT_START.lastIndex = cut + 3;
    yield;
  }
}

/**
 * Splits a multi-document YAML file. Documents are numbered from 1 in stream order (empty
 * documents count, so "document 3" is the third `---` section); empty documents are skipped.
 * A document with a YAML syntax error becomes an issue naming the file, document and line,
 * and is left out of `docs`; the other documents of the file are still returned.
 */
export function parseDocuments(text: string, file: string): { docs: { document: number; value: unknown }[]; issues: ValidationIssue[] } {
  return runToEnd(parseDocumentsSteps(text, file));
}

/** parseDocuments in steps (time-sliced callers: a 1 MB file is 0.1-0.4 s of reading); `yaml`'s full reading, when needed, is one step. */
export function* parseDocumentsSteps(text: string, file: string): Steps<{ docs: { document: number; value: unknown }[]; issues: ValidationIssue[] }> {
  const quick = NEEDS_FULL_READER.test(text) ? undefined : yield* readQuicklySteps(text);
  if (quick) return { docs: quick.flatMap((value, index) => (value === null || value === undefined ? [] : [{ document: index + 1, value }])), issues: [] };
  return parseDocumentsFully(text, file);
}

/** parseDocuments with `yaml`: warnings, errors with line and column, aliases (at most 100 per document). */
function parseDocumentsFully(text: string, file: string): { docs: { document: number; value: unknown }[]; issues: ValidationIssue[] } {
  const lineCounter = new LineCounter();
  // `yaml`'s own duplicate-key check compares every key with every other (a 2.6 MB mapping of
  // 200,000 keys took over 5 minutes); duplicateKeyOffset does the same check in linear time.
  const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: false, merge: true, uniqueKeys: false });
  const docs: { document: number; value: unknown }[] = [];
  const issues: ValidationIssue[] = [];
  const issue = (document: number, message: string, severity: ValidationIssue["severity"]): void => {
    issues.push({ file, document, resource: "(unknown)", field: "(yaml)", message: boundText(message), severity });
  };
  const where = (offset: number): string => {
    const { line, col } = lineCounter.linePos(offset);
    return `line ${line}, column ${col}`;
  };

  parsed.forEach((doc, index) => {
    const document = index + 1;
    for (const warning of doc.warnings) issue(document, `YAML warning at ${where(warning.pos[0])}: ${warning.message}`, "warning");
    if (doc.errors.length > 0) {
      for (const error of doc.errors) issue(document, `YAML syntax error at ${where(error.pos[0])}: ${error.message}; this document is skipped`, "error");
      return;
    }
    const duplicate = duplicateKeyOffset(doc);
    if (duplicate !== undefined) {
      issue(document, `YAML syntax error at ${where(duplicate)}: Map keys must be unique; this document is skipped`, "error");
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      issue(document, `cannot read this document: ${(err as Error).message}; it is skipped`, "error");
      return;
    }
    if (value === null || value === undefined) return; // an empty document ("---" with nothing after it)
    docs.push({ document, value });
  });
  return { docs, issues };
}

/**
 * Where the first repeated key of a mapping is, if any (YAML forbids them): scalar keys compared
 * by value, as `yaml` does, with a set per mapping. Merge keys ("<<") may repeat.
 */
function duplicateKeyOffset(doc: Document.Parsed): number | undefined {
  let found: number | undefined;
  visit(doc, {
    Map(_, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        const key = pair.key;
        if (!isScalar(key) || key.value === "<<") continue;
        if (seen.has(key.value)) {
          found = key.range?.[0] ?? 0;
          return visit.BREAK;
        }
        seen.add(key.value);
      }
      return undefined;
    },
  });
  return found;
}

export interface ValidateResourceOptions {
  /**
   * The caller hands `value` over: nothing else refers to it or will change it (a document
   * just parsed). Its spec becomes the resource's without a copy. Default false (copied).
   */
  owned?: boolean;
}

/**
 * Checks one parsed document against the Istio API (schema and per-resource meaning), for
 * every kind declared in kind-registry.ts. Returns the resource, with metadata.namespace
 * filled in, only when there are no errors; warnings alone do not reject it. Resources of
 * other API groups or kinds are ignored with a warning. All problems are reported, not just
 * the first.
 */
export function validateResource(value: unknown, source: SourceRef, options: ValidateResourceOptions = {}): { resource?: IstioResource; issues: ValidationIssue[]; declaredHosts?: string[] } {
  const c = new IssueCollector(source);
  const env = readEnvelope(c, value, FIRST_GROUP);
  if (!env) return { issues: c.issues };
  const api = API_GROUPS.get(env.group);
  if (!api) {
    c.warning("apiVersion", `ignored: Weft reads only ${GROUP_NAMES} resources, found apiVersion "${env.apiVersion}" (kind ${env.kind})`);
    return { issues: c.issues };
  }
  const kind = checkVersionAndKind(c, env, api);
  const declaration = kind === undefined ? undefined : kindDeclaration(kind);
  if (!declaration) return { issues: c.issues };
  const { apiVersion } = env;
  // A kind with fewer versions than its group (EnvoyFilter: v1alpha3 only, as in Istio's CRDs).
  if (api.versions.includes(env.version) && !declaration.versions.includes(env.version)) {
    c.error("apiVersion", `${declaration.kind} is served only as ${declaration.versions.map((v) => `${declaration.group}/${v}`).join(", ")}, found "${apiVersion}"`);
    return { issues: c.issues };
  }

  const top = CheckedObject.of(c, env.value, "", TOP_LEVEL_FIELDS);
  const metadata = checkMetadata(c, env.value["metadata"]);
  // The spec is cloned so that later edits to the caller's object cannot change the resource,
  // and so that unquoted IPv6 addresses YAML read as mappings can be put back as text; unless
  // the caller hands the value over (a document just parsed: a copy was ~10% of `weft validate`).
  let spec = options.owned ? env.value["spec"] : structuredClone(env.value["spec"]);
  if (hasIpv6Mapping(spec)) spec = repairIpv6Mappings(c, spec, "spec");
  if (declaration.spec === "optional") {
    // e.g. an AuthorizationPolicy without a spec: one that allows nothing.
    spec ??= {};
    declaration.check(c, spec, "spec");
  } else if (top?.require("spec", `the ${declaration.kind} spec`)) declaration.check(c, spec, "spec");

  if (c.errorCount > 0 || !metadata) return { issues: c.issues, declaredHosts: declaredHosts(spec) };
  // Every field of the spec was checked above against the kind's shape, so the cast is safe.
  const resource = { apiVersion, kind: declaration.kind, metadata, spec } as IstioResource;
  return { resource, issues: c.issues };
}

/**
 * Whether repairIpv6Mappings has anything to repair: the same test, without building a field
 * path for every node (walking every spec with paths was ~5% of `weft validate`).
 */
function hasIpv6Mapping(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (hasIpv6Mapping(value[i])) return true;
    return false;
  }
  // for-in, not Object.keys: no array per mapping (this walk visits every node of every spec).
  const mapping = value as Record<string, unknown>;
  let keys = 0;
  let only = "";
  for (const key in mapping) {
    if (!Object.hasOwn(mapping, key)) continue;
    const v = mapping[key];
    if (typeof v === "object" && v !== null && hasIpv6Mapping(v)) return true;
    if (++keys === 1) only = key;
  }
  return keys === 1 && mapping[only] === null && only.includes(":") && isIP(`${only}:`) === 6;
}

/**
 * An unquoted IPv6 address ending in "::" (`- 2001:db8::`) is a mapping to YAML ("2001:db8:"
 * with no value), not the address Istio reads (its YAML reader keeps it as text). Each such
 * one-key mapping whose key plus ":" is an IPv6 address is put back as the address, with a
 * warning saying to quote it. Returns `value` with the repairs made in place.
 */
function repairIpv6Mappings(c: IssueCollector, value: unknown, path: string): unknown {
  if (Array.isArray(value)) {
    value.forEach((item, i) => (value[i] = repairIpv6Mappings(c, item, `${path}[${i}]`)));
    return value;
  }
  if (typeof value !== "object" || value === null) return value;
  const entries = Object.entries(value);
  if (entries.length === 1 && entries[0]![1] === null && isIP(`${entries[0]![0]}:`) === 6) {
    const address = `${entries[0]![0]}:`;
    c.warning(path, `read as the IPv6 address "${address}" (YAML reads an unquoted address ending in "::" as a mapping; quote it: "${address}")`);
    return address;
  }
  for (const [k, v] of entries) (value as Record<string, unknown>)[k] = repairIpv6Mappings(c, v, fieldPath(path, k));
  return value;
}

/** At most this many hosts are read from an invalid document (for "exists but is invalid" messages). */
const MAX_DECLARED_HOSTS = 100;

/**
 * The hosts an invalid document would declare (spec.hosts, spec.host), read best-effort so that
 * references to it can say "exists but is invalid" rather than "does not exist".
 */
export function declaredHosts(spec: unknown): string[] {
  if (typeof spec !== "object" || spec === null) return [];
  const { hosts, host } = spec as { hosts?: unknown; host?: unknown };
  const list = Array.isArray(hosts) ? hosts.slice(0, MAX_DECLARED_HOSTS) : [host];
  return list.filter((h): h is string => typeof h === "string" && h.length > 0 && h.length <= 255);
}
