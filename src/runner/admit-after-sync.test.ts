// A proxy that connects while Weft waits for a config source to sync (a Kubernetes cluster
// still being listed, e.g. right after a restart with sidecars reconnecting) must not be
// given the configuration of an empty mesh: it is asked to retry (UNAVAILABLE) and keeps what
// it has. Once the source has synced, proxies are admitted and get the real config.
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { ServiceEntry, Sourced } from "../api/types.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import { silentLogger } from "../log/logger.js";
import type { ConfigSource, SourceListener, SourceSnapshot } from "../sources/config-source.js";
import { SimulatedClient } from "../xds/simulated-client.js";
import { freePort } from "./free-port.js";
import { startMeshRunner, type MeshRunner } from "./mesh-runner.js";

/** A source that is not synced until the test says so (as a cluster being listed). */
class SlowSource implements ConfigSource {
  readonly name = "slow test source";
  readonly origin = { cluster: "test", kind: "", name: "", resourceVersion: "" };
  synced = false;
  listener: SourceListener | undefined;
  readonly entry: Sourced<ServiceEntry> = {
    resource: {
      apiVersion: "networking.istio.io/v1",
      kind: "ServiceEntry",
      metadata: { name: "reviews", namespace: "default" },
      spec: { hosts: ["reviews.default.svc.cluster.local"], location: "MESH_INTERNAL", resolution: "STATIC", ports: [{ number: 9080, name: "http", protocol: "HTTP" }], endpoints: [{ address: "10.1.0.1" }] },
    },
    source: { cluster: "test", kind: "Service", namespace: "default", name: "reviews", resourceVersion: "1" },
  };
  async start(listener: SourceListener): Promise<void> {
    this.listener = listener;
  }
  snapshot(): SourceSnapshot {
    return { synced: this.synced, entries: this.synced ? [{ key: "ServiceEntry/default/reviews", source: this.entry.source, resource: this.entry.resource, issues: [] }] : [], issues: [], unreadable: [] };
  }
  async close(): Promise<void> {}
}

describe("streams before the config sources synced", () => {
  const clients: SimulatedClient[] = [];
  let runner: MeshRunner | undefined;
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await runner?.close(100);
    runner = undefined;
  });

  it("are refused with UNAVAILABLE (no empty mesh pushed), then admitted with the synced config", async () => {
    const source = new SlowSource();
    const xdsPort = await freePort();
    const starting = startMeshRunner({ logger: silentLogger(), xdsAddress: "127.0.0.1", xdsPort, adminPort: 0, sources: [source], debounceMs: 10 });
    const client = (id: string) => {
      const c = new SimulatedClient({ target: `127.0.0.1:${xdsPort}`, nodeId: `sidecar~10.0.0.9~${id}.default~default.svc.cluster.local`, mode: "sotw", metadata: { NAMESPACE: "default" } });
      c.on("error", () => undefined);
      clients.push(c);
      return c;
    };
    // The port opens before the source syncs.
    let early: SimulatedClient | undefined;
    let outcome: { code: number; details: string } | undefined;
    for (let i = 0; i < 100 && !outcome; i++) {
      early = client(`early-${i}`);
      outcome = await new Promise<{ code: number; details: string } | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 2000);
        early!.once("response", () => {
          clearTimeout(timer);
          resolve({ code: -1, details: "got a response" });
        });
        early!.once("stream-error", (e: Error & { code?: number; details?: string }) => {
          clearTimeout(timer);
          resolve({ code: e.code ?? -2, details: e.details ?? e.message });
        });
        early!.start();
      });
      if (!outcome) await new Promise((r) => setTimeout(r, 50));
    }
    expect(outcome?.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(outcome?.details).toMatch(/waiting for its config sources to sync/);
    expect(early!.responses).toEqual([]);

    source.synced = true;
    source.listener!.changed();
    runner = await starting;
    const late = client("late");
    late.start();
    await late.waitFor(() => late.names(XDS_TYPES.cluster).includes("outbound|9080||reviews.default.svc.cluster.local"), 10_000, "the synced config");
  });
});
