import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { GO_TOOLS, goToolBinary, goToolBinDir } from "./go-tool-cache.js";

const SCRIPT = fileURLToPath(new URL("../../scripts/cached-go-build.sh", import.meta.url));
const script = (...args: string[]) => execFileSync(SCRIPT, args, { encoding: "utf8", env: { ...process.env, XDG_CACHE_HOME: "/tmp/weft-cache-test" } }).trim();

describe("go-tool-cache: the same versions and directories as scripts/cached-go-build.sh", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  for (const [tool, t] of Object.entries(GO_TOOLS)) {
    it(`${tool}: version ${t.version} and its cache directory`, () => {
      expect(script("--version", tool)).toBe(t.version);
      process.env.XDG_CACHE_HOME = "/tmp/weft-cache-test";
      delete process.env[t.cacheEnv];
      delete process.env[t.binEnv];
      expect(goToolBinDir(tool, t.version, t.cacheEnv)).toBe(script("--dir", tool));
      expect(goToolBinary(tool as keyof typeof GO_TOOLS)).toBe(`${script("--dir", tool)}/${t.binary}`);
    });
  }

  it("the cache variable moves the directory, the binary variable names the binary", () => {
    delete process.env.WEFT_JAEGER_BIN; // .ci/run exports it
    process.env.WEFT_JAEGER_CACHE = "/opt/j";
    expect(goToolBinary("jaeger")).toBe("/opt/j/bin/jaeger");
    process.env.WEFT_JAEGER_BIN = "/usr/local/bin/jaeger";
    expect(goToolBinary("jaeger")).toBe("/usr/local/bin/jaeger");
  });

  it("an unknown tool is refused by the script, naming the known ones", () => {
    expect(() => execFileSync(SCRIPT, ["no-such-tool"], { encoding: "utf8", stdio: "pipe" })).toThrow(/unknown tool \(known: .*jaeger.*prometheus/);
  });
});
