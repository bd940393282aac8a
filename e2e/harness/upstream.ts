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
  close(): Promise<void>;
}

/** What an upstream answers with (JSON body). */
export interface UpstreamEcho {
  upstream: string;
  path: string;
  method: string;
  headers: IncomingHttpHeaders;
}

export async function startUpstream(name: string, opts: { host?: string; port?: number } = {}): Promise<Upstream> {
  const host = opts.host ?? "127.0.0.1";
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    const echo: UpstreamEcho = { upstream: name, path: req.url ?? "", method: req.method ?? "", headers: req.headers };
    const body = JSON.stringify(echo);
    req.resume(); // drain any request body
    res.writeHead(200, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      "x-upstream": name,
    });
    res.end(body);
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
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections(); // Envoy keeps upstream connections alive
        server.close(() => resolve());
      }),
  };
}
