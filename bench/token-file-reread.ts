// Does Envoy 1.40 read a rotated token file again? A real Envoy connects to a real xDS server
// (grpc-js, TLS) with google_grpc + envoy.grpc_credentials.file_based_metadata (what
// renderBootstrap emits for `xdsTokenFile`). The token file is replaced the way kubelet
// replaces a projected volume (a new `..data` symlink swapped in by rename) and, separately,
// rewritten in place; the server then ends the stream and records the token the reconnect
// carries. Also: Envoy's memory with envoy_grpc (static token) vs google_grpc (token file).
//
//   npx tsx bench/token-file-reread.ts      (results: bench/results/token-file-reread.md)
import { mkdtemp, rename, rm, symlink, writeFile, mkdir, chmod } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { status as GrpcStatus, type Metadata } from "@grpc/grpc-js";
import { loadOrCreateCa } from "../src/ca/certificate-authority.js";
import { renderBootstrap } from "../src/envoy/bootstrap.js";
import { startEnvoy, type EnvoyProcess } from "../src/envoy/envoy-process.js";
import { silentLogger } from "../src/log/logger.js";
import { startControlPlane } from "../src/runner/control-plane.js";
import { statusKb } from "./process-stats.js";

const SNI = "weft.weft-system.svc";

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "weft-token-reread-"));
  await chmod(dir, 0o755);
  const ca = await loadOrCreateCa({ dir: path.join(dir, "ca") });
  const caFile = path.join(dir, "root-cert.pem");
  await writeFile(caFile, ca.trustBundlePem());
  const serving = await ca.issueServingCertificate({ dnsNames: [SNI], ipAddresses: ["127.0.0.1"] });
  const seen: { at: number; token: string }[] = [];
  const cp = await startControlPlane({
    logger: silentLogger(),
    xdsTls: { certChainPem: serving.certChainPem, privateKeyPem: serving.privateKeyPem },
    authenticate: (md: Metadata) => {
      const h = md.get("authorization")[0];
      const token = typeof h === "string" ? h : "<none>";
      seen.push({ at: Date.now(), token });
      return token;
    },
    nodeKey: () => "bench",
  });
  const envoys: EnvoyProcess[] = [];
  const lines: string[] = [];
  try {
    // kubelet's layout: <dir>/token -> ..data/token, ..data -> ..<timestamp> (swapped by rename).
    const vol = path.join(dir, "projected");
    await mkdir(vol, { mode: 0o755 });
    let generation = 0;
    const project = async (token: string) => {
      const ts = path.join(vol, `..gen_${++generation}`);
      await mkdir(ts);
      await writeFile(path.join(ts, "token"), token);
      await symlink(path.basename(ts), path.join(vol, "..data_tmp"));
      await rename(path.join(vol, "..data_tmp"), path.join(vol, "..data"));
    };
    await project("token-one");
    await symlink("..data/token", path.join(vol, "token"));
    const tokenFile = path.join(vol, "token");
    const start = (opts: { file?: string; token?: string }) =>
      startEnvoy({
        name: "token-reread",
        bootstrapYaml: renderBootstrap({
          nodeId: `bench-${envoys.length}`,
          cluster: "bench",
          xdsAddress: "127.0.0.1",
          xdsPort: cp.xdsPort,
          xdsTls: { caFile, sni: SNI },
          ...(opts.file ? { xdsTokenFile: opts.file } : {}),
          ...(opts.token ? { xdsToken: opts.token } : {}),
        }),
        waitForLive: false,
      });
    const envoy = await start({ file: tokenFile });
    envoys.push(envoy);
    const t0 = Date.now();
    await waitFor("the first stream", () => seen.find((s) => s.token === "Bearer token-one"));
    lines.push(`- first stream carried \`Bearer token-one\` (${Date.now() - t0} ms after start)`);

    // 1. kubelet-style swap, then the server ends the stream.
    await project("token-two");
    let before = seen.length;
    let ended = Date.now();
    cp.xds.terminateStreamsOf("Bearer token-one", GrpcStatus.UNAVAILABLE, "bench: reconnect");
    const second = await waitFor("a reconnect", () => seen.slice(before).find(() => true));
    lines.push(`- after the ..data symlink swap and a server-ended stream, the reconnect carried \`${second.token}\` (${second.at - ended} ms later)`);

    // 2. in-place rewrite of the target file.
    await writeFile(path.join(vol, `..gen_${generation}`, "token"), "token-three");
    before = seen.length;
    ended = Date.now();
    cp.xds.terminateStreamsOf(second.token, GrpcStatus.UNAVAILABLE, "bench: reconnect");
    const third = await waitFor("a reconnect", () => seen.slice(before).find(() => true));
    lines.push(`- after an in-place rewrite and a server-ended stream, the reconnect carried \`${third.token}\` (${third.at - ended} ms later)`);

    // 3. the file removed: what does the reconnect carry?
    await rm(path.join(vol, `..gen_${generation}`, "token"));
    before = seen.length;
    cp.xds.terminateStreamsOf(third.token, GrpcStatus.UNAVAILABLE, "bench: reconnect");
    const fourth = await waitFor("a reconnect", () => seen.slice(before).find(() => true), 20_000).catch(() => undefined);
    lines.push(`- with the file removed, the reconnect ${fourth ? `carried \`${fourth.token}\`` : "never came within 20 s"}`);
    await writeFile(path.join(vol, `..gen_${generation}`, "token"), "token-four");
    const fifth = await waitFor("a reconnect after the file came back", () => seen.find((s) => s.token === "Bearer token-four"), 30_000).catch(() => undefined);
    lines.push(`- once the file is back, ${fifth ? "the next reconnect carried it" : "no stream carried it within 30 s"}`);

    // Memory: one Envoy of each kind, connected, idle.
    await envoy.stop();
    envoys.length = 0;
    const rss: Record<string, number[]> = { envoy_grpc: [], google_grpc: [] };
    for (let round = 0; round < 3; round++) {
      for (const kind of ["envoy_grpc", "google_grpc"] as const) {
        const before2 = seen.length;
        const e = await start(kind === "google_grpc" ? { file: tokenFile } : { token: "static-token" });
        await waitFor("a stream", () => seen.slice(before2).find(() => true));
        await new Promise((r) => setTimeout(r, 1500));
        rss[kind]!.push(statusKb(e.pid, "VmRSS"));
        await e.stop();
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    lines.push(`- Envoy RSS connected and idle, median of 3: envoy_grpc + initial_metadata ${(median(rss.envoy_grpc!) / 1024).toFixed(1)} MB (${rss.envoy_grpc!.join(", ")} kB), google_grpc + file_based_metadata ${(median(rss.google_grpc!) / 1024).toFixed(1)} MB (${rss.google_grpc!.join(", ")} kB)`);
  } finally {
    for (const e of envoys) await e.stop().catch(() => {});
    await cp.close(0);
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(lines.join("\n") + "\n");
}

await main();
