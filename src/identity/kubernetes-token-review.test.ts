import { afterEach, describe, expect, it, vi } from "vitest";
import { Registry } from "prom-client";
import { TokenReviewer, interpretReview, tokenExpiry, type TokenReviewStatus } from "./kubernetes-token-review.js";

/** A JWT-shaped token (unsigned: only the reviewer's exp parsing looks inside). */
function jwt(claims: Record<string, unknown>, tag = ""): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "ES256" })}.${part({ ...claims, tag })}.sig`;
}

const ok = (ns = "bookinfo", sa = "reviews", pod?: { name: string; uid: string }): TokenReviewStatus => ({
  authenticated: true,
  audiences: ["istio-ca"],
  user: { username: `system:serviceaccount:${ns}:${sa}`, ...(pod ? { extra: { "authentication.kubernetes.io/pod-name": [pod.name], "authentication.kubernetes.io/pod-uid": [pod.uid] } } : {}) },
});

/** A send function whose answers the test releases. */
function controlled() {
  const calls: { token: string; resolve: (s: TokenReviewStatus) => void; reject: (e: Error) => void }[] = [];
  const send = vi.fn((token: string) => new Promise<TokenReviewStatus>((resolve, reject) => calls.push({ token, resolve, reject })));
  return { send, calls };
}

const flush = () => new Promise((r) => setImmediate(r));

afterEach(() => {
  vi.useRealTimers();
});

describe("interpretReview", () => {
  it("reads the ServiceAccount and the bound pod", () => {
    expect(interpretReview(ok("ns1", "sa1", { name: "p", uid: "u-1" }), "istio-ca")).toEqual({ ok: true, token: { namespace: "ns1", serviceAccount: "sa1", pod: { name: "p", uid: "u-1" } } });
    expect(interpretReview(ok("ns1", "sa1"), "istio-ca")).toEqual({ ok: true, token: { namespace: "ns1", serviceAccount: "sa1" } });
  });

  it("refuses unauthenticated answers, other audiences and users that are not ServiceAccounts", () => {
    expect(interpretReview({ authenticated: false, error: "token has expired" }, "istio-ca")).toMatchObject({ ok: false, reason: expect.stringContaining("token has expired") });
    expect(interpretReview({ ...ok(), audiences: ["other"] }, "istio-ca")).toMatchObject({ ok: false, reason: expect.stringContaining('audience "istio-ca"') });
    expect(interpretReview({ authenticated: true, user: { username: "alice" } }, "istio-ca")).toMatchObject({ ok: false });
    expect(interpretReview({ authenticated: true, user: { username: "system:serviceaccount:ns" } }, "istio-ca")).toMatchObject({ ok: false });
    expect(interpretReview({ authenticated: true, user: { username: "system:serviceaccount:ns:sa:x" } }, "istio-ca")).toMatchObject({ ok: false });
  });

  it("tokenExpiry reads exp and ignores garbage", () => {
    expect(tokenExpiry(jwt({ exp: 1234 }))).toBe(1_234_000);
    expect(tokenExpiry("not-a-jwt")).toBeUndefined();
    expect(tokenExpiry("a.%%%.c")).toBeUndefined();
  });
});

describe("TokenReviewer", () => {
  it("reuses an answer (cache hit) and counts hits and misses", async () => {
    const registry = new Registry();
    const send = vi.fn(async () => ok());
    const r = new TokenReviewer(send, { metrics: registry });
    const token = jwt({ exp: Date.now() / 1000 + 600 });
    for (let i = 0; i < 5; i++) expect((await r.review(token)).ok).toBe(true);
    expect(send).toHaveBeenCalledTimes(1);
    const text = await registry.metrics();
    expect(text).toMatch(/weft_tokenreview_cache_total\{outcome="hit"\} 4/);
    expect(text).toMatch(/weft_tokenreview_cache_total\{outcome="miss"\} 1/);
    expect(text).toMatch(/weft_tokenreview_requests_total\{result="authenticated"\} 1/);
  });

  it("concurrent checks of one token share one review", async () => {
    const { send, calls } = controlled();
    const r = new TokenReviewer(send);
    const token = jwt({ exp: Date.now() / 1000 + 600 });
    const all = Promise.all(Array.from({ length: 20 }, () => r.review(token)));
    await flush();
    expect(send).toHaveBeenCalledTimes(1);
    calls[0]!.resolve(ok());
    expect((await all).every((o) => o.ok)).toBe(true);
  });

  it("an answer is reused no longer than the token's exp, nor maxTtlMs", async () => {
    let now = 1_000_000;
    const send = vi.fn(async () => ok());
    const r = new TokenReviewer(send, { now: () => now, maxTtlMs: 60_000 });
    const shortLived = jwt({ exp: (now + 10_000) / 1000 }, "short");
    const longLived = jwt({ exp: (now + 3_600_000) / 1000 }, "long");
    await r.review(shortLived);
    await r.review(longLived);
    now += 9_000;
    await r.review(shortLived);
    await r.review(longLived);
    expect(send).toHaveBeenCalledTimes(2);
    now += 2_000; // past the short token's exp
    await r.review(shortLived);
    expect(send).toHaveBeenCalledTimes(3);
    now += 50_000; // past maxTtlMs for the long one
    await r.review(longLived);
    expect(send).toHaveBeenCalledTimes(4);
  });

  it("refusals are cached briefly (negativeTtlMs)", async () => {
    let now = 0;
    const send = vi.fn(async () => ({ authenticated: false, error: "invalid" }));
    const r = new TokenReviewer(send, { now: () => now, negativeTtlMs: 5_000 });
    expect(await r.review("bad")).toMatchObject({ ok: false });
    expect(await r.review("bad")).toMatchObject({ ok: false });
    expect(send).toHaveBeenCalledTimes(1);
    now += 5_001;
    await r.review("bad");
    expect(send).toHaveBeenCalledTimes(2);
  });

  it("holds at most maxEntries answers, dropping the oldest", async () => {
    const send = vi.fn(async () => ok());
    const r = new TokenReviewer(send, { maxEntries: 3, burst: 100 });
    // One exp for all: a token re-made a millisecond later would be another token (exp is in it).
    const exp = Math.floor(Date.now() / 1000) + 600;
    for (let i = 0; i < 10; i++) await r.review(jwt({ exp }, `t${i}`));
    expect(r.cachedCount).toBe(3);
    await r.review(jwt({ exp }, "t9")); // newest: still cached
    expect(send).toHaveBeenCalledTimes(10);
    await r.review(jwt({ exp }, "t0")); // oldest: dropped
    expect(send).toHaveBeenCalledTimes(11);
  });

  it("forgetPod drops the answers about a deleted pod", async () => {
    const send = vi.fn(async (token: string) => ok("ns", "sa", { name: "p", uid: token.endsWith("1") ? "uid-1" : "uid-2" }));
    const r = new TokenReviewer(send);
    await r.review("tok-1");
    await r.review("tok-2");
    r.forgetPod("uid-1");
    expect(r.cachedCount).toBe(1);
    await r.review("tok-1");
    expect(send).toHaveBeenCalledTimes(3);
  });

  it("never has more than maxConcurrent reviews in flight", async () => {
    const { send, calls } = controlled();
    const r = new TokenReviewer(send, { maxConcurrent: 2 });
    const results = Array.from({ length: 5 }, (_, i) => r.review(`token-${i}`));
    await flush();
    expect(send).toHaveBeenCalledTimes(2);
    calls[0]!.resolve(ok());
    await flush();
    expect(send).toHaveBeenCalledTimes(3);
    for (let i = 1; i < 5; i++) {
      calls[i]!.resolve(ok());
      await flush();
    }
    expect(send).toHaveBeenCalledTimes(5);
    expect((await Promise.all(results)).every((o) => o.ok)).toBe(true);
  });

  it("sends at most `burst` reviews at once, then reviewsPerSecond", async () => {
    vi.useFakeTimers();
    const send = vi.fn(async () => ok());
    const r = new TokenReviewer(send, { burst: 3, reviewsPerSecond: 2, maxConcurrent: 100 });
    const results = Array.from({ length: 7 }, (_, i) => r.review(`token-${i}`));
    await vi.advanceTimersByTimeAsync(0);
    expect(send).toHaveBeenCalledTimes(3);
    await vi.advanceTimersByTimeAsync(1000);
    expect(send).toHaveBeenCalledTimes(5);
    await vi.advanceTimersByTimeAsync(1000);
    expect(send).toHaveBeenCalledTimes(7);
    expect((await Promise.all(results)).every((o) => o.ok)).toBe(true);
  });

  it("refuses at once when maxWaiting checks wait already", async () => {
    const registry = new Registry();
    const { send } = controlled();
    const r = new TokenReviewer(send, { maxConcurrent: 1, maxWaiting: 2, metrics: registry });
    void r.review("a");
    void r.review("b").catch(() => undefined);
    void r.review("c").catch(() => undefined);
    await expect(r.review("d")).rejects.toThrow(/waiting for the API server/);
    expect(await registry.metrics()).toMatch(/weft_tokenreview_throttled_total 1/);
  });

  it("a review the API server does not answer in time rejects, and is not cached", async () => {
    vi.useFakeTimers();
    const { send, calls } = controlled();
    const r = new TokenReviewer(send, { timeoutMs: 1000 });
    const p = r.review("slow");
    const failed = expect(p).rejects.toThrow(/longer than 1000 ms/);
    await vi.advanceTimersByTimeAsync(1001);
    await failed;
    calls[0]!.resolve(ok());
    void r.review("slow");
    await vi.advanceTimersByTimeAsync(0);
    expect(send).toHaveBeenCalledTimes(2);
  });

  it("refuses empty and oversized tokens without a review", async () => {
    const send = vi.fn(async () => ok());
    const r = new TokenReviewer(send);
    expect(await r.review("")).toMatchObject({ ok: false });
    expect(await r.review("x".repeat(20_000))).toMatchObject({ ok: false, reason: expect.stringContaining("longer") });
    expect(send).not.toHaveBeenCalled();
  });
});
