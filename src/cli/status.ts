// weft status: what every connected proxy was sent, ACKed and NACKed, from the admin server.
import { stringify } from "yaml";
import type { NackRecord, ProxyStatus } from "../xds/proxy-registry.js";
import { helpText, parseFlags, type FlagSpec } from "./flags.js";
import type { ConfigProblemsReport } from "../runner/config-problems.js";
import { UsageError } from "./usage-error.js";

const FLAGS = {
  admin: { type: "string", env: "WEFT_ADMIN_URL", default: "http://127.0.0.1:15014", help: "admin URL of the control plane" },
  node: { type: "string", help: "only this node id" },
  output: { type: "string", short: "o", default: "table", help: "output format: table, json, yaml" },
} satisfies Record<string, FlagSpec>;

interface Syncz {
  proxies: ProxyStatus[];
  recentNacks: NackRecord[];
}

export async function runStatus(argv: string[]): Promise<number> {
  const { help, values } = parseFlags(argv, FLAGS);
  if (help) {
    process.stdout.write(helpText("status", "Shows connected proxies, per xDS type: sent and ACKed versions, NACKs with Envoy's error, and the config's validation problems. Exit 1 when a proxy's current config is NACKed or the config has errors.", FLAGS));
    return 0;
  }
  const output = values.output ?? "table";
  if (!["table", "json", "yaml"].includes(output)) throw new UsageError(`--output must be table, json or yaml, got "${output}"`);
  const url = new URL("/debug/syncz", values.admin);
  if (values.node) url.searchParams.set("node", values.node);
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new Error(`cannot reach the control plane's admin server at ${values.admin}: ${(err as Error).cause ?? (err as Error).message}`);
  }
  if (!res.ok) throw new Error(`admin server answered ${res.status} for ${url}`);
  const syncz = (await res.json()) as Syncz;
  const problemsRes = await fetch(new URL("/debug/config-problems", values.admin));
  const configProblems = problemsRes.ok ? ((await problemsRes.json()) as ConfigProblemsReport) : undefined;
  const data = { ...syncz, ...(configProblems ? { configProblems } : {}) };
  if (output === "json") process.stdout.write(JSON.stringify(data, null, 2) + "\n");
  else if (output === "yaml") process.stdout.write(stringify(data));
  else process.stdout.write(renderTable(syncz) + (configProblems ? renderProblems(configProblems) : ""));
  const nacked = syncz.proxies.some((p) => Object.values(p.types).some((t) => t.lastNack && t.lastNack.version === t.sentVersion));
  return nacked || (configProblems?.errors ?? 0) > 0 ? 1 : 0;
}

function renderProblems(r: ConfigProblemsReport): string {
  if (r.errors === 0 && r.warnings === 0) return "\nconfig: no problems\n";
  const lines = r.problems.map((p) => `  ${p.severity.toUpperCase().padEnd(7)} ${p.text}`);
  return [
    "",
    `config: ${r.errors} error(s), ${r.warnings} warning(s)${r.errors ? "; a resource with errors keeps its last valid version" : ""} (applied ${r.appliedAt ?? "-"})`,
    ...lines,
    ...(r.omitted ? [`  ... and ${r.omitted} more`] : []),
  ].join("\n") + "\n";
}

function renderTable(data: Syncz): string {
  const header = ["NODE", "API", "TYPE", "SENT", "ACKED", "STATE", "LAST NACK"];
  const rows: string[][] = [];
  for (const p of data.proxies) {
    for (const [type, t] of Object.entries(p.types)) {
      const state = t.pending ? "PENDING" : t.lastNack && t.lastNack.version === t.sentVersion ? "NACKED" : t.ackedVersion === t.sentVersion ? "SYNCED" : "STALE";
      rows.push([p.nodeId, `${p.api}/${p.service}`, type, t.sentVersion ?? "-", t.ackedVersion ?? "-", state, t.lastNack ? t.lastNack.message.slice(0, 80) : ""]);
    }
  }
  if (rows.length === 0) return "no proxies connected\n";
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [fmt(header), ...rows.map(fmt)].join("\n") + "\n";
}
