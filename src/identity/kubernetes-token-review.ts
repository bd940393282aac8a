// Checks Kubernetes ServiceAccount tokens with TokenReview (authentication.k8s.io/v1), as
// istiod does for its sidecars, with what a control plane serving thousands of sidecars needs
// in front of the API server:
//
// - a cache keyed by the token's SHA-256 (the token itself is never kept): an answer is reused
//   until the token's own `exp` or `maxTtlMs` (default 60 s), whichever comes first; refusals
//   for `negativeTtlMs` (default 5 s), so a client repeating a bad token costs one review;
//   at most `maxEntries` (default 10,000) entries, the oldest dropped first;
// - coalescing: concurrent checks of one token share one review;
// - a rate limit towards the API server (token bucket, default 50 reviews/s, burst 100) and at
//   most `maxConcurrent` (default 8) in flight; at most `maxWaiting` (default 1000) checks wait
//   for their turn, more are refused at once (the proxy retries);
// - a timeout per review (default 10 s).
//
// What a review proves is a ServiceAccount (username system:serviceaccount:<ns>:<sa>) and, for a
// token bound to a pod, that pod's name and uid (extra authentication.kubernetes.io/pod-name and
// pod-uid). Metrics: weft_tokenreview_* (see README "Identity on Kubernetes").
import { createHash } from "node:crypto";
import { AuthenticationV1Api, type KubeConfig } from "@kubernetes/client-node";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** The part of a TokenReview's status Weft reads. */
export interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; extra?: Record<string, string[]> };
  audiences?: string[];
  error?: string;
}

/** Sends one TokenReview (the API server call); see tokenReviewClient. */
export type SendTokenReview = (token: string, audiences: string[]) => Promise<TokenReviewStatus>;

/** A token the API server vouched for. */
export interface ReviewedToken {
  namespace: string;
  serviceAccount: string;
  /** The ServiceAccount's uid (the review's user uid), when the API server gives it. */
  serviceAccountUid?: string;
  /** Set for a token bound to a pod (projected tokens are). */
  pod?: { name: string; uid: string };
}

export type ReviewOutcome = { ok: true; token: ReviewedToken } | { ok: false; reason: string };

export interface TokenReviewerOptions {
  /** The audience a token must carry (Weft's; default "istio-ca", Istio's). */
  audience?: string;
  maxEntries?: number;
  maxTtlMs?: number;
  negativeTtlMs?: number;
  reviewsPerSecond?: number;
  burst?: number;
  maxConcurrent?: number;
  maxWaiting?: number;
  timeoutMs?: number;
  metrics?: Registry;
  now?: () => number;
}

export const DEFAULT_TOKEN_AUDIENCE = "istio-ca";
export const TOKEN_REVIEW_DEFAULTS = {
  maxEntries: 10_000,
  maxTtlMs: 60_000,
  negativeTtlMs: 5_000,
  reviewsPerSecond: 50,
  burst: 100,
  maxConcurrent: 8,
  maxWaiting: 1000,
  timeoutMs: 10_000,
} as const;
/** Longest token accepted for review (projected tokens are ~1 KB). */
export const MAX_TOKEN_BYTES = 16 * 1024;

const SA_PREFIX = "system:serviceaccount:";
export const POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name";
export const POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid";

interface Entry {
  outcome: ReviewOutcome;
  expiresAt: number;
}

/** The `exp` claim of a JWT (unverified: only used to bound how long a review is reused), in ms. */
export function tokenExpiry(token: string): number | undefined {
  const payload = token.split(".")[1];
  if (!payload) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { exp?: unknown }).exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** What a review's answer proves, or why it proves nothing. */
export function interpretReview(status: TokenReviewStatus, audience: string): ReviewOutcome {
  if (!status.authenticated) return { ok: false, reason: `the API server did not authenticate the token${status.error ? `: ${status.error.slice(0, 200)}` : ""}` };
  if (status.audiences && !status.audiences.includes(audience)) return { ok: false, reason: `the token is not for audience "${audience}"` };
  const username = status.user?.username ?? "";
  if (!username.startsWith(SA_PREFIX)) return { ok: false, reason: `the token is not a ServiceAccount's (user "${username.slice(0, 100)}")` };
  const [namespace, serviceAccount, ...rest] = username.slice(SA_PREFIX.length).split(":");
  if (!namespace || !serviceAccount || rest.length > 0) return { ok: false, reason: `unexpected ServiceAccount user name "${username.slice(0, 100)}"` };
  const podName = status.user?.extra?.[POD_NAME_EXTRA]?.[0];
  const podUid = status.user?.extra?.[POD_UID_EXTRA]?.[0];
  const uid = status.user?.uid;
  return { ok: true, token: { namespace, serviceAccount, ...(typeof uid === "string" && uid !== "" ? { serviceAccountUid: uid.slice(0, 128) } : {}), ...(podName && podUid ? { pod: { name: podName, uid: podUid } } : {}) } };
}

export class TokenReviewer {
  readonly audience: string;
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<ReviewOutcome>>();
  private readonly o: Required<Omit<TokenReviewerOptions, "metrics" | "audience" | "now">>;
  private readonly now: () => number;
  private tokens: number;
  private refilledAt: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private wakeTimer?: NodeJS.Timeout;
  private readonly m?: { reviews: Counter; seconds: Histogram; lookups: Counter; entries: Gauge; throttled: Counter };

  constructor(
    private readonly send: SendTokenReview,
    opts: TokenReviewerOptions = {},
  ) {
    this.audience = opts.audience ?? DEFAULT_TOKEN_AUDIENCE;
    const d = TOKEN_REVIEW_DEFAULTS;
    this.o = {
      maxEntries: opts.maxEntries ?? d.maxEntries,
      maxTtlMs: opts.maxTtlMs ?? d.maxTtlMs,
      negativeTtlMs: opts.negativeTtlMs ?? d.negativeTtlMs,
      reviewsPerSecond: opts.reviewsPerSecond ?? d.reviewsPerSecond,
      burst: opts.burst ?? d.burst,
      maxConcurrent: opts.maxConcurrent ?? d.maxConcurrent,
      maxWaiting: opts.maxWaiting ?? d.maxWaiting,
      timeoutMs: opts.timeoutMs ?? d.timeoutMs,
    };
    this.now = opts.now ?? Date.now;
    this.tokens = this.o.burst;
    this.refilledAt = this.now();
    if (opts.metrics) {
      const registers = [opts.metrics];
      this.m = {
        reviews: new Counter({ name: "weft_tokenreview_requests_total", help: "TokenReviews sent to the API server, by result (authenticated, refused, error)", labelNames: ["result"], registers }),
        seconds: new Histogram({ name: "weft_tokenreview_duration_seconds", help: "time the API server took to answer a TokenReview", buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers }),
        lookups: new Counter({ name: "weft_tokenreview_cache_total", help: "token checks by how they were answered: hit (cached), coalesced (shared a review in flight), miss (reviewed)", labelNames: ["outcome"], registers }),
        entries: new Gauge({ name: "weft_tokenreview_cache_entries", help: "token reviews cached", registers }),
        throttled: new Counter({ name: "weft_tokenreview_throttled_total", help: "token checks refused because too many were waiting for the API server", registers }),
      };
    }
  }

  /** Number of cached answers (tests, metrics). */
  get cachedCount(): number {
    return this.cache.size;
  }

  /** What a token proves (cached, coalesced, rate-limited). Rejects only when the API server cannot answer. */
  async review(token: string): Promise<ReviewOutcome> {
    if (!token || token.length > MAX_TOKEN_BYTES) return { ok: false, reason: token ? `token longer than ${MAX_TOKEN_BYTES} bytes` : "no token" };
    const key = createHash("sha256").update(token).digest("hex");
    const now = this.now();
    const hit = this.cache.get(key);
    if (hit && hit.expiresAt > now) {
      this.m?.lookups.inc({ outcome: "hit" });
      return hit.outcome;
    }
    if (hit) this.cache.delete(key);
    const pending = this.inflight.get(key);
    if (pending) {
      this.m?.lookups.inc({ outcome: "coalesced" });
      return pending;
    }
    this.m?.lookups.inc({ outcome: "miss" });
    const promise = this.reviewNow(token, key).finally(() => this.inflight.delete(key));
    this.inflight.set(key, promise);
    return promise;
  }

  /** Forgets every cached answer about a pod (it was deleted: its tokens are void). */
  forgetPod(uid: string): void {
    for (const [k, e] of this.cache) if (e.outcome.ok && e.outcome.token.pod?.uid === uid) this.cache.delete(k);
    this.m?.entries.set(this.cache.size);
  }

  /** Forgets every cached answer about a ServiceAccount (it was deleted: its tokens are void). */
  forgetServiceAccount(namespace: string, name: string): void {
    for (const [k, e] of this.cache) if (e.outcome.ok && e.outcome.token.namespace === namespace && e.outcome.token.serviceAccount === name) this.cache.delete(k);
    this.m?.entries.set(this.cache.size);
  }

  close(): void {
    clearTimeout(this.wakeTimer);
    this.cache.clear();
  }

  private async reviewNow(token: string, key: string): Promise<ReviewOutcome> {
    await this.turn();
    const started = this.now();
    const t0 = process.hrtime.bigint();
    let status: TokenReviewStatus;
    try {
      let timer: NodeJS.Timeout | undefined;
      status = await Promise.race([
        this.send(token, [this.audience]),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`TokenReview took longer than ${this.o.timeoutMs} ms`)), this.o.timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
    } catch (err) {
      this.m?.reviews.inc({ result: "error" });
      throw err;
    } finally {
      this.m?.seconds.observe(Number(process.hrtime.bigint() - t0) / 1e9);
      this.release();
    }
    const outcome = interpretReview(status, this.audience);
    this.m?.reviews.inc({ result: outcome.ok ? "authenticated" : "refused" });
    const exp = tokenExpiry(token);
    const ttl = outcome.ok ? this.o.maxTtlMs : this.o.negativeTtlMs;
    const expiresAt = Math.min(started + ttl, outcome.ok && exp !== undefined ? exp : Infinity);
    if (expiresAt > this.now()) {
      while (this.cache.size >= this.o.maxEntries) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, { outcome, expiresAt });
      this.m?.entries.set(this.cache.size);
    }
    return outcome;
  }

  /** Waits for a free slot and a rate token; throws when too many wait already. */
  private turn(): Promise<void> {
    if (this.waiting.length === 0 && this.tryTake()) return Promise.resolve();
    if (this.waiting.length >= this.o.maxWaiting) {
      this.m?.throttled.inc();
      return Promise.reject(new Error(`${this.waiting.length} token reviews are waiting for the API server already`));
    }
    return new Promise<void>((resolve) => {
      this.waiting.push(resolve);
      this.wake();
    });
  }

  private tryTake(): boolean {
    const now = this.now();
    this.tokens = Math.min(this.o.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.o.reviewsPerSecond);
    this.refilledAt = now;
    if (this.running >= this.o.maxConcurrent || this.tokens < 1) return false;
    this.tokens -= 1;
    this.running++;
    return true;
  }

  private release(): void {
    this.running--;
    this.wake();
  }

  /** Lets waiting checks go as slots and rate allow; re-arms itself while some must wait for the rate. */
  private wake(): void {
    while (this.waiting.length > 0 && this.tryTake()) this.waiting.shift()!();
    clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    if (this.waiting.length > 0 && this.running < this.o.maxConcurrent) {
      const ms = Math.max(1, Math.ceil(((1 - this.tokens) / this.o.reviewsPerSecond) * 1000));
      this.wakeTimer = setTimeout(() => this.wake(), ms);
      this.wakeTimer.unref();
    }
  }
}

/** Sends TokenReviews with a cluster client (Weft's identity needs `create` on tokenreviews). */
export function tokenReviewClient(kubeConfig: KubeConfig): SendTokenReview {
  const api = kubeConfig.makeApiClient(AuthenticationV1Api);
  return async (token, audiences) => {
    try {
      const review = await api.createTokenReview({ body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token, audiences } } });
      return review.status ?? {};
    } catch (err) {
      const code = (err as { code?: number }).code;
      throw new Error(code === 403 ? "Weft may not create tokenreviews (grant it the ClusterRole system:auth-delegator)" : `TokenReview failed: ${(err as Error).message.split("\n")[0]!.slice(0, 200)}`);
    }
  };
}
