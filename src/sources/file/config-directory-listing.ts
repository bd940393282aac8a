// Listing a config directory: every *.yaml / *.yml file under the root, recursively, sorted by
// path, within bounds, never leaving the directory.
//
// - Hidden entries (".name") are skipped: editor swap and lock files, and the "..data" internals
//   of Kubernetes ConfigMap volumes (whose visible files are symlinks into them).
// - Symbolic links are followed only when their target lies inside the config directory (a
//   ConfigMap volume's links do); a link out of it (to "/", "/usr", "/dev/zero") is not
//   followed and is reported as a warning. Each directory is listed once (link loops end).
// - Only regular files are read: a *.yaml that is a named pipe, socket or device is an error
//   naming the file (reading it would block or never end).
// - At most `maxDirectories` directories and `maxFiles` files; beyond that, an error says so.
import { lstatSync, readdirSync, realpathSync, statSync, type Stats } from "node:fs";
import { join, sep } from "node:path";
import type { ValidationIssue } from "../../api/types.js";
import type { UnreadablePlace } from "../config-source.js";

export interface ListingLimits {
  maxDirectories: number;
  maxFiles: number;
}

export interface ListedDirectory {
  /** As joined from the root (what messages show and what is watched). */
  path: string;
  /** Device, inode and birth time, to notice a directory replaced by another at the same path (inodes are reused). */
  identity: string;
}

export interface DirectoryListing {
  files: string[];
  directories: ListedDirectory[];
  /** Problems found while listing (each error is also in `unreadable` when it hides content). */
  issues: ValidationIssue[];
  unreadable: UnreadablePlace[];
}

export function listConfigDirectory(root: string, limits: ListingLimits): DirectoryListing {
  const listing: DirectoryListing = { files: [], directories: [], issues: [], unreadable: [] };
  /** `hides`: the place whose content this problem keeps from being read (its last valid resources are kept). */
  const problem = (path: string, field: "(directory)" | "(file)", message: string, severity: ValidationIssue["severity"], hides?: string): void => {
    const issue: ValidationIssue = { file: path, document: 0, resource: "(unknown)", field, message, severity };
    listing.issues.push(issue);
    if (hides !== undefined) listing.unreadable.push({ place: join(hides), issues: [issue] });
  };

  let realRoot: string;
  try {
    realRoot = realpathSync(root);
  } catch (err) {
    problem(root, "(directory)", `cannot read the directory: ${describeFsError(err)}`, "error", root);
    return listing;
  }
  const inside = (real: string) => real === realRoot || real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep);
  const visited = new Set<string>();
  let limitReported = false;
  const overLimit = (path: string, what: string): void => {
    if (limitReported) return;
    limitReported = true;
    problem(path, "(directory)", `${what}; ${path} and what follows it are not read (raise the limit if this is intended)`, "error", root);
  };

  const walk = (dir: string, real: string): void => {
    if (visited.has(real)) return;
    visited.add(real);
    if (listing.directories.length >= limits.maxDirectories) return overLimit(dir, `more than ${limits.maxDirectories} directories under the config directory`);
    let names: string[];
    let stats: Stats;
    try {
      stats = statSync(dir);
      names = readdirSync(dir).sort(compareNames);
    } catch (err) {
      problem(dir, "(directory)", `cannot read the directory: ${describeFsError(err)}`, "error", dir);
      return;
    }
    listing.directories.push({ path: dir, identity: `${stats.dev}:${stats.ino}:${stats.birthtimeMs}` });
    for (const name of names) {
      if (name.startsWith(".")) continue;
      const path = join(dir, name);
      let entry: Stats;
      let target = join(real, name);
      try {
        entry = lstatSync(path);
        if (entry.isSymbolicLink()) {
          target = realpathSync(path);
          entry = statSync(target);
          if (!inside(target)) {
            if (entry.isDirectory() || isYamlFile(name)) {
              problem(path, entry.isDirectory() ? "(directory)" : "(file)", `a symbolic link to ${target}, outside the config directory: not followed (links are followed only within the directory)`, "warning");
            }
            continue;
          }
        }
      } catch {
        continue; // a dangling symlink, or removed since the listing
      }
      if (entry.isDirectory()) walk(path, target);
      else if (!isYamlFile(name)) continue;
      else if (!entry.isFile()) problem(path, "(file)", `not a regular file (${fileType(entry)}): only regular files are read; it is skipped`, "error", path);
      else if (listing.files.length >= limits.maxFiles) overLimit(path, `more than ${limits.maxFiles} YAML files under the config directory`);
      else listing.files.push(path);
    }
  };
  // A file named as the root (`weft analyze a.yaml`) is the listing's one file, whatever its extension.
  try {
    if (statSync(realRoot).isFile()) {
      listing.files.push(root);
      return listing;
    }
  } catch {
    // removed since realpath: walk() reports it
  }
  walk(root, realRoot);
  return listing;
}

export function isYamlFile(name: string): boolean {
  return /\.ya?ml$/i.test(name);
}

function fileType(s: Stats): string {
  if (s.isFIFO()) return "a named pipe";
  if (s.isSocket()) return "a socket";
  if (s.isCharacterDevice()) return "a character device";
  if (s.isBlockDevice()) return "a block device";
  return "not a file";
}

export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === "ENOENT") return "it does not exist";
  if (e.code === "EACCES" || e.code === "EPERM") return "permission denied";
  if (e.code === "ENOTDIR") return "it is not a directory";
  if (e.code === "ELOOP") return "too many levels of symbolic links";
  return e.message;
}
