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
import { truncateText } from "../log/bounded-text.js";
import type { Frame, SharedFrames } from "./shared-frames.js";
import type { SharedNameSets } from "./shared-names.js";
import { GRPC_DEADLINE_EXCEEDED, GRPC_INVALID_ARGUMENT, GRPC_RESOURCE_EXHAUSTED, LimitExceeded, type XdsLimits } from "./xds-limits.js";

/** Where a stream writes encoded responses; a grpc-js call in production. */
export interface ResponseSink {
  /**
   * Writes one response (`frame.preframed`, when set, is the same message framed for gRPC).
   * Returns false when the transport's buffer is full; `onDrain` fires when it empties.
   * `onWritten` fires once the transport took the bytes (the client read them, as far as
   * HTTP/2 flow control is concerned); never, for a client that stopped reading.
   */
  write(frame: Frame, onWritten?: () => void): boolean;
  onDrain(listener: () => void): void;
  end(): void;
  /** Ends the stream with this status; a stream whose client does not read is reset. */
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
  /** What a client may make the server store, log or echo (see xds-limits.ts). */
  limits: XdsLimits;
  /** Responses encoded once for every stream that sends them (owned by the server). */
  frames: SharedFrames;
  /** Subscriptions shared by streams with equal ones (owned by the server). */
  names: SharedNameSets;
  /**
   * A SotW EDS response may replace one still unanswered once the client has read it (its
   * bytes left this process). Without it, an endpoint change waits on every stream for the
   * ACK of the previous one: at 2000 proxies each ACK repeats ~3300 names (~230 KB), and the
   * second of two changes in a row waited for the server to read 460 MB of ACKs of the first
   * (bench/results/sotw-endpoint-2000.md). The answer to the replaced response is then stale
   * and ignored, as the xDS nonce rules say.
   */
  supersedeEndpoints?: boolean;
}

/** The response of a type sent and not answered yet (at most one per type: a newer one replaces it). */
export interface InflightResponse {
  nonce: string;
  version: string;
  bytes: number;
  sentAt: bigint;
  /** The client read the bytes (see ResponseSink.write). */
  written: boolean;
  /** Gives the bytes back to the push budget. */
  release?: () => void;
  /** Ends the stream when the response stays unanswered (XdsLimits.stallTimeoutMs). */
  stallTimer?: NodeJS.Timeout;
}

export interface TypeState {
  readonly typeUrl: XdsTypeUrl;
  readonly short: string;
  wildcard: boolean;
  /** The subscribed names (replaced, never modified: equal subscriptions share one Set). */
  names: ReadonlySet<string>;
  /** UTF-8 bytes of `names` (bounded by XdsLimits.maxNameBytesPerType). */
  namesBytes: number;
  /** What the proxy holds of this type, as far as this stream knows. */
  readonly held: HeldResources;
  inflight?: InflightResponse;
  /**
   * The version of this type (TypeResources.version) the stream has nothing left to send for:
   * the proxy holds all of it that it subscribed to. Versions come from content, so any
   * TypeResources with this version is as clean, whichever object carries it. Unset whenever
   * the subscription or what the proxy holds changes.
   */
  cleanVersion?: string;
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

/** Up to `max` of `names`, sorted, and a last entry saying how many more there are. */
function listNames(names: ReadonlySet<string>, max: number): string[] {
  const sorted = [...names].sort();
  if (sorted.length <= max) return sorted;
  const shown = sorted.slice(0, max);
  shown.push(`… ${sorted.length - max} more`);
  return shown;
}

export abstract class XdsStreamBase<S extends TypeState> {
  readonly streamId: number;
  protected snapshot?: Snapshot;
  protected readonly types = new Map<XdsTypeUrl, S>();
  protected status?: ProxyStatus;
  /** node.id of the first request (bounded); the rest of the node is not kept. */
  protected nodeId?: string;
  /** An unsupported type_url was logged on this stream already (logged once per stream). */
  private loggedUnsupportedType = false;
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
    this.streamId = ctx.registry.nextStreamId();
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
    const { maxTypeUrlChars } = this.ctx.limits;
    if (url.length > maxTypeUrlChars) {
      this.refuse(new LimitExceeded(GRPC_INVALID_ARGUMENT, `type_url is ${url.length} characters long; at most ${maxTypeUrlChars} are accepted (it starts "${truncateText(url, 64)}")`, "type_url"));
      return undefined;
    }
    let problem: string | undefined;
    if (!url) problem = "type_url is required on an aggregated (ADS) stream";
    else if (this.service !== "ads" && url !== this.service) problem = `this service serves ${this.service}, not ${url}`;
    else if (!isXdsTypeUrl(url)) problem = `unsupported type_url ${url}`;
    if (problem || !isXdsTypeUrl(url)) {
      // Logged once per stream: a client repeating it must not fill the log.
      this.ctx.metrics.requestsIgnored.inc({ reason: "type_url" });
      if (!this.loggedUnsupportedType) {
        this.loggedUnsupportedType = true;
        this.log.warn(`request ignored: ${problem} (further requests ignored for this reason are not logged)`);
      }
      return undefined;
    }
    const isNew = !this.types.has(url);
    return { st: this.typeState(url, create), isNew };
  }

  /**
   * Ends the stream because the client broke a bound: a gRPC status saying which, one log
   * line, a metric. Nothing the client sent is kept.
   */
  protected refuse(err: LimitExceeded): void {
    if (this.closed) return;
    this.ctx.metrics.streamsRefused.inc({ reason: err.reason });
    this.log.warn({ node: this.nodeId, code: err.code, reason: err.reason }, `stream ended: ${err.message}`);
    this.sink.fail(err.code, err.message);
    this.close();
  }

  /** Runs a request's handling; a LimitExceeded it throws ends the stream (see refuse). */
  protected withinLimits(handle: () => void): void {
    try {
      handle();
    } catch (err) {
      if (err instanceof LimitExceeded) this.refuse(err);
      else throw err;
    }
  }

  /** Throws LimitExceeded when a subscription of `count` names and `bytes` bytes is over the bounds. */
  protected checkNames(st: S, count: number, bytes: number, what: "names" | "initial_versions" = "names"): void {
    const { maxNamesPerType, maxNameBytesPerType } = this.ctx.limits;
    if (count <= maxNamesPerType && bytes <= maxNameBytesPerType) return;
    const field = what === "names" ? "resource names" : "initial_resource_versions entries";
    throw new LimitExceeded(
      GRPC_RESOURCE_EXHAUSTED,
      `${count} ${field} (${bytes} bytes) for ${st.short.toUpperCase()}; at most ${maxNamesPerType} names and ${maxNameBytesPerType} bytes per type are accepted`,
      what,
    );
  }

  /** Records who is on the other end (first message carries the node) and starts watching. */
  protected identify(node: Node | undefined): boolean {
    if (this.status) return true;
    if (!node?.id) {
      this.sink.fail(GRPC_INVALID_ARGUMENT, "the first request on an xDS stream must carry node.id");
      this.close();
      return false;
    }
    const { maxNodeIdChars } = this.ctx.limits;
    if (node.id.length > maxNodeIdChars) {
      this.refuse(new LimitExceeded(GRPC_INVALID_ARGUMENT, `node.id is ${node.id.length} characters long; at most ${maxNodeIdChars} are accepted`, "node_id"));
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
    this.nodeId = node.id;
    this.status = {
      streamId: this.streamId,
      ...describeNode(node, this.ctx.limits),
      peer: this.peer,
      api: this.api,
      service: this.service === "ads" ? "ads" : TYPE_SHORT_NAMES[this.service],
      snapshotKey: key,
      principal: this.principal ?? "",
      virtualHostDiscovery: this.virtualHostDiscovery,
      connectedAt: new Date().toISOString(),
      types: {},
    };
    this.ctx.registry.add(this.status);
    this.ctx.metrics.connectedProxies.inc({ api: this.api });
    this.ctx.metrics.pilotXds.inc();
    this.log.info({ node: this.status.nodeId, cluster: this.status.cluster, key, envoy: this.status.envoyVersion }, "proxy connected");
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
      const base: TypeState = { typeUrl, short: TYPE_SHORT_NAMES[typeUrl], wildcard: false, names: new Set(), namesBytes: 0, held: new HeldResources(), status };
      const created = create(base);
      // Listed only when someone looks (admin API): a sorted copy per proxy cost O(names) each.
      const listed = this.ctx.limits.maxListedNames;
      Object.defineProperty(status, "subscribed", { enumerable: true, get: () => (created.wildcard ? "*" : listNames(created.names, listed)) });
      Object.defineProperty(status, "subscribedCount", { enumerable: true, get: () => created.names.size });
      st = created;
      this.types.set(typeUrl, st);
      if (this.status) this.status.types[st.short] = status;
    }
    return st;
  }

  /**
   * Whether the stream serves routes through VHDS when the snapshot carries the VHDS views
   * (Snapshot.served): Envoy's VHDS needs delta xDS, and its config source is the ADS stream.
   */
  protected get virtualHostDiscovery(): boolean {
    return this.api === "delta" && this.service === "ads";
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
    const { version, sentAt, nonce, release, stallTimer } = st.inflight;
    release?.();
    clearTimeout(stallTimer);
    st.inflight = undefined;
    st.answeredAt = Date.now();
    st.status.pending = false;
    const seconds = Number(process.hrtime.bigint() - sentAt) / 1e9;
    this.ctx.metrics.pushToAck.observe({ type: st.short }, seconds);
    const now = new Date().toISOString();
    if (errorDetail && (errorDetail.code || errorDetail.message)) {
      const nack = {
        nodeId: this.nodeId ?? "",
        type: st.short,
        version,
        nonce,
        // Bounded before it is stored, logged or shown: a client chooses its length.
        message: truncateText(errorDetail.message ?? "", this.ctx.limits.maxNackMessageBytes),
        code: errorDetail.code ?? 0,
        at: now,
      };
      st.lastOutcome = "nack";
      st.status.nacks++;
      st.status.lastNack = nack;
      this.ctx.registry.recordNack(nack);
      this.ctx.metrics.nacks.inc({ type: st.short });
      this.ctx.metrics.pilotXdsRejects.inc({ type: st.short });
      this.log.warn({ node: nack.nodeId, type: st.short, version, error: nack.message }, "proxy rejected config (NACK); it keeps its previous config");
      return "nack";
    }
    st.lastOutcome = "ack";
    st.status.ackedVersion = version;
    st.status.ackedAt = now;
    this.ctx.metrics.acks.inc({ type: st.short });
    this.ctx.registry.recordAck({ nodeId: this.nodeId ?? "", streamId: this.streamId, type: st.short, version });
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
  protected emit(st: S, frame: Frame, version: string, resourceCount: number): void {
    const { nonce } = frame;
    const size = frame.size;
    if (st.inflight) {
      // Superseded (see mayReplaceInflight): its answer will be stale; the newest response's
      // budget share and stall timer stand for the type from now on.
      st.inflight.release?.();
      clearTimeout(st.inflight.stallTimer);
      st.inflight = undefined;
    }
    const inflight: InflightResponse = { nonce, version, bytes: size, sentAt: process.hrtime.bigint(), written: false };
    inflight.release = this.ctx.budget?.take(size, {
      unread: () => !inflight.written,
      cutOff: (unreadMs) =>
        this.refuse(
          new LimitExceeded(
            GRPC_RESOURCE_EXHAUSTED,
            `the ${st.short.toUpperCase()} response (nonce ${nonce}, ${size} bytes) was not read for ${Math.round(unreadMs / 1000)} s while responses waiting for their proxies exceed the server's bound: the stream is ended (the proxy may reconnect)`,
            "overdue",
          ),
        ),
    });
    const { stallTimeoutMs } = this.ctx.limits;
    if (stallTimeoutMs > 0) {
      inflight.stallTimer = setTimeout(() => this.stalled(st, inflight), stallTimeoutMs);
      inflight.stallTimer.unref();
    }
    st.inflight = inflight;
    Object.assign(st.status, { sentVersion: version, sentNonce: nonce, sentAt: new Date().toISOString(), sentResources: resourceCount, pending: true });
    this.ctx.metrics.pushes.inc({ type: st.short, api: this.api });
    this.ctx.metrics.pilotXdsPushes.inc({ type: st.short });
    this.ctx.metrics.pushBytes.inc({ type: st.short, api: this.api }, size);
    this.ctx.metrics.pushResources.inc({ type: st.short, api: this.api }, resourceCount);
    this.log.debug({ type: st.short, version, nonce, resources: resourceCount, bytes: size }, "push");
    if (!this.sink.write(frame, () => (inflight.written = true))) this.blocked = true;
  }

  /** A response stayed unanswered for the stall timeout: the stream is ended, its memory freed. */
  private stalled(st: S, inflight: InflightResponse): void {
    if (st.inflight !== inflight) return;
    const seconds = Math.round(this.ctx.limits.stallTimeoutMs / 1000);
    const what = inflight.written ? "the proxy read it but sent no ACK or NACK" : "the proxy did not even read it";
    this.refuse(
      new LimitExceeded(
        GRPC_DEADLINE_EXCEEDED,
        `no answer within ${seconds} s to the ${st.short.toUpperCase()} response (nonce ${inflight.nonce}, ${inflight.bytes} bytes): ${what}; the stream is ended (the proxy may reconnect)`,
        "stalled",
      ),
    );
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
   * Called by the push budget when there is room, on a turn of its own: pushes at once, so the
   * room is taken before the budget wakes its next waiter (see PushBudget.wakeIfRoom).
   */
  private readonly wake = () => this.pushAll();

  /**
   * Sends whatever each type needs, respecting in-flight responses and back-pressure.
   * Listeners and routes wait while clusters or endpoints are in flight (Envoy ACKs new
   * clusters only once they are warm), so they never point at clusters that are not ready.
   * Clusters, endpoints and secrets never wait: cluster and listener warming depends on them.
   */
  protected pushAll(): void {
    if (!this.snapshot || this.closed || this.blocked) return;
    if (this.ctx.budget && !this.ctx.budget.available) {
      this.ctx.budget.waitForRoom(this.wake);
      return;
    }
    let clustersPending = false;
    for (const typeUrl of PUSH_ORDER) {
      const st = this.types.get(typeUrl);
      const gated = this.service === "ads" && (typeUrl === XDS_TYPES.listener || typeUrl === XDS_TYPES.route || typeUrl === XDS_TYPES.virtualHost) && clustersPending;
      if (st && (!st.inflight || this.mayReplaceInflight(st)) && !gated) this.pushType(st, this.snapshot);
      if (this.blocked) return;
      if (typeUrl === XDS_TYPES.cluster || typeUrl === XDS_TYPES.endpoint) {
        if (st?.inflight || this.awaitingEndpointSubscription(typeUrl, this.snapshot)) clustersPending = true;
      }
    }
  }

  /** Whether a type may be pushed while its last response is unanswered (SotW EDS: see StreamContext.supersedeEndpoints). */
  protected mayReplaceInflight(_st: S): boolean {
    return false;
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
    return this.service === "ads" && !(this.settled(XDS_TYPES.listener) && this.settled(XDS_TYPES.route) && this.settled(XDS_TYPES.virtualHost));
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
    if (st.cleanVersion === undefined) return "all";
    if (st.cleanVersion === typed.version) return "clean";
    if (typed.changes?.since === st.cleanVersion) return typed.changes.names;
    return "all";
  }

  /** The proxy now holds exactly the resources of `typed` it subscribed to. */
  protected holdAll(st: S, typed: TypeResources): void {
    st.held.rebase(typed.resources, st.wildcard ? ALL_NAMES : st.names, typed.version);
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
    for (const st of this.types.values()) {
      st.inflight?.release?.();
      clearTimeout(st.inflight?.stallTimer);
    }
    clearTimeout(this.subscriptionTimer);
    if (this.status) {
      this.ctx.registry.remove(this.streamId);
      this.ctx.metrics.connectedProxies.dec({ api: this.api });
      this.ctx.metrics.pilotXds.dec();
      this.log.info({ node: this.nodeId }, "proxy disconnected");
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
