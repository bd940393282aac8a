// weft analyze [FILE|DIR ...] [-k]: istioctl analyze's habits over Weft's own checks. Reads
// files and directories (and, with --kubernetes, a cluster; files then replace the cluster's
// resources of the same kind/namespace/name, as if applied), then prints every problem as an
// analysis message with Istio's code: validation's own (IST0101, ...), IST0106 / IST0133 for
// other validation errors / warnings, and the analyzers' (src/model/mesh-analysis.ts).
//
// Exit codes as istioctl's: 0 nothing at or above --failure-threshold; 79 something is (only
// with the default log output, as istioctl); 65 a file could not be parsed (and nothing
// reached the threshold); 64 a usage error; 1 anything else (a cluster that cannot be read).
import { existsSync } from "node:fs";
import { stringify } from "yaml";
import { ANALYSIS_LEVELS, ANALYSIS_MESSAGE_TYPES, isAtLeast, messageTypeOf, type AnalysisLevel } from "../api/analysis-messages.js";
import { isFileRef, type MeshConfig, type ValidationIssue } from "../api/types.js";
import { silentLogger } from "../log/logger.js";
import { analyzeMesh } from "../model/mesh-analysis.js";
import { ConfigAggregator } from "../sources/config-aggregator.js";
import type { ConfigSource } from "../sources/config-source.js";
import { FileSource } from "../sources/file/file-source.js";
import { ShadowedSource } from "../sources/shadowed-source.js";
import { helpText, parseFlags, type FlagSpec } from "./flags.js";
import { UsageError } from "./usage-error.js";

export const EXIT_ANALYZER_FOUND_ISSUES = 79;
export const EXIT_DATA_ERROR = 65;
export const EXIT_INCORRECT_USAGE = 64;

const FLAGS = {
  output: { type: "string", short: "o", default: "log", help: "output format: log, json, yaml" },
  "failure-threshold": { type: "string", default: "Error", help: "the level of message at which to exit 79: Info, Warning, Error" },
  "output-threshold": { type: "string", default: "Info", help: "the lowest level of message printed: Info, Warning, Error" },
  suppress: { type: "string", short: "S", help: 'leave out a code on a resource: "IST0101=VirtualService reviews.default" (* matches any text, e.g. "IST0101=VirtualService *.default"); repeatable' },
  kubernetes: { type: "boolean", short: "k", help: "also read the cluster (Services, EndpointSlices, Pods and Istio resources); files given replace its resources of the same kind/namespace/name" },
  kubeconfig: { type: "string", help: "with --kubernetes: kubeconfig file (default: in-cluster service account, else $KUBECONFIG, else ~/.kube/config)" },
  "cluster-domain": { type: "string", default: "cluster.local", help: "with --kubernetes: the cluster's DNS domain" },
  timeout: { type: "string", default: "30s", help: "with --kubernetes: how long to wait for the cluster's resources to be listed" },
  "ignore-unknown": { type: "boolean", help: "do not exit 65 for files that could not be parsed" },
  "list-analyzers": { type: "boolean", short: "L", help: "list the message codes Weft reports and exit" },
} satisfies Record<string, FlagSpec>;

const OUTPUT_FORMATS = ["log", "json", "yaml"];

const SUMMARY =
  "Checks Istio configuration as istioctl analyze does: every *.yaml / *.yml file under each DIR\n" +
  "(recursively) and each FILE, with or without a live cluster (--kubernetes). Prints one message per\n" +
  "problem with Istio's analysis code and level (Error, Warning, Info).\n" +
  `Exits 0 when no message is at or above --failure-threshold, ${EXIT_ANALYZER_FOUND_ISSUES} when one is (log output only, as\n` +
  `istioctl), ${EXIT_DATA_ERROR} when a file could not be parsed, ${EXIT_INCORRECT_USAGE} on a usage error, 1 when the cluster cannot be read.`;

/** One message as istioctl prints it in JSON/YAML (code, level, origin, reference, message, documentationUrl) plus the field. */
export interface AnalysisMessage {
  code: string;
  level: AnalysisLevel;
  origin: string;
  reference?: string;
  field: string;
  message: string;
  documentationUrl: string;
}

interface Suppression {
  code: string;
  resource: RegExp;
}

export async function runAnalyze(argv: string[]): Promise<number> {
  try {
    return await analyze(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`weft analyze: ${err.message}\nRun 'weft analyze --help' for usage.\n`);
    return EXIT_INCORRECT_USAGE;
  }
}

async function analyze(argv: string[]): Promise<number> {
  const { rest, suppressions: suppressArgs } = takeRepeated(argv, "--suppress", "-S");
  const { help, values, positionals } = parseFlags(rest, FLAGS, { positionals: true });
  if (help) {
    process.stdout.write(helpText("analyze", SUMMARY, FLAGS, "[FILE|DIR ...]"));
    return 0;
  }
  if (values["list-analyzers"]) {
    process.stdout.write(ANALYSIS_MESSAGE_TYPES.map((t) => `${t.code} ${t.name} (${t.level}): ${t.description}`).join("\n") + "\n");
    return 0;
  }
  const output = (values.output ?? "log").toLowerCase();
  if (!OUTPUT_FORMATS.includes(output)) throw new UsageError(`--output must be log, json or yaml, got "${values.output}"`);
  const failureThreshold = level("failure-threshold", values["failure-threshold"]);
  const outputThreshold = level("output-threshold", values["output-threshold"]);
  const suppressions = suppressArgs.map(parseSuppression);
  if (positionals.length === 0 && !values.kubernetes) throw new UsageError("nothing to analyze: give files or directories, or --kubernetes for a cluster");
  if (values.kubeconfig && !values.kubernetes) throw new UsageError("--kubeconfig needs --kubernetes");

  for (const path of positionals) {
    if (!existsSync(path)) throw new Error(`${path} does not exist`);
  }
  const config = await readConfig(positionals, values);
  const issues = [...config.issues, ...analyzeMesh(config)];
  const parseErrors = issues.filter(isParseError);
  for (const p of parseErrors) process.stderr.write(`Error adding ${isFileRef(p) ? p.file : "a resource"}: ${p.message}\n`);
  const all = issues.filter((i) => !isParseError(i)).map(toMessage).filter((m) => !suppressions.some((s) => s.code === m.code && s.resource.test(m.origin)));
  const shown = all.filter((m) => isAtLeast(m.level, outputThreshold));

  if (output === "log") {
    if (shown.length > 0) process.stdout.write(shown.map(logLine).join("\n") + "\n");
    else if (parseErrors.length === 0) process.stderr.write(`\u2714 No validation issues found when analyzing ${target(positionals, values.kubernetes)}.\n`);
    else process.stderr.write(`No validation issues found when analyzing ${target(positionals, values.kubernetes)} (but ${parseErrors.length} ${parseErrors.length === 1 ? "file" : "files"} could not be parsed).\n`);
    if (all.some((m) => isAtLeast(m.level, failureThreshold))) {
      process.stderr.write(`Analyzers found issues when analyzing ${target(positionals, values.kubernetes)}.\nSee https://istio.io/latest/docs/reference/config/analysis for more information about causes and resolutions.\n`);
      return EXIT_ANALYZER_FOUND_ISSUES;
    }
    return parseErrors.length > 0 && !values["ignore-unknown"] ? EXIT_DATA_ERROR : 0;
  }
  process.stdout.write(output === "json" ? JSON.stringify(shown, null, 2) + "\n" : shown.length ? stringify(shown) : "[]\n");
  return 0;
}

/** Takes every `--flag VALUE`, `--flag=VALUE`, `-S VALUE` out of argv (parseArgs keeps only the last of a repeated flag). */
function takeRepeated(argv: string[], long: string, short: string): { rest: string[]; suppressions: string[] } {
  const rest: string[] = [];
  const suppressions: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === long || arg === short) {
      const value = argv[i + 1];
      if (value === undefined) throw new UsageError(`${arg} needs a value such as "IST0101=VirtualService reviews.default"`);
      suppressions.push(value);
      i++;
    } else if (arg.startsWith(`${long}=`)) suppressions.push(arg.slice(long.length + 1));
    else rest.push(arg);
  }
  return { rest, suppressions };
}

function level(flag: string, value: string | undefined): AnalysisLevel {
  const found = ANALYSIS_LEVELS.find((l) => l.toLowerCase() === (value ?? "").toLowerCase());
  if (!found) throw new UsageError(`--${flag} must be one of ${ANALYSIS_LEVELS.join(", ")}, got "${value}"`);
  return found;
}

/** "CODE=Kind name.namespace", "*" matching any text (istioctl's --suppress). */
function parseSuppression(value: string): Suppression {
  const parts = value.split("=");
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new UsageError(`--suppress "${value}" is not CODE=RESOURCE, e.g. "IST0101=VirtualService reviews.default"`);
  const code = parts[0];
  if (!ANALYSIS_MESSAGE_TYPES.some((t) => t.code === code)) process.stderr.write(`Warning: Supplied message code '${code}' is an unknown message code and will not have any effect.\n`);
  const pattern = parts[1].split("*").map((piece) => piece.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return { code, resource: new RegExp(`^${pattern}$`) };
}

async function readConfig(paths: string[], values: { kubernetes: boolean; kubeconfig: string | undefined; "cluster-domain": string | undefined; timeout: string | undefined }): Promise<MeshConfig> {
  const files: FileSource[] = paths.map((p) => new FileSource(p));
  if (!values.kubernetes) return new ConfigAggregator(files).load();
  const timeoutMs = durationMs(values.timeout ?? "30s");
  const { KubernetesSource, loadKubeConfig } = await import("../sources/kubernetes/kubernetes-source.js");
  let loaded: ReturnType<typeof loadKubeConfig>;
  try {
    loaded = loadKubeConfig(values.kubeconfig);
  } catch (err) {
    throw new UsageError(`--kubernetes: cannot load the cluster configuration${values.kubeconfig ? ` from ${values.kubeconfig}` : ""}: ${(err as Error).message}`);
  }
  if (!loaded.kubeConfig.getCurrentCluster()?.server) throw new UsageError(`--kubernetes: ${loaded.from} names no current cluster; pass --kubeconfig or set KUBECONFIG`);
  const cluster = new KubernetesSource({ kubeConfig: loaded.kubeConfig, configFrom: loaded.from, clusterDomain: values["cluster-domain"] ?? "cluster.local", logger: silentLogger() });
  const fileKeys = () => new Set(files.flatMap((f) => f.snapshot().entries.map((e) => e.key)));
  const sources: ConfigSource[] = [...files, new ShadowedSource(cluster, fileKeys)];
  const aggregator = new ConfigAggregator(sources);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      aggregator.start(() => {}),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the cluster's resources were not all listed within ${values.timeout ?? "30s"} (${cluster.name}); is the API server reachable?`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await aggregator.close();
  }
}

function durationMs(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(value);
  if (!m) throw new UsageError(`--timeout must be a duration such as "30s" or "2m", got "${value}"`);
  return Number(m[1]) * (m[2] === "ms" ? 1 : m[2] === "s" ? 1000 : 60_000);
}

/** A file or document that could not be read or parsed as YAML: istioctl's "files couldn't be parsed" (exit 65). */
function isParseError(i: ValidationIssue): boolean {
  return i.severity === "error" && i.resource === "(unknown)" && (i.field === "(yaml)" || i.field === "(file)");
}

/** "Kind name.namespace", istioctl's name for a resource in messages and --suppress. */
function friendlyName(i: ValidationIssue): string {
  const [kind, namespace, ...name] = i.resource.split("/");
  if (i.resource === "(unknown)" || name.length === 0) return i.resource;
  return `${kind} ${name.join("/")}.${namespace}`;
}

function toMessage(i: ValidationIssue): AnalysisMessage {
  const type = messageTypeOf(i);
  const reference = isFileRef(i) ? (i.document > 0 ? `${i.file} document ${i.document}` : i.file) : i.resourceVersion ? `resourceVersion ${i.resourceVersion}` : undefined;
  return {
    code: type.code,
    level: type.level,
    origin: friendlyName(i),
    ...(reference ? { reference } : {}),
    field: i.field,
    message: i.message,
    documentationUrl: `https://istio.io/latest/docs/reference/config/analysis/${type.code.toLowerCase()}/?ref=weft-analyze`,
  };
}

/** `Error [IST0101] (VirtualService reviews.default routes.yaml document 2) spec.http[0]...: message`. */
function logLine(m: AnalysisMessage): string {
  return `${m.level} [${m.code}] (${m.origin}${m.reference ? ` ${m.reference}` : ""}) ${m.field}: ${m.message}`;
}

function target(paths: string[], kubernetes: boolean): string {
  return [...(kubernetes ? ["the cluster"] : []), ...paths].join(", ");
}

