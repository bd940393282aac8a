// Files Weft keeps across restarts (credentials, CA root, trust bundle) are replaced whole or
// not at all: written to a temporary file in the same directory, flushed to disk, renamed over
// the old one, and the directory flushed so the rename survives a power cut. A failed write
// (ENOSPC, EACCES, ...) removes its temporary file and leaves the previous file untouched.
import { chmodSync, closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { chmod, open, rename, rm, stat } from "node:fs/promises";
import path from "node:path";

let counter = 0;
const temporaryName = (file: string) => `${file}.tmp-${process.pid}-${++counter}`;

function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    /* some filesystems cannot fsync a directory; the rename itself is still atomic */
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Replaces `file` with `contents` (mode exact, umask ignored) atomically; throws on failure, leaving the old file. */
export function writeFileAtomicallySync(file: string, contents: string | Buffer, mode: number): void {
  const temporary = temporaryName(file);
  try {
    writeFileSync(temporary, contents, { mode, flush: true });
    chmodSync(temporary, mode);
    renameSync(temporary, file);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw err;
  }
  syncDirectory(path.dirname(file));
}

/** Async form of writeFileAtomicallySync. */
export async function writeFileAtomically(file: string, contents: string | Buffer, mode: number): Promise<void> {
  const temporary = temporaryName(file);
  try {
    const handle = await open(temporary, "w", mode);
    try {
      await handle.writeFile(contents);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await chmod(temporary, mode);
    await rename(temporary, file);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
  syncDirectory(path.dirname(file));
}

/** Why a private key file is readable by others (group/other permission bits), or undefined when it is not. */
export function privateKeyExposure(mode: number): string | undefined {
  const loose = mode & 0o077;
  return loose === 0 ? undefined : `mode ${(mode & 0o777).toString(8).padStart(4, "0")} gives group/other access`;
}

/** privateKeyExposure of a file on disk (undefined when the file is absent). */
export async function privateKeyFileExposure(file: string): Promise<string | undefined> {
  try {
    return privateKeyExposure((await stat(file)).mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
