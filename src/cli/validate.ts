// weft validate DIR: reads a directory of Istio YAML the way `weft serve` would, and reports
// every problem. Exit codes: 0 no errors (warnings allowed), 1 errors found, 2 usage error.
import { statSync } from "node:fs";
import { stringify } from "yaml";
import { formatIssue, isFileRef, resourceKey, type MeshConfig, type SourceRef, type ValidationIssue } from "../api/types.js";
import { ConfigAggregator } from "../sources/config-aggregator.js";
import { FileSource } from "../sources/file/file-source.js";
import { helpText, parseFlags, type FlagSpec } from "./flags.js";
import { UsageError } from "./usage-error.js";

const FLAGS = {
  output: { type: "string", short: "o", default: "table", help: "output format: table, json, yaml" },
} satisfies Record<string, FlagSpec>;

const OUTPUT_FORMATS = ["table", "json", "yaml"];

const SUMMARY =
  "Validates every *.yaml / *.yml file under DIR (recursively) as Istio networking resources:\n" +
  "schema, field values, and cross-resource references (hosts, subsets, gateways).\n" +
  "Exits 0 when there are no errors, 1 when there are, 2 on a usage error.";

export async function runValidate(argv: string[]): Promise<number> {
  try {
    return validate(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`weft validate: ${err.message}\nRun 'weft validate --help' for usage.\n`);
    return 2;
  }
}

function validate(argv: string[]): number {
  const { help, values, positionals } = parseFlags(argv, FLAGS, { positionals: true });
  if (help) {
    process.stdout.write(helpText("validate", SUMMARY, FLAGS, "DIR"));
    return 0;
  }
  const output = values.output ?? "table";
  if (!OUTPUT_FORMATS.includes(output)) throw new UsageError(`--output must be table, json or yaml, got "${output}"`);
  if (positionals.length === 0) throw new UsageError("missing DIR: the directory of YAML files to validate");
  if (positionals.length > 1) throw new UsageError(`expected one DIR, got ${positionals.length}: ${positionals.join(" ")}`);
  const dir = positionals[0]!;
  checkDirectory(dir);

  const config = new ConfigAggregator([new FileSource(dir)]).load();
  const errors = config.issues.filter((i) => i.severity === "error").length;
  const warnings = config.issues.length - errors;
  if (output === "table") process.stdout.write(renderTable(config, errors, warnings));
  else {
    const report = toReport(config, errors, warnings);
    process.stdout.write(output === "json" ? JSON.stringify(report, null, 2) + "\n" : stringify(report));
  }
  return errors > 0 ? 1 : 0;
}

function checkDirectory(dir: string): void {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch {
    throw new UsageError(`DIR "${dir}" does not exist`);
  }
  if (!isDirectory) throw new UsageError(`DIR "${dir}" is not a directory`);
}

function renderTable(config: MeshConfig, errors: number, warnings: number): string {
  const lines = config.issues.map((i) => formatIssue(i) + (i.severity === "warning" ? " (warning)" : ""));
  lines.push(summaryLine(config.resources.length, errors, warnings));
  return lines.join("\n") + "\n";
}

/** "3 resources valid, 2 errors, 1 warning". */
export function summaryLine(valid: number, errors: number, warnings: number): string {
  const count = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  return `${count(valid, "resource")} valid, ${count(errors, "error")}, ${count(warnings, "warning")}`;
}

interface Report {
  resources: ({ resource: string } & ({ file: string; document: number } | { source: SourceRef }))[];
  issues: ValidationIssue[];
  summary: { valid: number; errors: number; warnings: number };
}

function toReport(config: MeshConfig, errors: number, warnings: number): Report {
  return {
    resources: config.resources.map((s) => ({ resource: resourceKey(s.resource), ...(isFileRef(s.source) ? { file: s.source.file, document: s.source.document } : { source: s.source }) })),
    issues: config.issues,
    summary: { valid: config.resources.length, errors, warnings },
  };
}
