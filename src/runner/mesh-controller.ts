// Turns mesh config into per-proxy-class snapshots: rebuilds the model when the config
// changes and regenerates each held proxy class. A class is registered (and generated) the
// moment its first proxy connects, counted by the streams that use it, and released (snapshot,
// local part, and outbound parts nobody else uses) a grace period after its last proxy left.
// The number of classes is bounded: past the limit new classes are refused, never a crash.
// With security, what defines a class (namespace, labels, identity) comes from the stream's
// credential and its WorkloadEntry, never from node metadata, and streams without a valid
// credential are refused. A snapshot refused by the consistency check is logged and the class
// keeps its last good snapshot.
import { status as GrpcStatus } from "@grpc/grpc-js";
import { Counter, Gauge, type Registry } from "prom-client";
import type { Node } from "../../generated/envoy/config/core/v3/base.js";
import type { Admission } from "../xds/stream-base.js";
import type { MeshConfig } from "../api/types.js";
import { ResourceSet, SNAPSHOT_VIEWS, Snapshot, type CachedResource } from "../cache/snapshot.js";
import { InconsistentSnapshotError, type SnapshotCache } from "../cache/snapshot-cache.js";
import type { Logger } from "../log/logger.js";
import { buildMeshModel, buildMeshModelSteps, type MeshModel, type MeshSettings } from "../model/mesh-model.js";
import { proxyClassKey, proxyFromNode, sameLabels, type ProxyModel } from "../model/proxy.js";
import { SHARED_RESOURCES, endpointChangeScope, localPartMayChange, localPartSeesEndpoints, outboundEndpoints, planProxy } from "../translate/translate.js";
import { TranslationMemo } from "../translate/translation-memo.js";
import type { OutboundReuse, OutboundServicePiece } from "../translate/sidecar.js";
import { diffModelsSteps } from "../model/model-diff.js";
import { ResourceEncoder } from "../cache/resource-encoder.js";
import { runToEnd, type Steps } from "../work/work-steps.js";
import { SlicedWorkQueue } from "./sliced-work-queue.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import type { MeshSecurity } from "../translate/mtls.js";
import type { Credential, CredentialStore } from "../identity/credential-store.js";
import { identityKey, type WorkloadCertificates } from "../identity/workload-certificates.js";

/** mTLS for the mesh: the CA's trust domain and bundle, workload certificates, bootstrap credentials. */
export interface ControllerSecurity {
  trustDomain: string;
  trustBundlePem: () => string;
  certificates: WorkloadCertificates;
  credentials: CredentialStore;
  /** Principals proven elsewhere (Kubernetes pods by TokenReview): their credential now, undefined once void. */
  otherPrincipal?: (principal: string) => Credential | undefined;
  /**
   * Ends the streams of a principal whose class no longer matches its WorkloadEntry (labels or
   * namespace changed): the proxy reconnects and is admitted into the class it now belongs to.
   */
  endStreamsOf?: (principal: string, message: string) => void;
}

/** Bounds on proxy classes (defaults: DEFAULT_MAX_PROXY_CLASSES, DEFAULT_CLASS_RELEASE_GRACE_MS). */
export interface ClassLimits {
  /** Most proxy classes held at once; a stream that would create one more is refused (RESOURCE_EXHAUSTED). */
  maxClasses?: number;
  /** How long a class outlives its last proxy, so a reconnecting proxy finds it still generated. */
  releaseGraceMs?: number;
  /** Registry for weft_proxy_classes and weft_proxy_classes_refused_total. */
  metrics?: Registry;
}

/** How the controller's work runs (see SlicedWorkQueue). */
export interface ControllerWork {
  /**
   * Give the event loop back after this much CPU time (ms) of generation: applyConfig, new
   * classes and regenerations run in slices, so admin and xDS stay responsive during a large
   * reload. Unset: everything runs synchronously when asked (tests, benches).
   */
  sliceMs?: number;
  /**
   * Also build the VHDS forms of route configurations (src/cache/virtual-host-discovery.ts), so
   * delta ADS clients get route changes as the changed virtual hosts only. Default: on
   * (`weft serve --vhds=false` / WEFT_VHDS=false turns it off: every client gets whole route
   * configurations).
   */
  virtualHostDiscovery?: boolean;
}

export const DEFAULT_MAX_PROXY_CLASSES = 2000;
export const DEFAULT_CLASS_RELEASE_GRACE_MS = 30_000;
/** Node metadata labels accepted per proxy (plaintext mode); more is refused as invalid. */
export const MAX_NODE_LABELS = 64;
/** Longest class description (labels included) accepted from node metadata. */
export const MAX_CLASS_KEY_CHARS = 4096;
/**
 * With security: distinct classes one credential's streams may use at once (the node still
 * chooses type, capture mode, locality and explicit port), so one token cannot take the
 * whole class budget.
 */
export const MAX_CLASSES_PER_CREDENTIAL = 8;
const WARN_INTERVAL_MS = 10_000;

interface ProxyClass {
  proxy: ProxyModel;
  /** Streams (and fetches in progress) using the class. */
  refs: number;
  /** Set while refs is 0: frees the class when it fires. */
  releaseTimer?: NodeJS.Timeout;
  idleSince?: number;
  /** The outbound part the class's snapshot uses (kept while some class uses it). */
  outboundKey?: string;
}

type Refusal = { refused: { code: number; message: string; reason: string } };

export interface GenerationStats {
  classes: number;
  /**
   * "full": every class regenerated; "services": only what derives from the changed services,
   * VirtualServices and DestinationRules translated again; "endpoints": the EDS fast path;
   * "none": nothing to do.
   */
  path: "full" | "services" | "endpoints" | "none";
  changed: number;
  /** Per-service pieces of outbound parts translated / reused from the previous generation. */
  translatedServices?: number;
  reusedServices?: number;
  refused: number;
  millis: number;
}

export class MeshController {
  private model: MeshModel;
  /** What translating `model` computed once (one per model, replaced with it: translation-memo.ts). */
  private memo = new TranslationMemo();
  private readonly classes = new Map<string, ProxyClass>();
  /** Outbound parts of the current model, by outbound key: shared by every class with that key. */
  private outbound = new Map<string, ResourceSet>();
  /**
   * The per-service pieces each outbound part was assembled from (same keys as `outbound`),
   * reused by the next generation for services the model diff says did not change.
   */
  private outboundPieces = new Map<string, ReadonlyMap<string, OutboundServicePiece>>();
  /** Pieces translated / reused since the last count (GenerationStats). */
  private pieceCounts = { translated: 0, reused: 0 };
  /**
   * Encodes every part (each message object once; equal bodies of the current model's parts
   * share one Buffer; route configurations from per-virtual-host frames). Dropped with the controller.
   */
  private readonly encoder = new ResourceEncoder();
  /** Each class's local part (inbound listener, gateway config, secrets) of the current model. */
  private locals = new Map<string, ResourceSet>();
  private readonly shared = ResourceSet.build(SHARED_RESOURCES());

  private security?: ControllerSecurity;
  private readonly maxClasses: number;
  private readonly releaseGraceMs: number;
  private readonly classGauge?: Gauge;
  private readonly refusedCounter?: Counter;
  private readonly lastWarned = new Map<string, { at: number; suppressed: number }>();
  /** With security: per principal, the classes its streams use and how many streams each. */
  private readonly classesOfPrincipal = new Map<string, Map<string, number>>();
  private sweepScheduled = false;
  private closed = false;
  private readonly work: SlicedWorkQueue;
  /** Parts carry the VHDS forms of their route configurations (ControllerWork.virtualHostDiscovery). */
  private readonly virtualHostDiscovery: boolean;
  /** A config waiting for its turn in the work queue (a newer one replaces it). */
  private queuedConfig: { config: MeshConfig; done?: Promise<GenerationStats> } | undefined;

  constructor(
    private readonly cache: SnapshotCache,
    private readonly logger: Logger,
    private readonly settings: Partial<MeshSettings> = {},
    limits: ClassLimits = {},
    work: ControllerWork = {},
  ) {
    this.work = new SlicedWorkQueue(work.sliceMs);
    this.virtualHostDiscovery = work.virtualHostDiscovery ?? true;
    this.model = buildMeshModel({ resources: [], issues: [] }, settings);
    this.maxClasses = limits.maxClasses ?? DEFAULT_MAX_PROXY_CLASSES;
    this.releaseGraceMs = limits.releaseGraceMs ?? DEFAULT_CLASS_RELEASE_GRACE_MS;
    if (limits.metrics) {
      this.classGauge = new Gauge({ name: "weft_proxy_classes", help: "proxy classes held (each has its own generated configuration)", registers: [limits.metrics] });
      this.refusedCounter = new Counter({ name: "weft_proxy_classes_refused_total", help: "xDS streams refused before any configuration was generated for them", labelNames: ["reason"], registers: [limits.metrics] });
    }
  }

  /** Turns mTLS on: authenticated proxies get certificates over SDS and talk mTLS. */
  enableSecurity(security: ControllerSecurity): void {
    this.security = security;
  }

  /** Logs a warning at most once per WARN_INTERVAL_MS per kind, saying how many were suppressed. */
  private warnRateLimited(kind: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const last = this.lastWarned.get(kind);
    if (last && now - last.at < WARN_INTERVAL_MS) {
      last.suppressed++;
      return;
    }
    this.lastWarned.set(kind, { at: now, suppressed: 0 });
    this.logger.warn({ ...fields, ...(last?.suppressed ? { suppressedSinceLastWarning: last.suppressed } : {}) }, message);
  }

  private refuse(reason: string, code: number, message: string, fields: Record<string, unknown>): Refusal {
    this.refusedCounter?.inc({ reason });
    this.warnRateLimited(reason, fields, message);
    return { refused: { code, message, reason } };
  }

  /**
   * What the proxy is. Without security: its node metadata (trusted; labels bounded). With
   * security: type, capture mode and locality from the node, but namespace, labels and identity
   * from the credential the stream authenticated with (principal) and, for a workload
   * credential, its registered WorkloadEntry; a stream without a valid credential is refused.
   */
  private describe(node: Node, principal: string | undefined): ProxyModel | Refusal {
    const fromNode = proxyFromNode(node);
    if (!this.security) {
      if (Object.keys(fromNode.labels).length > MAX_NODE_LABELS) {
        return this.refuse("invalid", GrpcStatus.INVALID_ARGUMENT, `node ${node.id}: ${Object.keys(fromNode.labels).length} labels in node metadata LABELS; at most ${MAX_NODE_LABELS} are accepted`, { node: node.id });
      }
      return fromNode;
    }
    const { labels: _claimed, ...proxy } = fromNode;
    const credential = principal ? (this.security.credentials.byPrincipalName(principal) ?? this.security.otherPrincipal?.(principal)) : undefined;
    if (!credential) {
      return this.refuse(
        "unauthenticated",
        GrpcStatus.UNAUTHENTICATED,
        principal
          ? `the credential this stream authenticated with was revoked (its WorkloadEntry or pod was deleted or changed); the proxy needs its workload's current token`
          : `no valid credential: with --security every xDS stream must send its workload token or, in Kubernetes, its pod's projected ServiceAccount token ("authorization: Bearer <token>")`,
        { node: node.id },
      );
    }
    const { namespace, serviceAccount } = credential;
    const identity = { namespace, serviceAccount };
    // Standalone credentials carry their labels; a pod's are its labels as the cluster says now.
    if (credential.kind === "standalone" || credential.kind === "pod") return { ...proxy, namespace, labels: { ...(credential.labels ?? {}) }, identity };
    const we = this.model.workloads.find((w) => (w.metadata.namespace ?? "default") === namespace && w.metadata.name === credential.name);
    if (!we || (we.spec.serviceAccount ?? "default") !== serviceAccount) {
      return this.refuse("unauthenticated", GrpcStatus.UNAUTHENTICATED, `the credential of WorkloadEntry ${namespace}/${credential.name} no longer matches a registered workload; the proxy needs its workload's current token`, { node: node.id });
    }
    return { ...proxy, namespace, labels: { ...(we.metadata.labels ?? {}), ...(we.spec.labels ?? {}) }, identity };
  }

  /**
   * Admits a stream: the snapshot key of its proxy class, registering and generating the
   * class on first sight, and a release to call once when the stream ends; or a refusal (no
   * valid credential under security, too many classes, oversized metadata).
   */
  readonly admit = (node: Node, principal: string | undefined): Admission => {
    const proxy = this.describe(node, principal);
    if ("refused" in proxy) return proxy;
    const key = proxyClassKey(proxy);
    if (key.length > MAX_CLASS_KEY_CHARS) {
      return this.refuse("invalid", GrpcStatus.INVALID_ARGUMENT, `node ${node.id}: its description (namespace, labels, locality) is ${key.length} characters; at most ${MAX_CLASS_KEY_CHARS} are accepted`, { node: node.id });
    }
    const ofPrincipal = principal !== undefined && this.security ? this.classesOfPrincipal.get(principal) : undefined;
    if (ofPrincipal && !ofPrincipal.has(key) && ofPrincipal.size >= MAX_CLASSES_PER_CREDENTIAL) {
      return this.refuse(
        "limit",
        GrpcStatus.RESOURCE_EXHAUSTED,
        `the proxies of this credential already use ${MAX_CLASSES_PER_CREDENTIAL} proxy classes (distinct proxy type, capture mode, locality or port); a credential is meant for one workload`,
        { node: node.id, principal },
      );
    }
    let entry = this.classes.get(key);
    if (!entry) {
      if (this.classes.size >= this.maxClasses && !this.evictIdleClass()) {
        return this.refuse(
          "limit",
          GrpcStatus.RESOURCE_EXHAUSTED,
          `proxy class limit reached: ${this.maxClasses} distinct proxy descriptions (namespace, labels, ...) already have a configuration; raise --max-proxy-classes if this is expected`,
          { node: node.id, classes: this.classes.size, limit: this.maxClasses },
        );
      }
      const created: ProxyClass = (entry = { proxy, refs: 0 });
      this.classes.set(key, created);
      this.classGauge?.set(this.classes.size);
      // Sliced: generated in its turn; the stream waits for its snapshot meanwhile.
      void this.work.run(() => this.generateSteps(key, created)).catch((err: Error) => this.logger.error({ key, err: err.message }, "proxy class generation failed"));
    }
    entry.refs++;
    clearTimeout(entry.releaseTimer);
    entry.releaseTimer = undefined;
    entry.idleSince = undefined;
    const tracked = principal !== undefined && this.security ? principal : undefined;
    if (tracked !== undefined) {
      let m = this.classesOfPrincipal.get(tracked);
      if (!m) this.classesOfPrincipal.set(tracked, (m = new Map()));
      m.set(key, (m.get(key) ?? 0) + 1);
    }
    let released = false;
    return {
      key,
      release: () => {
        if (released) return;
        released = true;
        if (tracked !== undefined) this.forgetPrincipalUse(tracked, key);
        this.releaseRef(key);
      },
    };
  };

  /** The snapshot key of a node, generating its class if new (kept for the grace period unless a stream holds it). Throws if refused. */
  readonly nodeKey = (node: Node, principal?: string): string => {
    const admission = this.admit(node, principal);
    if ("refused" in admission) throw new Error(admission.refused.message);
    admission.release?.();
    return admission.key;
  };

  /** Proxy classes held now (in use or within their grace period). */
  get classCount(): number {
    return this.classes.size;
  }

  /** What the controller holds (tests, soak): classes, streams using them, generated parts, interned bodies. */
  holdings(): { classes: number; streams: number; outboundParts: number; localParts: number; internedBodies: number } {
    let streams = 0;
    for (const e of this.classes.values()) streams += e.refs;
    return { classes: this.classes.size, streams, outboundParts: this.outbound.size, localParts: this.locals.size, internedBodies: this.encoder.internedBodies };
  }

  private forgetPrincipalUse(principal: string, key: string): void {
    const m = this.classesOfPrincipal.get(principal);
    const n = m?.get(key);
    if (!m || n === undefined) return;
    if (n > 1) m.set(key, n - 1);
    else m.delete(key);
    if (m.size === 0) this.classesOfPrincipal.delete(principal);
  }

  private releaseRef(key: string): void {
    const entry = this.classes.get(key);
    if (!entry || --entry.refs > 0) return;
    entry.idleSince = Date.now();
    if (this.closed) return;
    entry.releaseTimer = setTimeout(() => this.free(key), this.releaseGraceMs);
    entry.releaseTimer.unref();
  }

  /** At the limit, a class no proxy uses (within its grace period) gives way to a new one. */
  private evictIdleClass(): boolean {
    let oldest: [string, ProxyClass] | undefined;
    for (const e of this.classes) if (e[1].refs === 0 && (!oldest || e[1].idleSince! < oldest[1].idleSince!)) oldest = e;
    if (!oldest) return false;
    this.free(oldest[0]);
    return true;
  }

  /** Forgets a class nobody uses: its snapshot, its local part; unused outbound parts go in the next sweep. */
  private free(key: string): void {
    const entry = this.classes.get(key);
    if (!entry || entry.refs > 0) return;
    clearTimeout(entry.releaseTimer);
    this.classes.delete(key);
    this.cache.delete(key);
    this.locals.delete(key);
    this.classGauge?.set(this.classes.size);
    if (!this.sweepScheduled) {
      this.sweepScheduled = true;
      // Not in the middle of a generation: after the work queued so far.
      setImmediate(() => void this.work.run(() => this.sweepSteps()));
    }
  }

  /** Drops outbound parts no class uses and interned bodies no part holds. */
  private *sweepSteps(): Steps<void> {
    this.sweepScheduled = false;
    const usedOutbound = new Set<string>();
    for (const e of this.classes.values()) if (e.outboundKey !== undefined) usedOutbound.add(e.outboundKey);
    for (const k of [...this.outbound.keys()]) if (!usedOutbound.has(k)) this.outbound.delete(k);
    for (const k of [...this.outboundPieces.keys()]) if (!usedOutbound.has(k)) this.outboundPieces.delete(k);
    const live = new Set<CachedResource>();
    for (const set of [...this.outbound.values(), ...this.locals.values()]) for (const t of SNAPSHOT_VIEWS) for (const r of set.resources(t).resources.values()) live.add(r);
    this.encoder.keepInterned(live);
  }

  /** Stops release timers (the controller is being dropped). */
  close(): void {
    this.closed = true;
    for (const e of this.classes.values()) clearTimeout(e.releaseTimer);
  }

  /**
   * Applies a new mesh config. A change of endpoints only takes the EDS fast path: the shared
   * outbound parts get the new ClusterLoadAssignments of the changed services, and only the
   * classes of those services' namespaces rebuild their local part. Anything else regenerates
   * every known class. Classes whose snapshot comes out identical wake nobody.
   */
  setConfig(config: MeshConfig): GenerationStats {
    this.work.finishNow();
    return runToEnd(this.configSteps(config));
  }

  /**
   * As setConfig, in the controller's work queue: with ControllerWork.sliceMs, in slices that
   * give the event loop back. Resolves once applied. A config given while another waits for
   * its turn replaces it (both calls resolve when the newer one is applied).
   */
  applyConfig(config: MeshConfig): Promise<GenerationStats> {
    const queued = this.queuedConfig;
    if (queued?.done) {
      queued.config = config;
      return queued.done;
    }
    const slot: { config: MeshConfig; done?: Promise<GenerationStats> } = { config };
    this.queuedConfig = slot;
    slot.done = this.work.run(() => {
      if (this.queuedConfig === slot) this.queuedConfig = undefined;
      return this.configSteps(slot.config);
    });
    return slot.done;
  }

  /** Work queued or running (applyConfig, new classes, regenerations). */
  get pendingWork(): number {
    return this.work.pending;
  }

  /** Longest slice of work so far, ms (sliced mode; for tests and benchmarks). */
  get longestSliceMs(): number {
    return this.work.longestSliceMs;
  }

  private *configSteps(config: MeshConfig): Steps<GenerationStats> {
    const start = performance.now();
    const previous = this.model;
    const next = yield* buildMeshModelSteps(config, this.settings);
    yield;
    const change = yield* diffModelsSteps(previous, next);
    yield;
    this.model = next;
    this.memo = new TranslationMemo();
    // Registered workloads hold credentials bound to their identity; deleted ones lose theirs.
    if (this.security) {
      this.security.credentials.reconcile(this.model.workloads.map((we) => ({ namespace: we.metadata.namespace ?? "default", name: we.metadata.name, serviceAccount: we.spec.serviceAccount ?? "default" })));
    }
    let changed = 0;
    let refused = 0;
    this.pieceCounts = { translated: 0, reused: 0 };
    const count = (r: "changed" | "unchanged" | "refused") => {
      if (r === "changed") changed++;
      if (r === "refused") refused++;
    };
    if (change.kind === "endpoints") {
      const updated = new Map<string, ResourceSet>();
      const scope = endpointChangeScope(previous, next, change.services);
      for (const [key, entry] of this.classes) {
        // A rebuilt local part is compared with the previous one (read before it is replaced),
        // so its unchanged types keep their objects and streams see "nothing changed" at once.
        count(
          yield* this.generateSteps(key, entry, {
            // Only where what the local part reads of the changed services differs (a gateway's always).
            reuseLocal: !localPartSeesEndpoints(scope, entry.proxy),
            outboundUpdate: { from: this.outbound, into: updated, services: change.services },
            previous: { outbound: this.outbound, locals: this.locals },
          }),
        );
      }
      this.outbound = updated;
      // Pieces that hold the old endpoints of the changed services are not reused later.
      for (const [key, pieces] of this.outboundPieces) {
        const kept = new Map([...pieces].filter(([pieceKey]) => !change.services.has(pieceKey.slice(pieceKey.indexOf("/") + 1))));
        if (kept.size !== pieces.size) this.outboundPieces.set(key, kept);
      }
    } else if (change.kind === "services") {
      // As a full regeneration, but each outbound part reuses the pieces of the services whose
      // inputs did not change (their objects and encodings). A sidecar's local part (its
      // inbound listener and clusters) is kept unless what it reads changed (localPartMayChange):
      // a route-only change rebuilds no sidecar's local part.
      const previous = { outbound: this.outbound, locals: this.locals };
      const reuse = { pieces: this.outboundPieces, rebuild: (s: { hostname: string }) => change.clusters.has(s.hostname) || change.routes.has(s.hostname) };
      this.outbound = new Map();
      this.outboundPieces = new Map();
      this.encoder.forgetInterned();
      this.locals = new Map();
      for (const [key, entry] of this.classes) {
        count(yield* this.generateSteps(key, entry, { previous, reuse, reuseLocal: !localPartMayChange(this.model, entry.proxy, change) }));
      }
    } else if (change.kind === "full") {
      // New parts are compared with the previous ones, so unchanged types keep their objects
      // and changed ones say which names changed (streams then look at those only).
      const previous = { outbound: this.outbound, locals: this.locals };
      this.outbound = new Map();
      this.outboundPieces = new Map();
      this.encoder.forgetInterned();
      this.locals = new Map();
      for (const [key, entry] of this.classes) count(yield* this.generateSteps(key, entry, { previous }));
    }
    if (this.security && change.kind !== "none") this.endStaleStreams();
    const stats: GenerationStats = {
      classes: this.classes.size,
      path: change.kind,
      changed,
      refused,
      ...(change.kind === "services" || change.kind === "full" ? { translatedServices: this.pieceCounts.translated, reusedServices: this.pieceCounts.reused } : {}),
      millis: Math.round((performance.now() - start) * 10) / 10,
    };
    this.logger.info(stats, "mesh config applied");
    return stats;
  }

  /** Principals whose streams sit in a class their (changed) WorkloadEntry no longer describes. */
  private endStaleStreams(): void {
    const sec = this.security;
    if (!sec?.endStreamsOf) return;
    for (const [principal, keys] of [...this.classesOfPrincipal]) {
      const credential = sec.credentials.byPrincipalName(principal);
      if (!credential || credential.kind !== "workload") continue; // revoked ones are ended by the store
      const we = this.model.workloads.find((w) => (w.metadata.namespace ?? "default") === credential.namespace && w.metadata.name === credential.name);
      if (!we) continue;
      const labels = { ...(we.metadata.labels ?? {}), ...(we.spec.labels ?? {}) };
      const stale = [...keys.keys()].some((key) => {
        const p = this.classes.get(key)?.proxy;
        return p !== undefined && !sameLabels(p.labels, labels);
      });
      if (stale) {
        this.logger.info({ workload: `${credential.namespace}/${credential.name}` }, "workload labels changed: its proxies reconnect into their new proxy class");
        sec.endStreamsOf(principal, `WorkloadEntry ${credential.namespace}/${credential.name} changed its labels; reconnect`);
      }
    }
  }

  get currentModel(): MeshModel {
    return this.model;
  }

  /** The certificate served to a proxy class (for sync status). */
  certificateOf(key: string): { identity: string; serial: string; notAfter: string } | undefined {
    const id = this.classes.get(key)?.proxy.identity;
    const cert = id ? this.security?.certificates.get(id) : undefined;
    return cert ? { identity: cert.identity, serial: cert.serial, notAfter: cert.notAfter.toISOString() } : undefined;
  }

  /** Regenerates every proxy class (e.g. the trust bundle changed); resolves when done. */
  regenerateAll(): Promise<void> {
    return this.regenerate(() => true);
  }

  /** Regenerates the classes of one identity (its certificate was renewed); resolves when done. */
  regenerateIdentity(idKey: string): Promise<void> {
    return this.regenerate((entry) => entry.proxy.identity !== undefined && identityKey(entry.proxy.identity) === idKey);
  }

  private regenerate(which: (entry: ProxyClass) => boolean): Promise<void> {
    const classes = this;
    return this.work
      .run(function* () {
        for (const [key, entry] of classes.classes) if (which(entry)) yield* classes.generateSteps(key, entry);
      })
      .catch((err: Error) => this.logger.error({ err: err.message }, "regeneration failed"));
  }

  private securityFor(proxy: ProxyModel): MeshSecurity | undefined | "pending" {
    const sec = this.security;
    if (!sec) return undefined;
    if (!proxy.identity) return { trustDomain: sec.trustDomain };
    const cert = sec.certificates.get(proxy.identity);
    if (!cert) {
      const id = proxy.identity;
      void sec.certificates.ensure(id).then(() => this.regenerateIdentity(identityKey(id)), () => undefined);
      return "pending";
    }
    return { trustDomain: sec.trustDomain, secrets: { certChainPem: cert.certChainPem, privateKeyPem: cert.privateKeyPem, trustBundlePem: sec.trustBundlePem() } };
  }

  /**
   * Builds a class's snapshot from the shared part, its outbound part (generated once per
   * outbound key and model) and its local part. `reuseLocal` keeps the local part of the
   * previous model; `outboundUpdate` (EDS fast path) derives the outbound part from the
   * previous model's by replacing the endpoints of the changed services; `reuse` (the
   * "services" path) builds it from the previous model's pieces where `rebuild` allows.
   */
  private *generateSteps(
    key: string,
    entry: ProxyClass,
    opts: {
      reuseLocal?: boolean;
      outboundUpdate?: { from: ReadonlyMap<string, ResourceSet>; into: Map<string, ResourceSet>; services: ReadonlySet<string> };
      previous?: { outbound: ReadonlyMap<string, ResourceSet>; locals: ReadonlyMap<string, ResourceSet> };
      reuse?: { pieces: ReadonlyMap<string, ReadonlyMap<string, OutboundServicePiece>>; rebuild: OutboundReuse["rebuild"] };
    } = {},
  ): Steps<"changed" | "unchanged" | "refused"> {
    const proxy = entry.proxy;
    // Freed while waiting for its turn (sliced work), or the controller is being dropped.
    if (this.classes.get(key) !== entry || this.closed) return "unchanged";
    try {
      const security = this.securityFor(proxy);
      if (security === "pending") return "unchanged"; // generated once its certificate is issued
      const plan = planProxy(this.model, proxy, security, this.memo);
      let local = opts.reuseLocal ? (opts.previous?.locals ?? this.locals).get(key) : undefined;
      if (!local) local = ResourceSet.build(plan.local(), { encoder: this.encoder, previous: opts.previous?.locals.get(key), virtualHostDiscovery: this.virtualHostDiscovery });
      this.locals.set(key, local);
      yield;
      const parts = [this.shared, local];
      entry.outboundKey = plan.outboundKey;
      if (plan.outboundKey !== undefined) {
        const memo = opts.outboundUpdate?.into ?? this.outbound;
        let outbound = memo.get(plan.outboundKey);
        if (!outbound) {
          const before = opts.outboundUpdate?.from.get(plan.outboundKey);
          if (before) outbound = before.replacing(XDS_TYPES.endpoint, outboundEndpoints(this.model, proxy, security, opts.outboundUpdate!.services, this.memo), this.encoder);
          else {
            const earlier = opts.reuse?.pieces.get(plan.outboundKey);
            const part = yield* plan.outboundSteps(earlier ? { previous: earlier, rebuild: opts.reuse!.rebuild } : undefined);
            this.pieceCounts.reused += part.reused;
            this.pieceCounts.translated += part.pieces.size - part.reused;
            outbound = yield* ResourceSet.buildSteps(part.input, { encoder: this.encoder, previous: opts.previous?.outbound.get(plan.outboundKey), virtualHostDiscovery: this.virtualHostDiscovery });
            this.outboundPieces.set(plan.outboundKey, part.pieces);
          }
          memo.set(plan.outboundKey, outbound);
        }
        parts.push(outbound);
      }
      // Freed while this was being generated: nothing to install.
      if (this.classes.get(key) !== entry) {
        this.locals.delete(key);
        return "unchanged";
      }
      yield;
      const snapshot = Snapshot.compose(parts, this.cache.get(key));
      yield;
      return this.cache.set(key, snapshot) ? "changed" : "unchanged";
    } catch (err) {
      if (err instanceof InconsistentSnapshotError) return "refused";
      this.logger.error({ key, err: (err as Error).message }, "translation failed; the proxy class keeps its last good snapshot");
      return "refused";
    }
  }
}
