// Fuzzing the YAML -> validation path (issue 10): random and hostile YAML text, and wrong
// values in every field of every kind, through parseDocuments, validateResource and
// validateMesh. Properties: nothing throws (problems become issues), every issue names its
// file and a field (and a resource, or "(unknown)" with the YAML/document field), memory stays
// bounded. The random part runs for a bounded time: WEFT_FUZZ_MS (default 20 s in all).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { ISTIO_KINDS } from "./kind-registry.js";
import type { Sourced, ValidationIssue } from "./types.js";
import { validateMesh } from "./validate-mesh.js";
import { parseDocuments, validateResource } from "./validate-resource.js";

const FUZZ_MS = Number(process.env.WEFT_FUZZ_MS ?? 20_000);
const FILE = "fuzz.yaml";
/** The RSS a run may add; an alias bomb that expanded, or a runaway parse, would pass it by far. */
const MEMORY_BOUND_BYTES = 768 * 1024 * 1024;

const SAMPLE_DIRS = ["api/testdata/bookinfo", "api/security/testdata/valid", "translate/testdata/in", "translate/security/testdata/in"].map((d) => join(import.meta.dirname, "..", d));

/** Every valid resource of the repository's test data: the shapes mutated below (every kind). */
function samples(): { value: Record<string, unknown>; kind: string }[] {
  const out: { value: Record<string, unknown>; kind: string }[] = [];
  for (const dir of SAMPLE_DIRS) {
    for (const name of readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".yaml")).sort()) {
      const file = join(dir, name);
      for (const { document, value } of parseDocuments(readFileSync(file, "utf8"), file).docs) {
        const { resource } = validateResource(value, { file, document });
        if (resource) out.push({ value: value as Record<string, unknown>, kind: resource.kind });
      }
    }
  }
  return out;
}

const SAMPLES = samples();

/** Values of every wrong type, and hostile ones, to put in place of any field. */
const HOSTILE_VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  2 ** 53 + 1,
  "",
  " ",
  "0",
  "x".repeat(100_000),
  "\u0000\ud800",
  [],
  [null],
  [[[]]],
  {},
  { "": "" },
  JSON.parse('{"__proto__": {"polluted": true}}') as unknown,
  nested(2000),
];

function nested(depth: number): unknown {
  let v: unknown = "bottom";
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
}

/** Every path (list of keys) in a JSON-like value, including the root's children (down to 40 levels). */
function paths(value: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (prefix.length >= 40) return out;
  if (Array.isArray(value)) value.forEach((v, i) => (out.push([...prefix, i]), paths(v, [...prefix, i], out)));
  else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) out.push([...prefix, k]), paths(v, [...prefix, k], out);
  return out;
}

/** A copy of `root` with the value at `path` replaced (only the objects along the path are copied). */
function withValueAt(root: unknown, path: (string | number)[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [key, ...rest] = path as [string | number, ...(string | number)[]];
  const copy = (Array.isArray(root) ? [...root] : { ...(root as Record<string, unknown>) }) as Record<string | number, unknown>;
  copy[key] = withValueAt(copy[key], rest, replacement);
  return copy;
}

/** The properties every issue has: names the file, a document, a resource (or "(unknown)") and a field; a message. */
function checkIssues(issues: ValidationIssue[]): void {
  for (const issue of issues) {
    expect("file" in issue && issue.file).toBe(FILE);
    expect(typeof issue.resource === "string" && issue.resource.length > 0).toBe(true);
    expect(typeof issue.field === "string" && issue.field.length > 0).toBe(true);
    expect(typeof issue.message === "string" && issue.message.length > 0).toBe(true);
    expect(["error", "warning"]).toContain(issue.severity);
    // Bounded: a message quotes what it found, but never a whole huge value.
    expect(issue.message.length).toBeLessThan(1100);
    expect(issue.field.length).toBeLessThan(1100);
    expect(issue.resource.length).toBeLessThan(1100);
  }
}

function validateChecked(value: unknown, document = 1): { resource?: Sourced["resource"]; issues: ValidationIssue[] } {
  const result = validateResource(value, { file: FILE, document });
  checkIssues(result.issues);
  if (!result.resource) expect(result.issues.some((i) => i.severity === "error") || result.issues.length > 0).toBe(true);
  return result;
}

function parseChecked(text: string): void {
  const parsed = parseDocuments(text, FILE);
  checkIssues(parsed.issues);
  for (const issue of parsed.issues) expect(issue.field).toBe("(yaml)");
  for (const { document, value } of parsed.docs) validateChecked(value, document);
}

function rssWatch(): { check: () => void } {
  const start = process.memoryUsage().rss;
  return { check: () => expect(process.memoryUsage().rss - start).toBeLessThan(MEMORY_BOUND_BYTES) };
}

describe("fuzz: YAML and validation", () => {
  it("has samples of every kind to mutate", () => {
    const kinds = new Set(SAMPLES.map((s) => s.kind));
    for (const kind of ISTIO_KINDS.map((d) => d.kind)) expect(kinds, kind).toContain(kind);
  });

  it("a wrong value in every field of every kind becomes issues, never an exception", () => {
    const memory = rssWatch();
    let runs = 0;
    const seenKinds = new Set<string>();
    for (const sample of SAMPLES) {
      if (seenKinds.has(sample.kind) && runs > 4000) continue; // every kind fully; the rest once the budget is used
      seenKinds.add(sample.kind);
      for (const path of paths(sample.value)) {
        for (const value of HOSTILE_VALUES) {
          validateChecked(withValueAt(sample.value, path, value));
          runs++;
        }
      }
    }
    expect(runs).toBeGreaterThan(1000);
    memory.check();
  }, 120_000);

  it("random values in random fields, and random resources, through validateResource and validateMesh", () => {
    const memory = rssWatch();
    const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.constantFrom(...HOSTILE_VALUES));
    const mutated = fc
      .record({ sample: fc.constantFrom(...SAMPLES), edits: fc.array(fc.tuple(fc.nat(), anyValue), { minLength: 1, maxLength: 4 }) })
      .map(({ sample, edits }) => {
        let value: unknown = sample.value;
        for (const [pick, replacement] of edits) {
          const all = paths(value);
          if (all.length === 0) break;
          value = withValueAt(value, all[pick % all.length]!, replacement);
        }
        return value;
      });
    const invented = fc.record({
      apiVersion: fc.oneof(fc.constantFrom("networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3", "security.istio.io/v1", "v1"), fc.string()),
      kind: fc.oneof(fc.constantFrom(...ISTIO_KINDS.map((d) => d.kind)), fc.string()),
      metadata: fc.oneof(fc.record({ name: fc.string(), namespace: fc.string() }, { requiredKeys: [] }), anyValue),
      spec: anyValue,
    });
    fc.assert(
      fc.property(fc.array(fc.oneof(mutated, invented), { minLength: 1, maxLength: 12 }), (values) => {
        const valid: Sourced[] = [];
        values.forEach((value, i) => {
          const { resource } = validateChecked(value, i + 1);
          if (resource) valid.push({ resource, source: { file: FILE, document: i + 1 } });
        });
        const mesh = validateMesh(valid);
        checkIssues(mesh.issues);
        for (const issue of mesh.issues) expect(issue.resource).not.toBe("(unknown)");
      }),
      { interruptAfterTimeLimit: FUZZ_MS / 2, numRuns: Number.MAX_SAFE_INTEGER, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) },
    );
    memory.check();
  }, FUZZ_MS + 60_000);

  it("random and hostile YAML text through parseDocuments", () => {
    const memory = rssWatch();
    const yamlOf = fc.jsonValue({ maxDepth: 5 }).map((v) => stringify(v));
    const samplesAsText = fc.constantFrom(...SAMPLES).map((s) => stringify(s.value));
    // Cut a real file anywhere (a file caught mid-write), or splice random text into it.
    const cut = fc.tuple(samplesAsText, fc.nat()).map(([text, at]) => text.slice(0, at % (text.length + 1)));
    const spliced = fc.tuple(samplesAsText, fc.nat(), fc.string({ unit: "grapheme", maxLength: 40 })).map(([text, at, junk]) => text.slice(0, at % (text.length + 1)) + junk + text.slice(at % (text.length + 1)));
    const yamlish = fc.array(fc.constantFrom("a: ", "- ", "&x ", "*x ", "<<: *x", "!!str ", "!custom ", "? ", "{", "}", "[", "]", ",", "\n", "  ", "---\n", "...\n", "'", '"', "|\n  ", ">-\n  ", "#", "%YAML 1.1\n", "null: ", "~", "0x1F", ".inf", "1e400", "\t"), { maxLength: 60 }).map((parts) => parts.join(""));
    fc.assert(
      fc.property(fc.oneof(yamlOf, cut, spliced, yamlish, fc.string({ unit: "binary", maxLength: 200 })), (text) => parseChecked(text)),
      { interruptAfterTimeLimit: FUZZ_MS / 2, numRuns: Number.MAX_SAFE_INTEGER, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) },
    );
    memory.check();
  }, FUZZ_MS + 60_000);

  it("alias bombs, deep nesting, huge scalars and huge mappings are refused or read within bounds", () => {
    const memory = rssWatch();
    // Billion laughs: 10 levels of 10 aliases each (10^10 nodes if expanded).
    let laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (let i = 1; i < 10; i++) laughs += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(", ")}]\n`;
    parseChecked(laughs);
    expect(parseDocuments(laughs, FILE).issues.map((i) => i.message)).toEqual(["cannot read this document: Excessive alias count indicates a resource exhaustion attack; it is skipped"]);
    // Merge-key bomb.
    parseChecked("a: &a {x: 1}\n" + Array.from({ length: 40 }, (_, i) => `b${i}: &b${i} {<<: [${i ? `*b${i - 1}, *b${i - 1}` : "*a"}]}`).join("\n"));
    // Deep nesting, flow and block.
    parseChecked("a: " + "[".repeat(5_000) + "]".repeat(5_000));
    parseChecked(Array.from({ length: 2000 }, (_, i) => " ".repeat(i) + "a:").join("\n"));
    // A huge scalar in a resource's name.
    parseChecked(`apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${"x".repeat(2_000_000)}}\nspec: {hosts: [a]}\n`);
    // A mapping of 60,000 keys that the full reader must read (it has an alias): linear, not quadratic.
    parseChecked("x: &x 1\ny: *x\nspec:\n" + Array.from({ length: 60_000 }, (_, i) => `  k${i}: ${i}`).join("\n"));
    // ... and with a repeated key at the end, still reported.
    const repeated = "x: &x 1\nspec:\n" + Array.from({ length: 50_000 }, (_, i) => `  k${i}: ${i}`).join("\n") + "\n  k7: again\n";
    expect(parseDocuments(repeated, FILE).issues.map((i) => i.message)).toEqual(["YAML syntax error at line 50003, column 3: Map keys must be unique; this document is skipped"]);
    memory.check();
  }, 60_000);
});
