// The injecting (mutating) webhook's answer, pure: an AdmissionReview of a Pod CREATE in, the
// AdmissionReview answer out — allowed with a JSON patch adding the sidecar (inject-sidecar.ts),
// allowed untouched (not a pod create, opted out, hostNetwork, already injected), or denied
// with a message naming the pod and the annotation at fault. Warnings (annotations Weft
// ignores) go back to kubectl, bounded.
import { boundText } from "../api/types.js";
import { ADMISSION_LIMITS, boundedWarningTexts, readAdmissionRequest, type AdmissionReviewAnswer } from "./admission-review.js";
import { injectSidecar, type InjectionSettings } from "./inject-sidecar.js";

export interface InjectionReview {
  answer: AdmissionReviewAnswer;
  /** "injected", "skipped" (left untouched) or "refused" (denied), for metrics and logs. */
  outcome: "injected" | "skipped" | "refused";
  /** Why a pod was skipped or refused. */
  reason?: string;
}

export function reviewInjection(body: unknown, settings: InjectionSettings): InjectionReview {
  const request = readAdmissionRequest(body);
  if (request.group !== "" || request.kind !== "Pod" || request.operation !== "CREATE") {
    return { outcome: "skipped", reason: `${request.kind || "object"} ${String(request.operation)}: only pod creates are injected`, answer: request.answer({ allowed: true }) };
  }
  const objectNamespace = (request.object as { metadata?: { namespace?: unknown } } | null)?.metadata?.namespace;
  const namespace = request.namespace ?? (typeof objectNamespace === "string" ? objectNamespace : "default");
  const decision = injectSidecar(request.object, namespace, settings);
  if (decision.outcome === "skipped") return { outcome: "skipped", reason: decision.reason, answer: request.answer({ allowed: true }) };
  const warnings = boundedWarningTexts(decision.warnings);
  const withWarnings = warnings.length > 0 ? { warnings } : {};
  if (decision.outcome === "refused") {
    const message = boundText(decision.message, ADMISSION_LIMITS.messageChars);
    return { outcome: "refused", reason: message, answer: request.answer({ allowed: false, status: { code: 400, reason: "Invalid", message }, ...withWarnings }) };
  }
  const patch = Buffer.from(JSON.stringify(decision.patch)).toString("base64");
  return { outcome: "injected", answer: request.answer({ allowed: true, patchType: "JSONPatch", patch, ...withWarnings }) };
}
