// What each connected proxy was sent and where it stands, per type and resource: the one view
// behind the CSDS service (envoy.service.status.v3), the admin server's /debug/config_dump and
// `weft proxy-config` / `weft config-dump`. Built from the proxy registry (sent / ACKed /
// NACKed versions) and the snapshot each proxy's stream serves. Private keys never leave:
// secrets are redacted here, once, for every reader.
import type { Any } from "../../generated/google/protobuf/any.js";
import type { SnapshotSource } from "../cache/snapshot-cache.js";
import { routeConfigurationOf } from "../cache/virtual-host-discovery.js";
import { PUSH_ORDER, TYPE_SHORT_NAMES, XDS_CODECS, XDS_TYPES, type XdsTypeUrl } from "../envoy/type-urls.js";
import type { ProxyRegistry, ProxyStatus, TypeStatus } from "./proxy-registry.js";

/** Istio's and CSDS's words for where a type stands on one proxy. */
export type ConfigState = "SYNCED" | "NOT_SENT" | "STALE" | "ERROR";

export const REDACTED = "[redacted]";

export interface ResourceStatus {
  name: string;
  /** Content version of the resource Weft holds for the proxy now. */
  version: string;
  /** The encoded resource (a Secret's private key replaced by "[redacted]"). */
  body: Buffer;
}

export interface TypeClientStatus {
  typeUrl: XdsTypeUrl;
  /** "cds", "eds", "lds", "rds", "vhds", "sds". */
  type: string;
  state: ConfigState;
  /** Version of the type in the snapshot Weft serves the proxy now. */
  currentVersion?: string;
  sentVersion?: string;
  ackedVersion?: string;
  ackedAt?: string;
  nack?: { version: string; message: string; at: string };
  resources: ResourceStatus[];
}

export interface ProxyClientStatus {
  proxy: ProxyStatus;
  types: TypeClientStatus[];
}

function stateOf(t: TypeStatus | undefined, currentVersion: string | undefined): ConfigState {
  if (!t?.sentVersion) return "NOT_SENT";
  if (t.lastNack && t.lastNack.version === t.sentVersion) return "ERROR";
  if (!t.pending && t.ackedVersion === t.sentVersion && (currentVersion === undefined || currentVersion === t.sentVersion)) return "SYNCED";
  return "STALE";
}

/** A Secret with its private keys replaced (certificate chains and trusted CAs are public). */
function redactSecret(body: Buffer): Buffer {
  const codec = XDS_CODECS[XDS_TYPES.secret];
  const secret = codec.decode(body);
  if (secret.tlsCertificate) secret.tlsCertificate = { ...secret.tlsCertificate, privateKey: { inlineString: REDACTED } };
  if (secret.sessionTicketKeys) secret.sessionTicketKeys = { keys: [] };
  if (secret.genericSecret) secret.genericSecret = { secret: { inlineString: REDACTED } };
  const bytes = codec.encode(secret).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Per type, what the proxy's stream is subscribed to and holds, with its state. */
export function clientStatusOf(proxy: ProxyStatus, source: SnapshotSource): ProxyClientStatus {
  const snapshot = source.get(proxy.snapshotKey);
  const types: TypeClientStatus[] = [];
  for (const typeUrl of PUSH_ORDER) {
    const short = TYPE_SHORT_NAMES[typeUrl];
    const t = proxy.types[short] ?? proxy.types[typeUrl];
    const current = snapshot?.served(typeUrl, proxy.virtualHostDiscovery ?? false);
    if (!t && (!current || current.resources.size === 0)) continue;
    // Only what the proxy subscribed to (the listed names are bounded: beyond them, everything).
    const names = t && t.subscribed !== "*" && t.subscribed.length === t.subscribedCount ? new Set(t.subscribed) : undefined;
    const resources: ResourceStatus[] = [];
    for (const r of current?.resources.values() ?? []) {
      // VirtualHost subscriptions name route configurations (virtual-host-discovery.ts).
      if (names && !names.has(typeUrl === XDS_TYPES.virtualHost ? routeConfigurationOf(r.name) : r.name)) continue;
      resources.push({ name: r.name, version: r.version, body: typeUrl === XDS_TYPES.secret ? redactSecret(r.body) : r.body });
    }
    resources.sort((a, b) => a.name.localeCompare(b.name));
    types.push({
      typeUrl,
      type: short,
      state: stateOf(t, current?.version),
      ...(current ? { currentVersion: current.version } : {}),
      ...(t?.sentVersion ? { sentVersion: t.sentVersion } : {}),
      ...(t?.ackedVersion ? { ackedVersion: t.ackedVersion } : {}),
      ...(t?.ackedAt ? { ackedAt: t.ackedAt } : {}),
      ...(t?.lastNack ? { nack: { version: t.lastNack.version, message: t.lastNack.message, at: t.lastNack.at } } : {}),
      resources,
    });
  }
  return { proxy, types };
}

/**
 * The connected proxies a name picks: its exact node id, or the `name.namespace` (or `name`)
 * part of Istio-style ids `type~ip~name.namespace~domain`, as istioctl names pods.
 */
export function findProxies(registry: ProxyRegistry, name: string): ProxyStatus[] {
  const all = registry.list();
  const exact = all.filter((p) => p.nodeId === name);
  if (exact.length) return exact;
  return all.filter((p) => {
    const part = p.nodeId.split("~")[2] ?? "";
    return part === name || part.split(".")[0] === name || p.nodeId.includes(name);
  });
}

/** The Any carrying one resource of a type. */
export function resourceAny(typeUrl: XdsTypeUrl, r: ResourceStatus): Any {
  return { typeUrl, value: r.body };
}
