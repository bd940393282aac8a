// Text and JSON taken from a client, cut to a size that is safe to store, log or echo.
//
// The result is always a fresh string: a slice of a 15 MB string would keep all 15 MB alive
// (V8 sliced strings point into their parent), which is the memory a bound is meant to save.

/** A marker appended to cut text: how long the original was. */
function marker(originalChars: number): string {
  return `… [truncated: ${originalChars} characters in all]`;
}

/**
 * `text` if its UTF-8 encoding fits in `maxBytes`, else its first `maxBytes` bytes (never a
 * broken character) followed by a short marker (under 60 bytes) saying how long it was.
 */
export function truncateText(text: string, maxBytes: number): string {
  // Every UTF-16 unit is 1-3 UTF-8 bytes: short strings need no measuring, long ones are over.
  if (text.length * 3 <= maxBytes) return text;
  if (text.length <= maxBytes && Buffer.byteLength(text, "utf8") <= maxBytes) return text;
  const head = Buffer.from(text.slice(0, maxBytes), "utf8").subarray(0, maxBytes).toString("utf8");
  // A character cut in the middle decodes as U+FFFD: drop it.
  return head.replace(/\uFFFD$/, "") + marker(text.length);
}

/** JSON text of a value, or undefined when it cannot be printed (e.g. nested too deeply). */
function jsonOf(value: unknown): string | undefined {
  try {
    return JSON.stringify(value) ?? "null";
  } catch {
    return undefined;
  }
}

/** Characters of each metadata key kept. */
const MAX_KEY_CHARS = 256;

/**
 * Node metadata (a JSON object from the client) bounded to about `maxBytes` of JSON for
 * display: keys are kept in order while they fit, an oversized string value is truncated, an
 * oversized structured value is replaced by a note, and a final "…" key says how many keys
 * were left out. Small metadata is returned as it is.
 */
export function boundedMetadata(metadata: Record<string, unknown>, maxBytes: number): Record<string, unknown> {
  const entries = Object.entries(metadata);
  const perValue = Math.max(64, Math.floor(maxBytes / 4));
  const out: Record<string, unknown> = {};
  let used = 2;
  let omitted = 0;
  for (const [i, [rawKey, rawValue]] of entries.entries()) {
    if (used + 8 > maxBytes) {
      omitted += entries.length - i; // full: the rest is only counted
      break;
    }
    const key = truncateText(rawKey, MAX_KEY_CHARS);
    let value = rawValue;
    let json = jsonOf(value);
    if (json === undefined || json.length > perValue) {
      value = typeof rawValue === "string" ? truncateText(rawValue, perValue) : json === undefined ? "[not printable as JSON]" : `[${json.length} bytes of JSON, not shown]`;
      json = JSON.stringify(value);
    }
    const size = key.length + json.length + 4;
    if (used + size > maxBytes) {
      omitted++;
      continue;
    }
    out[key] = value;
    used += size;
  }
  if (omitted > 0) out["…"] = `${omitted} more keys not shown (node metadata is shown up to ${maxBytes} bytes)`;
  return out;
}
