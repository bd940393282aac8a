// Reads connected proxies' own Envoy stats for the mesh console: GET <proxy>/stats/prometheus
// (the 15090 scrape listener every Weft bootstrap with a fixed admin port has), asking Envoy for
// the few families the console reads, and keeps each proxy's recent scrapes so a rate can be taken
// over a window. Scrapes happen when the console asks (at most one round per minIntervalMs,
// concurrent askers share it): nothing is scraped while nobody looks. Owned by the admin server.
//
// Bounds: answers over maxBytes are refused, each scrape has a timeout, at most `concurrency`
// scrapes run at once and at most maxTargets proxies are scraped; history is dropped for proxies
// that left and for scrapes older than the window.
import { request } from "node:http";
import { parsePrometheusText } from "../envoy/prometheus-text.js";
import { PROMETHEUS_STATS_PATH } from "../envoy/proxy-stats.js";
import { EDGE_FAMILIES, sourceTraffic, type ProxyScrape, type SourceTraffic } from "./edge-traffic.js";

export interface ScrapeTarget {
  /** The proxy (its node id). */
  key: string;
  host: string;
  port: number;
}

export interface ScraperOptions {
  /** Rates are taken over this window (default 30 s). */
  windowMs?: number;
  /** A new round of scrapes at most this often (default 2 s). */
  minIntervalMs?: number;
  timeoutMs?: number;
  maxBytes?: number;
  concurrency?: number;
  maxTargets?: number;
  /** Reads one target's text (tests replace it); default an HTTP GET of the scrape listener. */
  read?: (target: ScrapeTarget, opts: { timeoutMs: number; maxBytes: number }) => Promise<string>;
  now?: () => number;
}

export interface ProxyTraffic {
  url: string;
  /** The last scrape failed: why (the window's older scrapes are still used). */
  error?: string;
  scrapedAt?: string;
  traffic?: SourceTraffic;
}

/**
 * Envoy's admin `filter` (RE2 on the stat's full name) and `usedonly`: only stats the console
 * reads, only those that were ever written — a few kB per proxy instead of the whole scrape.
 */
export const SCRAPE_QUERY = `?usedonly&filter=${encodeURIComponent(String.raw`^(cluster\.outbound\|.*\.(upstream_rq_[0-9]{3}|upstream_rq_time|ssl\.handshake)|http\.outbound_.*\.downstream_rq_5xx)$`)}`;

export function scrapeUrl(t: Pick<ScrapeTarget, "host" | "port">): string {
  const host = t.host.includes(":") ? `[${t.host}]` : t.host;
  return `http://${host}:${t.port}${PROMETHEUS_STATS_PATH}`;
}

/** GET the scrape listener, refusing more than maxBytes. */
export function readScrape(target: ScrapeTarget, opts: { timeoutMs: number; maxBytes: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(scrapeUrl(target) + SCRAPE_QUERY, { method: "GET", timeout: opts.timeoutMs, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (d: Buffer) => {
        size += d.length;
        if (size > opts.maxBytes) {
          req.destroy(new Error(`answer over ${opts.maxBytes} bytes`));
          return;
        }
        chunks.push(d);
      });
      res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

interface History {
  target: ScrapeTarget;
  scrapes: ProxyScrape[];
  error?: string;
}

export class ProxyStatsScraper {
  private readonly history = new Map<string, History>();
  private round?: Promise<void>;
  private lastRoundAt = -Infinity;
  private readonly o: Required<ScraperOptions>;

  constructor(opts: ScraperOptions = {}) {
    this.o = {
      windowMs: opts.windowMs ?? 30_000,
      minIntervalMs: opts.minIntervalMs ?? 2_000,
      timeoutMs: opts.timeoutMs ?? 3_000,
      maxBytes: opts.maxBytes ?? 4 * 1024 * 1024,
      concurrency: opts.concurrency ?? 8,
      maxTargets: opts.maxTargets ?? 500,
      read: opts.read ?? readScrape,
      now: opts.now ?? Date.now,
    };
  }

  get windowMs(): number {
    return this.o.windowMs;
  }

  /** Scrapes every target, unless a round ran less than minIntervalMs ago (then it waits for that one). */
  refresh(targets: ScrapeTarget[]): Promise<void> {
    if (this.round) return this.round;
    if (this.o.now() - this.lastRoundAt < this.o.minIntervalMs) return Promise.resolve();
    this.lastRoundAt = this.o.now();
    this.round = this.scrapeAll(targets.slice(0, this.o.maxTargets)).finally(() => (this.round = undefined));
    return this.round;
  }

  private async scrapeAll(targets: ScrapeTarget[]): Promise<void> {
    const keys = new Set(targets.map((t) => t.key));
    for (const key of this.history.keys()) if (!keys.has(key)) this.history.delete(key);
    const queue = [...targets];
    const worker = async () => {
      for (let t = queue.shift(); t; t = queue.shift()) await this.scrapeOne(t);
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, queue.length) }, worker));
  }

  private async scrapeOne(target: ScrapeTarget): Promise<void> {
    let h = this.history.get(target.key);
    if (!h || h.target.host !== target.host || h.target.port !== target.port) this.history.set(target.key, (h = { target, scrapes: [] }));
    try {
      const text = await this.o.read(target, { timeoutMs: this.o.timeoutMs, maxBytes: this.o.maxBytes });
      const atMs = this.o.now();
      h.scrapes.push({ atMs, samples: parsePrometheusText(text, (name) => EDGE_FAMILIES.has(name)) });
      h.error = undefined;
      // Keep the window, and one scrape just older than it (the start of the rate).
      const start = atMs - this.o.windowMs;
      while (h.scrapes.length > 2 && h.scrapes[1]!.atMs <= start) h.scrapes.shift();
    } catch (err) {
      h.error = (err as Error).message.slice(0, 300);
    }
  }

  /** What the last scrapes of a proxy say (undefined: never scraped). */
  trafficOf(key: string): ProxyTraffic | undefined {
    const h = this.history.get(key);
    if (!h) return undefined;
    const newest = h.scrapes.at(-1);
    const oldest = h.scrapes.length > 1 ? h.scrapes[0] : undefined;
    return {
      url: scrapeUrl(h.target),
      ...(h.error ? { error: h.error } : {}),
      ...(newest ? { scrapedAt: new Date(newest.atMs).toISOString(), traffic: sourceTraffic(oldest, newest) } : {}),
    };
  }
}
