// What the control plane knows about every connected proxy: identity and, per type, what was
// sent, what was ACKed and the last NACK. Entries are freed when a stream ends; recent NACKs
// are kept in a bounded ring so a proxy that NACKed and left is still visible.
import { EventEmitter } from "node:events";
import type { Node } from "../../generated/envoy/config/core/v3/base.js";

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
  subscribed: "*" | string[];
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
  connectedAt: string;
  types: Record<string, TypeStatus>;
}

const MAX_RECENT_NACKS = 200;

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

  recordNack(nack: NackRecord): void {
    this.emit("nack", nack);
    this.nacks.push(nack);
    if (this.nacks.length > MAX_RECENT_NACKS) this.nacks.splice(0, this.nacks.length - MAX_RECENT_NACKS);
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

export function describeNode(node: Node): Pick<ProxyStatus, "nodeId" | "cluster" | "metadata" | "envoyVersion" | "userAgent"> {
  const build = node.userAgentBuildVersion?.version;
  const envoyVersion = build ? `${build.majorNumber ?? 0}.${build.minorNumber ?? 0}.${build.patch ?? 0}` : (node.userAgentVersion ?? "");
  return {
    nodeId: node.id ?? "",
    cluster: node.cluster ?? "",
    metadata: { ...(node.metadata ?? {}) } as Record<string, unknown>,
    envoyVersion,
    userAgent: node.userAgentName ?? "",
  };
}
