// The file source: a directory of Istio YAML, read recursively, validated per resource, and
// watched. A ConfigSource (../config-source.ts): it reports complete snapshots; the
// ConfigAggregator debounces, checks the mesh as a whole and keeps last valid versions.
//
// - Listing (config-directory-listing.ts): sorted, bounded, symlinks followed only within the
//   directory, only regular files. Reading (bounded-file-read.ts): non-blocking open, size caps.
// - A per-file parse cache: a file whose (dev, ino, size, mtime, ctime) did not change is not
//   read or parsed again; a one-line edit re-parses one file.
// - Files caught while being written are held: a known file that became empty, ends in the
//   middle of a line, has YAML syntax errors, lost resources or gained errors, and a directory
//   that was replaced or emptied, keep their previous resources until they have not changed for
//   `settleMs` (at most `maxHoldMs`): meanwhile the snapshot gives their last applied version
//   again (so nothing is reported as changed) and the hold is logged as a warning naming the
//   file. A plain edit (change a weight, add a resource) applies at once.
// - Watches: each directory (inotify watches one at a time), plus the parent of the root, so a
//   directory replaced by another (`rm -rf dir && mkdir dir`, `mv`) is noticed and watched again.
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { resourceKey, type FileRef, type ValidationIssue } from "../../api/types.js";
import type { Logger } from "../../log/logger.js";
import type { ConfigSource, SourceListener, SourceSnapshot } from "../config-source.js";
import { currentIdentity, formatBytes, readRegularFile } from "./bounded-file-read.js";
import { listConfigDirectory, type ListedDirectory } from "./config-directory-listing.js";
import { registryServiceEntries, type ManifestRecord } from "./kubernetes-manifests.js";
import { parseConfigFile, parseConfigFileSteps, unreadableConfigFile, type ParsedConfigFile } from "./parsed-config-file.js";
import { runInSlices } from "../../work/work-steps.js";

export interface FileSourceOptions {
  /** Largest file read; a larger one is an error naming it (its last valid resources stay). Default 32 MiB. */
  maxFileBytes?: number;
  /** Most bytes read across all files of the directory; files past it are errors. Default 128 MiB. */
  maxTotalBytes?: number;
  /** Most YAML files read. Default 10,000. */
  maxFiles?: number;
  /** Most directories listed and watched. Default 1,000. */
  maxDirectories?: number;
  /** How long a file caught while being written must stay unchanged before it is applied. Default 500 ms. */
  settleMs?: number;
  /** Longest a file is held while it keeps changing; then it is applied as it is, with a warning. Default 5 s. */
  maxHoldMs?: number;
  logger?: Logger;
}

export const FILE_SOURCE_DEFAULTS = {
  maxFileBytes: 32 * 1024 * 1024,
  maxTotalBytes: 128 * 1024 * 1024,
  maxFiles: 10_000,
  maxDirectories: 1_000,
  settleMs: 500,
  maxHoldMs: 5_000,
} as const;

/** How often to look again for a watched directory that does not exist (yet). */
const MISSING_DIRECTORY_RETRY_MS = 1000;
/**
 * Native recursive watching exists on macOS and Windows. On Linux, inotify watches one
 * directory at a time, so we watch each directory ourselves and refresh the set on reload.
 */
const NATIVE_RECURSIVE_WATCH = process.platform === "darwin" || process.platform === "win32";

/** A change being held until it settles. */
interface Hold {
  /** What was seen (a file identity, or a listing fingerprint). */
  seen: string;
  /** When this exact state was first seen. */
  seenAt: number;
  /** When the hold began. */
  since: number;
}

interface FileRecord {
  /** Identity the parse below was made from; undefined when the file could not be read. */
  identity: string | undefined;
  parsed: ParsedConfigFile;
  /** What was last applied from this file: its parse (given again while a change is held) and its resources. */
  accepted?: { parsed: ParsedConfigFile; keys: Set<string>; entryErrors: number };
  hold?: Hold;
}

export class FileSource implements ConfigSource {
  readonly name: string;
  readonly origin: FileRef;
  private readonly options: Required<Omit<FileSourceOptions, "logger">>;
  private readonly logger: Logger | undefined;
  private readonly records = new Map<string, FileRecord>();
  /** Files parsed by prepare() for the next snapshot, by path (used when their identity still matches). */
  private prepared = new Map<string, { identity: string; parsed: ParsedConfigFile }>();
  /** What was last applied of the directory as a whole. */
  private acceptedDirectory: { identity: string | undefined; files: number } | undefined;
  private directoryHold: Hold | undefined;
  /** The last snapshot given without a directory hold (given again while the directory is held). */
  private lastGiven: SourceSnapshot | undefined;
  private directories: ListedDirectory[] = [];
  private readonly watchers = new Map<string, { watcher: FSWatcher; identity: string; stale?: boolean }>();
  private parentWatcher: FSWatcher | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private holdTimer: NodeJS.Timeout | undefined;
  private listener: SourceListener | undefined;
  private snapshots = 0;
  private closed = false;
  /** Counters for tests and benchmarks: files read and parsed, and files taken from the cache. */
  readonly stats = { parsed: 0, cached: 0 };

  constructor(
    readonly dir: string,
    options: FileSourceOptions = {},
  ) {
    this.name = `directory ${dir}`;
    this.origin = { file: dir, document: 0 };
    const { logger, ...limits } = options;
    this.logger = logger;
    this.options = { ...FILE_SOURCE_DEFAULTS, ...Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)) };
  }

  /**
   * Parses the files that changed since the last snapshot, in time slices (DEFAULT_SLICE_MS)
   * that give the event loop back: a 20 MB directory read in one go blocked the process for
   * seconds, and one 1 MB file read and validated in one turn for 0.15-0.45 s. The total-size
   * budget applies as in snapshot().
   */
  async prepare(): Promise<void> {
    const listing = listConfigDirectory(this.dir, { maxDirectories: this.options.maxDirectories, maxFiles: this.options.maxFiles });
    let totalBytes = 0;
    for (const file of listing.files) {
      if (this.closed) return;
      const current = currentIdentity(file);
      if (!current) continue;
      totalBytes += current.size;
      if (totalBytes > this.options.maxTotalBytes) return;
      if (this.records.get(file)?.identity === current.identity || this.prepared.get(file)?.identity === current.identity) continue;
      const read = readRegularFile(file, this.options.maxFileBytes);
      await new Promise((resolve) => setImmediate(resolve));
      if (read.ok) this.prepared.set(file, { identity: read.identity, parsed: await runInSlices(parseConfigFileSteps(file, read.text, read.bytes)) });
    }
  }

  /** Reads and validates every file (from the cache where unchanged); no mesh checks: the aggregator does those. */
  snapshot(): SourceSnapshot {
    const prepared = this.prepared;
    this.prepared = new Map();
    const now = Date.now();
    const holding = this.listener !== undefined && this.snapshots++ > 0; // never hold the first read, or a one-shot one
    const listing = listConfigDirectory(this.dir, { maxDirectories: this.options.maxDirectories, maxFiles: this.options.maxFiles });
    this.directories = listing.directories;
    const snapshot: SourceSnapshot = { synced: true, entries: [], issues: [...listing.issues], unreadable: [...listing.unreadable] };
    const fingerprint: string[] = [listing.directories[0]?.identity ?? "-"];
    let totalBytes = 0;
    let budgetExceeded = false;
    const seen = new Set<string>();
    const manifests: ManifestRecord[] = [];

    for (const file of listing.files) {
      seen.add(file);
      const current = currentIdentity(file);
      fingerprint.push(`${file}=${current?.identity ?? "-"}`);
      let record = this.records.get(file);
      if (!budgetExceeded && current && totalBytes + current.size > this.options.maxTotalBytes) {
        budgetExceeded = true;
        const issue: ValidationIssue = {
          file,
          document: 0,
          resource: "(unknown)",
          field: "(file)",
          message: `the YAML files of the config directory add up to more than the limit of ${formatBytes(this.options.maxTotalBytes)} in total; this file and the ones after it are not read`,
          severity: "error",
        };
        snapshot.issues.push(issue);
        snapshot.unreadable.push({ place: this.dir, issues: [issue] });
      }
      if (budgetExceeded) continue;
      if (record && current && record.identity === current.identity) this.stats.cached++;
      else {
        this.stats.parsed++;
        const early = prepared.get(file);
        const read = early && current && early.identity === current.identity ? undefined : readRegularFile(file, this.options.maxFileBytes);
        record = {
          ...(record?.accepted ? { accepted: record.accepted } : {}),
          ...(record?.hold ? { hold: record.hold } : {}),
          ...(read === undefined
            ? { identity: early!.identity, parsed: early!.parsed }
            : { identity: read.ok ? read.identity : undefined, parsed: read.ok ? parseConfigFile(file, read.text, read.bytes) : unreadableConfigFile(file, read.message) }),
        };
        this.records.set(file, record);
      }
      totalBytes += record.parsed.bytes;

      const suspicion = holding ? this.suspicion(record) : undefined;
      if (suspicion) {
        const decision = this.decide(record.hold, record.identity ?? "-", now);
        record.hold = decision.hold;
        if (decision.holding) {
          // Nothing changes meanwhile: the file's last applied version is given again (so no
          // reload is reported), or, for a file never applied, its place is kept unreadable.
          if (decision.started) this.logger?.warn({ file }, this.holdMessage(file, `${suspicion}, as if caught while being written`));
          if (record.accepted) this.add(snapshot, record.accepted.parsed, manifests);
          else snapshot.unreadable.push({ place: file, issues: [] });
          continue;
        }
        if (decision.expired) snapshot.issues.push(this.expiredIssue(file, "(file)", suspicion));
      } else record.hold = undefined;
      record.accepted = { parsed: record.parsed, keys: new Set(record.parsed.entries.map((e) => e.key)), entryErrors: record.parsed.entryErrors };
      this.add(snapshot, record.parsed, manifests);
    }
    for (const file of this.records.keys()) if (!seen.has(file)) this.records.delete(file);

    // The directory as a whole: replaced by another one, or emptied. Hold everything until the listing settles.
    const rootIdentity = listing.directories[0]?.path === this.dir ? listing.directories[0].identity : undefined;
    const before = this.acceptedDirectory;
    const replaced = before?.identity !== undefined && rootIdentity !== undefined && rootIdentity !== before.identity;
    const emptied = (before?.files ?? 0) > 0 && rootIdentity !== undefined && listing.files.length === 0;
    if (holding && (replaced || emptied)) {
      const decision = this.decide(this.directoryHold, fingerprint.join("\n"), now);
      this.directoryHold = decision.hold;
      const what = replaced ? "the directory was replaced by another one" : "the directory has become empty";
      if (decision.holding) {
        if (decision.started) this.logger?.warn({ dir: this.dir }, this.holdMessage(this.dir, what));
        this.syncWatchers();
        return this.lastGiven ?? { synced: true, entries: [], issues: [], unreadable: [{ place: this.dir, issues: [] }] };
      }
      if (decision.expired) snapshot.issues.push(this.expiredIssue(this.dir, "(directory)", what));
      if (replaced) this.logger?.warn({ dir: this.dir }, `config directory ${this.dir} was replaced by another one; reading and watching the new one`);
    } else this.directoryHold = undefined;
    if (rootIdentity !== undefined) this.acceptedDirectory = { identity: rootIdentity, files: listing.files.length };

    // Kubernetes Services (with their Endpoints/EndpointSlices/Pods, from any file) as registry entries.
    for (const generated of registryServiceEntries(manifests)) {
      snapshot.entries.push({ key: resourceKey(generated.resource), source: generated.source, resource: generated.resource, issues: [] });
    }

    this.lastGiven = snapshot;
    this.syncWatchers();
    return snapshot;
  }

  /** Starts watching the directory (and each directory under it); events call `listener.changed()`. */
  async start(listener: SourceListener): Promise<void> {
    if (this.listener) throw new Error(`FileSource for ${this.dir} is already started`);
    if (this.closed) throw new Error(`FileSource for ${this.dir} is closed`);
    this.listener = listener;
    this.directories = listConfigDirectory(this.dir, { maxDirectories: this.options.maxDirectories, maxFiles: this.options.maxFiles }).directories;
    this.syncWatchers();
  }

  /** The directories watched now (for tests and status). */
  watchedDirectories(): string[] {
    return [...this.watchers.keys()];
  }

  /** Stops watching; no timers or watchers are left behind. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.holdTimer);
    this.retryTimer = this.holdTimer = undefined;
    for (const { watcher } of this.watchers.values()) watcher.close();
    this.watchers.clear();
    this.parentWatcher?.close();
    this.parentWatcher = undefined;
  }

  private add(snapshot: SourceSnapshot, parsed: ParsedConfigFile, manifests: ManifestRecord[]): void {
    snapshot.entries.push(...parsed.entries);
    manifests.push(...parsed.manifests);
    snapshot.issues.push(...parsed.unnamedIssues, ...parsed.unattributedErrors, ...parsed.otherIssues);
    if (parsed.unattributedErrors.length > 0) snapshot.unreadable.push({ place: parsed.file, issues: parsed.unattributedErrors });
  }

  /** Why this read of a file looks like one caught while it was being written, if it does. */
  private suspicion(record: FileRecord): string | undefined {
    const { parsed, accepted } = record;
    if (parsed.endsMidLine) return "it ends in the middle of a line";
    if (parsed.yamlErrors) return "it has YAML syntax errors";
    if (!accepted) return undefined;
    if (parsed.bytes === 0 && accepted.keys.size > 0) return "it has become empty";
    const now = new Set(parsed.entries.map((e) => e.key));
    const lost = [...accepted.keys].filter((k) => !now.has(k)).length;
    if (lost > 0) return `it lost ${lost} of its ${accepted.keys.size} resources`;
    if (parsed.entryErrors > accepted.entryErrors) return "it has new errors";
    return undefined;
  }

  /**
   * Hold or apply a suspicious state: applied once the same state has been seen for settleMs,
   * or once the hold has lasted maxHoldMs (expired). While holding, a re-check is scheduled.
   */
  private decide(previous: Hold | undefined, seen: string, now: number): { holding: boolean; started: boolean; expired: boolean; hold: Hold | undefined } {
    const hold: Hold = previous && previous.seen === seen ? previous : { seen, seenAt: now, since: previous?.since ?? now };
    if (now - hold.seenAt >= this.options.settleMs) return { holding: false, started: false, expired: false, hold: undefined };
    if (now - hold.since >= this.options.maxHoldMs) return { holding: false, started: false, expired: true, hold: undefined };
    this.recheckAt(Math.min(hold.seenAt + this.options.settleMs, hold.since + this.options.maxHoldMs));
    return { holding: true, started: previous === undefined, expired: false, hold };
  }

  private recheckAt(when: number): void {
    if (this.closed || !this.listener) return;
    clearTimeout(this.holdTimer);
    this.holdTimer = setTimeout(() => {
      this.holdTimer = undefined;
      this.changed();
    }, Math.max(0, when - Date.now()) + 5);
  }

  private holdMessage(path: string, why: string): string {
    return `${path}: not applied yet: ${why}; its previous resources stay until it has not changed for ${this.options.settleMs} ms (at most ${this.options.maxHoldMs} ms)`;
  }

  private expiredIssue(path: string, field: "(file)" | "(directory)", why: string): ValidationIssue {
    return { file: path, document: 0, resource: "(unknown)", field, message: `applied as it is: ${why}, and it kept changing for ${this.options.maxHoldMs} ms`, severity: "warning" };
  }

  /** The watch on `dir` (if any) is made again at the next snapshot. */
  private markStale(dir: string): void {
    const entry = this.watchers.get(dir);
    if (entry) entry.stale = true;
  }

  private changed(): void {
    if (!this.closed) this.listener?.changed();
  }

  /**
   * Watches every listed directory (natively recursive: the root only), replacing a watch whose
   * directory is now another one (same path, other inode), plus the root's parent, which sees
   * the root being removed, created or renamed.
   */
  private syncWatchers(): void {
    if (this.closed || !this.listener) return;
    const wanted = new Map((NATIVE_RECURSIVE_WATCH ? this.directories.filter((d) => d.path === this.dir) : this.directories).map((d) => [d.path, d.identity]));
    for (const [dir, { watcher, identity, stale }] of this.watchers) {
      if (wanted.get(dir) === identity && !stale) continue;
      watcher.close();
      this.watchers.delete(dir);
      if (wanted.has(dir)) this.logger?.warn({ dir }, `directory ${dir} was removed, replaced or moved; watching what is there now`);
    }
    let added = false;
    for (const [dir, identity] of wanted) {
      if (this.watchers.has(dir)) continue;
      try {
        // Directories, not files, are watched: editors that save by writing a temporary file
        // and renaming it over the original replace the file's inode, which a file watch misses.
        // An event naming a watched subdirectory (removed, created, renamed) may mean it is
        // another directory now, whose watch must be made again (inodes are reused, so a
        // directory's identity alone cannot tell).
        const watcher = watch(dir, { recursive: NATIVE_RECURSIVE_WATCH, persistent: true }, (_event, filename) => {
          if (filename !== null) this.markStale(join(dir, filename.toString()));
          this.changed();
        });
        watcher.on("error", (err) => {
          // The directory went away (or the watch broke): drop it and let a reload re-scan.
          this.logger?.warn({ dir, err: err.message }, `watch on ${dir} ended; reading the directory again`);
          watcher.close();
          if (this.watchers.get(dir)?.watcher === watcher) this.watchers.delete(dir);
          this.changed();
        });
        this.watchers.set(dir, { watcher, identity });
        added = true;
      } catch {
        // It vanished between listing and watching; the next snapshot sees that.
      }
    }
    // What was written into a new directory before its watch existed: read once more.
    if (added && this.snapshots > 0) setImmediate(() => this.changed());
    this.watchParent();
    // The root itself is not watched (it does not exist, yet or any more): look again shortly.
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!this.watchers.has(this.dir)) this.retryTimer = setTimeout(() => this.changed(), MISSING_DIRECTORY_RETRY_MS);
  }

  private watchParent(): void {
    if (this.parentWatcher) return;
    const root = resolve(this.dir);
    const name = basename(root);
    try {
      const watcher = watch(dirname(root), { persistent: true }, (_event, filename) => {
        if (filename !== null && filename.toString() !== name) return;
        this.markStale(this.dir);
        this.changed();
      });
      watcher.on("error", () => {
        watcher.close();
        if (this.parentWatcher === watcher) this.parentWatcher = undefined;
        this.changed();
      });
      this.parentWatcher = watcher;
    } catch {
      // No parent to watch (yet): the missing-directory retry covers it.
    }
  }
}
