// RootRotation on demand across replicas: `weft ca rotate-root` asked of a follower is passed on
// to the leader through the shared store's request (the root Secret's annotations in a
// cluster: e2e/root-rotation.e2e.test.ts checks that against a real kube-apiserver).
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { loadOrCreateCa } from "../ca/certificate-authority.js";
import { silentLogger } from "../log/logger.js";
import type { LeaderElection } from "./leader-election.js";
import { NotLeaderError, RootRotation } from "./root-rotation.js";

const dirs: string[] = [];
const rotations: RootRotation[] = [];
afterEach(() => {
  for (const r of rotations.splice(0)) r.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fixedLeader(identity: string, leading: boolean, leaderName: string): LeaderElection {
  return { identity, isLeader: () => leading, leaderIdentity: () => leaderName, onChange: () => () => {}, start: () => {}, close: async () => {} };
}

/** The shared store's request slot, as the root Secret's annotations hold it. */
class RequestSlot {
  value: { by: string; at: string } | undefined;
  reads = 0;
  readonly api = {
    send: async (by: string) => {
      this.value = { by, at: new Date().toISOString() };
    },
    pending: async () => {
      this.reads++;
      return this.value;
    },
  };
}

async function replicas(withRequests: boolean) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "weft-rotation-request-"));
  dirs.push(dir);
  const slot = new RequestSlot();
  const make = async (name: string, leading: boolean) => {
    const ca = await loadOrCreateCa({ dir: path.join(dir, "ca") });
    const rotation = new RootRotation({
      ca,
      leader: fixedLeader(name, leading, "weft-a"),
      logger: silentLogger(),
      rotateBefore: { fraction: 0.2 },
      phaseMs: 60_000,
      applyTrust: async () => {},
      metrics: new Registry(),
      ...(withRequests ? { requests: slot.api } : {}),
    });
    rotations.push(rotation);
    return { ca, rotation };
  };
  return { slot, a: await make("weft-a", true), b: await make("weft-b", false) };
}

describe("weft ca rotate-root on a follower", () => {
  it("is passed on to the leader through the shared store; the leader starts and says who asked", async () => {
    const { slot, a, b } = await replicas(true);
    const answer = await b.rotation.request();
    expect(answer).toMatchObject({ started: false, requested: true });
    expect(slot.value?.by).toBe("weft-b");
    expect(a.ca.rootRotationPhase()).toBe("idle"); // nothing happens until the leader sees the store change
    await a.rotation.follow(); // what the leader's watch of the store runs
    expect(a.ca.rootRotationPhase()).toBe("trusting");
    expect(a.rotation.status().lastStarted?.reason).toMatch(/^requested by weft-b at .* \(through the shared root store\)$/);
    // The follower follows the store, and a request while rotating starts nothing more.
    await b.rotation.follow();
    expect(b.ca.rootRotationPhase()).toBe("trusting");
    slot.value = undefined;
    expect(await b.rotation.request()).toMatchObject({ started: false });
    expect(slot.value).toBeUndefined();
  });

  it("the leader reads the store's request only when the store changed or it became leader, not at every check", async () => {
    const { slot, a } = await replicas(true);
    await a.rotation.follow();
    const reads = slot.reads;
    expect(reads).toBe(1);
    await a.rotation.follow();
    expect(slot.reads).toBe(2);
    expect(a.ca.rootRotationPhase()).toBe("idle"); // no request pending: nothing started
  });

  it("without a shared store a follower answers NotLeaderError naming the leader", async () => {
    const { b } = await replicas(false);
    await expect(b.rotation.request()).rejects.toThrow(NotLeaderError);
    await expect(b.rotation.request()).rejects.toThrow(/the leader is weft-a/);
  });
});
