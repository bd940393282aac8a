// The validating webhook's decision, pure: an `admission.k8s.io/v1` AdmissionReview in, the
// AdmissionReview answer out. The object is validated exactly as the Kubernetes source
// validates what it watches (istio-object.ts), and problems are printed by the one printer
// (`formatIssue`, as `weft validate` prints them): errors (what Istio would refuse) deny the
// request, warnings go into `response.warnings` and let it through. Kinds Weft does not read,
// deletes and connects are allowed untouched. Everything echoed back is bounded.
import { boundText, formatIssue, type ValidationIssue } from "../api/types.js";
import { ISTIO_KINDS, type IstioKind } from "../sources/kubernetes/istio-kinds.js";
import { validateIstioObject } from "../sources/kubernetes/istio-object.js";

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";

/** Bounds on what an answer carries (the apiserver truncates long warnings anyway). */
export const ADMISSION_LIMITS = {
  /** Errors listed in the denial message; more are counted. */
  maxErrors: 20,
  /** Warnings returned; more are counted in the last one. */
  maxWarnings: 10,
  /** Characters per warning. */
  warningChars: 256,
  /** Characters of the whole denial message. */
  messageChars: 8000,
} as const;

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason?: string; message: string };
  warnings?: string[];
  /** Mutating webhooks: base64 of a JSON patch (RFC 6902). */
  patchType?: "JSONPatch";
  patch?: string;
}

export interface AdmissionReviewAnswer {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: "AdmissionReview";
  response: AdmissionResponse;
}

/** A request that is not an AdmissionReview Weft can answer (HTTP 400 with this message). */
export class BadAdmissionReview extends Error {}

interface LooseRequest {
  uid?: unknown;
  kind?: { group?: unknown; version?: unknown; kind?: unknown };
  operation?: unknown;
  namespace?: unknown;
  object?: unknown;
}

/** Istio kinds by "group/Kind". */
function kindIndex(): Map<string, IstioKind> {
  return new Map(ISTIO_KINDS.map((k) => [`${k.group}/${k.kind}`, k]));
}

const KINDS = kindIndex();

export interface ReviewOptions {
  /** The cluster's name in messages (as the Kubernetes source names it). */
  clusterId?: string;
}

/** What the webhook concluded, for the answer and for metrics. */
export interface AdmissionDecision {
  answer: AdmissionReviewAnswer;
  kind?: string;
  /** "allowed", "denied" or "skipped" (not an Istio kind Weft reads, or not a create/update). */
  outcome: "allowed" | "denied" | "skipped";
}

/** An AdmissionReview's request, checked: what both webhooks (validating, injecting) read. */
export interface AdmissionRequest {
  uid: string;
  group: string;
  version: string;
  kind: string;
  operation: unknown;
  namespace?: string;
  object: unknown;
  /** The AdmissionReview answering this request. */
  answer(response: Omit<AdmissionResponse, "uid">): AdmissionReviewAnswer;
}

/** Reads an `admission.k8s.io/v1` AdmissionReview; throws BadAdmissionReview (HTTP 400) for anything else. */
export function readAdmissionRequest(body: unknown): AdmissionRequest {
  const review = body as { apiVersion?: unknown; kind?: unknown; request?: LooseRequest } | null;
  if (!review || typeof review !== "object") throw new BadAdmissionReview("expected a JSON AdmissionReview object");
  if (review.kind !== "AdmissionReview") throw new BadAdmissionReview(`expected kind AdmissionReview, got ${JSON.stringify(boundText(String(review.kind), 60))}`);
  if (review.apiVersion !== ADMISSION_API_VERSION) {
    throw new BadAdmissionReview(`expected apiVersion ${ADMISSION_API_VERSION} (set admissionReviewVersions: [v1]), got ${JSON.stringify(boundText(String(review.apiVersion), 60))}`);
  }
  const request = review.request;
  if (!request || typeof request !== "object") throw new BadAdmissionReview("the AdmissionReview has no request");
  if (typeof request.uid !== "string" || request.uid === "" || request.uid.length > 128) throw new BadAdmissionReview("request.uid must be a non-empty string of at most 128 characters");
  const uid = request.uid;
  return {
    uid,
    group: typeof request.kind?.group === "string" ? request.kind.group : "",
    kind: typeof request.kind?.kind === "string" ? request.kind.kind : "",
    version: typeof request.kind?.version === "string" ? request.kind.version : "",
    operation: request.operation,
    ...(typeof request.namespace === "string" ? { namespace: request.namespace } : {}),
    object: request.object,
    answer: (response) => ({ apiVersion: ADMISSION_API_VERSION, kind: "AdmissionReview", response: { uid, ...response } }),
  };
}

export function reviewAdmission(body: unknown, opts: ReviewOptions = {}): AdmissionDecision {
  const request = readAdmissionRequest(body);
  const { answer, group, version } = request;
  const kindName = request.kind;
  const kind = KINDS.get(`${group}/${kindName}`);
  if (!kind || (request.operation !== "CREATE" && request.operation !== "UPDATE")) return { answer: answer({ allowed: true }), outcome: "skipped", ...(kind ? { kind: kind.kind } : {}) };
  const namespace = request.namespace;
  const validated = validateIstioObject(kind, version || kind.versions[0]!, request.object, opts.clusterId ?? "", namespace);
  if (!validated) {
    return { kind: kind.kind, outcome: "denied", answer: answer({ allowed: false, status: { code: 400, reason: "Invalid", message: `${kind.kind}: the object has no metadata.name` } }) };
  }
  // The object under review is not stored yet: the old one's resourceVersion would only mislead.
  const issues = validated.issues.map((i) => ("cluster" in i ? { ...i, resourceVersion: "" } : i));
  const errors = issues.filter((i) => i.severity === "error");
  const warnings = boundedWarnings(issues.filter((i) => i.severity !== "error"));
  if (errors.length === 0) return { kind: kind.kind, outcome: "allowed", answer: answer({ allowed: true, ...(warnings.length > 0 ? { warnings } : {}) }) };
  return {
    kind: kind.kind,
    outcome: "denied",
    answer: answer({ allowed: false, status: { code: 400, reason: "Invalid", message: denialMessage(errors) }, ...(warnings.length > 0 ? { warnings } : {}) }),
  };
}

/** Every error on its own line, as `weft validate` prints it; bounded in count and length. */
export function denialMessage(errors: ValidationIssue[]): string {
  const lines = errors.slice(0, ADMISSION_LIMITS.maxErrors).map(formatIssue);
  if (errors.length > ADMISSION_LIMITS.maxErrors) lines.push(`... and ${errors.length - ADMISSION_LIMITS.maxErrors} more errors`);
  return boundText(lines.join("\n"), ADMISSION_LIMITS.messageChars);
}

function boundedWarnings(warnings: ValidationIssue[]): string[] {
  return boundedWarningTexts(warnings.map(formatIssue));
}

/** At most maxWarnings warnings of at most warningChars each; the rest counted in the last one. */
export function boundedWarningTexts(warnings: string[]): string[] {
  const out = warnings.slice(0, ADMISSION_LIMITS.maxWarnings).map((w) => boundText(w, ADMISSION_LIMITS.warningChars));
  if (warnings.length > ADMISSION_LIMITS.maxWarnings) out.push(`... and ${warnings.length - ADMISSION_LIMITS.maxWarnings} more warnings`);
  return out;
}
