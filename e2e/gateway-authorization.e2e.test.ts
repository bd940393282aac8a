// AuthorizationPolicy and RequestAuthentication on an ingress gateway with real Envoy, as
// Istio applies them (istio.io's "Ingress Gateway" authorization and JWT tasks): policies in the
// gateway's namespace whose selector matches its labels run on the gateway's HTTP listeners.
// No pods: the gateway runs on a loopback port picked free.
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../src/runner/free-port.js";
import { eventually, httpGet } from "./harness/http.js";
import { TestMesh } from "./harness/mesh.js";
import { startUpstream, type Upstream } from "./harness/upstream.js";
import { webBehindGateway } from "./harness/web-gateway.js";

const ISSUER = "https://issuer.example.com";

describe("AuthorizationPolicy and RequestAuthentication on an ingress gateway (real Envoy)", () => {
  let mesh: TestMesh;
  let upstream: Upstream;
  let gatewayPort: number;
  let key: CryptoKey;
  let jwks: string;

  const registry = () => webBehindGateway({ upstreamPort: upstream.port, gatewayPort, gatewayNamespace: "istio-system" });

  const denyAdmin = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  action: DENY
  rules:
  - to: [{ operation: { paths: ["/admin", "/admin/*"] } }]
---
`;

  /** A DENY policy that selects another workload: must not touch the gateway. */
  const denyElsewhere = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-all-elsewhere, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: egressgateway } }
  action: DENY
  rules: [{}]
---
`;

  const requireJwt = () => `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  jwtRules:
  - issuer: ${ISSUER}
    jwks: '${jwks}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: require-jwt, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  action: ALLOW
  rules:
  - from: [{ source: { requestPrincipals: ["${ISSUER}/*"] } }]
---
`;

  const apply = (yaml: string) => mesh.applyValid(yaml);
  const get = (path: string, headers: Record<string, string> = {}) =>
    httpGet(`http://127.0.0.1:${gatewayPort}${path}`, { headers: { host: "web.example.com", ...headers }, timeoutMs: 5000 });
  const token = (key: CryptoKey, iss = ISSUER) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss, sub: "alice", iat: now, exp: now + 300 }).setProtectedHeader({ alg: "ES256", kid: "k1" }).sign(key);
  };

  beforeAll(async () => {
    const pair = await generateKeyPair("ES256");
    key = pair.privateKey;
    jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" }] });
    upstream = await startUpstream("web");
    gatewayPort = await freePort();
    mesh = await TestMesh.start();
    await apply(registry());
    await mesh.startProxy({ name: "ingressgateway", namespace: "istio-system", type: "router", labels: { istio: "ingressgateway" } });
  });

  afterAll(async () => {
    await mesh?.close();
    await upstream?.close();
  });

  it("a DENY policy selecting the gateway refuses its paths with 403; others pass, and a policy for another workload changes nothing", async () => {
    expect((await get("/admin")).status).toBe(200);
    await apply(registry() + denyElsewhere + denyAdmin);
    expect(await eventually(async () => (await get("/admin")).status, 403)).toBe(403);
    expect((await get("/admin/users")).status).toBe(403);
    const ok = await get("/products");
    expect(ok.status).toBe(200);
    expect(ok.headers["x-upstream"]).toBe("web");
    // Removing the policy opens the path again.
    await apply(registry() + denyElsewhere);
    expect(await eventually(async () => (await get("/admin")).status, 200)).toBe(200);
  });

  it("RequestAuthentication + ALLOW requestPrincipals: no token 403, a token from an unknown key 401, a valid token 200", async () => {
    await apply(registry() + requireJwt());
    expect(await eventually(async () => (await get("/")).status, 403)).toBe(403);
    const other = (await generateKeyPair("ES256")).privateKey;
    expect((await get("/", { authorization: `Bearer ${await token(other)}` })).status).toBe(401);
    const ok = await get("/", { authorization: `Bearer ${await token(key)}` });
    expect(ok.status).toBe(200);
    expect(ok.headers["x-upstream"]).toBe("web");
  });
});
