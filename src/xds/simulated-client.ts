// A simulated xDS client that behaves like Envoy on one ADS stream (SotW or delta):
// wildcard CDS and LDS, then the EDS names its clusters use and the RDS names its listeners
// use; ACKs every response, NACKs on command; reconnects with the versions it holds.
// Used by unit tests and, many at a time, by bench/.
import _m0 from "protobufjs/minimal.js";
import { EventEmitter } from "node:events";
import { Metadata, credentials, type ClientDuplexStream } from "@grpc/grpc-js";
import { Cluster, Cluster_DiscoveryType } from "../../generated/envoy/config/cluster/v3/cluster.js";
import { Listener } from "../../generated/envoy/config/listener/v3/listener.js";
import { AggregatedDiscoveryServiceClient } from "../../generated/envoy/service/discovery/v3/ads.js";
import type {
  DeltaDiscoveryRequest,
  DeltaDiscoveryResponse,
  DiscoveryRequest,
  DiscoveryResponse,
} from "../../generated/envoy/service/discovery/v3/discovery.js";
import { unpackAny } from "../envoy/any.js";
import { EXTENSION_TYPES, XDS_CODECS, XDS_TYPES, isXdsTypeUrl, resourceName, type XdsResourceTypes, type XdsTypeUrl } from "../envoy/type-urls.js";

export interface HeldResource {
  version: string;
  /** The serialized resource. */
  body: Buffer;
  /** Size of the serialized resource in bytes. */
  size: number;
  /** EDS names a cluster uses, RDS names a listener uses (taken when it arrives). */
  refs?: string[];
}

export interface ReceivedResponse {
  typeUrl: string;
  nonce: string;
  version: string;
  names: string[];
  removed: string[];
  acked: boolean;
  at: bigint;
}

export interface SimulatedClientOptions {
  target: string;
  nodeId: string;
  cluster?: string;
  mode: "sotw" | "delta";
  /** Node metadata (a protobuf Struct): strings, or objects such as Istio's LABELS map. */
  metadata?: Record<string, unknown>;
  /** Sent as "authorization: Bearer <token>" on every stream, as Envoy's initial_metadata does. */
  token?: string;
  /** Connect over TLS, verifying the server against this CA bundle (PEM) and name. */
  tls?: { caPem: string; serverName: string };
  /** Append every response to `responses` (default true; off for long runs of many clients). */
  keepResponses?: boolean;
}

type Rejecter = (typeUrl: string, names: string[]) => string | undefined;

/** Envoy-like client. Events: "response" (ReceivedResponse), "error" (Error), "close". */
export class SimulatedClient extends EventEmitter {
  /** Resources the client accepted, per type. */
  readonly held = new Map<string, Map<string, HeldResource>>();
  /** Last ACKed version_info per type (SotW) or system_version_info (delta). */
  readonly acceptedVersion = new Map<string, string>();
  readonly responses: ReceivedResponse[] = [];
  /** Requests written on the stream(s): subscriptions, ACKs and NACKs. */
  requestsSent = 0;
  private client?: AggregatedDiscoveryServiceClient;
  private sotw?: ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  private delta?: ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
  private readonly lastNonce = new Map<string, string>();
  private readonly subscribed = new Map<string, Set<string>>();
  private rejecter?: Rejecter;
  private firstMessage = true;
  /** Delta: the VirtualHost (VHDS) subscription is open on this stream. */
  private vhdsOpen = false;

  constructor(readonly opts: SimulatedClientOptions) {
    super();
  }

  /** Makes the client NACK responses for which `fn` returns an error message. */
  rejectWhen(fn: Rejecter | undefined): void {
    this.rejecter = fn;
  }

  start(): void {
    const tls = this.opts.tls;
    this.client ??= new AggregatedDiscoveryServiceClient(this.opts.target, tls ? credentials.createSsl(Buffer.from(tls.caPem)) : credentials.createInsecure(), {
      "grpc.keepalive_time_ms": 60_000,
      ...(tls ? { "grpc.ssl_target_name_override": tls.serverName, "grpc.default_authority": tls.serverName } : {}),
    });
    const md = new Metadata();
    if (this.opts.token) md.set("authorization", `Bearer ${this.opts.token}`);
    this.firstMessage = true;
    this.vhdsOpen = false;
    this.lastNonce.clear();
    if (this.opts.mode === "sotw") {
      const stream = this.client.streamAggregatedResources(md);
      this.sotw = stream;
      stream.on("data", (r: DiscoveryResponse) => this.onSotw(r));
      stream.on("error", (e: Error) => this.emit("stream-error", e));
      stream.on("end", () => this.emit("close"));
      this.requestSotw(XDS_TYPES.cluster, []);
      this.requestSotw(XDS_TYPES.listener, []);
      // Like Envoy on reconnect: re-request named subscriptions with the version held.
      for (const typeUrl of [XDS_TYPES.endpoint, XDS_TYPES.route]) {
        const names = this.subscribed.get(typeUrl);
        if (names && names.size > 0) this.requestSotw(typeUrl, [...names]);
      }
    } else {
      const stream = this.client.deltaAggregatedResources(md);
      this.delta = stream;
      stream.on("data", (r: DeltaDiscoveryResponse) => this.onDelta(r));
      stream.on("error", (e: Error) => this.emit("stream-error", e));
      stream.on("end", () => this.emit("close"));
      for (const typeUrl of [XDS_TYPES.cluster, XDS_TYPES.listener]) {
        const held = this.held.get(typeUrl);
        this.writeDelta({
          ...this.nodePart(),
          typeUrl,
          resourceNamesSubscribe: [],
          initialResourceVersions: held ? Object.fromEntries([...held].map(([n, r]) => [n, r.version])) : {},
        });
      }
      // Like Envoy: virtual hosts held from a previous stream are claimed again (VHDS).
      const vhosts = this.held.get(XDS_TYPES.virtualHost);
      if (vhosts && vhosts.size > 0) this.openVhds();
      // Re-subscribe named types held from a previous stream.
      for (const typeUrl of [XDS_TYPES.endpoint, XDS_TYPES.route]) {
        const names = this.subscribed.get(typeUrl);
        if (names && names.size > 0) {
          const held = this.held.get(typeUrl);
          this.writeDelta({
            typeUrl,
            resourceNamesSubscribe: [...names],
            initialResourceVersions: held ? Object.fromEntries([...held].map(([n, r]) => [n, r.version])) : {},
          });
        }
      }
    }
  }

  private openVhds(): void {
    this.vhdsOpen = true;
    const held = this.held.get(XDS_TYPES.virtualHost);
    this.writeDelta({ typeUrl: XDS_TYPES.virtualHost, resourceNamesSubscribe: [], initialResourceVersions: held ? Object.fromEntries([...held].map(([n, r]) => [n, r.version])) : {} });
  }

  private nodePart(): { node?: DiscoveryRequest["node"] } {
    if (!this.firstMessage) return {};
    this.firstMessage = false;
    return {
      node: {
        id: this.opts.nodeId,
        cluster: this.opts.cluster ?? "sim",
        metadata: this.opts.metadata ?? {},
        userAgentName: "weft-simulated-client",
      },
    };
  }

  private requestSotw(typeUrl: XdsTypeUrl, names: string[], errorMessage?: string): void {
    if (this.sotw) this.requestsSent++;
    this.sotw?.write({
      ...this.nodePart(),
      typeUrl,
      resourceNames: names,
      versionInfo: this.acceptedVersion.get(typeUrl) ?? "",
      responseNonce: this.lastNonce.get(typeUrl) ?? "",
      errorDetail: errorMessage ? { code: 13, message: errorMessage } : undefined,
    });
  }

  private writeDelta(req: DeltaDiscoveryRequest): void {
    if (!this.delta) return;
    this.requestsSent++;
    this.delta.write(req);
  }

  /** What the client keeps of a resource it accepted (its bytes, size, references), by name. */
  private holding(typeUrl: string, knownName: string | undefined, version: string, bytes: Uint8Array): [string, HeldResource] {
    const { name, decoded } = knownName === undefined ? decodeNamed(typeUrl, bytes) : { name: knownName, decoded: undefined };
    return [name, { version, body: Buffer.from(bytes), size: bytes.length, refs: referencesOf(typeUrl, bytes, decoded) }];
  }

  private record(typeUrl: string, nonce: string, version: string, names: string[], removed: string[], acked: boolean): void {
    const r: ReceivedResponse = { typeUrl, nonce, version, names, removed, acked, at: process.hrtime.bigint() };
    if (this.opts.keepResponses !== false) this.responses.push(r);
    this.emit("response", r);
  }

  private onSotw(res: DiscoveryResponse): void {
    const typeUrl = res.typeUrl ?? "";
    const nonce = res.nonce ?? "";
    this.lastNonce.set(typeUrl, nonce);
    const incoming = new Map<string, HeldResource>();
    for (const any of res.resources ?? []) {
      const bytes = any.value ?? new Uint8Array();
      const [name, held] = this.holding(typeUrl, undefined, res.versionInfo ?? "", bytes);
      incoming.set(name, held);
    }
    const error = this.rejecter?.(typeUrl, [...incoming.keys()]);
    const names = [...incoming.keys()];
    if (error) {
      this.record(typeUrl, nonce, res.versionInfo ?? "", names, [], false);
      this.requestSotw(typeUrl as XdsTypeUrl, [...(this.subscribed.get(typeUrl) ?? [])], error);
      return;
    }
    let held = this.held.get(typeUrl);
    if (!held) this.held.set(typeUrl, (held = new Map()));
    const removed: string[] = [];
    if (typeUrl === XDS_TYPES.cluster || typeUrl === XDS_TYPES.listener) {
      for (const name of held.keys()) if (!incoming.has(name)) removed.push(name);
      for (const name of removed) held.delete(name);
    }
    for (const [name, r] of incoming) held.set(name, r);
    this.acceptedVersion.set(typeUrl, res.versionInfo ?? "");
    this.requestSotw(typeUrl as XdsTypeUrl, [...(this.subscribed.get(typeUrl) ?? [])]);
    this.followReferences(typeUrl);
    // Recorded (and waiters woken) once the response is fully processed, subscriptions included.
    this.record(typeUrl, nonce, res.versionInfo ?? "", names, removed, true);
  }

  private onDelta(res: DeltaDiscoveryResponse): void {
    const typeUrl = res.typeUrl ?? "";
    const nonce = res.nonce ?? "";
    const names = (res.resources ?? []).map((r) => r.name ?? "");
    const removed = res.removedResources ?? [];
    const error = this.rejecter?.(typeUrl, names);
    if (error) {
      this.record(typeUrl, nonce, res.systemVersionInfo ?? "", names, removed, false);
      this.writeDelta({ typeUrl, responseNonce: nonce, errorDetail: { code: 13, message: error } });
      return;
    }
    let held = this.held.get(typeUrl);
    if (!held) this.held.set(typeUrl, (held = new Map()));
    for (const r of res.resources ?? []) {
      held.set(...this.holding(typeUrl, r.name ?? "", r.version ?? "", r.resource?.value ?? new Uint8Array()));
    }
    for (const name of removed) held.delete(name);
    this.acceptedVersion.set(typeUrl, res.systemVersionInfo ?? "");
    // Like Envoy 1.40: the first route configuration with `vhds` (field 9) opens the VirtualHost
    // subscription, with no names, before the RDS ACK.
    if (typeUrl === XDS_TYPES.route && !this.vhdsOpen && (res.resources ?? []).some((r) => hasTopLevelField(r.resource?.value ?? new Uint8Array(), 9))) this.openVhds();
    this.writeDelta({ typeUrl, responseNonce: nonce });
    this.followReferences(typeUrl);
    this.record(typeUrl, nonce, res.systemVersionInfo ?? "", names, removed, true);
  }

  /** Like Envoy: subscribe to the EDS names clusters use and the RDS names listeners use. */
  private followReferences(typeUrl: string): void {
    const held = this.held.get(typeUrl);
    if (!held) return;
    let target: XdsTypeUrl | undefined;
    const wanted = new Set<string>();
    if (typeUrl === XDS_TYPES.cluster) target = XDS_TYPES.endpoint;
    else if (typeUrl === XDS_TYPES.listener) target = XDS_TYPES.route;
    for (const r of target ? held.values() : []) for (const n of r.refs ?? []) wanted.add(n);
    if (!target) return;
    const before = this.subscribed.get(target) ?? new Set<string>();
    const same = before.size === wanted.size && [...wanted].every((n) => before.has(n));
    if (same) return;
    this.subscribed.set(target, wanted);
    // Like Envoy, drop what is no longer subscribed (a removed cluster's endpoints go with it).
    const unsubscribe = [...before].filter((n) => !wanted.has(n));
    for (const n of unsubscribe) this.held.get(target)?.delete(n);
    if (this.opts.mode === "sotw") {
      this.requestSotw(target, [...wanted]);
    } else {
      const subscribe = [...wanted].filter((n) => !before.has(n));
      this.writeDelta({ typeUrl: target, resourceNamesSubscribe: subscribe, resourceNamesUnsubscribe: unsubscribe });
    }
  }

  /** Resolves when `predicate` holds, checked after every response. */
  /** Resolves with the gRPC status (code, details) the server ends the stream with; rejects after timeoutMs. */
  streamEnded(timeoutMs = 10_000): Promise<{ code?: number; details?: string }> {
    return new Promise((resolve, reject) => {
      const onError = (e: { code?: number; details?: string }) => {
        clearTimeout(timer);
        resolve(e);
      };
      const timer = setTimeout(() => {
        this.off("stream-error", onError);
        reject(new Error(`simulated client ${this.opts.nodeId}: the stream was not ended within ${timeoutMs} ms`));
      }, timeoutMs);
      this.once("stream-error", onError);
    });
  }

  waitFor(predicate: () => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off("response", check);
        reject(new Error(`simulated client ${this.opts.nodeId}: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.off("response", check);
        resolve();
      };
      this.on("response", check);
    });
  }

  names(typeUrl: string): string[] {
    return [...(this.held.get(typeUrl)?.keys() ?? [])].sort();
  }

  /** Ends the stream (keeping what it holds, as Envoy does) without closing the channel. */
  disconnect(): void {
    this.sotw?.cancel();
    this.delta?.cancel();
    this.sotw = undefined;
    this.delta = undefined;
  }

  close(): void {
    this.disconnect();
    this.client?.close();
    this.client = undefined;
  }
}

/** Whether an encoded message has top-level field `field` (e.g. a RouteConfiguration's `vhds`, 9), without decoding it. */
function hasTopLevelField(bytes: Uint8Array, field: number): boolean {
  const reader = _m0.Reader.create(bytes);
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag >>> 3 === field) return true;
    reader.skipType(tag & 7);
  }
  return false;
}

function decodeNamed(typeUrl: string, bytes: Uint8Array): { name: string; decoded?: unknown } {
  if (!isXdsTypeUrl(typeUrl)) return { name: "" };
  return decodeAs(typeUrl, bytes);
}
function decodeAs<U extends XdsTypeUrl>(typeUrl: U, bytes: Uint8Array): { name: string; decoded: XdsResourceTypes[U] } {
  const decoded = XDS_CODECS[typeUrl].decode(bytes);
  return { name: resourceName(typeUrl, decoded), decoded };
}

/** The EDS names a cluster uses or the RDS names a listener uses, as Envoy follows them. */
function referencesOf(typeUrl: string, body: Uint8Array, decoded?: unknown): string[] | undefined {
  if (typeUrl === XDS_TYPES.cluster) {
    const c = (decoded as Cluster | undefined) ?? Cluster.decode(body);
    return c.type === Cluster_DiscoveryType.EDS ? [c.edsClusterConfig?.serviceName || c.name || ""] : [];
  }
  if (typeUrl === XDS_TYPES.listener) {
    const refs: string[] = [];
    for (const chain of ((decoded as Listener | undefined) ?? Listener.decode(body)).filterChains ?? []) {
      for (const f of chain.filters ?? []) {
        const hcm = unpackAny(EXTENSION_TYPES.httpConnectionManager, f.typedConfig);
        if (hcm?.rds?.routeConfigName) refs.push(hcm.rds.routeConfigName);
      }
    }
    return refs;
  }
  return undefined;
}
