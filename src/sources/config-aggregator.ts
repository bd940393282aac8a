// The ConfigAggregator: merges the snapshots of every config source into the one MeshConfig
// the mesh controller applies, and owns what all sources share:
//   - debouncing: sources say "changed" as often as they like; snapshots are taken once the
//     changes settle (quiet for debounceMs, but never postponed beyond maxDebounceMs);
//   - the last valid version of every resource: a resource that was valid and becomes invalid
//     (a schema error; a route to an undefined subset is only a warning, as in Istio) or unreadable (a
//     YAML syntax error, a file being rewritten) is not dropped; its last valid version stays
//     and the issue says so. A resource that is gone from a complete snapshot is removed;
//   - sync: a source that is not synced contributes its last synced snapshot (nothing before
//     its first), so a relist never pushes an emptied config; start() resolves once every
//     source has synced;
//   - merging: sources are read in the order given. A kind/namespace/name defined by two
//     sources (or twice in one) is taken from the first definition; the later one is rejected
//     with an error naming both places ("duplicate ...: already defined in ...");
//   - change detection: a reload that changes nothing (a comment, a resync) is not reported;
//   - a loud warning (log + issue) when one change removes a large share of a source's resources.
import { formatIssue, formatSource, isFileRef, issueSource, resourceKey, type MeshConfig, type Sourced, type ValidationIssue } from "../api/types.js";
import { validateMeshSteps, type InvalidResource } from "../api/validate-mesh.js";
import { runInSlices, runToEnd, type Steps } from "../work/work-steps.js";
import type { Logger } from "../log/logger.js";
import { placeCovers, placeOf, type ConfigSource, type SourceSnapshot } from "./config-source.js";

export interface ConfigAggregatorOptions {
  /** Quiet time after the last change event before sources are snapshotted again. Default 100 ms. */
  debounceMs?: number;
  /**
   * Longest a change waits while events keep coming (a tool rewriting files continuously
   * would otherwise postpone every reload forever). Default 1 s.
   */
  maxDebounceMs?: number;
  /**
   * Warn (log + issue) when one change removes at least this share (0..1) of the resources a
   * source had, and at least LARGE_REMOVAL_MIN_COUNT of them. Default 0.5; above 1 turns it off.
   */
  largeRemovalShare?: number;
  /**
   * CPU time (ms) a reload's merge and mesh-wide checks may use before giving the event loop
   * back (`weft serve`: DEFAULT_SLICE_MS). Unset: a reload runs in one piece.
   */
  sliceMs?: number;
  logger?: Logger;
}

export const DEFAULT_DEBOUNCE_MS = 100;
export const DEFAULT_MAX_DEBOUNCE_MS = 1000;
export const DEFAULT_LARGE_REMOVAL_SHARE = 0.5;
/** Below this many removed resources, no change counts as a large removal (small meshes edit freely). */
export const LARGE_REMOVAL_MIN_COUNT = 5;
/** How many removed names a large-removal warning lists. */
const LARGE_REMOVAL_NAMES_SHOWN = 5;

export class ConfigAggregator {
  /** The last valid version of each resource, by kind/namespace/name. */
  private readonly lastGood = new Map<string, Sourced>();
  /** The last synced snapshot of each source (by index); undefined until its first. */
  private readonly syncedSnapshots: (SourceSnapshot | undefined)[];
  /** Keys of the resources last applied, per source index (for the large-removal warning). */
  private appliedBySource: Set<string>[] | undefined;
  /** The config last reported (or returned by start), to tell whether a reload changed anything. */
  private lastReported: MeshConfig | undefined;
  private readonly debounceMs: number;
  private readonly maxDebounceMs: number;
  private readonly largeRemovalShare: number;
  private readonly sliceMs: number | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  /** When the first change event not yet reloaded arrived. */
  private pendingSince: number | undefined;
  private onChange: ((config: MeshConfig) => void) | undefined;
  /** While start() waits for every source to sync. */
  private startWaiter: { resolve: (config: MeshConfig) => void; reject: (err: Error) => void } | undefined;
  private reloading = false;
  private reloadAgain = false;
  private started = false;
  private closed = false;

  private readonly logger: Logger | undefined;

  constructor(
    readonly sources: readonly ConfigSource[],
    options: ConfigAggregatorOptions = {},
  ) {
    this.debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.maxDebounceMs = Math.max(this.debounceMs, options.maxDebounceMs ?? DEFAULT_MAX_DEBOUNCE_MS);
    this.largeRemovalShare = options.largeRemovalShare ?? DEFAULT_LARGE_REMOVAL_SHARE;
    this.sliceMs = options.sliceMs;
    this.syncedSnapshots = sources.map(() => undefined);
    this.logger = options.logger;
  }

  /** Whether every source has delivered a synced snapshot. */
  get synced(): boolean {
    return this.syncedSnapshots.every((s) => s !== undefined);
  }

  /**
   * Snapshots every source now and returns the checked, merged config; updates the last valid
   * versions. One-shot use (`weft validate`) needs nothing else: sources need not be started.
   */
  load(): MeshConfig {
    return runToEnd(this.loadSteps());
  }

  /** load() as steps: the snapshots are taken at once, the merge and mesh checks yield between pieces. */
  private *loadSteps(): Steps<MeshConfig> {
    for (let i = 0; i < this.sources.length; i++) this.takeSnapshot(i);
    return yield* this.mergeSteps();
  }

  /**
   * Starts every source, waits until each has synced, and returns the initial config.
   * Afterwards `onChange` is called (debounced) each time a change alters the resulting
   * config; changes that alter nothing (a comment, a rewrite with the same content, a resync)
   * are not reported.
   */
  async start(onChange: (config: MeshConfig) => void): Promise<MeshConfig> {
    if (this.started) throw new Error("the config aggregator is already started");
    if (this.closed) throw new Error("the config aggregator is closed");
    this.started = true;
    this.onChange = onChange;
    await Promise.all(this.sources.map((source) => source.start({ changed: () => this.scheduleReload() })));
    await this.prepareSources();
    const initial = this.load();
    if (this.synced) {
      this.lastReported = initial;
      return initial;
    }
    const waiting = this.sources.filter((_, i) => !this.syncedSnapshots[i]).map((s) => s.name);
    this.logger?.info({ sources: waiting }, "waiting for config sources to sync before serving configuration");
    return new Promise<MeshConfig>((resolve, reject) => {
      this.startWaiter = { resolve, reject };
    });
  }

  /** Stops every source and the debounce; no timers are left behind. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = undefined;
    this.startWaiter?.reject(new Error("the config aggregator was closed before every source synced"));
    this.startWaiter = undefined;
    await Promise.all(this.sources.map((s) => s.close()));
  }

  private takeSnapshot(index: number): void {
    const snapshot = this.sources[index]!.snapshot();
    if (snapshot.synced) this.syncedSnapshots[index] = snapshot;
  }

  private scheduleReload(): void {
    if (this.closed) return;
    clearTimeout(this.debounceTimer);
    const now = Date.now();
    this.pendingSince ??= now;
    const delay = Math.min(this.debounceMs, this.pendingSince + this.maxDebounceMs - now);
    this.debounceTimer = setTimeout(() => void this.reload(), Math.max(0, delay));
  }

  /** Lets each source do the expensive part of its next snapshot in pieces (ConfigSource.prepare). */
  private async prepareSources(): Promise<void> {
    for (const source of this.sources) {
      try {
        await source.prepare?.();
      } catch {
        // snapshot() reports whatever went wrong
      }
    }
  }

  /**
   * Snapshots (after the sources' prepare) and reports a change. One at a time: a change that
   * arrives meanwhile is reloaded after it.
   */
  private async reload(): Promise<void> {
    this.debounceTimer = undefined;
    this.pendingSince = undefined;
    if (this.closed) return;
    if (this.reloading) {
      this.reloadAgain = true;
      return;
    }
    this.reloading = true;
    try {
      await this.prepareSources();
      if (!this.closed) await this.reloadNow();
    } finally {
      this.reloading = false;
      if (this.reloadAgain && !this.closed) {
        this.reloadAgain = false;
        this.scheduleReload();
      }
    }
  }

  private async reloadNow(): Promise<void> {
    const config = this.sliceMs === undefined ? this.load() : await runInSlices(this.loadSteps(), this.sliceMs);
    if (this.closed) return;
    if (this.startWaiter) {
      if (!this.synced) return;
      const waiter = this.startWaiter;
      this.startWaiter = undefined;
      this.lastReported = config;
      waiter.resolve(config);
      return;
    }
    if (this.lastReported && sameConfig(this.lastReported, config)) return;
    this.lastReported = config;
    this.onChange?.(config);
  }

  /** Merges the last synced snapshot of every source; see the file comment for the rules. */
  private *mergeSteps(): Steps<MeshConfig> {
    const snapshots = this.syncedSnapshots;
    const issues: ValidationIssue[] = [];
    /** Notes to append to error messages ("keeping the last valid version ..."), by issue. */
    const notes = new Map<ValidationIssue, string[]>();
    const note = (list: readonly ValidationIssue[], text: string): void => {
      for (const issue of list) if (issue.severity === "error") notes.set(issue, [...(notes.get(issue) ?? []), text]);
    };

    /** Resources that exist but are invalid now (references to them say so). */
    const invalid: InvalidResource[] = [];
    const freshKeys = new Set<string>();
    for (const snap of snapshots) for (const e of snap?.entries ?? []) if (e.resource) freshKeys.add(e.key);
    const presentKeys = new Set(freshKeys);
    const retained = new Set<Sourced>();
    const candidates: Sourced[] = [];
    const sourceOfKey = new Map<string, number>();
    const keep = (good: Sourced, index: number): void => {
      candidates.push(good);
      retained.add(good);
      presentKeys.add(resourceKey(good.resource));
      if (!sourceOfKey.has(resourceKey(good.resource))) sourceOfKey.set(resourceKey(good.resource), index);
    };

    let read = 0;
    for (const [index, snap] of snapshots.entries()) {
      if (!snap) continue;
      for (const entry of snap.entries) {
        if (++read % ENTRIES_PER_STEP === 0) yield;
        issues.push(...entry.issues);
        if (!sourceOfKey.has(entry.key)) sourceOfKey.set(entry.key, index);
        if (entry.resource) {
          candidates.push({ resource: entry.resource, source: entry.source });
          continue;
        }
        // A resource that exists but is invalid now: keep its last valid version.
        presentKeys.add(entry.key);
        invalid.push({ key: entry.key, source: entry.source, hosts: entry.declaredHosts ?? [] });
        const good = this.lastGood.get(entry.key);
        if (!good || freshKeys.has(entry.key) || retained.has(good)) continue;
        keep(good, index);
        note(entry.issues, `keeping the last valid version (from ${formatSource(good.source)})`);
      }
      issues.push(...snap.issues);
      // Places that could not be read: keep the last valid versions that came from them and appear nowhere else.
      for (const { place, issues: why } of snap.unreadable) {
        const kept: string[] = [];
        for (const [key, good] of this.lastGood) {
          if (presentKeys.has(key) || !placeCovers(place, good.source)) continue;
          keep(good, index);
          kept.push(key);
        }
        if (kept.length > 0) note(why, `keeping the last valid version of ${listSome(kept)}`);
      }
    }
    yield;

    // Mesh checks: only a duplicate is an error (the later definition is dropped); references
    // to missing or invalid resources are warnings, and the resource applies as written.
    const mesh = yield* validateMeshSteps(candidates, undefined, invalid);
    issues.push(...mesh.issues);

    for (const key of [...this.lastGood.keys()]) if (!presentKeys.has(key)) this.lastGood.delete(key);
    for (const s of mesh.valid) this.lastGood.set(resourceKey(s.resource), s);
    yield;

    const annotated = issues.map((i) => {
      const extra = notes.get(i);
      return extra ? { ...i, message: [i.message, ...extra].join("; ") } : i;
    });
    annotated.push(...this.largeRemovals(mesh.valid, sourceOfKey));
    yield;
    return { resources: mesh.valid, issues: sortIssues(annotated) };
  }

  /** Warnings for sources that lost a large share of their resources in this change (logged too). */
  private largeRemovals(valid: Sourced[], sourceOfKey: Map<string, number>): ValidationIssue[] {
    const now = this.sources.map(() => new Set<string>());
    const allKeys = new Set<string>();
    for (const s of valid) {
      const key = resourceKey(s.resource);
      allKeys.add(key);
      now[sourceOfKey.get(key) ?? 0]?.add(key);
    }
    const before = this.appliedBySource;
    this.appliedBySource = now;
    if (!before || this.largeRemovalShare > 1) return [];
    const warnings: ValidationIssue[] = [];
    this.sources.forEach((source, index) => {
      const had = before[index]!;
      const removed = [...had].filter((k) => !allKeys.has(k));
      if (removed.length < LARGE_REMOVAL_MIN_COUNT || removed.length < this.largeRemovalShare * had.size) return;
      const percent = Math.round((100 * removed.length) / had.size);
      const shown = listSome(removed, LARGE_REMOVAL_NAMES_SHOWN);
      const message =
        `this change removes ${removed.length} of the ${had.size} resources read from ${source.name} (${percent}%): ${shown}; ` +
        `if that is not intended (a file rewritten or emptied, a directory replaced), restore them — proxies already have the smaller config ` +
        `(warning threshold ${Math.round(this.largeRemovalShare * 100)}% of a source's resources, at least ${LARGE_REMOVAL_MIN_COUNT})`;
      const issue: ValidationIssue = { ...source.origin, resource: "(mesh)", field: LARGE_REMOVAL_FIELD, message, severity: "warning" };
      this.logger?.warn({ source: source.name, removed: removed.length, had: had.size }, formatIssue(issue));
      warnings.push(issue);
    });
    return warnings;
  }
}

/** "A, B, C and 7 more": a message names a bounded number of resources. */
function listSome(keys: string[], shown = KEPT_NAMES_SHOWN): string {
  return keys.slice(0, shown).join(", ") + (keys.length > shown ? ` and ${keys.length - shown} more` : "");
}

/** Source entries merged between two steps of a sliced reload. */
const ENTRIES_PER_STEP = 256;

/** How many kept resources a "keeping the last valid version of ..." note names. */
const KEPT_NAMES_SHOWN = 10;

/** The `field` of a large-removal warning. */
export const LARGE_REMOVAL_FIELD = "(large removal)";

/** Issues grouped by place (file, object), then document; within a document, in the order found. */
function sortIssues(issues: ValidationIssue[]): ValidationIssue[] {
  const place = (i: ValidationIssue) => placeOf(issueSource(i));
  const document = (i: ValidationIssue) => (isFileRef(i) ? i.document : 0);
  return [...issues].sort((a, b) => compareStrings(place(a), place(b)) || document(a) - document(b));
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * What decides "the config changed": resources (with where they come from) and issues,
 * without the one-off large-removal warning. Compared element by element: a resource from a
 * file that did not change is the same object in both and is not serialized at all (a whole
 * 20 MB config serialized took ~30% of a one-line edit's CPU).
 */
function sameConfig(a: MeshConfig, b: MeshConfig): boolean {
  const issues = (c: MeshConfig) => c.issues.filter((i) => i.field !== LARGE_REMOVAL_FIELD);
  const same = (x: unknown, y: unknown) => x === y || stableStringify(x) === stableStringify(y);
  const sameSourced = (x: Sourced, y: Sourced) => x === y || (same(x.resource, y.resource) && same(x.source, y.source));
  const [ia, ib] = [issues(a), issues(b)];
  return a.resources.length === b.resources.length && ia.length === ib.length && a.resources.every((r, i) => sameSourced(r, b.resources[i]!)) && ia.every((x, i) => same(x, ib[i]));
}

/** JSON with object keys sorted, so equal configs serialize equally. */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v).sort(([a], [b]) => compareStrings(a, b)));
  });
}
