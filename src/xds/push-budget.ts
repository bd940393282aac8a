// A bound on response bytes in flight (written, not yet answered by an ACK or NACK) across
// all streams: thousands of proxies connecting at once would otherwise have every snapshot
// encoded and queued in the transport at the same time (measured: 6 GB for 2000 proxies of
// 2 MB each). Streams wait for room before they push; the answer, the stream's end, or at
// the latest `holdMs` gives the room back, so a proxy that never answers cannot starve others.
export class PushBudget {
  private inflight = 0;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly limitBytes: number,
    private readonly holdMs = 30_000,
    private readonly onChange: (bytesInFlight: number) => void = () => undefined,
  ) {}

  get bytesInFlight(): number {
    return this.inflight;
  }

  /** Room for another response (one response may exceed the rest of the room). */
  get available(): boolean {
    return this.inflight < this.limitBytes;
  }

  /** Counts `bytes` as in flight; the returned function gives them back (once). */
  take(bytes: number): () => void {
    this.inflight += bytes;
    this.onChange(this.inflight);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      this.inflight -= bytes;
      this.onChange(this.inflight);
      if (this.available) {
        const waiting = [...this.waiters];
        this.waiters.clear();
        for (const wake of waiting) wake();
      }
    };
    const timer = setTimeout(release, this.holdMs);
    timer.unref();
    return release;
  }

  /** Calls `wake` once when there is room again. */
  waitForRoom(wake: () => void): void {
    this.waiters.add(wake);
  }

  forget(wake: () => void): void {
    this.waiters.delete(wake);
  }
}
