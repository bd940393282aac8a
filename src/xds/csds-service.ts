// The Client Status Discovery Service (envoy.service.status.v3.ClientStatusDiscoveryService):
// standard tools ask Weft for every connected proxy's configuration and its status, per
// resource, as generic_xds_configs (SYNCED / STALE / ERROR with the NACK's text / NOT_SENT).
// Both methods: FetchClientStatus (unary) and StreamClientStatus (one response per request).
// With TLS (weft serve --security) every workload can reach this port, so CSDS answers
// PERMISSION_DENIED there: one proxy must not read another's configuration; operators use
// the admin API (loopback by default).
import { status as GrpcStatus, type ServerDuplexStream, type ServerUnaryCall, type UntypedServiceImplementation, type sendUnaryData } from "@grpc/grpc-js";
import type { StringMatcher } from "../../generated/envoy/type/matcher/v3/string.js";
import type { NodeMatcher } from "../../generated/envoy/type/matcher/v3/node.js";
import type { Timestamp } from "../../generated/google/protobuf/timestamp.js";
import { ClientResourceStatus } from "../../generated/envoy/admin/v3/config_dump_shared.js";
import { ConfigStatus, type ClientConfig, type ClientConfig_GenericXdsConfig, type ClientStatusRequest, type ClientStatusResponse } from "../../generated/envoy/service/status/v3/csds.js";
import type { SnapshotSource } from "../cache/snapshot-cache.js";
import { clientStatusOf, resourceAny, type ConfigState } from "./client-status.js";
import type { ProxyRegistry } from "./proxy-registry.js";

/** Node matchers read per request; more are refused (INVALID_ARGUMENT). */
export const MAX_NODE_MATCHERS = 100;

const CONFIG_STATUS: Record<ConfigState, ConfigStatus> = { SYNCED: ConfigStatus.SYNCED, NOT_SENT: ConfigStatus.NOT_SENT, STALE: ConfigStatus.STALE, ERROR: ConfigStatus.ERROR };
const CLIENT_STATUS: Record<ConfigState, ClientResourceStatus> = { SYNCED: ClientResourceStatus.ACKED, NOT_SENT: ClientResourceStatus.UNKNOWN, STALE: ClientResourceStatus.REQUESTED, ERROR: ClientResourceStatus.NACKED };

function timestamp(iso: string | undefined): Timestamp | undefined {
  if (!iso) return undefined;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 } : undefined;
}

function stringMatches(m: StringMatcher | undefined, value: string): boolean {
  if (!m) return true;
  const v = m.ignoreCase ? value.toLowerCase() : value;
  const c = (s: string) => (m.ignoreCase ? s.toLowerCase() : s);
  if (m.exact !== undefined) return v === c(m.exact);
  if (m.prefix !== undefined) return v.startsWith(c(m.prefix));
  if (m.suffix !== undefined) return v.endsWith(c(m.suffix));
  if (m.contains !== undefined) return v.includes(c(m.contains));
  return false; // safe_regex and others: not supported, match nothing
}

/** The ClientStatusResponse for a request: every connected proxy a matcher picks (all without matchers). */
export function clientStatusResponse(req: ClientStatusRequest, registry: ProxyRegistry, source: SnapshotSource): ClientStatusResponse {
  const matchers: NodeMatcher[] = req.nodeMatchers ?? [];
  const config: ClientConfig[] = [];
  const seen = new Set<string>();
  for (const proxy of registry.list()) {
    if (matchers.length && !matchers.some((m) => stringMatches(m.nodeId, proxy.nodeId))) continue;
    // One entry per node (a proxy with an ADS and a per-type stream is one client).
    if (seen.has(`${proxy.nodeId}\u0000${proxy.streamId}`)) continue;
    seen.add(`${proxy.nodeId}\u0000${proxy.streamId}`);
    const status = clientStatusOf(proxy, source);
    const generic: ClientConfig_GenericXdsConfig[] = [];
    for (const t of status.types) {
      for (const r of t.resources) {
        generic.push({
          typeUrl: t.typeUrl,
          name: r.name,
          versionInfo: t.sentVersion ?? "",
          ...(req.excludeResourceContents ? {} : { xdsConfig: resourceAny(t.typeUrl, r) }),
          ...(t.ackedAt ? { lastUpdated: timestamp(t.ackedAt) } : {}),
          configStatus: CONFIG_STATUS[t.state],
          clientStatus: CLIENT_STATUS[t.state],
          ...(t.nack && t.state === "ERROR" ? { errorState: { details: t.nack.message, versionInfo: t.nack.version, lastUpdateAttempt: timestamp(t.nack.at) } } : {}),
        });
      }
    }
    config.push({ node: { id: proxy.nodeId, cluster: proxy.cluster, userAgentName: proxy.userAgent }, genericXdsConfigs: generic });
  }
  return { config };
}

export interface CsdsOptions {
  registry: ProxyRegistry;
  source: SnapshotSource;
  /** Refuse every call (the xDS port is reachable by workloads: --security). */
  refuse?: string;
}

/** Handlers for ClientStatusDiscoveryServiceService. */
export function csdsHandlers(opts: CsdsOptions): UntypedServiceImplementation {
  const answer = (req: ClientStatusRequest): { response?: ClientStatusResponse; error?: { code: number; details: string } } => {
    if (opts.refuse) return { error: { code: GrpcStatus.PERMISSION_DENIED, details: opts.refuse } };
    if ((req.nodeMatchers?.length ?? 0) > MAX_NODE_MATCHERS) return { error: { code: GrpcStatus.INVALID_ARGUMENT, details: `at most ${MAX_NODE_MATCHERS} node matchers per request` } };
    return { response: clientStatusResponse(req, opts.registry, opts.source) };
  };
  return {
    fetchClientStatus: (call: ServerUnaryCall<ClientStatusRequest, ClientStatusResponse>, callback: sendUnaryData<ClientStatusResponse>) => {
      const { response, error } = answer(call.request);
      if (error) callback(error);
      else callback(null, response);
    },
    streamClientStatus: (call: ServerDuplexStream<ClientStatusRequest, ClientStatusResponse>) => {
      call.on("data", (req: ClientStatusRequest) => {
        const { response, error } = answer(req);
        if (error) call.emit("error", error);
        else call.write(response!);
      });
      call.on("end", () => call.end());
      call.on("error", () => undefined);
    },
  };
}
