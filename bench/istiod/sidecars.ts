// The one load generator of the istiod-vs-Weft bench (bench/istiod/run.ts), in its own process:
// simulated sidecars (SimulatedClient: subscribes and ACKs as Envoy does, SotW or delta) presenting
// Istio's node identity, one per pod of the shape. Server-agnostic: it knows nothing of istiod or
// Weft, it only watches what each client holds.
//
// Input (env): XDS_TARGET host:port, MODE sotw|delta, SIDECARS_JSON a JSON array of
// { ip, pod, namespace, labels, serviceAccount }.
// Commands on stdin, one JSON object a line; answers on stdout, one JSON object a line:
//   {"cmd":"sync"}                      -> {"synced":true,"startedAt","lastResponseAt":epochMs} once every client
//                                          holds clusters, listeners, endpoints and routes and nothing
//                                          came for QUIET_MS (the time of the last response before it)
//   {"cmd":"mark","watch":[{"type":T,"match":S},...]} -> {"marked":true}: remembers what each client
//                                          holds of each type T (names containing S; "" = all)
//   {"cmd":"wait","timeoutMs":N}        -> {"done":[epochMs per client]}: for each client, when what it
//                                          holds differed from the mark in every watched type (content
//                                          or set of names)
//   {"cmd":"bytes"}                     -> {"bytes":N,"responses":N,"reconnects":N}: resource bytes and responses received, streams retried
// Ends on SIGTERM or when stdin closes.
import { createInterface } from "node:readline";
import { SimulatedClient, type ReceivedResponse } from "../../src/xds/simulated-client.js";
import { XDS_TYPES } from "../../src/envoy/type-urls.js";

interface Sidecar {
  ip: string;
  pod: string;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount: string;
}

const QUIET_MS = Number(process.env.QUIET_MS ?? 2000);
const target = process.env.XDS_TARGET ?? "127.0.0.1:15010";
const mode = process.env.MODE === "delta" ? "delta" : "sotw";
const sidecars = JSON.parse(process.env.SIDECARS_JSON ?? "[]") as Sidecar[];
const now = () => performance.timeOrigin + performance.now();
const send = (o: unknown) => process.stdout.write(JSON.stringify(o) + "\n");

let reconnects = 0;
let lastError = "";
let bytes = 0;
let responses = 0;
let lastResponseAt = 0;
const startedAt = now();
const clients = sidecars.map((s) => {
  const c = new SimulatedClient({
    target,
    mode,
    nodeId: `sidecar~${s.ip}~${s.pod}.${s.namespace}~${s.namespace}.svc.cluster.local`,
    cluster: `${s.labels.app ?? s.pod}.${s.namespace}`,
    metadata: {
      NAMESPACE: s.namespace,
      LABELS: s.labels, // a map, as pilot-agent sends it (istiod rejects a JSON string)
      CLUSTER_ID: "Kubernetes",
      ISTIO_VERSION: "1.29.0",
      INTERCEPTION_MODE: "REDIRECT",
      POD_NAME: s.pod,
      SERVICE_ACCOUNT: s.serviceAccount,
    },
  });
  c.on("error", () => undefined);
  // Like Envoy: a failed stream (istiod as shipped refuses streams past its rate limit with
  // RESOURCE_EXHAUSTED) is retried with jittered exponential backoff, base 500 ms, at most 30 s.
  let attempt = 0;
  c.on("stream-error", (e: Error) => {
    reconnects++;
    lastError = `sidecar ${s.pod}: ${e.message}`;
    const delay = Math.random() * Math.min(30_000, 500 * 2 ** attempt++);
    setTimeout(() => c.start(), delay).unref();
  });
  c.on("response", () => {
    attempt = 0;
  });
  c.on("response", (r: ReceivedResponse) => {
    responses++;
    lastResponseAt = now();
    const held = c.held.get(r.typeUrl);
    for (const n of r.names) bytes += held?.get(n)?.body.length ?? 0;
  });
  c.start();
  return c;
});

const FOUR = [XDS_TYPES.cluster, XDS_TYPES.listener, XDS_TYPES.endpoint, XDS_TYPES.route];
const holdsAll = () => clients.every((c) => FOUR.every((t) => (c.held.get(t)?.size ?? 0) > 0));

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
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${reconnects} streams failed${lastError ? `, last: ${lastError}` : ""})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function handle(cmd: { cmd: string; watch?: Watch[]; timeoutMs?: number }): Promise<void> {
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
    send({ bytes, responses, reconnects });
  }
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
