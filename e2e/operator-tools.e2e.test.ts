// The operator's tools against a real Envoy: `weft proxy-config` / `weft config-dump` (exit
// codes, tables, redaction), the CSDS service over gRPC (FetchClientStatus and
// StreamClientStatus, SYNCED then ERROR with Envoy's NACK text), and config problems visible in
// `weft status` and /debug/config-problems of a real `weft serve`.
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientStatusDiscoveryServiceClient, ConfigStatus, type ClientStatusResponse } from "../generated/envoy/service/status/v3/csds.js";
import { ClientResourceStatus } from "../generated/envoy/admin/v3/config_dump_shared.js";
import { freePort } from "../src/runner/free-port.js";
import { httpGet } from "./harness/http.js";
import { TestMesh, meshConfigFromYaml } from "./harness/mesh.js";
import { startUpstream, type Upstream } from "./harness/upstream.js";
import { webBehindGateway } from "./harness/web-gateway.js";

function weft(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function until<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("proxy-config, config-dump and CSDS with a real Envoy", () => {
  let mesh: TestMesh;
  let upstream: Upstream;
  let gatewayPort: number;
  let admin: string;
  const GATEWAY = "ingressgateway.istio-system";

  const config = (extra = "") => webBehindGateway({ upstreamPort: upstream.port, gatewayPort }) + extra;

  const csds = () => new ClientStatusDiscoveryServiceClient(`127.0.0.1:${mesh.cp.xdsPort}`, credentials.createInsecure());
  const fetchStatus = (client: ClientStatusDiscoveryServiceClient) =>
    new Promise<ClientStatusResponse>((resolve, reject) => client.fetchClientStatus({ nodeMatchers: [{ nodeId: { contains: GATEWAY } }] }, (err, res) => (err ? reject(err) : resolve(res!))));

  beforeAll(async () => {
    upstream = await startUpstream("web");
    gatewayPort = await freePort();
    mesh = await TestMesh.start();
    await mesh.apply(config());
    await mesh.startProxy({ name: "ingressgateway", namespace: "istio-system", type: "router", labels: { istio: "ingressgateway" } });
    admin = `http://127.0.0.1:${mesh.cp.adminPort}`;
    expect((await httpGet(`http://127.0.0.1:${gatewayPort}/`, { headers: { host: "web" }, timeoutMs: 5000 })).status).toBe(200);
  });

  afterAll(async () => {
    await mesh?.close();
    await upstream?.close();
  });

  it("proxy-config prints istioctl-like tables of what the proxy got; config-dump the whole of it", async () => {
    const listeners = await weft(["proxy-config", "listeners", GATEWAY, "--admin", admin]);
    expect(listeners.stderr).toBe("");
    expect(listeners.code).toBe(0);
    expect(listeners.stdout).toMatch(/listeners \(lds\) SYNCED/);
    expect(listeners.stdout).toMatch(new RegExp(`0\\.0\\.0\\.0_${gatewayPort}\\s+0\\.0\\.0\\.0\\s+${gatewayPort}`));
    const clusters = await weft(["proxy-config", "clusters", GATEWAY, "--admin", admin]);
    expect(clusters.stdout).toMatch(/outbound\|8000\|\|web\.default\.svc\.cluster\.local\s+web\.default\.svc\.cluster\.local\s+8000\s+outbound\s+EDS/);
    const endpoints = await weft(["proxy-config", "endpoints", GATEWAY, "--admin", admin, "-o", "json"]);
    expect(JSON.parse(endpoints.stdout)).toMatchObject({ type: "eds", state: "SYNCED", resources: [{ name: "outbound|8000||web.default.svc.cluster.local" }] });
    const dump = await weft(["config-dump", GATEWAY, "--admin", admin, "-o", "yaml"]);
    expect(dump.code).toBe(0);
    expect(dump.stdout).toContain(`nodeId: router~127.0.0.1~${GATEWAY}~istio-system.svc.cluster.local`);
    expect(dump.stdout).toContain("envoy.filters.network.http_connection_manager");
    // Usage errors exit 2; an unknown proxy is a failure naming what is connected.
    expect((await weft(["proxy-config", "pods", GATEWAY, "--admin", admin])).code).toBe(2);
    const unknown = await weft(["proxy-config", "clusters", "nobody.nowhere", "--admin", admin]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`no connected proxy matches "nobody.nowhere" (connected: router~127.0.0.1~${GATEWAY}`);
  });

  it("CSDS: FetchClientStatus and StreamClientStatus give every resource, SYNCED, then ERROR with Envoy's NACK text", async () => {
    const client = csds();
    try {
      const synced = await fetchStatus(client);
      expect(synced.config).toHaveLength(1);
      const generic = synced.config![0]!.genericXdsConfigs!;
      expect(generic.map((g) => g.name)).toContain(`0.0.0.0_${gatewayPort}`);
      expect(generic.every((g) => g.configStatus === ConfigStatus.SYNCED && g.clientStatus === ClientResourceStatus.ACKED)).toBe(true);
      expect(generic.find((g) => g.name === `0.0.0.0_${gatewayPort}`)!.xdsConfig!.typeUrl).toBe("type.googleapis.com/envoy.config.listener.v3.Listener");

      // An EnvoyFilter Weft accepts but Envoy refuses (a local rate limit without stat_prefix): a NACK.
      const badFilter = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: bad-ratelimit, namespace: istio-system }
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    match: { context: GATEWAY, listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: envoy.filters.http.router } } } } }
    patch:
      operation: INSERT_BEFORE
      value: { name: envoy.filters.http.local_ratelimit, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit, token_bucket: { max_tokens: 1, fill_interval: 1s } } }
`;
      mesh.controller.setConfig(meshConfigFromYaml(config(badFilter)));
      const errored = await until(
        async () => {
          const r = await fetchStatus(client);
          const lds = r.config?.[0]?.genericXdsConfigs?.filter((g) => g.typeUrl?.endsWith("Listener"));
          return lds?.length && lds.every((g) => g.configStatus === ConfigStatus.ERROR) ? lds : undefined;
        },
        20_000,
        "the gateway's NACK of the listener",
      );
      expect(errored[0]!.clientStatus).toBe(ClientResourceStatus.NACKED);
      expect(errored[0]!.errorState?.details).toMatch(/StatPrefix|stat_prefix/);

      const streamed = await new Promise<ClientStatusResponse>((resolve, reject) => {
        const call = client.streamClientStatus();
        call.on("data", (res: ClientStatusResponse) => {
          resolve(res);
          call.end();
        });
        call.on("error", reject);
        call.write({ nodeMatchers: [{ nodeId: { prefix: "router~" } }] });
      });
      expect(streamed.config![0]!.node!.id).toBe(`router~127.0.0.1~${GATEWAY}~istio-system.svc.cluster.local`);
      expect(streamed.config![0]!.genericXdsConfigs!.some((g) => g.configStatus === ConfigStatus.ERROR)).toBe(true);

      const table = await weft(["proxy-config", "listeners", GATEWAY, "--admin", admin]);
      expect(table.code).toBe(1);
      expect(table.stdout).toMatch(/listeners \(lds\) ERROR/);
      expect(table.stdout).toMatch(/NACK of .*StatPrefix/);
    } finally {
      client.close();
      mesh.controller.setConfig(meshConfigFromYaml(config()));
    }
  });
});

describe("config problems where operators look (weft serve)", () => {
  let dir: string;
  let serve: ReturnType<typeof spawn> | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "weft-problems-"));
  });
  afterAll(async () => {
    serve?.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  it("a broken edit shows in /debug/config-problems and weft status (exit 1) while the last valid version stays", async () => {
    const file = path.join(dir, "routing.yaml");
    const vs = (weight: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web }
spec:
  hosts: [web.example.com]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web }
spec:
  hosts: [web.example.com]
  http: [{ route: [{ destination: { host: web.example.com }, weight: ${weight} }] }]
`;
    await writeFile(file, vs("100"));
    const [xdsPort, adminPort] = [await freePort(), await freePort()];
    let stderr = "";
    serve = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve", "--config-dir", dir, "--xds-port", String(xdsPort), "--admin-port", String(adminPort)], { stdio: ["ignore", "ignore", "pipe"] });
    serve.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    await until(() => (stderr.includes("weft control plane ready") ? true : undefined), 30_000, `serve to be ready (stderr: ${stderr.slice(-500)})`);
    const problems = async () => JSON.parse((await httpGet(`${adminUrl}/debug/config-problems`)).body) as { generation: number; errors: number; problems: { text: string }[] };
    expect((await problems()).errors).toBe(0);
    expect((await weft(["status", "--admin", adminUrl])).stdout).toContain("config: no problems");

    await writeFile(file, vs('"heavy"'));
    const broken = await until(async () => {
      const p = await problems();
      return p.errors > 0 ? p : undefined;
    }, 20_000, "the broken edit to be reported");
    expect(broken.problems[0]!.text).toMatch(/routing\.yaml: document 2: VirtualService\/default\/web: spec\.http\[0\]\.route\[0\]\.weight: .*keeping the last valid version/);
    const status = await weft(["status", "--admin", adminUrl]);
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/config: 1 error\(s\)/);
    expect(status.stdout).toContain("VirtualService/default/web");

    await writeFile(file, vs("100"));
    await until(async () => ((await problems()).errors === 0 ? true : undefined), 20_000, "the fix to clear the problem");
    expect((await weft(["status", "--admin", adminUrl])).code).toBe(0);
  });
});
