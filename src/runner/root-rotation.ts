// Root rotation without a person. The leader starts a rotation when the root nears its expiry
// (or when asked: `weft ca rotate-root`) and carries it through three phases, each lasting at
// least `phaseMs` so every replica (they watch the shared root store) and every proxy follows:
//
//   trusting  the next root joins every trust bundle; the old root still signs
//   signing   the new root signs; every replica re-issues its workloads' certificates; both trusted
//   idle      the old root leaves the trust bundles
//
// A new leader taking over mid-rotation waits a full phase before the next step. Followers do
// not drive anything: they reload the CA when the store changes and apply what it holds
// (`follow`). Asked for a rotation (`weft ca rotate-root` on its admin API), a follower writes
// the request into the shared store (`requests`, the root Secret's annotations); the leader
// sees it through its watch and starts. With the built-in CA only; a plugged-in CA is rotated
// by replacing its files.
import { Counter, Gauge, type Registry } from "prom-client";
import type { CertificateAuthority, RootRotationPhase } from "../ca/certificate-authority.js";
import type { Logger } from "../log/logger.js";
import type { LeaderElection } from "./leader-election.js";

/** When to start: once less than this share of the root's lifetime, or this long, is left. */
export type RotateBefore = { fraction: number } | { ms: number };

export interface RootRotationOptions {
  ca: CertificateAuthority;
  leader: LeaderElection;
  logger: Logger;
  rotateBefore: RotateBefore;
  /** Least time each phase lasts (replicas and proxies catch up meanwhile). */
  phaseMs: number;
  /** How often the leader looks at the root's expiry; default min(60 s, phaseMs / 4), at least 100 ms. */
  checkIntervalMs?: number;
  /** Pushes the CA's current trust to this replica's proxies; with signingChanged, re-issues their certificates too. */
  applyTrust(change: { signingChanged: boolean }): Promise<void>;
  metrics: Registry;
  now?: () => number;
  /** A shared store's rotation requests (followers write, the leader reads); without, a follower refuses (NotLeaderError). */
  requests?: { send(by: string): Promise<void>; pending(): Promise<{ by: string; at: string } | undefined> };
}

export interface RootRotationStatus {
  phase: RootRotationPhase;
  /** Trusted roots, the signing one first. */
  roots: { serial: string; subject: string; notBefore: string; notAfter: string }[];
  leader: string | undefined;
  isLeader: boolean;
  /** When the leader will start the next rotation by itself (ISO time). */
  rotationDueAt: string;
  /** When the current phase began on this replica's watch (leader only). */
  phaseSince?: string;
  rotateBefore: string;
  phaseSeconds: number;
  /** The last rotation this replica started as leader: when and why (leader only). */
  lastStarted?: { at: string; reason: string };
}

export class NotLeaderError extends Error {
  constructor(readonly leader: string | undefined) {
    super(`this replica is not the leader${leader ? `; the leader is ${leader}` : " and no leader is known yet"}: ask the leader's admin API`);
  }
}

export function describeRotateBefore(r: RotateBefore): string {
  return "fraction" in r ? `${Math.round(r.fraction * 1000) / 10}% of the root's lifetime left` : `${Math.round(r.ms / 1000)}s left`;
}

const PHASE_NUMBER: Record<RootRotationPhase, number> = { idle: 0, trusting: 1, signing: 2 };

export class RootRotation {
  private readonly now: () => number;
  private readonly checkIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  /** Steps and follows run one at a time. */
  private chain: Promise<void> = Promise.resolve();
  private phaseSince: number | undefined;
  private requested: string | undefined;
  /** Set when the shared store may hold a request (a watch event, a new leadership). */
  private checkRequests = true;
  private lastStarted: { at: string; reason: string } | undefined;
  private closed = false;
  private unsubscribe: (() => void) | undefined;
  private readonly rotations: Counter<"phase">;

  constructor(private readonly opts: RootRotationOptions) {
    this.now = opts.now ?? Date.now;
    this.checkIntervalMs = Math.max(100, opts.checkIntervalMs ?? Math.min(60_000, opts.phaseMs / 4));
    const registers = [opts.metrics];
    const ca = opts.ca;
    const now = this.now;
    new Gauge({
      name: "weft_ca_root_expiry_seconds",
      help: "Seconds until the root that new certificates chain to expires (Istio: citadel_server_root_cert_expiry_seconds)",
      registers,
      collect() {
        const signing = ca.roots()[0];
        if (signing) this.set((signing.notAfter.getTime() - now()) / 1000);
      },
    });
    new Gauge({
      name: "weft_ca_root_rotation_phase",
      help: "Where a root rotation stands on this replica: 0 idle, 1 trusting (next root trusted, old signs), 2 signing (new signs, old still trusted)",
      registers,
      collect() {
        this.set(PHASE_NUMBER[ca.rootRotationPhase()]);
      },
    });
    this.rotations = new Counter({ name: "weft_ca_root_rotation_steps_total", help: "Root rotation phases this replica started as leader (trusting, signing, idle = finished)", labelNames: ["phase"], registers });
  }

  start(): void {
    this.unsubscribe = this.opts.leader.onChange((leader) => {
      if (leader) {
        this.checkRequests = true;
        // Mid-rotation, a new leader gives replicas and proxies a full phase from now.
        this.phaseSince = this.opts.ca.rootRotationPhase() === "idle" ? undefined : this.now();
        this.schedule(0);
      }
    });
    if (this.opts.leader.isLeader()) {
      this.phaseSince = this.opts.ca.rootRotationPhase() === "idle" ? undefined : this.now();
      this.schedule(0);
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.unsubscribe?.();
  }

  /** When the leader starts the next rotation by itself. */
  rotationDueAt(): number {
    const signing = this.opts.ca.roots()[0];
    if (!signing) return Infinity;
    const notAfter = signing.notAfter.getTime();
    const before = "fraction" in this.opts.rotateBefore ? (notAfter - signing.notBefore.getTime()) * this.opts.rotateBefore.fraction : this.opts.rotateBefore.ms;
    return notAfter - before;
  }

  status(): RootRotationStatus {
    return {
      phase: this.opts.ca.rootRotationPhase(),
      roots: this.opts.ca.roots().map((r) => ({ serial: r.serial, subject: r.subject, notBefore: r.notBefore.toISOString(), notAfter: r.notAfter.toISOString() })),
      leader: this.opts.leader.leaderIdentity(),
      isLeader: this.opts.leader.isLeader(),
      rotationDueAt: new Date(Math.min(this.rotationDueAt(), 8.64e15)).toISOString(),
      ...(this.phaseSince !== undefined ? { phaseSince: new Date(this.phaseSince).toISOString() } : {}),
      rotateBefore: describeRotateBefore(this.opts.rotateBefore),
      phaseSeconds: this.opts.phaseMs / 1000,
      ...(this.lastStarted ? { lastStarted: this.lastStarted } : {}),
    };
  }

  /**
   * On demand (the admin API): the leader starts a rotation now; a follower with a shared store
   * passes the request on to the leader through it (`requested`); else throws NotLeaderError.
   */
  async request(): Promise<{ started: boolean; requested?: boolean; status: RootRotationStatus }> {
    if (!this.opts.leader.isLeader()) {
      const requests = this.opts.requests;
      if (!requests) throw new NotLeaderError(this.opts.leader.leaderIdentity());
      if (this.opts.ca.rootRotationPhase() !== "idle") return { started: false, status: this.status() };
      await requests.send(this.opts.leader.identity);
      this.opts.logger.info({ leader: this.opts.leader.leaderIdentity() ?? null }, "root rotation: requested from the leader through the shared root store");
      return { started: false, requested: true, status: this.status() };
    }
    const started = this.opts.ca.rootRotationPhase() === "idle";
    if (started) this.requested = "requested on this replica's admin API";
    await this.run(() => this.step());
    return { started, status: this.status() };
  }

  /** Another writer (the leader) may have changed the shared root store: take its state and apply it. */
  follow(): Promise<void> {
    return this.run(async () => {
      const change = await this.opts.ca.reload();
      if (this.opts.leader.isLeader()) {
        // The store changed: it may carry a follower's request.
        this.checkRequests = true;
        await this.step();
      }
      if (!change.bundleChanged && !change.signingChanged) return;
      this.opts.logger.info({ phase: this.opts.ca.rootRotationPhase(), roots: this.opts.ca.roots().map((r) => r.serial), signingChanged: change.signingChanged }, "root rotation: following the shared root store");
      await this.opts.applyTrust({ signingChanged: change.signingChanged });
    });
  }

  private run(work: () => Promise<void>): Promise<void> {
    const next = this.chain.then(work);
    this.chain = next.catch((err: unknown) => this.opts.logger.error({ err: (err as Error).message }, "root rotation: a step failed; retrying at the next check"));
    return next;
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.run(() => this.step()).catch(() => {}).finally(() => {
        if (this.opts.leader.isLeader()) this.schedule(this.checkIntervalMs);
      });
    }, delayMs);
    this.timer.unref?.();
  }

  /** One step of the leader's state machine (at most one phase change). */
  private async step(): Promise<void> {
    if (this.closed || !this.opts.leader.isLeader()) return;
    const ca = this.opts.ca;
    const now = this.now();
    const phase = ca.rootRotationPhase();
    if (phase === "idle") {
      const due = now >= this.rotationDueAt();
      if (!due && !this.requested && this.checkRequests && this.opts.requests) {
        const pending = await this.opts.requests.pending();
        this.checkRequests = false;
        if (pending) this.requested = `requested by ${pending.by || "a replica"} at ${pending.at} (through the shared root store)`;
      }
      if (!due && !this.requested) return;
      const reason = this.requested ?? `the root expires at ${ca.roots()[0]?.notAfter.toISOString()} (${describeRotateBefore(this.opts.rotateBefore)})`;
      this.opts.logger.info({ reason }, "root rotation: starting (phase trusting: the next root joins every trust bundle)");
      this.requested = undefined;
      this.lastStarted = { at: new Date(now).toISOString(), reason };
      // Writing the store (the next root) consumes a pending request.
      await ca.prepareRootRotation();
      this.phaseSince = this.now();
      this.rotations.inc({ phase: "trusting" });
      await this.opts.applyTrust({ signingChanged: false });
      return;
    }
    if (this.phaseSince === undefined) this.phaseSince = now;
    if (now - this.phaseSince < this.opts.phaseMs) return;
    if (phase === "trusting") {
      this.opts.logger.info("root rotation: phase signing (the new root signs; certificates are re-issued)");
      await ca.beginRootRotation();
      this.phaseSince = this.now();
      this.rotations.inc({ phase: "signing" });
      await this.opts.applyTrust({ signingChanged: true });
      return;
    }
    this.opts.logger.info("root rotation: finished (the old root leaves every trust bundle)");
    await ca.finishRootRotation();
    this.phaseSince = undefined;
    this.rotations.inc({ phase: "idle" });
    await this.opts.applyTrust({ signingChanged: false });
  }
}
