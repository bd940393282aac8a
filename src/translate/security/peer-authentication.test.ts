import { describe, expect, it } from "vitest";
import type { PeerAuthentication } from "../../api/security/types.js";
import { effectiveMtlsMode } from "./peer-authentication.js";
import { loadSecurityYaml } from "./testdata/harness.js";

const peer = (yaml: string) => loadSecurityYaml(yaml) as PeerAuthentication[];

function policy(name: string, namespace: string, spec: string): string {
  return `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec: ${spec}\n---\n`;
}

const WORKLOAD = { namespace: "foo", labels: { app: "finance" }, rootNamespace: "istio-system" };

describe("effectiveMtlsMode", () => {
  it("is PERMISSIVE without policies", () => {
    expect(effectiveMtlsMode([], WORKLOAD)).toBe("PERMISSIVE");
    expect(effectiveMtlsMode([], { ...WORKLOAD, port: 8080 })).toBe("PERMISSIVE");
  });

  it("takes the mesh policy (root namespace, no selector)", () => {
    expect(effectiveMtlsMode(peer(policy("default", "istio-system", "{ mtls: { mode: STRICT } }")), WORKLOAD)).toBe("STRICT");
  });

  it("ignores policies of other namespaces, and root-namespace policies with a selector for other namespaces", () => {
    const policies = peer(policy("default", "bar", "{ mtls: { mode: STRICT } }") + policy("finance", "istio-system", "{ selector: { matchLabels: { app: finance } }, mtls: { mode: DISABLE } }"));
    expect(effectiveMtlsMode(policies, WORKLOAD)).toBe("PERMISSIVE");
  });

  it("namespace policy beats mesh policy; workload policy beats both", () => {
    const mesh = policy("default", "istio-system", "{ mtls: { mode: STRICT } }");
    const ns = policy("default", "foo", "{ mtls: { mode: DISABLE } }");
    const workload = policy("finance", "foo", "{ selector: { matchLabels: { app: finance } }, mtls: { mode: STRICT } }");
    expect(effectiveMtlsMode(peer(mesh + ns), WORKLOAD)).toBe("DISABLE");
    expect(effectiveMtlsMode(peer(mesh + ns + workload), WORKLOAD)).toBe("STRICT");
    expect(effectiveMtlsMode(peer(mesh + ns + workload), { ...WORKLOAD, labels: { app: "other" } })).toBe("DISABLE");
  });

  it("UNSET (or no mtls) inherits from the level above", () => {
    const mesh = policy("default", "istio-system", "{ mtls: { mode: STRICT } }");
    const ns = policy("default", "foo", "{ mtls: { mode: UNSET } }");
    const workload = policy("finance", "foo", "{ selector: { matchLabels: { app: finance } } }");
    expect(effectiveMtlsMode(peer(mesh + ns + workload), WORKLOAD)).toBe("STRICT");
    expect(effectiveMtlsMode(peer(policy("default", "istio-system", "{ mtls: { mode: UNSET } }")), WORKLOAD)).toBe("PERMISSIVE");
  });

  it("portLevelMtls overrides the workload mode for its port only; UNSET there inherits", () => {
    const policies = peer(
      policy("default", "foo", "{ mtls: { mode: PERMISSIVE } }") +
        policy("finance", "foo", "{ selector: { matchLabels: { app: finance } }, mtls: { mode: STRICT }, portLevelMtls: { 8080: { mode: DISABLE }, 9090: { mode: UNSET } } }"),
    );
    expect(effectiveMtlsMode(policies, { ...WORKLOAD, port: 8080 })).toBe("DISABLE");
    expect(effectiveMtlsMode(policies, { ...WORKLOAD, port: 9090 })).toBe("STRICT");
    expect(effectiveMtlsMode(policies, { ...WORKLOAD, port: 80 })).toBe("STRICT");
    expect(effectiveMtlsMode(policies, WORKLOAD)).toBe("STRICT");
  });

  it("a port override applies over an inherited mode (mtls UNSET at the workload)", () => {
    const policies = peer(
      policy("default", "istio-system", "{ mtls: { mode: STRICT } }") +
        policy("finance", "foo", "{ selector: { matchLabels: { app: finance } }, mtls: { mode: UNSET }, portLevelMtls: { 8080: { mode: DISABLE } } }"),
    );
    expect(effectiveMtlsMode(policies, { ...WORKLOAD, port: 8080 })).toBe("DISABLE");
    expect(effectiveMtlsMode(policies, { ...WORKLOAD, port: 8081 })).toBe("STRICT");
  });

  it("picks the first policy by name when a level has several", () => {
    const policies = peer(policy("zz", "foo", "{ mtls: { mode: DISABLE } }") + policy("aa", "foo", "{ mtls: { mode: STRICT } }"));
    expect(effectiveMtlsMode(policies, WORKLOAD)).toBe("STRICT");
  });

  it("in the root namespace, the namespace policy is the mesh policy", () => {
    expect(effectiveMtlsMode(peer(policy("default", "istio-system", "{ mtls: { mode: DISABLE } }")), { namespace: "istio-system", labels: {}, rootNamespace: "istio-system" })).toBe("DISABLE");
  });
});
