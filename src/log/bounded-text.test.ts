import { describe, expect, it } from "vitest";
import { boundedMetadata, truncateText } from "./bounded-text.js";

describe("truncateText", () => {
  it("keeps text that fits, cuts longer text to the byte bound with a marker saying how long it was", () => {
    expect(truncateText("short", 16)).toBe("short");
    const long = "x".repeat(10_000);
    const cut = truncateText(long, 100);
    expect(cut.startsWith("x".repeat(100))).toBe(true);
    expect(cut).toContain("10000 characters");
    expect(Buffer.byteLength(cut)).toBeLessThan(100 + 60);
  });

  it("never cuts a character in half", () => {
    const text = "é".repeat(100); // 2 bytes each
    const cut = truncateText(text, 51);
    expect(cut.startsWith("é".repeat(25) + "…")).toBe(true);
    expect(cut).not.toContain("\uFFFD");
  });

  it("measures bytes, not characters: 60 three-byte characters do not fit in 100 bytes", () => {
    const text = "€".repeat(60);
    expect(truncateText(text, 180)).toBe(text);
    expect(truncateText(text, 100).startsWith("€".repeat(33) + "…")).toBe(true);
  });
});

describe("boundedMetadata", () => {
  it("returns small metadata unchanged", () => {
    const m = { NAMESPACE: "default", LABELS: { app: "reviews" } };
    expect(boundedMetadata(m, 16 * 1024)).toEqual(m);
  });

  it("bounds many keys, huge values and huge keys, and says what was left out", () => {
    const m: Record<string, unknown> = { big: "v".repeat(1_000_000), nested: { deep: "d".repeat(100_000) }, ["k".repeat(100_000)]: 1 };
    for (let i = 0; i < 10_000; i++) m[`key-${i}`] = `value-${i}`;
    const out = boundedMetadata(m, 4096);
    const json = JSON.stringify(out);
    expect(json.length).toBeLessThan(4096 + 400);
    expect(String(out.big)).toContain("1000000 characters");
    expect(out.nested).toMatch(/bytes of JSON, not shown/);
    expect(String(out["…"])).toMatch(/more keys not shown/);
  });
});
