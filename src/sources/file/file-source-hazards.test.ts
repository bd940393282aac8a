// The file source against careless operators and hostile directories (issue 10 item 4 and its
// "Also seen" items): files rewritten in place, directories replaced, named pipes, links to
// /dev/zero or /, oversized files; and the per-file parse cache.
import { spawnSync } from "node:child_process";
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { formatIssue, resourceKey, type MeshConfig } from "../../api/types.js";
import { ConfigAggregator, LARGE_REMOVAL_FIELD, type ConfigAggregatorOptions } from "../config-aggregator.js";
import { FileSource, type FileSourceOptions } from "./file-source.js";

const REPO = join(import.meta.dirname, "..", "..", "..");
const BOOKINFO = join(REPO, "src", "api", "testdata", "bookinfo");

let base: string;
let dir: string;
let aggregators: ConfigAggregator[];

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), "weft-file-hazards-"));
  dir = join(base, "config");
  mkdirSync(dir);
  aggregators = [];
});

afterEach(async () => {
  for (const a of aggregators) await a.close();
  rmSync(base, { recursive: true, force: true });
});

function watched(sourceOptions: FileSourceOptions = {}, options: ConfigAggregatorOptions = { debounceMs: 30 }): { aggregator: ConfigAggregator; source: FileSource } {
  const source = new FileSource(dir, sourceOptions);
  const aggregator = new ConfigAggregator([source], options);
  aggregators.push(aggregator);
  return { aggregator, source };
}

/** Records every config the aggregator applies, and waits for one matching a predicate. */
function recorder() {
  const configs: MeshConfig[] = [];
  const waiters: { test: (c: MeshConfig) => boolean; resolve: (c: MeshConfig) => void }[] = [];
  return {
    configs,
    onChange(config: MeshConfig) {
      configs.push(config);
      for (const w of [...waiters]) if (w.test(config)) waiters.splice(waiters.indexOf(w), 1) && w.resolve(config);
    },
    until(test: (c: MeshConfig) => boolean, timeoutMs = 5000): Promise<MeshConfig> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching config within ${timeoutMs} ms (got ${configs.length})`)), timeoutMs);
        waiters.push({ test, resolve: (c) => (clearTimeout(timer), resolve(c)) });
      });
    },
  };
}

function serviceEntries(count: number, port = 80): string {
  return Array.from(
    { length: count },
    (_, i) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: svc-${i}
  namespace: default
spec:
  hosts:
  - svc-${i}.example.internal
  ports:
  - number: ${port}
    name: http
    protocol: HTTP
  resolution: STATIC
  endpoints:
  - address: 10.0.${Math.floor(i / 250)}.${i % 250}
`,
  ).join("---\n");
}

function portsOf(config: MeshConfig): Set<number> {
  return new Set(config.resources.map((s) => (s.resource.spec as { ports?: { number: number }[] }).ports?.[0]?.number ?? 0));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `weft validate DIR` in a child process, so a hang or a runaway read cannot take the test runner with it. */
function validateInChild(target: string, timeoutMs = 60_000): { status: number | null; stdout: string; stderr: string; millis: number; timedOut: boolean } {
  const started = Date.now();
  const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO, "src", "cli", "main.ts"), "validate", target], { cwd: REPO, timeout: timeoutMs, encoding: "utf8", killSignal: "SIGKILL" });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", millis: Date.now() - started, timedOut: r.signal === "SIGKILL" };
}

describe("FileSource: a file rewritten in place never reaches proxies half-written", () => {
  it("holds a truncated, then partially written file until it is complete; no applied config ever loses a resource", async () => {
    const file = join(dir, "mesh.yaml");
    writeFileSync(file, serviceEntries(10, 80));
    const { aggregator } = watched({ settleMs: 400 });
    const r = recorder();
    expect((await aggregator.start(r.onChange)).resources).toHaveLength(10);

    // `generator > mesh.yaml`: truncate, then the new content in chunks, the first ending mid-line.
    const next = serviceEntries(10, 8080);
    truncateSync(file, 0);
    await sleep(120);
    appendFileSync(file, next.slice(0, Math.floor(next.length * 0.3)));
    await sleep(120);
    appendFileSync(file, next.slice(Math.floor(next.length * 0.3), Math.floor(next.length * 0.6)));
    await sleep(120);
    appendFileSync(file, next.slice(Math.floor(next.length * 0.6)));

    const final = await r.until((c) => portsOf(c).has(8080));
    expect(final.resources).toHaveLength(10);
    expect([...portsOf(final)]).toEqual([8080]);
    for (const applied of r.configs) expect(applied.resources.map((s) => resourceKey(s.resource))).toHaveLength(10);
  });

  it("logs why a file is held without reporting a change, and applies an emptied file once it has stayed empty, with a large-removal warning", async () => {
    const file = join(dir, "mesh.yaml");
    writeFileSync(file, serviceEntries(10));
    const warnings: string[] = [];
    const logger = { warn: (_fields: unknown, message: string) => warnings.push(message) } as unknown as FileSourceOptions["logger"];
    const { aggregator } = watched({ settleMs: 300, logger });
    const r = recorder();
    await aggregator.start(r.onChange);
    const startedAt = Date.now();
    truncateSync(file, 0);

    for (let i = 0; i < 100 && warnings.length === 0; i++) await sleep(20);
    expect(warnings).toEqual([
      `${file}: not applied yet: it has become empty, as if caught while being written; its previous resources stay until it has not changed for 300 ms (at most 5000 ms)`,
    ]);
    expect(r.configs).toHaveLength(0); // a held change is no change: nothing was applied
    const emptied = await r.until((c) => c.resources.length === 0);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(300);
    expect(r.configs).toHaveLength(1);
    const warning = emptied.issues.find((i) => i.field === LARGE_REMOVAL_FIELD);
    expect(warning && formatIssue(warning)).toMatch(new RegExp(`^${dir}: document 0: \\(mesh\\): \\(large removal\\): this change removes 10 of the 10 resources read from directory ${dir} \\(100%\\)`));
  });

  it("applies a plain edit at once (no hold when nothing is lost)", async () => {
    const file = join(dir, "mesh.yaml");
    writeFileSync(file, serviceEntries(3, 80));
    const { aggregator } = watched({ settleMs: 5000, maxHoldMs: 10_000 });
    const r = recorder();
    await aggregator.start(r.onChange);
    const startedAt = Date.now();
    writeFileSync(file, serviceEntries(3, 81));
    await r.until((c) => portsOf(c).has(81));
    expect(Date.now() - startedAt).toBeLessThan(2500);
  });

  it("applies a file that keeps changing after maxHoldMs, saying so", async () => {
    const file = join(dir, "mesh.yaml");
    writeFileSync(file, serviceEntries(6));
    const { aggregator } = watched({ settleMs: 300, maxHoldMs: 900 });
    const r = recorder();
    await aggregator.start(r.onChange);
    // A writer that never finishes: the file always ends mid-line and changes every 100 ms.
    const stopAt = Date.now() + 2000;
    let n = 0;
    const writing = (async () => {
      while (Date.now() < stopAt) {
        writeFileSync(file, serviceEntries(6) + `# partial ${n++}`);
        await sleep(100);
      }
    })();
    const applied = await r.until((c) => c.issues.some((i) => i.message.startsWith("applied as it is")), 4000);
    expect(applied.issues.find((i) => i.message.startsWith("applied as it is"))!.message).toBe("applied as it is: it ends in the middle of a line, and it kept changing for 900 ms");
    await writing;
  });
});

describe("FileSource: the config directory replaced", () => {
  it("keeps hot-reloading after `rm -rf dir && mkdir dir`, without applying the empty directory", async () => {
    writeFileSync(join(dir, "mesh.yaml"), serviceEntries(6, 80));
    const { aggregator } = watched({ settleMs: 300 });
    const r = recorder();
    await aggregator.start(r.onChange);

    rmSync(dir, { recursive: true });
    mkdirSync(dir);
    await sleep(150);
    writeFileSync(join(dir, "mesh.yaml"), serviceEntries(6, 81));
    expect([...portsOf(await r.until((c) => portsOf(c).has(81)))]).toEqual([81]);

    // The new directory is watched: a later edit is seen.
    writeFileSync(join(dir, "mesh.yaml"), serviceEntries(6, 82));
    expect([...portsOf(await r.until((c) => portsOf(c).has(82)))]).toEqual([82]);
    for (const applied of r.configs) expect(applied.resources).toHaveLength(6);
  });

  it("keeps hot-reloading after the directory is moved away and another is moved in", async () => {
    writeFileSync(join(dir, "mesh.yaml"), serviceEntries(6, 80));
    const { aggregator } = watched({ settleMs: 200 });
    const r = recorder();
    await aggregator.start(r.onChange);

    const staged = join(base, "staged");
    mkdirSync(staged);
    writeFileSync(join(staged, "mesh.yaml"), serviceEntries(6, 90));
    renameSync(dir, join(base, "old"));
    renameSync(staged, dir);
    await r.until((c) => portsOf(c).has(90));
    writeFileSync(join(dir, "mesh.yaml"), serviceEntries(6, 91));
    await r.until((c) => portsOf(c).has(91));
  });
});

describe("FileSource: only regular files inside the directory are read", () => {
  it("reports a named pipe called x.yaml instead of hanging (weft validate returns)", () => {
    cpSync(join(BOOKINFO, "services.yaml"), join(dir, "services.yaml"));
    const fifo = join(dir, "x.yaml");
    expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
    const run = validateInChild(dir, 30_000);
    expect(run.timedOut).toBe(false);
    expect(run.stdout).toContain(`${fifo}: document 0: (unknown): (file): not a regular file (a named pipe): only regular files are read; it is skipped`);
    expect(run.stdout).toContain("5 resources valid, 1 error, 0 warnings");
    expect(run.status).toBe(1);
  });

  it("does not follow a .yaml link to /dev/zero, or a link to / (no crawl), and says so", () => {
    cpSync(join(BOOKINFO, "services.yaml"), join(dir, "services.yaml"));
    symlinkSync("/dev/zero", join(dir, "zero.yaml"));
    symlinkSync("/", join(dir, "root"));
    const run = validateInChild(dir, 30_000);
    expect(run.timedOut).toBe(false);
    expect(run.stdout.split("\n")).toEqual([
      `${join(dir, "root")}: document 0: (unknown): (directory): a symbolic link to /, outside the config directory: not followed (links are followed only within the directory) (warning)`,
      `${join(dir, "zero.yaml")}: document 0: (unknown): (file): a symbolic link to /dev/zero, outside the config directory: not followed (links are followed only within the directory) (warning)`,
      "5 resources valid, 0 errors, 2 warnings",
      "",
    ]);
    expect(run.status).toBe(0);
  });

  it("follows links that stay inside the directory (a Kubernetes ConfigMap volume's layout)", () => {
    mkdirSync(join(dir, "..2026_12_02"));
    cpSync(join(BOOKINFO, "services.yaml"), join(dir, "..2026_12_02", "services.yaml"));
    symlinkSync("..2026_12_02", join(dir, "..data"));
    symlinkSync(join("..data", "services.yaml"), join(dir, "services.yaml"));
    const config = new ConfigAggregator([new FileSource(dir)]).load();
    expect(config.resources).toHaveLength(5);
    expect(config.issues).toEqual([]);
  });

  it("watches only directories inside the config directory, however many a link would reach", async () => {
    mkdirSync(join(dir, "team-a"));
    cpSync(join(BOOKINFO, "services.yaml"), join(dir, "team-a", "services.yaml"));
    symlinkSync("/usr", join(dir, "usr"));
    const { aggregator, source } = watched();
    await aggregator.start(() => {});
    expect(source.watchedDirectories()).toEqual([dir, join(dir, "team-a")]);
  });

  it("refuses a file over the per-file cap and files past the total cap, naming them and keeping their last valid resources", () => {
    writeFileSync(join(dir, "a.yaml"), serviceEntries(2));
    writeFileSync(join(dir, "b.yaml"), serviceEntries(2).replaceAll("svc-", "other-"));
    const source = new FileSource(dir, { maxFileBytes: 4096, maxTotalBytes: 1024 * 1024 });
    const aggregator = new ConfigAggregator([source]);
    expect(aggregator.load().resources).toHaveLength(4);

    writeFileSync(join(dir, "b.yaml"), serviceEntries(40).replaceAll("svc-", "other-"));
    const big = aggregator.load();
    expect(big.resources.map((s) => resourceKey(s.resource))).toEqual(["ServiceEntry/default/svc-0", "ServiceEntry/default/svc-1", "ServiceEntry/default/other-0", "ServiceEntry/default/other-1"]);
    expect(big.issues.map(formatIssue)).toEqual([
      expect.stringMatching(
        new RegExp(`^${join(dir, "b.yaml")}: document 0: \\(unknown\\): \\(file\\): the file is larger than the limit of 4 KiB per file \\(found .* KiB\\); it is not read; keeping the last valid version of ServiceEntry/default/other-0, ServiceEntry/default/other-1$`),
      ),
    ]);

    const total = new ConfigAggregator([new FileSource(dir, { maxFileBytes: 1024 * 1024, maxTotalBytes: 2048 })]).load();
    expect(total.issues.map(formatIssue)).toContain(
      `${join(dir, "b.yaml")}: document 0: (unknown): (file): the YAML files of the config directory add up to more than the limit of 2 KiB in total; this file and the ones after it are not read`,
    );
  });
});

describe("FileSource: per-file parse cache", () => {
  it("re-reads and re-parses only the file that changed", async () => {
    for (let f = 0; f < 20; f++) writeFileSync(join(dir, `f${String(f).padStart(2, "0")}.yaml`), serviceEntries(5).replaceAll("svc-", `f${f}-svc-`));
    const { aggregator, source } = watched();
    const r = recorder();
    expect((await aggregator.start(r.onChange)).resources).toHaveLength(100);
    const parsedAtStart = source.stats.parsed;
    expect(parsedAtStart).toBe(20);

    const f07 = join(dir, "f07.yaml");
    writeFileSync(f07, readFileSync(f07, "utf8").replace("number: 80", "number: 81"));
    await r.until((c) => portsOf(c).has(81));
    expect(source.stats.parsed - parsedAtStart).toBe(1);
    expect(source.stats.cached).toBeGreaterThanOrEqual(19);
  });
});
