// Bounds on what an xDS client can make the server store, log or echo, and on how long a
// stream may leave a response unanswered. Envoy's own requests are far below every bound
// (an Envoy with 3300 EDS clusters sends ~230 KB of names in its largest SotW request); a
// client over a bound gets a clear gRPC status and its stream ends, nothing is kept of it.
// README "Limits" lists each bound with its default and how to change it.

export interface XdsLimits {
  /** Largest gRPC message accepted from a client (grpc.max_receive_message_length). */
  maxRequestBytes: number;
  /** Resource names one stream may subscribe to, per type. */
  maxNamesPerType: number;
  /** Total UTF-8 bytes of those names, per type (delta subscriptions accumulate). */
  maxNameBytesPerType: number;
  /** Longest node.id accepted (characters); a longer one ends the stream. */
  maxNodeIdChars: number;
  /** Longest type_url accepted (characters); a longer one ends the stream. */
  maxTypeUrlChars: number;
  /** NACK error text kept, logged and shown (UTF-8 bytes; longer text is cut, with a marker). */
  maxNackMessageBytes: number;
  /** Node cluster, user agent and similar short fields kept for status (UTF-8 bytes). */
  maxNodeFieldBytes: number;
  /** Node metadata shown in /debug/syncz (bytes of JSON; more keys are left out, with a note). */
  maxNodeMetadataBytes: number;
  /** Recent NACKs kept after their proxies leave: count and total bytes. */
  maxRecentNacks: number;
  maxRecentNackBytes: number;
  /** Subscribed names listed per type in /debug/syncz (the count is always shown). */
  maxListedNames: number;
  /**
   * A stream whose response stays unanswered (no ACK or NACK) this long is ended with
   * DEADLINE_EXCEEDED, and its memory freed. 0 turns this off.
   */
  stallTimeoutMs: number;
  /**
   * A response unanswered this long stops counting against the shared in-flight budget
   * (others may push); it is counted as overdue until answered or its stream ends.
   */
  budgetHoldMs: number;
  /** The same for a response the client has not even read (its bytes are still queued here). */
  budgetUnreadHoldMs: number;
}

export const DEFAULT_XDS_LIMITS: Readonly<XdsLimits> = Object.freeze({
  maxRequestBytes: 4 * 1024 * 1024,
  maxNamesPerType: 100_000,
  maxNameBytesPerType: 4 * 1024 * 1024,
  maxNodeIdChars: 1024,
  maxTypeUrlChars: 256,
  maxNackMessageBytes: 4 * 1024,
  maxNodeFieldBytes: 256,
  maxNodeMetadataBytes: 16 * 1024,
  maxRecentNacks: 200,
  maxRecentNackBytes: 1024 * 1024,
  maxListedNames: 1000,
  stallTimeoutMs: 60_000,
  budgetHoldMs: 5_000,
  budgetUnreadHoldMs: 1_000,
});

/** The defaults with `overrides` applied; throws on a value that is not a positive number. */
export function xdsLimits(overrides: Partial<XdsLimits> = {}): XdsLimits {
  const limits = { ...DEFAULT_XDS_LIMITS, ...overrides };
  for (const [key, value] of Object.entries(limits)) {
    const zeroAllowed = key === "stallTimeoutMs";
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (value === 0 && !zeroAllowed)) {
      throw new Error(`xDS limit ${key} must be a positive number${zeroAllowed ? " (or 0 for off)" : ""}, got ${String(value)}`);
    }
  }
  return limits;
}

/** A client broke a bound: the gRPC status its stream ends with. */
export class LimitExceeded extends Error {
  constructor(
    readonly code: number,
    message: string,
    /** Bounded label for the metric (weft_xds_streams_refused_total{reason}). */
    readonly reason: RefusalReason,
  ) {
    super(message);
  }
}

export type RefusalReason = "node_id" | "type_url" | "names" | "initial_versions" | "stalled" | "overdue" | "decode";

export const GRPC_INVALID_ARGUMENT = 3;
export const GRPC_DEADLINE_EXCEEDED = 4;
export const GRPC_RESOURCE_EXHAUSTED = 8;
