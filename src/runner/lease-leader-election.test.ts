import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { silentLogger } from "../log/logger.js";
import { DEFAULT_LEASE_TIMINGS, LeaseLeaderElection, checkLeaseTimings, type LeaseClient, type LeaseRecord, type StoredLease } from "./lease-leader-election.js";

/** One Lease in memory with resourceVersion conflicts, as the apiserver keeps it. */
class MemoryLease {
  stored: StoredLease | undefined;
  private version = 0;
  /** While true every call fails (the apiserver is unreachable). */
  down = false;

  client(): LeaseClient {
    return {
      description: "Lease test/weft",
      get: async () => {
        if (this.down) throw new Error("connect ECONNREFUSED");
        return this.stored ? { record: { ...this.stored.record }, resourceVersion: this.stored.resourceVersion } : undefined;
      },
      create: async (record: LeaseRecord) => {
        if (this.down) throw new Error("connect ECONNREFUSED");
        if (this.stored) return false;
        this.stored = { record: { ...record }, resourceVersion: String(++this.version) };
        return true;
      },
      update: async (record: LeaseRecord, resourceVersion: string) => {
        if (this.down) throw new Error("connect ECONNREFUSED");
        if (!this.stored || this.stored.resourceVersion !== resourceVersion) return false;
        this.stored = { record: { ...record }, resourceVersion: String(++this.version) };
        return true;
      },
    };
  }
}

const timings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

function elector(lease: MemoryLease, identity: string, clock: { now: number }): LeaseLeaderElection {
  return new LeaseLeaderElection({ client: lease.client(), identity, timings, logger: silentLogger(), monotonicNow: () => clock.now, wallNow: () => 1_700_000_000_000 + clock.now, random: () => 0 });
}

describe("LeaseLeaderElection (one attempt at a time)", () => {
  it("the first candidate creates the Lease and leads; another stays follower while it renews", async () => {
    const lease = new MemoryLease();
    const clock = { now: 0 };
    const a = elector(lease, "a", clock);
    const b = elector(lease, "b", clock);
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(lease.stored!.record.holderIdentity).toBe("a");
    for (let t = 1; t <= 30; t++) {
      clock.now = t * 2000;
      expect(await a.tryAcquireOrRenew()).toBe(true);
      expect(await b.tryAcquireOrRenew()).toBe(false);
    }
    expect(b.leaderIdentity()).toBe("a");
    expect(lease.stored!.record.leaseTransitions).toBe(0);
  });

  it("a dead holder's lease is taken at its renewTime + lease duration when the clocks agree, not when the candidate happened to see it", async () => {
    const lease = new MemoryLease();
    const clock = { now: 0 };
    const a = elector(lease, "a", clock);
    const b = elector(lease, "b", clock);
    await a.tryAcquireOrRenew(); // renewTime t=0
    clock.now = 3000;
    expect(await b.tryAcquireOrRenew()).toBe(false); // b first sees the record 3 s after the renewal
    // a dies. client-go's rule (count from when it was seen) would wait until 3000 + 15000.
    clock.now = 14_990;
    expect(await b.tryAcquireOrRenew()).toBe(false);
    clock.now = 15_000;
    expect(await b.tryAcquireOrRenew()).toBe(true);
    expect(lease.stored!.record.holderIdentity).toBe("b");
    expect(lease.stored!.record.leaseTransitions).toBe(1);
    // The old leader, back, finds it held by b.
    expect(await a.tryAcquireOrRenew()).toBe(false);
  });

  it("a holder's clock ahead of the candidate's: counted from when the candidate saw the renewal (client-go's rule)", async () => {
    const lease = new MemoryLease();
    const clock = { now: 0 };
    const a = new LeaseLeaderElection({ client: lease.client(), identity: "a", timings, logger: silentLogger(), monotonicNow: () => clock.now, wallNow: () => 1_700_000_000_000 + clock.now + 60_000, random: () => 0 });
    const b = elector(lease, "b", clock);
    await a.tryAcquireOrRenew();
    clock.now = 3000;
    expect(await b.tryAcquireOrRenew()).toBe(false);
    clock.now = 17_990;
    expect(await b.tryAcquireOrRenew()).toBe(false);
    clock.now = 18_000;
    expect(await b.tryAcquireOrRenew()).toBe(true);
  });

  it("a holder's clock far behind: the candidate counts at most leaseDuration - renewDeadline - 1 s before it saw the renewal", async () => {
    const lease = new MemoryLease();
    const clock = { now: 0 };
    const a = new LeaseLeaderElection({ client: lease.client(), identity: "a", timings, logger: silentLogger(), monotonicNow: () => clock.now, wallNow: () => 1_700_000_000_000 + clock.now - 3_600_000, random: () => 0 });
    const b = elector(lease, "b", clock);
    await a.tryAcquireOrRenew();
    clock.now = 500;
    expect(await b.tryAcquireOrRenew()).toBe(false); // renewTime says an hour ago; believed: 4 s ago at most
    clock.now = 11_490;
    expect(await b.tryAcquireOrRenew()).toBe(false);
    expect(a.isLeader()).toBe(false); // a stopped leading at its renew deadline (10 s), before b may take over
    clock.now = 11_500;
    expect(await b.tryAcquireOrRenew()).toBe(true);
  });

  it("whatever the clock skew and when candidates read, a candidate never takes a lease before the holder's renew deadline + 1 s", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: -600_000, max: 600_000 }), fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 0, max: 3 }), async (skewMs, readGaps, renewals) => {
        const lease = new MemoryLease();
        const clock = { now: 0 };
        const a = new LeaseLeaderElection({ client: lease.client(), identity: "a", timings, logger: silentLogger(), monotonicNow: () => clock.now, wallNow: () => 1_700_000_000_000 + clock.now + skewMs, random: () => 0 });
        const b = elector(lease, "b", clock);
        let lastRenewal = 0;
        expect(await a.tryAcquireOrRenew()).toBe(true);
        for (let i = 0; i < renewals; i++) {
          clock.now += timings.retryPeriodMs;
          lastRenewal = clock.now;
          expect(await a.tryAcquireOrRenew()).toBe(true);
        }
        // a dies after its last renewal; b reads at random moments, then every 100 ms.
        for (const gap of readGaps) {
          clock.now += gap;
          if (await b.tryAcquireOrRenew()) break;
        }
        const randomReadsEnded = clock.now;
        while (!b.isLeader() && !(lease.stored!.record.holderIdentity === "b")) {
          clock.now += 100;
          await b.tryAcquireOrRenew();
        }
        const tookOver = clock.now;
        expect(tookOver).toBeGreaterThanOrEqual(lastRenewal + timings.renewDeadlineMs + 1000);
        // And never later than client-go's rule (seen + lease duration) plus the 100 ms polling.
        expect(tookOver).toBeLessThanOrEqual(lastRenewal + readGaps.reduce((x, y) => x + y, 0) + timings.leaseDurationMs + 100);
        // With clocks in agreement: at the renewal + lease duration (or later when b first read the
        // lease more than leaseDuration - renewDeadline - 1 s after the renewal).
        if (skewMs === 0) expect(tookOver).toBeLessThanOrEqual(Math.max(lastRenewal + Math.max(0, readGaps[0]! - 4000) + timings.leaseDurationMs, randomReadsEnded) + 100);
      }),
      { numRuns: 200 },
    );
  });

  it("a leader whose renewals stopped is no longer leader at its renew deadline, even before its next attempt", async () => {
    const lease = new MemoryLease();
    const clock = { now: 0 };
    const a = elector(lease, "a", clock);
    await a.tryAcquireOrRenew();
    (a as unknown as { leader: boolean }).leader = true; // as step() sets it
    clock.now = timings.renewDeadlineMs - 1;
    expect(a.isLeader()).toBe(true);
    clock.now = timings.renewDeadlineMs;
    expect(a.isLeader()).toBe(false);
  });

  it("two candidates racing for a free Lease: exactly one wins", async () => {
    const lease = new MemoryLease();
    const clock = { now: 0 };
    const results = await Promise.all(["a", "b", "c"].map((id) => elector(lease, id, clock).tryAcquireOrRenew()));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it("a lease written with no holder (released) is taken at once", async () => {
    const lease = new MemoryLease();
    const clock = { now: 0 };
    const b = elector(lease, "b", clock);
    lease.stored = { record: { holderIdentity: "", leaseDurationSeconds: 1, acquireTime: 0, renewTime: 0, leaseTransitions: 4 }, resourceVersion: "7" };
    expect(await b.tryAcquireOrRenew()).toBe(true);
    expect(lease.stored.record.leaseTransitions).toBe(5);
  });
});

describe("LeaseLeaderElection (running)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("tells listeners; a closing leader releases the lease and the other takes over within a retry period", async () => {
    vi.useFakeTimers();
    const lease = new MemoryLease();
    const clock = { get now() { return Date.now(); } };
    const a = elector(lease, "a", clock);
    const b = elector(lease, "b", clock);
    const changes: string[] = [];
    a.onChange((l) => changes.push(`a:${l}`));
    b.onChange((l) => changes.push(`b:${l}`));
    a.start();
    await vi.advanceTimersByTimeAsync(100);
    b.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    await a.close();
    expect(lease.stored!.record.holderIdentity).toBe("");
    const released = Date.now();
    while (!b.isLeader() && Date.now() - released < 20_000) await vi.advanceTimersByTimeAsync(100);
    // A candidate waits retryPeriod x (1 + jitter); random() is 0 here.
    expect(Date.now() - released).toBeLessThanOrEqual(timings.retryPeriodMs);
    expect(changes).toEqual(["a:true", "a:false", "b:true"]);
    await b.close();
  });

  it("a leader that cannot renew for the renew deadline steps down before the lease expires for others", async () => {
    vi.useFakeTimers();
    const lease = new MemoryLease();
    const clock = { get now() { return Date.now(); } };
    const a = elector(lease, "a", clock);
    const b = elector(lease, "b", clock);
    a.start();
    b.start();
    await vi.advanceTimersByTimeAsync(5000);
    expect(a.isLeader()).toBe(true);
    // a alone loses the apiserver: b keeps reading through its own client.
    const aClientDown = new MemoryLease();
    aClientDown.down = true;
    (a as unknown as { client: LeaseClient }).client = aClientDown.client();
    const cut = Date.now();
    let aSteppedDown = 0;
    let bTookOver = 0;
    while ((!aSteppedDown || !bTookOver) && Date.now() - cut < 40_000) {
      await vi.advanceTimersByTimeAsync(100);
      if (!aSteppedDown && !a.isLeader()) aSteppedDown = Date.now() - cut;
      if (!bTookOver && b.isLeader()) bTookOver = Date.now() - cut;
    }
    expect(aSteppedDown).toBeGreaterThan(0);
    expect(aSteppedDown).toBeLessThanOrEqual(timings.renewDeadlineMs + timings.retryPeriodMs);
    expect(bTookOver).toBeGreaterThan(aSteppedDown); // never two leaders at once
    expect(bTookOver).toBeLessThanOrEqual(timings.leaseDurationMs + timings.retryPeriodMs * 2);
    await a.close();
    await b.close();
  });
});

describe("checkLeaseTimings", () => {
  it("refuses a renew deadline not below the lease duration, and a retry period too close to the deadline", () => {
    expect(() => checkLeaseTimings({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2000 })).toThrow(/lease duration .* must be longer than the renew deadline/);
    expect(() => checkLeaseTimings({ leaseDurationMs: 15_000, renewDeadlineMs: 2000, retryPeriodMs: 2000 })).toThrow(/renew deadline/);
    expect(() => checkLeaseTimings({ leaseDurationMs: 10_000, renewDeadlineMs: 9500, retryPeriodMs: 2000 })).toThrow(/at least 1000ms longer than the renew deadline/);
    expect(checkLeaseTimings(timings)).toEqual(timings);
    expect(checkLeaseTimings(DEFAULT_LEASE_TIMINGS)).toEqual(DEFAULT_LEASE_TIMINGS);
  });
});
