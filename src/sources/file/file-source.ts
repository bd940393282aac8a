// The file source: a directory of Istio YAML, read recursively, validated, and watched.
//
// Every reload reads the whole directory again (sorted, so results never depend on readdir
// order), validates each document, then checks the mesh as a whole. A resource that was valid
// and becomes invalid — a schema error, a YAML typo that breaks its document, or a mesh error
// such as a route to an undefined subset — is not dropped: its last valid version stays in
// the config and the issue says so. A resource whose document is removed is removed.
import { readdirSync, readFileSync, realpathSync, statSync, watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import { validateMesh } from "../../api/validate-mesh.js";
import { parseDocuments, validateResource } from "../../api/validate-resource.js";
import { resourceKey, type MeshConfig, type Sourced, type ValidationIssue } from "../../api/types.js";

export interface FileSourceOptions {
  /** Quiet time after the last file event before the directory is read again. Default 100 ms. */
  debounceMs?: number;
  /**
   * Longest a change waits while events keep coming (a tool rewriting files continuously
   * would otherwise postpone every reload forever). Default 1 s.
   */
  maxDebounceMs?: number;
}

const DEFAULT_DEBOUNCE_MS = 100;
const DEFAULT_MAX_DEBOUNCE_MS = 1000;
/** How often to look again for a watched directory that does not exist (yet). */
const MISSING_DIRECTORY_RETRY_MS = 1000;
/**
 * Native recursive watching exists on macOS and Windows. On Linux, inotify watches one
 * directory at a time, so we watch each directory ourselves and refresh the set on reload.
 */
const NATIVE_RECURSIVE_WATCH = process.platform === "darwin" || process.platform === "win32";

interface DocumentResult {
  /** Kind/namespace/name when the document names itself, even if it is invalid. */
  key?: string;
  sourced?: Sourced;
  issues: ValidationIssue[];
}

interface FileResult {
  file: string;
  documents: DocumentResult[];
  /** Errors not tied to one resource: an unreadable file, YAML syntax errors, unnamed documents. */
  unattributedErrors: ValidationIssue[];
  otherIssues: ValidationIssue[];
}

export class FileSource {
  private readonly debounceMs: number;
  /** The last valid version of each resource, by kind/namespace/name. */
  private readonly lastGood = new Map<string, Sourced>();
  private lastSerialized: string | undefined;
  private directories: string[] = [];
  private readonly watchers = new Map<string, FSWatcher>();
  private debounceTimer: NodeJS.Timeout | undefined;
  /** When the first file event not yet reloaded arrived. */
  private pendingSince: number | undefined;
  private readonly maxDebounceMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private onChange: ((config: MeshConfig) => void) | undefined;
  private closed = false;

  constructor(
    readonly dir: string,
    options: FileSourceOptions = {},
  ) {
    this.debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.maxDebounceMs = Math.max(this.debounceMs, options.maxDebounceMs ?? DEFAULT_MAX_DEBOUNCE_MS);
  }

  /** Reads and validates the directory once. Updates the last valid versions kept per resource. */
  load(): MeshConfig {
    const listing = listYamlFiles(this.dir);
    this.directories = listing.directories;
    const files = listing.files.map(readYamlFile);
    const issues: ValidationIssue[] = [...listing.issues];

    const freshKeys = new Set<string>();
    for (const f of files) for (const d of f.documents) if (d.sourced) freshKeys.add(resourceKey(d.sourced.resource));
    const presentKeys = new Set(freshKeys);
    const retained = new Set<Sourced>();
    const candidates: Sourced[] = [];
    const keep = (good: Sourced): void => {
      candidates.push(good);
      retained.add(good);
      presentKeys.add(resourceKey(good.resource));
    };

    // A document that names a resource but is invalid: keep that resource's last valid version.
    for (const file of files) {
      for (const doc of file.documents) {
        issues.push(...doc.issues);
        if (doc.sourced) {
          candidates.push(doc.sourced);
          continue;
        }
        if (!doc.key || !doc.issues.some((i) => i.severity === "error")) continue;
        const good = this.lastGood.get(doc.key);
        presentKeys.add(doc.key);
        if (!good || freshKeys.has(doc.key) || retained.has(good)) continue;
        keep(good);
        annotateErrors(doc.issues, `keeping the last valid version (${where(good)})`);
      }
      issues.push(...file.unattributedErrors, ...file.otherIssues);
    }
    // A file (or the whole directory) that could not be read, or has documents too broken to
    // name their resource: keep the last valid versions that came from it and appear nowhere else.
    const brokenFiles = new Map(files.filter((f) => f.unattributedErrors.length > 0).map((f) => [f.file, f.unattributedErrors]));
    const keptByFile = new Map<string, string[]>();
    for (const [key, good] of this.lastGood) {
      if (presentKeys.has(key) || !(listing.unreadable || brokenFiles.has(good.source.file))) continue;
      keep(good);
      keptByFile.set(good.source.file, [...(keptByFile.get(good.source.file) ?? []), key]);
    }
    for (const [file, keys] of keptByFile) {
      annotateErrors(brokenFiles.get(file) ?? listing.issues, `keeping the last valid version of ${keys.join(", ")}`);
    }

    const { valid, issues: meshIssues } = this.checkMesh(candidates, retained);
    issues.push(...meshIssues);

    for (const key of [...this.lastGood.keys()]) if (!presentKeys.has(key)) this.lastGood.delete(key);
    for (const s of valid) this.lastGood.set(resourceKey(s.resource), s);

    return { resources: valid, issues: sortIssues(issues) };
  }

  /**
   * Loads the directory, starts watching it, and returns the initial config. Afterwards
   * `onChange` is called (debounced) each time an edit changes the resulting config; edits
   * that change nothing (a comment, a rewrite with the same content) are not reported.
   */
  start(onChange: (config: MeshConfig) => void): MeshConfig {
    if (this.onChange) throw new Error(`FileSource for ${this.dir} is already started`);
    if (this.closed) throw new Error(`FileSource for ${this.dir} is closed`);
    this.onChange = onChange;
    const config = this.load();
    this.lastSerialized = stableStringify(config);
    this.syncWatchers();
    return config;
  }

  /** Stops watching; no timers or watchers are left behind. */
  close(): void {
    this.closed = true;
    clearTimeout(this.debounceTimer);
    clearTimeout(this.retryTimer);
    this.debounceTimer = this.retryTimer = undefined;
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }

  /**
   * Mesh checks, then one retry for resources the mesh rejected: where a resource that was
   * valid before now fails (e.g. it routes to a subset that is not defined), its last valid
   * version is checked in its place, and kept if it passes.
   */
  private checkMesh(candidates: Sourced[], retained: Set<Sourced>): { valid: Sourced[]; issues: ValidationIssue[] } {
    const first = validateMesh(candidates);
    const validKeys = new Set(first.valid.map((s) => resourceKey(s.resource)));
    const replaced = new Map<Sourced, Sourced>();
    for (const s of candidates) {
      const key = resourceKey(s.resource);
      const good = this.lastGood.get(key);
      if (validKeys.has(key) || retained.has(s) || !good || good === s) continue;
      replaced.set(s, good);
      validKeys.add(key); // one replacement per key
    }
    if (replaced.size === 0) return first;

    const second = validateMesh(candidates.map((s) => replaced.get(s) ?? s));
    const secondValid = new Set(second.valid);
    const issuesOfReplaced: ValidationIssue[] = [];
    for (const [fresh, good] of replaced) {
      const own = first.issues.filter((i) => i.file === fresh.source.file && i.document === fresh.source.document && i.resource === resourceKey(fresh.resource));
      if (secondValid.has(good)) annotateErrors(own, `keeping the last valid version (${where(good)})`);
      issuesOfReplaced.push(...own);
    }
    return { valid: second.valid, issues: [...issuesOfReplaced, ...second.issues] };
  }

  private scheduleReload(): void {
    if (this.closed) return;
    clearTimeout(this.debounceTimer);
    const now = Date.now();
    this.pendingSince ??= now;
    const delay = Math.min(this.debounceMs, this.pendingSince + this.maxDebounceMs - now);
    this.debounceTimer = setTimeout(() => this.reload(), Math.max(0, delay));
  }

  private reload(): void {
    this.debounceTimer = undefined;
    this.pendingSince = undefined;
    if (this.closed) return;
    const config = this.load();
    this.syncWatchers();
    const serialized = stableStringify(config);
    if (serialized === this.lastSerialized) return;
    this.lastSerialized = serialized;
    this.onChange?.(config);
  }

  /** Watches the root (natively recursive where supported) or every directory found by the last load. */
  private syncWatchers(): void {
    if (this.closed) return;
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
        const watcher = watch(dir, { recursive: NATIVE_RECURSIVE_WATCH, persistent: true }, () => this.scheduleReload());
        watcher.on("error", () => {
          // The directory went away (or the watch broke): drop it and let a reload re-scan.
          watcher.close();
          if (this.watchers.get(dir) === watcher) this.watchers.delete(dir);
          this.scheduleReload();
        });
        this.watchers.set(dir, watcher);
      } catch {
        // It vanished between listing and watching; the next reload sees that.
      }
    }
    // Nothing to watch (the directory does not exist yet): look again shortly.
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!this.watchers.has(this.dir)) this.retryTimer = setTimeout(() => this.reload(), MISSING_DIRECTORY_RETRY_MS);
  }
}

// ---------------------------------------------------------------------------------------

function where(s: Sourced): string {
  return `from ${s.source.file} document ${s.source.document}`;
}

function annotateErrors(issues: ValidationIssue[], note: string): void {
  for (const issue of issues) if (issue.severity === "error" && !issue.message.endsWith(note)) issue.message += `; ${note}`;
}

function isYamlFile(name: string): boolean {
  return /\.ya?ml$/i.test(name);
}

/**
 * Every *.yaml / *.yml file under `root`, recursively, sorted by path. Hidden entries (".name")
 * are skipped: editor swap and lock files, and the "..data" internals of Kubernetes ConfigMap
 * volumes (whose visible files are symlinks into them). Symlinks are followed, once each.
 */
function listYamlFiles(root: string): { files: string[]; directories: string[]; issues: ValidationIssue[]; unreadable: boolean } {
  const files: string[] = [];
  const directories: string[] = [];
  const issues: ValidationIssue[] = [];
  const visited = new Set<string>();
  let unreadable = false;

  const walk = (dir: string): void => {
    let real: string;
    let entries: string[];
    try {
      real = realpathSync(dir);
      if (visited.has(real)) return;
      visited.add(real);
      entries = readdirSync(dir).sort(compareNames);
    } catch (err) {
      if (dir === root) unreadable = true;
      issues.push({ file: dir, document: 0, resource: "(unknown)", field: "(directory)", message: `cannot read the directory: ${describeFsError(err)}`, severity: "error" });
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
  const result: FileResult = { file, documents: [], unattributedErrors: [], otherIssues: [] };
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
    if (label === "(unknown)" && hasErrors) {
      result.unattributedErrors.push(...issues);
      continue;
    }
    result.documents.push({
      ...(label !== "(unknown)" ? { key: label } : {}),
      ...(resource ? { sourced: { resource, source: { file, document } } } : {}),
      issues,
    });
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

/** Issues grouped by file, then document; within a document, in the order found. */
function sortIssues(issues: ValidationIssue[]): ValidationIssue[] {
  return [...issues].sort((a, b) => compareNames(a.file, b.file) || a.document - b.document);
}

/** JSON with object keys sorted, so equal configs serialize equally. */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v).sort(([a], [b]) => compareNames(a, b)));
  });
}
