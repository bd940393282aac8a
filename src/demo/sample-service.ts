// The demo's sample services: tiny HTTP servers that say who they are, so routing is visible.
import { createServer, type Server } from "node:http";

export interface SampleService {
  name: string;
  version: string;
  host: string;
  port: number;
  close(): Promise<void>;
}

export async function startSampleService(opts: { name: string; version: string; host?: string; port?: number }): Promise<SampleService> {
  const host = opts.host ?? "127.0.0.1";
  const server: Server = createServer((req, res) => {
    const body = JSON.stringify({ service: opts.name, version: opts.version, path: req.url, method: req.method }) + "\n";
    res.writeHead(200, { "content-type": "application/json", "x-service": opts.name, "x-version": opts.version });
    res.end(body);
  });
  server.keepAliveTimeout = 65_000; // longer than Envoy's idle timeout, so Envoy closes first
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    name: opts.name,
    version: opts.version,
    host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
