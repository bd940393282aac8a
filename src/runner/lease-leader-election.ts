// Leader election over a coordination.k8s.io/v1 Lease, close to client-go's rules
// (k8s.io/client-go/tools/leaderelection), with a faster takeover that stays safe under skew:
//
// - Every `retryPeriod` (x 1..2.2 jitter) a candidate reads the Lease. A Lease held by another is
//   taken once it expired: at `renewal + leaseDuration`, on the candidate's own monotonic clock.
//   The renewal's instant is estimated when the candidate first sees a record: `seen - age`,
//   where `seen` is when the read returned and `age = wallNow - renewTime` (the holder's clock)
//   clamped to [0, leaseDuration - renewDeadline - 1 s]. With clocks in agreement this is the
//   renewal itself (client-go counts from `seen`, up to a jittered retry period later: takeover
//   took 14.4-18.6 s with a 15 s lease). With a skewed clock the clamp bounds the error: a holder
//   clock ahead gives age 0 (client-go's rule); one behind can make the candidate count at most
//   `leaseDuration - renewDeadline - 1 s` too early, so the takeover still comes at least 1 s
//   after the holder stopped leading (below). A free Lease (no holder) is taken at once.
// - The leader renews every `retryPeriod`; it leads only while its last successful renewal
//   (whose attempt began at `lastRenewed`, before renewTime was stamped) is younger than
//   `renewDeadline` (< leaseDuration): isLeader() checks the clock itself, so a late timer or a
//   hung API call cannot stretch leadership, and a timer tells listeners at the deadline.
// - Writes carry the resourceVersion read: two candidates racing for one Lease cannot both win.
// - close() of a leader writes the Lease with no holder, so another replica takes over within a
//   retry period instead of a lease duration (SIGTERM, rolling updates).
//
// Replicas are assumed to run the same timings (one Deployment); the holder's own
// leaseDurationSeconds is honoured. The Kubernetes calls are behind `LeaseClient`
// (src/sources/kubernetes/lease-client.ts is the real one); unit tests use an in-memory one.
import type { Logger } from "../log/logger.js";
import { LeaderListeners, type LeaderElection } from "./leader-election.js";

/** What the election reads and writes of the Lease (spec fields of coordination.k8s.io/v1 Lease). */
export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  /** Wall-clock milliseconds. */
  acquireTime: number;
  renewTime: number;
  leaseTransitions: number;
}

export interface StoredLease {
  record: LeaseRecord;
  resourceVersion: string;
}

export interface LeaseClient {
  /** The Lease, or undefined when it does not exist. */
  get(): Promise<StoredLease | undefined>;
  /** Creates it; false when it already exists (another replica created it first). */
  create(record: LeaseRecord): Promise<boolean>;
  /** Replaces it if still at resourceVersion; false on a conflict (someone else wrote it). */
  update(record: LeaseRecord, resourceVersion: string): Promise<boolean>;
  /** Where the Lease is, for messages ("namespace/name"). */
  readonly description: string;
}

export interface LeaseTimings {
  /** How long a Lease not renewed stays with its holder. client-go default 15 s. */
  leaseDurationMs: number;
  /** How long a leader keeps trying to renew before it gives up leadership. client-go default 10 s. */
  renewDeadlineMs: number;
  /** Between attempts to acquire or renew. client-go default 2 s. */
  retryPeriodMs: number;
}

/**
 * Weft's defaults: a dead leader's Lease is taken 10 s after its last renewal (so within 10.5 s
 * of its death with clocks in agreement, at most ~14.5 s with a skewed holder clock), leaving
 * time for the new leader's first status writes within 15 s. client-go's are 15 / 10 / 2 s.
 */
export const DEFAULT_LEASE_TIMINGS: LeaseTimings = { leaseDurationMs: 10_000, renewDeadlineMs: 5_000, retryPeriodMs: 2_000 };

/** Least time between a holder losing leadership (renew deadline) and a candidate taking its Lease. */
export const TAKEOVER_SAFETY_MS = 1000;

/** client-go's JitterFactor: candidates wait retryPeriod * (1 + up to 1.2). */
const JITTER_FACTOR = 1.2;

/** Throws a message naming the setting unless leaseDuration > renewDeadline > retryPeriod * 1.2 (client-go's checks). */
export function checkLeaseTimings(t: LeaseTimings): LeaseTimings {
  if (!(t.retryPeriodMs >= 100)) throw new Error(`lease retry period must be at least 100ms, got ${t.retryPeriodMs}ms`);
  if (!(t.renewDeadlineMs > t.retryPeriodMs * JITTER_FACTOR)) {
    throw new Error(`lease renew deadline (${t.renewDeadlineMs}ms) must be longer than ${JITTER_FACTOR} x the retry period (${t.retryPeriodMs}ms)`);
  }
  if (!(t.leaseDurationMs > t.renewDeadlineMs)) throw new Error(`lease duration (${t.leaseDurationMs}ms) must be longer than the renew deadline (${t.renewDeadlineMs}ms)`);
  if (!(t.leaseDurationMs >= t.renewDeadlineMs + TAKEOVER_SAFETY_MS)) throw new Error(`lease duration (${t.leaseDurationMs}ms) must be at least ${TAKEOVER_SAFETY_MS}ms longer than the renew deadline (${t.renewDeadlineMs}ms)`);
  if (t.leaseDurationMs % 1000 !== 0) throw new Error(`lease duration must be whole seconds (a Lease stores seconds), got ${t.leaseDurationMs}ms`);
  return t;
}

export interface LeaseLeaderElectionOptions {
  client: LeaseClient;
  identity: string;
  timings?: LeaseTimings;
  logger: Logger;
  /** Monotonic milliseconds (default performance.now); wall-clock milliseconds (default Date.now). For tests. */
  monotonicNow?: () => number;
  wallNow?: () => number;
  /** 0..1 (default Math.random), for the candidates' jitter. */
  random?: () => number;
}

function sameRecord(a: LeaseRecord, b: LeaseRecord): boolean {
  return a.holderIdentity === b.holderIdentity && a.renewTime === b.renewTime && a.acquireTime === b.acquireTime && a.leaseTransitions === b.leaseTransitions && a.leaseDurationSeconds === b.leaseDurationSeconds;
}

export class LeaseLeaderElection implements LeaderElection {
  readonly identity: string;
  private readonly client: LeaseClient;
  private readonly timings: LeaseTimings;
  private readonly logger: Logger;
  private readonly monotonicNow: () => number;
  private readonly wallNow: () => number;
  private readonly random: () => number;
  private readonly listeners: LeaderListeners;
  private leader = false;
  /**
   * The record last read, when (monotonic) a read first returned it in that form, and when
   * (monotonic) it expires for this replica (see the header).
   */
  private observed: { record: LeaseRecord; resourceVersion: string; at: number; expiresAt: number } | undefined;
  /** Monotonic time at which the last successful acquire or renew attempt began. */
  private lastRenewed = 0;
  private timer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private running = false;
  private closed = false;
  private attempt: Promise<void> = Promise.resolve();
  private lastError = "";

  constructor(opts: LeaseLeaderElectionOptions) {
    this.client = opts.client;
    this.identity = opts.identity;
    this.timings = checkLeaseTimings(opts.timings ?? DEFAULT_LEASE_TIMINGS);
    this.logger = opts.logger;
    this.monotonicNow = opts.monotonicNow ?? (() => performance.now());
    this.wallNow = opts.wallNow ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.listeners = new LeaderListeners((err) => this.logger.error({ err: (err as Error).message }, "a leader-change listener failed"));
    if (this.identity === "" || this.identity.length > 253) throw new Error(`leader election identity must be 1-253 characters, got "${this.identity}"`);
  }

  isLeader(): boolean {
    return this.leader && this.withinRenewDeadline();
  }

  private withinRenewDeadline(): boolean {
    return this.monotonicNow() - this.lastRenewed < this.timings.renewDeadlineMs;
  }

  leaderIdentity(): string | undefined {
    if (this.isLeader()) return this.identity;
    const holder = this.observed?.record.holderIdentity;
    return holder ? holder : undefined;
  }

  onChange(listener: (leader: boolean) => void): () => void {
    return this.listeners.add(listener);
  }

  start(): void {
    if (this.running || this.closed) return;
    this.running = true;
    this.logger.info({ identity: this.identity, lease: this.client.description, ...this.timings }, "leader election: campaigning");
    this.schedule(0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.running = false;
    clearTimeout(this.timer);
    clearTimeout(this.deadlineTimer);
    await this.attempt;
    if (this.leader) await this.release();
  }

  /**
   * One attempt to acquire or renew (what the timer runs; tests call it directly).
   * Returns whether this replica holds the lease afterwards.
   */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.monotonicNow();
    const wall = this.wallNow();
    const fresh: LeaseRecord = { holderIdentity: this.identity, leaseDurationSeconds: this.timings.leaseDurationMs / 1000, acquireTime: wall, renewTime: wall, leaseTransitions: 0 };
    const current = await this.client.get();
    if (!current) {
      if (!(await this.client.create(fresh))) return false;
      this.observed = { record: fresh, resourceVersion: "", at: now, expiresAt: Infinity };
      this.lastRenewed = now;
      return true;
    }
    if (!this.observed || !sameRecord(this.observed.record, current.record)) {
      // When the read returned: the record was written before this instant.
      const seen = this.monotonicNow();
      this.observed = { record: current.record, resourceVersion: current.resourceVersion, at: seen, expiresAt: this.expiryOf(current.record, seen, this.wallNow()) };
    } else {
      this.observed.resourceVersion = current.resourceVersion;
    }
    const holder = current.record.holderIdentity;
    const heldByOther = holder !== "" && holder !== this.identity;
    if (heldByOther && this.untilObservedExpiry() > 0) return false;
    const next: LeaseRecord =
      holder === this.identity
        ? { ...fresh, acquireTime: current.record.acquireTime, leaseTransitions: current.record.leaseTransitions }
        : { ...fresh, leaseTransitions: current.record.leaseTransitions + 1 };
    if (!(await this.client.update(next, current.resourceVersion))) return false;
    this.observed = { record: next, resourceVersion: "", at: now, expiresAt: Infinity };
    this.lastRenewed = now;
    if (heldByOther) this.logger.info({ previous: holder, lease: this.client.description }, "leader election: took over a lease that was not renewed in time");
    return true;
  }

  /**
   * Monotonic time at which a record first returned by a read at `seen` (wall clock `wall`)
   * expires for this replica: its renewal, estimated from the holder's renewTime within what
   * the renew deadline leaves (see the header), plus the holder's lease duration.
   */
  private expiryOf(record: LeaseRecord, seen: number, wall: number): number {
    if (record.holderIdentity === "" || record.holderIdentity === this.identity) return Infinity;
    // The holder's own lease duration counts (another replica may run other settings).
    const durationMs = (record.leaseDurationSeconds > 0 ? record.leaseDurationSeconds : this.timings.leaseDurationMs / 1000) * 1000;
    const maxAgeMs = Math.max(0, durationMs - this.timings.renewDeadlineMs - TAKEOVER_SAFETY_MS);
    const age = Number.isFinite(record.renewTime) && record.renewTime > 0 ? Math.min(Math.max(wall - record.renewTime, 0), maxAgeMs) : 0;
    return seen - age + durationMs;
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.attempt = this.step().catch((err: unknown) => this.logger.error({ err: (err as Error).message }, "leader election step failed"));
    }, delayMs);
    this.timer.unref?.();
  }

  private async step(): Promise<void> {
    let holds = false;
    let timeout: NodeJS.Timeout | undefined;
    try {
      // A hung API call must not stop the loop (leadership itself is bounded by isLeader()).
      const timedOut = new Promise<never>((_resolve, reject) => {
        timeout = setTimeout(() => reject(new Error(`no answer within ${this.timings.renewDeadlineMs}ms`)), this.timings.renewDeadlineMs);
      });
      holds = await Promise.race([this.tryAcquireOrRenew(), timedOut]);
      this.lastError = "";
    } catch (err) {
      const message = (err as Error).message?.split("\n")[0] ?? String(err);
      if (message !== this.lastError) this.logger.warn({ lease: this.client.description, err: message }, "leader election: cannot read or write the lease; retrying");
      this.lastError = message;
    } finally {
      clearTimeout(timeout);
    }
    if (!this.running) return;
    if (holds) {
      this.setLeader(true);
      this.armRenewDeadline();
    } else if (this.leader && !this.withinRenewDeadline()) this.renewDeadlinePassed();
    // A leader renews every retry period; candidates add client-go's jitter, but wake up when the
    // lease they watch expires rather than up to a jittered period later (faster takeover).
    this.schedule(this.leader ? this.timings.retryPeriodMs : Math.min(this.timings.retryPeriodMs * (1 + this.random() * JITTER_FACTOR), this.untilObservedExpiry() + 10));
  }

  /** Milliseconds until the lease last seen held by another may be taken (Infinity when none is). */
  private untilObservedExpiry(): number {
    const observed = this.observed;
    if (!observed || observed.record.holderIdentity === "" || observed.record.holderIdentity === this.identity) return Infinity;
    return Math.max(0, observed.expiresAt - this.monotonicNow());
  }

  /** Listeners hear of a lost leadership at the renew deadline, even while an API call hangs. */
  private armRenewDeadline(): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => {
      if (this.leader && !this.withinRenewDeadline()) this.renewDeadlinePassed();
    }, Math.max(0, this.lastRenewed + this.timings.renewDeadlineMs - this.monotonicNow()) + 1);
    this.deadlineTimer.unref?.();
  }

  private renewDeadlinePassed(): void {
    this.logger.warn({ lease: this.client.description, renewDeadlineMs: this.timings.renewDeadlineMs }, "leader election: could not renew the lease within the renew deadline; no longer leader");
    this.setLeader(false);
  }

  private setLeader(leader: boolean): void {
    if (this.leader === leader) return;
    this.leader = leader;
    this.logger.info({ identity: this.identity, lease: this.client.description }, leader ? "leader election: this replica is now the leader" : "leader election: this replica is no longer the leader");
    this.listeners.notify(leader);
  }

  /** Gives the lease up (no holder, as client-go's ReleaseOnCancel), so the next candidate takes it at once. */
  private async release(): Promise<void> {
    this.setLeader(false);
    try {
      const current = await this.client.get();
      if (!current || current.record.holderIdentity !== this.identity) return;
      const wall = this.wallNow();
      const released: LeaseRecord = { holderIdentity: "", leaseDurationSeconds: 1, acquireTime: wall, renewTime: wall, leaseTransitions: current.record.leaseTransitions };
      if (await this.client.update(released, current.resourceVersion)) this.logger.info({ lease: this.client.description }, "leader election: released the lease");
    } catch (err) {
      this.logger.warn({ lease: this.client.description, err: (err as Error).message }, "leader election: could not release the lease; another replica takes over once it expires");
    }
  }
}
