// Status writes, batched and rate-limited: the desired status of each object is kept per
// object (a newer one replaces one not yet written: coalescing), dropped when it equals what
// was last written (no write for an unchanged status), and written through a token bucket with
// a bound on writes in flight. A failed write is retried with backoff unless a newer status
// replaced it; an object that is gone (404) is forgotten. Only runs while `active` (the leader).
import type { Logger } from "../log/logger.js";
import { statusFingerprint, withTransitionTimes, type ResourceStatus } from "./resource-status.js";
import { TokenBucket } from "./token-bucket.js";

export interface StatusTarget {
  /** Kind, namespace and name: "VirtualService/bookinfo/reviews". */
  key: string;
  kind: string;
  namespace: string;
  name: string;
}

export type WriteOutcome = "written" | "gone";

export interface StatusQueueOptions {
  write: (target: StatusTarget, status: ResourceStatus) => Promise<WriteOutcome>;
  logger: Logger;
  /** Sustained writes per second. Default 10. */
  ratePerSecond?: number;
  /** Writes allowed at once after a quiet time. Default 20. */
  burst?: number;
  /** Writes in flight at most. Default 4. */
  maxInFlight?: number;
  /** First retry delay of a failed write (doubles up to 30 s). Default 1000. */
  retryMs?: number;
  now?: () => number;
}

export interface StatusQueueStats {
  writes: number;
  /** Desired statuses equal to what was last written (no write). */
  unchanged: number;
  /** Desired statuses that replaced one not yet written. */
  coalesced: number;
  failures: number;
  pending: number;
}

interface Written {
  fingerprint: string;
  status: ResourceStatus;
}

export class StatusQueue {
  private readonly written = new Map<string, Written>();
  private readonly pending = new Map<string, { target: StatusTarget; status: ResourceStatus; fingerprint: string; notBefore: number; failures: number }>();
  private readonly inFlight = new Set<string>();
  private readonly bucket: TokenBucket;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private active = true;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  readonly stats: StatusQueueStats = { writes: 0, unchanged: 0, coalesced: 0, failures: 0, pending: 0 };

  constructor(private readonly opts: StatusQueueOptions) {
    this.now = opts.now ?? Date.now;
    this.bucket = new TokenBucket(opts.ratePerSecond ?? 10, opts.burst ?? 20, this.now);
  }

  /** Asks for `status` on `target`; "unchanged" when it is what was last written. */
  set(target: StatusTarget, status: ResourceStatus): "queued" | "unchanged" {
    const fingerprint = statusFingerprint(status);
    const queued = this.pending.get(target.key);
    if (this.written.get(target.key)?.fingerprint === fingerprint) {
      if (queued) this.pending.delete(target.key);
      this.stats.unchanged++;
      this.update();
      return "unchanged";
    }
    if (queued?.fingerprint === fingerprint) return "queued";
    if (queued) this.stats.coalesced++;
    this.pending.set(target.key, { target, status, fingerprint, notBefore: 0, failures: 0 });
    this.update();
    return "queued";
  }

  /** Forgets objects not in `keys` (deleted): nothing more is written for them. */
  retainOnly(keys: ReadonlySet<string>): void {
    for (const key of [...this.pending.keys()]) if (!keys.has(key)) this.pending.delete(key);
    for (const key of [...this.written.keys()]) if (!keys.has(key)) this.written.delete(key);
    this.update();
  }

  /**
   * Writes only while active (the leader); desired statuses set meanwhile wait (one per
   * object). Becoming inactive forgets what was written (another replica writes meanwhile):
   * on becoming active again the caller sets every object's status anew and it is written.
   */
  setActive(active: boolean): void {
    this.active = active;
    if (!active) this.written.clear();
    this.update();
  }

  /** What was last written for `key` (tests, debugging). */
  writtenStatus(key: string): ResourceStatus | undefined {
    return this.written.get(key)?.status;
  }

  /** Resolves once nothing is pending or in flight. */
  idle(): Promise<void> {
    if (this.pending.size === 0 && this.inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.pending.clear();
  }

  private update(): void {
    this.stats.pending = this.pending.size;
    if (this.pending.size === 0 && this.inFlight.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
    this.pump();
  }

  private pump(): void {
    if (this.closed || !this.active) return;
    const maxInFlight = this.opts.maxInFlight ?? 4;
    let nextAt = Infinity;
    for (const [key, item] of this.pending) {
      if (this.inFlight.size >= maxInFlight) return;
      if (this.inFlight.has(key)) continue;
      const t = this.now();
      if (item.notBefore > t) {
        nextAt = Math.min(nextAt, item.notBefore);
        continue;
      }
      if (!this.bucket.take()) {
        nextAt = Math.min(nextAt, t + this.bucket.msUntilToken());
        break;
      }
      this.pending.delete(key);
      this.inFlight.add(key);
      void this.writeOne(item);
    }
    this.stats.pending = this.pending.size;
    if (nextAt < Infinity) this.wakeAt(nextAt);
  }

  private wakeAt(at: number): void {
    if (this.timer && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.pump();
    }, Math.max(0, at - this.now()));
    this.timer.unref?.();
  }

  private async writeOne(item: { target: StatusTarget; status: ResourceStatus; fingerprint: string; notBefore: number; failures: number }): Promise<void> {
    const key = item.target.key;
    const status = withTransitionTimes(item.status, this.written.get(key)?.status, new Date(this.now()));
    try {
      const outcome = await this.opts.write(item.target, status);
      this.stats.writes++;
      if (outcome === "gone") this.written.delete(key);
      else if (this.active) this.written.set(key, { fingerprint: item.fingerprint, status });
    } catch (err) {
      this.stats.failures++;
      const failures = item.failures + 1;
      const delay = Math.min((this.opts.retryMs ?? 1000) * 2 ** (failures - 1), 30_000);
      this.opts.logger.warn({ object: key, err: (err as Error).message?.split("\n")[0], retryInMs: delay }, "cannot write status; retrying");
      // A newer desired status, set meanwhile, wins over the retry.
      if (!this.pending.has(key) && this.active && !this.closed) this.pending.set(key, { ...item, notBefore: this.now() + delay, failures });
    } finally {
      this.inFlight.delete(key);
      // A status set while this one was in flight may equal it: nothing left to write.
      const next = this.pending.get(key);
      if (next && next.fingerprint === this.written.get(key)?.fingerprint) this.pending.delete(key);
      this.update();
    }
  }
}
