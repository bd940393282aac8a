// Bootstrap credentials of registered workloads (file/demo mode): a random token per
// WorkloadEntry, created when the workload is registered, persisted (0600) so restarts keep
// every workload's identity. A proxy proves who it is by presenting its token on the xDS
// stream ("authorization: Bearer <token>"); what it claims in its node metadata never decides
// which certificate it gets.
import { randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

export interface WorkloadRef {
  namespace: string;
  name: string;
}

export class CredentialStore {
  private readonly byToken = new Map<string, WorkloadRef>();

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const ns of readdirSync(dir)) {
      const nsDir = path.join(dir, ns);
      for (const file of readdirSync(nsDir).filter((f) => f.endsWith(".token"))) {
        this.byToken.set(readFileSync(path.join(nsDir, file), "utf8").trim(), { namespace: ns, name: file.slice(0, -".token".length) });
      }
    }
  }

  /** Path of a workload's token file (what the demo hands to that workload's sidecar). */
  tokenPath(w: WorkloadRef): string {
    return path.join(this.dir, w.namespace, `${w.name}.token`);
  }

  /** The workload's token, created on first registration. */
  ensure(w: WorkloadRef): string {
    const file = this.tokenPath(w);
    if (existsSync(file)) return readFileSync(file, "utf8").trim();
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const token = randomBytes(32).toString("base64url");
    writeFileSync(file, token + "\n", { mode: 0o600 });
    chmodSync(file, 0o600);
    this.byToken.set(token, { ...w });
    return token;
  }

  /** The workload a presented token belongs to, or undefined. Constant-time per comparison. */
  authenticate(token: string | undefined): WorkloadRef | undefined {
    if (!token) return undefined;
    const presented = Buffer.from(token);
    for (const [known, ref] of this.byToken) {
      const k = Buffer.from(known);
      if (k.length === presented.length && timingSafeEqual(k, presented)) return ref;
    }
    return undefined;
  }
}
