// A projected ServiceAccount token volume, as kubelet keeps one for a pod: the token is asked
// for with TokenRequest (audience, expirationSeconds, bound to the pod), written in kubelet's
// atomic layout — <dir>/token -> ..data/token, ..data -> ..<generation> swapped in by rename —
// and asked for again at 80% of its lifetime (kubelet's rule), so the file always holds a
// valid token. The sidecar (uid 1337) owns the files, mode 0600.
//
// `issue` may hand out other tokens (e2e tests re-sign TokenRequest's token with a lifetime
// below the API server's 10-minute minimum: short-lived-token.ts).
import { chown, mkdir, rename, rm, symlink, writeFile, readlink } from "node:fs/promises";
import path from "node:path";

export interface ProjectedTokenOptions {
  /** The volume's directory (created; removed by stop()). */
  dir: string;
  /** Owner of the files (the sidecar's uid/gid). */
  owner: { uid: number; gid: number };
  /** A fresh token. */
  issue: () => Promise<string>;
  /** A refresh that failed (retried after 1 s). */
  onError: (err: unknown) => void;
  /** The token's file name in the volume (the projection's `path`). Default "token". */
  fileName?: string;
}

/** iat and exp of a JWT, in ms. */
export function tokenTimes(token: string): { issuedAt: number; expiresAt: number } {
  const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { iat?: number; exp?: number };
  if (typeof claims.iat !== "number" || typeof claims.exp !== "number") throw new Error("projected token: the token has no iat/exp claims");
  return { issuedAt: claims.iat * 1000, expiresAt: claims.exp * 1000 };
}

export class ProjectedToken {
  /** Tokens written so far, oldest first. */
  readonly written: string[] = [];
  private generation = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  private constructor(private readonly opts: ProjectedTokenOptions) {}

  static async start(opts: ProjectedTokenOptions): Promise<ProjectedToken> {
    const t = new ProjectedToken(opts);
    await mkdir(opts.dir, { recursive: true, mode: 0o700 });
    await chown(opts.dir, opts.owner.uid, opts.owner.gid);
    await t.refresh();
    await symlink(path.join("..data", t.fileName), path.join(opts.dir, t.fileName));
    return t;
  }

  private get fileName(): string {
    return this.opts.fileName ?? "token";
  }

  /** The path the sidecar reads. */
  get file(): string {
    return path.join(this.opts.dir, this.fileName);
  }

  /** The token in the file now. */
  get current(): string {
    return this.written[this.written.length - 1]!;
  }

  /** Asks for a new token now and swaps it in (also what the timer does). */
  async refresh(): Promise<void> {
    clearTimeout(this.timer);
    let delay = 1000;
    try {
      const token = await this.opts.issue();
      if (this.stopped) return;
      await this.swapIn(token);
      const { issuedAt, expiresAt } = tokenTimes(token);
      delay = Math.max(1000, issuedAt + 0.8 * (expiresAt - issuedAt) - Date.now());
    } catch (err) {
      if (!this.stopped) this.opts.onError(err);
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.refresh(), delay);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await rm(this.opts.dir, { recursive: true, force: true });
  }

  private async swapIn(token: string): Promise<void> {
    const { dir, owner } = this.opts;
    const gen = `..${++this.generation}`;
    const genDir = path.join(dir, gen);
    await mkdir(genDir, { mode: 0o700 });
    await writeFile(path.join(genDir, this.fileName), token, { mode: 0o600 });
    await chown(path.join(genDir, this.fileName), owner.uid, owner.gid);
    await chown(genDir, owner.uid, owner.gid);
    const previous = await readlink(path.join(dir, "..data")).catch(() => undefined);
    await symlink(gen, path.join(dir, "..data_tmp"));
    await rename(path.join(dir, "..data_tmp"), path.join(dir, "..data"));
    if (previous) await rm(path.join(dir, previous), { recursive: true, force: true });
    this.written.push(token);
  }
}
