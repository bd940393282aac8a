import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ValidationIssue } from "../types.js";
import { parseDocuments, validateResource as validateSecurityResource } from "../validate-resource.js";

const TESTDATA = join(import.meta.dirname, "testdata");

function readFixture(relative: string) {
  const file = join(TESTDATA, relative);
  return { ...parseDocuments(readFileSync(file, "utf8"), file), file };
}

/** "[severity] field: message" for each issue of each document of a fixture. */
function fixtureProblems(relative: string): string[][] {
  const { docs, issues, file } = readFixture(relative);
  expect(issues).toEqual([]);
  return docs.map(({ document, value }) => problems(validateSecurityResource(value, { file, document })));
}

function problems(result: { issues: ValidationIssue[] }): string[] {
  return result.issues.map((i) => `${i.severity === "warning" ? "[warning] " : ""}${i.field}: ${i.message}`);
}

function check(value: unknown) {
  return validateSecurityResource(value, { file: "test.yaml", document: 1 });
}

function resource(kind: string, spec: unknown, metadata: Record<string, unknown> = { name: "test", namespace: "foo" }, apiVersion = "security.istio.io/v1"): Record<string, unknown> {
  return { apiVersion, kind, metadata, spec };
}

const authz = (spec: unknown) => resource("AuthorizationPolicy", spec);
const rule = (r: unknown) => authz({ rules: [r] });
const requestAuthn = (jwtRule: unknown) => resource("RequestAuthentication", { jwtRules: [jwtRule] });
const JWKS = '{"keys":[{"kty":"EC","x":"lh6DTfDxLMuwvlH3DKWQv-Sw806U1UXTN8KfUViTQXE","y":"ljLidnZwq1AJdGz9-hYnJhAhkKUOyugUfMmVaXjBZLk","crv":"P-256"}]}';

describe("validateSecurityResource: the valid fixtures", () => {
  const files = readdirSync(join(TESTDATA, "valid")).sort();

  it.each(files)("accepts every document in valid/%s", (name) => {
    const { docs, issues, file } = readFixture(`valid/${name}`);
    expect(issues).toEqual([]);
    for (const { document, value } of docs) {
      const result = validateSecurityResource(value, { file, document });
      expect(problems(result)).toEqual([]);
      expect(result.resource).toBeDefined();
    }
  });

  it("names the file, document and resource in every issue", () => {
    const { docs, file } = readFixture("invalid/peer-authentication.yaml");
    const result = validateSecurityResource(docs[0]!.value, { file, document: docs[0]!.document });
    expect(result.issues[0]).toEqual({
      file,
      document: 1,
      resource: "PeerAuthentication/foo/default",
      field: "spec.mtls.mode",
      message: 'expected one of "UNSET", "DISABLE", "PERMISSIVE", "STRICT", found the string "strict" (values are case-sensitive: write "STRICT")',
      severity: "error",
    });
  });

  it('fills in namespace "default", keeps the spec, and reads v1beta1 too', () => {
    const result = check(resource("PeerAuthentication", { mtls: { mode: "STRICT" } }, { name: "p", uid: "1" }, "security.istio.io/v1beta1"));
    expect(problems(result)).toEqual([]);
    expect(result.resource).toEqual({ apiVersion: "security.istio.io/v1beta1", kind: "PeerAuthentication", metadata: { name: "p", namespace: "default" }, spec: { mtls: { mode: "STRICT" } } });
  });

  it("accepts a resource without spec (an AuthorizationPolicy that allows nothing)", () => {
    const result = check({ apiVersion: "security.istio.io/v1", kind: "AuthorizationPolicy", metadata: { name: "allow-nothing" } });
    expect(problems(result)).toEqual([]);
    expect(result.resource?.spec).toEqual({});
  });
});

describe("validateSecurityResource: the envelope", () => {
  it("ignores other API groups with a warning", () => {
    const result = check(resource("Deployment", {}, { name: "x" }, "apps/v1"));
    expect(result.resource).toBeUndefined();
    expect(problems(result)).toEqual(['[warning] apiVersion: ignored: Weft reads only networking.istio.io, security.istio.io and telemetry.istio.io resources, found apiVersion "apps/v1" (kind Deployment)']);
  });

  it("rejects unknown versions and suggests the kind for a typo", () => {
    expect(problems(check(resource("AuthorisationPolicy", {}, { name: "x" }, "security.istio.io/v2")))).toEqual([
      'apiVersion: expected one of security.istio.io/v1, security.istio.io/v1beta1, found "security.istio.io/v2"',
      'kind: unknown kind "AuthorisationPolicy" (did you mean "AuthorizationPolicy"?); expected one of PeerAuthentication, AuthorizationPolicy, RequestAuthentication',
    ]);
  });
});

describe("PeerAuthentication", () => {
  it("reports enum, port and selector problems", () => {
    expect(fixtureProblems("invalid/peer-authentication.yaml")).toEqual([
      [
        'spec.mtls.mode: expected one of "UNSET", "DISABLE", "PERMISSIVE", "STRICT", found the string "strict" (values are case-sensitive: write "STRICT")',
        'spec.portLevelMtls["0"]: expected a port number from 1 to 65535 as the key, found the string "0"',
        'spec.portLevelMtls["8080"].mode: required field is missing: expected one of UNSET, DISABLE, PERMISSIVE, STRICT',
        "spec.portLevelMtls: applies only to a policy with a selector; a namespace-wide or mesh-wide PeerAuthentication cannot set port-level modes (add selector.matchLabels, or move the ports to a workload policy)",
      ],
    ]);
  });

  it("checks selector labels", () => {
    expect(problems(check(resource("PeerAuthentication", { selector: { matchLabels: { "bad key!": "x", app: 1 } } })))).toEqual([
      'spec.selector.matchLabels["bad key!"]: expected a label name such as "app" or "app.kubernetes.io/name", found the string "bad key!"',
      'spec.selector.matchLabels.app: expected a string value, found 1 (quote it: "1")',
    ]);
  });
});

describe("AuthorizationPolicy", () => {
  it("reports every problem of the invalid fixture", () => {
    const [broken, unsupported, customWithoutProvider, providerWithoutName, denyWithProvider] = fixtureProblems("invalid/authorization-policy.yaml");
    expect(broken).toEqual([
      'spec.action: expected one of "ALLOW", "DENY", "AUDIT", "CUSTOM", found the string "allow" (values are case-sensitive: write "ALLOW")',
      'spec.rules[0].from[0].source.principals[0]: expected "<trust domain>/ns/<namespace>/sa/<service account>" such as "cluster.local/ns/default/sa/productpage" (without "spiffe://"), found the string "spiffe://cluster.local/ns/a/sa/b"',
      'spec.rules[0].from[0].source.principals[1]: expected "<trust domain>/ns/<namespace>/sa/<service account>" such as "cluster.local/ns/default/sa/productpage", or a wildcard form of one, found the string "sleep"',
      'spec.rules[0].from[0].source.principals[2]: expected a "*" only as the whole value (any value), at the start ("*abc": suffix match) or at the end ("abc*": prefix match), found the string "cluster.*.local/ns/a"',
      'spec.rules[0].from[0].source.namespaces[0]: expected a namespace name or a wildcard form of one ("dev", "team-*", "*-test"), found the string "Foo"; a namespace name is a DNS-1123 label (lowercase letters, digits and \'-\', starting and ending with a letter or digit, at most 63 characters)',
      'spec.rules[0].from[0].source.ipBlocks[0]: expected an IP address ("203.0.113.4") or a CIDR block ("203.0.113.0/24"), found the string "10.0.0.0/33"',
      'spec.rules[0].from[0].source.ipBlocks[1]: expected an IP address ("203.0.113.4") or a CIDR block ("203.0.113.0/24"), found the string "not-an-ip"',
      "spec.rules[0].from[1].source: expected at least one of principals, notPrincipals, requestPrincipals, notRequestPrincipals, namespaces, notNamespaces, serviceAccounts, notServiceAccounts, trustDomains, notTrustDomains, ipBlocks, notIpBlocks, remoteIpBlocks, notRemoteIpBlocks, found an empty source (omit from to match any source)",
      'spec.rules[0].to[0].operation.ports[0]: expected a string, found 8080 (quote it: "8080")',
      'spec.rules[0].to[0].operation.ports[1]: expected a port number from 1 to 65535 (as a string, e.g. "8080"), found the string "70000"',
      '[warning] spec.rules[0].to[0].operation.methods[0]: HTTP methods are case-sensitive and sent in uppercase; "get" matches only a request whose method is literally "get" (did you mean "GET"?)',
      'spec.rules[0].to[0].operation.paths[0]: expected a path starting with "/" (or a suffix match starting with "*"), found the string "admin"',
      'spec.rules[0].to[0].operation.paths[1]: expected a path template: "{*}" (one segment) and "{**}" (any remaining segments) as whole segments, "{**}" at most once and last among them, e.g. "/api/{*}/orders" or "/files/{**}"; found the segment "{id}" in the string "/users/{id}" (only "{*}" and "{**}" may use braces)',
      'spec.rules[0].to[0].operation.paths[2]: expected a path template: "{*}" (one segment) and "{**}" (any remaining segments) as whole segments, "{**}" at most once and last among them, e.g. "/api/{*}/orders" or "/files/{**}"; "{**}" must be the last operator, found the string "/files/{**}/{*}"',
      `spec.rules[0].to[0].operation.paths[3]: expected a path template: "{*}" (one segment) and "{**}" (any remaining segments) as whole segments, "{**}" at most once and last among them, e.g. "/api/{*}/orders" or "/files/{**}"; the segment "v*" of the string "/api/{*}/v*" is not a literal (letters, digits and -._~%!$&'()+,;:@= only; no "*" or empty segment in a template)`,
      "spec.rules[0].to[1].operation: required field is missing: expected an operation with at least one of hosts, notHosts, ports, notPorts, methods, notMethods, paths, notPaths",
      'spec.rules[0].when[0].key: unknown attribute "request.header[x]" (did you mean "request.headers[<name>]"?); expected one of request.headers[<name>], source.ip, remote.ip, source.namespace, source.principal, source.trustDomain, request.auth.principal, request.auth.audiences, request.auth.presenter, destination.ip, destination.port, connection.sni, request.auth.claims[<name>]',
      "spec.rules[0].when[1]: expected values or notValues (or both), found neither",
      'spec.rules[0].when[2].values[0]: expected a port number from 0 to 65535 (as a string), found the string "http"',
      'spec.rules[0].when[3].key: the experimental attribute "experimental.envoy.filters.network.mysql_proxy[db.table]" is not supported yet; expected one of request.headers[<name>], source.ip, remote.ip, source.namespace, source.principal, source.trustDomain, request.auth.principal, request.auth.audiences, request.auth.presenter, destination.ip, destination.port, connection.sni, request.auth.claims[<name>]',
    ]);
    expect(unsupported).toEqual(["spec.targetRefs: is not supported yet: Weft applies policies to workloads by selector only; use selector.matchLabels (or no selector for the whole namespace)"]);
    expect(customWithoutProvider).toEqual(["spec.provider: required field is missing: expected the external authorizer, { name: <an envoyExtAuthzHttp or envoyExtAuthzGrpc provider of the mesh settings> }"]);
    expect(providerWithoutName).toEqual([
      'spec.provider.nam: unknown field (did you mean "name"?); expected one of: name',
      "spec.provider.name: required field is missing: expected the name of an extension provider of the mesh settings (weft serve --mesh-config)",
    ]);
    expect(denyWithProvider).toEqual(["[warning] spec.provider: is used only with action CUSTOM; this DENY policy ignores it"]);
  });

  it("rejects targetRef", () => {
    expect(problems(check(authz({ targetRef: { kind: "Service", name: "x" } })))).toEqual([
      "spec.targetRef: is not supported yet: Weft applies policies to workloads by selector only; use selector.matchLabels (or no selector for the whole namespace)",
    ]);
  });

  it("warns that a DENY or AUDIT policy without rules does nothing", () => {
    const result = check(authz({ action: "DENY" }));
    expect(result.resource).toBeDefined();
    expect(problems(result)).toEqual(["[warning] spec: a DENY policy without rules matches nothing, so it has no effect (only an ALLOW policy without rules means something: deny everything)"]);
  });

  it("rejects empty lists, which would read as 'match nothing'", () => {
    expect(problems(check(rule({ from: [], when: [] })))).toEqual([
      "spec.rules[0].from: expected a non-empty list of sources (omit from to match any source), found an empty list",
      "spec.rules[0].when: expected a non-empty list of conditions (omit when to add none), found an empty list",
    ]);
    expect(problems(check(rule({ to: [{ operation: { paths: [] } }] })))).toEqual(["spec.rules[0].to[0].operation.paths: expected a non-empty list of paths, found an empty list (omit the field to match anything)"]);
  });

  it("checks condition values by key", () => {
    expect(
      problems(
        check(
          rule({
            when: [
              { key: "source.ip", values: ["10.0.0.1/40"] },
              { key: "source.principal", values: ["frontend"] },
              { key: "request.auth.principal", values: ["no-slash"] },
              { key: "request.auth.claims[]", values: ["x"] },
            ],
          }),
        ),
      ),
    ).toEqual([
      'spec.rules[0].when[0].values[0]: expected an IP address ("203.0.113.4") or a CIDR block ("203.0.113.0/24"), found the string "10.0.0.1/40"',
      'spec.rules[0].when[1].values[0]: expected "<trust domain>/ns/<namespace>/sa/<service account>" such as "cluster.local/ns/default/sa/productpage", or a wildcard form of one, found the string "frontend"',
      'spec.rules[0].when[2].values[0]: expected "<issuer>/<subject>" such as "https://accounts.example.com/1234" (the JWT\'s iss and sub claims joined by "/"), or a wildcard form, found the string "no-slash"',
      'spec.rules[0].when[3].key: unknown attribute "request.auth.claims[]" (did you mean "request.auth.claims[<name>]"?); expected one of request.headers[<name>], source.ip, remote.ip, source.namespace, source.principal, source.trustDomain, request.auth.principal, request.auth.audiences, request.auth.presenter, destination.ip, destination.port, connection.sni, request.auth.claims[<name>]',
    ]);
  });

  it("suggests field names for typos", () => {
    expect(problems(check(rule({ from: [{ source: { principal: ["cluster.local/ns/a/sa/b"] } }] })))).toEqual([
      'spec.rules[0].from[0].source.principal: unknown field (did you mean "principals"?); expected one of: principals, notPrincipals, requestPrincipals, notRequestPrincipals, namespaces, notNamespaces, serviceAccounts, notServiceAccounts, trustDomains, notTrustDomains, ipBlocks, notIpBlocks, remoteIpBlocks, notRemoteIpBlocks',
      "spec.rules[0].from[0].source: expected at least one of principals, notPrincipals, requestPrincipals, notRequestPrincipals, namespaces, notNamespaces, serviceAccounts, notServiceAccounts, trustDomains, notTrustDomains, ipBlocks, notIpBlocks, remoteIpBlocks, notRemoteIpBlocks, found an empty source (omit from to match any source)",
    ]);
  });
});

describe("RequestAuthentication", () => {
  it("without jwks or jwksUri, reads the issuer as the URL of OpenID Connect discovery", () => {
    const rule = (issuer: string) => check({ apiVersion: "security.istio.io/v1", kind: "RequestAuthentication", metadata: { name: "r", namespace: "foo" }, spec: { jwtRules: [{ issuer }] } });
    expect(problems(rule("https://accounts.example.com"))).toEqual([]);
    expect(problems(rule("accounts.example.com"))).toEqual([
      'spec.jwtRules[0].issuer: without jwks or jwksUri the keys are found by OpenID Connect discovery of the issuer, so it must be a URL: expected an http:// or https:// URL such as "https://example.com/.well-known/jwks.json", found the string "accounts.example.com"',
    ]);
  });

  it("reports every problem of the invalid fixture", () => {
    const [broken] = fixtureProblems("invalid/request-authentication.yaml");
    expect(broken!.slice(0, -1)).toEqual([
      "spec.jwtRules[0].issuer: expected a non-empty string, found an empty string",
      'spec.jwtRules[0].jwksUri: expected an http:// or https:// URL, found the scheme "ftp"',
      'spec.jwtRules[0].jwks: keys[0] (kty "EC") is not a usable public key: Invalid JWK EC key',
      "spec.jwtRules[0]: expected only one of jwks and jwksUri, found both",
      "[warning] spec.jwtRules[1].fromCookies: is an Istio field that Weft does not support yet; it is ignored (supported here: issuer, audiences, jwksUri, jwks, fromHeaders, fromParams, outputPayloadToHeader, forwardOriginalToken, outputClaimToHeaders, spaceDelimitedClaims)",
      'spec.jwtRules[1].fromHeaders[0].name: required field is missing: expected a header name such as "authorization"',
      'spec.jwtRules[1].outputClaimToHeaders[1].header: duplicate header "X-Sub": outputClaimToHeaders[0] already sets it; each header must be unique',
    ]);
    expect(broken!.at(-1)).toMatch(/^spec\.jwtRules\[2\]\.jwks: expected a JSON Web Key Set \(JSON such as \{"keys": \[\.\.\.\]\}\), but it is not valid JSON: /);
  });

  it("requires an issuer", () => {
    expect(problems(check(requestAuthn({ jwks: JWKS })))).toEqual(['spec.jwtRules[0].issuer: required field is missing: expected the token issuer (its "iss" claim), e.g. "https://accounts.example.com"']);
  });

  it("checks the shape of jwks", () => {
    const jwksProblems = (jwks: string) => problems(check(requestAuthn({ issuer: "i", jwks })));
    expect(jwksProblems('{"key": []}')).toEqual(['spec.jwtRules[0].jwks: expected a JSON Web Key Set, a JSON object with a "keys" list, found an object with the fields key']);
    expect(jwksProblems('{"keys": []}')).toEqual(['spec.jwtRules[0].jwks: expected a JSON Web Key Set with at least one key, found "keys": []']);
    expect(jwksProblems('{"keys": [{"n": "x"}]}')).toEqual(['spec.jwtRules[0].jwks: expected every key to be a JSON object with a "kty" (key type) field; keys[0] is not']);
    expect(jwksProblems('{"keys": [{"kty": "oct"}]}')).toEqual(['spec.jwtRules[0].jwks: keys[0] is a symmetric ("oct") key without its "k" value']);
  });

  it("checks header names and warns about duplicate issuers", () => {
    const result = check(
      resource("RequestAuthentication", {
        jwtRules: [
          { issuer: "i", jwks: JWKS, outputPayloadToHeader: "x payload" },
          { issuer: "i", jwksUri: "https://example.com/jwks" },
        ],
      }),
    );
    expect(problems(result)).toEqual([
      'spec.jwtRules[0].outputPayloadToHeader: expected an HTTP header name such as "x-jwt-payload", found the string "x payload"',
      '[warning] spec.jwtRules[1].issuer: duplicate issuer "i": jwtRules[0] already names it, and a token passes if either rule accepts it; prefer one rule per issuer',
    ]);
  });

  it("rejects a jwksUri that is not a URL", () => {
    expect(problems(check(requestAuthn({ issuer: "i", jwksUri: "example.com/jwks" })))).toEqual([
      'spec.jwtRules[0].jwksUri: expected an http:// or https:// URL such as "https://example.com/.well-known/jwks.json", found the string "example.com/jwks"',
    ]);
  });
});
