// Benchmark: how fast the built-in CA issues workload certificates.
//   1. sequential: ECDSA P-256 workload certificates one after another (after a warm-up):
//      certificates per second, p50/p99 latency, and CPU time per certificate;
//   2. a burst: N workloads asking at once (Promise.all): total time, latency spread, failures;
//   3. key generation alone, per algorithm (ECDSA P-256, RSA 2048, RSA 4096), and full
//      issuance with RSA 2048 workload keys, to show what the key algorithm costs.
// Each issuance includes a fresh key, signing, and PEM/PKCS#8 encoding, via the public API.
// Writes bench/results/ca-issuance.{md,json}.
//
//   npx tsx bench/ca-issuance.ts            (N = 2000; BENCH_N=5000 for more)
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { loadOrCreateCa, type CertificateAuthority } from "../src/ca/certificate-authority.js";
import { generateLeafKeyPair, type KeyAlgorithm } from "../src/ca/key-algorithm.js";

const N = Number(process.env.BENCH_N ?? 2000);
const WARM_UP = 200;
/** Sequential rounds; the median round (by rate) is reported, as the machine may be shared. */
const ROUNDS = 3;

function percentile(sortedMs: number[], p: number): number {
  return sortedMs[Math.min(sortedMs.length - 1, Math.ceil((p / 100) * sortedMs.length) - 1)]!;
}

function round(ms: number, digits = 2): number {
  return +ms.toFixed(digits);
}

function latencySummary(samplesMs: number[]): { p50Ms: number; p99Ms: number; maxMs: number; meanMs: number } {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return {
    p50Ms: round(percentile(sorted, 50), 3),
    p99Ms: round(percentile(sorted, 99), 3),
    maxMs: round(sorted[sorted.length - 1]!, 3),
    meanMs: round(samplesMs.reduce((a, b) => a + b, 0) / samplesMs.length, 3),
  };
}

async function issueOne(ca: CertificateAuthority, i: number): Promise<void> {
  await ca.issueWorkloadCertificate({ namespace: `ns-${i % 50}`, serviceAccount: `sa-${i}` });
}

async function sequential(ca: CertificateAuthority, count: number) {
  const samples: number[] = [];
  const cpuBefore = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await issueOne(ca, i);
    samples.push(performance.now() - started);
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return {
    count,
    wallMs: round(wallMs, 1),
    perSecond: Math.round((count / wallMs) * 1000),
    cpuMsPerCertificate: round(cpuMs / count, 3),
    certificatesPerCpuSecond: Math.round((count / cpuMs) * 1000),
    ...latencySummary(samples),
  };
}

async function burst(ca: CertificateAuthority, count: number) {
  // How long the event loop (which also serves xDS) is held up while the burst runs.
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const t0 = performance.now();
  const latencies: number[] = [];
  const outcomes = await Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      issueOne(ca, i).then(() => {
        latencies.push(performance.now() - t0);
      }),
    ),
  );
  const totalMs = performance.now() - t0;
  loopDelay.disable();
  const failures = outcomes.filter((o) => o.status === "rejected");
  return {
    count,
    totalMs: round(totalMs, 1),
    perSecond: Math.round((count / totalMs) * 1000),
    failed: failures.length,
    firstFailure: failures[0] ? String((failures[0] as PromiseRejectedResult).reason) : undefined,
    ...latencySummary(latencies),
    eventLoopDelayMaxMs: round(loopDelay.max / 1e6, 1),
    eventLoopDelayP99Ms: round(loopDelay.percentile(99) / 1e6, 1),
  };
}

async function keyGeneration(algorithm: KeyAlgorithm, count: number) {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await generateLeafKeyPair(algorithm);
    samples.push(performance.now() - started);
  }
  return { algorithm, count, ...latencySummary(samples) };
}

async function main(): Promise<void> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), "weft-bench-ca-"));
  try {
    const ca = await loadOrCreateCa({ dir: path.join(scratch, "ecdsa") });
    process.stderr.write(`warm-up: ${WARM_UP} issuances...\n`);
    await sequential(ca, WARM_UP);
    process.stderr.write(`sequential: ${ROUNDS} rounds of ${N} ECDSA P-256 workload certificates...\n`);
    const rounds = [];
    for (let round = 0; round < ROUNDS; round++) rounds.push(await sequential(ca, N));
    const seq = [...rounds].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(ROUNDS / 2)]!;
    process.stderr.write(`burst: ${N} at once...\n`);
    const all = await burst(ca, N);

    process.stderr.write("key generation per algorithm...\n");
    const keys = [await keyGeneration("ECDSA_P256", 500), await keyGeneration("RSA_2048", 30), await keyGeneration("RSA_4096", 8)];
    process.stderr.write("issuance with RSA 2048 keys...\n");
    const rsaCa = await loadOrCreateCa({ dir: path.join(scratch, "rsa"), keyAlgorithm: "RSA_2048" });
    await sequential(rsaCa, 5);
    const rsaSeq = await sequential(rsaCa, 50);

    const meta = {
      date: new Date().toISOString(),
      node: process.version,
      cpu: os.cpus()[0]?.model ?? "unknown",
      cpus: os.cpus().length,
      threadPool: process.env.UV_THREADPOOL_SIZE ?? "4 (default)",
      loadAverageAtEnd: os.loadavg().map((l) => l.toFixed(2)).join(" "),
      platform: `${os.platform()} ${os.release()}`,
      command: "npx tsx bench/ca-issuance.ts",
    };
    const sequentialTable =
      `| key | certificates | wall ms | per second | CPU ms per cert | certs per CPU-second | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|---|---|\n` +
      [["ECDSA P-256", seq] as const, ["RSA 2048", rsaSeq] as const]
        .map(([key, r]) => `| ${key} | ${r.count} | ${r.wallMs} | ${r.perSecond} | ${r.cpuMsPerCertificate} | ${r.certificatesPerCpuSecond} | ${r.p50Ms} | ${r.p99Ms} | ${r.maxMs} |`)
        .join("\n");
    const burstTable =
      `| workloads at once | total ms | per second | failed | p50 latency ms | p99 latency ms | max latency ms | event-loop delay max ms | event-loop delay p99 ms |\n|---|---|---|---|---|---|---|---|---|\n` +
      `| ${all.count} | ${all.totalMs} | ${all.perSecond} | ${all.failed} | ${all.p50Ms} | ${all.p99Ms} | ${all.maxMs} | ${all.eventLoopDelayMaxMs} | ${all.eventLoopDelayP99Ms} |`;
    const keyTable =
      `| key algorithm | keys | mean ms | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n` +
      keys.map((k) => `| ${k.algorithm} | ${k.count} | ${k.meanMs} | ${k.p50Ms} | ${k.p99Ms} | ${k.maxMs} |`).join("\n");
    const body =
      `## Sequential issuance (one at a time, after ${WARM_UP} warm-up issuances; ECDSA: median of ${ROUNDS} rounds, ` +
      `rates ${rounds.map((r) => r.perSecond).join(", ")} per second)\n\n${sequentialTable}\n\n` +
      `## ${all.count} workloads requesting at once (Promise.all; latency measured from the start of the burst)\n\n${burstTable}\n\n` +
      `## Key generation alone (node:crypto generateKeyPair, sequential)\n\n${keyTable}\n`;
    process.stdout.write(`\nCA issuance\n\n${body}`);

    const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "results");
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(path.join(resultsDir, "ca-issuance.json"), JSON.stringify({ meta, sequential: { ecdsaP256: seq, ecdsaP256Rounds: rounds, rsa2048: rsaSeq }, burst: all, keyGeneration: keys }, null, 2) + "\n");
    writeFileSync(
      path.join(resultsDir, "ca-issuance.md"),
      `# CA issuance: workload certificates\n\n${Object.entries(meta).map(([k, v]) => `- ${k}: ${v}`).join("\n")}\n\n` +
        `Each issuance: a fresh key pair, a signed certificate (SPIFFE URI SAN; signed by the ECDSA P-256 root, or the RSA 2048 root for the RSA row), ` +
        `PKCS#8 and PEM encoding, via issueWorkloadCertificate(). node:crypto runs key generation and signing on libuv's thread pool, ` +
        `so "per second" in the sequential run is one request at a time, and "CPU ms per cert" (process user + system time) is the cost on one core. ` +
        `"Event-loop delay" is the longest the event loop (which also serves xDS) was held up during the burst (monitorEventLoopDelay, 1 ms resolution).\n\n` +
        `For comparison, building the leaf with @peculiar/x509's X509CertificateGenerator (the first implementation, same harness) cost ` +
        `3.5 ms of CPU per ECDSA certificate, nearly all of it synchronous ASN.1 work on the event loop: 184 per second sequentially, ` +
        `and the 2000-at-once burst took 7.4 s. Leaves are now written directly in DER (src/ca/der-encoding.ts).\n\n${body}`,
    );
    if (all.failed > 0) throw new Error(`${all.failed} of ${all.count} concurrent issuances failed; first: ${all.firstFailure}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).message}\n`);
  process.exit(1);
});
