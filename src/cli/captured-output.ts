// For CLI tests: what a command writes to stdout and stderr, captured with vitest spies (restore
// them with vi.restoreAllMocks()). `reset()` forgets what was captured so far.
import { vi } from "vitest";

export interface CapturedOutput {
  readonly stdout: string;
  readonly stderr: string;
  reset(): void;
}

export function captureOutput(): CapturedOutput {
  const captured = { stdout: "", stderr: "" };
  vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    captured.stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    captured.stderr += String(chunk);
    return true;
  });
  return {
    get stdout() {
      return captured.stdout;
    },
    get stderr() {
      return captured.stderr;
    },
    reset() {
      captured.stdout = captured.stderr = "";
    },
  };
}
