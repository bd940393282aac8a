import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resourceKey, type MeshConfig, type VirtualService } from "../../api/types.js";
import { ConfigAggregator, type ConfigAggregatorOptions } from "../config-aggregator.js";
import { FileSource } from "./file-source.js";

const TESTDATA = join(import.meta.dirname, "..", "..", "api", "testdata");
const BOOKINFO = join(TESTDATA, "bookinfo");

let dir: string;
let sources: ConfigAggregator[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "weft-file-source-"));
  sources = [];
});

afterEach(() => {
  for (const s of sources) void s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A FileSource on the test directory behind the ConfigAggregator (which keeps last valid versions and debounces). */
function source(options: ConfigAggregatorOptions = {}, root = dir): ConfigAggregator {
  const s = new ConfigAggregator([new FileSource(root)], options);
  sources.push(s);
  return s;
}

function copyBookinfo(): void {
  cpSync(BOOKINFO, dir, { recursive: true });
}

function keys(config: MeshConfig): string[] {
  return config.resources.map((s) => resourceKey(s.resource));
}

function errors(config: MeshConfig): string[] {
  return config.issues.filter((i) => i.severity === "error").map((i) => `${i.resource}: ${i.field}: ${i.message}`);
}

function reviewsWeights(config: MeshConfig): (number | undefined)[] {
  const vs = config.resources.find((s) => resourceKey(s.resource) === "VirtualService/default/reviews")?.resource as VirtualService | undefined;
  return (vs?.spec.http?.[1]?.route ?? []).map((d) => d.weight);
}

function edit(file: string, from: string, to: string): void {
  const text = readFileSync(file, "utf8");
  if (!text.includes(from)) throw new Error(`${file} does not contain ${JSON.stringify(from)}`);
  writeFileSync(file, text.replace(from, to));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Collects onChange calls and lets a test wait for the next one. */
function changeRecorder() {
  const configs: MeshConfig[] = [];
  let waiting: ((c: MeshConfig) => void) | undefined;
  return {
    configs,
    onChange: (config: MeshConfig) => {
      configs.push(config);
      waiting?.(config);
      waiting = undefined;
    },
    next: (timeoutMs = 5000) =>
      new Promise<MeshConfig>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no onChange within ${timeoutMs} ms`)), timeoutMs);
        waiting = (c) => {
          clearTimeout(timer);
          resolve(c);
        };
      }),
  };
}

describe("FileSource.load", () => {
  it("reads every *.yaml / *.yml file recursively, sorted, skipping hidden and other files", () => {
    mkdirSync(join(dir, "b", "nested"), { recursive: true });
    mkdirSync(join(dir, "a"));
    mkdirSync(join(dir, ".git"));
    cpSync(join(BOOKINFO, "services.yaml"), join(dir, "b", "nested", "services.yml"));
    cpSync(join(BOOKINFO, "reviews.yaml"), join(dir, "a", "reviews.yaml"));
    cpSync(join(BOOKINFO, "ratings.yaml"), join(dir, "ratings.YAML"));
    cpSync(join(BOOKINFO, "gateway.yaml"), join(dir, "gateway.yaml"));
    writeFileSync(join(dir, ".#reviews.yaml"), "not: [valid");
    writeFileSync(join(dir, ".git", "config.yaml"), "not: [valid");
    writeFileSync(join(dir, "README.md"), "# notes");

    const config = source().load();
    expect(config.issues).toEqual([]);
    expect(keys(config)).toEqual([
      "VirtualService/default/reviews",
      "DestinationRule/default/reviews",
      "ServiceEntry/default/productpage",
      "ServiceEntry/default/reviews",
      "ServiceEntry/default/ratings",
      "ServiceEntry/default/details",
      "WorkloadEntry/default/ratings-v1",
      "Gateway/default/bookinfo-gateway",
      "VirtualService/default/bookinfo",
      "VirtualService/default/ratings",
      "DestinationRule/default/ratings",
      "Sidecar/default/default",
    ]);
    expect(config.resources[0]!.source).toEqual({ file: join(dir, "a", "reviews.yaml"), document: 1 });
  });

  it("keeps the good documents of a file that also has bad ones (and skips a Kubernetes Deployment quietly)", () => {
    cpSync(join(TESTDATA, "invalid", "mixed.yaml"), join(dir, "mixed.yaml"));
    const config = source().load();
    const file = join(dir, "mixed.yaml");
    expect(keys(config)).toEqual(["ServiceEntry/default/httpbin", "VirtualService/default/httpbin"]);
    expect(config.issues.map((i) => ["file" in i && i.file, "file" in i && i.document, i.severity, i.field])).toEqual([
      [file, 2, "error", "(yaml)"],
      [file, 3, "error", "spec.subsets[1].name"],
    ]);
  });

  it("reports a directory that does not exist", () => {
    const missing = join(dir, "nope");
    const config = source({}, missing).load();
    expect(config).toEqual({
      resources: [],
      issues: [{ file: missing, document: 0, resource: "(unknown)", field: "(directory)", message: "cannot read the directory: it does not exist", severity: "error" }],
    });
  });
});

describe("FileSource: last valid version", () => {
  it("keeps the last valid version of a resource whose document becomes invalid, until it is fixed", () => {
    copyBookinfo();
    const reviews = join(dir, "reviews.yaml");
    const s = source();
    expect(reviewsWeights(s.load())).toEqual([50, 50]);

    edit(reviews, "weight: 50", "weight: -1");
    const broken = s.load();
    expect(keys(broken)).toContain("VirtualService/default/reviews");
    expect(reviewsWeights(broken)).toEqual([50, 50]);
    expect(errors(broken)).toEqual([
      `VirtualService/default/reviews: spec.http[1].route[0].weight: expected an integer from 0 to 4294967295, found -1; keeping the last valid version (from ${reviews} document 1)`,
    ]);

    edit(reviews, "weight: -1", "weight: 20");
    edit(reviews, "weight: 50", "weight: 80");
    const fixed = s.load();
    expect(errors(fixed)).toEqual([]);
    expect(reviewsWeights(fixed)).toEqual([20, 80]);
  });

  it("keeps the last valid versions from a file whose YAML no longer parses", () => {
    copyBookinfo();
    const reviews = join(dir, "reviews.yaml");
    const s = source();
    s.load();
    writeFileSync(reviews, readFileSync(reviews, "utf8").replace("hosts:\n  - reviews\n", "hosts: [reviews\n"));
    const broken = s.load();
    expect(keys(broken)).toEqual(expect.arrayContaining(["VirtualService/default/reviews", "DestinationRule/default/reviews"]));
    expect(errors(broken)).toEqual([
      `(unknown): (yaml): YAML syntax error at line 9, column 3: Flow sequence in block collection must be sufficiently indented and end with a ]; this document is skipped; keeping the last valid version of VirtualService/default/reviews`,
    ]);
  });

  it("applies an edit that routes to an undefined subset, with a warning (Istio accepts it: the DestinationRule may come later)", () => {
    copyBookinfo();
    const reviews = join(dir, "reviews.yaml");
    const s = source();
    s.load();
    edit(reviews, "subset: v2", "subset: v9");
    const config = s.load();
    const vs = config.resources.find((r) => resourceKey(r.resource) === "VirtualService/default/reviews")?.resource as VirtualService;
    expect(vs.spec.http?.[0]?.route?.[0]?.destination.subset).toBe("v9");
    expect(errors(config)).toEqual([]);
    expect(config.issues.map((i) => `${i.severity} ${i.code}: ${i.message}`)).toEqual([
      'warning IST0101: subset "v9" of reviews.default.svc.cluster.local is not defined by any DestinationRule (DestinationRule/default/reviews defines v1, v2, v3); requests routed here get 503 until it is',
    ]);
  });

  it("drops a resource whose document is deleted, and does not revive it later", () => {
    copyBookinfo();
    const ratings = join(dir, "ratings.yaml");
    const s = source();
    s.load();
    const original = readFileSync(ratings, "utf8");
    rmSync(ratings);
    expect(keys(s.load())).not.toContain("VirtualService/default/ratings");
    writeFileSync(ratings, original.replace("fixedDelay: 7s", "fixedDelay: 0s"));
    const config = s.load();
    expect(keys(config)).not.toContain("VirtualService/default/ratings");
    expect(errors(config)).toEqual(['VirtualService/default/ratings: spec.http[0].fault.delay.fixedDelay: expected a duration of at least 1ms, found "0s"']);
  });
});

describe("FileSource.start: hot reload", () => {
  it("returns the initial config and reports a new file after the debounce", async () => {
    cpSync(join(BOOKINFO, "services.yaml"), join(dir, "services.yaml"));
    const recorder = changeRecorder();
    const initial = await source({ debounceMs: 50 }).start(recorder.onChange);
    expect(keys(initial)).toHaveLength(5);
    expect(recorder.configs).toHaveLength(0);

    const next = recorder.next();
    cpSync(join(BOOKINFO, "ratings.yaml"), join(dir, "ratings.yaml"));
    const config = await next;
    expect(keys(config)).toContain("VirtualService/default/ratings");
    expect(config.issues).toEqual([]);
  });

  it("coalesces a burst of writes into one change, and ignores edits that change nothing", async () => {
    copyBookinfo();
    const reviews = join(dir, "reviews.yaml");
    const recorder = changeRecorder();
    await source({ debounceMs: 250 }).start(recorder.onChange);

    const next = recorder.next();
    for (const weight of [10, 20, 30]) {
      writeFileSync(reviews, readFileSync(join(BOOKINFO, "reviews.yaml"), "utf8").replace("weight: 50", `weight: ${weight}`).replace("weight: 50", `weight: ${100 - weight}`));
      await sleep(20);
    }
    expect(reviewsWeights(await next)).toEqual([30, 70]);

    writeFileSync(reviews, "# a comment changes nothing\n" + readFileSync(reviews, "utf8"));
    await sleep(500);
    expect(recorder.configs).toHaveLength(1);
  });

  it("does not postpone a reload forever while writes keep coming (bounded debounce)", async () => {
    copyBookinfo();
    const reviews = join(dir, "reviews.yaml");
    const recorder = changeRecorder();
    await source({ debounceMs: 200, maxDebounceMs: 400 }).start(recorder.onChange);
    const started = Date.now();
    // A write every 50 ms for 1.2 s: a plain trailing debounce of 200 ms would never fire.
    for (let i = 1; i <= 24; i++) {
      writeFileSync(reviews, readFileSync(join(BOOKINFO, "reviews.yaml"), "utf8").replace("weight: 50", `weight: ${i}`).replace("weight: 50", `weight: ${100 - i}`));
      await sleep(50);
    }
    expect(recorder.configs.length).toBeGreaterThanOrEqual(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it("sees editors that save by writing a temporary file and renaming it over the original", async () => {
    copyBookinfo();
    const reviews = join(dir, "reviews.yaml");
    const recorder = changeRecorder();
    await source({ debounceMs: 50 }).start(recorder.onChange);

    const next = recorder.next();
    const temporary = join(dir, ".reviews.yaml.swp");
    writeFileSync(temporary, readFileSync(reviews, "utf8").replace("weight: 50", "weight: 40").replace("weight: 50", "weight: 60"));
    renameSync(temporary, reviews);
    expect(reviewsWeights(await next)).toEqual([40, 60]);

    // A second rename-replace of the same file is seen too (the watch is on the directory).
    const again = recorder.next();
    writeFileSync(temporary, readFileSync(reviews, "utf8").replace("weight: 40", "weight: 45").replace("weight: 60", "weight: 55"));
    renameSync(temporary, reviews);
    expect(reviewsWeights(await again)).toEqual([45, 55]);
  });

  it("watches directories created after start", async () => {
    cpSync(join(BOOKINFO, "services.yaml"), join(dir, "services.yaml"));
    const recorder = changeRecorder();
    await source({ debounceMs: 50 }).start(recorder.onChange);

    const first = recorder.next();
    mkdirSync(join(dir, "team-a"));
    cpSync(join(BOOKINFO, "gateway.yaml"), join(dir, "team-a", "gateway.yaml"));
    expect(keys(await first)).toContain("Gateway/default/bookinfo-gateway");

    const second = recorder.next();
    cpSync(join(BOOKINFO, "ratings.yaml"), join(dir, "team-a", "ratings.yaml"));
    expect(keys(await second)).toContain("VirtualService/default/ratings");
  });

  it("leaves no watchers or timers behind after close", async () => {
    copyBookinfo();
    const activeHandles = () => process.getActiveResourcesInfo().filter((r) => r === "FSEventWrap" || r === "Timeout").length;
    await sleep(50); // let handles closed by earlier tests go away
    const before = activeHandles();
    const recorder = changeRecorder();
    const s = new ConfigAggregator([new FileSource(dir)], { debounceMs: 1000 });
    await s.start(recorder.onChange);
    expect(activeHandles()).toBeGreaterThan(before);

    writeFileSync(join(dir, "extra.yaml"), readFileSync(join(BOOKINFO, "gateway.yaml"), "utf8").replaceAll("bookinfo", "extra"));
    await sleep(100); // the event arrives and a debounce timer is pending
    await s.close();
    await sleep(20); // libuv closes watch handles on the next turn of the loop
    expect(activeHandles()).toBeLessThanOrEqual(before); // "before" may still hold an earlier test's timer

    await sleep(1100);
    expect(recorder.configs).toHaveLength(0);
  });
});
