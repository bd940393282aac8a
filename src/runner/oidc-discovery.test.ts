// OidcDiscovery's bounds and failures, with an injected fetch (the real-Envoy path is
// e2e/oidc-discovery.e2e.test.ts).
import { describe, expect, it } from "vitest";
import { silentLogger } from "../log/logger.js";
import { MAX_RESPONSE_BYTES, OidcDiscovery, UNUSABLE_JWKS, discoveryUrl } from "./oidc-discovery.js";
import type { MeshConfig } from "../api/types.js";

const config = (...issuers: string[]): MeshConfig =>
  ({
    resources: [{ resource: { apiVersion: "security.istio.io/v1", kind: "RequestAuthentication", metadata: { name: "r", namespace: "foo" }, spec: { jwtRules: issuers.map((issuer) => ({ issuer })) } }, source: { file: "ra.yaml", document: 1 } }],
    issues: [],
  }) as unknown as MeshConfig;

async function discoverWith(fetchImpl: typeof fetch, timeoutMs = 1000) {
  const d = new OidcDiscovery({ logger: silentLogger(), onChange: () => {}, fetch: fetchImpl, timeoutMs });
  try {
    const c = config("https://issuer.example.com/");
    await d.prepare(c);
    return d.apply(c);
  } finally {
    d.close();
  }
}

describe("OidcDiscovery", () => {
  it("asks <issuer>/.well-known/openid-configuration (one slash)", () => {
    expect(discoveryUrl("https://issuer.example.com/")).toBe("https://issuer.example.com/.well-known/openid-configuration");
  });

  it("uses jwks_uri; rules with jwks or jwksUri are left alone", async () => {
    const out = await discoverWith(async () => new Response(JSON.stringify({ jwks_uri: "https://issuer.example.com/keys" })));
    expect((out.config.resources[0]!.resource as unknown as { spec: { jwtRules: { jwksUri?: string }[] } }).spec.jwtRules[0]!.jwksUri).toBe("https://issuer.example.com/keys");
    expect(out.issues).toEqual([]);
  });

  for (const [what, fetchImpl, message] of [
    ["a non-200 answer", async () => new Response("no", { status: 500 }), /answered HTTP 500/],
    ["a body that is not JSON", async () => new Response("<html>"), /not JSON/],
    ["no jwks_uri", async () => new Response("{}"), /no jwks_uri string/],
    ["a jwks_uri that is not http(s)", async () => new Response(JSON.stringify({ jwks_uri: "file:///etc/passwd" })), /is not an http\(s\) URL/],
    ["a body larger than the bound", async () => new Response("x".repeat(MAX_RESPONSE_BYTES + 1)), /larger than 262144 bytes/],
    ["no answer in time", (_url: unknown, init?: RequestInit) => new Promise<Response>((_, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason))), /no answer within 50 ms/],
  ] as const) {
    it(`${what}: the unusable key set and a warning naming the issuer`, async () => {
      const out = await discoverWith(fetchImpl as unknown as typeof fetch, 50);
      const rule = (out.config.resources[0]!.resource as unknown as { spec: { jwtRules: { jwks?: string }[] } }).spec.jwtRules[0]!;
      expect(rule.jwks).toBe(UNUSABLE_JWKS);
      expect(out.issues).toHaveLength(1);
      expect(out.issues[0]!.message).toMatch(/^OpenID Connect discovery of "https:\/\/issuer.example.com\/" failed: /);
      expect(out.issues[0]!.message).toMatch(message);
    });
  }
});
