// Memory this process holds after full garbage collections: V8 heap plus memory outside it
// (Buffers). For tests and benchmarks that check memory returns to a baseline; exposes gc
// at run time, so no --expose-gc flag is needed.
import v8 from "node:v8";
import vm from "node:vm";

let gc: (() => void) | undefined;

/** V8 heap used + external memory (Buffers) after full collections, in MB. */
export function heapAfterGcMb(): number {
  if (!gc) {
    v8.setFlagsFromString("--expose-gc");
    gc = vm.runInNewContext("gc") as () => void;
  }
  for (let i = 0; i < 4; i++) gc();
  const m = process.memoryUsage();
  return (m.heapUsed + m.external) / 2 ** 20;
}
