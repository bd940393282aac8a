// Weft's control plane on Istio's load-test shape (bench/mesh/istio-load-shape.ts), for the
// push-convergence and churn benchmarks: the mesh controller (translation, proxy classes,
// EDS fast path) behind the xDS server, the configs of every step parsed and validated up
// front (as the file source would have, one file per service), then applied on command.
//
//   node --import tsx bench/mesh/weft-mesh-server.ts --port P --namespaces 10 --services 100 --nodes nodes.json
//   stdin (one JSON per line):
//     {"cmd":"apply","step":i}     -> {"applied":i,"path":"endpoints|full|none","millis":..,"changed":..}
//     {"cmd":"churn","service":s,"generation":g} -> moves service s's v1 endpoint; commands that
//        arrive while the controller is busy are coalesced: {"applied":"churn","coalesced":n,...}
//     {"cmd":"stats"}              -> {"stats":{"pushes":..,"bytes":..,"cpuSeconds":..,"rssMb":..}}
//     {"cmd":"mem"}                -> {"mem":{"heapMb":..,"rssMb":..,"gc":true|false}} after a full GC
//        (when node runs with --expose-gc)
//     {"cmd":"heap","file":F}      -> writes a V8 heap snapshot to F: {"heap":F}
//   --max-inflight-mb N: the xDS server's push budget (default 256 MiB).
//   --dump DIR: write every step's snapshots (bench/go/refserver -dump format) to DIR/step-<i>, then exit.
// Prints "ready" once every proxy class of --nodes is generated and the server listens.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { getHeapSpaceStatistics, writeHeapSnapshot } from "node:v8";
import type { Node } from "../../generated/envoy/config/core/v3/base.js";
import type { MeshConfig } from "../../src/api/types.js";
import type { ResourceSet } from "../../src/cache/snapshot.js";
import { PUSH_ORDER } from "../../src/envoy/type-urls.js";
import { silentLogger } from "../../src/log/logger.js";
import { applyGlibcMallocSettings } from "../../src/cli/glibc-malloc-settings.js";
import { applyV8GcSettings } from "../../src/cli/v8-gc-settings.js";
import { startControlPlane } from "../../src/runner/control-plane.js";
import { MeshController } from "../../src/runner/mesh-controller.js";
import { SnapshotCache } from "../../src/cache/snapshot-cache.js";
import { loadShapeConfigs, parseService, type LoadShape, type ShapeVariant } from "./istio-load-shape.js";

export interface NodeSpec {
  id: string;
  cluster: string;
  metadata: Record<string, string>;
}

/** The steps every run applies, in order (each a whole config; variants are cumulative). */
export function meshSteps(): ShapeVariant[] {
  return [
    {}, // 0: the initial config
    { movedEndpoint: { service: 5, generation: 1 } }, // 1: endpoint change
    { movedEndpoint: { service: 5, generation: 2 } }, // 2: endpoint change
    { movedEndpoint: { service: 5, generation: 2 }, shiftedRoute: 7 }, // 3: route change
    { movedEndpoint: { service: 5, generation: 2 }, shiftedRoute: 8 }, // 4: route change (7 back, 8 shifted)
    { movedEndpoint: { service: 5, generation: 2 }, shiftedRoute: 8, extraServices: 1 }, // 5: new service
  ];
}

// As `weft serve` and `weft demo` do (src/cli/main.ts): glibc's allocator gives large freed
// blocks back (re-executes once; WEFT_GLIBC_MALLOC_TUNING=0 keeps glibc's defaults, for A/B runs).
applyGlibcMallocSettings();
// And V8's opt-in GC setting when WEFT_V8_GC_TUNING=1 (src/cli/v8-gc-settings.ts), as weft serve.
applyV8GcSettings();

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "18001" },
    namespaces: { type: "string", default: "10" },
    services: { type: "string", default: "100" },
    nodes: { type: "string" },
    dump: { type: "string" },
    "max-inflight-mb": { type: "string" },
  },
});
const shape: LoadShape = { namespaces: Number(values.namespaces), servicesPerNamespace: Number(values.services) };
const nodes = JSON.parse(readFileSync(values.nodes ?? "", "utf8")) as NodeSpec[];
const steps = meshSteps();
const configs = loadShapeConfigs(shape, steps);
// Churn: the current config, one file per service; a churn command moves one service's v1
// endpoint. Commands read while the controller is busy are coalesced into one application
// (latest state wins) — no debounce delay is added on top.
const files = Array.from({ length: shape.namespaces * shape.servicesPerNamespace }, (_, i) => parseService(shape, i, {}));
let churnPending = 0;
function churn(service: number, generation: number): void {
  files[service] = parseService(shape, service, { movedEndpoint: { service, generation } });
  if (churnPending++ > 0) return;
  setImmediate(() => {
    const coalesced = churnPending;
    churnPending = 0;
    const stats = controller.setConfig({ resources: files.flat(), issues: [] });
    console.log(JSON.stringify({ applied: "churn", coalesced, path: stats.path, millis: stats.millis, changed: stats.changed }));
  });
}

const toNode = (n: NodeSpec): Node => ({ id: n.id, cluster: n.cluster, metadata: n.metadata }) as Node;

if (values.dump) {
  // Every step's snapshots as files for the go-control-plane reference server.
  const cache = new SnapshotCache();
  const controller = new MeshController(cache, silentLogger());
  controller.setConfig(configs[0]!);
  const keyOf = new Map(nodes.map((n) => [n.id, controller.nodeKey(toNode(n))]));
  const encodedParts = new WeakMap<ResourceSet, { id: string; bytes: Buffer }>();
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  for (const [i, config] of configs.entries()) {
    if (i > 0) controller.setConfig(config);
    const dir = path.join(values.dump, `step-${i}`);
    mkdirSync(path.join(dir, "parts"), { recursive: true });
    const manifest = { parts: {} as Record<string, string>, classes: {} as Record<string, { parts: string[]; versions: Record<string, string> }>, nodes: Object.fromEntries(keyOf) };
    for (const key of new Set(keyOf.values())) {
      const snapshot = cache.get(key)!;
      const ids: string[] = [];
      for (const part of snapshot.parts) {
        let encoded = encodedParts.get(part);
        if (!encoded) {
          const chunks: Buffer[] = [];
          for (const t of PUSH_ORDER) {
            for (const r of part.resources(t).resources.values()) {
              const name = Buffer.from(r.name);
              chunks.push(u32(Buffer.byteLength(t)), Buffer.from(t), u32(name.length), name, u32(r.body.length), r.body);
            }
          }
          const bytes = Buffer.concat(chunks);
          encodedParts.set(part, (encoded = { id: createHash("sha256").update(bytes).digest("hex").slice(0, 20), bytes }));
        }
        if (!manifest.parts[encoded.id]) {
          manifest.parts[encoded.id] = `parts/${encoded.id}.bin`;
          writeFileSync(path.join(dir, "parts", `${encoded.id}.bin`), encoded.bytes);
        }
        ids.push(encoded.id);
      }
      manifest.classes[key] = { parts: ids, versions: Object.fromEntries(PUSH_ORDER.map((t) => [t, snapshot.resources(t).version])) };
    }
    writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(manifest));
    console.log(JSON.stringify({ dumped: i, dir, classes: Object.keys(manifest.classes).length, parts: Object.keys(manifest.parts).length }));
  }
  process.exit(0);
}

const cp = await startControlPlane({ logger: silentLogger(), xdsAddress: "127.0.0.1", xdsPort: Number(values.port), admit: (node, principal) => controller.admit(node, principal),
  maxInflightBytes: values["max-inflight-mb"] ? Number(values["max-inflight-mb"]) * 1024 * 1024 : undefined,
});
// Pre-generated classes outlive the wait for clients; every node may be its own class.
// VHDS for delta clients as `weft serve` (WEFT_VHDS=false: whole route configurations, for A/B).
const controller = new MeshController(cp.cache, silentLogger(), {}, { releaseGraceMs: 30 * 60_000, maxClasses: nodes.length + 1 }, { virtualHostDiscovery: process.env.WEFT_VHDS !== "false" });
controller.setConfig(configs[0]!);
// Classes are generated before clients connect (as for the reference server, which is handed
// ready snapshots): the storm measures serving, the steps measure generation + serving.
for (const n of nodes) controller.nodeKey(toNode(n));
cp.markConfigLoaded();

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function counter(name: string): Promise<number> {
  const metric = await cp.metricsRegistry.getSingleMetric(name)?.get();
  return (metric?.values ?? []).reduce((a, v) => a + v.value, 0);
}

/** Streams the server ended, by reason (stalled, overdue, ...). */
async function refusedByReason(): Promise<Record<string, number>> {
  const metric = await cp.metricsRegistry.getSingleMetric("weft_xds_streams_refused_total")?.get();
  return Object.fromEntries((metric?.values ?? []).map((v) => [String(v.labels.reason), v.value]));
}

// Closing stdin ends the server (as the load generator does), like SIGTERM.
createInterface({ input: process.stdin })
  .on("close", () => stop())
  .on("line", (line) => {
  void (async () => {
    try {
      const cmd = JSON.parse(line) as { cmd: string; step?: number; service?: number; generation?: number };
      if (cmd.cmd === "churn") churn(cmd.service ?? 0, cmd.generation ?? 1);
      else if (cmd.cmd === "apply") {
        const config = configs[cmd.step ?? -1];
        if (!config) throw new Error(`no step ${cmd.step}`);
        const cpu0 = process.cpuUsage();
        const stats = controller.setConfig(config);
        const cpu = process.cpuUsage(cpu0);
        console.log(JSON.stringify({ applied: cmd.step, path: stats.path, millis: stats.millis, cpuMs: Math.round((cpu.user + cpu.system) / 1000), changed: stats.changed }));
      } else if (cmd.cmd === "stats") {
        console.log(
          JSON.stringify({
            stats: { pushes: await counter("weft_xds_pushes_total"), bytes: await counter("weft_xds_push_bytes_total"), cpuSeconds: cpuSeconds(), rssMb: process.memoryUsage().rss / 1e6, refused: await refusedByReason() },
          }),
        );
      } else if (cmd.cmd === "mem") {
        const gc = (globalThis as { gc?: () => void }).gc;
        gc?.();
        const m = process.memoryUsage();
        console.log(JSON.stringify({ mem: { heapMb: m.heapUsed / 1e6, externalMb: m.external / 1e6, arrayBuffersMb: m.arrayBuffers / 1e6, rssMb: m.rss / 1e6, gc: gc !== undefined, spaces: Object.fromEntries(getHeapSpaceStatistics().map((sp) => [sp.space_name, { usedMb: +(sp.space_used_size / 1e6).toFixed(1), committedMb: +(sp.physical_space_size / 1e6).toFixed(1) }])) } }));
      } else if (cmd.cmd === "heap") {
        console.log(JSON.stringify({ heap: writeHeapSnapshot((cmd as { file?: string }).file) }));
      } else throw new Error(`unknown command ${cmd.cmd}`);
    } catch (err) {
      console.log(JSON.stringify({ error: (err as Error).message }));
    }
  })();
});
const stop = () => {
  void cp.close(0).finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
console.log("ready");
