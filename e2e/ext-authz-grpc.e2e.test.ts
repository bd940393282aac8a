// AuthorizationPolicy CUSTOM with a REAL gRPC external authorizer: a @grpc/grpc-js server
// serving envoy.service.auth.v3.Authorization/Check (messages from Envoy's own
// external_auth.proto, read with protobufjs), Weft's control plane, and a real Envoy sidecar
// (no capture: the workload's ports are Sidecar ingress listeners bound to 127.0.0.1, which
// forward to the app). Asserts Istio's documented outcomes for envoyExtAuthzGrpc: only what the
// CUSTOM rules match is checked; the authorizer's deny (status, headers, body) reaches the
// caller; its allow adds its headers to the request; a DENY policy still applies after an
// allow; on a TCP port the check runs per connection (the network ext_authz filter).
// No pods: runs without the pod lock. npx vitest run e2e/ext-authz-grpc.e2e.test.ts
import { existsSync } from "node:fs";
import { connect } from "node:net";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readMeshSettings } from "../src/api/mesh-settings.js";
import { freePort } from "../src/runner/free-port.js";
import { httpGet } from "./harness/http.js";
import { TestMesh } from "./harness/mesh.js";
import { startUpstream, type Upstream, type UpstreamEcho } from "./harness/upstream.js";

const AUTHZ_HOST = "ext-authz-grpc.foo.svc.cluster.local";

/** Envoy's ext_authz messages, from the protos @grpc/grpc-js-xds ships (envoy-api, googleapis, validate, xds) and protobufjs's google/protobuf. */
async function authorizationTypes(): Promise<{ request: protobuf.Type; response: protobuf.Type }> {
  const modules = path.resolve("node_modules");
  const roots = [...["envoy-api", "googleapis", "protoc-gen-validate", "xds"].map((d) => path.join(modules, "@grpc/grpc-js-xds/deps", d)), path.join(modules, "protobufjs")];
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => roots.map((r) => path.join(r, target)).find((p) => existsSync(p)) ?? target;
  await root.load("envoy/service/auth/v3/external_auth.proto", { keepCase: false });
  root.resolveAll();
  return { request: root.lookupType("envoy.service.auth.v3.CheckRequest"), response: root.lookupType("envoy.service.auth.v3.CheckResponse") };
}

interface Check {
  path?: string;
  headers: Record<string, string>;
  /** Set for the network filter's checks (no HTTP attributes). */
  tcp: boolean;
}

interface CheckRequestObject {
  attributes?: { request?: { http?: { path?: string; headers?: Record<string, string> } } };
}

const GRPC_OK = 0;
const GRPC_PERMISSION_DENIED = 7;

describe("AuthorizationPolicy CUSTOM with a real gRPC authorizer (envoyExtAuthzGrpc)", () => {
  let mesh: TestMesh;
  let app: Upstream;
  let server: grpc.Server;
  const checks: Check[] = [];
  let denyTcp = false;
  const ports = { http: 0, tcp: 0, authz: 0 };

  const get = (p: string, headers: Record<string, string> = {}) => httpGet(`http://127.0.0.1:${ports.http}${p}`, { headers, timeoutMs: 8000 });

  /** A plain HTTP/1.1 GET over the TCP port: "<status line>" or "closed" when the connection ends without an answer. */
  const tcpGet = (): Promise<string> =>
    new Promise((resolve) => {
      const socket = connect(ports.tcp, "127.0.0.1");
      let data = "";
      socket.setTimeout(8000, () => socket.destroy());
      socket.on("connect", () => socket.write("GET / HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n"));
      socket.on("data", (d) => (data += d.toString()));
      socket.on("error", () => {});
      socket.on("close", () => resolve(data ? data.split("\r\n")[0]! : "closed"));
    });

  beforeAll(async () => {
    const types = await authorizationTypes();
    server = new grpc.Server();
    server.addService(
      {
        Check: {
          path: "/envoy.service.auth.v3.Authorization/Check",
          requestStream: false,
          responseStream: false,
          requestSerialize: (v: unknown) => Buffer.from(types.request.encode(types.request.fromObject(v as object)).finish()),
          requestDeserialize: (b: Buffer) => types.request.toObject(types.request.decode(b), { defaults: false }),
          responseSerialize: (v: unknown) => Buffer.from(types.response.encode(types.response.fromObject(v as object)).finish()),
          responseDeserialize: (b: Buffer) => types.response.toObject(types.response.decode(b)),
        },
      },
      {
        Check: (call: grpc.ServerUnaryCall<CheckRequestObject, unknown>, callback: grpc.sendUnaryData<unknown>) => {
          const http = call.request.attributes?.request?.http;
          const headers = http?.headers ?? {};
          const tcp = !http;
          checks.push({ path: http?.path, headers, tcp });
          const allowed = tcp ? !denyTcp : headers["x-ext-authz"] === "allow";
          callback(
            null,
            allowed
              ? { status: { code: GRPC_OK }, okResponse: { headers: [{ header: { key: "x-ext-authz-check-result", value: "allowed" } }] } }
              : { status: { code: GRPC_PERMISSION_DENIED }, deniedResponse: { status: { code: 403 }, headers: [{ header: { key: "x-ext-authz-check-result", value: "denied" } }], body: "denied by the gRPC authorizer" } },
          );
        },
      },
    );
    ports.authz = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    app = await startUpstream("app");
    ports.http = await freePort();
    ports.tcp = await freePort();
    const { settings, issues } = readMeshSettings(
      `extensionProviders:
- name: grpc-authz
  envoyExtAuthzGrpc: { service: ${AUTHZ_HOST}, port: 9000, timeout: 2s }
`,
      "mesh.yaml",
    );
    expect(issues).toEqual([]);
    mesh = await TestMesh.start(settings);
    await mesh.startProxy({ name: "app-authz", namespace: "foo", labels: { app: "httpbin" }, capture: "explicit" });
    await mesh.applyValid(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext-authz-grpc, namespace: foo }
spec:
  hosts: [${AUTHZ_HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9000, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.1, ports: { grpc: ${ports.authz} } }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: httpbin, namespace: foo }
spec:
  workloadSelector: { labels: { app: httpbin } }
  ingress:
  - port: { number: ${ports.http}, protocol: HTTP, name: http }
    bind: 127.0.0.1
    defaultEndpoint: 127.0.0.1:${app.port}
  - port: { number: ${ports.tcp}, protocol: TCP, name: tcp }
    bind: 127.0.0.1
    defaultEndpoint: 127.0.0.1:${app.port}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext-authz, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  action: CUSTOM
  provider: { name: grpc-authz }
  rules:
  - to: [{ operation: { paths: ["/admin*"] } }]
  - to: [{ operation: { ports: ["${ports.tcp}"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-debug, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  action: DENY
  rules:
  # Scoped to the HTTP port: on a TCP port a DENY rule's HTTP-only conditions are dropped, which
  # would deny every connection there (Istio's rule: more restrictive, never less).
  - to: [{ operation: { ports: ["${ports.http}"] } }]
    when: [{ key: "request.headers[x-debug]", values: ["1"] }]
`);
  }, 120_000);

  afterAll(async () => {
    await mesh?.close();
    await app?.close();
    server?.forceShutdown();
  });

  /** Polls until the bound listener answers (listeners reach Envoy asynchronously), at most 15 s. */
  const firstAnswer = async (p: string, headers: Record<string, string> = {}) => {
    const end = Date.now() + 15_000;
    for (;;) {
      try {
        return await get(p, headers);
      } catch (e) {
        if (Date.now() > end) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };

  it("requests the CUSTOM rules do not match reach the app without a check", async () => {
    const before = checks.length;
    expect((await firstAnswer("/public")).status).toBe(200);
    expect(checks.length).toBe(before);
  });

  it("a matching request the authorizer denies: its status, header and body reach the caller", async () => {
    const before = checks.length;
    const res = await get("/admin/users?x=1", { "x-user": "7" });
    expect(res.status).toBe(403);
    expect(res.headers["x-ext-authz-check-result"]).toBe("denied");
    expect(res.body).toBe("denied by the gRPC authorizer");
    expect(checks.length).toBe(before + 1);
    const check = checks[checks.length - 1]!;
    expect(check.path).toBe("/admin/users?x=1");
    expect(check.headers["x-user"]).toBe("7"); // the gRPC check carries every request header
    expect(app.requests).toBe(1); // only /public got through so far
  });

  it("a matching request the authorizer allows reaches the app with the authorizer's header", async () => {
    const res = await get("/admin/users", { "x-ext-authz": "allow" });
    expect(res.status).toBe(200);
    const echo = JSON.parse(res.body) as UpstreamEcho;
    expect(echo.headers["x-ext-authz-check-result"]).toBe("allowed");
  });

  it("CUSTOM runs first: an allowed request still meets the DENY policy (403 from RBAC)", async () => {
    const res = await get("/admin", { "x-ext-authz": "allow", "x-debug": "1" });
    expect(res.status).toBe(403);
    expect(res.body).toMatch(/RBAC/);
  });

  it("on a TCP port the authorizer checks each connection: allowed connections pass, denied ones are closed", async () => {
    const before = checks.filter((c) => c.tcp).length;
    expect(await tcpGet()).toBe("HTTP/1.1 200 OK");
    expect(checks.filter((c) => c.tcp).length).toBe(before + 1);
    denyTcp = true;
    expect(await tcpGet()).toBe("closed");
    expect(checks.filter((c) => c.tcp).length).toBe(before + 2);
    denyTcp = false;
  });
});
