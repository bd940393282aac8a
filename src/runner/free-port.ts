// A TCP port free on loopback right now (bind to 0, read, close): for listeners that must be
// known before they are bound, such as Envoy listener ports in the demo, benches and tests.
import { createServer } from "node:net";

export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
