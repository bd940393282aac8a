// A bound on response bytes in flight (written, not yet answered by an ACK or NACK) across
// all streams: thousands of proxies connecting at once would otherwise have every snapshot
// encoded and queued in the transport at the same time (measured: 6 GB for 2000 proxies of
// 2 MB each). Streams wait for room before they push; the answer or the stream's end gives
// the room back.
//
// A stream that stops answering must not hold room others need (500 streams that never read
// once delayed a well-behaved proxy's update by 41.5 s). So a response unanswered for `holdMs`
// (`unreadHoldMs` if the client has not even read it) stops counting against the budget and
// counts as overdue instead. Overdue bytes are bounded
// too: above `limitBytes` of them no stream may push until a cut is made, and the stream
// of the oldest overdue response whose bytes the client has not read for `holdMs` is cut off
// (its owner ends it), which frees them. A client that is slow but still reading (a loaded
// machine during a connection storm) is not cut for being 1 s behind: measured, 15-26 of 200
// SotW proxies were cut per initial sync at load 20 when any overdue unread response could be.
// Bytes a client read but did not answer are no longer in this process; the stream's stall
// timeout ends it.

/** The stream a response belongs to, as the budget sees it. */
export interface BudgetOwner {
  /** Whether this response's bytes are still queued here (the client has not read them). */
  unread(): boolean;
  /** Ends the stream: the client holds too many bytes unread for too long. */
  cutOff(unreadMs: number): void;
}

interface Entry {
  bytes: number;
  takenAt: number;
  owner?: BudgetOwner;
  overdueSince?: number;
  timer?: NodeJS.Timeout;
}

export class PushBudget {
  private inflight = 0;
  private overdue = 0;
  /** Overdue entries, oldest first (Set iteration follows insertion order). */
  private readonly overdueEntries = new Set<Entry>();
  private readonly waiters = new Set<() => void>();
  /** A pending second look at overdue entries too young to cut when the bound was passed. */
  private recheck?: NodeJS.Timeout;
  /** Waiters are being woken (see wakeIfRoom). */
  private waking?: NodeJS.Immediate;

  constructor(
    readonly limitBytes: number,
    private readonly holdMs = 5_000,
    private readonly onChange: (bytesInFlight: number, bytesOverdue: number) => void = () => undefined,
    unreadHoldMs = 1_000,
  ) {
    this.unreadHoldMs = Math.min(unreadHoldMs, holdMs);
  }

  private readonly unreadHoldMs: number;

  get bytesInFlight(): number {
    return this.inflight;
  }

  get bytesOverdue(): number {
    return this.overdue;
  }

  /** Room for another response (one response may exceed the rest of the room). */
  get available(): boolean {
    // Above the overdue bound, nothing pushes while a cut is pending (bounded memory, no cut of a slow reader).
    return this.inflight < this.limitBytes && (this.overdue <= this.limitBytes || this.recheck === undefined);
  }

  /** Counts `bytes` as in flight; the returned function gives them back (once). */
  take(bytes: number, owner?: BudgetOwner): () => void {
    const entry: Entry = { bytes, owner, takenAt: Date.now() };
    this.inflight += bytes;
    this.changed();
    let released = false;
    // First look when an unread response would be overdue; a read one gets the rest of holdMs.
    entry.timer = setTimeout(() => {
      if (owner?.unread() || this.unreadHoldMs >= this.holdMs) return this.makeOverdue(entry);
      entry.timer = setTimeout(() => this.makeOverdue(entry), this.holdMs - this.unreadHoldMs);
      entry.timer.unref();
    }, this.unreadHoldMs);
    entry.timer.unref();
    return () => {
      if (released) return;
      released = true;
      clearTimeout(entry.timer);
      if (entry.overdueSince !== undefined) {
        this.overdue -= bytes;
        this.overdueEntries.delete(entry);
        this.changed();
        this.wakeIfRoom();
      } else {
        this.inflight -= bytes;
        this.changed();
        this.wakeIfRoom();
      }
    };
  }

  /**
   * Calls `wake` once when there is room again (on a later turn of the event loop, oldest
   * waiter first). A `wake` that pushes should do so before it returns: the next waiter is
   * woken only if there is still room then.
   */
  waitForRoom(wake: () => void): void {
    this.waiters.add(wake);
  }

  forget(wake: () => void): void {
    this.waiters.delete(wake);
  }

  private makeOverdue(entry: Entry): void {
    entry.overdueSince = Date.now();
    this.inflight -= entry.bytes;
    this.overdue += entry.bytes;
    this.overdueEntries.add(entry);
    this.changed();
    this.cutOverdue();
    this.wakeIfRoom();
  }

  /**
   * While overdue bytes exceed the limit, ends the stream of the oldest overdue response left
   * unread for `holdMs`; younger ones get a second look when the oldest of them reaches it.
   */
  private cutOverdue(): void {
    if (this.overdue <= this.limitBytes) return;
    const now = Date.now();
    let nextDueFrom: number | undefined; // when the oldest entry too young to cut was taken
    for (const entry of [...this.overdueEntries]) {
      if (this.overdue <= this.limitBytes) return;
      if (!this.overdueEntries.has(entry) || !entry.owner?.unread()) continue;
      const unreadMs = now - entry.takenAt;
      if (unreadMs < this.holdMs) {
        nextDueFrom ??= entry.takenAt;
        continue;
      }
      // The owner ends its stream, which releases this entry (and its others).
      entry.owner.cutOff(unreadMs);
    }
    if (nextDueFrom !== undefined && this.overdue > this.limitBytes && !this.recheck) {
      this.recheck = setTimeout(() => {
        this.recheck = undefined;
        this.cutOverdue();
        this.wakeIfRoom();
      }, nextDueFrom + this.holdMs - now);
      this.recheck.unref();
    }
  }

  /**
   * Wakes waiters one at a time while there is room. Waking every waiter on each release had
   * 2000 syncing streams wake (and find no room) for each of the ~8000 responses answered:
   * 16 M wake-ups, ~3.5 s of a 30 s initial sync's CPU (bench/results/sync-2000.md).
   */
  private wakeIfRoom(): void {
    if (!this.available || this.waiters.size === 0 || this.waking) return;
    this.waking = setImmediate(() => {
      this.waking = undefined;
      try {
        for (const wake of this.waiters) {
          if (!this.available) return;
          this.waiters.delete(wake);
          wake();
        }
      } finally {
        // A wake that threw, or waiters added while there is still room: another round.
        this.wakeIfRoom();
      }
    });
  }

  private changed(): void {
    this.onChange(this.inflight, this.overdue);
  }
}
