import { describe, expect, it } from "vitest";
import type { ValidationIssue } from "../api/types.js";
import { desiredStatus, STATUS_LIMITS, statusFingerprint, withTransitionTimes } from "./resource-status.js";

const issue = (field: string, severity: "error" | "warning" = "error"): ValidationIssue => ({ cluster: "Kubernetes", kind: "VirtualService", namespace: "shop", name: "web", resourceVersion: "1", resource: "VirtualService/shop/web", field, message: "expected something", severity });

describe("desiredStatus", () => {
  it("valid and accepted by every proxy: Reconciled True", () => {
    expect(desiredStatus({ generation: 3, issues: [], rejections: [] })).toEqual({
      observedGeneration: 3,
      conditions: [{ type: "Reconciled", status: "True", reason: "Accepted", message: "valid; no connected proxy rejects configuration derived from it", observedGeneration: 3 }],
    });
  });

  it("rejected by proxies: the NACK text with the proxy count, most proxies first", () => {
    const s = desiredStatus({ generation: 2, issues: [], rejections: [{ type: "rds", message: "one", proxies: 1 }, { type: "cds", message: "many", proxies: 7 }] });
    expect(s.conditions[0]).toMatchObject({ status: "False", reason: "Rejected", message: "rejected by 7 proxies (cds): many; rejected by 1 proxy (rds): one" });
  });

  it("invalid: the errors, and every problem in validationMessages (warnings keep it True)", () => {
    const s = desiredStatus({ generation: 1, issues: [issue("spec.hosts"), issue("spec.http[0].weight", "warning")], rejections: [] });
    expect(s.conditions[0]).toMatchObject({ status: "False", reason: "Invalid" });
    expect(s.conditions[0]!.message).toContain("1 validation error (Weft keeps using the last valid version, if any): spec.hosts: expected something");
    expect(s.validationMessages).toEqual([{ level: "ERROR", description: "spec.hosts: expected something" }, { level: "WARNING", description: "spec.http[0].weight: expected something" }]);
    expect(desiredStatus({ generation: 1, issues: [issue("a", "warning")], rejections: [] }).conditions[0]!.status).toBe("True");
  });

  it("is bounded: problems listed, message length", () => {
    const many = Array.from({ length: 50 }, (_, i) => issue(`f${i}`));
    const s = desiredStatus({ generation: 1, issues: many, rejections: [{ type: "rds", message: "x".repeat(10_000), proxies: 1 }] });
    expect(s.validationMessages).toHaveLength(STATUS_LIMITS.validationMessages + 1);
    expect(s.conditions[0]!.message.length).toBeLessThan(STATUS_LIMITS.messageChars + 100);
  });

  it("transition times move only when the condition's status changes; the fingerprint ignores them", () => {
    const t0 = new Date("2026-12-02T05:00:00.123Z");
    const t1 = new Date("2026-12-02T06:00:00Z");
    const a = withTransitionTimes(desiredStatus({ generation: 1, issues: [], rejections: [{ type: "rds", message: "m", proxies: 1 }] }), undefined, t0);
    expect(a.conditions[0]!.lastTransitionTime).toBe("2026-12-02T05:00:00Z");
    const b = withTransitionTimes(desiredStatus({ generation: 1, issues: [], rejections: [{ type: "rds", message: "m", proxies: 2 }] }), a, t1);
    expect(b.conditions[0]!.lastTransitionTime).toBe("2026-12-02T05:00:00Z");
    const c = withTransitionTimes(desiredStatus({ generation: 1, issues: [], rejections: [] }), b, t1);
    expect(c.conditions[0]!.lastTransitionTime).toBe("2026-12-02T06:00:00Z");
    expect(statusFingerprint(withTransitionTimes(desiredStatus({ generation: 1, issues: [], rejections: [] }), undefined, t0))).toBe(statusFingerprint(c));
  });
});
