// AuthorizationPolicy CUSTOM in a REAL Envoy: the translator's filters (shadow RBAC + ext_authz)
// in front of an echo upstream, with a real HTTP external authorizer (a Node server answering as
// Istio's sample ext-authz does: allow when "x-ext-authz: allow", else 403). One static Envoy, one
// listener per scenario; no control plane. Asserts Istio's documented outcomes: only requests the
// CUSTOM rules match reach the authorizer; its deny is final, its allow still meets DENY
// policies; the headers the provider lists travel; an unusable provider denies what the rules
// match; an unreachable authorizer answers statusOnError.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Listener } from "../generated/envoy/config/listener/v3/listener.js";
import { readMeshSettings } from "../src/api/mesh-settings.js";
import type { AuthorizationPolicy } from "../src/api/security/types.js";
import { startEnvoy, stopAllEnvoys, type EnvoyProcess } from "../src/envoy/envoy-process.js";
import { resourceToJson } from "../src/envoy/readable-json.js";
import { XDS_TYPES } from "../src/envoy/type-urls.js";
import { freePort } from "../src/runner/free-port.js";
import { buildHttpRbacFilters } from "../src/translate/security/authorization.js";
import { buildCustomHttpFilters, type CustomAuthorizationContext } from "../src/translate/security/ext-authz.js";
import { httpListener, loadCase } from "../src/translate/security/testdata/harness.js";
import { startUpstream, type Upstream, type UpstreamEcho } from "./harness/upstream.js";

const TD = { trustDomain: "cluster.local" };
const AUTHZ_HOST = "ext-authz.foo.svc.cluster.local";
const DOWN_HOST = "ext-authz-down.foo.svc.cluster.local";

const MESH = `
extensionProviders:
- name: http-authz
  envoyExtAuthzHttp:
    service: ${AUTHZ_HOST}
    port: 8000
    timeout: 2s
    pathPrefix: /check
    includeRequestHeadersInCheck: ["x-ext-authz", "x-user-*"]
    includeAdditionalHeadersInCheck: { x-ext-authz-from: weft }
    headersToUpstreamOnAllow: ["x-ext-authz-check-result"]
    headersToDownstreamOnDeny: ["x-ext-authz-check-result"]
- name: down-authz
  envoyExtAuthzHttp: { service: ${DOWN_HOST}, port: 8000, timeout: 1s, statusOnError: "503" }
`;

interface Check {
  path: string;
  headers: IncomingHttpHeaders;
}

let envoy: EnvoyProcess;
let upstream: Upstream;
let authorizer: Server;
const checks: Check[] = [];
const port: Record<string, number> = {};

function policies(name: string): AuthorizationPolicy[] {
  return loadCase(name).filter((r): r is AuthorizationPolicy => r.kind === "AuthorizationPolicy");
}

/** proto3 JSON writes a Duration as "1.5s"; ts-proto's toJSON gives {seconds, nanos}. */
function durationsAsText(value: unknown, key = ""): unknown {
  if (Array.isArray(value)) return value.map((v) => durationsAsText(v));
  if (value === null || typeof value !== "object") return value;
  const o = value as Record<string, unknown>;
  if (/timeout$/i.test(key) && Object.keys(o).every((k) => k === "seconds" || k === "nanos")) return `${Number(o["seconds"] ?? 0) + Number(o["nanos"] ?? 0) / 1e9}s`;
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, durationsAsText(v, k)]));
}

function bootstrap(listeners: Listener[], clusters: Record<string, number>): string {
  const staticCluster = ([name, p]: [string, number]) => ({
    name,
    type: "STATIC",
    connect_timeout: "1s",
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: p } } } }] }] },
  });
  return JSON.stringify({
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: { listeners: listeners.map((l) => durationsAsText(resourceToJson(XDS_TYPES.listener, l))), clusters: Object.entries(clusters).map(staticCluster) },
  });
}

async function call(scenario: string, path: string, init: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port[scenario]}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

beforeAll(async () => {
  const { settings, issues } = readMeshSettings(MESH, "mesh.yaml");
  expect(issues).toEqual([]);
  const ctx: CustomAuthorizationContext = {
    providers: settings.authorizationProviders,
    service: (hostname) => ([AUTHZ_HOST, DOWN_HOST].includes(hostname) ? { hostname, namespace: "foo", ports: [{ number: 8000 }] } : undefined),
  };
  upstream = await startUpstream("echo");
  authorizer = createServer((req, res) => {
    checks.push({ path: req.url ?? "", headers: req.headers });
    const allowed = req.headers["x-ext-authz"] === "allow";
    res.writeHead(allowed ? 200 : 403, { "x-ext-authz-check-result": allowed ? "allowed" : "denied", "x-not-listed": "1" });
    res.end(allowed ? "" : "denied by ext_authz");
  });
  await new Promise<void>((resolve) => authorizer.listen(0, "127.0.0.1", resolve));
  const closedPort = await freePort(); // nothing listens there: the authorizer is down
  for (const name of ["http", "unusable", "down"]) port[name] = await freePort();
  const scenario = (name: string, list: AuthorizationPolicy[], provider?: string) =>
    httpListener({
      name,
      port: port[name]!,
      cluster: "echo",
      filters: [...buildCustomHttpFilters(provider ? list.map((p) => (p.spec.action === "CUSTOM" ? { ...p, spec: { ...p.spec, provider: { name: provider } } } : p)) : list, ctx, TD), ...buildHttpRbacFilters(list, TD)],
    });
  const listeners = [scenario("http", policies("custom-http")), scenario("unusable", policies("custom-unusable-provider")), scenario("down", policies("custom-http"), "down-authz")];
  envoy = await startEnvoy({
    name: "ext-authz",
    bootstrapYaml: bootstrap(listeners, { echo: upstream.port, [`outbound|8000||${AUTHZ_HOST}`]: (authorizer.address() as AddressInfo).port, [`outbound|8000||${DOWN_HOST}`]: closedPort }),
  });
});

afterAll(async () => {
  await stopAllEnvoys();
  await upstream?.close();
  await new Promise((resolve) => authorizer?.close(resolve));
});

describe("CUSTOM with an HTTP authorizer", () => {
  it("requests the rules do not match never reach the authorizer", async () => {
    const before = checks.length;
    expect((await call("http", "/public")).status).toBe(200);
    expect(checks.length).toBe(before);
  });

  it("a matching request the authorizer denies: 403 with its listed header, under pathPrefix", async () => {
    const before = checks.length;
    const res = await call("http", "/admin/users?x=1", { headers: { "x-user-id": "7", "x-other": "no" } });
    expect(res.status).toBe(403);
    expect(res.headers.get("x-ext-authz-check-result")).toBe("denied");
    expect(checks.length).toBe(before + 1);
    const check = checks[checks.length - 1]!;
    expect(check.path).toBe("/check/admin/users?x=1");
    expect(check.headers["x-user-id"]).toBe("7"); // "x-user-*" is listed
    expect(check.headers["x-other"]).toBeUndefined(); // not listed
    expect(check.headers["x-ext-authz-from"]).toBe("weft"); // includeAdditionalHeadersInCheck
  });

  it("a matching request the authorizer allows reaches the app with headersToUpstreamOnAllow only", async () => {
    const res = await call("http", "/admin/users", { headers: { "x-ext-authz": "allow" } });
    expect(res.status).toBe(200);
    const echo = JSON.parse(res.body) as UpstreamEcho;
    expect(echo.headers["x-ext-authz-check-result"]).toBe("allowed");
    expect(echo.headers["x-not-listed"]).toBeUndefined();
  });

  it("the second rule (any POST) is checked too", async () => {
    expect((await call("http", "/public", { method: "POST" })).status).toBe(403);
    expect((await call("http", "/public", { method: "POST", headers: { "x-ext-authz": "allow" } })).status).toBe(200);
  });

  it("CUSTOM runs first: an allowed request still meets the DENY policy (403)", async () => {
    expect((await call("http", "/admin", { headers: { "x-ext-authz": "allow", "x-debug": "1" } })).status).toBe(403);
  });

  it("MEASURED: ext_authz counts checks (ok/denied); the shadow RBAC filter counts CUSTOM matches as rbac.ext_authz_.shadow_denied (runs after the tests above)", async () => {
    const stats = await envoy.stats("^http\\.http\\.");
    expect(stats.get("http.http.ext_authz.ok")).toBeGreaterThanOrEqual(2);
    expect(stats.get("http.http.ext_authz.denied")).toBeGreaterThanOrEqual(2);
    expect(stats.get("http.http.rbac.ext_authz_.shadow_denied")).toBeGreaterThanOrEqual(5);
    expect(stats.get("http.http.rbac.ext_authz_.shadow_allowed")).toBeGreaterThanOrEqual(1); // /public
  });
});

describe("CUSTOM that cannot reach its authorizer", () => {
  it("a provider the mesh settings lack: what the rules match is denied, the rest passes", async () => {
    expect((await call("unusable", "/admin/x", { headers: { "x-ext-authz": "allow" } })).status).toBe(403);
    expect((await call("unusable", "/public")).status).toBe(200);
  });

  it("an authorizer that is down: statusOnError (503) for matching requests; others pass", async () => {
    expect((await call("down", "/admin/x", { headers: { "x-ext-authz": "allow" } })).status).toBe(503);
    expect((await call("down", "/public")).status).toBe(200);
  });
});
