// A raw gRPC client for the xDS services over plain HTTP/2 (node:http2): sends any bytes,
// framed or not, and can refuse to read what the server sends. Envoy never does either; an
// attacker, a broken client or a fuzzer does. Used by the abuse tests, the xDS request fuzz
// test and bench/xds-abuse.ts — never by the product.
import http2 from "node:http2";

export const XDS_METHODS = {
  sotw: "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
  delta: "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources",
  sotwClusters: "/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters",
  deltaEndpoints: "/envoy.service.endpoint.v3.EndpointDiscoveryService/DeltaEndpoints",
  fetchListeners: "/envoy.service.listener.v3.ListenerDiscoveryService/FetchListeners",
} as const;

/** Which request message a method takes. */
export function requestKind(api: keyof typeof XDS_METHODS): "sotw" | "delta" {
  return api === "delta" || api === "deltaEndpoints" ? "delta" : "sotw";
}

/** The gRPC length-prefixed frame of one message. */
export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(message.length + 5);
  out.writeUInt8(0, 0);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

export interface RawStreamEnd {
  /** grpc-status from the trailers (undefined when the stream was reset or closed without one). */
  code?: number;
  message?: string;
  /** HTTP/2 RST_STREAM code (0 when closed normally). */
  rstCode: number;
}

export class RawXdsStream {
  /** Complete response messages received (only when reading). */
  readonly messages: Buffer[] = [];
  readonly ended: Promise<RawStreamEnd>;
  /** Received bytes not yet part of a complete message (chunks, joined only when needed). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private trailers?: http2.IncomingHttpHeaders;

  constructor(private readonly req: http2.ClientHttp2Stream, read: boolean) {
    this.ended = new Promise((resolve) => {
      req.on("close", () => {
        const status = this.trailers?.["grpc-status"];
        const message = this.trailers?.["grpc-message"];
        resolve({
          code: status === undefined ? undefined : Number(status),
          message: typeof message === "string" ? decodeURIComponent(message) : undefined,
          rstCode: req.rstCode ?? 0,
        });
      });
    });
    req.on("error", () => undefined); // resets show up in `ended`
    // The status ends the call (as a gRPC client does): the stream is closed on our side too.
    req.on("response", (headers) => {
      // Trailers-only responses carry the status in the headers.
      if (headers["grpc-status"] !== undefined) {
        this.trailers = headers;
        req.close();
      }
    });
    req.on("trailers", (headers) => {
      this.trailers = headers;
      req.close();
    });
    if (read) req.on("data", (chunk: Buffer) => this.onData(chunk));
    else req.pause(); // never read: the HTTP/2 window fills and the server's writes stay queued
  }

  private onData(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    for (;;) {
      if (this.pendingBytes < 5) return;
      let head = this.pending[0]!;
      if (head.length < 5) head = this.join();
      const len = head.readUInt32BE(1);
      if (this.pendingBytes < 5 + len) return;
      const all = this.join();
      this.messages.push(all.subarray(5, 5 + len));
      const rest = all.subarray(5 + len);
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
    }
  }

  private join(): Buffer {
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [all];
    return all;
  }

  /** Sends one message (framed for gRPC). */
  send(message: Uint8Array): void {
    if (!this.req.closed && !this.req.destroyed) this.req.write(grpcFrame(message));
  }

  /** Sends bytes exactly as given (no gRPC framing). */
  sendRaw(bytes: Uint8Array): void {
    if (!this.req.closed && !this.req.destroyed) this.req.write(bytes);
  }

  /** Half-closes (the client is done sending). */
  end(): void {
    if (!this.req.closed && !this.req.destroyed) this.req.end();
  }

  /** Resets the stream (and drops what it received but never read). */
  cancel(): void {
    if (this.req.destroyed) return;
    this.req.close(http2.constants.NGHTTP2_CANCEL);
    // A paused stream with unread data would otherwise wait to emit "close".
    this.req.resume();
    setTimeout(() => this.req.destroy(), 100).unref();
  }
}

/** One HTTP/2 connection to an xDS server; streams are opened on it. */
export class RawXdsClient {
  private readonly session: http2.ClientHttp2Session;

  constructor(target: string) {
    this.session = http2.connect(`http://${target}`);
    this.session.on("error", () => undefined); // surfaces as stream ends
  }

  open(api: keyof typeof XDS_METHODS, opts: { read?: boolean } = {}): RawXdsStream {
    const req = this.session.request({
      ":method": "POST",
      ":path": XDS_METHODS[api],
      "content-type": "application/grpc",
      te: "trailers",
    });
    return new RawXdsStream(req, opts.read ?? true);
  }

  close(): void {
    this.session.destroy();
  }
}
