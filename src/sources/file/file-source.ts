// The file source: a directory of Istio YAML, read recursively, validated per resource, and
// watched. A ConfigSource (../config-source.ts): it reports complete snapshots; the
// ConfigAggregator debounces, checks the mesh as a whole and keeps last valid versions.
//
// Every snapshot reads the whole directory again (sorted, so results never depend on readdir
// order). A document that names a resource but is invalid becomes an entry without a resource
// (its last valid version is kept); a file that cannot be read or parsed is an unreadable
// place (what came from it is kept). A file always is synced: a read is complete.
import { readdirSync, readFileSync, realpathSync, statSync, watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import { parseDocuments, validateResource } from "../../api/validate-resource.js";
import { resourceKey, type FileRef, type ValidationIssue } from "../../api/types.js";
import type { ConfigSource, SourceEntry, SourceListener, SourceSnapshot, UnreadablePlace } from "../config-source.js";

/** How often to look again for a watched directory that does not exist (yet). */
const MISSING_DIRECTORY_RETRY_MS = 1000;
/**
 * Native recursive watching exists on macOS and Windows. On Linux, inotify watches one
 * directory at a time, so we watch each directory ourselves and refresh the set on reload.
 */
const NATIVE_RECURSIVE_WATCH = process.platform === "darwin" || process.platform === "win32";

interface FileResult {
  file: string;
  entries: SourceEntry[];
  /** Problems of documents that name no resource, or an ignored one, and are not errors. */
  unnamedIssues: ValidationIssue[];
  /** Errors not tied to one resource: an unreadable file, YAML syntax errors, unnamed documents. */
  unattributedErrors: ValidationIssue[];
  /** YAML warnings. */
  otherIssues: ValidationIssue[];
}

export class FileSource implements ConfigSource {
  readonly name: string;
  readonly origin: FileRef;
  private directories: string[] = [];
  private readonly watchers = new Map<string, FSWatcher>();
  private retryTimer: NodeJS.Timeout | undefined;
  private listener: SourceListener | undefined;
  private closed = false;

  constructor(readonly dir: string) {
    this.name = `directory ${dir}`;
    this.origin = { file: dir, document: 0 };
  }

  /** Reads and validates every file once (no mesh checks: the aggregator does those). */
  snapshot(): SourceSnapshot {
    const listing = listYamlFiles(this.dir);
    this.directories = listing.directories;
    const files = listing.files.map(readYamlFile);
    const snapshot: SourceSnapshot = { synced: true, entries: [], issues: [...listing.issues], unreadable: [...listing.unreadable] };
    for (const file of files) {
      snapshot.entries.push(...file.entries);
      snapshot.issues.push(...file.unnamedIssues, ...file.unattributedErrors, ...file.otherIssues);
      if (file.unattributedErrors.length > 0) snapshot.unreadable.push({ place: file.file, issues: file.unattributedErrors });
    }
    this.syncWatchers();
    return snapshot;
  }

  /** Starts watching the directory (and each directory under it); events call `listener.changed()`. */
  async start(listener: SourceListener): Promise<void> {
    if (this.listener) throw new Error(`FileSource for ${this.dir} is already started`);
    if (this.closed) throw new Error(`FileSource for ${this.dir} is closed`);
    this.listener = listener;
    this.directories = listYamlFiles(this.dir).directories;
    this.syncWatchers();
  }

  /** Stops watching; no timers or watchers are left behind. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }

  private changed(): void {
    if (!this.closed) this.listener?.changed();
  }

  /** Watches the root (natively recursive where supported) or every directory found by the last listing. */
  private syncWatchers(): void {
    if (this.closed || !this.listener) return;
    const wanted = NATIVE_RECURSIVE_WATCH ? [this.dir] : this.directories;
    for (const [dir, watcher] of this.watchers) {
      if (!wanted.includes(dir)) {
        watcher.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of wanted) {
      if (this.watchers.has(dir)) continue;
      try {
        // Directories, not files, are watched: editors that save by writing a temporary file
        // and renaming it over the original replace the file's inode, which a file watch misses.
        const watcher = watch(dir, { recursive: NATIVE_RECURSIVE_WATCH, persistent: true }, () => this.changed());
        watcher.on("error", () => {
          // The directory went away (or the watch broke): drop it and let a reload re-scan.
          watcher.close();
          if (this.watchers.get(dir) === watcher) this.watchers.delete(dir);
          this.changed();
        });
        this.watchers.set(dir, watcher);
      } catch {
        // It vanished between listing and watching; the next snapshot sees that.
      }
    }
    // Nothing to watch (the directory does not exist yet): look again shortly.
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!this.watchers.has(this.dir)) this.retryTimer = setTimeout(() => this.changed(), MISSING_DIRECTORY_RETRY_MS);
  }
}

// ---------------------------------------------------------------------------------------

function isYamlFile(name: string): boolean {
  return /\.ya?ml$/i.test(name);
}

/**
 * Every *.yaml / *.yml file under `root`, recursively, sorted by path. Hidden entries (".name")
 * are skipped: editor swap and lock files, and the "..data" internals of Kubernetes ConfigMap
 * volumes (whose visible files are symlinks into them). Symlinks are followed, once each.
 */
function listYamlFiles(root: string): { files: string[]; directories: string[]; issues: ValidationIssue[]; unreadable: UnreadablePlace[] } {
  const files: string[] = [];
  const directories: string[] = [];
  const issues: ValidationIssue[] = [];
  const unreadable: UnreadablePlace[] = [];
  const visited = new Set<string>();

  const walk = (dir: string): void => {
    let real: string;
    let entries: string[];
    try {
      real = realpathSync(dir);
      if (visited.has(real)) return;
      visited.add(real);
      entries = readdirSync(dir).sort(compareNames);
    } catch (err) {
      const issue: ValidationIssue = { file: dir, document: 0, resource: "(unknown)", field: "(directory)", message: `cannot read the directory: ${describeFsError(err)}`, severity: "error" };
      issues.push(issue);
      unreadable.push({ place: join(dir), issues: [issue] });
      return;
    }
    directories.push(dir);
    for (const name of entries) {
      if (name.startsWith(".")) continue;
      const path = join(dir, name);
      let isDirectory: boolean;
      try {
        isDirectory = statSync(path).isDirectory();
      } catch {
        continue; // a dangling symlink, or removed since the listing
      }
      if (isDirectory) walk(path);
      else if (isYamlFile(name)) files.push(path);
    }
  };
  walk(root);
  return { files, directories, issues, unreadable };
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function readYamlFile(file: string): FileResult {
  const result: FileResult = { file, entries: [], unnamedIssues: [], unattributedErrors: [], otherIssues: [] };
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    result.unattributedErrors.push({ file, document: 0, resource: "(unknown)", field: "(file)", message: `cannot read the file: ${describeFsError(err)}`, severity: "error" });
    return result;
  }
  const parsed = parseDocuments(text, file);
  for (const issue of parsed.issues) (issue.severity === "error" ? result.unattributedErrors : result.otherIssues).push(issue);
  for (const { document, value } of parsed.docs) {
    const { resource, issues } = validateResource(value, { file, document });
    const label = issues[0]?.resource ?? (resource ? resourceKey(resource) : "(unknown)");
    const hasErrors = issues.some((i) => i.severity === "error");
    if (label === "(unknown)" && hasErrors) result.unattributedErrors.push(...issues);
    else if (label !== "(unknown)" && (resource || hasErrors)) result.entries.push({ key: label, source: { file, document }, ...(resource ? { resource } : {}), issues });
    else result.unnamedIssues.push(...issues); // warnings only: an ignored kind, an unnamed document
  }
  return result;
}

function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === "ENOENT") return "it does not exist";
  if (e.code === "EACCES" || e.code === "EPERM") return "permission denied";
  if (e.code === "ENOTDIR") return "it is not a directory";
  return e.message;
}
