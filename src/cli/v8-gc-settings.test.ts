// V8's GC setting for serve/demo: with it, short-lived ArrayBuffers (ACK-sized, over a retained
// heap) no longer start a full collection every ~64 MiB. Counts collections (no timing) in child
// processes, the setting switched off and on.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

const PROGRAM = (module: string) => `
import { PerformanceObserver, constants } from "node:perf_hooks";
import { applyV8GcSettings } from ${JSON.stringify(module)};
const applied = applyV8GcSettings();
const retained = [];
for (let i = 0; i < 300_000; i++) retained.push({ name: "n" + i, i });
let major = 0;
const seen = new PerformanceObserver((list) => { for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++; });
seen.observe({ entryTypes: ["gc"] });
// 2000 SotW ACKs of ~230 KB arriving in 16 KB chunks, each joined into one message and dropped.
for (let i = 0; i < 2000; i++) {
  const chunks = [];
  for (let j = 0; j < 15; j++) chunks.push(Buffer.allocUnsafe(16384));
  if (Buffer.concat(chunks).length !== 15 * 16384) throw new Error("unexpected length");
}
await new Promise((resolve) => setTimeout(resolve, 50));
seen.disconnect();
console.log(JSON.stringify({ applied, major, retained: retained.length }));
`;

describe("applyV8GcSettings", () => {
  it("WEFT_V8_GC_TUNING=1: short-lived buffers over a retained heap cause far fewer full collections; otherwise V8's default", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "weft-v8-gc-"));
    try {
      const file = path.join(dir, "program.mts");
      writeFileSync(file, PROGRAM(new URL("./v8-gc-settings.ts", import.meta.url).pathname));
      const run = (tuning: string) => {
        const out = execFileSync(process.execPath, ["--import", "tsx", file], { env: { ...process.env, WEFT_V8_GC_TUNING: tuning }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
        return JSON.parse(out.trim()) as { applied: boolean; major: number };
      };
      const before = run("");
      const after = run("1");
      expect(before.applied).toBe(false);
      expect(after.applied).toBe(true);
      // ~440 MiB of buffers: V8's default starts a full collection every ~64 MiB of them.
      expect(before.major, JSON.stringify({ before, after })).toBeGreaterThanOrEqual(4);
      expect(after.major, JSON.stringify({ before, after })).toBeLessThanOrEqual(Math.floor(before.major / 2));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
