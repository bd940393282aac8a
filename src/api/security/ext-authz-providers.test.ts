// The ext_authz providers of the mesh settings (envoyExtAuthzHttp / envoyExtAuthzGrpc) and the
// warnings for CUSTOM policies whose provider cannot be used.
import { describe, expect, it } from "vitest";
import { readMeshSettings } from "../mesh-settings.js";
import { formatIssue, type MeshConfig } from "../types.js";
import { validateResource, parseDocuments } from "../validate-resource.js";
import { authorizationProviderIssues } from "./ext-authz-providers.js";

function read(yaml: string) {
  const { settings, issues } = readMeshSettings(yaml, "mesh.yaml");
  return { settings, problems: issues.map(formatIssue) };
}

function config(yaml: string): MeshConfig {
  const resources: MeshConfig["resources"] = [];
  for (const { document, value } of parseDocuments(yaml, "policies.yaml").docs) {
    const r = validateResource(value, { file: "policies.yaml", document });
    expect(r.issues.filter((i) => i.severity === "error")).toEqual([]);
    resources.push({ resource: r.resource!, source: { file: "policies.yaml", document } } as MeshConfig["resources"][number]);
  }
  return { resources, issues: [] };
}

describe("mesh settings: ext_authz extension providers", () => {
  it("reads HTTP and gRPC providers as authorizationProviders; telemetry keeps only its own kinds", () => {
    const { settings, problems } = read(`
extensionProviders:
- name: opa
  envoyExtAuthzGrpc: { service: opa.opa.svc.cluster.local, port: 9191, timeout: 250ms, failOpen: true, statusOnError: "503" }
- name: oauth2
  envoyExtAuthzHttp:
    service: oauth2/oauth2-proxy.oauth2.svc.cluster.local
    port: 4180
    includeRequestHeadersInCheck: [authorization, cookie]
    headersToUpstreamOnAllow: [authorization, "x-auth-request-*"]
    headersToDownstreamOnDeny: [content-type, set-cookie]
    includeRequestBodyInCheck: { maxRequestBytes: 4096, allowPartialMessage: true }
- name: zipkin
  zipkin: { service: zipkin.istio-system.svc.cluster.local, port: 9411 }
`);
    expect(problems).toEqual([]);
    expect(settings.authorizationProviders).toEqual([
      { name: "opa", envoyExtAuthzGrpc: { service: "opa.opa.svc.cluster.local", port: 9191, timeoutMs: 250, failOpen: true, statusOnError: 503 } },
      {
        name: "oauth2",
        envoyExtAuthzHttp: {
          service: "oauth2/oauth2-proxy.oauth2.svc.cluster.local",
          port: 4180,
          includeRequestHeadersInCheck: ["authorization", "cookie"],
          headersToUpstreamOnAllow: ["authorization", "x-auth-request-*"],
          headersToDownstreamOnDeny: ["content-type", "set-cookie"],
          includeRequestBodyInCheck: { maxRequestBytes: 4096, allowPartialMessage: true },
        },
      },
    ]);
    expect(settings.telemetry.extensionProviders.map((p) => p.name)).toEqual(["zipkin"]);
  });

  it("reports bad fields against the file and field; the deprecated includeHeadersInCheck is read with a warning", () => {
    const { settings, problems } = read(`
extensionProviders:
- name: bad
  envoyExtAuthzHttp: { service: "a/b/c", port: 70000, statusOnError: "999", pathPrefix: check, timeout: 5, includeRequestHeadersInCheck: ["bad header"] }
- name: old
  envoyExtAuthzHttp: { service: authz.foo.svc.cluster.local, port: 80, includeHeadersInCheck: [x-a] }
- name: both
  envoyExtAuthzGrpc: { service: authz.foo.svc.cluster.local, port: 80 }
  envoyExtAuthzHttp: { service: authz.foo.svc.cluster.local, port: 80 }
`);
    expect(problems).toEqual([
      expect.stringContaining("extensionProviders[2]: expected at most one of the provider kinds"),
      'mesh.yaml: document 1: MeshConfig: extensionProviders[0].envoyExtAuthzHttp.service: expected "[<namespace>/]<hostname>", found the string "a/b/c"',
      "mesh.yaml: document 1: MeshConfig: extensionProviders[0].envoyExtAuthzHttp.port: expected an integer from 1 to 65535, found 70000",
      'mesh.yaml: document 1: MeshConfig: extensionProviders[0].envoyExtAuthzHttp.timeout: expected a duration such as "1s", "250ms", "1.5s", "2m" or "1h", found 5 (add a unit, e.g. "5s")',
      'mesh.yaml: document 1: MeshConfig: extensionProviders[0].envoyExtAuthzHttp.statusOnError: expected an HTTP status code as a string such as "403" or "503", found the string "999"',
      'mesh.yaml: document 1: MeshConfig: extensionProviders[0].envoyExtAuthzHttp.pathPrefix: expected a path starting with "/" such as "/check", found the string "check"',
      'mesh.yaml: document 1: MeshConfig: extensionProviders[0].envoyExtAuthzHttp.includeRequestHeadersInCheck[0]: expected a header name, or a pattern "x-prefix-*" / "*-suffix", found the string "bad header"',
      "mesh.yaml: document 1: MeshConfig: extensionProviders[1].envoyExtAuthzHttp.includeHeadersInCheck: is deprecated in Istio; use includeRequestHeadersInCheck (read the same way here)",
    ]);
    expect(settings.authorizationProviders).toEqual([]); // errors: the file is not used
  });
});

describe("authorizationProviderIssues", () => {
  const services = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: opa, namespace: opa }
spec: { hosts: [opa.opa.svc.cluster.local], location: MESH_INTERNAL, resolution: STATIC, ports: [{ number: 9191, name: grpc, protocol: GRPC }], endpoints: [{ address: 10.0.0.9 }] }
`;
  const policy = (name: string, provider: string) => `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: foo }
spec: { action: CUSTOM, provider: { name: ${provider} }, rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }] }
`;
  const { settings } = read("extensionProviders:\n- name: opa\n  envoyExtAuthzGrpc: { service: opa.opa.svc.cluster.local, port: 9191 }\n- name: far\n  envoyExtAuthzGrpc: { service: far.example.com, port: 1 }\n");

  it("is quiet when the provider and its service exist", () => {
    expect(authorizationProviderIssues(config(services + policy("ok", "opa")), settings.authorizationProviders)).toEqual([]);
  });

  it("warns on the policy's provider.name when the provider or its service is missing", () => {
    const found = authorizationProviderIssues(config(services + policy("unknown", "nope") + policy("no-service", "far")), settings.authorizationProviders);
    expect(found.map((i) => i.severity)).toEqual(["warning", "warning"]);
    expect(found.map(formatIssue)).toEqual([
      'policies.yaml: document 2: AuthorizationPolicy/foo/unknown: spec.provider.name: no envoyExtAuthzHttp or envoyExtAuthzGrpc extension provider named "nope" in the mesh settings (known: "opa", "far"); the requests its rules match are denied until it can be used (Istio\'s behaviour)',
      'policies.yaml: document 3: AuthorizationPolicy/foo/no-service: spec.provider.name: extension provider "far": its service "far.example.com" is not in the service registry (a Kubernetes Service or a ServiceEntry host); the requests its rules match are denied until it can be used (Istio\'s behaviour)',
    ]);
  });
});
