// The status Weft writes on an Istio resource, pure: from the resource's generation, its
// validation problems and the proxies currently rejecting configuration derived from it.
//
//   status:
//     observedGeneration: 4
//     conditions:
//     - type: Reconciled            # as Istio's status
//       status: "False"
//       reason: Rejected            # Accepted | Invalid | Rejected
//       message: "rejected by 2 proxies (rds): regex '/(ab){300}' RE2 program size of 1803 > ..."
//       observedGeneration: 4
//       lastTransitionTime: "2026-12-02T05:40:00Z"
//     validationMessages:           # every error and warning (bounded)
//     - { level: ERROR, description: "spec.http[0].route[0].weight: ..." }
import { boundText, type ValidationIssue } from "../api/types.js";

export const RECONCILED = "Reconciled";

/** Bounds on what one status carries (objects are capped at ~1.5 MB; status should stay small). */
export const STATUS_LIMITS = { validationMessages: 20, descriptionChars: 500, messageChars: 4000, rejectionsListed: 5 } as const;

export interface ProxyRejection {
  /** Short xDS type ("rds", "cds"). */
  type: string;
  /** Envoy's error text. */
  message: string;
  /** How many proxies reject it now. */
  proxies: number;
}

export interface StatusCondition {
  type: typeof RECONCILED;
  status: "True" | "False";
  reason: "Accepted" | "Invalid" | "Rejected";
  message: string;
  observedGeneration: number;
  lastTransitionTime?: string;
}

export interface ValidationMessage {
  level: "ERROR" | "WARNING";
  description: string;
}

export interface ResourceStatus {
  observedGeneration: number;
  conditions: StatusCondition[];
  validationMessages?: ValidationMessage[];
}

export interface StatusInput {
  generation: number;
  issues: readonly ValidationIssue[];
  rejections: readonly ProxyRejection[];
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** The status an object should have (lastTransitionTime is left to the writer). */
export function desiredStatus(input: StatusInput): ResourceStatus {
  const errors = input.issues.filter((i) => i.severity === "error");
  const rejections = [...input.rejections].sort((a, b) => b.proxies - a.proxies || a.type.localeCompare(b.type) || a.message.localeCompare(b.message));
  const parts: string[] = [];
  if (errors.length > 0) {
    parts.push(`${plural(errors.length, "validation error")} (Weft keeps using the last valid version, if any): ${errors.slice(0, 3).map((e) => `${e.field}: ${e.message}`).join("; ")}`);
  }
  for (const r of rejections.slice(0, STATUS_LIMITS.rejectionsListed)) parts.push(`rejected by ${r.proxies === 1 ? "1 proxy" : `${r.proxies} proxies`} (${r.type}): ${r.message}`);
  if (rejections.length > STATUS_LIMITS.rejectionsListed) parts.push(`... and ${rejections.length - STATUS_LIMITS.rejectionsListed} more rejections`);
  const reason = errors.length > 0 ? "Invalid" : rejections.length > 0 ? "Rejected" : "Accepted";
  const message = reason === "Accepted" ? "valid; no connected proxy rejects configuration derived from it" : boundText(parts.join("; "), STATUS_LIMITS.messageChars);
  const messages: ValidationMessage[] = input.issues.slice(0, STATUS_LIMITS.validationMessages).map((i) => ({
    level: i.severity === "error" ? "ERROR" : "WARNING",
    description: boundText(`${i.field}: ${i.message}`, STATUS_LIMITS.descriptionChars),
  }));
  if (input.issues.length > STATUS_LIMITS.validationMessages) {
    messages.push({ level: "WARNING", description: `... and ${input.issues.length - STATUS_LIMITS.validationMessages} more problems` });
  }
  return {
    observedGeneration: input.generation,
    conditions: [{ type: RECONCILED, status: reason === "Accepted" ? "True" : "False", reason, message, observedGeneration: input.generation }],
    ...(messages.length > 0 ? { validationMessages: messages } : {}),
  };
}

/** What decides whether a write is needed: everything but transition times. */
export function statusFingerprint(status: ResourceStatus): string {
  return JSON.stringify({ ...status, conditions: status.conditions.map(({ lastTransitionTime: _t, ...c }) => c) });
}

/** `next` with lastTransitionTime carried from `previous` when the condition's status did not change. */
export function withTransitionTimes(next: ResourceStatus, previous: ResourceStatus | undefined, now: Date): ResourceStatus {
  return {
    ...next,
    conditions: next.conditions.map((c) => {
      const before = previous?.conditions.find((p) => p.type === c.type);
      return { ...c, lastTransitionTime: before && before.status === c.status && before.lastTransitionTime ? before.lastTransitionTime : now.toISOString().replace(/\.\d+Z$/, "Z") };
    }),
  };
}
