import { describe, expect, it } from "vitest";
import { ADMISSION_LIMITS, BadAdmissionReview, reviewAdmission } from "./admission-review.js";

const review = (request: Record<string, unknown>) => ({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: "u-1", operation: "CREATE", namespace: "bookinfo", ...request } });
const vsKind = { group: "networking.istio.io", version: "v1", kind: "VirtualService" };
const vs = (spec: unknown, name = "reviews") => ({ apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name, namespace: "bookinfo" }, spec });

describe("reviewAdmission", () => {
  it("allows a valid VirtualService and echoes the request's uid", () => {
    const d = reviewAdmission(review({ kind: vsKind, object: vs({ hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews" } }] }] }) }));
    expect(d.outcome).toBe("allowed");
    expect(d.answer).toEqual({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: "u-1", allowed: true } });
  });

  it("denies a broken one with every error as `weft validate` prints it (field path, what was expected)", () => {
    const d = reviewAdmission(review({ kind: vsKind, object: vs({ hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews", port: { number: 70000 } } }] }] }) }));
    expect(d.outcome).toBe("denied");
    expect(d.answer.response.allowed).toBe(false);
    expect(d.answer.response.status?.code).toBe(400);
    expect(d.answer.response.status?.message).toMatch(/^kubernetes: VirtualService\/bookinfo\/reviews: spec\.http\[0\]\.route\[0\]\.destination\.port\.number: expected an integer from 1 to 65535/);
  });

  it("fills in the request's namespace for an object without one, and drops the old resourceVersion", () => {
    const object = { ...vs({ hosts: [] }), metadata: { name: "x", resourceVersion: "42" } };
    const d = reviewAdmission(review({ kind: vsKind, operation: "UPDATE", object }));
    expect(d.answer.response.status?.message).toContain("VirtualService/bookinfo/x: spec"); // (an empty hosts list is a delegate VirtualService since 84e8807)
    expect(d.answer.response.status?.message).not.toContain("resourceVersion");
  });

  it("returns warnings without denying, bounded in number and length", () => {
    // 15 rules with distinct matches (so none is unreachable, IST0130), each with one warning
    const rule = (i: number) => ({ match: [{ uri: { exact: `/p${i}` } }], route: [{ destination: { host: "reviews" }, weight: 50 }] });
    const d = reviewAdmission(review({ kind: vsKind, object: vs({ hosts: ["reviews"], http: Array.from({ length: 15 }, (_, i) => rule(i)) }) }));
    expect(d.outcome).toBe("allowed");
    const warnings = d.answer.response.warnings!;
    expect(warnings).toHaveLength(ADMISSION_LIMITS.maxWarnings + 1);
    expect(warnings[0]).toContain("spec.http[0].route[0].weight: a single destination receives all traffic");
    expect(warnings.at(-1)).toBe("... and 5 more warnings");
    for (const w of warnings) expect(w.length).toBeLessThanOrEqual(ADMISSION_LIMITS.warningChars + 40);
  });

  it("lets deletes and kinds Weft does not read through untouched", () => {
    expect(reviewAdmission(review({ kind: vsKind, operation: "DELETE", object: null })).outcome).toBe("skipped");
    const cm = reviewAdmission(review({ kind: { group: "", version: "v1", kind: "ConfigMap" }, object: { metadata: { name: "x" } } }));
    expect(cm).toMatchObject({ outcome: "skipped", answer: { response: { allowed: true } } });
  });

  it("denies an object too large to read, naming the limit", () => {
    const d = reviewAdmission(review({ kind: vsKind, object: vs({ hosts: ["a".repeat(1600 * 1024)] }) }));
    expect(d.outcome).toBe("denied");
    expect(d.answer.response.status?.message).toMatch(/spec is \d+ bytes, more than Weft reads/);
  });

  it("refuses what is not an AdmissionReview v1 with a clear message", () => {
    expect(() => reviewAdmission("x")).toThrow(BadAdmissionReview);
    expect(() => reviewAdmission({ apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview", request: {} })).toThrow(/admissionReviewVersions: \[v1\]/);
    expect(() => reviewAdmission({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" })).toThrow(/no request/);
    expect(() => reviewAdmission(review({ uid: "" }))).toThrow(/request\.uid/);
  });
});
