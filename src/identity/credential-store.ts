// Bootstrap credentials (file/demo mode): a random token per registered WorkloadEntry (or per
// standalone proxy such as a gateway), persisted so restarts keep every workload's identity.
// A proxy proves who it is by presenting its token on the xDS stream ("authorization: Bearer
// <token>"); what it claims in its node metadata never decides which certificate it gets.
//
// A credential is bound to exactly the identity it was issued for (namespace, name, service
// account, and for standalone credentials the labels), recorded at issue time. A workload
// credential is revoked when its WorkloadEntry disappears, and replaced by a new token when
// the WorkloadEntry comes back with another service account: a token never yields an
// identity other than the one it was issued for.
//
// On disk, per credential (directories 0700, files 0600, each written atomically):
//   <dir>/<ns>/<name>.token   the token (what a sidecar's bootstrap sends)
//   <dir>/<ns>/<name>.json    the binding: kind, service account, labels, sha256 of the token
// The record is written before the token, so a crash between the two leaves a pair whose hash
// does not match: at start such pairs, empty or unparsable files are removed (logged) and the
// workload gets a new token at the next reconcile. A failed write (disk full) is logged and
// retried; it never throws out of reconcile().
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import type { Logger } from "../log/logger.js";
import { writeFileAtomicallySync } from "../state/atomic-file.js";

export interface WorkloadRef {
  namespace: string;
  name: string;
}

/** What a credential proves. */
export interface Credential extends WorkloadRef {
  serviceAccount: string;
  /**
   * "workload": issued for a WorkloadEntry and revoked with it; "standalone": issued on request
   * (gateways, tools), revoked only explicitly; "pod": a Kubernetes pod proven by its
   * ServiceAccount token (kubernetes-pod-identities.ts; never held by this store).
   */
  kind: "workload" | "standalone" | "pod";
  /** Standalone and pod credentials: the labels the proxy has (a workload's come from its WorkloadEntry). */
  labels?: Record<string, string>;
  /** Opaque name of this issuance ("ns/name#<token hash prefix>"): a re-issued credential has a new one. */
  principal: string;
  issuedAt: string;
}

/** A WorkloadEntry that should hold a credential. */
export interface DesiredWorkload extends WorkloadRef {
  serviceAccount: string;
}

interface Held {
  credential: Credential;
  token: string;
  tokenHash: string;
}

interface StoredRecord {
  kind: "workload" | "standalone";
  serviceAccount: string;
  labels?: Record<string, string>;
  tokenSha256: string;
  issuedAt: string;
}

export interface CredentialStoreOptions {
  logger?: Logger;
  /** Called for every revoked credential (e.g. to close the streams of its principal). */
  onRevoked?: (credential: Credential, reason: string) => void;
  /** Delay before retrying a reconcile whose writes failed (default 5 s). */
  retryMs?: number;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const refKey = (w: WorkloadRef) => `${w.namespace}/${w.name}`;

function parseRecord(text: string): StoredRecord | undefined {
  try {
    const r = JSON.parse(text) as Partial<StoredRecord>;
    if ((r.kind !== "workload" && r.kind !== "standalone") || typeof r.serviceAccount !== "string" || !r.serviceAccount) return undefined;
    if (typeof r.tokenSha256 !== "string" || !/^[0-9a-f]{64}$/.test(r.tokenSha256) || typeof r.issuedAt !== "string") return undefined;
    if (r.labels !== undefined && (typeof r.labels !== "object" || r.labels === null || Object.values(r.labels).some((v) => typeof v !== "string"))) return undefined;
    return r as StoredRecord;
  } catch {
    return undefined;
  }
}

export class CredentialStore {
  private readonly byRef = new Map<string, Held>();
  private readonly byTokenHash = new Map<string, Held>();
  private readonly byPrincipal = new Map<string, Held>();
  private readonly log?: Logger;
  private desired?: readonly DesiredWorkload[];
  private retryTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly dir: string,
    private readonly opts: CredentialStoreOptions = {},
  ) {
    this.log = opts.logger;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const ns of readdirSync(dir, { withFileTypes: true })) {
      if (ns.isDirectory()) this.loadNamespace(ns.name);
    }
  }

  private loadNamespace(namespace: string): void {
    const nsDir = path.join(this.dir, namespace);
    const files = readdirSync(nsDir);
    const names = new Set<string>();
    for (const f of files) {
      if (f.includes(".tmp-")) {
        rmSync(path.join(nsDir, f), { force: true }); // left by an interrupted write
        continue;
      }
      const m = /^(.+)\.(token|json)$/.exec(f);
      if (m) names.add(m[1]!);
    }
    for (const name of names) {
      const ref = { namespace, name };
      const tokenFile = this.tokenPath(ref);
      const recordFile = this.recordPath(ref);
      const token = readIfPresent(tokenFile)?.trim();
      const recordText = readIfPresent(recordFile);
      const record = recordText === undefined ? undefined : parseRecord(recordText);
      let problem: string | undefined;
      if (!token) problem = token === undefined ? "token file missing" : "token file empty";
      else if (recordText === undefined) problem = "binding record missing (credential from an older version: its identity is unknown)";
      else if (!record) problem = "binding record unreadable";
      else if (record.tokenSha256 !== sha256(token)) problem = "token does not match its binding record (interrupted write)";
      if (problem || !token || !record) {
        this.log?.warn({ tokenFile, recordFile, problem }, "credential file damaged: removed; the workload gets a new token at the next config reconcile, hand it to its sidecar");
        rmSync(tokenFile, { force: true });
        rmSync(recordFile, { force: true });
        continue;
      }
      this.hold({ ...ref, serviceAccount: record.serviceAccount, kind: record.kind, ...(record.labels ? { labels: record.labels } : {}), principal: `${ref.namespace}/${ref.name}#${record.tokenSha256.slice(0, 12)}`, issuedAt: record.issuedAt }, token);
    }
  }

  private hold(credential: Credential, token: string): Held {
    const held = { credential, token, tokenHash: sha256(token) };
    this.byRef.set(refKey(credential), held);
    this.byTokenHash.set(held.tokenHash, held);
    this.byPrincipal.set(credential.principal, held);
    return held;
  }

  /** Path of a credential's token file (what a sidecar's bootstrap sends). */
  tokenPath(w: WorkloadRef): string {
    return path.join(this.dir, w.namespace, `${w.name}.token`);
  }

  private recordPath(w: WorkloadRef): string {
    return path.join(this.dir, w.namespace, `${w.name}.json`);
  }

  /** Creates and persists a new credential; throws (nothing held, no file left) when it cannot be written. */
  private issue(ref: WorkloadRef, serviceAccount: string, kind: StoredRecord["kind"], labels?: Record<string, string>): Held {
    const token = randomBytes(32).toString("base64url");
    const tokenSha256 = sha256(token);
    const issuedAt = new Date().toISOString();
    const record: StoredRecord = { kind, serviceAccount, ...(labels ? { labels } : {}), tokenSha256, issuedAt };
    mkdirSync(path.dirname(this.tokenPath(ref)), { recursive: true, mode: 0o700 });
    try {
      writeFileAtomicallySync(this.recordPath(ref), JSON.stringify(record) + "\n", 0o600);
      // No trailing newline: Envoy's file_based_metadata call credential sends the file as it is,
      // and a header value ending in "\n" makes gRPC fail every stream (INTERNAL).
      writeFileAtomicallySync(this.tokenPath(ref), token, 0o600);
    } catch (err) {
      rmSync(this.recordPath(ref), { force: true });
      throw err;
    }
    const held = this.hold({ ...ref, serviceAccount, kind, ...(labels ? { labels } : {}), principal: `${ref.namespace}/${ref.name}#${tokenSha256.slice(0, 12)}`, issuedAt }, token);
    this.log?.info({ credential: refKey(ref), serviceAccount, kind }, "credential issued");
    return held;
  }

  /** Revokes a credential: forgotten at once, files removed, onRevoked told (its streams are closed). */
  revoke(ref: WorkloadRef, reason: string): boolean {
    const held = this.byRef.get(refKey(ref));
    if (!held) return false;
    this.byRef.delete(refKey(ref));
    this.byTokenHash.delete(held.tokenHash);
    this.byPrincipal.delete(held.credential.principal);
    for (const file of [this.tokenPath(ref), this.recordPath(ref)]) {
      try {
        rmSync(file, { force: true });
      } catch (err) {
        this.log?.error({ file, err: (err as Error).message }, "cannot remove a revoked credential's file; the token is refused anyway");
      }
    }
    this.log?.info({ credential: refKey(ref), serviceAccount: held.credential.serviceAccount, reason }, "credential revoked");
    this.opts.onRevoked?.(held.credential, reason);
    return true;
  }

  /**
   * A standalone credential's token (gateways, tools), issued on first request and bound to
   * `serviceAccount` (default: the name) and `labels`. The existing token when it is bound to
   * exactly these (or is a WorkloadEntry's); otherwise the old one is revoked and a new one
   * issued. Throws when the credential cannot be written.
   */
  ensure(w: WorkloadRef & { serviceAccount?: string; labels?: Record<string, string> }): string {
    const have = this.byRef.get(refKey(w));
    const serviceAccount = w.serviceAccount ?? w.name;
    if (have?.credential.kind === "workload") return have.token; // its WorkloadEntry defines it
    if (have && have.credential.serviceAccount === serviceAccount && boundLabelsEqual(have.credential.labels, w.labels)) return have.token;
    // A standalone identity that changed is a new credential: the old token stops working.
    if (have) this.revoke(have.credential, "its standalone identity (service account or labels) changed; a new token is issued");
    return this.issue({ namespace: w.namespace, name: w.name }, serviceAccount, "standalone", w.labels).token;
  }

  /**
   * Makes the workload credentials match the registered WorkloadEntries: one for each (issued
   * if missing; re-issued with a new token when the service account changed), and revokes
   * every workload credential whose WorkloadEntry is gone. A write that fails is logged and
   * retried later; never throws.
   */
  reconcile(workloads: readonly DesiredWorkload[]): { issued: number; revoked: number; failed: number } {
    this.desired = workloads;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const wanted = new Map(workloads.map((w) => [refKey(w), w]));
    let revoked = 0;
    for (const held of [...this.byRef.values()]) {
      const c = held.credential;
      const want = wanted.get(refKey(c));
      if (!want && c.kind === "workload") {
        if (this.revoke(c, "its WorkloadEntry was deleted")) revoked++;
      } else if (want && want.serviceAccount !== c.serviceAccount) {
        if (this.revoke(c, `its WorkloadEntry's serviceAccount changed from "${c.serviceAccount}" to "${want.serviceAccount}"; a new token is issued`)) revoked++;
      }
    }
    let issued = 0;
    let failed = 0;
    for (const w of workloads) {
      const have = this.byRef.get(refKey(w));
      if (have && have.credential.kind === "workload") continue;
      try {
        if (have) {
          // A standalone credential of the same identity becomes the workload's (same token).
          const record: StoredRecord = { kind: "workload", serviceAccount: have.credential.serviceAccount, tokenSha256: have.tokenHash, issuedAt: have.credential.issuedAt };
          writeFileAtomicallySync(this.recordPath(w), JSON.stringify(record) + "\n", 0o600);
          const { labels: _standaloneLabels, ...rest } = have.credential;
          have.credential = { ...rest, kind: "workload" };
        } else {
          this.issue(w, w.serviceAccount, "workload");
          issued++;
        }
      } catch (err) {
        failed++;
        this.log?.error({ credential: refKey(w), err: (err as Error).message }, "cannot write the workload's credential; its proxy cannot authenticate until it is written (retrying)");
      }
    }
    if (failed > 0 && !this.closed) {
      this.retryTimer = setTimeout(() => {
        if (this.desired) this.reconcile(this.desired);
      }, this.opts.retryMs ?? 5000);
      this.retryTimer.unref();
    }
    return { issued, revoked, failed };
  }

  /** The credential a presented token proves, or undefined. */
  authenticate(token: string | undefined): Credential | undefined {
    if (!token) return undefined;
    // Looked up by the token's hash: the time taken does not depend on how much of a known token matches.
    return this.byTokenHash.get(sha256(token))?.credential;
  }

  /** The credential behind a principal (undefined once revoked or replaced). */
  byPrincipalName(principal: string): Credential | undefined {
    return this.byPrincipal.get(principal)?.credential;
  }

  /** Every credential held (for status and tests). */
  list(): Credential[] {
    return [...this.byRef.values()].map((h) => h.credential);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
  }
}

/** Labels bound to a standalone credential equal to those asked for (absent = empty). */
function boundLabelsEqual(bound: Record<string, string> | undefined, asked: Record<string, string> | undefined): boolean {
  const entries = Object.entries(bound ?? {});
  return entries.length === Object.keys(asked ?? {}).length && entries.every(([k, v]) => asked?.[k] === v);
}

function readIfPresent(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
