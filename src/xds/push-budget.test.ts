import { describe, expect, it } from "vitest";
import { PushBudget, type BudgetOwner } from "./push-budget.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

  it("after holdMs unanswered bytes stop counting (others may push) and count as overdue until released", async () => {
    const budget = new PushBudget(10, 30);
    const release = budget.take(50);
    let woken = 0;
    budget.waitForRoom(() => woken++);
    expect(budget.available).toBe(false);
    await sleep(80);
    expect(budget.bytesInFlight).toBe(0);
    expect(budget.bytesOverdue).toBe(50);
    expect(woken).toBe(1);
    release();
    expect(budget.bytesOverdue).toBe(0);
  });

  it("an unread response stops counting after unreadHoldMs, a read but unanswered one only after holdMs", async () => {
    const budget = new PushBudget(1000, 150, undefined, 20);
    const owner = (unread: boolean): BudgetOwner => ({ unread: () => unread, cutOff: () => undefined });
    budget.take(100, owner(true));
    budget.take(200, owner(false));
    await sleep(70);
    expect(budget.bytesOverdue).toBe(100);
    expect(budget.bytesInFlight).toBe(200);
    await sleep(150);
    expect(budget.bytesOverdue).toBe(300);
    expect(budget.bytesInFlight).toBe(0);
  });

  it("above the limit of overdue bytes, cuts off the owners of the oldest unread responses, never one that read its bytes", async () => {
    const budget = new PushBudget(100, 20);
    const cut: string[] = [];
    const owner = (name: string, unread: boolean, release: () => () => void): BudgetOwner => ({
      unread: () => unread,
      cutOff: () => {
        cut.push(name);
        release()();
      },
    });
    const releases = new Map<string, () => void>();
    for (const [name, unread] of [["read-1", false], ["unread-1", true], ["unread-2", true], ["unread-3", true]] as const) {
      releases.set(name, budget.take(60, owner(name, unread, () => releases.get(name)!)));
      await sleep(5);
    }
    await sleep(80);
    // 240 overdue > 100: the oldest unread ones go until at most 100 remain (read-1 stays).
    expect(cut).toEqual(["unread-1", "unread-2", "unread-3"]);
    expect(budget.bytesOverdue).toBe(60);
  });
});
