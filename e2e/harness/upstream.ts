// A tiny HTTP upstream for e2e tests: answers every request with 200, says who it is in
// an `x-upstream` header and in a JSON body, and counts the requests it served.

import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface Upstream {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Requests served so far. */
  readonly requests: number;
  /** Mutable: every response gets this status / delay (tests flip it to make an upstream fail). */
  behavior: UpstreamBehavior;
  close(): Promise<void>;
}

/**
 * How an upstream answers. Per request, the query parameters `delay=<ms>` and `status=<code>`
 * override it, so a test can ask one request to be slow or to fail.
 */
export interface UpstreamBehavior {
  status?: number;
  delayMs?: number;
  /** Answer the next N requests with 503, then behave normally. */
  failNext?: number;
}

/** What an upstream answers with (JSON body). */
export interface UpstreamEcho {
  upstream: string;
  path: string;
  method: string;
  headers: IncomingHttpHeaders;
}

export async function startUpstream(name: string, opts: { host?: string; port?: number; behavior?: UpstreamBehavior } = {}): Promise<Upstream> {
  const host = opts.host ?? "127.0.0.1";
  let requests = 0;
  const state = { behavior: opts.behavior ?? {} };
  const server = createServer((req, res) => {
    requests++;
    const echo: UpstreamEcho = { upstream: name, path: req.url ?? "", method: req.method ?? "", headers: req.headers };
    const body = JSON.stringify(echo);
    req.resume(); // drain any request body
    const query = new URL(req.url ?? "/", "http://x").searchParams;
    const delay = Number(query.get("delay") ?? state.behavior.delayMs ?? 0);
    let status = Number(query.get("status") ?? state.behavior.status ?? 200);
    if (state.behavior.failNext && state.behavior.failNext > 0) {
      state.behavior.failNext--;
      status = 503;
    }
    const respond = () => {
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      "x-upstream": name,
    });
    res.end(body);
    };
    if (delay > 0) setTimeout(respond, delay);
    else respond();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    name,
    host,
    port,
    get requests() {
      return requests;
    },
    get behavior() {
      return state.behavior;
    },
    set behavior(b: UpstreamBehavior) {
      state.behavior = b;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections(); // Envoy keeps upstream connections alive
        server.close(() => resolve());
      }),
  };
}
