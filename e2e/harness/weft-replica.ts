// One `weft serve` process, as a replica runs in a cluster: started from source (tsx), its
// admin API read over HTTP (metrics, proxies and what they ACKed), stopped with a signal.
import { spawn, type ChildProcess } from "node:child_process";
import { freePort } from "../../src/runner/free-port.js";
import { httpGet } from "./http.js";

export interface WeftReplica {
  readonly name: string;
  readonly xdsPort: number;
  readonly adminPort: number;
  readonly child: ChildProcess;
  /** Everything it logged (JSON lines), for diagnostics. */
  log(): string;
  /** Resolves with the exit code (or signal name) once it exited. */
  readonly exited: Promise<number | string>;
  /** A metric's value from /metrics (first sample whose line starts with `name` and matches `labels`), undefined when absent. */
  metric(name: string, labels?: string): Promise<number | undefined>;
  /** Connected proxies: node id -> true when it ACKed its current snapshot for every type that has resources. */
  proxies(): Promise<Map<string, boolean>>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Lines of the log, last `n`, for failure messages. */
export function tail(text: string, n = 30): string {
  return text.trimEnd().split("\n").slice(-n).join("\n");
}

export async function startWeftReplica(name: string, args: string[], opts: { env?: Record<string, string>; xdsPort?: number; adminPort?: number; readyTimeoutMs?: number } = {}): Promise<WeftReplica> {
  const xdsPort = opts.xdsPort ?? (await freePort());
  const adminPort = opts.adminPort ?? (await freePort());
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve", "--xds-port", String(xdsPort), "--admin-port", String(adminPort), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, POD_NAME: name, ...opts.env },
  });
  let output = "";
  const keep = (d: Buffer) => {
    output += d.toString();
    if (output.length > 4_000_000) output = output.slice(-2_000_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")));
  const base = `http://127.0.0.1:${adminPort}`;
  const replica: WeftReplica = {
    name,
    xdsPort,
    adminPort,
    child,
    log: () => output,
    exited,
    async metric(metricName, labels = "") {
      const res = await httpGet(`${base}/metrics`);
      for (const line of res.body.split("\n")) {
        if (!line.startsWith(metricName) || line.startsWith("#")) continue;
        const rest = line.slice(metricName.length);
        if (!(rest.startsWith(" ") || rest.startsWith("{"))) continue;
        if (labels && !rest.includes(labels)) continue;
        return Number(rest.trim().split(/\s+/).pop());
      }
      return undefined;
    },
    async proxies() {
      // Weft's own per-type state of each proxy (what its stream is served: a SotW proxy gets no
      // VirtualHost resources, a delta one its route configurations in their VHDS form).
      const syncz = JSON.parse((await httpGet(`${base}/debug/syncz`)).body) as { proxies: { nodeId: string }[] };
      const result = new Map<string, boolean>();
      for (const { nodeId } of syncz.proxies) {
        const dump = await httpGet(`${base}/debug/config_dump?proxy=${encodeURIComponent(nodeId)}`);
        if (dump.status !== 200) continue; // gone since the list
        const { proxies } = JSON.parse(dump.body) as { proxies: { types: { state: string; resources: unknown[] }[] }[] };
        result.set(nodeId, proxies.length > 0 && proxies.every((p) => p.types.every((t) => t.state === "SYNCED" || (t.state === "NOT_SENT" && t.resources.length === 0))));
      }
      return result;
    },
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 90_000);
  for (;;) {
    const ready = await httpGet(`${base}/readyz`).then((r) => r.status === 200, () => false);
    if (ready) return replica;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`weft replica ${name} exited before it was ready:\n${tail(output)}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`weft replica ${name} not ready within ${opts.readyTimeoutMs ?? 90_000} ms:\n${tail(output)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
