// Freezes translator output in tests (DESIGN.md rule 8): encodings and memos are keyed by the
// objects translators return, which is correct only while nobody modifies them afterwards. A
// frozen object makes a late modification throw (modules run in strict mode) instead of
// silently changing a resource whose bytes were already encoded and shared.

/** Freezes `value` and everything reachable from it (byte arrays excepted: they cannot be frozen). */
export function deepFreeze<T>(value: T): T {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const v = pending.pop();
    if (v === null || typeof v !== "object" || Object.isFrozen(v) || ArrayBuffer.isView(v)) continue;
    Object.freeze(v);
    if (v instanceof Map) for (const [k, x] of v) pending.push(k, x);
    else if (v instanceof Set) for (const x of v) pending.push(x);
    for (const key of Reflect.ownKeys(v)) pending.push((v as Record<PropertyKey, unknown>)[key]);
  }
  return value;
}
