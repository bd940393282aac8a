import { describe, expect, it } from "vitest";
import { silentLogger } from "../../log/logger.js";
import { Reflector, type ListPage, type ListWatchClient } from "./reflector.js";

type Obj = { metadata: { name: string; namespace: string; resourceVersion: string } };
const obj = (name: string, rv: string): Obj => ({ metadata: { name, namespace: "ns", resourceVersion: rv } });

/** An API server stand-in: pages of objects, and watches the test drives by hand. */
class FakeServer implements ListWatchClient {
  objects: Obj[] = [];
  resourceVersion = "10";
  listCalls: { limit: number; continueToken?: string }[] = [];
  failLists = 0;
  watches: { params: { resourceVersion: string }; onEvent: (t: string, o: unknown) => void; done: (err: unknown) => void }[] = [];

  async list(page: { limit: number; continueToken?: string }): Promise<ListPage> {
    this.listCalls.push(page);
    if (this.failLists > 0) {
      this.failLists--;
      throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    }
    const start = page.continueToken ? Number(page.continueToken) : 0;
    const items = this.objects.slice(start, start + page.limit);
    const next = start + page.limit < this.objects.length ? String(start + page.limit) : undefined;
    return { items, metadata: { resourceVersion: this.resourceVersion, ...(next ? { _continue: next } : {}) } };
  }

  async watch(params: { resourceVersion: string }, onEvent: (t: string, o: unknown) => void, done: (err: unknown) => void): Promise<() => void> {
    this.watches.push({ params, onEvent, done });
    return () => undefined;
  }

  get lastWatch() {
    return this.watches[this.watches.length - 1]!;
  }
}

function tick(ms = 5): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function start(server: FakeServer) {
  const log: string[] = [];
  const held = new Map<string, string>();
  const r = new Reflector<Obj>({
    resource: "things",
    client: server,
    toRecord: (o) => o as Obj,
    logger: silentLogger(),
    pageSize: 2,
    initialBackoffMs: 5,
    maxBackoffMs: 20,
    handler: {
      replace: (records) => {
        log.push(`replace ${records.map((x) => x.metadata.name).join(",")}`);
        held.clear();
        for (const x of records) held.set(x.metadata.name, x.metadata.resourceVersion);
      },
      upsert: (x) => {
        log.push(`upsert ${x.metadata.name}`);
        held.set(x.metadata.name, x.metadata.resourceVersion);
      },
      remove: (x) => {
        log.push(`remove ${x.name}`);
        held.delete(x.name);
      },
      syncedChanged: (s) => log.push(`synced ${s}`),
    },
  });
  r.start();
  return { r, log, held };
}

describe("Reflector", () => {
  it("lists in pages, then watches from the list's resourceVersion with bookmarks", async () => {
    const server = new FakeServer();
    server.objects = [obj("a", "1"), obj("b", "2"), obj("c", "3")];
    const { r, log } = start(server);
    await tick();
    expect(server.listCalls).toEqual([{ limit: 2 }, { limit: 2, continueToken: "2" }]);
    expect(log).toEqual(["replace a,b,c", "synced true"]);
    expect(server.lastWatch.params).toMatchObject({ resourceVersion: "10", allowWatchBookmarks: true });
    server.lastWatch.onEvent("ADDED", obj("d", "11"));
    server.lastWatch.onEvent("BOOKMARK", { metadata: { name: "", namespace: "", resourceVersion: "15" } });
    server.lastWatch.onEvent("DELETED", obj("a", "16"));
    expect(r.lastResourceVersion).toBe("16");
    // The watch ends normally: resumed from the last resourceVersion, no list.
    server.lastWatch.done(null);
    await tick();
    expect(server.watches).toHaveLength(2);
    expect(server.lastWatch.params.resourceVersion).toBe("16");
    expect(server.listCalls).toHaveLength(2);
    expect(log).toEqual(["replace a,b,c", "synced true", "upsert d", "remove a"]);
    r.stop();
  });

  it("410 Gone: reports not synced, relists, and replaces the set in one step (never empty)", async () => {
    const server = new FakeServer();
    server.objects = [obj("a", "1"), obj("b", "2"), obj("c", "3")];
    const { r, log, held } = start(server);
    await tick();
    // While the watch was away, "b" was deleted and "e" added; the apiserver compacted.
    server.objects = [obj("a", "1"), obj("c", "3"), obj("e", "20")];
    server.resourceVersion = "30";
    server.failLists = 2; // and the first relists fail
    server.lastWatch.onEvent("ERROR", { kind: "Status", code: 410, reason: "Expired", metadata: {} });
    server.lastWatch.done(null);
    await tick(1);
    expect(r.isSynced).toBe(false);
    expect([...held.keys()]).toEqual(["a", "b", "c"]); // what was held stays while relisting
    await tick(80);
    expect(r.isSynced).toBe(true);
    expect(log).toEqual(["replace a,b,c", "synced true", "synced false", "replace a,c,e", "synced true"]);
    expect(r.stats.relistsAfterGone).toBe(1);
    expect(server.lastWatch.params.resourceVersion).toBe("30");
    r.stop();
  });

  it("a failed watch keeps the records and retries with backoff from the same resourceVersion", async () => {
    const server = new FakeServer();
    server.objects = [obj("a", "1")];
    const { r, log } = start(server);
    await tick();
    server.lastWatch.done(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
    await tick(1);
    expect(server.watches).toHaveLength(1); // waiting out the backoff
    await tick(30);
    expect(server.watches.length).toBeGreaterThanOrEqual(2);
    expect(server.lastWatch.params.resourceVersion).toBe("10");
    expect(r.isSynced).toBe(true);
    expect(log).toEqual(["replace a", "synced true"]);
    r.stop();
  });

  it("an optional kind the cluster does not serve (404) counts as empty and synced", async () => {
    const server = new FakeServer();
    server.list = async () => {
      throw Object.assign(new Error("HTTP-Code: 404"), { code: 404 });
    };
    const { r, log } = start(server);
    await tick();
    expect(r.isSynced).toBe(false); // not optional: keeps retrying, never synced
    r.stop();
    const optional = new Reflector({ resource: "crs", optional: true, client: server, toRecord: (o) => o, logger: silentLogger(), handler: { replace: (x) => log.push(`optional replace ${x.length}`), upsert: () => undefined, remove: () => undefined, syncedChanged: (s) => log.push(`optional synced ${s}`) } });
    optional.start();
    await tick();
    expect(optional.isSynced).toBe(true);
    expect(log).toEqual(["optional replace 0", "optional synced true"]);
    optional.stop();
  });
});
