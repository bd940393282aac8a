// Golden tests for AuthorizationPolicy -> RBAC filters: Istio YAML in testdata/in/<case>.yaml,
// the filters wrapped in a minimal listener in testdata/out/<case>.json (regenerate with
// UPDATE_GOLDEN=1). Every golden is also accepted by `envoy --mode validate`.
import { describe, expect, it } from "vitest";
import type { Cluster } from "../../../generated/envoy/config/cluster/v3/cluster.js";
import type { Listener } from "../../../generated/envoy/config/listener/v3/listener.js";
import { RBAC } from "../../../generated/envoy/config/rbac/v3/rbac.js";
import type { AuthorizationPolicy } from "../../api/security/types.js";
import { unpackAny } from "../../envoy/any.js";
import { EXTENSION_TYPES, XDS_TYPES } from "../../envoy/type-urls.js";
import { validateWithEnvoy } from "../../envoy/validate-config.js";
import { RBAC_FILTER_NAMES, buildHttpRbacFilters, buildNetworkRbacFilters, selectPolicies } from "./authorization.js";
import { backendCluster, goldenJson, httpListener, loadCase, loadSecurityYaml, readGolden, tcpListener } from "./testdata/harness.js";

const WORKLOAD = { namespace: "foo", labels: { app: "httpbin", version: "v1" }, rootNamespace: "istio-system" };

function policiesOf(caseName: string): AuthorizationPolicy[] {
  return loadCase(caseName).filter((r): r is AuthorizationPolicy => r.kind === "AuthorizationPolicy");
}

const CASES: { name: string; protocol: "http" | "tcp"; trustDomain?: string }[] = [
  { name: "allow-principal-path-method", protocol: "http" },
  { name: "deny-namespace-header", protocol: "http" },
  { name: "default-deny", protocol: "http" },
  { name: "allow-nothing", protocol: "http" },
  { name: "audit", protocol: "http" },
  { name: "ip-blocks", protocol: "http" },
  { name: "when-claims", protocol: "http", trustDomain: "example.org" },
  { name: "tcp", protocol: "tcp" },
  { name: "service-accounts", protocol: "http", trustDomain: "mesh.example" },
  { name: "path-templates", protocol: "http" },
];

function build(name: string, protocol: "http" | "tcp", trustDomain = "cluster.local"): { listeners: Listener[]; clusters: Cluster[] } {
  const policies = selectPolicies(policiesOf(name), WORKLOAD);
  if (protocol === "http") return { listeners: [httpListener({ name: "inbound", port: 15006, filters: buildHttpRbacFilters(policies, { trustDomain }) })], clusters: [] };
  return { listeners: [tcpListener({ name: "inbound", port: 15006, filters: buildNetworkRbacFilters(policies, { trustDomain }) })], clusters: [backendCluster(9000)] };
}

describe("authorization goldens", () => {
  for (const c of CASES) {
    it(`${c.name}: matches testdata/out/${c.name}.json and Envoy accepts it`, async () => {
      const resources = build(c.name, c.protocol, c.trustDomain);
      const [actual, expected] = readGolden(c.name, goldenJson(resources));
      expect(actual).toBe(expected);
      const verdict = await validateWithEnvoy({ [XDS_TYPES.listener]: resources.listeners, [XDS_TYPES.cluster]: resources.clusters });
      expect(verdict.output).not.toMatch(/error/i);
      expect(verdict.ok).toBe(true);
    });
  }

  it("is deterministic whatever the input order", () => {
    const policies = policiesOf("deny-namespace-header");
    const a = goldenJson({ listeners: [httpListener({ name: "x", port: 1, filters: buildHttpRbacFilters(policies, { trustDomain: "td" }) })], clusters: [] });
    const b = goldenJson({ listeners: [httpListener({ name: "x", port: 1, filters: buildHttpRbacFilters([...policies].reverse(), { trustDomain: "td" }) })], clusters: [] });
    expect(a).toBe(b);
  });
});

/** Envoy's view of an RBAC config (defaults left out), as JSON. */
interface RbacJson {
  action?: string;
  policies?: Record<string, { permissions?: unknown[]; principals?: unknown[] }>;
}
const rbacJson = (rules: RBAC | undefined) => RBAC.toJSON(rules!) as RbacJson;

/** The RBAC configs of the HTTP filters, by filter name. */
function httpRbac(policies: AuthorizationPolicy[], trustDomain = "cluster.local"): Record<string, RbacJson> {
  return Object.fromEntries(buildHttpRbacFilters(policies, { trustDomain }).map((f) => [f.name, rbacJson(unpackAny(EXTENSION_TYPES.httpRbac, f.typedConfig)!.rules)]));
}

function networkRbac(policies: AuthorizationPolicy[]): Record<string, RbacJson> {
  return Object.fromEntries(buildNetworkRbacFilters(policies, { trustDomain: "cluster.local" }).map((f) => [f.name, rbacJson(unpackAny(EXTENSION_TYPES.networkRbac, f.typedConfig)!.rules)]));
}

const policy = (yaml: string) => loadSecurityYaml(yaml) as AuthorizationPolicy[];

describe("buildHttpRbacFilters", () => {
  it("returns no filters without policies", () => {
    expect(buildHttpRbacFilters([], { trustDomain: "cluster.local" })).toEqual([]);
  });

  it("orders the filters AUDIT, DENY, ALLOW, whatever order the policies come in", () => {
    const filters = buildHttpRbacFilters(policiesOf("audit").concat(policiesOf("default-deny")), { trustDomain: "cluster.local" });
    expect(filters.map((f) => f.name)).toEqual([RBAC_FILTER_NAMES.AUDIT, RBAC_FILTER_NAMES.DENY, RBAC_FILTER_NAMES.ALLOW]);
  });

  it("emits an ALLOW filter without policies for an ALLOW policy without rules (deny everything)", () => {
    const rbac = httpRbac(policiesOf("allow-nothing"));
    expect(rbac[RBAC_FILTER_NAMES.ALLOW]).toEqual({}); // action ALLOW is the default; no policies
  });

  it("leaves out a DENY policy without rules: it matches nothing", () => {
    const policies = policy("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: d, namespace: foo }\nspec: { action: DENY }\n");
    expect(buildHttpRbacFilters(policies, { trustDomain: "cluster.local" })).toEqual([]);
  });

  it('maps the trust domain "cluster.local" in principals to the mesh trust domain, and keeps others', () => {
    const policies = policy(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: foo }
spec:
  rules:
  - from:
    - source: { principals: ["cluster.local/ns/a/sa/b", "other.td/ns/a/sa/b", "*"] }
`);
    const allow = httpRbac(policies, "example.org")[RBAC_FILTER_NAMES.ALLOW]!;
    expect(allow.policies!["foo/p/rules[0]"]!.principals).toEqual([
      {
        orIds: {
          ids: [
            { authenticated: { principalName: { exact: "spiffe://example.org/ns/a/sa/b" } } },
            { authenticated: { principalName: { exact: "spiffe://other.td/ns/a/sa/b" } } },
            { authenticated: { principalName: { safeRegex: { regex: ".+" } } } },
          ],
        },
      },
    ]);
  });

  it("a when condition on source.trustDomain matches as source.trustDomains does (Istio: the same attribute)", () => {
    const rules = (source: string) =>
      httpRbac(policy(`apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: p, namespace: foo }\nspec:\n  rules:\n  - ${source}\n`), "example.org")[RBAC_FILTER_NAMES.ALLOW]!.policies!["foo/p/rules[0]"]!.principals;
    const byCondition = rules("when: [{ key: source.trustDomain, values: [cluster.local, partner.org], notValues: [legacy.org] }]");
    const bySource = rules("from: [{ source: { trustDomains: [cluster.local, partner.org], notTrustDomains: [legacy.org] } }]");
    expect(JSON.stringify(byCondition)).toContain("spiffe://example\\\\.org/");
    expect(byCondition).toEqual(bySource);
  });

  it("leaves CUSTOM policies to ext-authz.ts: they add no RBAC filter here, and an ALLOW beside them still counts", () => {
    const custom = { ...policiesOf("allow-nothing")[0]!, spec: { action: "CUSTOM" as const, provider: { name: "opa" }, rules: [{}] } };
    expect(buildHttpRbacFilters([custom], { trustDomain: "cluster.local" })).toEqual([]);
    expect(Object.keys(httpRbac([custom, ...policiesOf("allow-nothing")]))).toEqual([RBAC_FILTER_NAMES.ALLOW]);
  });
});

describe("buildNetworkRbacFilters: HTTP-only attributes on TCP", () => {
  it("drops ALLOW rules that use HTTP-only attributes, and keeps the others", () => {
    const allow = networkRbac(policiesOf("tcp"))[RBAC_FILTER_NAMES.ALLOW]!;
    expect(Object.keys(allow.policies!)).toEqual(["foo/tcp-allow/rules[0]"]);
  });

  it("keeps DENY rules without their HTTP-only attributes (missing attributes match)", () => {
    const deny = networkRbac(policiesOf("tcp"))[RBAC_FILTER_NAMES.DENY]!;
    expect(deny.policies!["foo/tcp-deny/rules[0]"]).toEqual({ permissions: [{ destinationPort: 9001 }], principals: [{ any: true }] });
    expect(deny.policies!["foo/tcp-deny/rules[1]"]).toEqual({
      permissions: [{ destinationPort: 9003 }],
      principals: [{ notId: { authenticated: { principalName: { prefix: "spiffe://cluster.local/ns/foo/" } } } }],
    });
  });

  it("a DENY rule with only HTTP-only attributes denies every connection", () => {
    const policies = policy(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: d, namespace: foo }
spec:
  action: DENY
  rules:
  - to:
    - operation: { methods: ["GET"] }
`);
    expect(networkRbac(policies)[RBAC_FILTER_NAMES.DENY]!.policies!["foo/d/rules[0]"]).toEqual({ permissions: [{ any: true }], principals: [{ any: true }] });
  });

  it("an ALLOW policy whose rules all use HTTP-only attributes denies every connection", () => {
    const policies = policy(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: a, namespace: foo }
spec:
  rules:
  - to:
    - operation: { paths: ["/"] }
`);
    expect(networkRbac(policies)[RBAC_FILTER_NAMES.ALLOW]).toEqual({}); // action ALLOW (the default), no policies
  });
});

describe("requestPrincipals", () => {
  const principalsOf = (value: string) => {
    const policies = policy(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: foo }
spec:
  rules:
  - from:
    - source: { requestPrincipals: ["${value}"] }
`);
    return httpRbac(policies)[RBAC_FILTER_NAMES.ALLOW]!.policies!["foo/p/rules[0]"]!.principals![0];
  };
  const iss = (value: object) => ({ metadata: { filter: "envoy.filters.http.jwt_authn", path: [{ key: "payload" }, { key: "iss" }], value } });
  const sub = (value: object) => ({ metadata: { filter: "envoy.filters.http.jwt_authn", path: [{ key: "payload" }, { key: "sub" }], value } });
  const exact = (s: string) => ({ stringMatch: { exact: s } });

  it('tries every "/" as the end of the issuer (issuers contain "/" too)', () => {
    expect(principalsOf("https://example.com/tenant/alice")).toEqual({
      orIds: {
        ids: [
          { andIds: { ids: [iss(exact("https://example.com")), sub(exact("tenant/alice"))] } },
          { andIds: { ids: [iss(exact("https://example.com/tenant")), sub(exact("alice"))] } },
        ],
      },
    });
  });

  it('"*" requires a verified token (an issuer in the payload)', () => {
    expect(principalsOf("*")).toEqual(iss({ presentMatch: true }));
  });
});

describe("selectPolicies", () => {
  const all = policy(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: mesh-wide, namespace: istio-system }
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: mesh-v1, namespace: istio-system }
spec: { selector: { matchLabels: { version: v1 } } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ns-wide, namespace: foo }
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: for-httpbin, namespace: foo }
spec: { selector: { matchLabels: { app: httpbin } } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: for-other, namespace: foo }
spec: { selector: { matchLabels: { app: other } } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: other-namespace, namespace: bar }
spec: {}
`);
  const names = (ps: AuthorizationPolicy[]) => ps.map((p) => `${p.metadata.namespace}/${p.metadata.name}`);

  it("takes the workload's namespace and the root namespace, by selector, sorted", () => {
    expect(names(selectPolicies(all, WORKLOAD))).toEqual(["foo/for-httpbin", "foo/ns-wide", "istio-system/mesh-v1", "istio-system/mesh-wide"]);
  });

  it("matches every label of the selector", () => {
    expect(names(selectPolicies(all, { ...WORKLOAD, labels: { app: "httpbin", version: "v2" } }))).toEqual(["foo/for-httpbin", "foo/ns-wide", "istio-system/mesh-wide"]);
  });

  it("a workload in the root namespace gets only its policies", () => {
    expect(names(selectPolicies(all, { namespace: "istio-system", labels: {}, rootNamespace: "istio-system" }))).toEqual(["istio-system/mesh-wide"]);
  });
});
