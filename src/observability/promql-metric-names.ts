// The metric names a PromQL query (as dashboards write them, with Grafana's $variables) reads:
// what must exist in a scrape for the query to show anything. Enough of PromQL for that — label
// matchers, range selectors, strings, grouping clauses and function calls are not metric names.

const KEYWORDS = new Set([
  "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
  "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
  "inf", "nan",
]);

/** Metric names in `query`, sorted and without repeats. */
export function promqlMetricNames(query: string): string[] {
  let q = query
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings
    .replace(/\{[^}]*\}/g, " ") // label matchers
    .replace(/\[[^\]]*\]/g, " ") // range and subquery selectors
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " "); // label lists
  // Grafana's label_values(metric, label): the second argument is a label.
  q = q.replace(/\blabel_values\s*\(([^,()]*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)/g, "($1)");
  const names = new Set<string>();
  for (const m of q.matchAll(/(?<![\w$.])([A-Za-z_:][A-Za-z0-9_:]*)(?![A-Za-z0-9_:]|\s*\()/g)) {
    const name = m[1]!;
    if (!KEYWORDS.has(name.toLowerCase())) names.add(name);
  }
  return [...names].sort();
}
