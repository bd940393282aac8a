// Structured JSON logs (pino), one logger per process, children per component.
import { destination, pino, stdTimeFunctions, type Logger } from "pino";

export type { Logger };

export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? process.env.WEFT_LOG_LEVEL ?? "info";
  return pino(
    { name: opts.name ?? "weft", level, base: { pid: process.pid }, timestamp: stdTimeFunctions.isoTime },
    opts.destination ?? destination({ dest: 2, sync: true }),
  );
}

/** A logger that drops everything; for unit tests and simulated clients. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
