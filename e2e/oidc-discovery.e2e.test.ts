// RequestAuthentication without jwks/jwksUri in a REAL Envoy: Weft's OidcDiscovery fetches the
// issuer's /.well-known/openid-configuration from a real local issuer, the rule gets its jwks_uri,
// and Envoy fetches the keys from there and verifies tokens. A second issuer whose discovery
// fails gets the unusable key set: its tokens are refused (401), requests without one pass, and
// the rule carries a warning. A failed refresh keeps what was found; a new jwks_uri is reported.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RequestAuthentication } from "../src/api/security/types.js";
import type { MeshConfig } from "../src/api/types.js";
import { startEnvoy, stopAllEnvoys } from "../src/envoy/envoy-process.js";
import { resourceToJson } from "../src/envoy/readable-json.js";
import { XDS_TYPES } from "../src/envoy/type-urls.js";
import { freePort } from "../src/runner/free-port.js";
import { OidcDiscovery } from "../src/runner/oidc-discovery.js";
import { silentLogger } from "../src/log/logger.js";
import { buildJwtAuthnFilter, jwksClusterName } from "../src/translate/security/jwt.js";
import { httpListener, loadSecurityYaml } from "../src/translate/security/testdata/harness.js";
import { eventually } from "./harness/http.js";

let issuerServer: Server;
let issuer: string;
let key: CryptoKey;
let discoveryUp = true;
let keysPath = "/keys";
let envoyPort: number;
let discovery: OidcDiscovery;
let changes = 0;
let resolved: { config: MeshConfig; issues: { field: string; message: string; severity: string }[] };

const DEAD_ISSUER = "http://127.0.0.1:9/dead"; // nothing listens on port 9

function configOf(yaml: string): MeshConfig {
  return { resources: loadSecurityYaml(yaml).map((resource, i) => ({ resource, source: { file: "ra.yaml", document: i + 1 } })) as unknown as MeshConfig["resources"], issues: [] };
}

beforeAll(async () => {
  const pair = await generateKeyPair("ES256");
  key = pair.privateKey;
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" }] });
  issuerServer = createServer((req, res) => {
    if (req.url === "/realm/.well-known/openid-configuration" && discoveryUp) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer.replace("/realm", "")}${keysPath}` }));
    } else if (req.url === "/keys") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(jwks);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => issuerServer.listen(0, "127.0.0.1", resolve));
  const port = (issuerServer.address() as AddressInfo).port;
  issuer = `http://127.0.0.1:${port}/realm`;

  discovery = new OidcDiscovery({ logger: silentLogger(), onChange: () => changes++, timeoutMs: 2000 });
  const raw = configOf(`apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: oidc, namespace: foo }
spec:
  jwtRules:
  - issuer: ${issuer}
  - issuer: ${DEAD_ISSUER}
`);
  await discovery.prepare(raw);
  resolved = discovery.apply(raw);
  const ra = resolved.config.resources.map((r) => r.resource as unknown as RequestAuthentication);
  envoyPort = await freePort();
  const listener = httpListener({ name: "oidc", port: envoyPort, filters: [buildJwtAuthnFilter(ra)!] });
  const jwksUri = `http://127.0.0.1:${port}/keys`;
  const clusterName = jwksClusterName(jwksUri);
  const bootstrap = JSON.stringify({
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: {
      listeners: [JSON.parse(JSON.stringify(resourceToJson(XDS_TYPES.listener, listener)).replace(/"timeout":\{"seconds":"?(\d+)"?\}/g, '"timeout":"$1s"'))],
      clusters: [{ name: clusterName, type: "STATIC", connect_timeout: "1s", load_assignment: { cluster_name: clusterName, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }] }] } }],
    },
  });
  await startEnvoy({ name: "oidc-discovery", bootstrapYaml: bootstrap });
});

afterAll(async () => {
  discovery?.close();
  await stopAllEnvoys();
  await new Promise((resolve) => issuerServer?.close(resolve));
});

async function token(iss: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss, sub: "alice", iat: now, exp: now + 300 }).setProtectedHeader({ alg: "ES256", kid: "k1" }).sign(key);
}

async function status(headers: Record<string, string> = {}): Promise<number> {
  return (await fetch(`http://127.0.0.1:${envoyPort}/`, { headers, signal: AbortSignal.timeout(10_000) })).status;
}

describe("OpenID Connect discovery (RequestAuthentication without jwks/jwksUri)", () => {
  it("the discovered jwks_uri is used: Envoy verifies the issuer's tokens with the keys found there", async () => {
    const rule = (resolved.config.resources[0]!.resource as unknown as RequestAuthentication).spec.jwtRules![0]!;
    expect(rule.jwksUri).toBe(issuer.replace("/realm", "/keys"));
    // Envoy fetches the remote JWKS asynchronously: poll (bounded) until a valid token passes.
    expect(await eventually(async () => status({ authorization: `Bearer ${await token(issuer)}` }), 200)).toBe(200);
    expect(await status({ authorization: "Bearer garbage" })).toBe(401);
    expect(await status()).toBe(200); // no token: RequestAuthentication alone lets it through
  });

  it("a failed discovery: a warning on the rule, and that issuer's tokens are refused (401)", async () => {
    expect(resolved.issues.map((i) => `${i.severity} ${i.field}`)).toEqual(["warning spec.jwtRules[1].issuer"]);
    expect(resolved.issues[0]!.message).toMatch(/^OpenID Connect discovery of "http:\/\/127\.0\.0\.1:9\/dead" failed: .*tokens of this issuer are refused \(401\)/);
    expect(await status({ authorization: `Bearer ${await token(DEAD_ISSUER)}` })).toBe(401);
  });

  it("a failed refresh keeps the jwks_uri found before (as istiod keeps its keys); a new jwks_uri calls onChange", async () => {
    const raw = configOf(`apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: { name: oidc, namespace: foo }\nspec:\n  jwtRules:\n  - issuer: ${issuer}\n`);
    const jwksUriOf = (config: MeshConfig) => (config.resources[0]!.resource as unknown as RequestAuthentication).spec.jwtRules![0]!.jwksUri;
    discoveryUp = false;
    await discovery.refresh();
    expect(changes).toBe(0);
    expect(jwksUriOf(discovery.apply(raw).config)).toBe(issuer.replace("/realm", "/keys"));
    discoveryUp = true;
    keysPath = "/keys2";
    await discovery.refresh();
    expect(changes).toBe(1);
    const again = discovery.apply(raw);
    expect(jwksUriOf(again.config)).toBe(issuer.replace("/realm", "/keys2"));
    expect(again.issues).toEqual([]);
  });
});
