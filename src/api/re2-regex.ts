// Checks a regular expression the way Envoy will see it. Envoy's safe_regex matcher uses
// Google RE2, not JavaScript's engine, so a pattern must be valid RE2: RE2 has no lookahead,
// lookbehind or backreferences (it guarantees linear-time matching), and limits counted
// repetition to 1000. We reject those constructs explicitly, then compile the pattern with
// JavaScript's RegExp (after translating RE2-only syntax such as `(?P<name>` and `(?i)`) to
// catch ordinary syntax errors such as an unclosed bracket. The JavaScript check is run
// without the `u` flag, which is lenient about escapes, so RE2 escapes like `\pL` or `\z`
// are not falsely rejected; a few exotic patterns RE2 rejects may still slip through.

const RE2_MAX_REPEAT = 1000;

/** Returns a description of why `pattern` is not a valid RE2 regex, or undefined if it is. */
export function findRe2Problem(pattern: string): string | undefined {
  const unsupported = findUnsupportedConstruct(pattern);
  if (unsupported) return unsupported;
  const { source, flags } = translateToJavaScript(pattern);
  try {
    new RegExp(source, flags);
  } catch (err) {
    const detail = (err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, "");
    return `is not a valid regular expression: ${detail}`;
  }
  return undefined;
}

function findUnsupportedConstruct(pattern: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === "\\") {
      const next = pattern[i + 1] ?? "";
      if (!inClass && /[1-9]/.test(next)) return `uses the backreference "\\${next}", which RE2 (Envoy's regex engine) does not support`;
      if (!inClass && next === "k" && pattern[i + 2] === "<") return `uses a named backreference "\\k<...>", which RE2 (Envoy's regex engine) does not support`;
      i++;
      continue;
    }
    if (inClass) {
      if (ch === "]") inClass = false;
      continue;
    }
    if (ch === "[") {
      inClass = true;
      // A "]" right after "[" or "[^" is a literal member of the class, not its end.
      if (pattern[i + 1] === "^") i++;
      if (pattern[i + 1] === "]") i++;
      continue;
    }
    if (ch === "(" && pattern[i + 1] === "?") {
      const rest = pattern.slice(i + 2);
      if (rest.startsWith("=") || rest.startsWith("!")) return `uses a lookahead "(?${rest[0]}", which RE2 (Envoy's regex engine) does not support`;
      if (rest.startsWith("<=") || rest.startsWith("<!")) return `uses a lookbehind "(?${rest.slice(0, 2)}", which RE2 (Envoy's regex engine) does not support`;
      if (rest.startsWith(">")) return `uses an atomic group "(?>", which RE2 (Envoy's regex engine) does not support`;
    }
    if (ch === "{") {
      const repeat = /^\{(\d+)(?:,(\d*))?\}/.exec(pattern.slice(i));
      if (repeat && Math.max(Number(repeat[1]), Number(repeat[2] || 0)) > RE2_MAX_REPEAT) {
        return `repeats more than ${RE2_MAX_REPEAT} times ("${repeat[0]}"), which RE2 (Envoy's regex engine) does not allow`;
      }
    }
  }
  return undefined;
}

/** Rewrites RE2-only syntax into its JavaScript equivalent, for a syntax check only. */
function translateToJavaScript(pattern: string): { source: string; flags: string } {
  const flags = new Set<string>();
  let source = pattern.replace(/\(\?P</g, "(?<");
  // A leading flag group such as "(?i)" applies to the whole pattern: turn it into JS flags.
  const leading = /^\(\?([imsU]+)\)/.exec(source);
  if (leading) {
    for (const f of leading[1]!) if (f !== "U") flags.add(f);
    source = source.slice(leading[0].length);
  }
  // Flag groups elsewhere ("(?i)", "(?s:...)", "(?-i:...)") have no exact JS equivalent; for
  // a syntax check they can be dropped or turned into plain non-capturing groups.
  source = source.replace(/\(\?[imsU]*(?:-[imsU]*)?\)/g, "").replace(/\(\?[imsU]*(?:-[imsU]*)?:/g, "(?:");
  return { source, flags: [...flags].join("") };
}
