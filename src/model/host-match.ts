// Host names and host patterns as Istio compares them: "*" matches every host, "*.example.com"
// every host ending in ".example.com" (not "example.com" itself), "*foo.com" every host ending
// in "foo.com", anything else only itself.

/**
 * Whether `pattern` (exact, "*" + suffix, or "*") matches the concrete or wildcard host `host`
 * (`host` is no broader than it). As Istio, a wildcard stands for any text, so "*.example.com"
 * matches "a.example.com" but not "example.com", and "*foo.example.com" matches "foo.example.com".
 */
export function hostPatternMatches(pattern: string, host: string): boolean {
  if (pattern === "*") return true;
  if (pattern.startsWith("*")) {
    const suffix = pattern.slice(1);
    if (host.startsWith("*")) return host !== "*" && host.slice(1).endsWith(suffix);
    return host.endsWith(suffix);
  }
  return pattern === host;
}

/** Whether two hosts or patterns have a host in common (Istio's `host.Name.Matches`, both ways). */
export function hostsOverlap(a: string, b: string): boolean {
  return hostPatternMatches(a, b) || hostPatternMatches(b, a);
}

/**
 * How specific a pattern is, for "the most specific match wins": an exact host beats every
 * wildcard, a longer "*.suffix" beats a shorter one, "*" loses to all.
 */
export function hostSpecificity(pattern: string): number {
  if (pattern === "*") return 0;
  if (pattern.startsWith("*")) return pattern.length;
  return Number.MAX_SAFE_INTEGER;
}
