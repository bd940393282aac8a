// The security translators' output in a REAL Envoy: RequestAuthentication -> jwt_authn and
// AuthorizationPolicy -> RBAC, in front of a direct 200 (or an echo upstream), with tokens
// minted by jose. One static Envoy, one listener per scenario; no control plane. Asserts
// Istio's documented outcomes: an invalid token is 401, a missing one passes unless a policy
// asks for a request principal (then 403), DENY beats ALLOW, HTTP-only rules on TCP, ...
import { createServer, connect, type AddressInfo, type Server } from "node:net";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWTPayload } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Listener } from "../generated/envoy/config/listener/v3/listener.js";
import type { AuthorizationPolicy, RequestAuthentication } from "../src/api/security/types.js";
import { startEnvoy, stopAllEnvoys, type EnvoyProcess } from "../src/envoy/envoy-process.js";
import { resourceToJson } from "../src/envoy/readable-json.js";
import { XDS_TYPES } from "../src/envoy/type-urls.js";
import { freePort } from "../src/runner/free-port.js";
import { buildHttpRbacFilters, buildNetworkRbacFilters } from "../src/translate/security/authorization.js";
import { buildJwtAuthnFilter } from "../src/translate/security/jwt.js";
import { BACKEND_CLUSTER, httpListener, loadCase, loadSecurityYaml, tcpListener } from "../src/translate/security/testdata/harness.js";
import { httpGet } from "./harness/http.js";
import { startUpstream, type Upstream, type UpstreamEcho } from "./harness/upstream.js";

const ISSUER = "https://issuer.example.com/tenant"; // contains "/": request principals must still work
const AUDIENCE = "httpbin";
const KID = "e2e";
const TD = { trustDomain: "cluster.local" };

let signingKey: CryptoKey;
let otherKey: CryptoKey;
let jwks: string;

/** A signed ES256 token; `claims` override the defaults (valid for 5 minutes, our issuer and audience). */
async function token(claims: JWTPayload = {}, key: CryptoKey = signingKey): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISSUER, sub: "alice", aud: AUDIENCE, iat: now, exp: now + 300, ...claims }).setProtectedHeader({ alg: "ES256", kid: KID }).sign(key);
}

function requestAuthentication(extra = ""): string {
  return `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: foo }
spec:
  jwtRules:
  - issuer: ${ISSUER}
    audiences: [${AUDIENCE}]
    jwks: '${jwks}'
${extra}---
`;
}

function policies(yaml: string): { authn: RequestAuthentication[]; authz: AuthorizationPolicy[] } {
  const all = loadSecurityYaml(yaml);
  return { authn: all.filter((r): r is RequestAuthentication => r.kind === "RequestAuthentication"), authz: all.filter((r): r is AuthorizationPolicy => r.kind === "AuthorizationPolicy") };
}

function httpScenario(name: string, port: number, yaml: string, cluster?: string): Listener {
  const { authn, authz } = policies(yaml);
  const jwt = buildJwtAuthnFilter(authn);
  return httpListener({ name, port, filters: [...(jwt ? [jwt] : []), ...buildHttpRbacFilters(authz, TD)], ...(cluster ? { cluster } : {}) });
}

/** The part of a listener's JSON that the AUDIT scenario patches. */
interface ListenerJson {
  filterChains: { filters: { typedConfig: { routeConfig?: { virtualHosts: Record<string, unknown>[] } } }[] }[];
}

/** Echoes the RBAC LOG decision (dynamic metadata envoy.common access_log_hint) in a response header. */
function addAuditHintHeader(listener: ListenerJson): void {
  const host = listener.filterChains[0]!.filters[0]!.typedConfig.routeConfig!.virtualHosts[0]!;
  host["responseHeadersToAdd"] = [{ header: { key: "x-access-log-hint", value: "%DYNAMIC_METADATA(envoy.common:access_log_hint)%" } }];
}

/**
 * A static bootstrap as JSON (which is YAML): the listeners through resourceToJson (proto3 JSON
 * names; these listeners hold no Duration, the one type ts-proto writes differently), and the
 * two clusters written by hand.
 */
function bootstrapJson(listeners: Listener[], upstreamPort: number, tcpBackendPort: number, patch: (name: string, listener: ListenerJson) => void = () => {}): string {
  const staticCluster = (name: string, port: number) => ({
    name,
    type: "STATIC",
    connect_timeout: "1s",
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }] }] },
  });
  return JSON.stringify({
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: {
      listeners: listeners.map((l) => {
        const json = resourceToJson(XDS_TYPES.listener, l) as unknown as ListenerJson;
        patch(l.name ?? "", json);
        return json;
      }),
      clusters: [staticCluster("echo", upstreamPort), staticCluster(BACKEND_CLUSTER, tcpBackendPort)],
    },
  });
}

/** Sends a line over TCP; resolves with what came back before the connection closed (or 1 s passed). */
function tcpExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = "";
    const socket = connect(port, "127.0.0.1", () => socket.write(text));
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      received += d;
      if (received.length >= text.length) socket.end();
    });
    socket.on("error", (err: NodeJS.ErrnoException) => (err.code === "ECONNRESET" ? resolve(received) : reject(err)));
    socket.on("close", () => resolve(received));
    socket.setTimeout(1000, () => socket.destroy());
  });
}

const port: Record<string, number> = {};
let envoy: EnvoyProcess;
let upstream: Upstream;
let echoServer: Server;

const url = (scenario: string, path = "/") => `http://127.0.0.1:${port[scenario]}${path}`;
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
async function status(scenario: string, opts: { path?: string; headers?: Record<string, string> } = {}): Promise<number> {
  return (await httpGet(url(scenario, opts.path), { headers: opts.headers ?? {} })).status;
}

beforeAll(async () => {
  const pair = await generateKeyPair("ES256");
  signingKey = pair.privateKey;
  otherKey = (await generateKeyPair("ES256")).privateKey;
  jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: KID, alg: "ES256", use: "sig" }] });

  upstream = await startUpstream("echo");
  echoServer = createServer((s) => s.pipe(s));
  await new Promise<void>((resolve) => echoServer.listen(0, "127.0.0.1", resolve));
  const tcpBackendPort = (echoServer.address() as AddressInfo).port;
  for (const name of ["jwtOnly", "requirePrincipal", "locations", "claims", "headers", "allowNothing", "audit", "tcpAllow", "tcpAllowHttpOnly", "tcpDenyHttpOnly", "tcpDenyOtherPort", "pathTemplates"]) port[name] = await freePort();

  const listeners: Listener[] = [
    // RequestAuthentication alone.
    httpScenario("jwtOnly", port.jwtOnly!, requestAuthentication()),
    // ...plus an ALLOW policy that needs alice's token (except on /healthz).
    httpScenario(
      "requirePrincipal",
      port.requirePrincipal!,
      requestAuthentication() +
        `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: require-alice, namespace: foo }
spec:
  rules:
  - from:
    - source: { requestPrincipals: ["${ISSUER}/alice"] }
  - to:
    - operation: { paths: ["/healthz"] }
`,
    ),
    // Tokens from a header with a prefix, or a query parameter; a principal is required.
    httpScenario(
      "locations",
      port.locations!,
      requestAuthentication(`    fromHeaders:
    - name: x-jwt-assertion
      prefix: "Token "
    fromParams: [jwt]
`) +
        `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: require-jwt, namespace: foo }
spec:
  rules:
  - from:
    - source: { requestPrincipals: ["*"] }
`,
    ),
    // Claims (string or list, nested) in ALLOW; a DENY on a header beats it.
    httpScenario(
      "claims",
      port.claims!,
      requestAuthentication("    spaceDelimitedClaims: [roles]\n") +
        `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: admins, namespace: foo }
spec:
  rules:
  - when:
    - key: request.auth.claims[groups]
      values: ["admin"]
  - when:
    - key: request.auth.claims[org][team]
      values: ["platform-*"]
  - when:
    - key: request.auth.claims[scope]
      values: ["admin:write"]
  - when:
    - key: request.auth.claims[roles]
      values: ["auditor"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-debug, namespace: foo }
spec:
  action: DENY
  rules:
  - when:
    - key: request.headers[X-Debug]
      values: ["*"]
`,
    ),
    // What reaches the backend: claims and payload as headers, the token only when forwarded.
    httpScenario(
      "headers",
      port.headers!,
      requestAuthentication(`    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders:
    - { header: x-jwt-sub, claim: sub }
    - { header: x-jwt-team, claim: org.team }
`),
      "echo",
    ),
    httpScenario("allowNothing", port.allowNothing!, "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: allow-nothing, namespace: istio-system }\n"),
    httpScenario(
      "audit",
      port.audit!,
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: audit-admin, namespace: foo }
spec:
  action: AUDIT
  rules:
  - to:
    - operation: { paths: ["/admin*"] }
`,
    ),
    // Path templates, from the translator's golden input (testdata/in/path-templates.yaml).
    httpListener({ name: "pathTemplates", port: port.pathTemplates!, filters: buildHttpRbacFilters(loadCase("path-templates").filter((r): r is AuthorizationPolicy => r.kind === "AuthorizationPolicy"), TD) }),
  ];

  const tcp = (name: string, yaml: string) => tcpListener({ name, port: port[name]!, filters: buildNetworkRbacFilters(policies(yaml).authz, { ...TD, statPrefix: name }) });
  const authzYaml = (action: string, operation: string) =>
    `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: p, namespace: foo }\nspec:\n  action: ${action}\n  rules:\n  - to:\n    - operation: ${operation}\n`;
  listeners.push(
    tcp("tcpAllow", authzYaml("ALLOW", `{ ports: ["${port.tcpAllow}"] }`)),
    tcp("tcpAllowHttpOnly", authzYaml("ALLOW", `{ methods: ["GET"], ports: ["${port.tcpAllowHttpOnly}"] }`)),
    tcp("tcpDenyHttpOnly", authzYaml("DENY", `{ methods: ["GET"] }`)),
    tcp("tcpDenyOtherPort", authzYaml("DENY", `{ methods: ["GET"], ports: ["1"] }`)),
  );

  envoy = await startEnvoy({ name: "security-filters", bootstrapYaml: bootstrapJson(listeners, upstream.port, tcpBackendPort, (name, json) => name === "audit" && addAuditHintHeader(json)) });
});

afterAll(async () => {
  await stopAllEnvoys();
  await upstream?.close();
  await new Promise((resolve) => echoServer?.close(resolve));
});

describe("RequestAuthentication alone: rejects invalid tokens, lets missing ones through", () => {
  it("no token: 200", async () => {
    expect(await status("jwtOnly")).toBe(200);
  });
  it("valid token: 200", async () => {
    expect(await status("jwtOnly", { headers: bearer(await token()) })).toBe(200);
  });
  it("expired: 401", async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await status("jwtOnly", { headers: bearer(await token({ iat: now - 7200, exp: now - 3600 })) })).toBe(401);
  });
  it("wrong issuer: 401", async () => {
    expect(await status("jwtOnly", { headers: bearer(await token({ iss: "https://evil.example.com" })) })).toBe(401);
  });
  it("MEASURED: wrong audience: 403 (Envoy's jwt_authn answers 403 \"Audiences in Jwt are not allowed\")", async () => {
    expect(await status("jwtOnly", { headers: bearer(await token({ aud: "someone-else" })) })).toBe(403);
  });
  it("signed with another key: 401", async () => {
    expect(await status("jwtOnly", { headers: bearer(await token({}, otherKey)) })).toBe(401);
  });
  it("not a JWT at all: 401", async () => {
    expect(await status("jwtOnly", { headers: bearer("garbage") })).toBe(401);
  });
});

describe("with an AuthorizationPolicy on requestPrincipals", () => {
  it("no token: 403 (the policy wants a principal)", async () => {
    expect(await status("requirePrincipal")).toBe(403);
  });
  it("alice (issuer with '/' in it): 200", async () => {
    expect(await status("requirePrincipal", { headers: bearer(await token()) })).toBe(200);
  });
  it("bob, valid token: 403", async () => {
    expect(await status("requirePrincipal", { headers: bearer(await token({ sub: "bob" })) })).toBe(403);
  });
  it("expired alice: 401 (authentication fails before authorization)", async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await status("requirePrincipal", { headers: bearer(await token({ iat: now - 7200, exp: now - 3600 })) })).toBe(401);
  });
  it("an unprotected path needs no token: 200", async () => {
    expect(await status("requirePrincipal", { path: "/healthz" })).toBe(200);
  });
});

describe("token locations", () => {
  it("header with its prefix: 200", async () => {
    expect(await status("locations", { headers: { "x-jwt-assertion": `Token ${await token()}` } })).toBe(200);
  });
  it("query parameter: 200; expired in the parameter: 401", async () => {
    expect(await status("locations", { path: `/?jwt=${await token()}` })).toBe(200);
    const now = Math.floor(Date.now() / 1000);
    expect(await status("locations", { path: `/?jwt=${await token({ iat: now - 7200, exp: now - 3600 })}` })).toBe(401);
  });
  it("the default Authorization header is no longer read: no principal, 403", async () => {
    expect(await status("locations", { headers: bearer(await token()) })).toBe(403);
  });
  it("MEASURED: the header without its prefix counts as no token (403 here, not 401)", async () => {
    expect(await status("locations", { headers: { "x-jwt-assertion": await token() } })).toBe(403);
  });
});

describe("claims and DENY", () => {
  it("groups as a list containing admin: 200; as the string admin: 200", async () => {
    expect(await status("claims", { headers: bearer(await token({ groups: ["dev", "admin"] })) })).toBe(200);
    expect(await status("claims", { headers: bearer(await token({ groups: "admin" })) })).toBe(200);
  });
  it("nested claim with a prefix match: 200", async () => {
    expect(await status("claims", { headers: bearer(await token({ org: { team: "platform-blue" } })) })).toBe(200);
  });
  it("space-delimited claims: scope (always, as Istio) and roles (spaceDelimitedClaims) match one of their space-separated values; other claims do not", async () => {
    expect(await status("claims", { headers: bearer(await token({ scope: "read admin:write" })) })).toBe(200);
    expect(await status("claims", { headers: bearer(await token({ roles: "viewer auditor" })) })).toBe(200);
    expect(await status("claims", { headers: bearer(await token({ scope: "read admin:writer" })) })).toBe(403);
    expect(await status("claims", { headers: bearer(await token({ groups: "dev admin" })) })).toBe(403);
  });
  it("no matching claim: 403; no token: 403", async () => {
    expect(await status("claims", { headers: bearer(await token({ groups: ["dev"] })) })).toBe(403);
    expect(await status("claims")).toBe(403);
  });
  it("DENY on a header beats ALLOW: 403", async () => {
    expect(await status("claims", { headers: { ...bearer(await token({ groups: ["admin"] })), "x-debug": "1" } })).toBe(403);
  });
});

describe("what reaches the backend", () => {
  it("claims and payload as headers; the token itself is removed (forwardOriginalToken: false)", async () => {
    const response = await httpGet(url("headers"), { headers: bearer(await token({ org: { team: "blue" } })) });
    expect(response.status).toBe(200);
    const echo = JSON.parse(response.body) as UpstreamEcho;
    expect(echo.headers["x-jwt-sub"]).toBe("alice");
    expect(echo.headers["x-jwt-team"]).toBe("blue");
    expect(echo.headers["authorization"]).toBeUndefined();
    const payload = JSON.parse(Buffer.from(String(echo.headers["x-jwt-payload"]), "base64url").toString("utf8")) as JWTPayload;
    expect(payload.sub).toBe("alice");
    expect(payload.iss).toBe(ISSUER);
  });
});

describe("allow-nothing and AUDIT", () => {
  it("an ALLOW policy without rules denies everything: 403", async () => {
    expect(await status("allowNothing")).toBe(403);
    expect(await status("allowNothing", { path: "/anything" })).toBe(403);
  });
  it("AUDIT never denies; it sets envoy.common access_log_hint on the requests it matches", async () => {
    const matching = await httpGet(url("audit", "/admin/x"));
    const other = await httpGet(url("audit", "/public"));
    expect([matching.status, other.status]).toEqual([200, 200]);
    expect(matching.headers["x-access-log-hint"]).toBe("true");
    expect(other.headers["x-access-log-hint"]).toBe("false");
    const stats = await envoy.stats("^http\\.audit\\.rbac\\.");
    expect(stats.get("http.audit.rbac.audit.allowed")).toBe(2);
    expect(stats.get("http.audit.rbac.audit.denied")).toBe(0);
  });
});

describe("TCP (network RBAC)", () => {
  it("ALLOW on the port: the connection is proxied", async () => {
    expect(await tcpExchange(port.tcpAllow!, "hello")).toBe("hello");
  });
  it("an ALLOW rule with an HTTP-only field matches nothing on TCP: closed", async () => {
    expect(await tcpExchange(port.tcpAllowHttpOnly!, "hello")).toBe("");
  });
  it("a DENY rule with only HTTP-only fields denies all TCP: closed", async () => {
    expect(await tcpExchange(port.tcpDenyHttpOnly!, "hello")).toBe("");
  });
  it("a DENY rule's TCP fields still scope it (another port): proxied", async () => {
    expect(await tcpExchange(port.tcpDenyOtherPort!, "hello")).toBe("hello");
  });
  it("network RBAC stats are named per filter chain", async () => {
    const stats = await envoy.stats("^tcpDenyHttpOnly\\.");
    expect(stats.get("tcpDenyHttpOnly.authz_deny.rbac.denied")).toBeGreaterThanOrEqual(1);
  });
});

describe("path templates (Envoy's uri_template matcher)", () => {
  const get = (path: string) => status("pathTemplates", { path });
  it("{*} matches exactly one segment; the query is not part of the path", async () => {
    expect(await get("/users/alice/orders")).toBe(200);
    expect(await get("/users/alice/orders?page=2")).toBe(200);
    expect(await get("/users/alice/bob/orders")).toBe(403);
    expect(await get("/users//orders")).toBe(403);
  });
  it("{**} matches any number of remaining segments; a DENY template with a literal after {**} still denies", async () => {
    expect(await get("/files/a")).toBe(200);
    expect(await get("/files/a/b/c.txt")).toBe(200);
    expect(await get("/files/a/b/secret.txt")).toBe(403);
    expect(await get("/filesx/a")).toBe(403);
  });
  it("MEASURED: '/files/{**}' also matches '/files/' (zero segments) but not '/files'", async () => {
    expect(await get("/files/")).toBe(200);
    expect(await get("/files")).toBe(403);
  });
  it("notPaths with a template excludes what it matches; plain paths still match exactly", async () => {
    expect(await get("/users/alice/orders/7")).toBe(403);
    expect(await get("/healthz")).toBe(200);
    expect(await get("/healthz/x")).toBe(403);
  });
});
