// The one load generator of the istiod-vs-Weft bench (bench/istiod/run.ts), in its own process:
// simulated sidecars (SimulatedClient: subscribes and ACKs as Envoy does, SotW or delta) presenting
// Istio's node identity, one per pod of the shape. Server-agnostic: it knows nothing of istiod or
// Weft, it only watches what each client holds.
//
// Input (env): XDS_TARGET host:port, MODE sotw|delta, SIDECARS_FILE (or SIDECARS_JSON) a JSON array of
// { ip, pod, namespace, labels, serviceAccount }, MAX_SYNCING (at most that many clients between
// their start and holding all four types: as Envoy fleets roll out; 0 = all at once), CHURN_NAME
// (the EDS name part whose addresses churn: those bodies are kept; every other resource is held
// as a digest, so 2000 clients at Istio's load shape fit in memory).
// Commands on stdin, one JSON object a line; answers on stdout, one JSON object a line:
//   {"cmd":"sync"}                      -> {"synced":true,"startedAt","lastResponseAt":epochMs} once every client
//                                          holds clusters, listeners, endpoints and routes and nothing
//                                          came for QUIET_MS (the time of the last response before it)
//   {"cmd":"mark","watch":[{"type":T,"match":S},...]} -> {"marked":true}: remembers what each client
//                                          holds of each type T (names containing S; "" = all)
//   {"cmd":"wait","timeoutMs":N}        -> {"done":[epochMs per client]}: for each client, when what it
//                                          holds differed from the mark in every watched type (content
//                                          or set of names)
//   {"cmd":"bytes"}                     -> {"bytes":N,"responses":N,"requests":N,"reconnects":N}: resource bytes and
//                                          responses received, requests sent (subscriptions, ACKs), streams retried
//   {"cmd":"churn-begin"}               -> {"churning":true}: from now on each client notes when it first holds
//                                          each churn number k (its CHURN_NAME endpoints hold one address, 10.202.k/256.k%256)
//   {"cmd":"churn-end","writes":{k:epochMs},"timeoutMs":N} -> {"p50","p99","max","latencies","undelivered"}: waits
//                                          until every client holds the last k; a change k counts as delivered to a
//                                          client when it holds any k' >= k (debounced pushes skip states)
//   {"cmd":"storm","count":N,"timeoutMs":N} -> {"ms","synced","reconnects","bytes","responses","requests"}: N more
//                                          clients (identities reused in turn) started at once; the time until every
//                                          one holds all four types; then they are closed
// Ends on SIGTERM or when stdin closes.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { DecodedResources, SimulatedClient, type ReceivedResponse } from "../../src/xds/simulated-client.js";
import { XDS_TYPES } from "../../src/envoy/type-urls.js";
import { ClusterLoadAssignment } from "../../generated/envoy/config/endpoint/v3/endpoint.js";

import { istioNode, type Sidecar } from "./istio-node.js";

const QUIET_MS = Number(process.env.QUIET_MS ?? 2000);
const target = process.env.XDS_TARGET ?? "127.0.0.1:15010";
const mode = process.env.MODE === "delta" ? "delta" : "sotw";
const sidecars = JSON.parse(process.env.SIDECARS_FILE ? readFileSync(process.env.SIDECARS_FILE, "utf8") : (process.env.SIDECARS_JSON ?? "[]")) as Sidecar[];
const now = () => performance.timeOrigin + performance.now();
const send = (o: unknown) => process.stdout.write(JSON.stringify(o) + "\n");

const MAX_SYNCING = Number(process.env.MAX_SYNCING ?? 0);
const CHURN_NAME = process.env.CHURN_NAME ?? "manual.";

/** Of the sidecars (storm clients count apart). */
const totals = { bytes: 0, responses: 0, reconnects: 0 };
let lastError = "";
let lastResponseAt = 0;
const startedAt = now();

/** Each distinct resource decoded once for all clients (they receive the same bytes). */
const decoded = new DecodedResources();

/** Clients closed on purpose (storm clients after the storm): not retried. */
const retired = new WeakSet<SimulatedClient>();

/** A client per sidecar identity, Envoy-like: retries refused streams with Envoy's backoff. */
function makeClient(s: Sidecar, counters: { bytes: number; responses: number; reconnects: number }): SimulatedClient {
  const node = istioNode(s);
  const c = new SimulatedClient({
    target,
    mode,
    nodeId: node.id,
    cluster: node.cluster,
    metadata: node.metadata,
    holdDigests: true,
    keepBody: (typeUrl, name) => typeUrl === XDS_TYPES.endpoint && name.includes(CHURN_NAME),
    keepResponses: false,
    decoded,
  });
  c.on("error", () => undefined);
  // Like Envoy: a failed stream (istiod as shipped refuses streams past its rate limit with
  // RESOURCE_EXHAUSTED) is retried with jittered exponential backoff, base 500 ms, at most 30 s.
  let attempt = 0;
  c.on("stream-error", (e: Error) => {
    if (retired.has(c)) return;
    counters.reconnects++;
    lastError = `sidecar ${s.pod}: ${e.message}`;
    const delay = Math.random() * Math.min(30_000, 500 * 2 ** attempt++);
    setTimeout(() => !retired.has(c) && c.start(), delay).unref();
  });
  c.on("response", (r: ReceivedResponse) => {
    attempt = 0;
    counters.responses++;
    lastResponseAt = now();
    const held = c.held.get(r.typeUrl);
    for (const n of r.names) counters.bytes += held?.get(n)?.size ?? 0;
  });
  return c;
}

const FOUR_TYPES = [XDS_TYPES.cluster, XDS_TYPES.listener, XDS_TYPES.endpoint, XDS_TYPES.route];
const holdsFour = (c: SimulatedClient) => FOUR_TYPES.every((t) => (c.held.get(t)?.size ?? 0) > 0);

const clients = sidecars.map((s) => makeClient(s, totals));
// At most MAX_SYNCING clients between start and holding all four types (0: all at once).
let nextToStart = 0;
const startNext = (): void => {
  if (nextToStart >= clients.length) return;
  const c = clients[nextToStart++]!;
  if (MAX_SYNCING > 0) {
    const onResponse = () => {
      if (!holdsFour(c)) return;
      c.off("response", onResponse);
      startNext();
    };
    c.on("response", onResponse);
  }
  c.start();
};
for (let i = 0; i < (MAX_SYNCING > 0 ? Math.min(MAX_SYNCING, clients.length) : clients.length); i++) startNext();

const holdsAll = () => clients.every(holdsFour);

interface Watch {
  type: string;
  match: string;
}
let watches: Watch[] = [];
let marks: Map<string, Buffer>[][] = [];
const snapshot = (c: SimulatedClient, w: Watch) => {
  const m = new Map<string, Buffer>();
  for (const [n, r] of c.held.get(w.type) ?? []) if (n.includes(w.match)) m.set(n, r.body);
  return m;
};
const differs = (a: Map<string, Buffer>, b: Map<string, Buffer>) => a.size !== b.size || [...a].some(([n, body]) => !b.get(n)?.equals(body));
const changed = (c: SimulatedClient, i: number) => watches.every((w, k) => differs(snapshot(c, w), marks[i]![k]!));

async function poll(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${totals.reconnects} streams failed${lastError ? `, last: ${lastError}` : ""})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// --- churn: when each client first holds each churn number k ---------------------------------------
let churnSeen: Map<number, number>[] | undefined;
let churnListeners: (() => void)[] = [];
function churnNumber(c: SimulatedClient): number | undefined {
  for (const [name, r] of c.held.get(XDS_TYPES.endpoint) ?? []) {
    if (!name.includes(CHURN_NAME)) continue;
    const a = ClusterLoadAssignment.decode(r.body).endpoints?.[0]?.lbEndpoints?.[0]?.endpoint?.address?.socketAddress?.address ?? "";
    const m = /^10\.202\.(\d+)\.(\d+)$/.exec(a);
    return m ? Number(m[1]) * 256 + Number(m[2]) : undefined;
  }
  return undefined;
}
function churnLatencies(writes: Map<number, number>): { latencies: number[]; undelivered: number } {
  const latencies: number[] = [];
  let undelivered = 0;
  const ks = [...writes.keys()].sort((a, b) => a - b);
  for (const seen of churnSeen ?? []) {
    // delivered(k) = the first time the client held any k' >= k
    const held = [...seen].sort((a, b) => a[0] - b[0]);
    const suffixMin: number[] = [];
    for (let i = held.length - 1, m = Infinity; i >= 0; i--) suffixMin[i] = m = Math.min(m, held[i]![1]);
    let j = 0;
    for (const k of ks) {
      while (j < held.length && held[j]![0] < k) j++;
      if (j >= held.length) undelivered++;
      else latencies.push(suffixMin[j]! - writes.get(k)!);
    }
  }
  return { latencies, undelivered };
}

async function handle(cmd: { cmd: string; watch?: Watch[]; timeoutMs?: number; writes?: Record<string, number>; count?: number }): Promise<void> {
  if (cmd.cmd === "sync") {
    await poll(holdsAll, cmd.timeoutMs ?? 300_000, "every client to hold CDS, LDS, EDS and RDS");
    await poll(() => now() - lastResponseAt >= QUIET_MS, cmd.timeoutMs ?? 300_000, "quiet");
    send({ synced: true, startedAt, lastResponseAt });
  } else if (cmd.cmd === "mark") {
    watches = cmd.watch ?? [];
    marks = clients.map((c) => watches.map((w) => snapshot(c, w)));
    send({ marked: true });
  } else if (cmd.cmd === "wait") {
    const done: number[] = clients.map(() => NaN);
    const listeners = clients.map((c, i) => {
      const l = () => {
        if (Number.isNaN(done[i]!) && changed(c, i)) done[i] = now();
      };
      l();
      c.on("response", l);
      return l;
    });
    try {
      await poll(() => done.every((d) => !Number.isNaN(d)), cmd.timeoutMs ?? 120_000, `every client to get the change (${done.filter((d) => !Number.isNaN(d)).length}/${done.length} did)`);
    } finally {
      clients.forEach((c, i) => c.off("response", listeners[i]!));
    }
    send({ done });
  } else if (cmd.cmd === "bytes") {
    send({ ...totals, requests: requestsSent(clients) });
  } else if (cmd.cmd === "churn-begin") {
    churnSeen = clients.map(() => new Map());
    churnListeners = clients.map((c, i) => {
      const l = () => {
        const k = churnNumber(c);
        if (k !== undefined && !churnSeen![i]!.has(k)) churnSeen![i]!.set(k, now());
      };
      c.on("response", l);
      return l;
    });
    send({ churning: true });
  } else if (cmd.cmd === "churn-end") {
    const writes = new Map(Object.entries(cmd.writes ?? {}).map(([k, t]) => [Number(k), t]));
    const last = Math.max(...writes.keys());
    try {
      await poll(() => churnSeen!.every((seen) => [...seen.keys()].some((k) => k >= last)), cmd.timeoutMs ?? 60_000, "every client to hold the last churned endpoints").catch(() => undefined);
    } finally {
      clients.forEach((c, i) => c.off("response", churnListeners[i]!));
    }
    const { latencies, undelivered } = churnLatencies(writes);
    churnSeen = undefined;
    send({ p50: pct(latencies, 0.5), p99: pct(latencies, 0.99), max: pct(latencies, 1), latencies: latencies.length, undelivered });
  } else if (cmd.cmd === "storm") {
    const counters = { bytes: 0, responses: 0, reconnects: 0 };
    const count = cmd.count ?? 0;
    const storm = Array.from({ length: count }, (_, i) => makeClient(sidecars[i % sidecars.length]!, counters));
    const t0 = now();
    for (const c of storm) c.start();
    let ms = NaN;
    await poll(() => storm.every(holdsFour), cmd.timeoutMs ?? 120_000, "storm").then(
      () => (ms = now() - t0),
      () => undefined,
    );
    const synced = storm.filter(holdsFour).length;
    const requests = requestsSent(storm);
    for (const c of storm) {
      retired.add(c);
      c.close();
    }
    send({ ms, synced, count, ...counters, requests });
  }
}

function requestsSent(cs: SimulatedClient[]): number {
  return cs.reduce((n, c) => n + c.requestsSent, 0);
}
function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? Math.round(s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!) : NaN;
}

const stop = () => {
  for (const c of clients) c.close();
  process.exit(0);
};
process.once("SIGTERM", stop);
let queue = Promise.resolve();
createInterface({ input: process.stdin })
  .on("line", (line) => {
    queue = queue.then(() => handle(JSON.parse(line))).catch((err: Error) => void send({ error: err.message }));
  })
  .on("close", stop);
