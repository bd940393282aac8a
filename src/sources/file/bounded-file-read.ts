// Reading one config file safely: only a regular file (checked on the open descriptor, so a
// file swapped for a named pipe or a device after listing is still refused), opened
// non-blocking (opening a named pipe never waits for a writer), and never more than
// `maxBytes` (a file that grows while it is read is cut off and refused, not read forever).
import { closeSync, constants, fstatSync, openSync, readSync, statSync } from "node:fs";
import { describeFsError } from "./config-directory-listing.js";

/** (dev, ino, size, mtime, ctime): equal identities mean the same content, without reading it. */
export function fileIdentity(s: { dev: bigint; ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint }): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

/** The identity and size of the file at `path` now (following a symlink), or undefined if it cannot be stat'ed. */
export function currentIdentity(path: string): { identity: string; size: number } | undefined {
  try {
    const stats = statSync(path, { bigint: true });
    return { identity: fileIdentity(stats), size: Number(stats.size) };
  } catch {
    return undefined;
  }
}

export type BoundedRead = { ok: true; text: string; identity: string; bytes: number } | { ok: false; message: string };

export function readRegularFile(path: string, maxBytes: number): BoundedRead {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    return { ok: false, message: `cannot read the file: ${describeFsError(err)}` };
  }
  try {
    const stats = fstatSync(fd, { bigint: true });
    if (!stats.isFile()) return { ok: false, message: "cannot read the file: not a regular file (only regular files are read); it is skipped" };
    if (stats.size > BigInt(maxBytes)) return { ok: false, message: tooLarge(Number(stats.size), maxBytes) };
    // Read to the end, but never past maxBytes + 1 bytes (one more than allowed tells a file
    // that grew past the limit while it was read).
    let buffer = Buffer.allocUnsafe(Math.min(Number(stats.size), maxBytes) + 1);
    let bytes = 0;
    for (;;) {
      if (bytes === buffer.length) {
        if (bytes > maxBytes) return { ok: false, message: tooLarge(bytes, maxBytes) };
        const bigger = Buffer.allocUnsafe(Math.min(buffer.length * 2, maxBytes + 1));
        buffer.copy(bigger, 0, 0, bytes);
        buffer = bigger;
      }
      const n = readSync(fd, buffer, bytes, buffer.length - bytes, null);
      if (n === 0) break;
      bytes += n;
    }
    return { ok: true, text: buffer.toString("utf8", 0, bytes), identity: fileIdentity(stats), bytes };
  } catch (err) {
    return { ok: false, message: `cannot read the file: ${describeFsError(err)}` };
  } finally {
    closeSync(fd);
  }
}

function tooLarge(bytes: number, maxBytes: number): string {
  return `the file is larger than the limit of ${formatBytes(maxBytes)} per file (found ${bytes > maxBytes ? "more than " : ""}${formatBytes(Math.max(bytes, maxBytes))}); it is not read`;
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${+(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}
