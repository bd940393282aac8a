// State and rules shared by state-of-the-world and delta streams: node identity, the
// per-type subscription and ACK/NACK state, push ordering and make-before-break.
//
// Rules (xDS protocol spec, "Eventual consistency considerations"):
// - at most one response per type is in flight; further snapshots collapse into the newest;
// - on an ADS stream types are pushed in PUSH_ORDER (CDS, EDS, LDS, RDS, SDS); listeners and
//   routes wait until clusters and endpoints have answered (ACK or NACK) their latest response;
// - clusters removed from a snapshot stay on the proxy until its listeners and routes have
//   settled on the new snapshot (make-before-break), then they are removed;
// - a NACKed version is recorded and never re-sent; the next different snapshot is.
import type { Node } from "../../generated/envoy/config/core/v3/base.js";
import type { Status } from "../../generated/google/rpc/status.js";
import type { Snapshot, TypeResources } from "../cache/snapshot.js";
import type { SnapshotSource } from "../cache/snapshot-cache.js";
import { PUSH_ORDER, TYPE_SHORT_NAMES, XDS_TYPES, isXdsTypeUrl, type XdsTypeUrl } from "../envoy/type-urls.js";
import type { Logger } from "../log/logger.js";
import { describeNode, type ProxyRegistry, type ProxyStatus, type TypeStatus, type XdsApi } from "./proxy-registry.js";
import type { XdsMetrics } from "./xds-metrics.js";
import type { PushBudget } from "./push-budget.js";
import { ALL_NAMES, HeldResources } from "./held-resources.js";

/** Where a stream writes encoded responses; a grpc-js call in production. */
export interface ResponseSink {
  /** Returns false when the transport's buffer is full; `onDrain` fires when it empties. */
  write(frame: Buffer): boolean;
  onDrain(listener: () => void): void;
  end(): void;
  fail(code: number, message: string): void;
}

/**
 * Whether a stream is served, decided once from its first node: the snapshot key it is served
 * from and `release`, called exactly once when the stream ends (so whoever owns the key can
 * free it when nobody uses it); or a refusal that ends the stream with a gRPC status.
 */
export type Admission = { key: string; release?: () => void } | { refused: { code: number; message: string } };

/** Decides a stream's admission from its node and who it authenticated as (opaque; undefined = nobody). */
export type AdmitStream = (node: Node, principal: string | undefined) => Admission;

export interface StreamContext {
  source: SnapshotSource;
  /**
   * Admits a node and maps it to the snapshot key it is served from (node id, or a proxy
   * class). `principal` is who the stream authenticated as (see XdsServerOptions.authenticate).
   */
  admit: AdmitStream;
  registry: ProxyRegistry;
  metrics: XdsMetrics;
  logger: Logger;
  controlPlaneId: string;
  /** Bounds the bytes of responses in flight across all streams (see PushBudget). */
  budget?: PushBudget;
}

export interface TypeState {
  readonly typeUrl: XdsTypeUrl;
  readonly short: string;
  wildcard: boolean;
  /** The subscribed names (replaced, never modified: equal subscriptions share one Set). */
  names: ReadonlySet<string>;
  /** What the proxy holds of this type, as far as this stream knows. */
  readonly held: HeldResources;
  inflight?: { nonce: string; version: string; sentAt: bigint; release?: () => void };
  /**
   * The TypeResources this stream has nothing left to send for (the proxy holds all of it
   * that it subscribed to). Unset whenever the subscription or what the proxy holds changes.
   */
  clean?: TypeResources;
  /** How and when the proxy answered the latest response. */
  lastOutcome?: "ack" | "nack";
  answeredAt?: number;
  readonly status: TypeStatus;
}

/**
 * After a proxy ACKs new clusters it subscribes to their EDS names. Listeners and routes wait
 * up to this long for that subscription, so they never point at clusters that are still
 * warming; the wait is bounded so a proxy that never subscribes cannot stall pushes.
 */
export const SUBSCRIPTION_WAIT_MS = 1000;

let nextStreamId = 1;

export abstract class XdsStreamBase<S extends TypeState> {
  readonly streamId = nextStreamId++;
  protected snapshot?: Snapshot;
  protected readonly types = new Map<XdsTypeUrl, S>();
  protected status?: ProxyStatus;
  protected node?: Node;
  protected readonly log: Logger;
  private unwatch?: () => void;
  private nonceCounter = 0;
  private blocked = false;
  private scheduled = false;
  private subscriptionTimer?: NodeJS.Timeout;
  private release?: () => void;
  protected closed = false;

  constructor(
    protected readonly ctx: StreamContext,
    protected readonly sink: ResponseSink,
    readonly api: XdsApi,
    /** "ads", or the single type a per-type service (LDS, CDS, ...) serves. */
    protected readonly service: "ads" | XdsTypeUrl,
    protected readonly peer: string,
    /** Who the stream authenticated as, if anyone. */
    protected readonly principal?: string,
  ) {
    this.log = ctx.logger.child({ stream: this.streamId, api, service: service === "ads" ? "ads" : TYPE_SHORT_NAMES[service] });
    sink.onDrain(() => {
      this.blocked = false;
      this.pushAll();
    });
  }

  /**
   * Common start of every request: identifies the proxy (first message), resolves the type
   * (per-type services default it) and returns its state, creating it on first use.
   * Returns undefined when the request must be ignored (closed stream, unsupported type).
   */
  protected beginRequest(node: Node | undefined, requestedType: string | undefined, create: (base: TypeState) => S): { st: S; isNew: boolean } | undefined {
    if (this.closed || !this.identify(node)) return undefined;
    const url = requestedType || (this.service === "ads" ? "" : this.service);
    let problem: string | undefined;
    if (!url) problem = "type_url is required on an aggregated (ADS) stream";
    else if (this.service !== "ads" && url !== this.service) problem = `this service serves ${this.service}, not ${url}`;
    else if (!isXdsTypeUrl(url)) problem = `unsupported type_url ${url}`;
    if (problem || !isXdsTypeUrl(url)) {
      this.log.warn({ typeUrl: requestedType }, `request ignored: ${problem}`);
      return undefined;
    }
    const isNew = !this.types.has(url);
    return { st: this.typeState(url, create), isNew };
  }

  /** Records who is on the other end (first message carries the node) and starts watching. */
  protected identify(node: Node | undefined): boolean {
    if (this.status) return true;
    if (!node?.id) {
      this.sink.fail(3 /* INVALID_ARGUMENT */, "the first request on an xDS stream must carry node.id");
      this.close();
      return false;
    }
    const admission = this.ctx.admit(node, this.principal);
    if ("refused" in admission) {
      this.log.debug({ node: node.id, code: admission.refused.code }, `stream refused: ${admission.refused.message}`);
      this.sink.fail(admission.refused.code, admission.refused.message);
      this.close();
      return false;
    }
    const key = admission.key;
    this.release = admission.release;
    this.node = node;
    this.status = {
      streamId: this.streamId,
      ...describeNode(node),
      peer: this.peer,
      api: this.api,
      service: this.service === "ads" ? "ads" : TYPE_SHORT_NAMES[this.service],
      snapshotKey: key,
      principal: this.principal ?? "",
      connectedAt: new Date().toISOString(),
      types: {},
    };
    this.ctx.registry.add(this.status);
    this.ctx.metrics.connectedProxies.inc({ api: this.api });
    this.log.info({ node: node.id, cluster: node.cluster, key, envoy: this.status.envoyVersion }, "proxy connected");
    this.snapshot = this.ctx.source.get(key);
    this.unwatch = this.ctx.source.watch(key, (snapshot) => {
      this.snapshot = snapshot;
      this.schedule();
    });
    return true;
  }

  protected typeState(typeUrl: XdsTypeUrl, create: (base: TypeState) => S): S {
    let st = this.types.get(typeUrl);
    if (!st) {
      const status = { pending: false, nacks: 0 } as TypeStatus;
      const base: TypeState = { typeUrl, short: TYPE_SHORT_NAMES[typeUrl], wildcard: false, names: new Set(), held: new HeldResources(), status };
      const created = create(base);
      // Listed only when someone looks (admin API): a sorted copy per proxy cost O(names) each.
      Object.defineProperty(status, "subscribed", { enumerable: true, get: () => (created.wildcard ? "*" : [...created.names].sort()) });
      st = created;
      this.types.set(typeUrl, st);
      if (this.status) this.status.types[st.short] = status;
    }
    return st;
  }

  protected nextNonce(): string {
    return (++this.nonceCounter).toString(36);
  }

  /**
   * Handles the ACK/NACK part of a request. Returns "stale" when a response is in flight and
   * the request answers an older one (SotW ignores such requests, per the spec).
   */
  protected settle(st: S, responseNonce: string | undefined, errorDetail: Status | undefined): "ack" | "nack" | "stale" | "none" {
    // No nonce, or nothing in flight (the nonce names a response already answered): a plain
    // subscription request.
    if (!responseNonce || !st.inflight) return "none";
    if (st.inflight.nonce !== responseNonce) return "stale";
    const { version, sentAt, nonce, release } = st.inflight;
    release?.();
    st.inflight = undefined;
    st.answeredAt = Date.now();
    st.status.pending = false;
    const seconds = Number(process.hrtime.bigint() - sentAt) / 1e9;
    this.ctx.metrics.pushToAck.observe({ type: st.short }, seconds);
    const now = new Date().toISOString();
    if (errorDetail && (errorDetail.code || errorDetail.message)) {
      const nack = {
        nodeId: this.node?.id ?? "",
        type: st.short,
        version,
        nonce,
        message: errorDetail.message ?? "",
        code: errorDetail.code ?? 0,
        at: now,
      };
      st.lastOutcome = "nack";
      st.status.nacks++;
      st.status.lastNack = nack;
      this.ctx.registry.recordNack(nack);
      this.ctx.metrics.nacks.inc({ type: st.short });
      this.log.warn({ node: nack.nodeId, type: st.short, version, error: nack.message }, "proxy rejected config (NACK); it keeps its previous config");
      return "nack";
    }
    st.lastOutcome = "ack";
    st.status.ackedVersion = version;
    st.status.ackedAt = now;
    this.ctx.metrics.acks.inc({ type: st.short });
    this.ctx.registry.recordAck({ nodeId: this.node?.id ?? "", streamId: this.streamId, type: st.short, version });
    return "ack";
  }

  /**
   * Called when a type has nothing to send: unless the proxy's last answer was a NACK, it
   * holds exactly the current view (e.g. after it unsubscribed from some names, or reconnected
   * holding the current versions), so status shows that version as sent and ACKed.
   */
  protected markInSync(st: S, version: string): void {
    if (st.inflight || st.lastOutcome === "nack" || st.status.ackedVersion === version) return;
    Object.assign(st.status, { sentVersion: version, ackedVersion: version });
  }

  /** Writes one encoded response and marks it in flight. */
  protected emit(st: S, frame: Buffer, version: string, nonce: string, resourceCount: number): void {
    st.inflight = { nonce, version, sentAt: process.hrtime.bigint(), release: this.ctx.budget?.take(frame.length) };
    Object.assign(st.status, { sentVersion: version, sentNonce: nonce, sentAt: new Date().toISOString(), sentResources: resourceCount, pending: true });
    this.ctx.metrics.pushes.inc({ type: st.short, api: this.api });
    this.ctx.metrics.pushBytes.inc({ type: st.short, api: this.api }, frame.length);
    this.ctx.metrics.pushResources.inc({ type: st.short, api: this.api }, resourceCount);
    this.log.debug({ type: st.short, version, nonce, resources: resourceCount, bytes: frame.length }, "push");
    if (!this.sink.write(frame)) this.blocked = true;
  }

  /** Coalesces wake-ups from snapshot changes into one evaluation per event-loop turn. */
  protected schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pushAll();
    });
  }

  /**
   * Sends whatever each type needs, respecting in-flight responses and back-pressure.
   * Listeners and routes wait while clusters or endpoints are in flight (Envoy ACKs new
   * clusters only once they are warm), so they never point at clusters that are not ready.
   * Clusters, endpoints and secrets never wait: cluster and listener warming depends on them.
   */
  private readonly wake = () => this.schedule();

  protected pushAll(): void {
    if (!this.snapshot || this.closed || this.blocked) return;
    if (this.ctx.budget && !this.ctx.budget.available) {
      this.ctx.budget.waitForRoom(this.wake);
      return;
    }
    let clustersPending = false;
    for (const typeUrl of PUSH_ORDER) {
      const st = this.types.get(typeUrl);
      const gated = this.service === "ads" && (typeUrl === XDS_TYPES.listener || typeUrl === XDS_TYPES.route) && clustersPending;
      if (st && !st.inflight && !gated) this.pushType(st, this.snapshot);
      if (this.blocked) return;
      if (typeUrl === XDS_TYPES.cluster || typeUrl === XDS_TYPES.endpoint) {
        if (st?.inflight || this.awaitingEndpointSubscription(typeUrl, this.snapshot)) clustersPending = true;
      }
    }
  }

  /** True while the proxy has ACKed new clusters but not yet asked for their endpoints. */
  private awaitingEndpointSubscription(typeUrl: XdsTypeUrl, snapshot: Snapshot): boolean {
    if (typeUrl !== XDS_TYPES.endpoint) return false;
    const parent = this.types.get(XDS_TYPES.cluster);
    if (!parent || parent.inflight || parent.lastOutcome !== "ack" || parent.answeredAt === undefined) return false;
    const remaining = parent.answeredAt + SUBSCRIPTION_WAIT_MS - Date.now();
    if (remaining <= 0) return false;
    const st = this.types.get(typeUrl);
    let missing = false;
    if (!st?.wildcard) for (const r of snapshot.endpointReferences()) if (!st?.names.has(r.name)) { missing = true; break; }
    if (missing && !this.subscriptionTimer) {
      this.subscriptionTimer = setTimeout(() => {
        this.subscriptionTimer = undefined;
        this.pushAll();
      }, remaining + 1);
    }
    return missing;
  }

  /** True once a type has nothing in flight and nothing left to send. */
  protected settled(typeUrl: XdsTypeUrl): boolean {
    const st = this.types.get(typeUrl);
    if (!st || !this.snapshot) return true;
    return !st.inflight && !this.hasPending(st, this.snapshot);
  }

  /** Clusters the proxy has but the snapshot dropped are kept until listeners and routes settle. */
  protected keepRemovedClusters(): boolean {
    return this.service === "ads" && !(this.settled(XDS_TYPES.listener) && this.settled(XDS_TYPES.route));
  }

  /**
   * Envoy re-creates a cluster when its definition changes, and the new cluster warms only
   * once it receives its ClusterLoadAssignment, even when the endpoints did not change. So
   * after pushing changed EDS clusters, their endpoints are re-sent (instead of letting the
   * cluster wait for Envoy's 15 s initial fetch timeout).
   */
  protected resendEndpointsOf(changedClusters: readonly string[], snapshot: Snapshot): void {
    if (changedClusters.length === 0) return;
    const st = this.types.get(XDS_TYPES.endpoint);
    if (!st) return;
    const changed = new Set(changedClusters.map((c) => `cluster/${c}`));
    const names: string[] = [];
    for (const r of snapshot.endpointReferences()) if (changed.has(r.from)) names.push(r.name);
    if (names.length > 0) this.forgetSent(st, names);
  }

  /**
   * What to look at for this type: "clean" (nothing to send, nothing to compare), the names
   * that changed since the proxy was up to date (EDS fast path), or "all".
   */
  protected candidates(st: S, typed: TypeResources): "clean" | ReadonlySet<string> | "all" {
    if (!st.clean) return "all";
    if (st.clean === typed) return "clean";
    if (typed.changes?.from.deref() === st.clean) return typed.changes.names;
    return "all";
  }

  /** The proxy now holds exactly the resources of `typed` it subscribed to. */
  protected holdAll(st: S, typed: TypeResources): void {
    st.held.rebase(typed.resources, st.wildcard ? ALL_NAMES : st.names);
  }

  /** Makes the stream treat these resources as not held by the proxy, so they are sent again. */
  protected abstract forgetSent(st: S, names: readonly string[]): void;

  /** Sends the type's update if it has one; returns whether a response was written. */
  protected abstract pushType(st: S, snapshot: Snapshot): boolean;
  /** Whether pushType would send something now. */
  protected abstract hasPending(st: S, snapshot: Snapshot): boolean;

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unwatch?.();
    this.ctx.budget?.forget(this.wake);
    for (const st of this.types.values()) st.inflight?.release?.();
    clearTimeout(this.subscriptionTimer);
    if (this.status) {
      this.ctx.registry.remove(this.streamId);
      this.ctx.metrics.connectedProxies.dec({ api: this.api });
      this.log.info({ node: this.node?.id }, "proxy disconnected");
    }
    this.types.clear();
    this.snapshot = undefined;
    const release = this.release;
    this.release = undefined;
    release?.();
  }

  /** Who the stream authenticated as ("" when nobody), as given by XdsServerOptions.authenticate. */
  get authenticatedAs(): string {
    return this.principal ?? "";
  }

  /** Ends the stream with a gRPC status (e.g. its credential was revoked). */
  terminate(code: number, message: string): void {
    if (this.closed) return;
    this.sink.fail(code, message);
    this.close();
  }
}
