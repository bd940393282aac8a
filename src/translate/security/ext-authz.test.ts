// AuthorizationPolicy CUSTOM -> shadow RBAC + ext_authz (or a DENY of the rules when the
// provider cannot be used). Goldens: testdata/in/custom-*.yaml with the providers of
// testdata/in/ext-authz-mesh.yaml, outputs in testdata/out (UPDATE_GOLDEN=1); each is accepted
// by `envoy --mode validate`.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { Cluster } from "../../../generated/envoy/config/cluster/v3/cluster.js";
import { Cluster_DiscoveryType } from "../../../generated/envoy/config/cluster/v3/cluster.js";
import type { Listener } from "../../../generated/envoy/config/listener/v3/listener.js";
import { readMeshSettings } from "../../api/mesh-settings.js";
import type { AuthorizationPolicy } from "../../api/security/types.js";
import { buildLoadAssignment, durationMs } from "../../envoy/builders.js";
import { packAny } from "../../envoy/any.js";
import { EXTENSION_TYPES, XDS_TYPES } from "../../envoy/type-urls.js";
import { validateWithEnvoy } from "../../envoy/validate-config.js";
import { buildHttpRbacFilters, buildNetworkRbacFilters, selectPolicies } from "./authorization.js";
import { CUSTOM_FILTER_NAMES, buildCustomHttpFilters, buildCustomNetworkFilters, customAuthorizationProblem, type CustomAuthorizationContext } from "./ext-authz.js";
import { TESTDATA, backendCluster, goldenJson, httpListener, loadCase, loadSecurityYaml, readGolden, tcpListener } from "./testdata/harness.js";

const WORKLOAD = { namespace: "foo", labels: { app: "httpbin" }, rootNamespace: "istio-system" };
const TD = { trustDomain: "cluster.local" };
const AUTHZ_HOST = "ext-authz.foo.svc.cluster.local";

function meshProviders() {
  const file = path.join(TESTDATA, "in", "ext-authz-mesh.yaml");
  const { settings, issues } = readMeshSettings(readFileSync(file, "utf8"), file);
  expect(issues).toEqual([]);
  return settings.authorizationProviders;
}

const CTX: CustomAuthorizationContext = {
  providers: meshProviders(),
  service: (hostname) => (hostname === AUTHZ_HOST ? { hostname, namespace: "foo", ports: [{ number: 8000 }, { number: 9000 }] } : undefined),
};

/** The authorizer's outbound clusters, as a sidecar has them (HTTP/2 for the gRPC port). */
function authorizerClusters(): Cluster[] {
  const cluster = (port: number, http2: boolean): Cluster => ({
    name: `outbound|${port}||${AUTHZ_HOST}`,
    type: Cluster_DiscoveryType.STATIC,
    connectTimeout: durationMs(1000),
    loadAssignment: buildLoadAssignment(`outbound|${port}||${AUTHZ_HOST}`, [{ address: "127.0.0.1", port }]),
    ...(http2 ? { typedExtensionProtocolOptions: { "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": packAny(EXTENSION_TYPES.httpProtocolOptions, { explicitHttpConfig: { http2ProtocolOptions: {} } }) } } : {}),
  });
  return [cluster(8000, false), cluster(9000, true)];
}

function policiesOf(name: string): AuthorizationPolicy[] {
  return selectPolicies(
    loadCase(name).filter((r): r is AuthorizationPolicy => r.kind === "AuthorizationPolicy"),
    WORKLOAD,
  );
}

function build(name: string, protocol: "http" | "tcp"): { listeners: Listener[]; clusters: Cluster[] } {
  const policies = policiesOf(name);
  if (protocol === "http") {
    return { listeners: [httpListener({ name: "inbound", port: 15006, filters: [...buildCustomHttpFilters(policies, CTX, TD), ...buildHttpRbacFilters(policies, TD)] })], clusters: authorizerClusters() };
  }
  const filters = [...buildCustomNetworkFilters(policies, CTX, { ...TD, statPrefix: "inbound_9080" }), ...buildNetworkRbacFilters(policies, { ...TD, statPrefix: "inbound_9080" })];
  return { listeners: [tcpListener({ name: "inbound", port: 15006, filters })], clusters: [...authorizerClusters(), backendCluster(9080)] };
}

describe("CUSTOM goldens", () => {
  for (const c of [
    { name: "custom-http", protocol: "http" },
    { name: "custom-grpc-tcp", protocol: "tcp" },
    { name: "custom-unusable-provider", protocol: "http" },
  ] as const) {
    it(`${c.name}: matches testdata/out/${c.name}.json and Envoy accepts it`, async () => {
      const resources = build(c.name, c.protocol);
      const [actual, expected] = readGolden(c.name, goldenJson(resources));
      expect(actual).toBe(expected);
      const verdict = await validateWithEnvoy({ [XDS_TYPES.listener]: resources.listeners, [XDS_TYPES.cluster]: resources.clusters });
      expect(verdict.output).not.toMatch(/error/i);
      expect(verdict.ok).toBe(true);
    });
  }
});

const custom = (provider: string, extra = "") =>
  loadSecurityYaml(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: c-${provider}, namespace: foo }
spec:
  action: CUSTOM
  provider: { name: ${provider} }
  rules: [{ to: [{ operation: { paths: ["/x"] } }] }]
${extra}`) as AuthorizationPolicy[];

describe("CUSTOM filters", () => {
  it("run first: shadow RBAC, then ext_authz, then the DENY/ALLOW filters", () => {
    const policies = policiesOf("custom-http");
    const names = [...buildCustomHttpFilters(policies, CTX, TD), ...buildHttpRbacFilters(policies, TD)].map((f) => f.name);
    expect(names).toEqual([CUSTOM_FILTER_NAMES.rbac, CUSTOM_FILTER_NAMES.extAuthz, "weft.authz.deny"]);
  });

  it("an HTTP provider adds nothing on a TCP filter chain (Istio ignores it there)", () => {
    expect(buildCustomNetworkFilters(custom("http-authz"), CTX, TD)).toEqual([]);
    expect(buildCustomNetworkFilters(custom("grpc-authz"), CTX, TD).map((f) => f.name)).toEqual([CUSTOM_FILTER_NAMES.rbac, CUSTOM_FILTER_NAMES.extAuthz]);
  });

  it("no CUSTOM policy: no filters and no problem", () => {
    const allow = loadSecurityYaml("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: a, namespace: foo }\nspec: { rules: [{}] }\n") as AuthorizationPolicy[];
    expect(buildCustomHttpFilters(allow, CTX, TD)).toEqual([]);
    expect(customAuthorizationProblem(allow, CTX)).toBeUndefined();
  });

  it("says why a provider cannot be used; its rules then deny (one RBAC DENY filter, no ext_authz)", () => {
    expect(customAuthorizationProblem(custom("opa"), CTX)).toBe('no envoyExtAuthzHttp or envoyExtAuthzGrpc extension provider named "opa" in the mesh settings (known: "http-authz", "grpc-authz")');
    expect(customAuthorizationProblem(custom("zipkin"), CTX)).toMatch(/no envoyExtAuthzHttp or envoyExtAuthzGrpc extension provider named "zipkin"/);
    const noService = { ...CTX, service: () => undefined };
    expect(customAuthorizationProblem(custom("http-authz"), noService)).toBe('extension provider "http-authz": its service "ext-authz.foo.svc.cluster.local" is not in the service registry (a Kubernetes Service or a ServiceEntry host)');
    const otherNamespace = { ...CTX, service: (hostname: string) => ({ hostname, namespace: "bar", ports: [{ number: 9000 }] }) };
    expect(customAuthorizationProblem(custom("grpc-authz"), otherNamespace)).toMatch(/its service "foo\/ext-authz.foo.svc.cluster.local" is not in the service registry/);
    const otherPort = { ...CTX, service: (hostname: string) => ({ hostname, namespace: "foo", ports: [{ number: 80 }] }) };
    expect(customAuthorizationProblem(custom("http-authz"), otherPort)).toBe('extension provider "http-authz": the service ext-authz.foo.svc.cluster.local has no port 8000 (ports: 80)');
    const filters = buildCustomHttpFilters(custom("opa"), CTX, TD);
    expect(filters.map((f) => f.name)).toEqual([CUSTOM_FILTER_NAMES.rbac]);
  });

  it("two different providers for one workload: a problem (Istio allows one), and both policies' rules deny", () => {
    const both = [...custom("http-authz"), ...custom("grpc-authz")];
    expect(customAuthorizationProblem(both, CTX)).toBe('the CUSTOM policies of one workload name different providers ("grpc-authz", "http-authz"); Istio allows one per workload');
    expect(buildCustomHttpFilters(both, CTX, TD).map((f) => f.name)).toEqual([CUSTOM_FILTER_NAMES.rbac]);
  });
});
