// Leader election over a coordination.k8s.io/v1 Lease, with client-go's rules
// (k8s.io/client-go/tools/leaderelection):
//
// - Every `retryPeriod` a candidate reads the Lease. A Lease held by another is taken only once
//   it has not changed for `leaseDuration`, measured on this replica's own monotonic clock from
//   when it last saw the record change (never by comparing clocks across machines). A free
//   Lease (no holder) is taken at once.
// - The leader renews every `retryPeriod`; when no renewal succeeded for `renewDeadline`
//   (< leaseDuration) it stops being leader before anyone else may take over.
// - Writes carry the resourceVersion read: two candidates racing for one Lease cannot both win.
// - close() of a leader writes the Lease with no holder, so another replica takes over within a
//   retry period instead of a lease duration (SIGTERM, rolling updates).
//
// The Kubernetes calls are behind `LeaseClient` (src/sources/kubernetes/lease-client.ts is the
// real one); unit tests use an in-memory one.
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

export const DEFAULT_LEASE_TIMINGS: LeaseTimings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** client-go's JitterFactor: candidates wait retryPeriod * (1 + up to 1.2). */
const JITTER_FACTOR = 1.2;

/** Throws a message naming the setting unless leaseDuration > renewDeadline > retryPeriod * 1.2 (client-go's checks). */
export function checkLeaseTimings(t: LeaseTimings): LeaseTimings {
  if (!(t.retryPeriodMs >= 100)) throw new Error(`lease retry period must be at least 100ms, got ${t.retryPeriodMs}ms`);
  if (!(t.renewDeadlineMs > t.retryPeriodMs * JITTER_FACTOR)) {
    throw new Error(`lease renew deadline (${t.renewDeadlineMs}ms) must be longer than ${JITTER_FACTOR} x the retry period (${t.retryPeriodMs}ms)`);
  }
  if (!(t.leaseDurationMs > t.renewDeadlineMs)) throw new Error(`lease duration (${t.leaseDurationMs}ms) must be longer than the renew deadline (${t.renewDeadlineMs}ms)`);
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
  /** The record last read and when (monotonic) it was first seen in that form. */
  private observed: { record: LeaseRecord; resourceVersion: string; at: number } | undefined;
  /** Monotonic time of the last successful acquire or renew. */
  private lastRenewed = 0;
  private timer: NodeJS.Timeout | undefined;
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
    return this.leader;
  }

  leaderIdentity(): string | undefined {
    if (this.leader) return this.identity;
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
      this.observed = { record: fresh, resourceVersion: "", at: now };
      this.lastRenewed = now;
      return true;
    }
    if (!this.observed || !sameRecord(this.observed.record, current.record)) {
      this.observed = { record: current.record, resourceVersion: current.resourceVersion, at: now };
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
    this.observed = { record: next, resourceVersion: "", at: now };
    this.lastRenewed = now;
    if (heldByOther) this.logger.info({ previous: holder, lease: this.client.description }, "leader election: took over a lease that was not renewed in time");
    return true;
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
    try {
      holds = await this.tryAcquireOrRenew();
      this.lastError = "";
    } catch (err) {
      const message = (err as Error).message?.split("\n")[0] ?? String(err);
      if (message !== this.lastError) this.logger.warn({ lease: this.client.description, err: message }, "leader election: cannot read or write the lease; retrying");
      this.lastError = message;
    }
    if (!this.running) return;
    if (holds) this.setLeader(true);
    else if (this.leader && this.monotonicNow() - this.lastRenewed >= this.timings.renewDeadlineMs) {
      this.logger.warn({ lease: this.client.description, renewDeadlineMs: this.timings.renewDeadlineMs }, "leader election: could not renew the lease within the renew deadline; no longer leader");
      this.setLeader(false);
    }
    // A leader renews every retry period; candidates add client-go's jitter, but wake up when the
    // lease they watch expires rather than up to a jittered period later (faster takeover).
    this.schedule(this.leader ? this.timings.retryPeriodMs : Math.min(this.timings.retryPeriodMs * (1 + this.random() * JITTER_FACTOR), this.untilObservedExpiry() + 10));
  }

  /** Milliseconds until the lease last seen held by another may be taken (Infinity when none is). */
  private untilObservedExpiry(): number {
    const observed = this.observed;
    if (!observed || observed.record.holderIdentity === "" || observed.record.holderIdentity === this.identity) return Infinity;
    // The holder's own lease duration counts (another replica may run other settings).
    const durationMs = (observed.record.leaseDurationSeconds > 0 ? observed.record.leaseDurationSeconds : this.timings.leaseDurationMs / 1000) * 1000;
    return Math.max(0, observed.at + durationMs - this.monotonicNow());
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
