// Golden tests for RequestAuthentication -> jwt_authn (and, with an AuthorizationPolicy, the
// RBAC filters after it): Istio YAML in testdata/in/<case>.yaml, a minimal listener (plus the
// JWKS clusters) in testdata/out/<case>.json (regenerate with UPDATE_GOLDEN=1). Every golden is
// also accepted by `envoy --mode validate`.
import { describe, expect, it } from "vitest";
import { Cluster_DiscoveryType } from "../../../generated/envoy/config/cluster/v3/cluster.js";
import { JwtAuthentication } from "../../../generated/envoy/extensions/filters/http/jwt_authn/v3/config.js";
import type { AuthorizationPolicy, RequestAuthentication } from "../../api/security/types.js";
import { unpackAny } from "../../envoy/any.js";
import { EXTENSION_TYPES, XDS_TYPES } from "../../envoy/type-urls.js";
import { validateWithEnvoy } from "../../envoy/validate-config.js";
import { buildHttpRbacFilters, selectPolicies } from "./authorization.js";
import { JWT_AUTHN_FILTER, buildJwksClusters, buildJwtAuthnFilter, jwksClusterFor, jwksClusterName } from "./jwt.js";
import { goldenJson, httpListener, loadCase, readGolden } from "./testdata/harness.js";

const WORKLOAD = { namespace: "foo", labels: { app: "httpbin" }, rootNamespace: "istio-system" };

const CASES = ["jwt-inline-jwks", "jwt-jwks-uri", "jwt-token-locations", "jwt-with-authorization"];

function build(caseName: string) {
  const resources = loadCase(caseName);
  const requestAuthn = selectPolicies(resources.filter((r): r is RequestAuthentication => r.kind === "RequestAuthentication"), WORKLOAD);
  const authz = selectPolicies(resources.filter((r): r is AuthorizationPolicy => r.kind === "AuthorizationPolicy"), WORKLOAD);
  const jwt = buildJwtAuthnFilter(requestAuthn);
  const filters = [...(jwt ? [jwt] : []), ...buildHttpRbacFilters(authz, { trustDomain: "cluster.local" })];
  return { listeners: [httpListener({ name: "inbound", port: 15006, filters })], clusters: buildJwksClusters(requestAuthn) };
}

describe("jwt_authn goldens", () => {
  for (const name of CASES) {
    it(`${name}: matches testdata/out/${name}.json and Envoy accepts it`, async () => {
      const resources = build(name);
      const [actual, expected] = readGolden(name, goldenJson(resources));
      expect(actual).toBe(expected);
      const verdict = await validateWithEnvoy({ [XDS_TYPES.listener]: resources.listeners, [XDS_TYPES.cluster]: resources.clusters });
      expect(verdict.output).not.toMatch(/error/i);
      expect(verdict.ok).toBe(true);
    });
  }
});

describe("buildJwtAuthnFilter", () => {
  it("returns undefined when no JWT rule applies", () => {
    expect(buildJwtAuthnFilter([])).toBeUndefined();
  });

  it("requires any provider's token or none at all (RequestAuthentication rejects only invalid tokens)", () => {
    const filter = buildJwtAuthnFilter(loadCase("jwt-jwks-uri") as RequestAuthentication[])!;
    expect(filter.name).toBe(JWT_AUTHN_FILTER);
    const config = JwtAuthentication.toJSON(unpackAny(EXTENSION_TYPES.jwtAuthentication, filter.typedConfig)!) as { rules: unknown[] };
    expect(config.rules).toEqual([
      {
        match: { prefix: "/" },
        requires: {
          requiresAny: {
            requirements: [
              { providerName: "foo/jwt-remote/jwtRules[0]" },
              { providerName: "foo/jwt-remote/jwtRules[1]" },
              { providerName: "istio-system/jwt-mesh-wide/jwtRules[0]" },
              { allowMissing: {} },
            ],
          },
        },
      },
    ]);
  });
});

describe("JWKS clusters", () => {
  it("names one cluster per scheme, host and port", () => {
    expect(jwksClusterName("https://example.com/a/jwks.json")).toBe("jwks|example.com|443|tls");
    expect(jwksClusterName("https://example.com/b")).toBe("jwks|example.com|443|tls");
    expect(jwksClusterName("http://keys.internal:8080/jwks")).toBe("jwks|keys.internal|8080");
    expect(jwksClusterName("http://[::1]/jwks")).toBe("jwks|::1|80");
  });

  it("buildJwksClusters gives each cluster once, sorted", () => {
    expect(buildJwksClusters(loadCase("jwt-jwks-uri") as RequestAuthentication[]).map((c) => c.name)).toEqual(["jwks|accounts.example.org|443|tls", "jwks|keys.internal|8080"]);
  });

  it("uses DNS for host names and a static address for IPs, TLS only for https", () => {
    const byName = jwksClusterFor("https://example.com/jwks");
    expect(byName.type).toBe(Cluster_DiscoveryType.STRICT_DNS);
    expect(byName.transportSocket?.name).toBe("envoy.transport_sockets.tls");
    const byIp = jwksClusterFor("http://127.0.0.1:9999/jwks");
    expect(byIp.type).toBe(Cluster_DiscoveryType.STATIC);
    expect(byIp.transportSocket).toBeUndefined();
  });
});
