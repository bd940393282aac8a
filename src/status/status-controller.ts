// The owner of resource status: after every applied config and whenever a proxy ACKs, NACKs or
// leaves, it works out each Istio resource's status (resource-status.ts) from its validation
// problems and the proxies now rejecting configuration derived from it (nack-attribution.ts),
// and hands it to the StatusQueue (coalesced, unchanged ones dropped, rate-limited). Only the
// leader writes; recomputation is debounced (a burst of ACKs after a push is one pass).
import { isFileRef, type ClusterObjectRef, type MeshConfig, type ValidationIssue } from "../api/types.js";
import type { Snapshot } from "../cache/snapshot.js";
import { TYPE_SHORT_NAMES, type XdsTypeUrl } from "../envoy/type-urls.js";
import type { Logger } from "../log/logger.js";
import type { MeshModel } from "../model/mesh-model.js";
import { NODE_METADATA } from "../model/proxy.js";
import type { LeaderElection } from "../runner/leader-election.js";
import type { IstioKind } from "../sources/kubernetes/istio-kinds.js";
import type { ProxyRegistry } from "../xds/proxy-registry.js";
import { attributeNack, type RouteDecodeCache } from "./nack-attribution.js";
import { desiredStatus, type ProxyRejection, type ResourceStatus } from "./resource-status.js";
import { StatusQueue, type StatusQueueOptions, type StatusTarget } from "./status-queue.js";

export interface StatusControllerOptions {
  /** The cluster whose objects get a status (its Kubernetes source's cluster ID). */
  clusterId: string;
  kinds: readonly IstioKind[];
  write: StatusQueueOptions["write"];
  leader: Pick<LeaderElection, "isLeader" | "onChange">;
  proxies: ProxyRegistry;
  snapshot: (key: string) => Snapshot | undefined;
  model: () => MeshModel;
  logger: Logger;
  /** Quiet time before a recomputation (default 500 ms); a busy mesh recomputes at most once per this. */
  debounceMs?: number;
  ratePerSecond?: number;
  burst?: number;
}

interface ObjectState {
  target: StatusTarget;
  generation: number;
  issues: ValidationIssue[];
}

const TYPE_URL_OF_SHORT = new Map(Object.entries(TYPE_SHORT_NAMES).map(([url, short]) => [short, url as XdsTypeUrl]));

export class StatusController {
  readonly queue: StatusQueue;
  private config: MeshConfig | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly kinds: Set<string>;
  private readonly unsubscribe: (() => void)[] = [];
  /** Recomputations done (tests, debugging). */
  passes = 0;

  constructor(private readonly opts: StatusControllerOptions) {
    this.kinds = new Set(opts.kinds.map((k) => k.kind));
    this.queue = new StatusQueue({ write: opts.write, logger: opts.logger, ratePerSecond: opts.ratePerSecond, burst: opts.burst });
    this.queue.setActive(opts.leader.isLeader());
    this.unsubscribe.push(
      opts.leader.onChange((leader) => {
        this.queue.setActive(leader);
        if (leader) this.schedule();
      }),
    );
    const changed = () => this.schedule();
    for (const event of ["ack", "nack", "disconnect"] as const) {
      opts.proxies.on(event, changed);
      this.unsubscribe.push(() => opts.proxies.off(event, changed));
    }
  }

  /** Called with every applied config. */
  configApplied(config: MeshConfig): void {
    this.config = config;
    this.schedule();
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      try {
        this.recompute();
      } catch (err) {
        this.opts.logger.error({ err: (err as Error).message }, "cannot work out resource status");
      }
    }, this.opts.debounceMs ?? 500);
    this.timer.unref();
  }

  /** The cluster's Istio objects in the config, each with its newest generation and that version's problems. */
  private objects(config: MeshConfig): Map<string, ObjectState> {
    const objects = new Map<string, ObjectState>();
    const refs: { ref: ClusterObjectRef; issue?: ValidationIssue }[] = [];
    for (const s of config.resources) if (!isFileRef(s.source)) refs.push({ ref: s.source });
    for (const i of config.issues) if (!isFileRef(i)) refs.push({ ref: i, issue: i });
    for (const { ref } of refs) {
      if (ref.cluster !== this.opts.clusterId || !this.kinds.has(ref.kind) || !ref.name || !ref.namespace) continue;
      const key = `${ref.kind}/${ref.namespace}/${ref.name}`;
      const state = objects.get(key) ?? { target: { key, kind: ref.kind, namespace: ref.namespace, name: ref.name }, generation: 0, issues: [] };
      state.generation = Math.max(state.generation, ref.generation ?? 0);
      objects.set(key, state);
    }
    for (const { ref, issue } of refs) {
      if (!issue || ref.cluster !== this.opts.clusterId || !ref.namespace) continue;
      const state = objects.get(`${ref.kind}/${ref.namespace}/${ref.name}`);
      // Problems of the newest version only (a kept older valid version's are not its).
      if (state && (ref.generation ?? state.generation) === state.generation) state.issues.push(issue);
    }
    return objects;
  }

  /** Per resource key, the rejections proxies hold now (a NACK not followed by an ACK of a newer version). */
  rejections(): Map<string, ProxyRejection[]> {
    const counts = new Map<string, Map<string, ProxyRejection>>();
    const model = this.opts.model();
    const decoded: RouteDecodeCache = new Map();
    for (const proxy of this.opts.proxies.list()) {
      for (const [type, status] of Object.entries(proxy.types)) {
        const nack = status.lastNack;
        if (!nack || status.ackedVersion === status.sentVersion) continue;
        const typeUrl = TYPE_URL_OF_SHORT.get(type);
        const resources = typeUrl ? this.opts.snapshot(proxy.snapshotKey)?.resources(typeUrl).resources : undefined;
        if (!resources) continue;
        const namespace = proxy.metadata[NODE_METADATA.namespace];
        const keys = attributeNack({ type, message: nack.message, resources, ...(typeof namespace === "string" ? { proxyNamespace: namespace } : {}) }, model, decoded);
        for (const key of keys) {
          const byMessage = counts.get(key) ?? new Map<string, ProxyRejection>();
          const id = `${type}\u0000${nack.message}`;
          const r = byMessage.get(id) ?? { type, message: nack.message, proxies: 0 };
          r.proxies++;
          byMessage.set(id, r);
          counts.set(key, byMessage);
        }
      }
    }
    return new Map([...counts].map(([key, m]) => [key, [...m.values()]]));
  }

  /** Works out every object's status now and queues what changed. */
  recompute(): void {
    if (!this.config) return;
    this.passes++;
    const objects = this.objects(this.config);
    const rejections = this.rejections();
    for (const state of objects.values()) {
      this.queue.set(state.target, desiredStatus({ generation: state.generation, issues: state.issues, rejections: rejections.get(state.target.key) ?? [] }));
    }
    this.queue.retainOnly(new Set(objects.keys()));
  }

  /** What was last written on an object (tests). */
  writtenStatus(key: string): ResourceStatus | undefined {
    return this.queue.writtenStatus(key);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const u of this.unsubscribe) u();
    this.queue.close();
  }
}
