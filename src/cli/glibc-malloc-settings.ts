// glibc's allocator settings for the long-running commands (serve, demo), applied by
// re-executing the process once with GLIBC_TUNABLES set — glibc reads them only at start.
//
// Why: Buffers live outside V8's heap, in memory from malloc. glibc raises its mmap threshold
// each time a large mmapped block is freed (up to 32 MiB), so after the first freed route
// response or SotW ACK of a few hundred KiB every later one comes from the main arena ([heap]),
// and the freed blocks there stay resident (glibc only returns the arena's top). At 2000
// simulated SotW proxies that held ~940 MB of [heap] for ~160 MB of live ArrayBuffers
// (bench/results/memory-2000.md). A fixed threshold of 128 KiB (glibc's starting value; fixing it
// also fixes the trim threshold) gives large blocks back to the kernel when freed.
//
// Kept: any mmap_threshold the user set (MALLOC_MMAP_THRESHOLD_ or GLIBC_TUNABLES), other
// tunables the user set (appended to), and everything on other C libraries (musl, macOS).
// WEFT_GLIBC_MALLOC_TUNING=0 turns it off.

/** glibc's own initial mmap threshold, made fixed. */
export const MMAP_THRESHOLD_BYTES = 128 * 1024;
const TUNABLE = `glibc.malloc.mmap_threshold=${MMAP_THRESHOLD_BYTES}`;

type Env = Record<string, string | undefined>;

/** The environment to re-execute with, or undefined when nothing is to change. */
export function tunedEnvironment(env: Env, glibcVersion: string | undefined): Env | undefined {
  if (!glibcVersion || env.WEFT_GLIBC_MALLOC_TUNING === "0") return undefined;
  if (env.MALLOC_MMAP_THRESHOLD_ !== undefined || (env.GLIBC_TUNABLES ?? "").includes("glibc.malloc.mmap_threshold")) return undefined;
  const tunables = env.GLIBC_TUNABLES ? `${env.GLIBC_TUNABLES}:${TUNABLE}` : TUNABLE;
  return { ...env, GLIBC_TUNABLES: tunables };
}

/** The glibc version this process runs on (undefined on other C libraries). */
function glibcRuntimeVersion(): string | undefined {
  if (process.platform !== "linux") return undefined;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime;
}

/**
 * Re-executes this process with glibc's mmap threshold fixed (see above), once; returns only
 * when no re-execution is needed or possible (then the process goes on as it is).
 */
export function applyGlibcMallocSettings(): void {
  const env = tunedEnvironment(process.env, glibcRuntimeVersion());
  if (!env || typeof process.execve !== "function") return;
  try {
    process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], env as NodeJS.ProcessEnv);
  } catch (err) {
    process.stderr.write(`weft: could not re-execute with GLIBC_TUNABLES=${env.GLIBC_TUNABLES} (${(err as Error).message}); going on with glibc's defaults\n`);
  }
}
