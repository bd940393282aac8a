import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { parse } from "yaml";
import { runAnalyze, type AnalysisMessage } from "./analyze.js";
import { captureOutput, type CapturedOutput } from "./captured-output.js";

const BOOKINFO = join(import.meta.dirname, "..", "api", "testdata", "bookinfo");

let output: CapturedOutput;
let dir: string;

beforeEach(() => {
  output = captureOutput();
  dir = mkdtempSync(join(tmpdir(), "weft-analyze-"));
});

afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

const SERVICE = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 10.0.0.1 }]
`;

/** A VirtualService in namespace shop routing to `host`. */
function routeTo(host: string, name = "to-reviews"): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: { host: ${host} }
`;
}

/** A DestinationRule originating TLS without caCertificates (IST0128, level Warning). */
const UNVERIFIED_TLS = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews-tls, namespace: shop }
spec:
  host: reviews
  trafficPolicy: { tls: { mode: SIMPLE } }
`;

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("weft analyze", () => {
  it("exits 0 and says so on output.stderr when nothing is found (Istio's bookinfo fixtures)", async () => {
    expect(await runAnalyze([BOOKINFO])).toBe(0);
    expect(output.stdout).toBe("");
    expect(output.stderr).toBe(`\u2714 No validation issues found when analyzing ${BOOKINFO}.\n`);
  });

  it("prints Level [CODE] (Kind name.namespace place) field: message and exits 79 on an Error-level message (IST0101)", async () => {
    write("services.yaml", SERVICE);
    const routes = write("routes.yaml", `${routeTo("reviews")}---\n${routeTo("ratings", "to-ratings")}`);
    expect(await runAnalyze([dir])).toBe(79);
    expect(output.stdout.split("\n")).toEqual([
      `Error [IST0101] (VirtualService to-ratings.shop ${routes} document 2) spec.http[0].route[0].destination.host: unknown host "ratings" (ratings.shop.svc.cluster.local): no ServiceEntry declares it (did you mean "reviews.shop.svc.cluster.local"?); requests routed here get 503 until it exists`,
      // two VirtualServices for the same host, both bound to the mesh
      `Error [IST0109] (VirtualService to-ratings.shop ${routes} document 2) spec.hosts: The VirtualServices shop/to-ratings,shop/to-reviews associated with mesh gateway define the same host */reviews.shop.svc.cluster.local which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.`,
      `Error [IST0109] (VirtualService to-reviews.shop ${routes} document 1) spec.hosts: The VirtualServices shop/to-ratings,shop/to-reviews associated with mesh gateway define the same host */reviews.shop.svc.cluster.local which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.`,
      "",
    ]);
    expect(output.stderr).toContain(`Analyzers found issues when analyzing ${dir}.`);
  });

  it("reads single files as well as directories", async () => {
    const services = write("services.yaml", SERVICE);
    const route = write("route.yaml", routeTo("reviews"));
    write("unrelated.yaml", routeTo("nowhere", "other"));
    expect(await runAnalyze([services, route])).toBe(0);
    expect(output.stdout).toBe("");
  });

  it("a schema error is IST0106 SchemaValidationError; a validation warning is IST0133 SchemaWarning", async () => {
    const file = write("bad.yaml", `${SERVICE}---\n${routeTo("reviews").replace("route:\n", "route:\n    - destination: { host: reviews }\n      weight: -1\n")}---\napiVersion: example.com/v1\nkind: Widget\nmetadata: { name: w }\n`);
    expect(await runAnalyze([dir, "-o", "json"])).toBe(0); // as istioctl: the exit code reflects messages only with log output
    const messages = JSON.parse(output.stdout) as AnalysisMessage[];
    expect(messages.map((m) => [m.code, m.level, m.origin, m.reference])).toEqual([
      ["IST0106", "Error", "VirtualService to-reviews.shop", `${file} document 2`],
      ["IST0133", "Warning", "Widget w.default", `${file} document 3`],
    ]);
    expect(messages[0]!.documentationUrl).toBe("https://istio.io/latest/docs/reference/config/analysis/ist0106/?ref=weft-analyze");
  });

  it("unreachable VirtualService rules: IST0130 (Warning) and IST0131 (Info), as istioctl's", async () => {
    write("services.yaml", SERVICE);
    write("routes.yaml", `${routeTo("reviews").replace("  - route:", "  - match: [{ uri: { prefix: /a } }]\n    route:")}  - match: [{ uri: { prefix: /a } }]\n    route:\n    - destination: { host: reviews }\n`);
    expect(await runAnalyze([dir, "-o", "json", "--output-threshold", "Info"])).toBe(0);
    const messages = JSON.parse(output.stdout) as AnalysisMessage[];
    expect(messages.map((m) => `${m.level} ${m.code} ${m.field}`)).toEqual(["Info IST0131 spec.http[1].match[0]", "Warning IST0130 spec.http[1]"]);
  });

  it("--failure-threshold decides which level exits 79; --output-threshold which are printed", async () => {
    write("services.yaml", SERVICE);
    write("dr.yaml", UNVERIFIED_TLS);
    expect(await runAnalyze([dir])).toBe(0);
    expect(output.stdout).toMatch(/^Warning \[IST0128\] \(DestinationRule reviews-tls\.shop /);
    output.reset();
    expect(await runAnalyze([dir, "--failure-threshold", "warning"])).toBe(79);
    output.reset();
    expect(await runAnalyze([dir, "--output-threshold", "Error", "--failure-threshold", "Warning"])).toBe(79); // failure counts what is not printed, too
    expect(output.stdout).toBe("");
  });

  it("--suppress CODE=Kind name.namespace leaves that message out, with * as a wildcard; repeatable", async () => {
    write("services.yaml", SERVICE);
    write("dr.yaml", UNVERIFIED_TLS);
    write("routes.yaml", routeTo("ratings"));
    expect(await runAnalyze([dir, "-S", "IST0101=VirtualService to-reviews.shop"])).toBe(0);
    expect(output.stdout).toMatch(/^Warning \[IST0128\]/);
    output.reset();
    expect(await runAnalyze([dir, "--suppress", "IST0101=VirtualService *.shop", "--suppress=IST0128=DestinationRule reviews-*"])).toBe(0);
    expect(output.stdout).toBe("");
    output.reset();
    expect(await runAnalyze([dir, "-S", "IST0101=VirtualService *.other"])).toBe(79);
    expect(await runAnalyze([dir, "-S", "IST9999=VirtualService x.y"])).toBe(79);
    expect(output.stderr).toContain("Warning: Supplied message code 'IST9999' is an unknown message code and will not have any effect.");
  });

  it("-o yaml prints the messages as a YAML list", async () => {
    write("services.yaml", SERVICE);
    write("dr.yaml", UNVERIFIED_TLS);
    expect(await runAnalyze([dir, "-o", "yaml"])).toBe(0);
    const messages = parse(output.stdout) as AnalysisMessage[];
    expect(messages.map((m) => `${m.level} ${m.code} ${m.origin} ${m.field}`)).toEqual(["Warning IST0128 DestinationRule reviews-tls.shop spec.trafficPolicy.tls"]);
  });

  it("exits 65 when a file cannot be parsed (and nothing reaches the threshold), 0 with --ignore-unknown", async () => {
    write("services.yaml", SERVICE);
    const broken = write("broken.yaml", "kind: [unclosed\n");
    expect(await runAnalyze([dir])).toBe(65);
    expect(output.stderr).toContain(`Error adding ${broken}: YAML syntax error`);
    expect(output.stderr).toContain("(but 1 file could not be parsed)");
    expect(await runAnalyze([dir, "--ignore-unknown"])).toBe(0);
  });

  it("usage errors exit 64, as istioctl's", async () => {
    expect(await runAnalyze([])).toBe(64);
    expect(await runAnalyze([dir, "-o", "table"])).toBe(64);
    expect(await runAnalyze([dir, "--failure-threshold", "Fatal"])).toBe(64);
    expect(await runAnalyze([dir, "-S", "IST0101"])).toBe(64);
    expect(output.stderr).toContain('--suppress "IST0101" is not CODE=RESOURCE');
  });

  it("-L lists the codes Weft reports with Istio's names and levels", async () => {
    expect(await runAnalyze(["-L"])).toBe(0);
    expect(output.stdout).toContain("IST0101 ReferencedResourceNotFound (Error): A resource being referenced does not exist.");
    expect(output.stdout).toContain("IST0109 ConflictingMeshGatewayVirtualServiceHosts (Error)");
  });
});
