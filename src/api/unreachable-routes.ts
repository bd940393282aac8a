// Rules of a VirtualService that can never be used, reported as Istio's validation reports them
// (warnings with analyzer codes, written from Istio's documented behaviour): IST0130
// VirtualServiceUnreachableRule — a rule after a catch-all rule (one without matches), a second
// catch-all, or a rule all of whose matches earlier rules already have; IST0131
// VirtualServiceIneffectiveMatch — a match an earlier rule already has, or an HTTP URI prefix
// match that an earlier prefix match covers with every other condition the same. Rules are
// compared as written (a match's `name` ignored); nothing here changes what a proxy does.
import { VIRTUAL_SERVICE_INEFFECTIVE_MATCH, VIRTUAL_SERVICE_UNREACHABLE_RULE } from "./analysis-messages.js";
import { isMapping, type IssueCollector } from "./field-checks.js";

/** Rules compared per list; a longer list is left unchecked (Istio bounds a VirtualService by its size, Weft by the file). */
const MAX_RULES = 4096;

type Match = Record<string, unknown>;

/** A JSON text of a match that is equal for equal conditions, whatever the key order (`name` left out). */
function conditionsKey(match: Match, leaveOut: readonly string[] = []): string {
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical);
    if (!isMapping(value)) return value;
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical(value[k])]),
    );
  };
  const { name: _name, ...conditions } = match;
  for (const key of leaveOut) delete conditions[key];
  return JSON.stringify(canonical(conditions));
}

/** Istio's names in these messages: an HTTP rule or match by its quoted name, else "#index". */
function ruleName(rule: Record<string, unknown>, index: number): string {
  return typeof rule["name"] === "string" && rule["name"] !== "" ? JSON.stringify(rule["name"]) : `#${index}`;
}

/** A URI prefix match: its prefix and the key of its other conditions. */
interface PrefixMatch {
  rule: string;
  match: string;
  prefix: string;
  others: string;
}

function prefixOf(match: Match): string | undefined {
  const uri = match["uri"];
  if (!isMapping(uri) || Object.keys(uri).length !== 1 || typeof uri["prefix"] !== "string" || uri["prefix"] === "") return undefined;
  return uri["prefix"];
}

/** Checks one route list ("http", "tcp" or "tls") of a VirtualService spec that passed its schema checks. */
function checkRouteList(c: IssueCollector, rules: unknown, path: string, http: boolean): void {
  if (!Array.isArray(rules) || rules.length > MAX_RULES) return;
  const seen = new Map<string, string>(); // conditions -> the rule that has them
  const prefixes: PrefixMatch[] = [];
  let catchAll: string | undefined;
  rules.forEach((rule, ruleIndex) => {
    if (!isMapping(rule)) return;
    const name = http ? ruleName(rule, ruleIndex) : `#${ruleIndex}`;
    const rulePath = `${path}[${ruleIndex}]`;
    const matches = Array.isArray(rule["match"]) ? rule["match"].filter(isMapping) : [];
    if (matches.length === 0) {
      if (catchAll !== undefined) c.warning(rulePath, `VirtualService rule ${name} not used (only the last rule can have no matches).`, VIRTUAL_SERVICE_UNREACHABLE_RULE.code);
      catchAll = name;
      return;
    }
    if (catchAll !== undefined) {
      c.warning(rulePath, `VirtualService rule ${name} not used (rule ${catchAll}, without matches, is defined before it and takes every request).`, VIRTUAL_SERVICE_UNREACHABLE_RULE.code);
      return;
    }
    let duplicates = 0;
    matches.forEach((match, matchIndex) => {
      const matchName = http ? ruleName(match, matchIndex) : `#${matchIndex}`;
      const key = conditionsKey(match);
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        duplicates++;
        c.warning(`${rulePath}.match[${matchIndex}]`, `VirtualService rule ${name} match ${matchName} is not used (duplicate/overlapping match in rule ${earlier}).`, VIRTUAL_SERVICE_INEFFECTIVE_MATCH.code);
        return;
      }
      seen.set(key, name);
      const prefix = http ? prefixOf(match) : undefined;
      if (prefix === undefined) return;
      const others = conditionsKey(match, ["uri"]);
      const covering = prefixes.find((p) => p.others === others && prefix !== p.prefix && prefix.startsWith(p.prefix));
      if (covering) {
        c.warning(
          `${rulePath}.match[${matchIndex}]`,
          `VirtualService rule ${name} match ${matchName} of prefix ${prefix} is not used (duplicate/overlapping match in rule ${covering.match} of prefix ${covering.prefix} on ${covering.rule}).`,
          VIRTUAL_SERVICE_INEFFECTIVE_MATCH.code,
        );
      }
      prefixes.push({ rule: name, match: matchName, prefix, others });
    });
    if (duplicates === matches.length) c.warning(rulePath, `VirtualService rule ${name} not used (all matches used by prior rules).`, VIRTUAL_SERVICE_UNREACHABLE_RULE.code);
  });
}

/** IST0130 / IST0131 for every route list of a VirtualService spec. */
export function checkUnreachableRules(c: IssueCollector, spec: Record<string, unknown>, path: string): void {
  checkRouteList(c, spec["http"], `${path}.http`, true);
  checkRouteList(c, spec["tcp"], `${path}.tcp`, false);
  checkRouteList(c, spec["tls"], `${path}.tls`, false);
}
