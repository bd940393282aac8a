// The view behind CSDS and /debug/config_dump: states per type and secrets redacted.
import { status as GrpcStatus } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { Snapshot } from "../cache/snapshot.js";
import { XDS_CODECS, XDS_TYPES } from "../envoy/type-urls.js";
import { clientStatusOf, REDACTED } from "./client-status.js";
import { csdsHandlers } from "./csds-service.js";
import { ProxyRegistry, type ProxyStatus } from "./proxy-registry.js";

const KEY = "-----BEGIN PRIVATE KEY-----\nsecret-material\n-----END PRIVATE KEY-----\n";
const snapshot = Snapshot.build({
  [XDS_TYPES.secret]: [{ name: "default", tlsCertificate: { certificateChain: { inlineString: "CHAIN" }, privateKey: { inlineString: KEY } } }],
  [XDS_TYPES.cluster]: [{ name: "c1" }],
});
const source = { get: () => snapshot, watch: () => () => undefined };

function proxy(types: ProxyStatus["types"]): ProxyStatus {
  return { streamId: 1, nodeId: "sidecar~10.0.0.1~web.default~default.svc.cluster.local", cluster: "web", metadata: {}, envoyVersion: "", userAgent: "envoy", peer: "", api: "sotw", service: "ads", snapshotKey: "k", principal: "", connectedAt: "", types };
}

describe("client status", () => {
  it("redacts private keys and keeps certificate chains", () => {
    const status = clientStatusOf(proxy({}), source);
    const sds = status.types.find((t) => t.type === "sds")!;
    const secret = XDS_CODECS[XDS_TYPES.secret].decode(sds.resources[0]!.body);
    expect(secret.tlsCertificate?.privateKey?.inlineString).toBe(REDACTED);
    expect(secret.tlsCertificate?.certificateChain?.inlineString).toBe("CHAIN");
    expect(sds.resources[0]!.body.toString("latin1")).not.toContain("secret-material");
  });

  it("says SYNCED, STALE, ERROR (NACKed) and NOT_SENT per type", () => {
    const cds = snapshot.resources(XDS_TYPES.cluster).version;
    const base = { subscribed: "*" as const, subscribedCount: 0, pending: false, nacks: 0 };
    const states = (t: ProxyStatus["types"]) => Object.fromEntries(clientStatusOf(proxy(t), source).types.map((x) => [x.type, x.state]));
    expect(states({ cds: { ...base, sentVersion: cds, ackedVersion: cds } })).toMatchObject({ cds: "SYNCED", sds: "NOT_SENT" });
    expect(states({ cds: { ...base, sentVersion: "old", ackedVersion: "old" } })).toMatchObject({ cds: "STALE" });
    expect(states({ cds: { ...base, sentVersion: cds, pending: true } })).toMatchObject({ cds: "STALE" });
    const nack = { nodeId: "n", type: "cds", version: cds, nonce: "1", message: "bad", code: 3, at: new Date().toISOString() };
    expect(states({ cds: { ...base, sentVersion: cds, ackedVersion: "old", lastNack: nack } })).toMatchObject({ cds: "ERROR" });
  });

  it("CSDS is refused (PERMISSION_DENIED) on a secured xDS port", async () => {
    const handlers = csdsHandlers({ registry: new ProxyRegistry(), source, refuse: "CSDS is off" });
    const err = await new Promise<{ code: number } | null>((resolve) => (handlers["fetchClientStatus"] as (call: unknown, cb: (e: { code: number } | null) => void) => void)({ request: {} }, (e) => resolve(e)));
    expect(err?.code).toBe(GrpcStatus.PERMISSION_DENIED);
  });
});
