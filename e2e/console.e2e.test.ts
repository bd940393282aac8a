// The mesh console in a real browser (Debian's chromium driven by playwright-core) against a real
// `weft demo` (six workloads and a gateway, each with upstream Envoy, transparent capture, mTLS):
// the graph has the six workloads and the edges traffic takes; a VirtualService fault abort turns
// its edge red; a route Envoy refuses (a regex over RE2's program size) shows the proxies as
// NACKED with Envoy's text. Screenshots go to test-artifacts/console/ (gitignored).
//
// Needs root (pods) and chromium (WEFT_CHROMIUM_BIN, else /usr/lib/chromium/chromium); skips
// without them unless WEFT_CHROMIUM_REQUIRED=1 (CI). Run it under the pods lock:
//   flock /tmp/weft-pods.lock npx vitest run e2e/console.e2e.test.ts
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConsoleState } from "../src/admin/console-state.js";
import { captureSupport } from "../src/capture/iptables.js";
import { freePort } from "../src/runner/free-port.js";
import { buildConsole } from "../scripts/build-console.js";
import { httpGet } from "./harness/http.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ARTIFACTS = path.join(ROOT, "test-artifacts", "console");

function chromiumBinary(): string | undefined {
  for (const c of [process.env.WEFT_CHROMIUM_BIN, "/usr/lib/chromium/chromium", "/usr/bin/chromium"]) if (c && existsSync(c)) return c;
  return undefined;
}

const browserBinary = chromiumBinary();
const support = await captureSupport();
const required = process.env.WEFT_CHROMIUM_REQUIRED === "1";
const missing = !browserBinary ? "no chromium (apt-get install chromium, or WEFT_CHROMIUM_BIN)" : !support.transparent ? `no transparent capture: ${support.reason}` : undefined;
if (missing && required) throw new Error(`console e2e: ${missing}, and WEFT_CHROMIUM_REQUIRED=1`);
if (missing) process.stderr.write(`console e2e: skipped, ${missing}\n`);

const GATEWAY = "workload:istio-system/ingressgateway";
const W = (name: string) => `workload:default/${name}`;
const WORKLOADS = ["productpage-v1", "details-v1", "reviews-v1", "reviews-v2", "reviews-v3", "ratings-v1"];
/** The edges traffic takes: gateway -> productpage -> details and reviews v1/v2/v3 (v2 for jason) -> ratings (v2, v3). */
const EDGES = [
  [GATEWAY, W("productpage-v1")],
  [W("productpage-v1"), W("details-v1")],
  [W("productpage-v1"), W("reviews-v1")],
  [W("productpage-v1"), W("reviews-v2")],
  [W("productpage-v1"), W("reviews-v3")],
  [W("reviews-v2"), W("ratings-v1")],
  [W("reviews-v3"), W("ratings-v1")],
];
const RED = "rgb(214,39,40)"; // #d62728, graph-view.ts HEALTH_COLOURS.error

/** Everyone else 50/50 to reviews v1 and v3 (jason goes to v2): every workload gets traffic. */
const SPLIT = `  - route:
    - { destination: { host: reviews, subset: v1 }, weight: 50 }
    - { destination: { host: reviews, subset: v3 }, weight: 50 }
`;
const FAULT = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ratings, namespace: default }
spec:
  hosts: [ratings]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    fault: { abort: { httpStatus: 500, percentage: { value: 100 } } }
    route: [{ destination: { host: ratings } }]
  - route: [{ destination: { host: ratings } }]
`;
/** Valid Istio (Weft accepts it); Envoy refuses the route: RE2 program size 365 > 100. */
const NACKED = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: details-regex, namespace: default }
spec:
  hosts: [details]
  http:
  - match: [{ uri: { regex: "(abcdefghij){30}" } }]
    route: [{ destination: { host: details } }]
  - route: [{ destination: { host: details } }]
`;

describe.skipIf(missing !== undefined)("mesh console in chromium against weft demo (real Envoy)", () => {
  let demo: ChildProcess | undefined;
  let out = "";
  let err = "";
  let configDir: string;
  let adminUrl: string;
  let browser: Browser | undefined;
  let page: Page;
  let trafficStop = false;
  let traffic: Promise<void> | undefined;
  const sent = { ok: 0, failed: 0 };

  /** The page's last state (what it drew from). */
  const pageState = () => page.evaluate("window.weftConsole.state") as Promise<ConsoleState | undefined>;
  const diagnostics = async () => {
    const s = await pageState().catch(() => undefined);
    return JSON.stringify({ edges: s?.edges.map((e) => [e.source, e.target, e.health, e.rps, e.errorRate, e.localErrors]), proxies: s?.proxies.map((p) => [p.workload, p.state, p.stats]), sent, demoErr: err.slice(-2000) }, null, 1);
  };
  /** Waits (polling the page) until `check` holds on the page's state; fails with what the page showed. */
  const waitForState = async (what: string, check: string, timeoutMs: number) => {
    try {
      await page.waitForFunction(check, undefined, { timeout: timeoutMs, polling: 500 });
    } catch (e) {
      throw new Error(`the console did not show ${what} within ${timeoutMs / 1000} s: ${(e as Error).message.split("\n")[0]}\n${await diagnostics()}`);
    }
  };

  beforeAll(async () => {
    await buildConsole();
    await mkdir(ARTIFACTS, { recursive: true });
    configDir = await mkdtemp(path.join(os.tmpdir(), "weft-console-e2e-"));
    // The sidecars (uid 1337) read the trust bundle under the demo's state dir: mkdtemp's 0700 would stop them.
    await chmod(configDir, 0o711);
    const [ingress, xds, admin] = [await freePort(), await freePort(), await freePort()];
    adminUrl = `http://127.0.0.1:${admin}`;
    demo = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "demo", "--mode", "transparent", "--jaeger", "off", "--prometheus", "off", "--ingress-port", String(ingress), "--xds-port", String(xds), "--admin-port", String(admin), "--config-dir", path.join(configDir, "demo")], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    demo.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    demo.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    for (const deadline = Date.now() + 240_000; !out.includes("Weft demo is running");) {
      if (demo.exitCode !== null || Date.now() > deadline) throw new Error(`weft demo did not start (exit ${demo.exitCode}):\n${err.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const routing = path.join(configDir, "demo", "routing.yaml");
    const text = await readFile(routing, "utf8");
    const split = text.replace("  - route:\n    - destination: { host: reviews, subset: v1 }\n", SPLIT);
    expect(split).not.toBe(text);
    await writeFile(routing, split);
    // Requests through the gateway until the test ends (bounded): half as jason (reviews v2), half not.
    traffic = (async () => {
      for (let i = 0; i < 20_000 && !trafficStop; i++) {
        const headers = i % 2 ? { "end-user": "jason" } : {};
        await httpGet(`http://127.0.0.1:${ingress}/productpage`, { headers, timeoutMs: 5000 }).then((r) => (r.status === 200 ? sent.ok++ : sent.failed++), () => sent.failed++);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    browser = await chromium.launch({ executablePath: browserBinary!, headless: true });
    page = await browser.newPage({ viewport: { width: 1400, height: 1300 } });
    const res = await page.goto(`${adminUrl}/ui`);
    expect(res?.status()).toBe(200);
  }, 300_000);

  afterAll(async () => {
    trafficStop = true;
    await traffic;
    await browser?.close();
    if (demo && demo.exitCode === null) {
      const exited = new Promise((r) => demo!.once("exit", r));
      demo.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 60_000))]);
      if (demo.exitCode === null) demo.kill("SIGKILL");
    }
    if (configDir) await rm(configDir, { recursive: true, force: true });
  }, 90_000);

  it("draws the six workloads, the gateway and the edges traffic takes, with rates and mTLS", async () => {
    const edgesShown = `(() => { const s = window.weftConsole.state; if (!s) return false;
      const cy = window.weftConsole.graph.cy;
      return ${JSON.stringify(EDGES)}.every(([a, b]) => s.edges.some((e) => e.source === a && e.target === b && e.rps > 0)
        && cy.edges().some((e) => e.data("source") === a && e.data("target") === b))
        // Envoy publishes histograms at its stats flush (every 5 s): the p99 comes a little later.
        && s.edges.some((e) => e.source === ${JSON.stringify(W("productpage-v1"))} && e.target === ${JSON.stringify(W("details-v1"))} && e.p99Ms > 0); })()`;
    await waitForState("every edge with traffic (and a p99 on productpage -> details)", edgesShown, 180_000);
    const state = (await pageState())!;
    const drawn = (await page.evaluate("window.weftConsole.graph.cy.nodes().map((n) => n.id())")) as string[];
    for (const w of WORKLOADS) expect(drawn, w).toContain(W(w));
    expect(drawn).toContain(GATEWAY);
    expect(state.nodes.filter((n) => n.kind === "workload" && n.proxy).map((n) => n.label).sort()).toEqual([...WORKLOADS].sort());
    // Sidecar to sidecar is mutual TLS in the demo's transparent mode; the gateway's hop too.
    for (const [a, b] of EDGES) expect(state.edges.find((e) => e.source === a && e.target === b)!.mtls, `${a} -> ${b}`).toBe(true);
    // The same edges in the traffic table.
    expect(await page.locator("#edges tbody tr").count()).toBeGreaterThanOrEqual(EDGES.length);
    await page.screenshot({ path: path.join(ARTIFACTS, "mesh-healthy.png"), fullPage: true });
  }, 240_000);

  it("a VirtualService abort on ratings for jason turns reviews-v2 -> ratings red; reviews-v3 -> ratings stays green", async () => {
    await writeFile(path.join(configDir, "demo", "routing.yaml"), (await readFile(path.join(configDir, "demo", "routing.yaml"), "utf8")) + FAULT);
    const red = `(() => { const s = window.weftConsole.state; const g = window.weftConsole.graph;
      const e = s && s.edges.find((x) => x.source === ${JSON.stringify(W("reviews-v2"))} && x.target === ${JSON.stringify(W("ratings-v1"))});
      const drawn = g.edgeStyle(${JSON.stringify(W("reviews-v2"))}, ${JSON.stringify(W("ratings-v1"))});
      return !!e && e.health === "error" && !!drawn && drawn.colour.replace(/ /g, "") === ${JSON.stringify(RED)}; })()`;
    await waitForState("reviews-v2 -> ratings in red", red, 120_000);
    const state = (await pageState())!;
    const faulted = state.edges.find((e) => e.source === W("reviews-v2") && e.target === W("ratings-v1"))!;
    expect(faulted.errorRate).toBeGreaterThanOrEqual(0.05);
    expect(faulted.localErrors).toBeGreaterThan(0); // Envoy's own replies: the abort never reached ratings
    const other = state.edges.find((e) => e.source === W("reviews-v3") && e.target === W("ratings-v1"))!;
    expect(other.health, await diagnostics()).toBe("healthy");
    expect(await page.locator(`#edges tr[data-edge-source="${W("reviews-v2")}"][data-edge-target="${W("ratings-v1")}"]`).getAttribute("data-health")).toBe("error");
    await page.screenshot({ path: path.join(ARTIFACTS, "mesh-fault.png"), fullPage: true });
  }, 180_000);

  it("a route Envoy refuses (regex over RE2's program size) shows the proxies as NACKED with Envoy's text", async () => {
    await writeFile(path.join(configDir, "demo", "nacked.yaml"), NACKED);
    const nacked = `(() => { const s = window.weftConsole.state;
      return !!s && s.proxies.some((p) => p.state === "NACKED" && p.types.some((t) => t.nack && /program size/i.test(t.nack.message))); })()`;
    await waitForState("a NACKED proxy with Envoy's error", nacked, 120_000);
    const row = page.locator('#proxies tr[data-state="NACKED"]').first();
    await expect.poll(async () => row.locator("td.nack").textContent(), { timeout: 10_000 }).toMatch(/rds: .*program size/i);
    expect(await row.locator("td.state").textContent()).toBe("NACKED");
    // The graph marks the NACKED proxy's node.
    const sync = (await page.evaluate(`window.weftConsole.graph.cy.nodes().map((n) => n.data("sync"))`)) as string[];
    expect(sync).toContain("NACKED");
    // Certificates: the root and the workloads' certificates, with their expiry.
    expect(await page.locator('#certificates tr[data-kind="root"]').count()).toBeGreaterThanOrEqual(1);
    // One certificate per identity: the four service accounts of the workloads and the gateway's.
    const subjects = await page.locator('#certificates tr[data-kind="workload"] td:nth-child(2)').allTextContents();
    for (const sa of ["bookinfo-productpage", "bookinfo-details", "bookinfo-reviews", "bookinfo-ratings", "istio-ingressgateway"]) expect(subjects.join("\n")).toMatch(new RegExp(`/sa/${sa}$`, "m"));
    await page.screenshot({ path: path.join(ARTIFACTS, "mesh-nack.png"), fullPage: true });
  }, 180_000);
});
