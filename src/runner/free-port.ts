// A TCP port free on loopback right now (bind to 0, read, close): for listeners that must be
// known before they are bound, such as Envoy listener ports in the demo, benches and tests.
// The kernel may hand the port it just released to the next bind(0), so ports already given
// out by this process are never returned again (measured: two listeners of one Envoy got the
// same port and Envoy refused its bootstrap).
import { createServer } from "node:net";

const handedOut = new Set<number>();

function bindZero(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await bindZero(host);
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("freePort: no new free port after 50 attempts");
}
