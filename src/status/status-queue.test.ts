import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { silentLogger } from "../log/logger.js";
import { desiredStatus, type ResourceStatus } from "./resource-status.js";
import { StatusQueue, type StatusTarget, type WriteOutcome } from "./status-queue.js";
import { TokenBucket } from "./token-bucket.js";

const target = (name: string): StatusTarget => ({ key: `VirtualService/default/${name}`, kind: "VirtualService", namespace: "default", name });
const accepted = (generation = 1) => desiredStatus({ generation, issues: [], rejections: [] });
const rejected = (proxies: number, generation = 1) => desiredStatus({ generation, issues: [], rejections: [{ type: "rds", message: "regex 'x{9}' too big", proxies }] });

describe("TokenBucket", () => {
  it("lets a burst through, then one token per 1/rate seconds", () => {
    let t = 0;
    const bucket = new TokenBucket(2, 3, () => t);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
    expect(bucket.msUntilToken()).toBe(500);
    t = 499;
    expect(bucket.take()).toBe(false);
    t = 500;
    expect(bucket.take()).toBe(true);
    t = 100_000; // never more than the burst
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
  });

  it("refuses a rate or burst that cannot work", () => {
    expect(() => new TokenBucket(0, 1)).toThrow(/rate must be > 0/);
    expect(() => new TokenBucket(1, 0)).toThrow(/burst >= 1/);
  });
});

describe("StatusQueue", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function queue(opts: { rate?: number; burst?: number; maxInFlight?: number; fail?: (t: StatusTarget) => boolean; gone?: Set<string> } = {}) {
    const writes: { at: number; key: string; status: ResourceStatus }[] = [];
    const q = new StatusQueue({
      logger: silentLogger(),
      ratePerSecond: opts.rate ?? 10,
      burst: opts.burst ?? 2,
      maxInFlight: opts.maxInFlight ?? 4,
      retryMs: 100,
      write: async (t, status): Promise<WriteOutcome> => {
        await Promise.resolve();
        if (opts.fail?.(t)) throw new Error("apiserver unavailable");
        writes.push({ at: Date.now(), key: t.key, status });
        return opts.gone?.has(t.key) ? "gone" : "written";
      },
    });
    return { q, writes };
  }

  it("writes at most burst at once, then at the bucket's rate", async () => {
    const { q, writes } = queue({ rate: 10, burst: 2 });
    const start = Date.now();
    for (let i = 0; i < 6; i++) q.set(target(`vs${i}`), accepted());
    await vi.advanceTimersByTimeAsync(0);
    expect(writes).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(writes).toHaveLength(6);
    // 2 at once, then one every 100 ms.
    expect(writes.map((w) => w.at - start)).toEqual([0, 0, 100, 200, 300, 400]);
    expect(q.stats).toMatchObject({ writes: 6, pending: 0 });
  });

  it("coalesces per object: only the newest desired status of an object waiting for a token is written", async () => {
    const { q, writes } = queue({ rate: 1, burst: 1 });
    q.set(target("a"), accepted());
    await vi.advanceTimersByTimeAsync(0);
    q.set(target("b"), rejected(1));
    q.set(target("b"), rejected(2));
    q.set(target("b"), rejected(3));
    await vi.advanceTimersByTimeAsync(1000);
    expect(writes.map((w) => w.key)).toEqual(["VirtualService/default/a", "VirtualService/default/b"]);
    expect(writes[1]!.status.conditions[0]!.message).toContain("rejected by 3 proxies");
    expect(q.stats.coalesced).toBe(2);
  });

  it("does not rewrite an unchanged status, and keeps lastTransitionTime while the condition's status stays", async () => {
    const { q, writes } = queue();
    q.set(target("a"), rejected(1));
    await vi.advanceTimersByTimeAsync(0);
    const firstTime = writes[0]!.status.conditions[0]!.lastTransitionTime;
    expect(q.set(target("a"), rejected(1))).toBe("unchanged");
    await vi.advanceTimersByTimeAsync(5000);
    expect(writes).toHaveLength(1);
    q.set(target("a"), rejected(2)); // still False: same transition time
    await vi.advanceTimersByTimeAsync(100);
    expect(writes[1]!.status.conditions[0]!.lastTransitionTime).toBe(firstTime);
    q.set(target("a"), accepted()); // False -> True: a new transition time
    await vi.advanceTimersByTimeAsync(100);
    expect(writes[2]!.status.conditions[0]).toMatchObject({ status: "True", reason: "Accepted" });
    expect(writes[2]!.status.conditions[0]!.lastTransitionTime).not.toBe(firstTime);
    expect(q.stats).toMatchObject({ writes: 3, unchanged: 1 });
  });

  it("a status set back to what was written before its turn came is not written", async () => {
    const { q, writes } = queue({ rate: 1, burst: 1 });
    q.set(target("a"), accepted());
    await vi.advanceTimersByTimeAsync(0);
    q.set(target("a"), rejected(1));
    q.set(target("a"), accepted());
    await vi.advanceTimersByTimeAsync(3000);
    expect(writes).toHaveLength(1);
  });

  it("retries a failed write with backoff, unless a newer status replaced it", async () => {
    let failing = true;
    const { q, writes } = queue({ fail: () => failing });
    q.set(target("a"), rejected(1));
    await vi.advanceTimersByTimeAsync(0);
    expect(q.stats.failures).toBe(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(q.stats.failures).toBe(2); // retried after 100 ms
    failing = false;
    q.set(target("a"), rejected(5));
    await vi.advanceTimersByTimeAsync(1000);
    expect(writes).toHaveLength(1);
    expect(writes[0]!.status.conditions[0]!.message).toContain("rejected by 5 proxies");
  });

  it("writes nothing while not active (not the leader); after leading again every status is written anew", async () => {
    const { q, writes } = queue();
    q.set(target("a"), accepted());
    await vi.advanceTimersByTimeAsync(0);
    expect(writes).toHaveLength(1);
    q.setActive(false);
    q.set(target("a"), rejected(1));
    q.set(target("b"), accepted());
    await vi.advanceTimersByTimeAsync(1000);
    expect(writes).toHaveLength(1);
    q.setActive(true); // what waited is written
    await vi.advanceTimersByTimeAsync(1000);
    expect(writes.map((w) => w.key)).toEqual(["VirtualService/default/a", "VirtualService/default/a", "VirtualService/default/b"]);
    // Another replica may have written meanwhile: what was written before is not trusted.
    q.setActive(false);
    q.setActive(true);
    expect(q.set(target("b"), accepted())).toBe("queued");
  });

  it("forgets deleted objects and objects the API server no longer has", async () => {
    const { q, writes } = queue({ rate: 1, burst: 1, gone: new Set(["VirtualService/default/gone"]) });
    q.set(target("gone"), accepted());
    q.set(target("deleted"), accepted());
    await vi.advanceTimersByTimeAsync(0);
    q.retainOnly(new Set(["VirtualService/default/gone"]));
    await vi.advanceTimersByTimeAsync(3000);
    expect(writes.map((w) => w.key)).toEqual(["VirtualService/default/gone"]);
    expect(q.writtenStatus("VirtualService/default/gone")).toBeUndefined();
    expect(q.set(target("gone"), accepted())).toBe("queued"); // written again if it comes back
  });

  it("bounds writes in flight", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let inFlight = 0;
    let most = 0;
    const q = new StatusQueue({
      logger: silentLogger(), ratePerSecond: 1000, burst: 1000, maxInFlight: 3,
      write: async () => {
        most = Math.max(most, ++inFlight);
        await gate;
        inFlight--;
        return "written";
      },
    });
    for (let i = 0; i < 10; i++) q.set(target(`vs${i}`), accepted());
    await vi.advanceTimersByTimeAsync(10);
    expect(most).toBe(3);
    release();
    await vi.advanceTimersByTimeAsync(10);
    await q.idle();
    expect(q.stats.writes).toBe(10);
    expect(most).toBe(3);
  });
});
