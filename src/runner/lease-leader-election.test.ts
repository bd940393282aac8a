import { afterEach, describe, expect, it, vi } from "vitest";
import { silentLogger } from "../log/logger.js";
import { LeaseLeaderElection, checkLeaseTimings, type LeaseClient, type LeaseRecord, type StoredLease } from "./lease-leader-election.js";

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

  it("a lease not renewed is taken only once it has been unchanged for the lease duration (by the candidate's own clock)", async () => {
    const lease = new MemoryLease();
    const clock = { now: 0 };
    const a = elector(lease, "a", clock);
    const b = elector(lease, "b", clock);
    await a.tryAcquireOrRenew();
    clock.now = 1000;
    expect(await b.tryAcquireOrRenew()).toBe(false); // b first sees the record at t=1000
    // a dies. Even though renewTime says t=0, b counts from when it saw the record: 1000 + 15000.
    clock.now = 15_500;
    expect(await b.tryAcquireOrRenew()).toBe(false);
    clock.now = 16_000;
    expect(await b.tryAcquireOrRenew()).toBe(true);
    expect(lease.stored!.record.holderIdentity).toBe("b");
    expect(lease.stored!.record.leaseTransitions).toBe(1);
    // The old leader, back, finds it held by b.
    expect(await a.tryAcquireOrRenew()).toBe(false);
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
    expect(checkLeaseTimings(timings)).toEqual(timings);
  });
});
