// Flag parsing shared by commands: each flag may also come from an environment variable.
import { parseArgs } from "node:util";
import { UsageError } from "./usage-error.js";

export interface FlagSpec {
  type: "string" | "boolean";
  env?: string;
  default?: string | boolean;
  help: string;
  short?: string;
}

/** `args` names positional arguments for the usage line, e.g. "DIR". */
export function helpText(command: string, summary: string, specs: Record<string, FlagSpec>, args?: string): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const flag = `${s.short ? `-${s.short}, ` : "    "}--${name}${s.type === "string" ? " <value>" : ""}`;
    const extra = [s.env ? `env ${s.env}` : "", s.default !== undefined && s.default !== false ? `default ${String(s.default)}` : ""].filter(Boolean).join(", ");
    return `  ${flag.padEnd(30)} ${s.help}${extra ? ` (${extra})` : ""}`;
  });
  return `Usage: weft ${command}${args ? ` ${args}` : ""} [flags]\n\n${summary}\n\nFlags:\n${rows.join("\n")}\n  -h, --help                     show this help\n`;
}

/** Positional arguments are a usage error unless `options.positionals` is true; then they are returned in order. */
export function parseFlags<T extends Record<string, FlagSpec>>(
  argv: string[],
  specs: T,
  options: { positionals?: boolean } = {},
): { help: boolean; values: { [K in keyof T]: T[K]["type"] extends "boolean" ? boolean : string | undefined }; positionals: string[] } {
  const parseOptions: Record<string, { type: "string" | "boolean"; short?: string }> = { help: { type: "boolean", short: "h" } };
  for (const [name, s] of Object.entries(specs)) parseOptions[name] = { type: s.type, ...(s.short ? { short: s.short } : {}) };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: parseOptions, allowPositionals: options.positionals === true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values: Record<string, string | boolean | undefined> = {};
  for (const [name, s] of Object.entries(specs)) {
    const fromFlag = parsed.values[name];
    const fromEnv = s.env ? process.env[s.env] : undefined;
    if (fromFlag !== undefined) values[name] = fromFlag;
    else if (fromEnv !== undefined && fromEnv !== "") values[name] = s.type === "boolean" ? ["1", "true", "yes"].includes(fromEnv.toLowerCase()) : fromEnv;
    else values[name] = s.default;
  }
  return { help: parsed.values.help === true, values: values as never, positionals: parsed.positionals };
}

export function parsePort(name: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--${name} must be a port number 0-65535, got "${value}"`);
  return n;
}
