// The gRPC xDS server: ADS (SotW + delta) and the per-type LDS/RDS/CDS/EDS/SDS services
// (Stream*, Delta*, Fetch*). It knows the snapshot watch interface and nothing of Istio.
import {
  Server,
  ServerCredentials,
  experimental,
  status as GrpcStatus,
  type MethodDefinition,
  type ServerDuplexStream,
  type Metadata,
  type ServerUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
  type sendUnaryData,
} from "@grpc/grpc-js";
import http2 from "node:http2";
import { AggregatedDiscoveryServiceService } from "../../generated/envoy/service/discovery/v3/ads.js";
import { ClientStatusDiscoveryServiceService } from "../../generated/envoy/service/status/v3/csds.js";
import { csdsHandlers } from "./csds-service.js";
import { ServingCertificateProvider } from "./serving-certificate-provider.js";
import { receiveSotwRequest, sotwRequestOf, type EncodedSotwRequest, type SotwRequest } from "./sotw/request-names.js";
import { PushBudget } from "./push-budget.js";
import { truncateText } from "../log/bounded-text.js";
import { ClusterDiscoveryServiceService } from "../../generated/envoy/service/cluster/v3/cds.js";
import { EndpointDiscoveryServiceService } from "../../generated/envoy/service/endpoint/v3/eds.js";
import { ListenerDiscoveryServiceService } from "../../generated/envoy/service/listener/v3/lds.js";
import { RouteDiscoveryServiceService } from "../../generated/envoy/service/route/v3/rds.js";
import { SecretDiscoveryServiceService } from "../../generated/envoy/service/secret/v3/sds.js";
import type { DeltaDiscoveryRequest, DiscoveryRequest } from "../../generated/envoy/service/discovery/v3/discovery.js";
import type { Node } from "../../generated/envoy/config/core/v3/base.js";
import type { SnapshotSource } from "../cache/snapshot-cache.js";
import { XDS_TYPES, isWildcardByDefault, type XdsTypeUrl } from "../envoy/type-urls.js";
import type { Logger } from "../log/logger.js";
import { DeltaStream } from "./delta/delta-stream.js";
import { ProxyRegistry } from "./proxy-registry.js";
import { SotwStream } from "./sotw/sotw-stream.js";
import { encodeResponse } from "./sotw/response-encoding.js";
import { SharedFrames } from "./shared-frames.js";
import { SharedNameSets } from "./shared-names.js";
import { installChunkedReceive, installPreframing } from "./grpc-framing.js";
import type { AdmitStream, ResponseSink, StreamContext } from "./stream-base.js";
import type { XdsMetrics } from "./xds-metrics.js";
import { xdsLimits, type XdsLimits } from "./xds-limits.js";

export interface XdsServerOptions {
  source: SnapshotSource;
  metrics: XdsMetrics;
  logger: Logger;
  registry?: ProxyRegistry;
  nodeKey?: (node: Node, principal: string | undefined) => string;
  /** Admission of each stream (takes precedence over nodeKey): its key and release, or a refusal. */
  admit?: AdmitStream;
  controlPlaneId?: string;
  /**
   * Who a stream's caller is, from its gRPC metadata (e.g. a bearer token); undefined =
   * anonymous. May answer later (a promise, e.g. a TokenReview): the stream's first requests
   * wait (at most PENDING_REQUESTS_MAX of them) and are handled once it is known; a rejection
   * ends the stream with UNAVAILABLE and the rejection's message.
   */
  authenticate?: (metadata: Metadata) => string | undefined | Promise<string | undefined>;
  /** Serve over TLS with this certificate (PEM); clients verify it against the mesh root. */
  tls?: { certChainPem: string; privateKeyPem: string };
  /** Response bytes in flight (sent, not yet ACKed or NACKed) across all streams. Default 256 MiB. */
  maxInflightBytes?: number;
  /** Bounds on what clients may send and make the server keep (see xds-limits.ts); defaults otherwise. */
  limits?: Partial<XdsLimits>;
  /**
   * Frame shared responses for gRPC once instead of once per stream (grpc-framing.ts). Default:
   * on, unless WEFT_GRPC_PREFRAMING=0 or the installed grpc-js lacks the hook.
   */
  preframing?: boolean;
  /**
   * Hand large SotW requests to their stream in the chunks they arrived in, not copied into one
   * Buffer by grpc-js (grpc-framing.ts, ChunkedMessage). Default: on, unless
   * WEFT_GRPC_CHUNKED_RECEIVE=0 or the installed grpc-js lacks what the patch uses.
   */
  chunkedReceive?: boolean;
  /**
   * SotW EDS: send a newer response while the previous one is unanswered, once the client has
   * read it (see StreamContext.supersedeEndpoints). Default: on, unless WEFT_SOTW_EDS_SUPERSEDE=0.
   */
  supersedeEndpoints?: boolean;
}

type AnyStream = SotwStream | DeltaStream;

/** Requests a stream may send while its authentication is pending (Envoy sends one per type). */
export const PENDING_REQUESTS_MAX = 16;

/** After a status was sent, the client has this long to close its side before a reset. */
const RESET_GRACE_MS = 2_000;

/** The HTTP/2 stream under a grpc-js server call (grpc-js 1.14.x internals; see resetStream). */
interface UnderlyingCall {
  call?: { stream?: { closed?: boolean; destroyed?: boolean; close?: (code: number) => void } };
}

/**
 * Resets the HTTP/2 stream of a call (RST_STREAM CANCEL). grpc-js has no public way to do so;
 * this reaches its server call's `stream` (present in the pinned 1.14.x, feature-detected:
 * without it the stream stays until the connection ends). Tested in stalled-streams.test.ts.
 */
function resetStream(call: ServerDuplexStream<unknown, Buffer>): void {
  const h2 = (call as unknown as UnderlyingCall).call?.stream;
  if (h2 && !h2.closed && !h2.destroyed && typeof h2.close === "function") h2.close(http2.constants.NGHTTP2_CANCEL);
}

export const DEFAULT_MAX_INFLIGHT_BYTES = 256 * 1024 * 1024;

/** Copies a generated service definition, sending responses as bytes we encoded ourselves. */
interface GeneratedMethod {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize: (value: never) => Buffer;
  requestDeserialize: (bytes: Buffer) => unknown;
}
type GeneratedService = Record<string, GeneratedMethod>;

/** The SotW deserializer for a server that does not take chunked requests (unmarked: Buffers only). */
const receiveSotwBuffer = (bytes: Buffer) => receiveSotwRequest(bytes);

function withRawResponses(def: GeneratedService, chunkedReceive: boolean): ServiceDefinition {
  const out: Record<string, MethodDefinition<unknown, Buffer>> = {};
  for (const [name, m] of Object.entries(def)) {
    out[name] = {
      path: m.path,
      requestStream: m.requestStream,
      responseStream: m.responseStream,
      requestSerialize: m.requestSerialize as (value: unknown) => Buffer,
      // SotW requests (Stream*/Fetch*): large ones are decoded by their stream (see request-names.ts).
      requestDeserialize: m.path.includes("/Delta") ? m.requestDeserialize : chunkedReceive ? receiveSotwRequest : receiveSotwBuffer,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    };
  }
  return out as ServiceDefinition;
}

const PER_TYPE_SERVICES: { def: GeneratedService; typeUrl: XdsTypeUrl; suffix: string }[] = [
  { def: ListenerDiscoveryServiceService, typeUrl: XDS_TYPES.listener, suffix: "Listeners" },
  { def: RouteDiscoveryServiceService, typeUrl: XDS_TYPES.route, suffix: "Routes" },
  { def: ClusterDiscoveryServiceService, typeUrl: XDS_TYPES.cluster, suffix: "Clusters" },
  { def: EndpointDiscoveryServiceService, typeUrl: XDS_TYPES.endpoint, suffix: "Endpoints" },
  { def: SecretDiscoveryServiceService, typeUrl: XDS_TYPES.secret, suffix: "Secrets" },
];

export class XdsServer {
  readonly registry: ProxyRegistry;
  private readonly grpc: Server;
  private readonly ctx: StreamContext;
  private readonly streams = new Set<AnyStream>();
  private readonly serving = new ServingCertificateProvider();
  private readonly calls = new Set<ServerDuplexStream<unknown, Buffer>>();
  private boundPort?: number;
  /** Whether shared responses go to grpc-js framed already (see grpc-framing.ts). */
  readonly preframing: boolean;
  /** Whether large SotW requests reach their streams as received chunks (see grpc-framing.ts). */
  readonly chunkedReceive: boolean;

  constructor(private readonly opts: XdsServerOptions) {
    const limits = xdsLimits(opts.limits);
    this.registry = opts.registry ?? new ProxyRegistry(limits);
    this.preframing = (opts.preframing ?? true) && installPreframing();
    this.chunkedReceive = (opts.chunkedReceive ?? true) && installChunkedReceive();
    this.ctx = {
      limits,
      source: opts.source,
      admit: opts.admit ?? ((node, principal) => ({ key: opts.nodeKey ? opts.nodeKey(node, principal) : (node.id ?? "") })),
      registry: this.registry,
      metrics: opts.metrics,
      logger: opts.logger.child({ component: "xds" }),
      controlPlaneId: opts.controlPlaneId ?? "weft",
      budget: new PushBudget(opts.maxInflightBytes ?? DEFAULT_MAX_INFLIGHT_BYTES, limits.budgetHoldMs, (inflight, overdue) => {
        opts.metrics.inflightBytes.set(inflight);
        opts.metrics.overdueBytes.set(overdue);
      }, limits.budgetUnreadHoldMs),
      // Owned by this server, dropped with it (DESIGN.md rule 8).
      frames: new SharedFrames({ preframe: this.preframing }),
      names: new SharedNameSets(),
      supersedeEndpoints: opts.supersedeEndpoints ?? process.env.WEFT_SOTW_EDS_SUPERSEDE !== "0",
    };
    this.grpc = new Server({
      "grpc.keepalive_time_ms": 30_000,
      "grpc.keepalive_timeout_ms": 10_000,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.http2.min_ping_interval_without_data_ms": 5_000,
      // Envoy's requests are small (~230 KB for 3300 EDS names); a larger message is refused by
      // grpc-js with RESOURCE_EXHAUSTED before it is decoded.
      "grpc.max_receive_message_length": limits.maxRequestBytes,
    });
    const ads: UntypedServiceImplementation = {
      streamAggregatedResources: (call: ServerDuplexStream<SotwRequest | EncodedSotwRequest, Buffer>) => this.serveSotw(call, "ads"),
      deltaAggregatedResources: (call: ServerDuplexStream<DeltaDiscoveryRequest, Buffer>) => this.serveDelta(call, "ads"),
    };
    this.grpc.addService(withRawResponses(AggregatedDiscoveryServiceService, this.chunkedReceive), ads);
    for (const { def, typeUrl, suffix } of PER_TYPE_SERVICES) {
      this.grpc.addService(withRawResponses(def, this.chunkedReceive), {
        [`stream${suffix}`]: (call: ServerDuplexStream<SotwRequest | EncodedSotwRequest, Buffer>) => this.serveSotw(call, typeUrl),
        [`delta${suffix}`]: (call: ServerDuplexStream<DeltaDiscoveryRequest, Buffer>) => this.serveDelta(call, typeUrl),
        [`fetch${suffix}`]: (call: ServerUnaryCall<SotwRequest | EncodedSotwRequest, Buffer>, cb: sendUnaryData<Buffer>) => void this.fetch(call, cb, typeUrl),
      });
    }
    // CSDS: every proxy's configuration and status for standard tools; not on a TLS port every workload reaches.
    this.grpc.addService(
      ClientStatusDiscoveryServiceService,
      csdsHandlers({
        registry: this.registry,
        source: opts.source,
        ...(opts.tls ? { refuse: "CSDS is off on a secured xDS port (any workload can reach it, and it shows every proxy's configuration); use the admin API: weft proxy-config, weft config-dump, /debug/config_dump" } : {}),
      }),
    );
  }

  /** Binds and starts serving; returns the bound port (useful with port 0). */
  async listen(host: string, port: number): Promise<number> {
    const bound = await new Promise<number>((resolve, reject) =>
      this.grpc.bindAsync(`${host.includes(":") ? `[${host}]` : host}:${port}`, this.credentials(), (err, p) =>
        err ? reject(new Error(`xDS server cannot listen on ${host}:${port}: ${err.message}`)) : resolve(p),
      ),
    );
    this.boundPort = bound;
    this.ctx.logger.info({ host, port: bound }, "xDS server listening");
    return bound;
  }

  private credentials(): ServerCredentials {
    const tls = this.opts.tls;
    if (!tls) return ServerCredentials.createInsecure();
    this.serving.set(tls);
    // grpc-js's public (experimental) certificate-provider credentials: a new pair is served to
    // new connections at once (setSecureContext), open streams carry on. The first argument is
    // the identity provider (grpc-js 1.14's declaration names it the other way round).
    return experimental.createCertificateProviderServerCredentials(this.serving, null, false);
  }

  /** Serves a new certificate (renewal, root rotation) to connections made from now on. */
  setServingCertificate(tls: { certChainPem: string; privateKeyPem: string }): void {
    if (!this.opts.tls) throw new Error("setServingCertificate: this xDS server was started without TLS");
    this.serving.set(tls);
  }

  get port(): number | undefined {
    return this.boundPort;
  }

  get streamCount(): number {
    return this.streams.size;
  }

  private sinkFor(call: ServerDuplexStream<unknown, Buffer>): ResponseSink {
    return {
      // A PreframedMessage goes out as it is (grpc-framing.ts), piece after piece; the identity
      // serializer never sees it.
      write: (frame, onWritten) => {
        const done = onWritten ? () => onWritten() : undefined;
        if (!frame.preframed) return call.write(frame.bytes, done);
        const pieces = frame.preframed.pieces;
        for (let i = 0; i < pieces.length - 1; i++) call.write(pieces[i] as unknown as Buffer);
        return call.write(pieces[pieces.length - 1] as unknown as Buffer, done);
      },
      onDrain: (listener) => call.on("drain", listener),
      end: () => call.end(),
      fail: (code, message) => {
        // grpc-js ends a server stream with a status when the call emits an error carrying a
        // code, but only after every queued message went out: to a client that stopped
        // reading, never. Such a stream is reset, which frees what is queued for it.
        call.emit("error", Object.assign(new Error(message), { code, details: message }));
        if (call.writableLength > 0) resetStream(call);
        else setTimeout(() => resetStream(call), RESET_GRACE_MS).unref();
      },
    };
  }

  private track<S extends AnyStream, Req>(call: ServerDuplexStream<Req, Buffer>, stream: S, onData: (msg: Req) => void): void {
    this.streams.add(stream);
    this.calls.add(call as ServerDuplexStream<unknown, Buffer>);
    const done = () => {
      stream.close();
      this.streams.delete(stream);
      this.calls.delete(call as ServerDuplexStream<unknown, Buffer>);
    };
    call.on("data", onData);
    call.on("end", () => {
      done();
      call.end();
    });
    call.on("cancelled", done);
    call.on("close", done);
    call.on("error", (err: Error) => {
      this.ctx.logger.debug({ err: err.message, stream: stream.streamId }, "xDS stream error");
      done();
    });
  }

  private serveSotw(call: ServerDuplexStream<SotwRequest | EncodedSotwRequest, Buffer>, service: "ads" | XdsTypeUrl): void {
    this.authenticated(call, (principal) => {
      const stream = new SotwStream(this.ctx, this.sinkFor(call as ServerDuplexStream<unknown, Buffer>), "sotw", service, call.getPeer(), principal);
      return { stream, onRequest: (req: SotwRequest | EncodedSotwRequest) => stream.onRequest(req) };
    });
  }

  private serveDelta(call: ServerDuplexStream<DeltaDiscoveryRequest, Buffer>, service: "ads" | XdsTypeUrl): void {
    this.authenticated(call, (principal) => {
      const stream = new DeltaStream(this.ctx, this.sinkFor(call as ServerDuplexStream<unknown, Buffer>), "delta", service, call.getPeer(), principal);
      return { stream, onRequest: (req: DeltaDiscoveryRequest) => stream.onRequest(req) };
    });
  }

  /**
   * Authenticates a call, then serves it with the stream `open` makes. While a (promised)
   * authentication is pending, requests wait in a bounded queue; a call that ends meanwhile is
   * never served.
   */
  private authenticated<Req>(call: ServerDuplexStream<Req, Buffer>, open: (principal: string | undefined) => { stream: AnyStream; onRequest: (req: Req) => void }): void {
    const principal = this.opts.authenticate?.(call.metadata);
    if (!(principal instanceof Promise)) {
      const { stream, onRequest } = open(principal);
      this.track(call, stream, onRequest);
      return;
    }
    const queued: Req[] = [];
    let gone = false;
    const raw = call as ServerDuplexStream<unknown, Buffer>;
    const fail = (code: number, message: string) => {
      if (gone) return;
      gone = true;
      this.calls.delete(raw);
      this.sinkFor(raw).fail(code, message);
    };
    const onData = (req: Req) => {
      if (queued.length >= PENDING_REQUESTS_MAX) fail(GrpcStatus.RESOURCE_EXHAUSTED, `more than ${PENDING_REQUESTS_MAX} requests before the stream's credential was checked`);
      else queued.push(req);
    };
    const onGone = () => {
      gone = true;
      this.calls.delete(raw);
    };
    this.calls.add(raw);
    call.on("data", onData);
    for (const event of ["end", "cancelled", "close", "error"]) call.once(event, onGone);
    principal.then(
      (who) => {
        call.off("data", onData);
        for (const event of ["end", "cancelled", "close", "error"]) call.off(event, onGone);
        if (gone) return;
        this.calls.delete(raw);
        const { stream, onRequest } = open(who);
        this.track(call, stream, onRequest);
        for (const req of queued.splice(0)) onRequest(req);
      },
      (err: unknown) => fail(GrpcStatus.UNAVAILABLE, `cannot check the stream's credential now (${(err as Error).message}); retry`),
    );
  }

  /** Unary Fetch*: the current resources for the node, without stream state. */
  private async fetch(call: ServerUnaryCall<SotwRequest | EncodedSotwRequest, Buffer>, cb: sendUnaryData<Buffer>, typeUrl: XdsTypeUrl): Promise<void> {
    let request: SotwRequest;
    try {
      request = sotwRequestOf(call.request);
    } catch (err) {
      return cb({ code: GrpcStatus.INVALID_ARGUMENT, details: `the request is not a valid DiscoveryRequest: ${truncateText((err as Error).message, 200)}` });
    }
    const node = request.node;
    if (!node?.id) return cb({ code: GrpcStatus.INVALID_ARGUMENT, details: "node.id is required" });
    let principal: string | undefined;
    try {
      principal = await this.opts.authenticate?.(call.metadata);
    } catch (err) {
      return cb({ code: GrpcStatus.UNAVAILABLE, details: `cannot check the credential now (${(err as Error).message}); retry` });
    }
    const admission = this.ctx.admit(node, principal);
    if ("refused" in admission) return cb({ code: admission.refused.code, details: admission.refused.message });
    const snapshot = this.ctx.source.get(admission.key);
    admission.release?.();
    if (!snapshot) return cb({ code: GrpcStatus.UNAVAILABLE, details: `no configuration for node ${node.id} yet` });
    const typed = snapshot.served(typeUrl, false);
    const names = request.rawNames?.decode() ?? request.resourceNames ?? [];
    const wildcard = names.length === 0 ? isWildcardByDefault(typeUrl) : names.includes("*");
    const resources = wildcard ? [...typed.resources.values()] : names.flatMap((n) => typed.resources.get(n) ?? []);
    cb(null, encodeResponse(typeUrl, typed.version, "", resources, this.ctx.controlPlaneId));
  }

  /** Ends every stream that authenticated as `principal` with a gRPC status (e.g. its credential was revoked); returns how many. */
  terminateStreamsOf(principal: string, code: number, message: string): number {
    let n = 0;
    for (const s of [...this.streams]) {
      if (s.authenticatedAs !== principal) continue;
      s.terminate(code, message);
      this.streams.delete(s);
      n++;
    }
    return n;
  }

  /** Ends every stream cleanly (proxies reconnect elsewhere or later) and stops the server. */
  async close(graceMs = 5_000): Promise<void> {
    for (const call of this.calls) {
      try {
        call.end();
      } catch {
        /* already closed */
      }
    }
    for (const s of this.streams) s.close();
    this.streams.clear();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.grpc.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      this.grpc.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.calls.clear();
  }
}
