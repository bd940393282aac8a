// What the control plane knows about every connected proxy: identity and, per type, what was
// sent, what was ACKed and the last NACK. Entries are freed when a stream ends; recent NACKs
// are kept in a bounded ring so a proxy that NACKed and left is still visible.
import { EventEmitter } from "node:events";
import type { Node } from "../../generated/envoy/config/core/v3/base.js";
import { boundedMetadata, truncateText } from "../log/bounded-text.js";
import { DEFAULT_XDS_LIMITS, type XdsLimits } from "./xds-limits.js";

export type XdsApi = "sotw" | "delta";

export interface NackRecord {
  nodeId: string;
  type: string;
  /** Version the proxy rejected. */
  version: string;
  nonce: string;
  /** Envoy's error text (error_detail.message). */
  message: string;
  code: number;
  at: string;
}

export interface TypeStatus {
  /** "*" (wildcard) or the subscribed names, sorted, at most XdsLimits.maxListedNames of them. */
  subscribed: "*" | string[];
  subscribedCount: number;
  sentVersion?: string;
  sentNonce?: string;
  sentAt?: string;
  sentResources?: number;
  ackedVersion?: string;
  ackedAt?: string;
  /** True while a response is sent and neither ACKed nor NACKed yet. */
  pending: boolean;
  nacks: number;
  lastNack?: NackRecord;
}

export interface ProxyStatus {
  streamId: number;
  nodeId: string;
  cluster: string;
  metadata: Record<string, unknown>;
  envoyVersion: string;
  userAgent: string;
  peer: string;
  api: XdsApi;
  service: string;
  snapshotKey: string;
  /** Who the stream authenticated as ("" when unauthenticated). */
  principal: string;
  /** Routes are served through VHDS when the snapshot carries its views (a delta ADS stream; Snapshot.served). */
  virtualHostDiscovery?: boolean;
  connectedAt: string;
  types: Record<string, TypeStatus>;
}

export interface AckEvent {
  nodeId: string;
  streamId: number;
  type: string;
  version: string;
}

/** Events: "ack" (AckEvent), "nack" (NackRecord), "connect"/"disconnect" (ProxyStatus). */
export class ProxyRegistry extends EventEmitter {
  private readonly connections = new Map<number, ProxyStatus>();
  private readonly nacks: NackRecord[] = [];
  private nackBytes = 0;
  private lastStreamId = 0;

  constructor(private readonly limits: Pick<XdsLimits, "maxRecentNacks" | "maxRecentNackBytes"> = DEFAULT_XDS_LIMITS) {
    super();
  }

  /** An id for a new stream, unique among the streams this registry lists. */
  nextStreamId(): number {
    return ++this.lastStreamId;
  }

  add(status: ProxyStatus): void {
    this.connections.set(status.streamId, status);
    this.emit("connect", status);
  }

  remove(streamId: number): void {
    const status = this.connections.get(streamId);
    this.connections.delete(streamId);
    if (status) this.emit("disconnect", status);
  }

  recordAck(ack: AckEvent): void {
    this.emit("ack", ack);
  }

  /** Records a NACK (its text already bounded by the stream) in the ring of recent ones. */
  recordNack(nack: NackRecord): void {
    this.emit("nack", nack);
    this.nacks.push(nack);
    this.nackBytes += nackSize(nack);
    const { maxRecentNacks, maxRecentNackBytes } = this.limits;
    while (this.nacks.length > 0 && (this.nacks.length > maxRecentNacks || this.nackBytes > maxRecentNackBytes)) {
      this.nackBytes -= nackSize(this.nacks.shift()!);
    }
  }

  /** Bytes held by the recent-NACK ring (approximate: string lengths). */
  get recentNackBytes(): number {
    return this.nackBytes;
  }

  list(): ProxyStatus[] {
    return [...this.connections.values()].sort((a, b) => a.nodeId.localeCompare(b.nodeId) || a.streamId - b.streamId);
  }

  byNode(nodeId: string): ProxyStatus[] {
    return this.list().filter((p) => p.nodeId === nodeId);
  }

  recentNacks(): NackRecord[] {
    return [...this.nacks];
  }

  get size(): number {
    return this.connections.size;
  }
}

function nackSize(n: NackRecord): number {
  return n.nodeId.length + n.type.length + n.version.length + n.nonce.length + n.message.length + n.at.length + 64;
}

/**
 * What status shows of a node, bounded: every field comes from the client. (node.id is
 * checked against its own limit before this.)
 */
export function describeNode(
  node: Node,
  limits: Pick<XdsLimits, "maxNodeFieldBytes" | "maxNodeMetadataBytes"> = DEFAULT_XDS_LIMITS,
): Pick<ProxyStatus, "nodeId" | "cluster" | "metadata" | "envoyVersion" | "userAgent"> {
  const build = node.userAgentBuildVersion?.version;
  const envoyVersion = build ? `${build.majorNumber ?? 0}.${build.minorNumber ?? 0}.${build.patch ?? 0}` : (node.userAgentVersion ?? "");
  const field = (text: string | undefined) => truncateText(text ?? "", limits.maxNodeFieldBytes);
  return {
    nodeId: node.id ?? "",
    cluster: field(node.cluster),
    metadata: boundedMetadata((node.metadata ?? {}) as Record<string, unknown>, limits.maxNodeMetadataBytes),
    envoyVersion: field(envoyVersion),
    userAgent: field(node.userAgentName),
  };
}
