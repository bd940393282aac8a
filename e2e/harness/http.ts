// HTTP client helpers for e2e tests. Every request uses a fresh connection (no keep-alive),
// so each one goes through Envoy's current listener and route config.

import { request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpGetOptions {
  headers?: OutgoingHttpHeaders;
  /** Whole request, connect to last body byte. Default 5000. */
  timeoutMs?: number;
}

/** GET `url`. Resolves for any status; rejects on connection errors and timeouts. */
export function httpGet(url: string, opts: HttpGetOptions = {}): Promise<HttpResponse> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "GET", headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("error", reject);
      res.on("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") });
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`GET ${url}: no complete response within ${timeoutMs} ms`)), timeoutMs);
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}

export interface RequestLoopOptions extends HttpGetOptions {
  url: string;
  /** Exactly this many requests are sent, one after another. */
  count: number;
  /** Pause between requests. Default 0. */
  intervalMs?: number;
  /** Response header to tally (see `byHeader` in the result). Default "x-upstream". */
  countHeader?: string;
}

export interface RequestLoopResult {
  sent: number;
  /** status code -> responses */
  statuses: Record<number, number>;
  /** Requests that got no response (refused, reset, timed out). */
  errors: number;
  /** Up to 5 distinct error messages, for assertion messages. */
  errorMessages: string[];
  /** Value of `countHeader` -> responses (e.g. which upstream served them). */
  byHeader: Record<string, number>;
}

/** Sends `count` sequential GETs and tallies the outcome; never throws, always ends. */
export async function requestLoop(opts: RequestLoopOptions): Promise<RequestLoopResult> {
  const header = (opts.countHeader ?? "x-upstream").toLowerCase();
  const result: RequestLoopResult = { sent: 0, statuses: {}, errors: 0, errorMessages: [], byHeader: {} };
  for (let i = 0; i < opts.count; i++) {
    if (i > 0 && opts.intervalMs) await sleep(opts.intervalMs);
    result.sent++;
    try {
      const res = await httpGet(opts.url, opts);
      result.statuses[res.status] = (result.statuses[res.status] ?? 0) + 1;
      const value = res.headers[header];
      if (value !== undefined) {
        const key = Array.isArray(value) ? value.join(",") : value;
        result.byHeader[key] = (result.byHeader[key] ?? 0) + 1;
      }
    } catch (err) {
      result.errors++;
      const message = err instanceof Error ? err.message : String(err);
      if (result.errorMessages.length < 5 && !result.errorMessages.includes(message)) result.errorMessages.push(message);
    }
  }
  return result;
}

/**
 * Polls `fn` until it returns `want` or `timeoutMs` passes (config changes reach Envoy
 * asynchronously); returns the last value, so the caller's expect shows what was seen.
 */
export async function eventually<T>(fn: () => Promise<T>, want: T, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last = await fn();
  while (last !== want && Date.now() < end) {
    await sleep(100);
    last = await fn();
  }
  return last;
}
