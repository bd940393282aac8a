// Simulated sidecars in their own process (so they do not share Weft's event loop in a
// benchmark): SIDECARS Envoy-like SotW clients to XDS_TARGET, in namespace NAMESPACE, spread over
// CLASSES label sets; each ACKs every response. Prints "connected" once all have a first response.
// Ends on SIGTERM.
import { SimulatedClient } from "../../src/xds/simulated-client.js";

const target = process.env.XDS_TARGET ?? "127.0.0.1:15010";
const count = Number(process.env.SIDECARS ?? 100);
const namespace = process.env.NAMESPACE ?? "default";
const classes = Number(process.env.CLASSES ?? 10);

const clients: SimulatedClient[] = [];
let answered = 0;
for (let i = 0; i < count; i++) {
  const c = new SimulatedClient({
    target,
    nodeId: `sidecar~10.250.${i >> 8}.${i & 255}~client-${i}.${namespace}~${namespace}.svc.cluster.local`,
    mode: "sotw",
    metadata: { NAMESPACE: namespace, LABELS: JSON.stringify({ app: `client-${i % classes}` }), INTERCEPTION_MODE: "REDIRECT" },
  });
  c.on("error", () => undefined);
  c.once("response", () => {
    if (++answered === count) process.stdout.write("connected\n");
  });
  c.start();
  clients.push(c);
}
process.once("SIGTERM", () => {
  for (const c of clients) c.close();
  process.exit(0);
});
