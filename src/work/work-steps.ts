// Long work written as generators that yield between small steps, so the same code can run
// to the end at once (tests, one-shot tools) or in time slices that give the event loop back
// in between (`weft serve`: admin and xDS stay responsive while a large config is applied).
// A step is a `yield` with no value; the generator's return value is the result.

export type Steps<T> = Generator<void, T, void>;

/** Runs every step now and returns the result. */
export function runToEnd<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Default CPU time a slice may use before the event loop is given back. */
export const DEFAULT_SLICE_MS = 15;

/** Gives the event loop back: timers, I/O and other callbacks run before this resolves. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Runs the steps, giving the event loop back whenever a slice of `sliceMs` has been used. */
export async function runInSlices<T>(steps: Steps<T>, sliceMs = DEFAULT_SLICE_MS): Promise<T> {
  let deadline = performance.now() + sliceMs;
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() >= deadline) {
      await yieldToEventLoop();
      deadline = performance.now() + sliceMs;
    }
  }
}

