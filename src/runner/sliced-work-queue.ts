// The mesh controller's work (applying a config, generating a new proxy class, regenerating
// after a certificate renewal) as a queue of step generators run one at a time. Sliced: the
// event loop is given back whenever a slice of CPU time has been used, so admin and xDS keep
// answering while a large config is applied. Not sliced (tests, benches that drive the
// controller directly): every task runs to the end when it is queued. `finishNow()` completes
// the queue synchronously, for a synchronous caller that must see all earlier work done.
import { yieldToEventLoop, type Steps } from "../work/work-steps.js";

interface Task {
  start: () => Steps<unknown>;
  steps?: Steps<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export class SlicedWorkQueue {
  private readonly tasks: Task[] = [];
  private pumping = false;
  /** Inside a task's step: a task queued from there runs after it, not within it. */
  private stepping = false;
  /** Longest slice seen (ms of work between two yields), for tests and metrics. */
  longestSliceMs = 0;

  /** `sliceMs`: CPU time per slice (e.g. DEFAULT_SLICE_MS); undefined runs every task to the end when queued. */
  constructor(private readonly sliceMs?: number) {}

  get sliced(): boolean {
    return this.sliceMs !== undefined;
  }

  /** Tasks queued or running. */
  get pending(): number {
    return this.tasks.length;
  }

  /** Queues a task; `start` is called when its turn comes (so it sees the state of that moment). */
  run<T>(start: () => Steps<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.tasks.push({ start, resolve: resolve as (v: unknown) => void, reject });
      if (!this.sliced) this.finishNow();
      else if (!this.pumping) void this.pump();
    });
  }

  /** Runs every queued task (the one in progress first) to the end, now. */
  finishNow(): void {
    if (this.stepping) return;
    while (this.tasks.length > 0) this.step(this.tasks[0]!, Infinity);
  }

  /** Advances a task until it is done or `deadline` passes; settles and removes it when done. */
  private step(task: Task, deadline: number): void {
    this.stepping = true;
    try {
      task.steps ??= task.start();
      for (;;) {
        const r = task.steps.next();
        if (r.done) {
          this.tasks.shift();
          task.resolve(r.value);
          return;
        }
        if (performance.now() >= deadline) return;
      }
    } catch (err) {
      this.tasks.shift();
      task.reject(err);
    } finally {
      this.stepping = false;
    }
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.tasks.length > 0) {
        const started = performance.now();
        this.step(this.tasks[0]!, started + this.sliceMs!);
        this.longestSliceMs = Math.max(this.longestSliceMs, performance.now() - started);
        if (this.tasks.length > 0) await yieldToEventLoop();
      }
    } finally {
      this.pumping = false;
    }
  }
}
