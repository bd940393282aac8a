// IST0130 VirtualServiceUnreachableRule and IST0131 VirtualServiceIneffectiveMatch: warnings from
// validation, as Istio's validation gives them (cases named after Istio's).
import { describe, expect, it } from "vitest";
import { validateResource } from "./validate-resource.js";

function findings(spec: Record<string, unknown>): string[] {
  const { issues } = validateResource({ apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name: "vs", namespace: "default" }, spec }, { file: "vs.yaml", document: 1 });
  expect(issues.filter((i) => i.severity === "error")).toEqual([]);
  return issues.map((i) => `${i.code ?? "-"} ${i.field}: ${i.message}`);
}

const to = { route: [{ destination: { host: "reviews" } }] };

describe("IST0130 / IST0131: VirtualService rules that are never used", () => {
  it("two rules without matches: only the last rule can have no matches", () => {
    expect(findings({ hosts: ["reviews"], http: [{ ...to }, { ...to }] })).toEqual(["IST0130 spec.http[1]: VirtualService rule #1 not used (only the last rule can have no matches)."]);
  });

  it("a rule after a catch-all rule (named rules are quoted, as Istio names them)", () => {
    expect(findings({ hosts: ["reviews"], http: [{ name: "everything", ...to }, { name: "api", match: [{ uri: { prefix: "/api" } }], ...to }] })).toEqual([
      'IST0130 spec.http[1]: VirtualService rule "api" not used (rule "everything", without matches, is defined before it and takes every request).',
    ]);
  });

  it("a match an earlier rule already has (whatever its key order and name); a rule all of whose matches are taken", () => {
    const first = { match: [{ uri: { exact: "/a" }, headers: { end: { exact: "x" } } }, { uri: { exact: "/b" } }], ...to };
    const second = { match: [{ name: "again", headers: { end: { exact: "x" } }, uri: { exact: "/a" } }], ...to };
    const third = { match: [{ uri: { exact: "/b" } }, { uri: { exact: "/c" } }], ...to };
    expect(findings({ hosts: ["reviews"], http: [first, second, third, to] })).toEqual([
      'IST0131 spec.http[1].match[0]: VirtualService rule #1 match "again" is not used (duplicate/overlapping match in rule #0).',
      "IST0130 spec.http[1]: VirtualService rule #1 not used (all matches used by prior rules).",
      "IST0131 spec.http[2].match[0]: VirtualService rule #2 match #0 is not used (duplicate/overlapping match in rule #0).",
    ]);
  });

  it("a URI prefix covered by an earlier prefix with the same other conditions; not when the conditions differ", () => {
    const rules = [
      { name: "debug", match: [{ uri: { prefix: "/debug" }, method: { exact: "GET" } }], ...to },
      { name: "debugs", match: [{ uri: { prefix: "/debugs" }, method: { exact: "GET" } }], ...to },
      { name: "debug-post", match: [{ uri: { prefix: "/debug/x" }, method: { exact: "POST" } }], ...to },
    ];
    expect(findings({ hosts: ["reviews"], http: rules })).toEqual([
      'IST0131 spec.http[1].match[0]: VirtualService rule "debugs" match #0 of prefix /debugs is not used (duplicate/overlapping match in rule #0 of prefix /debug on "debug").',
    ]);
  });

  it("TCP and TLS rules: duplicate port and SNI matches", () => {
    expect(
      findings({
        hosts: ["db.example.com"],
        tcp: [{ match: [{ port: 5432 }], route: [{ destination: { host: "db.example.com" } }] }, { match: [{ port: 5432 }], route: [{ destination: { host: "db.example.com" } }] }],
        tls: [
          { match: [{ port: 443, sniHosts: ["db.example.com"] }], route: [{ destination: { host: "db.example.com" } }] },
          { match: [{ sniHosts: ["db.example.com"], port: 443 }], route: [{ destination: { host: "db.example.com" } }] },
        ],
      }),
    ).toEqual([
      "IST0131 spec.tcp[1].match[0]: VirtualService rule #1 match #0 is not used (duplicate/overlapping match in rule #0).",
      "IST0130 spec.tcp[1]: VirtualService rule #1 not used (all matches used by prior rules).",
      "IST0131 spec.tls[1].match[0]: VirtualService rule #1 match #0 is not used (duplicate/overlapping match in rule #0).",
      "IST0130 spec.tls[1]: VirtualService rule #1 not used (all matches used by prior rules).",
    ]);
  });

  it("reachable rules say nothing: distinct matches, then one catch-all last", () => {
    const rules = [{ match: [{ uri: { prefix: "/api" } }], ...to }, { match: [{ uri: { prefix: "/ap" } }], ...to }, { match: [{ headers: { end: { exact: "x" } } }], ...to }, to];
    expect(findings({ hosts: ["reviews"], http: rules })).toEqual([]);
  });
});
