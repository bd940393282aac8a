// List + watch of one resource type, the way client-go's reflector does it, with records
// kept small: a paged list (500 objects per page), then a watch from the list's
// resourceVersion with bookmarks. Every object is turned into a record as it arrives and the
// object is dropped. A watch that ends is resumed from the last resourceVersion seen; while the
// API server is away, attempts back off (1 s doubling to 30 s, with jitter) and the records
// already held stay as they are. When the API server says the resourceVersion is too old
// (410 Gone), the reflector reports "not synced", lists again, and swaps the whole set in one
// step (`replace`) — the owner never sees an emptied or half-listed set.
import type { Logger } from "../../log/logger.js";

/** What a list page looks like (KubernetesObjectApi.list and the typed list calls). */
export interface ListPage {
  items: unknown[];
  metadata?: { resourceVersion?: string; _continue?: string; continue?: string };
}

/** The list and watch calls a reflector needs; the Kubernetes source binds them to a client. */
export interface ListWatchClient {
  list(page: { limit: number; continueToken?: string }): Promise<ListPage>;
  /** Starts a watch; resolves to a function that stops it. `done` is called once when it ends. */
  watch(
    params: { resourceVersion: string; allowWatchBookmarks: true; timeoutSeconds: number },
    onEvent: (type: string, object: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<() => void>;
}

export interface ReflectorHandler<R> {
  /** The whole set after a (re)list, in one step. */
  replace(records: R[]): void;
  upsert(record: R): void;
  remove(object: { namespace: string; name: string }): void;
  /** Synced state changed (true after a complete list, false while relisting after 410). */
  syncedChanged(synced: boolean): void;
}

export interface ReflectorOptions<R> {
  /** Resource name for logs and errors, e.g. "pods" or "virtualservices.networking.istio.io". */
  resource: string;
  client: ListWatchClient;
  toRecord: (object: unknown) => R | undefined;
  handler: ReflectorHandler<R>;
  logger: Logger;
  pageSize?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Kinds that may be absent from a cluster (Istio CRDs): a 404 means "none", checked again later. */
  optional?: boolean;
}

export const DEFAULT_PAGE_SIZE = 500;
const NOT_SERVED_RETRY_MS = 30_000;

export function statusCodeOf(err: unknown): number | undefined {
  if (!err || typeof err !== "object") return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === "number") return e.code;
  if (typeof e.statusCode === "number") return e.statusCode;
  return undefined;
}

function isNotServed(err: unknown): boolean {
  return statusCodeOf(err) === 404 || (err instanceof Error && /Unrecognized API version and kind/i.test(err.message));
}

function shortError(err: unknown): string {
  const code = statusCodeOf(err);
  let message = err instanceof Error ? err.message.split("\n")[0]! : String(err);
  // undici says "fetch failed" and keeps the reason (ECONNREFUSED, a TLS error) in `cause`.
  const cause = err instanceof Error ? (err.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (cause && typeof cause.message === "string") message += ` (${typeof cause.code === "string" ? `${cause.code}: ` : ""}${cause.message.split("\n")[0]})`;
  return code !== undefined ? `HTTP ${code}: ${message.replace(/^HTTP-Code: \d+\s*/, "")}`.slice(0, 300) : message.slice(0, 300);
}

function metaOf(object: unknown): { name: string; namespace: string; resourceVersion: string } | undefined {
  const m = (object as { metadata?: { name?: unknown; namespace?: unknown; resourceVersion?: unknown } } | null)?.metadata;
  if (!m || typeof m.name !== "string") return undefined;
  return { name: m.name, namespace: typeof m.namespace === "string" ? m.namespace : "", resourceVersion: typeof m.resourceVersion === "string" ? m.resourceVersion : "" };
}

export class Reflector<R> {
  private resourceVersion = "";
  private synced = false;
  private stopped = false;
  private stopWatch: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private backoffMs: number;
  /** Counters for metrics and tests. */
  readonly stats = { lists: 0, relistsAfterGone: 0, watches: 0, events: 0, errors: 0, dropped: 0 };
  /** Set while a watch ended with 410 Gone (its ERROR event arrives before the stream ends). */
  private gone = false;
  private notServedLogged = false;

  constructor(private readonly opts: ReflectorOptions<R>) {
    this.backoffMs = opts.initialBackoffMs ?? 1000;
  }

  get isSynced(): boolean {
    return this.synced;
  }

  get lastResourceVersion(): string {
    return this.resourceVersion;
  }

  start(): void {
    this.stopped = false;
    void this.list();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const stop = this.stopWatch;
    this.stopWatch = undefined;
    stop?.();
  }

  private setSynced(synced: boolean): void {
    if (this.synced === synced) return;
    this.synced = synced;
    this.opts.handler.syncedChanged(synced);
  }

  private retry(what: () => void, delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(what, delayMs);
  }

  private nextBackoff(): number {
    const base = this.backoffMs;
    this.backoffMs = Math.min(base * 2, this.opts.maxBackoffMs ?? 30_000);
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  private async list(): Promise<void> {
    if (this.stopped) return;
    const records: R[] = [];
    let continueToken: string | undefined;
    let resourceVersion = "";
    try {
      do {
        const page = await this.opts.client.list({ limit: this.opts.pageSize ?? DEFAULT_PAGE_SIZE, ...(continueToken ? { continueToken } : {}) });
        if (this.stopped) return;
        for (const item of page.items ?? []) {
          const record = this.opts.toRecord(item);
          if (record) records.push(record);
          else this.stats.dropped++;
        }
        continueToken = page.metadata?._continue ?? page.metadata?.continue ?? undefined;
        resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      } while (continueToken);
    } catch (err) {
      if (this.stopped) return;
      this.stats.errors++;
      if (this.opts.optional && isNotServed(err)) {
        // The CRD is not installed: nothing of this kind exists. Look again later.
        if (!this.notServedLogged) this.opts.logger.warn({ resource: this.opts.resource }, `${this.opts.resource} is not served by this cluster (CRD not installed?); treating it as empty and checking again every ${NOT_SERVED_RETRY_MS / 1000} s`);
        this.notServedLogged = true;
        this.opts.handler.replace([]);
        this.setSynced(true);
        this.retry(() => void this.list(), NOT_SERVED_RETRY_MS);
        return;
      }
      const code = statusCodeOf(err);
      const delay = this.nextBackoff();
      const hint = code === 403 ? `; Weft's service account needs "list" and "watch" on ${this.opts.resource}` : code === 401 ? "; the credentials were refused" : "";
      this.opts.logger.error({ resource: this.opts.resource, err: shortError(err), retryInMs: delay }, `cannot list ${this.opts.resource}${hint}; keeping what was read before and retrying`);
      this.retry(() => void this.list(), delay);
      return;
    }
    this.notServedLogged = false;
    this.stats.lists++;
    this.resourceVersion = resourceVersion;
    this.opts.handler.replace(records);
    this.setSynced(true);
    this.backoffMs = this.opts.initialBackoffMs ?? 1000;
    void this.watch();
  }

  private async watch(): Promise<void> {
    if (this.stopped) return;
    this.gone = false;
    this.stats.watches++;
    let ended = false;
    const done = (err: unknown): void => {
      if (ended) return;
      ended = true;
      this.stopWatch = undefined;
      if (this.stopped) return;
      if (this.gone || statusCodeOf(err) === 410) {
        this.stats.relistsAfterGone++;
        this.opts.logger.info({ resource: this.opts.resource, resourceVersion: this.resourceVersion }, `watch of ${this.opts.resource} expired (410 Gone); listing again, holding the current config until the list is complete`);
        this.setSynced(false);
        this.resourceVersion = "";
        void this.list();
        return;
      }
      const timedOut = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
      if (err && !timedOut) {
        this.stats.errors++;
        const delay = this.nextBackoff();
        this.opts.logger.warn({ resource: this.opts.resource, err: shortError(err), retryInMs: delay }, `watch of ${this.opts.resource} failed; keeping the current config and retrying`);
        this.retry(() => void this.watch(), delay);
        return;
      }
      // A normal end (server timeout or idle client timeout): resume at once from where we were.
      this.retry(() => void this.watch(), 0);
    };
    const onEvent = (type: string, object: unknown): void => {
      if (ended || this.stopped) return;
      this.stats.events++;
      if (type === "ERROR") {
        if (statusCodeOf(object) === 410) this.gone = true;
        return;
      }
      const meta = metaOf(object);
      if (!meta) return;
      if (meta.resourceVersion) this.resourceVersion = meta.resourceVersion;
      // A watch that delivers events is healthy: the next failure starts from the shortest backoff.
      this.backoffMs = this.opts.initialBackoffMs ?? 1000;
      if (type === "BOOKMARK") return;
      if (type === "DELETED") {
        this.opts.handler.remove(meta);
        return;
      }
      const record = this.opts.toRecord(object);
      if (record) this.opts.handler.upsert(record);
      else {
        this.stats.dropped++;
        this.opts.handler.remove(meta);
      }
    };
    try {
      const stop = await this.opts.client.watch(
        { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 240 + Math.floor(Math.random() * 120) },
        onEvent,
        done,
      );
      if (ended || this.stopped) stop();
      else this.stopWatch = stop;
    } catch (err) {
      done(err);
    }
  }
}
