// weft ca status | rotate-root: the CA's roots and its root rotation, through the admin API.
// Exit codes: 0 done (rotation started, or status read), 1 failure (unreachable, error),
// 2 usage, 3 not done: a rotation is already in progress, or this replica is not the leader and
// has no shared root store to pass the request on (file mode; the message names the leader).
import { stringify } from "yaml";
import { helpText, parseFlags, type FlagSpec } from "./flags.js";
import { UsageError } from "./usage-error.js";

const FLAGS = {
  admin: { type: "string", env: "WEFT_ADMIN_URL", default: "http://127.0.0.1:15014", help: "admin URL of any replica (a follower passes rotate-root on to the leader through the root Secret)" },
  output: { type: "string", short: "o", default: "table", help: "output format: table, json, yaml" },
} satisfies Record<string, FlagSpec>;

interface CaStatus {
  phase?: string;
  roots?: { serial: string; subject: string; notBefore: string; notAfter: string }[];
  leader?: string | null;
  isLeader?: boolean;
  rotationDueAt?: string;
  phaseSince?: string;
  rotateBefore?: string;
  phaseSeconds?: number;
  started?: boolean;
  /** A follower passed the request on to the leader. */
  requested?: boolean;
  error?: string;
}

const SUMMARY = `Shows the CA's roots and root rotation, or starts a rotation.

Commands:
  status        trusted roots (signing first), rotation phase, when the next rotation is due, the leader
  rotate-root   start a root rotation now (trusting -> signing -> old root dropped, driven by the leader;
                asked of a follower in Kubernetes mode, it is passed on through the root Secret)

Exit codes: 0 done (or requested), 1 failure, 2 usage, 3 not done (already rotating, or not the leader without a shared root store)`;

async function call(admin: string, method: "GET" | "POST", pathname: string): Promise<{ status: number; body: CaStatus }> {
  const url = new URL(pathname, admin);
  let res: Response;
  try {
    res = await fetch(url, { method, signal: AbortSignal.timeout(60_000) });
  } catch (err) {
    throw new Error(`cannot reach the control plane's admin server at ${admin}: ${String((err as Error).cause ?? (err as Error).message)}`);
  }
  const text = await res.text();
  let body: CaStatus;
  try {
    body = JSON.parse(text) as CaStatus;
  } catch {
    throw new Error(`admin server answered ${res.status} for ${url} with something that is not JSON: ${text.slice(0, 200)}`);
  }
  return { status: res.status, body };
}

function renderTable(s: CaStatus, headline: string): string {
  const lines = [headline, `phase: ${s.phase}   leader: ${s.leader ?? "unknown"}${s.isLeader ? " (this replica)" : ""}`, `next automatic rotation: ${s.rotationDueAt} (${s.rotateBefore}; phases of ${s.phaseSeconds}s)`];
  if (s.phaseSince) lines.push(`current phase since: ${s.phaseSince}`);
  lines.push("", "ROOT SERIAL".padEnd(36) + "NOT AFTER".padEnd(26) + "SUBJECT");
  for (const [i, r] of (s.roots ?? []).entries()) lines.push(`${(r.serial + (i === 0 ? " *" : "")).padEnd(36)}${r.notAfter.padEnd(26)}${r.subject}`);
  lines.push("(* signs new certificates)");
  return lines.join("\n") + "\n";
}

export async function runCa(argv: string[]): Promise<number> {
  const { help, values, positionals } = parseFlags(argv, FLAGS, { positionals: true });
  if (help || positionals.length === 0) {
    process.stdout.write(helpText("ca", SUMMARY, FLAGS, "status|rotate-root"));
    return help ? 0 : 2;
  }
  const [command, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected arguments after ${command}: ${extra.join(" ")}`);
  if (command !== "status" && command !== "rotate-root") throw new UsageError(`unknown command "${command}"; expected status or rotate-root`);
  const output = values.output ?? "table";
  if (!["table", "json", "yaml"].includes(output)) throw new UsageError(`--output must be table, json or yaml, got "${output}"`);
  const admin = values.admin ?? "http://127.0.0.1:15014";
  const { status, body } = command === "status" ? await call(admin, "GET", "/debug/ca") : await call(admin, "POST", "/ca/rotate-root");
  if (status === 404 || status >= 500 || (status >= 400 && status !== 409)) throw new Error(body.error ?? `admin server answered ${status}`);
  const done = command === "status" ? status === 200 : status === 202;
  if (output === "json") process.stdout.write(JSON.stringify(body, null, 2) + "\n");
  else if (output === "yaml") process.stdout.write(stringify(body));
  else if (status === 409) process.stderr.write(`weft ca ${command}: ${body.error}\n`);
  else {
    const headline =
      command === "status"
        ? "CA roots"
        : done && body.requested
          ? `root rotation requested from the leader${body.leader ? ` (${body.leader})` : ""} through the root Secret; it starts within a few seconds (weft ca status shows the phase)`
          : done
            ? "root rotation started (phase trusting: the next root joins every trust bundle)"
            : `not started: a root rotation is already in progress (phase ${body.phase})`;
    process.stdout.write(renderTable(body, headline));
  }
  return done ? 0 : 3;
}
