// What Weft's proxy metrics cost in Envoy memory: N mesh clusters with and without Weft's stats
// setup (stats_config tag rules + fixed workload tags, alt_stat_name, request/response size
// histograms on every cluster; "weft-tags-only" is the same without the size histograms). Static clusters (one endpoint each, no traffic), one Envoy per
// (variant, N), memory read from the admin API's /memory (allocated, heap size) and /proc RSS
// after a stats flush.
//
//   npx tsx bench/proxy-stats-memory.ts [N ...]     (default 0 1000)
// Writes bench/results/proxy-stats-memory.json.
import { readFile, writeFile } from "node:fs/promises";
import { meshStatsConfig } from "../src/envoy/proxy-stats.js";
import { startEnvoy } from "../src/envoy/envoy-process.js";
import { outboundClusterName, outboundClusterStatName } from "../src/translate/naming.js";

const sizes = process.argv.slice(2).map(Number).filter((n) => Number.isInteger(n) && n >= 0);
const NS = sizes.length > 0 ? sizes : [0, 1000];
type Variant = "envoy-defaults" | "weft-tags-only" | "weft-stats";
const VARIANTS: Variant[] = ["envoy-defaults", "weft-tags-only", "weft-stats"];

function bootstrap(n: number, variant: Variant): string {
  const weft = variant !== "envoy-defaults";
  const sizes = variant === "weft-stats";
  const clusters = Array.from({ length: n }, (_, i) => {
    const name = outboundClusterName(9080, "", `svc-${i}.ns-${i % 50}.svc.cluster.local`);
    return {
      name,
      ...(weft ? { alt_stat_name: outboundClusterStatName(name) } : {}),
      ...(sizes ? { track_cluster_stats: { request_response_sizes: true } } : {}),
      type: "STATIC",
      connect_timeout: "1s",
      load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 1 } } } }] }] },
    };
  });
  return JSON.stringify({
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    stats_config: meshStatsConfig({ identity: { workload: "productpage-v1", namespace: "default", app: "productpage", version: "v1" }, meshTags: weft }),
    static_resources: { clusters },
  });
}

async function measure(n: number, variant: Variant): Promise<{ allocatedMb: number; heapSizeMb: number; rssMb: number; stats: number }> {
  const envoy = await startEnvoy({ name: `stats-mem-${variant}-${n}`, bootstrapYaml: bootstrap(n, variant), readyTimeoutMs: 180_000 });
  try {
    await new Promise((r) => setTimeout(r, 6000)); // one stats flush (5 s) so histograms are published
    const memory = JSON.parse(await (await fetch(`${envoy.adminUrl}/memory`)).text()) as { allocated: string; heap_size: string };
    const stats = (await (await fetch(`${envoy.adminUrl}/stats/prometheus`)).text()).split("\n").filter((l) => l !== "" && !l.startsWith("#")).length;
    const status = await readFile(`/proc/${envoy.pid}/status`, "utf8");
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { allocatedMb: Number(memory.allocated) / 1e6, heapSizeMb: Number(memory.heap_size) / 1e6, rssMb: rssKb / 1024, stats };
  } finally {
    await envoy.stop();
  }
}

const rows: { clusters: number; variant: Variant; allocatedMb: number; heapSizeMb: number; rssMb: number; stats: number }[] = [];
for (const n of NS) {
  // Alternate the variants so a machine-wide load change hits both.
  for (const variant of VARIANTS) {
    const m = await measure(n, variant);
    rows.push({ clusters: n, variant, ...m });
    process.stdout.write(`${n} clusters, ${variant}: allocated ${m.allocatedMb.toFixed(1)} MB, heap ${m.heapSizeMb.toFixed(1)} MB, RSS ${m.rssMb.toFixed(1)} MB, ${m.stats} Prometheus samples\n`);
  }
}
const base = (v: Variant) => rows.find((r) => r.clusters === NS[0] && r.variant === v)!;
const perCluster = NS.slice(1).flatMap((n) => VARIANTS.map((v) => {
  const r = rows.find((x) => x.clusters === n && x.variant === v)!;
  return { clusters: n, variant: v, allocatedKbPerCluster: ((r.allocatedMb - base(v).allocatedMb) * 1e3) / (n - NS[0]!), rssKbPerCluster: ((r.rssMb - base(v).rssMb) * 1024) / (n - NS[0]!) };
}));
for (const p of perCluster) process.stdout.write(`${p.variant} at ${p.clusters}: ${p.allocatedKbPerCluster.toFixed(1)} kB allocated / cluster, ${p.rssKbPerCluster.toFixed(1)} kB RSS / cluster\n`);
await writeFile(new URL("./results/proxy-stats-memory.json", import.meta.url), JSON.stringify({ date: new Date().toISOString(), envoy: "1.40 (startEnvoy defaults)", rows, perCluster }, null, 2) + "\n");
