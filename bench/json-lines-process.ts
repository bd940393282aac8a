// A child process that speaks JSON lines (commands on stdin, replies on stdout): the benchmark
// servers and the load generator in -watch mode. Every process started here is killed
// when this process exits, so a failed run leaves nothing behind.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

export type JsonObject = Record<string, unknown>;

const live = new Set<ChildProcess>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const killAll = () => {
    for (const p of live) {
      try {
        p.kill("SIGKILL");
      } catch {
        /* gone */
      }
    }
    live.clear();
  };
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

export class JsonLinesProcess {
  readonly proc: ChildProcess;
  private readonly lines: JsonObject[] = [];
  private readonly waiters: { match: (o: JsonObject) => boolean; resolve: (o: JsonObject) => void }[] = [];
  private stderr = "";
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    opts: { cwd?: string } = {},
  ) {
    hookExit();
    this.proc = spawn(cmd, args, { cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] });
    live.add(this.proc);
    this.exited = new Promise((resolve) =>
      this.proc.once("exit", (code) => {
        live.delete(this.proc);
        resolve(code);
      }),
    );
    this.proc.stderr!.on("data", (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    this.proc.stdin!.on("error", () => {}); // EPIPE when it exited first: the exit is reported elsewhere
    createInterface({ input: this.proc.stdout! }).on("line", (line) => {
      // A line that is not a JSON object (e.g. a bare "ready") arrives as { line }.
      let o: JsonObject = { line: line.trim() };
      if (line.startsWith("{")) {
        try {
          o = JSON.parse(line) as JsonObject;
        } catch {
          /* kept as { line } */
        }
      }
      const i = this.waiters.findIndex((w) => w.match(o));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(o);
      else this.lines.push(o);
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  send(cmd: JsonObject): void {
    this.proc.stdin!.write(JSON.stringify(cmd) + "\n");
  }

  /** The first line (already received or to come) that matches; rejects on timeout or exit. */
  next(match: (o: JsonObject) => boolean, timeoutMs: number, what = "a reply"): Promise<JsonObject> {
    const i = this.lines.findIndex(match);
    if (i >= 0) return Promise.resolve(this.lines.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (o: JsonObject) => {
          clearTimeout(timer);
          resolve(o);
        },
      };
      const fail = (why: string) => {
        const j = this.waiters.indexOf(waiter);
        if (j >= 0) this.waiters.splice(j, 1);
        reject(new Error(`${this.name}: ${why} while waiting for ${what}; stderr: ${this.stderr.trim().slice(-1500)}`));
      };
      const timer = setTimeout(() => fail(`no reply in ${timeoutMs} ms`), timeoutMs);
      this.waiters.push(waiter);
      void this.exited.then((code) => {
        if (this.waiters.includes(waiter)) {
          clearTimeout(timer);
          fail(`exited (code ${code})`);
        }
      });
    });
  }

  /** Sends a command and waits for the reply that has `key` (e.g. "marked", "stats"). */
  async call(cmd: JsonObject, key: string, timeoutMs = 30_000): Promise<JsonObject> {
    this.send(cmd);
    return this.next((o) => key in o || "error" in o, timeoutMs, `"${key}"`).then((o) => {
      if ("error" in o && !(key in o)) throw new Error(`${this.name}: ${String(o.error)}`);
      return o;
    });
  }

  /** Closes stdin (both programs exit on that), then SIGTERM / SIGKILL if they linger. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.stdin!.end();
    const t1 = setTimeout(() => this.proc.kill("SIGTERM"), graceMs);
    const t2 = setTimeout(() => this.proc.kill("SIGKILL"), graceMs * 2);
    await this.exited;
    clearTimeout(t1);
    clearTimeout(t2);
  }

  stderrTail(): string {
    return this.stderr;
  }
}
