import { describe, expect, it } from "vitest";
import { PushBudget, type BudgetOwner } from "./push-budget.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waiters are woken on a turn of the event loop of their own. */
const tick = () => new Promise((r) => setImmediate(r));

describe("PushBudget", () => {
  it("has room until the limit is taken, wakes waiters when bytes come back, and counts each release once", async () => {
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
    await tick();
    expect(woken).toBe(1);
    b();
    expect(budget.bytesInFlight).toBe(0);
    await tick();
    expect(woken).toBe(1);
  });

  it("wakes waiters oldest first, one at a time while there is room: a waiter that takes the room leaves the rest waiting", async () => {
    const budget = new PushBudget(100);
    const first = budget.take(100);
    const order: string[] = [];
    const releases: (() => void)[] = [];
    for (const name of ["a", "b", "c", "d"]) budget.waitForRoom(() => {
      order.push(name);
      if (name !== "b") releases.push(budget.take(100)); // b has nothing to send
    });
    first();
    expect(order).toEqual([]);
    await tick();
    expect(order).toEqual(["a"]);
    releases.shift()!();
    await tick();
    expect(order).toEqual(["a", "b", "c"]);
    releases.shift()!();
    await tick();
    expect(order).toEqual(["a", "b", "c", "d"]);
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

  it("does not cut a stream whose response went unread for less than holdMs, and lets nothing push while overdue bytes exceed the limit", async () => {
    // unread responses become overdue after 10 ms, but are cut only after 200 ms unread
    const budget = new PushBudget(100, 200, () => undefined, 10);
    const cut: string[] = [];
    const releases = new Map<string, () => void>();
    for (const name of ["slow-1", "slow-2", "slow-3"]) {
      releases.set(name, budget.take(60, { unread: () => true, cutOff: () => { cut.push(name); releases.get(name)!(); } }));
    }
    await sleep(60);
    // 180 overdue > 100, but all are younger than holdMs: nobody is cut yet, and no room to push
    expect(budget.bytesOverdue).toBe(180);
    expect(cut).toEqual([]);
    expect(budget.available).toBe(false);
    let woken = false;
    budget.waitForRoom(() => (woken = true));
    // slow-1's client catches up and answers: room again, and one waiter woken
    releases.get("slow-1")!();
    expect(budget.bytesOverdue).toBe(120);
    expect(budget.available).toBe(false);
    releases.get("slow-2")!();
    expect(budget.available).toBe(true);
    await tick();
    expect(woken).toBe(true);
    // a fourth unread response pushes overdue above the limit again; once holdMs passes, the oldest unread goes
    releases.set("slow-4", budget.take(60, { unread: () => true, cutOff: () => { cut.push("slow-4"); releases.get("slow-4")!(); } }));
    const until = Date.now() + 5000;
    while (cut.length === 0 && Date.now() < until) await sleep(20);
    expect(cut).toEqual(["slow-3"]);
    expect(budget.bytesOverdue).toBe(60);
  });
});
