// glibc's allocator settings for serve/demo: which environment the process re-executes with,
// and that a real re-execution carries the tunable (and happens once).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { MMAP_THRESHOLD_BYTES, tunedEnvironment } from "./glibc-malloc-settings.js";

const GLIBC = "2.36";

describe("tunedEnvironment", () => {
  it("fixes glibc's mmap threshold when nothing is set", () => {
    expect(tunedEnvironment({ PATH: "/bin" }, GLIBC)).toEqual({ PATH: "/bin", GLIBC_TUNABLES: `glibc.malloc.mmap_threshold=${MMAP_THRESHOLD_BYTES}` });
  });
  it("appends to the user's other tunables", () => {
    expect(tunedEnvironment({ GLIBC_TUNABLES: "glibc.malloc.arena_max=2" }, GLIBC)?.GLIBC_TUNABLES).toBe(`glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=${MMAP_THRESHOLD_BYTES}`);
  });
  it("keeps a threshold the user chose, other C libraries, and the switch-off", () => {
    expect(tunedEnvironment({ MALLOC_MMAP_THRESHOLD_: "65536" }, GLIBC)).toBeUndefined();
    expect(tunedEnvironment({ GLIBC_TUNABLES: "glibc.malloc.mmap_threshold=1048576" }, GLIBC)).toBeUndefined();
    expect(tunedEnvironment({}, undefined)).toBeUndefined();
    expect(tunedEnvironment({ WEFT_GLIBC_MALLOC_TUNING: "0" }, GLIBC)).toBeUndefined();
  });
});

describe.runIf(process.platform === "linux" && typeof process.execve === "function")("applyGlibcMallocSettings", () => {
  it("re-executes once with the tunable, keeping arguments and the process id", () => {
    const script = [
      `import { applyGlibcMallocSettings } from ${JSON.stringify(new URL("./glibc-malloc-settings.ts", import.meta.url).pathname)};`,
      // Counts how often the program started (each start appends a line).
      `import { appendFileSync } from "node:fs"; appendFileSync(process.argv[2] + ".starts", process.pid + "\\n");`,
      "applyGlibcMallocSettings();",
      "console.log(JSON.stringify({ pid: process.pid, tunables: process.env.GLIBC_TUNABLES ?? null, args: process.argv.slice(2) }));",
    ].join("\n");
    const env = { ...process.env };
    delete env.GLIBC_TUNABLES;
    delete env.MALLOC_MMAP_THRESHOLD_;
    delete env.WEFT_GLIBC_MALLOC_TUNING;
    const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;
    const dir = mkdtempSync(path.join(tmpdir(), "weft-malloc-"));
    try {
      const file = path.join(dir, "program.mts");
      writeFileSync(file, script);
      const out = execFileSync(process.execPath, ["--import", "tsx", file, path.join(dir, "run"), "b c"], { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      const result = JSON.parse(out.trim()) as { pid: number; tunables: string | null; args: string[] };
      const starts = readFileSync(path.join(dir, "run.starts"), "utf8").trim().split("\n");
      expect(result.args).toEqual([path.join(dir, "run"), "b c"]);
      if (!glibc) {
        expect(result.tunables).toBeNull();
        expect(starts).toEqual([String(result.pid)]);
        return;
      }
      expect(result.tunables).toBe(`glibc.malloc.mmap_threshold=${MMAP_THRESHOLD_BYTES}`);
      // Started twice (before and after the one re-execution), as the same process.
      expect(starts).toEqual([String(result.pid), String(result.pid)]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
