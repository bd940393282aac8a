// Issue 10 items 2 and 5 through the real wiring (mesh runner with --security, TLS xDS,
// simulated Envoys): a deleted workload's token is revoked and its streams closed; it never
// obtains another identity; a full disk while a WorkloadEntry is added is an error for that
// workload, retried, never a crash.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { NetworkingResource, WorkloadEntry } from "../api/types.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import { silentLogger } from "../log/logger.js";
import { SimulatedClient } from "../xds/simulated-client.js";
import { bookinfoConfig } from "./bookinfo-fixture.js";
import { startMeshRunner, type MeshRunner } from "./mesh-runner.js";

let runner: MeshRunner | undefined;
const clients: SimulatedClient[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await runner?.close(200);
  runner = undefined;
  for (const f of cleanups.splice(0).reverse()) f();
});

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "weft-revoke-"));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Bookinfo where productpage-v1 is WorkloadEntry "bookinfo-productpage" with `serviceAccount` (or absent). */
const withProductpage = (serviceAccount: string | undefined) =>
  bookinfoConfig((r: NetworkingResource) => {
    if (r.kind !== "WorkloadEntry" || r.metadata.name !== "productpage-v1") return r;
    if (serviceAccount === undefined) return undefined;
    return { ...r, metadata: { ...r.metadata, name: "bookinfo-productpage" }, spec: { ...(r as WorkloadEntry).spec, serviceAccount } } as NetworkingResource;
  });

const PRODUCTPAGE = { namespace: "bookinfo", name: "bookinfo-productpage" };

function sidecar(r: MeshRunner, token: string | undefined): SimulatedClient {
  const sec = r.security!;
  const c = new SimulatedClient({
    target: `127.0.0.1:${r.cp.xdsPort}`,
    nodeId: "sidecar~10.77.0.2~productpage.bookinfo~bookinfo.svc.cluster.local",
    mode: "sotw",
    metadata: { NAMESPACE: "bookinfo", LABELS: JSON.stringify({ app: "productpage", version: "v1" }) },
    ...(token ? { token } : {}),
    tls: { caPem: readFileSync(sec.trustBundleFile, "utf8"), serverName: sec.serverName },
  });
  clients.push(c);
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("credential revocation with --security", () => {
  it("the issue's scenario: WorkloadEntry bookinfo-productpage (serviceAccount low-priv) deleted -> its token's stream is closed, the token refused, no certificate for sa/bookinfo-productpage; re-added with that serviceAccount -> only a new token works", async () => {
    runner = await startMeshRunner({ logger: silentLogger(), security: { stateDir: tempDir() }, classLimits: { releaseGraceMs: 100 } });
    runner.controller.setConfig(withProductpage("low-priv"));
    const creds = runner.security!.credentials;
    const oldToken = readFileSync(creds.tokenPath(PRODUCTPAGE), "utf8").trim();
    const c = sidecar(runner, oldToken);
    c.start();
    await c.waitFor(() => c.names(XDS_TYPES.listener).length > 0);
    const key = runner.cp.xds.registry.list()[0]!.snapshotKey;
    await waitFor(() => runner!.controller.certificateOf(key) !== undefined);
    expect(runner.controller.certificateOf(key)!.identity).toBe("spiffe://cluster.local/ns/bookinfo/sa/low-priv");

    const ended = c.streamEnded();
    runner.controller.setConfig(withProductpage(undefined));
    const e = await ended;
    expect(e.code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(e.details).toMatch(/credential revoked: its WorkloadEntry was deleted/);
    expect(existsSync(creds.tokenPath(PRODUCTPAGE))).toBe(false);
    expect(runner.cp.xds.registry.size).toBe(0);

    // Reconnecting with the revoked token: refused, nothing served.
    const again = sidecar(runner, oldToken);
    const refused = again.streamEnded();
    again.start();
    expect((await refused).code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(again.responses).toHaveLength(0);
    expect(runner.security!.certificates.get({ namespace: "bookinfo", serviceAccount: "bookinfo-productpage" })).toBeUndefined();

    // The name comes back with serviceAccount bookinfo-productpage: the old token still gets nothing.
    runner.controller.setConfig(withProductpage("bookinfo-productpage"));
    const stale = sidecar(runner, oldToken);
    const staleRefused = stale.streamEnded();
    stale.start();
    expect((await staleRefused).code).toBe(GrpcStatus.UNAUTHENTICATED);
    const newToken = readFileSync(creds.tokenPath(PRODUCTPAGE), "utf8").trim();
    expect(newToken).not.toBe(oldToken);
    const fresh = sidecar(runner, newToken);
    fresh.start();
    await fresh.waitFor(() => fresh.names(XDS_TYPES.listener).length > 0);
    const freshKey = runner.cp.xds.registry.list().find((p) => p.principal !== "")!.snapshotKey;
    await waitFor(() => runner!.controller.certificateOf(freshKey) !== undefined);
    expect(runner.controller.certificateOf(freshKey)!.identity).toBe("spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage");
  });
});

describe("a WorkloadEntry's labels change under --security", () => {
  it("its proxies' streams are ended (UNAVAILABLE) and they reconnect into the class of the new labels; the token stays valid", async () => {
    runner = await startMeshRunner({ logger: silentLogger(), security: { stateDir: tempDir() }, classLimits: { releaseGraceMs: 100 } });
    runner.controller.setConfig(withProductpage("low-priv"));
    const token = readFileSync(runner.security!.credentials.tokenPath(PRODUCTPAGE), "utf8").trim();
    const c = sidecar(runner, token);
    c.start();
    await c.waitFor(() => c.names(XDS_TYPES.listener).length > 0);
    expect(runner.cp.xds.registry.list()[0]!.snapshotKey).toContain("app=productpage,version=v1");
    const ended = c.streamEnded();
    /** Fresh objects each time: a config once applied is never modified. */
    const relabelled = (reviewsV2Address?: string) => {
      const config = withProductpage("low-priv");
      for (const r of config.resources) {
        const spec = (r.resource as WorkloadEntry).spec;
        if (r.resource.metadata.name === "bookinfo-productpage") r.resource = { ...r.resource, spec: { ...spec, labels: { app: "productpage", version: "v2" } } } as NetworkingResource;
        if (reviewsV2Address && r.resource.metadata.name === "reviews-v2") r.resource = { ...r.resource, spec: { ...spec, address: reviewsV2Address } } as NetworkingResource;
      }
      return config;
    };
    runner.controller.setConfig(relabelled());
    expect((await ended).code).toBe(GrpcStatus.UNAVAILABLE);
    c.start();
    await waitFor(() => runner!.cp.xds.registry.size === 1);
    expect(runner.cp.xds.registry.list()[0]!.snapshotKey).toContain("app=productpage,version=v2");
    // An unrelated change leaves the stream alone.
    let errors = 0;
    c.on("stream-error", () => errors++);
    expect(runner.controller.setConfig(relabelled("10.77.0.99")).path).toBe("endpoints");
    await sleep(200);
    expect(errors).toBe(0);
  });
});

async function waitFor(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error("timed out");
    await sleep(20);
  }
}

function mountTmpfs(dir: string, size: string): boolean {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
const probeDir = mkdtempSync(path.join(os.tmpdir(), "weft-probe-"));
const canMount = mountTmpfs(probeDir, "16k");
if (canMount) execFileSync("umount", [probeDir]);
rmSync(probeDir, { recursive: true, force: true });

describe.skipIf(!canMount)(`the state directory's disk full (a real tmpfs)${canMount ? "" : " (skipped: cannot mount tmpfs here)"}`, () => {
  it("adding a WorkloadEntry with the disk full neither throws nor leaves an empty token; once space is back the workload authenticates", async () => {
    const stateDir = tempDir();
    expect(mountTmpfs(stateDir, "256k")).toBe(true);
    cleanups.push(() => execFileSync("umount", [stateDir]));
    runner = await startMeshRunner({ logger: silentLogger(), security: { stateDir, credentialRetryMs: 100 } });
    runner.controller.setConfig(withProductpage(undefined));
    const fill = path.join(stateDir, "fill");
    try {
      writeFileSync(fill, Buffer.alloc(1024 * 1024));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe("ENOSPC");
    }
    expect(() => runner!.controller.setConfig(withProductpage("low-priv"))).not.toThrow();
    const tokenFile = runner.security!.credentials.tokenPath(PRODUCTPAGE);
    expect(existsSync(tokenFile)).toBe(false);
    rmSync(fill);
    await waitFor(() => existsSync(tokenFile), 5000);
    const c = sidecar(runner, readFileSync(tokenFile, "utf8").trim());
    c.start();
    await c.waitFor(() => c.names(XDS_TYPES.listener).length > 0);
    expect(runner.cp.xds.registry.list()[0]!.snapshotKey).toContain("/id=bookinfo/low-priv");
  });
});
