import { describe, expect, it } from "vitest";
import { PushBudget } from "./push-budget.js";

describe("PushBudget", () => {
  it("has room until the limit is taken, wakes waiters when bytes come back, and counts each release once", () => {
    const budget = new PushBudget(100);
    const a = budget.take(60);
    expect(budget.available).toBe(true);
    const b = budget.take(60);
    expect(budget.available).toBe(false);
    let woken = 0;
    budget.waitForRoom(() => woken++);
    a();
    a();
    expect(budget.bytesInFlight).toBe(60);
    expect(woken).toBe(1);
    b();
    expect(budget.bytesInFlight).toBe(0);
    expect(woken).toBe(1);
  });

  it("gives the bytes back after holdMs when nobody answers", async () => {
    const budget = new PushBudget(10, 30);
    budget.take(50);
    expect(budget.available).toBe(false);
    await new Promise((r) => setTimeout(r, 80));
    expect(budget.bytesInFlight).toBe(0);
  });
});
