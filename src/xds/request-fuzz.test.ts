// Fuzz of xDS request decoding and handling (property-based, fast-check), over real gRPC to an
// in-process server: arbitrary bytes (framed, unframed, truncated) and structurally valid but
// hostile DiscoveryRequest / DeltaDiscoveryRequest messages (huge strings, many names, odd type
// URLs, bad nonces, huge NACK text, random and deeply nested node metadata) on ADS and per-type
// services. Afterwards the server must still serve a well-behaved client, every stream must be
// gone, and the heap must be back near its baseline.
//
// Runs for WEFT_FUZZ_MS milliseconds (default 20 s, as in CI); set it higher to fuzz longer.
// A failure prints fast-check's seed and path: FC_SEED=<seed> reruns the same inputs.
import fc from "fast-check";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse } from "../../generated/envoy/service/discovery/v3/discovery.js";
import { SnapshotCache } from "../cache/snapshot-cache.js";
import { Snapshot } from "../cache/snapshot.js";
import { buildEdsCluster, buildHttpListener, buildLoadAssignment, buildPrefixRoutes } from "../envoy/builders.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import { silentLogger } from "../log/logger.js";
import { RawXdsClient, XDS_METHODS, grpcFrame, requestKind } from "./raw-xds-client.js";
import { SimulatedClient } from "./simulated-client.js";
import { heapAfterGcMb } from "../runner/heap-after-gc.js";
import { XdsMetrics } from "./xds-metrics.js";
import { XdsServer } from "./xds-server.js";

const FUZZ_MS = Number(process.env.WEFT_FUZZ_MS ?? 20_000);
const SEED = process.env.FC_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.FC_SEED);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- arbitraries ----

/** Strings from empty to far past every bound (built, not generated, so they are cheap). */
const sizedString = fc.oneof(
  { weight: 14, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 4, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom(300, 5000, 100_000, 1_000_000, 3_500_000).map((n) => "x".repeat(n)) },
);

const typeUrl = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...Object.values(XDS_TYPES)) },
  { weight: 1, arbitrary: fc.constantFrom("", "*", "type.googleapis.com/", "type.googleapis.com/envoy.config.cluster.v3.Cluster\u0000", "type.googleapis.com/google.protobuf.Empty") },
  { weight: 2, arbitrary: sizedString },
);

const names = fc.oneof(
  { weight: 10, arbitrary: fc.array(fc.oneof(fc.constantFrom("*", "a", "b", "http", "routes", ""), fc.string({ maxLength: 30 })), { maxLength: 20 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 150_000 }).map((n) => Array.from({ length: n }, (_, i) => `name-${i}`)) },
  { weight: 1, arbitrary: fc.array(sizedString, { maxLength: 3 }) },
);

const metadata = fc.oneof(
  { weight: 10, arbitrary: fc.dictionary(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 20 }) },
  { weight: 1, arbitrary: fc.record({ NAMESPACE: sizedString, LABELS: sizedString }) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 60_000 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`key-${i}`, `value-${i}`]))) },
);

const node = fc.option(
  fc.record(
    {
      id: fc.oneof({ weight: 4, arbitrary: fc.constantFrom("fuzz-node", "") }, { weight: 1, arbitrary: sizedString }),
      cluster: sizedString,
      metadata,
      userAgentName: sizedString,
      userAgentVersion: sizedString,
    },
    { requiredKeys: ["id"] },
  ),
  { freq: 4, nil: undefined },
);

const errorDetail = fc.option(fc.record({ code: fc.integer({ min: -5, max: 100 }), message: sizedString }), { freq: 2, nil: undefined });
const nonce = fc.oneof(fc.constantFrom("", "_1", "1", "2", "a"), sizedString);

const sotwFields = fc.record(
  { node, typeUrl, resourceNames: names, versionInfo: sizedString, responseNonce: nonce, errorDetail },
  { requiredKeys: [] },
);
const sotwRequest = sotwFields.map((r) => ({ kind: "message" as const, bytes: DiscoveryRequest.encode(r as DiscoveryRequest).finish() }));

const deltaFields = fc.record(
  {
    node,
    typeUrl,
    resourceNamesSubscribe: names,
    resourceNamesUnsubscribe: names,
    initialResourceVersions: fc.oneof(
      { weight: 10, arbitrary: fc.dictionary(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }), { maxKeys: 10 }) },
      { weight: 1, arbitrary: fc.integer({ min: 1000, max: 120_000 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`r-${i}`, "v"]))) },
    ),
    responseNonce: nonce,
    errorDetail,
  },
  { requiredKeys: [] },
);
const deltaRequest = deltaFields.map((r) => ({ kind: "message" as const, bytes: DeltaDiscoveryRequest.encode(r as DeltaDiscoveryRequest).finish() }));

/** A DiscoveryRequest whose node.metadata nests `depth` Structs (built as bytes: encoders recurse). */
function deeplyNestedRequest(depth: number): Uint8Array {
  const varint = (n: number) => {
    const out: number[] = [];
    while (n > 0x7f) {
      out.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    out.push(n);
    return out;
  };
  const inner = [0x08, 0x00]; // Value{null_value}
  const prefixes: number[][] = [];
  let length = inner.length;
  for (let i = 0; i < depth; i++) {
    // Struct{fields: {"a": Value}} then Value{struct_value: Struct}
    const entry = [0x0a, 0x01, 0x61, 0x12, ...varint(length)];
    const entryLength = entry.length + length;
    const struct = [0x0a, ...varint(entryLength)];
    const structLength = struct.length + entryLength;
    const value = [0x2a, ...varint(structLength)];
    prefixes.push([...value, ...struct, ...entry]);
    length = value.length + structLength;
  }
  // The outermost Value is the metadata Struct's field value: wrap once more as Node.metadata.
  const metadataStruct = [0x0a, ...varint(3 + 1 + varint(length).length + length), 0x0a, 0x01, 0x61, 0x12, ...varint(length)];
  const nodeFields = [0x0a, 0x04, ...Buffer.from("deep"), 0x1a, ...varint(metadataStruct.length + length)];
  const nodeLength = nodeFields.length + metadataStruct.length + length;
  const head = [0x12, ...varint(nodeLength), ...nodeFields, ...metadataStruct];
  const parts = [Buffer.from(head), ...prefixes.reverse().map((p) => Buffer.from(p)), Buffer.from(inner)];
  return Buffer.concat(parts);
}

const rawBytes = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }).map((bytes) => ({ kind: "message" as const, bytes })),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ kind: "unframed" as const, bytes })),
  fc.constantFrom(10, 2000, 200_000).map((depth) => ({ kind: "message" as const, bytes: deeplyNestedRequest(depth) })),
  // A frame header announcing more than follows, or more than the request bound.
  fc.constantFrom(100, 8 * 2 ** 20, 2 ** 31 - 1).map((len) => {
    const b = Buffer.alloc(5);
    b.writeUInt32BE(len, 1);
    return { kind: "unframed" as const, bytes: b };
  }),
);

const method = fc.constantFrom(...(Object.keys(XDS_METHODS) as (keyof typeof XDS_METHODS)[]));

/** Hostile requests on a fresh stream. */
const burst = method.chain((api) =>
  fc.record({
    kind: fc.constant("burst" as const),
    api: fc.constant(api),
    messages: fc.array(fc.oneof({ weight: 3, arbitrary: requestKind(api) === "delta" ? deltaRequest : sotwRequest }, { weight: 1, arbitrary: rawBytes }), { minLength: 1, maxLength: 4 }),
    halfClose: fc.boolean(),
    read: fc.boolean(),
  }),
);

/**
 * A proper first request, then a hostile answer to the response it got (the real nonce, so
 * ACK/NACK handling runs: huge NACK text, odd subscriptions, a changed type).
 */
const session = fc.constantFrom("sotw" as const, "delta" as const).chain((api) =>
  fc.record({
    kind: fc.constant("session" as const),
    api: fc.constant(api),
    // Types a proxy gets a response for without naming resources.
    type: fc.constantFrom(XDS_TYPES.cluster, XDS_TYPES.listener),
    answer: api === "delta" ? deltaFields : sotwFields,
    keepType: fc.constantFrom(true, true, true, false),
    // NACK text from short to far past its bound, half of the time.
    nack: fc.option(fc.record({ code: fc.integer({ min: 0, max: 16 }), message: fc.oneof(fc.string(), fc.constantFrom(5000, 100_000, 1_000_000, 3_500_000).map((n) => "E".repeat(n))) }), { freq: 2, nil: undefined }),
  }),
);

const scenario = fc.oneof(burst, session);

// ---- the test ----

function snapshot(): Snapshot {
  return Snapshot.build({
    [XDS_TYPES.cluster]: ["a", "b"].map((name) => buildEdsCluster({ name })),
    [XDS_TYPES.endpoint]: ["a", "b"].map((n) => buildLoadAssignment(n, [{ address: "127.0.0.1", port: 9000 }])),
    [XDS_TYPES.listener]: [buildHttpListener({ name: "http", address: "127.0.0.1", port: 10000, routeConfigName: "routes" })],
    [XDS_TYPES.route]: [buildPrefixRoutes("routes", [{ prefix: "/", cluster: "a" }])],
  });
}

let server: XdsServer;
let target: string;
let raw: RawXdsClient;

beforeAll(async () => {
  const cache = new SnapshotCache();
  for (const key of ["fuzz-node", "good", "deep"]) cache.set(key, snapshot());
  // Short stall bounds, so streams the fuzzer leaves unanswered end during the run.
  server = new XdsServer({ source: cache, metrics: new XdsMetrics(new Registry()), logger: silentLogger(), limits: { stallTimeoutMs: 2000 } });
  target = `127.0.0.1:${await server.listen("127.0.0.1", 0)}`;
  raw = new RawXdsClient(target);
});

afterAll(async () => {
  raw?.close();
  await server?.close(200);
});

describe("xDS request fuzz", () => {
  it(`hostile requests for ${FUZZ_MS / 1000} s: no crash, the server still serves a good client, streams and memory released`, async () => {
    // Warm up (code, pools) before the baseline.
    const warm = raw.open("sotw");
    warm.send(DiscoveryRequest.encode({ node: { id: "fuzz-node" }, typeUrl: XDS_TYPES.cluster }).finish());
    await sleep(200);
    warm.cancel();
    await sleep(100);
    const baseline = heapAfterGcMb();
    let runs = 0;
    let nacks = 0;
    server.registry.on("nack", () => nacks++);
    await fc.assert(
      fc.asyncProperty(scenario, async (sc) => {
        runs++;
        const s = raw.open(sc.api, { read: sc.kind === "session" || sc.read });
        if (sc.kind === "burst") {
          for (const m of sc.messages) (m.kind === "message" ? s.send(m.bytes) : s.sendRaw(m.bytes));
          if (sc.halfClose) s.end();
        } else {
          const first = { node: { id: "fuzz-node" }, typeUrl: sc.type };
          s.send(sc.api === "delta" ? DeltaDiscoveryRequest.encode(first).finish() : DiscoveryRequest.encode(first).finish());
          for (let i = 0; i < 20 && s.messages.length === 0; i++) await sleep(5);
          const response = s.messages[0];
          const nonce = response ? (sc.api === "delta" ? DeltaDiscoveryResponse : DiscoveryResponse).decode(response).nonce : undefined;
          const answer = { ...sc.answer, responseNonce: nonce ?? sc.answer.responseNonce, ...(sc.keepType ? { typeUrl: sc.type } : {}), ...(sc.nack ? { errorDetail: sc.nack } : {}) };
          s.send(sc.api === "delta" ? DeltaDiscoveryRequest.encode(answer as DeltaDiscoveryRequest).finish() : DiscoveryRequest.encode(answer as DiscoveryRequest).finish());
        }
        await Promise.race([s.ended, sleep(30)]);
        s.cancel();
        await s.ended;
      }),
      { interruptAfterTimeLimit: FUZZ_MS, numRuns: 1_000_000, seed: SEED, endOnFailure: true },
    );
    expect(runs).toBeGreaterThan(20);
    console.log(`xDS request fuzz: ${runs} runs, ${nacks} NACKs recorded (seed ${SEED})`);
    expect(nacks).toBeGreaterThan(0); // the ACK/NACK path was reached

    // Still serving: a well-behaved client syncs.
    const good = new SimulatedClient({ target, nodeId: "good", mode: "delta" });
    good.start();
    await good.waitFor(() => good.names(XDS_TYPES.route).length === 1 && good.names(XDS_TYPES.endpoint).length === 2, 10_000, "good client sync");
    good.close();

    // Every fuzz stream is gone (at most the stall timeout after its last request) and nothing is kept.
    const until = Date.now() + 10_000;
    while ((server.streamCount > 0 || server.registry.size > 0) && Date.now() < until) await sleep(50);
    expect(server.streamCount).toBe(0);
    expect(server.registry.size).toBe(0);
    const recent = server.registry.recentNacks().reduce((n, r) => n + r.message.length, 0);
    expect(recent).toBeLessThanOrEqual(2 ** 20);
    raw.close();
    raw = new RawXdsClient(target);
    await sleep(200);
    expect(heapAfterGcMb() - baseline).toBeLessThan(48);
  }, FUZZ_MS + 60_000);
});
