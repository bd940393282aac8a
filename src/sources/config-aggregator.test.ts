import { afterEach, describe, expect, it } from "vitest";
import { formatIssue, resourceKey, type ClusterObjectRef, type MeshConfig, type NetworkingResource, type ValidationIssue } from "../api/types.js";
import { validateResource } from "../api/validate-resource.js";
import { ConfigAggregator, LARGE_REMOVAL_FIELD } from "./config-aggregator.js";
import type { ConfigSource, SourceEntry, SourceListener, SourceSnapshot } from "./config-source.js";

/**
 * An in-memory source shaped like a Kubernetes one: objects by key, each with a resourceVersion,
 * validated through the real validator, and a `synced` flag the test flips (a relist).
 */
class MemorySource implements ConfigSource {
  readonly origin: ClusterObjectRef = { cluster: "", kind: "", name: "", resourceVersion: "" };
  readonly objects = new Map<string, { value: unknown; resourceVersion: string }>();
  synced = true;
  listener: SourceListener | undefined;
  closed = false;
  private version = 0;

  constructor(readonly name: string) {}

  put(value: { kind: string; metadata: { name: string; namespace?: string } } & Record<string, unknown>): void {
    this.objects.set(`${value.kind}/${value.metadata.namespace ?? "default"}/${value.metadata.name}`, { value, resourceVersion: String(++this.version) });
    this.listener?.changed();
  }

  remove(key: string): void {
    this.objects.delete(key);
    this.listener?.changed();
  }

  async start(listener: SourceListener): Promise<void> {
    this.listener = listener;
  }

  snapshot(): SourceSnapshot {
    if (!this.synced) return { synced: false, entries: [], issues: [], unreadable: [] };
    const entries: SourceEntry[] = [];
    for (const [key, { value, resourceVersion }] of this.objects) {
      const [kind, namespace, name] = key.split("/") as [string, string, string];
      const source: ClusterObjectRef = { cluster: "", kind, namespace, name, resourceVersion };
      const { resource, issues } = validateResource(value, source);
      entries.push({ key, source, ...(resource ? { resource } : {}), issues });
    }
    return { synced: true, entries, issues: [], unreadable: [] };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

function serviceEntry(name: string, host = name): { kind: string; metadata: { name: string; namespace: string } } & Record<string, unknown> {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "ServiceEntry",
    metadata: { name, namespace: "default" },
    spec: { hosts: [host], ports: [{ number: 80, name: "http", protocol: "HTTP" }], resolution: "STATIC", endpoints: [{ address: "10.0.0.1" }] },
  };
}

function virtualService(name: string, weight: number): { kind: string; metadata: { name: string; namespace: string } } & Record<string, unknown> {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "VirtualService",
    metadata: { name, namespace: "default" },
    spec: { hosts: [name], http: [{ route: [{ destination: { host: name }, weight }] }] },
  };
}

function keys(config: MeshConfig): string[] {
  return config.resources.map((s) => resourceKey(s.resource));
}

function messages(config: MeshConfig): string[] {
  return config.issues.map(formatIssue);
}

const aggregators: ConfigAggregator[] = [];
afterEach(async () => {
  for (const a of aggregators.splice(0)) await a.close();
});

function aggregate(sources: ConfigSource[]): ConfigAggregator {
  const a = new ConfigAggregator(sources, { debounceMs: 10 });
  aggregators.push(a);
  return a;
}

function nextChange(): { onChange: (c: MeshConfig) => void; next: () => Promise<MeshConfig>; count: () => number } {
  const seen: MeshConfig[] = [];
  let waiting: ((c: MeshConfig) => void) | undefined;
  return {
    onChange: (c) => {
      seen.push(c);
      waiting?.(c);
      waiting = undefined;
    },
    next: () =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("no change within 2 s")), 2000);
        waiting = (c) => {
          clearTimeout(t);
          resolve(c);
        };
      }),
    count: () => seen.length,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("ConfigAggregator", () => {
  it("prints a cluster object's issue as kubernetes: Kind/ns/name (resourceVersion N): field: message", () => {
    const cluster = new MemorySource("kubernetes");
    cluster.put({ ...virtualService("reviews", -1) });
    const config = aggregate([cluster]).load();
    expect(keys(config)).toEqual([]);
    expect(messages(config)).toEqual(["kubernetes: VirtualService/default/reviews (resourceVersion 1): spec.http[0].route[0].weight: expected an integer from 0 to 4294967295, found -1"]);
  });

  it("merges sources in order; a duplicate key is taken from the first source and the other is reported naming both", () => {
    const files = new MemorySource("files");
    const cluster = new MemorySource("kubernetes");
    files.put(serviceEntry("vm-db"));
    cluster.put(serviceEntry("reviews"));
    cluster.put(serviceEntry("vm-db", "other-host"));
    const config = aggregate([files, cluster]).load();
    expect(keys(config)).toEqual(["ServiceEntry/default/vm-db", "ServiceEntry/default/reviews"]);
    const vmDb = config.resources[0]!.resource as NetworkingResource & { spec: { hosts: string[] } };
    expect(vmDb.spec.hosts).toEqual(["vm-db"]);
    expect(messages(config)).toEqual([
      "kubernetes: ServiceEntry/default/vm-db (resourceVersion 2): metadata.name: duplicate ServiceEntry/default/vm-db: already defined in kubernetes ServiceEntry/default/vm-db (resourceVersion 1), which wins (the first definition read wins: files in sorted path order, documents in file order, sources in the order given); this definition in kubernetes ServiceEntry/default/vm-db (resourceVersion 2) is ignored",
    ]);
  });

  it("keeps a resource's last valid version when it becomes invalid, naming where it came from", () => {
    const cluster = new MemorySource("kubernetes");
    cluster.put(serviceEntry("reviews"));
    cluster.put(virtualService("reviews", 100));
    const a = aggregate([cluster]);
    a.load();
    cluster.put(virtualService("reviews", -1));
    const config = a.load();
    expect(keys(config)).toEqual(["ServiceEntry/default/reviews", "VirtualService/default/reviews"]);
    expect(config.resources[1]!.source).toMatchObject({ resourceVersion: "2" });
    expect(messages(config)).toEqual([
      "kubernetes: VirtualService/default/reviews (resourceVersion 3): spec.http[0].route[0].weight: expected an integer from 0 to 4294967295, found -1; keeping the last valid version (from kubernetes VirtualService/default/reviews (resourceVersion 2))",
    ]);
  });

  it("never applies an unsynced (relisting) source's state: its last synced snapshot stays until it is synced again", async () => {
    const cluster = new MemorySource("kubernetes");
    for (let i = 0; i < 10; i++) cluster.put(serviceEntry(`svc-${i}`));
    const a = aggregate([cluster]);
    const changes = nextChange();
    expect(keys(await a.start(changes.onChange))).toHaveLength(10);

    // A relist after 410 Gone: the source is not synced, and its list is empty for now.
    cluster.synced = false;
    cluster.objects.clear();
    cluster.listener!.changed();
    await sleep(100);
    expect(changes.count()).toBe(0);

    // Relist done: only svc-3 came back, the rest really are gone.
    cluster.put(serviceEntry("svc-3"));
    const next = changes.next();
    cluster.synced = true;
    cluster.listener!.changed();
    expect(keys(await next)).toEqual(["ServiceEntry/default/svc-3"]);
  });

  it("start() waits until every source has synced, and does not report the initial config as a change", async () => {
    const files = new MemorySource("files");
    files.put(serviceEntry("vm-db"));
    const cluster = new MemorySource("kubernetes");
    cluster.synced = false;
    const a = aggregate([files, cluster]);
    const changes = nextChange();
    let initial: MeshConfig | undefined;
    const started = a.start(changes.onChange).then((c) => (initial = c));
    await sleep(100);
    expect(initial).toBeUndefined();
    expect(a.synced).toBe(false);

    cluster.put(serviceEntry("reviews"));
    cluster.synced = true;
    cluster.listener!.changed();
    await started;
    expect(keys(initial!)).toEqual(["ServiceEntry/default/vm-db", "ServiceEntry/default/reviews"]);
    expect(a.synced).toBe(true);
    expect(changes.count()).toBe(0);
  });

  it("with sliceMs, a reload of a large mesh gives the event loop back while it merges and checks, and reports what a whole reload reports", async () => {
    const fill = (source: MemorySource, weight: number) => {
      for (let i = 0; i < 1500; i++) {
        source.put(serviceEntry(`svc-${i}`, `svc-${i}.default.svc.cluster.local`));
        // Every 50th route names a host that does not exist: warnings with "did you mean" hints.
        source.put({ ...virtualService(`svc-${i}`, weight), spec: { hosts: [`svc-${i}`], http: [{ route: [{ destination: { host: i % 50 === 0 ? `svc-${i}x` : `svc-${i}` }, weight }] }] } });
      }
    };
    const [sliced, whole] = [new MemorySource("kubernetes"), new MemorySource("kubernetes")];
    fill(sliced, 100);
    fill(whole, 100);
    const a = new ConfigAggregator([sliced], { debounceMs: 10, sliceMs: 1 });
    aggregators.push(a);
    const b = aggregate([whole]);
    const [changesA, changesB] = [nextChange(), nextChange()];
    expect(await a.start(changesA.onChange)).toEqual(await b.start(changesB.onChange));

    // Timers keep firing between the snapshot and the reported change: the merge and the mesh
    // checks yield every 1 ms of work (in one piece, no timer could fire in between).
    let ticks = 0;
    let ticksAtSnapshot: number | undefined;
    const snapshot = sliced.snapshot.bind(sliced);
    sliced.snapshot = () => {
      const taken = snapshot();
      ticksAtSnapshot = ticks;
      return taken;
    };
    const ticker = setInterval(() => ticks++, 1);
    try {
      const [nextA, nextB] = [changesA.next(), changesB.next()];
      sliced.put(virtualService("svc-7", 50));
      whole.put(virtualService("svc-7", 50));
      const configA = await nextA;
      const ticksDuringMerge = ticks - ticksAtSnapshot!;
      expect(configA).toEqual(await nextB);
      expect(configA.issues.filter((i) => i.message.includes("did you mean"))).toHaveLength(30);
      expect(ticksDuringMerge, "timers that fired while the reload merged and checked").toBeGreaterThanOrEqual(2);
    } finally {
      clearInterval(ticker);
    }
  });

  it("close() rejects a start() still waiting for sync, and closes every source", async () => {
    const cluster = new MemorySource("kubernetes");
    cluster.synced = false;
    const a = aggregate([cluster]);
    const started = a.start(() => {});
    await sleep(20);
    await a.close();
    await expect(started).rejects.toThrow(/closed before every source synced/);
    expect(cluster.closed).toBe(true);
  });

  it("warns (issue + log) when one change removes a large share of a source's resources, once", async () => {
    const cluster = new MemorySource("kubernetes");
    for (let i = 0; i < 10; i++) cluster.put(serviceEntry(`svc-${i}`));
    const warnings: string[] = [];
    const logger = { warn: (_fields: unknown, message: string) => warnings.push(message) } as unknown as NonNullable<ConstructorParameters<typeof ConfigAggregator>[1]>["logger"];
    const a = new ConfigAggregator([cluster], { debounceMs: 10, logger });
    aggregators.push(a);
    a.load();
    for (let i = 0; i < 7; i++) cluster.objects.delete(`ServiceEntry/default/svc-${i}`);
    const config = a.load();
    const removal = config.issues.filter((i: ValidationIssue) => i.field === LARGE_REMOVAL_FIELD);
    expect(removal).toHaveLength(1);
    expect(formatIssue(removal[0]!)).toMatch(/^kubernetes: \(mesh\): \(large removal\): this change removes 7 of the 10 resources read from kubernetes \(70%\): ServiceEntry\/default\/svc-0, .* and 2 more/);
    expect(removal[0]!.severity).toBe("warning");
    expect(warnings).toHaveLength(1);
    // The next reload (nothing removed) carries no warning.
    expect(a.load().issues).toEqual([]);
  });

  it("names at most 10 resources it keeps for an unreadable place, and how many more", () => {
    const files = new MemorySource("files");
    for (let i = 0; i < 25; i++) files.put(serviceEntry(`svc-${i}`));
    const a = aggregate([files]);
    a.load();
    // The whole source becomes unreadable (a directory that vanished).
    const why: ValidationIssue = { file: "config", document: 0, resource: "(unknown)", field: "(directory)", message: "cannot read the directory: it does not exist", severity: "error" };
    files.snapshot = () => ({ synced: true, entries: [], issues: [why], unreadable: [{ place: "kubernetes", issues: [why] }] });
    const config = a.load();
    expect(config.resources).toHaveLength(25);
    expect(messages(config)).toEqual([
      `config: document 0: (unknown): (directory): cannot read the directory: it does not exist; keeping the last valid version of ${Array.from({ length: 10 }, (_, i) => `ServiceEntry/default/svc-${i}`).join(", ")} and 15 more`,
    ]);
  });

  it("does not warn for small removals or below the share", () => {
    const cluster = new MemorySource("kubernetes");
    for (let i = 0; i < 20; i++) cluster.put(serviceEntry(`svc-${i}`));
    const a = aggregate([cluster]);
    a.load();
    for (let i = 0; i < 9; i++) cluster.objects.delete(`ServiceEntry/default/svc-${i}`); // 45%
    expect(a.load().issues).toEqual([]);
  });
});
