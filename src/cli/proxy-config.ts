// weft proxy-config {clusters|listeners|routes|endpoints|secrets} PROXY and weft config-dump
// PROXY: what Weft sends one proxy, from the admin server's /debug/config_dump (secrets'
// private keys are redacted by the server). A table by default, like istioctl; -o json|yaml
// gives every field.
import { X509Certificate } from "node:crypto";
import { stringify } from "yaml";
import { helpText, parseFlags, type FlagSpec } from "./flags.js";
import { UsageError } from "./usage-error.js";

const ADMIN: FlagSpec = { type: "string", env: "WEFT_ADMIN_URL", default: "http://127.0.0.1:15014", help: "admin URL of the control plane" };

const PROXY_CONFIG_FLAGS = {
  admin: ADMIN,
  output: { type: "string", short: "o", default: "table", help: "output format: table, json, yaml" },
} satisfies Record<string, FlagSpec>;

const CONFIG_DUMP_FLAGS = {
  admin: ADMIN,
  output: { type: "string", short: "o", default: "json", help: "output format: json, yaml" },
} satisfies Record<string, FlagSpec>;

const KINDS = { clusters: "cds", listeners: "lds", routes: "rds", endpoints: "eds", secrets: "sds" } as const;
type Kind = keyof typeof KINDS;

type Json = Record<string, unknown>;

interface DumpType {
  type: string;
  typeUrl: string;
  state: string;
  sentVersion?: string;
  ackedVersion?: string;
  nack?: { version: string; message: string };
  resources: { name: string; version: string; config: Json }[];
}

interface Dump {
  proxies: { nodeId: string; snapshotKey: string; types: DumpType[] }[];
}

async function fetchDump(admin: string | undefined, proxy: string, type?: string): Promise<Dump> {
  const url = new URL("/debug/config_dump", admin);
  url.searchParams.set("proxy", proxy);
  if (type) url.searchParams.set("type", type);
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new Error(`cannot reach the control plane's admin server at ${admin}: ${(err as Error).cause ?? (err as Error).message}`);
  }
  const body = (await res.json()) as Json;
  if (!res.ok) {
    const extra = Array.isArray(body["matches"]) ? `: ${(body["matches"] as string[]).join(", ")}` : Array.isArray(body["connected"]) ? ` (connected: ${(body["connected"] as string[]).join(", ") || "none"})` : "";
    throw new Error(`${String(body["error"] ?? `admin server answered ${res.status}`)}${extra}`);
  }
  return body as unknown as Dump;
}

function table(header: string[], rows: string[][]): string {
  if (rows.length === 0) return "(none)\n";
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (r: string[]) => r.map((c, i) => (c ?? "").padEnd(widths[i]!)).join("  ").trimEnd();
  return [fmt(header), ...rows.map(fmt)].join("\n") + "\n";
}

const obj = (v: unknown): Json => (v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {});
const arr = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);
const str = (v: unknown): string => (v === undefined || v === null ? "" : String(v));

function socket(address: unknown): { address: string; port: string } {
  const s = obj(obj(address)["socketAddress"]);
  return { address: str(s["address"]), port: str(s["portValue"]) };
}

function certificateFacts(chain: Json): string {
  const pem = chain["inlineBytes"] ? Buffer.from(str(chain["inlineBytes"]), "base64").toString("utf8") : str(chain["inlineString"]);
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  if (!first) return "";
  try {
    const cert = new X509Certificate(first);
    return `${cert.subjectAltName ?? cert.subject} serial ${cert.serialNumber.slice(0, 16)} valid to ${new Date(cert.validTo).toISOString()}`;
  } catch {
    return "";
  }
}

/** A VHDS virtual host's place: its route configuration and its own name (virtual-host-discovery.ts naming, unescaped). */
function vhdsPlace(resourceName: string): { routeConfiguration: string; virtualHost: string } {
  const at = resourceName.lastIndexOf("/");
  const own = resourceName.slice(at + 1).replaceAll("%2F", "/").replaceAll("%25", "%");
  return { routeConfiguration: at < 0 ? "" : resourceName.slice(0, at), virtualHost: own };
}

/** istioctl-like tables, one per resource type (routes: with the virtual hosts sent through VHDS, `vhds`). */
function render(kind: Kind, t: DumpType, vhds?: DumpType): string {
  const rs = t.resources;
  switch (kind) {
    case "clusters":
      return table(
        ["NAME", "SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE"],
        rs.map((r) => {
          const [direction, port, subset, host] = r.name.split("|");
          const parsed = direction === "outbound" || direction === "inbound";
          return [r.name, parsed ? str(host) : "", parsed ? str(port) : "", parsed ? str(subset) : "", parsed ? str(direction) : "", str(r.config["type"] ?? (r.config["clusterType"] ? "CUSTOM" : "EDS"))];
        }),
      );
    case "listeners":
      return table(
        ["NAME", "ADDRESS", "PORT", "FILTER CHAINS", "DESTINATION PORTS"],
        rs.map((r) => {
          const { address, port } = socket(r.config["address"]);
          const chains = arr(r.config["filterChains"]);
          const ports = [...new Set(chains.map((c) => str(obj(c["filterChainMatch"])["destinationPort"])).filter(Boolean))];
          return [r.name, address, port, String(chains.length + (r.config["defaultFilterChain"] ? 1 : 0)), ports.slice(0, 8).join(",") + (ports.length > 8 ? ",..." : "")];
        }),
      );
    case "routes":
      return table(
        ["NAME", "VIRTUAL HOST", "DOMAINS", "ROUTES"],
        [
          ...rs.flatMap((r) => arr(r.config["virtualHosts"]).map((vh) => ({ rc: r.name, vh }))),
          ...(vhds?.resources ?? []).map((r) => ({ rc: vhdsPlace(r.name).routeConfiguration, vh: { ...r.config, name: vhdsPlace(r.name).virtualHost } as Json })),
        ]
          .sort((a, b) => (a.rc === b.rc ? 0 : a.rc < b.rc ? -1 : 1))
          .map(({ rc, vh }) => {
            const domains = arr(vh["domains"]).map(str);
            return [rc, str(vh["name"]), domains.slice(0, 3).join(",") + (domains.length > 3 ? `,+${domains.length - 3}` : ""), String(arr(vh["routes"]).length)];
          }),
      );
    case "endpoints":
      return table(
        ["ENDPOINT", "CLUSTER", "LOCALITY", "WEIGHT"],
        rs.flatMap((r) =>
          arr(r.config["endpoints"]).flatMap((group) => {
            const l = obj(group["locality"]);
            const locality = [l["region"], l["zone"], l["subZone"]].map(str).filter(Boolean).join("/");
            return arr(group["lbEndpoints"]).map((e) => {
              const { address, port } = socket(obj(e["endpoint"])["address"]);
              return [`${address}:${port}`, r.name, locality, str(e["loadBalancingWeight"] ?? 1)];
            });
          }),
        ),
      );
    case "secrets":
      return table(
        ["NAME", "TYPE", "CERTIFICATE"],
        rs.map((r) => {
          const tls = obj(r.config["tlsCertificate"]);
          const validation = obj(r.config["validationContext"]);
          if (Object.keys(tls).length) return [r.name, "Cert Chain", certificateFacts(obj(tls["certificateChain"]))];
          if (Object.keys(validation).length) return [r.name, "CA", certificateFacts(obj(validation["trustedCa"]))];
          return [r.name, "other", ""];
        }),
      );
  }
}

function format(output: string, allowed: string[]): string {
  if (!allowed.includes(output)) throw new UsageError(`--output must be ${allowed.join(", ")}, got "${output}"`);
  return output;
}

export async function runProxyConfig(argv: string[]): Promise<number> {
  const { help, values, positionals } = parseFlags(argv, PROXY_CONFIG_FLAGS, { positionals: true });
  if (help) {
    process.stdout.write(helpText("proxy-config", `Shows what Weft sends one proxy: ${Object.keys(KINDS).join(", ")}. PROXY is a node id or the name.namespace of Istio-style ids (sidecar~IP~name.namespace~...).`, PROXY_CONFIG_FLAGS, "{clusters|listeners|routes|endpoints|secrets} PROXY"));
    return 0;
  }
  const [kind, proxy, ...extra] = positionals;
  if (!kind || !(kind in KINDS)) throw new UsageError(`expected one of ${Object.keys(KINDS).join(", ")}, got ${kind ? `"${kind}"` : "nothing"}`);
  if (!proxy || extra.length) throw new UsageError("expected one PROXY (a node id or name.namespace)");
  const output = format(values.output ?? "table", ["table", "json", "yaml"]);
  const dump = await fetchDump(values.admin, proxy, KINDS[kind as Kind]);
  const p = dump.proxies[0]!;
  const t = p.types[0] ?? { type: KINDS[kind as Kind], typeUrl: "", state: "NOT_SENT", resources: [] };
  // A delta proxy gets its route configurations' virtual hosts through VHDS: shown with them.
  const vhds = kind === "routes" ? (await fetchDump(values.admin, proxy, "vhds")).proxies[0]?.types[0] : undefined;
  const shown = vhds && vhds.resources.length > 0 ? vhds : undefined;
  if (output === "json") process.stdout.write(JSON.stringify(shown ? [t, shown] : t, null, 2) + "\n");
  else if (output === "yaml") process.stdout.write(stringify(shown ? [t, shown] : t));
  else {
    for (const x of shown ? [t, shown] : [t]) {
      const versions = `sent ${x.sentVersion ?? "-"}, acked ${x.ackedVersion ?? "-"}`;
      process.stdout.write(`${p.nodeId}: ${kind} (${x.type}) ${x.state} (${versions})${x.nack ? `\nNACK of ${x.nack.version}: ${x.nack.message.replace(/\s+/g, " ")}` : ""}\n`);
    }
    process.stdout.write("\n" + render(kind as Kind, t, shown));
  }
  return t.state === "ERROR" || shown?.state === "ERROR" ? 1 : 0;
}

export async function runConfigDump(argv: string[]): Promise<number> {
  const { help, values, positionals } = parseFlags(argv, CONFIG_DUMP_FLAGS, { positionals: true });
  if (help) {
    process.stdout.write(helpText("config-dump", "Prints everything Weft sends one proxy (every type, readable; private keys redacted) with its sync state.", CONFIG_DUMP_FLAGS, "PROXY"));
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("expected one PROXY (a node id or name.namespace)");
  const output = format(values.output ?? "json", ["json", "yaml"]);
  const dump = await fetchDump(values.admin, positionals[0]!);
  const p = dump.proxies[0]!;
  process.stdout.write(output === "json" ? JSON.stringify(p, null, 2) + "\n" : stringify(p));
  return p.types.some((t) => t.state === "ERROR") ? 1 : 0;
}
