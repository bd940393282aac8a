import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { parse } from "yaml";
import { runValidate } from "./validate.js";
import { captureOutput, type CapturedOutput } from "./captured-output.js";

const TESTDATA = join(import.meta.dirname, "..", "api", "testdata");

let output: CapturedOutput;
let dir: string;

beforeEach(() => {
  output = captureOutput();
  dir = mkdtempSync(join(tmpdir(), "weft-validate-"));
});

afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

describe("weft validate", () => {
  it("exits 0 and prints the summary for a valid directory", async () => {
    expect(await runValidate([join(TESTDATA, "bookinfo")])).toBe(0);
    expect(output.stdout).toBe("12 resources valid, 0 errors, 0 warnings\n");
  });

  it("exits 1 and prints each issue as file: document N: resource: field: message", async () => {
    cpSync(join(TESTDATA, "invalid", "mixed.yaml"), join(dir, "mixed.yaml"));
    cpSync(join(TESTDATA, "invalid", "bad-gateway.yaml"), join(dir, "gateway.yaml"));
    expect(await runValidate([dir])).toBe(1);
    const mixed = join(dir, "mixed.yaml");
    const gateway = join(dir, "gateway.yaml");
    expect(output.stdout.split("\n")).toEqual([
      `${gateway}: document 1: Gateway/default/edge: spec.servers[0].tls: required field is missing: an HTTPS server needs tls settings (mode and certificate)`,
      `${gateway}: document 1: Gateway/default/edge: spec.servers[1].hosts: required field is missing: expected a list of hosts such as "bookinfo.example.com" or "*"`,
      `${mixed}: document 2: (unknown): (yaml): YAML syntax error at line 22, column 3: Flow sequence in block collection must be sufficiently indented and end with a ]; this document is skipped`,
      `${mixed}: document 3: DestinationRule/default/httpbin: spec.subsets[1].name: duplicate subset name "v1", already used at spec.subsets[0]; subset names must be unique`,
      "2 resources valid, 4 errors, 0 warnings",
      "",
    ]);
  });

  it("exits 0 when there are only warnings", async () => {
    writeFileSync(join(dir, "widget.yaml"), "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: web\n");
    expect(await runValidate([dir, "-o", "table"])).toBe(0);
    expect(output.stdout.trim().split("\n").at(-1)).toBe("0 resources valid, 0 errors, 1 warning");
  });

  it("prints json and yaml reports", async () => {
    cpSync(join(TESTDATA, "invalid", "bad-gateway.yaml"), join(dir, "gateway.yaml"));
    expect(await runValidate(["--output", "json", dir])).toBe(1);
    const report = JSON.parse(output.stdout) as { resources: unknown[]; issues: { field: string }[]; summary: unknown };
    expect(report.summary).toEqual({ valid: 0, errors: 2, warnings: 0 });
    expect(report.issues.map((i) => i.field)).toEqual(["spec.servers[0].tls", "spec.servers[1].hosts"]);

    output.reset();
    expect(await runValidate([join(TESTDATA, "bookinfo"), "-o", "yaml"])).toBe(0);
    const yamlReport = parse(output.stdout) as { resources: { resource: string }[]; summary: unknown };
    expect(yamlReport.summary).toEqual({ valid: 12, errors: 0, warnings: 0 });
    expect(yamlReport.resources[0]).toEqual({ resource: "Gateway/default/bookinfo-gateway", file: join(TESTDATA, "bookinfo", "gateway.yaml"), document: 1 });
  });

  it.each([
    [[], "missing DIR: the directory of YAML files to validate"],
    [["a", "b"], "expected one DIR, got 2: a b"],
    [["--output", "xml", "."], '--output must be table, json or yaml, got "xml"'],
    [["--verbose", "."], "Unknown option '--verbose'"],
    [["/nonexistent/weft/config"], 'DIR "/nonexistent/weft/config" does not exist'],
  ])("exits 2 on a usage error: %j", async (argv, message) => {
    expect(await runValidate(argv)).toBe(2);
    expect(output.stdout).toBe("");
    expect(output.stderr).toContain(`weft validate: ${message}`);
  });

  it("exits 2 when DIR is a file", async () => {
    const file = join(dir, "file.yaml");
    writeFileSync(file, "");
    expect(await runValidate([file])).toBe(2);
    expect(output.stderr).toContain(`DIR "${file}" is not a directory`);
  });

  it("prints help with exit 0", async () => {
    expect(await runValidate(["--help"])).toBe(0);
    expect(output.stdout).toContain("Usage: weft validate DIR [flags]");
    expect(output.stdout).toContain("-o, --output <value>");
  });
});
