// Istio durations as written in YAML: Go's time.ParseDuration syntax ("1s", "250ms", "1.5s",
// "2m", "1h30m"), which is what Istio's CRD schema accepts for google.protobuf.Duration fields.

const MILLISECONDS_PER_UNIT: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3, // U+00B5 micro sign
  "μs": 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Parses an Istio duration and returns it in milliseconds (possibly fractional, possibly
 * negative), or undefined when the text is not a duration. "0" alone is a valid zero duration.
 */
export function parseDurationMs(text: string): number | undefined {
  let rest = text;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    sign = rest.startsWith("-") ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") return undefined;
  let total = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < rest.length) {
    const start = DURATION_PART.lastIndex;
    const part = DURATION_PART.exec(rest);
    if (!part || part.index !== start) return undefined;
    total += Number(part[1]) * MILLISECONDS_PER_UNIT[part[2]!]!;
  }
  return sign * total;
}
