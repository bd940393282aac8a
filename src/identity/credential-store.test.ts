// Bootstrap credentials: bound to the identity they were issued for, revoked with their
// WorkloadEntry, repaired when damaged on disk, and never a crash when the disk is full.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CredentialStore, type Credential } from "./credential-store.js";

const dirs: string[] = [];
const unmounts: (() => void)[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "weft-creds-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const u of unmounts.splice(0)) u();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const PRODUCTPAGE = { namespace: "bookinfo", name: "bookinfo-productpage" };

describe("credential store", () => {
  it("a deleted workload's token is revoked (files removed, onRevoked told) and never yields another identity, even when the name comes back", () => {
    const dir = tempDir();
    const revoked: Credential[] = [];
    const store = new CredentialStore(dir, { onRevoked: (c) => revoked.push(c) });
    store.reconcile([{ ...PRODUCTPAGE, serviceAccount: "low-priv" }]);
    const oldToken = readFileSync(store.tokenPath(PRODUCTPAGE), "utf8").trim();
    const issued = store.authenticate(oldToken)!;
    expect(issued).toMatchObject({ ...PRODUCTPAGE, serviceAccount: "low-priv", kind: "workload" });
    expect(statSync(store.tokenPath(PRODUCTPAGE)).mode & 0o777).toBe(0o600);

    // The WorkloadEntry is deleted: the token stops working at once.
    expect(store.reconcile([])).toMatchObject({ revoked: 1 });
    expect(store.authenticate(oldToken)).toBeUndefined();
    expect(store.byPrincipalName(issued.principal)).toBeUndefined();
    expect(existsSync(store.tokenPath(PRODUCTPAGE))).toBe(false);
    expect(readdirSync(path.join(dir, "bookinfo"))).toEqual([]);
    expect(revoked.map((c) => c.principal)).toEqual([issued.principal]);

    // A WorkloadEntry of that name reappears with another service account: a new token, a new principal.
    store.reconcile([{ ...PRODUCTPAGE, serviceAccount: "bookinfo-productpage" }]);
    expect(store.authenticate(oldToken)).toBeUndefined();
    const newToken = readFileSync(store.tokenPath(PRODUCTPAGE), "utf8").trim();
    expect(newToken).not.toBe(oldToken);
    expect(store.authenticate(newToken)).toMatchObject({ serviceAccount: "bookinfo-productpage" });
    expect(store.authenticate(newToken)!.principal).not.toBe(issued.principal);
  });

  it("a WorkloadEntry whose serviceAccount changes gets a new token; the old one is revoked", () => {
    const store = new CredentialStore(tempDir());
    store.reconcile([{ ...PRODUCTPAGE, serviceAccount: "a" }]);
    const before = readFileSync(store.tokenPath(PRODUCTPAGE), "utf8").trim();
    expect(store.reconcile([{ ...PRODUCTPAGE, serviceAccount: "b" }])).toEqual({ issued: 1, revoked: 1, failed: 0 });
    expect(store.authenticate(before)).toBeUndefined();
    expect(store.authenticate(readFileSync(store.tokenPath(PRODUCTPAGE), "utf8").trim())).toMatchObject({ serviceAccount: "b" });
    // Reconciling the same workloads again changes nothing.
    expect(store.reconcile([{ ...PRODUCTPAGE, serviceAccount: "b" }])).toEqual({ issued: 0, revoked: 0, failed: 0 });
  });

  it("standalone credentials (gateways) carry their service account and labels and survive reconciles", () => {
    const store = new CredentialStore(tempDir());
    const token = store.ensure({ namespace: "istio-system", name: "istio-ingressgateway", labels: { istio: "ingressgateway" } });
    store.reconcile([]);
    expect(store.authenticate(token)).toMatchObject({ kind: "standalone", serviceAccount: "istio-ingressgateway", labels: { istio: "ingressgateway" } });
    expect(store.ensure({ namespace: "istio-system", name: "istio-ingressgateway", labels: { istio: "ingressgateway" } })).toBe(token);
    // Asked for with other labels: another identity, so a new token; the old one is revoked.
    const relabelled = store.ensure({ namespace: "istio-system", name: "istio-ingressgateway", labels: { istio: "egressgateway" } });
    expect(relabelled).not.toBe(token);
    expect(store.authenticate(token)).toBeUndefined();
    expect(store.authenticate(relabelled)).toMatchObject({ labels: { istio: "egressgateway" } });
  });

  it("keeps credentials across restarts, and at start removes (and logs) empty, corrupt or mismatched files", () => {
    const dir = tempDir();
    const first = new CredentialStore(dir);
    const ws = ["a", "b", "c", "d"].map((name) => ({ namespace: "default", name, serviceAccount: `${name}-sa` }));
    first.reconcile(ws);
    const tokens = ws.map((w) => readFileSync(first.tokenPath(w), "utf8").trim());
    writeFileSync(first.tokenPath(ws[1]!), ""); // what a full disk left behind before this fix
    writeFileSync(path.join(dir, "default", "c.json"), "{not json");
    writeFileSync(first.tokenPath(ws[3]!), "someone-elses-token\n");
    writeFileSync(path.join(dir, "default", "a.token.tmp-1-1"), "half");
    const warnings: unknown[] = [];
    const logger = { warn: (fields: unknown) => warnings.push(fields), info: () => undefined, error: () => undefined } as never;
    const second = new CredentialStore(dir, { logger });
    expect(second.authenticate(tokens[0])).toMatchObject({ name: "a", serviceAccount: "a-sa" });
    for (const t of tokens.slice(1)) expect(second.authenticate(t)).toBeUndefined();
    expect(second.authenticate("someone-elses-token")).toBeUndefined();
    expect(warnings).toHaveLength(3);
    expect(JSON.stringify(warnings)).toMatch(/b\.token.*token file empty/);
    expect(readdirSync(path.join(dir, "default")).sort()).toEqual(["a.json", "a.token"]);
    // The next reconcile issues fresh credentials for the repaired workloads.
    expect(second.reconcile(ws)).toMatchObject({ issued: 3, failed: 0 });
    for (const w of ws) expect(second.authenticate(readFileSync(second.tokenPath(w), "utf8").trim())).toMatchObject({ serviceAccount: w.serviceAccount });
  });

  it("a write that fails is logged and retried, never thrown, and leaves no file behind", async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, "blocked"), "a file where the namespace directory should be");
    const errors: unknown[] = [];
    const logger = { warn: () => undefined, info: () => undefined, error: (f: unknown) => errors.push(f) } as never;
    const store = new CredentialStore(dir, { logger, retryMs: 50 });
    try {
      const w = { namespace: "blocked", name: "w", serviceAccount: "sa" };
      expect(() => store.reconcile([w])).not.toThrow();
      expect(store.reconcile([w])).toMatchObject({ failed: 1, issued: 0 });
      expect(store.list()).toEqual([]);
      expect(errors.length).toBeGreaterThan(0);
      rmSync(path.join(dir, "blocked"));
      await new Promise((r) => setTimeout(r, 200));
      expect(store.authenticate(readFileSync(store.tokenPath(w), "utf8").trim())).toMatchObject({ serviceAccount: "sa" });
    } finally {
      store.close();
    }
  });
});

/** A tmpfs of `size` mounted on a fresh directory (root only; unmounted after the test); undefined where mounting is not allowed. */
function mountTmpfs(size: string): string | undefined {
  const dir = tempDir();
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir], { stdio: "ignore" });
  } catch {
    return undefined;
  }
  unmounts.push(() => execFileSync("umount", [dir]));
  return dir;
}

const probe = mountTmpfs("16k");
for (const u of unmounts.splice(0)) u();

describe.skipIf(!probe)(`credentials on a full disk (a real tmpfs)${probe ? "" : " (skipped: cannot mount tmpfs here; the injected-failure test above covers the path)"}`, () => {
  it("ENOSPC while issuing: no exception, no empty token file; issued once space is back", async () => {
    const mounted = mountTmpfs("64k")!;
    const store = new CredentialStore(path.join(mounted, "credentials"), { retryMs: 50 });
    try {
      store.reconcile([{ namespace: "default", name: "before", serviceAccount: "sa" }]);
      const fill = path.join(mounted, "fill");
      try {
        writeFileSync(fill, Buffer.alloc(1024 * 1024));
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe("ENOSPC");
      }
      const w = { namespace: "default", name: "added", serviceAccount: "sa" };
      const result = store.reconcile([{ namespace: "default", name: "before", serviceAccount: "sa" }, w]);
      expect(result).toMatchObject({ failed: 1, issued: 0 });
      expect(existsSync(store.tokenPath(w))).toBe(false);
      expect(readdirSync(path.join(mounted, "credentials", "default")).sort()).toEqual(["before.json", "before.token"]);
      rmSync(fill);
      await new Promise((r) => setTimeout(r, 300));
      const token = readFileSync(store.tokenPath(w), "utf8").trim();
      expect(token.length).toBeGreaterThan(20);
      expect(store.authenticate(token)).toMatchObject({ name: "added" });
    } finally {
      store.close();
    }
  });
});
