// VHDS with real Envoy: a delta xDS sidecar gets its route configurations with `vhds` and their
// virtual hosts as VirtualHost resources over the same ADS stream (src/cache/virtual-host-
// discovery.ts); a VirtualService edit reaches it as one VirtualHost update (no route
// configuration), a removed service's virtual host is removed, a new service adds one; a
// state-of-the-world sidecar of the same class keeps whole route configurations. Traffic
// follows each change. No pods: explicit-mode sidecars on loopback ports picked free.
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../src/runner/free-port.js";
import type { EnvoyProcess } from "../src/envoy/envoy-process.js";
import { httpGet } from "./harness/http.js";
import { TestMesh, type MeshProxy } from "./harness/mesh.js";
import { startUpstream, type Upstream } from "./harness/upstream.js";

interface RouteDump {
  name: string;
  vhds?: unknown;
  virtual_hosts?: { name: string; domains: string[] }[];
}

/** The dynamic route configurations in Envoy's /config_dump (VHDS virtual hosts merged in, as Envoy serves them). */
async function routeConfigs(envoy: EnvoyProcess): Promise<RouteDump[]> {
  const dump = (await envoy.configDump()) as { configs?: { "@type"?: string; dynamic_route_configs?: { route_config: RouteDump }[] }[] };
  const routes = dump.configs?.find((c) => c["@type"] === "type.googleapis.com/envoy.admin.v3.RoutesConfigDump")?.dynamic_route_configs ?? [];
  return routes.map((r) => r.route_config);
}

async function virtualHostNames(envoy: EnvoyProcess): Promise<string[]> {
  return (await routeConfigs(envoy)).flatMap((rc) => (rc.virtual_hosts ?? []).map((vh) => vh.name)).sort();
}

/** `weft ...` as a user runs it (the CLI from source). */
function weft(args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout });
    });
  });
}

async function eventually<T>(fn: () => Promise<T>, want: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const start = Date.now();
  let last: T | undefined;
  for (;;) {
    try {
      last = await fn();
      if (want(last)) return last;
    } catch {
      /* not yet */
    }
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("VHDS with real Envoy (delta sidecar next to a SotW sidecar)", () => {
  let mesh: TestMesh;
  let a: Upstream, b: Upstream, c: Upstream;
  let deltaPort: number, sotwPort: number;
  let delta: MeshProxy, sotw: MeshProxy;

  const service = (name: string, up: Upstream) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: default }
spec:
  hosts: [${name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${up.port} } }]
---
`;
  const webTo = (dest: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [web.default.svc.cluster.local]
  http:
  - route: [{ destination: { host: ${dest}.default.svc.cluster.local, port: { number: 8000 } } }]
---
`;
  const upstreamVia = async (port: number, host: string) => {
    const res = await httpGet(`http://127.0.0.1:${port}/`, { headers: { host }, timeoutMs: 3000 });
    return res.status === 200 ? String(res.headers["x-upstream"]) : `status ${res.status}`;
  };
  const typesOf = (p: MeshProxy) => mesh.cp.xds.registry.byNode(p.nodeId)[0]!.types;

  beforeAll(async () => {
    [a, b, c] = await Promise.all([startUpstream("a"), startUpstream("b"), startUpstream("c")]);
    deltaPort = await freePort();
    sotwPort = await freePort();
    mesh = await TestMesh.start();
    await mesh.applyValid(service("web", a) + service("web-b", b) + service("api", c) + webTo("web"));
    delta = await mesh.startProxy({ name: "client-delta", labels: { app: "client" }, capture: "explicit", explicitPort: deltaPort, bootstrap: { deltaXds: true }, envoy: process.env.VHDS_E2E_DEBUG ? { logLevel: "debug" } : {} });
    sotw = await mesh.startProxy({ name: "client-sotw", labels: { app: "client" }, capture: "explicit", explicitPort: sotwPort });
  }, 60_000);

  afterAll(async () => {
    await mesh?.close();
    await Promise.all([a, b, c].map((u) => u?.close()));
  });

  it("the delta sidecar gets routes through VHDS (route configuration with vhds, virtual hosts named <route configuration>/<host>); the SotW one inline", async () => {
    expect(await upstreamVia(deltaPort, "web:8000")).toBe("a");
    expect(await upstreamVia(deltaPort, "api:8000")).toBe("c");
    expect(await upstreamVia(sotwPort, "web:8000")).toBe("a");
    const deltaRoutes = await routeConfigs(delta.envoy);
    const withVhds = deltaRoutes.filter((rc) => rc.vhds);
    expect(withVhds.length).toBeGreaterThan(0);
    const names = await virtualHostNames(delta.envoy);
    for (const rc of withVhds) expect(names).toContain(`${rc.name}/web.default.svc.cluster.local:8000`);
    expect((await routeConfigs(sotw.envoy)).some((rc) => rc.vhds)).toBe(false);
    expect(await virtualHostNames(sotw.envoy)).toContain("web.default.svc.cluster.local:8000");
    // The server's view: the delta stream ACKed VirtualHost resources, the SotW one never asked.
    expect(typesOf(delta).vhds?.ackedVersion).toBeDefined();
    expect(typesOf(sotw).vhds).toBeUndefined();
    expect(mesh.cp.xds.registry.byNode(delta.nodeId)[0]?.virtualHostDiscovery).toBe(true);
    // `weft proxy-config routes` shows the virtual hosts sent through VHDS with their route configuration.
    const { code, stdout } = await weft(["proxy-config", "routes", delta.nodeId, "--admin", `http://127.0.0.1:${mesh.cp.adminPort}`]);
    expect(code, stdout).toBe(0);
    expect(stdout).toContain("(vhds) SYNCED");
    expect(stdout).toMatch(new RegExp(`${withVhds[0]!.name}\\s+web\\.default\\.svc\\.cluster\\.local:8000\\s`));
  });

  it("a VirtualService edit reaches the delta sidecar as one VirtualHost update, no route configuration; traffic follows on both", async () => {
    const before = { rds: typesOf(delta).rds!.sentVersion, vhdsNonce: typesOf(delta).vhds!.sentNonce };
    await mesh.applyValid(service("web", a) + service("web-b", b) + service("api", c) + webTo("web-b"));
    await eventually(() => upstreamVia(deltaPort, "web:8000"), (u) => u === "b");
    await eventually(() => upstreamVia(sotwPort, "web:8000"), (u) => u === "b");
    const after = typesOf(delta);
    expect(after.rds!.sentVersion).toBe(before.rds);
    expect(after.vhds!.sentNonce).not.toBe(before.vhdsNonce);
    expect(after.vhds!.sentResources).toBe(1);
    expect(after.vhds!.ackedVersion).toBe(after.vhds!.sentVersion);
  });

  it("a removed service's virtual host is removed from the delta sidecar; a new service adds one", async () => {
    const rcNames = (await routeConfigs(delta.envoy)).filter((rc) => rc.vhds).map((rc) => rc.name);
    const rdsBefore = typesOf(delta).rds!.sentVersion;
    await mesh.applyValid(service("web", a) + service("web-b", b) + webTo("web-b"));
    const gone = await eventually(() => virtualHostNames(delta.envoy), (names) => !names.some((n) => n.includes("api.default")));
    for (const rc of rcNames) expect(gone).toContain(`${rc}/web.default.svc.cluster.local:8000`);
    expect(typesOf(delta).rds!.sentVersion).toBe(rdsBefore);
    expect(typesOf(delta).vhds!.sentResources).toBe(rcNames.length);

    const up = await startUpstream("d");
    try {
      await mesh.applyValid(service("web", a) + service("web-b", b) + service("extra", up) + webTo("web-b"));
      await eventually(() => upstreamVia(deltaPort, "extra:8000"), (u) => u === "d");
      expect(await virtualHostNames(delta.envoy)).toContain(`${rcNames[0]}/extra.default.svc.cluster.local:8000`);
      expect(typesOf(delta).vhds!.sentResources).toBe(rcNames.length);
      expect(await upstreamVia(sotwPort, "extra:8000")).toBe("d");
      expect(await upstreamVia(deltaPort, "web:8000")).toBe("b");
    } finally {
      await up.close();
    }
  });
});

describe("VHDS with real Envoy (delta gateway: one route configuration per port, a port added later)", () => {
  let mesh: TestMesh;
  let web: Upstream;
  let gateway: MeshProxy;
  let ports: number[];

  const config = (serverPorts: number[], withVirtualService = true) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: default }
spec:
  hosts: [web.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${web.port} } }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers:
${serverPorts.map((p) => `  - { port: { number: ${p}, name: http-${p}, protocol: HTTP }, hosts: ["*"] }`).join("\n")}
---
${withVirtualService ? `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [web.example.com]
  gateways: [public]
  http:
  - route: [{ destination: { host: web.default.svc.cluster.local, port: { number: 8000 } } }]
---
` : ""}`;
  const viaGateway = async (port: number) => {
    const res = await httpGet(`http://127.0.0.1:${port}/`, { headers: { host: "web.example.com" }, timeoutMs: 3000 });
    return res.status === 200 ? String(res.headers["x-upstream"]) : `status ${res.status}`;
  };

  beforeAll(async () => {
    web = await startUpstream("web");
    ports = [await freePort(), await freePort(), await freePort()];
    mesh = await TestMesh.start();
    await mesh.applyValid(config(ports.slice(0, 2)));
    gateway = await mesh.startProxy({ name: "ingressgateway", namespace: "istio-system", type: "router", labels: { istio: "ingressgateway" }, bootstrap: { deltaXds: true } });
  }, 60_000);

  afterAll(async () => {
    await mesh?.close();
    await web?.close();
  });

  it("every port's route configuration gets its virtual hosts through VHDS; a port added later does too (its virtual hosts follow its route configuration)", async () => {
    for (const p of ports.slice(0, 2)) expect(await viaGateway(p)).toBe("web");
    const before = await routeConfigs(gateway.envoy);
    expect(before.filter((rc) => rc.vhds).length).toBe(2);
    await mesh.applyValid(config(ports));
    expect(await eventually(() => viaGateway(ports[2]!), (u) => u === "web")).toBe("web");
    const after = await routeConfigs(gateway.envoy);
    expect(after.filter((rc) => rc.vhds).length).toBe(3);
    for (const rc of after) for (const vh of rc.virtual_hosts ?? []) expect(vh.name.startsWith(`${rc.name}/`)).toBe(true);
  });

  it("the VirtualService removed: every port's virtual host goes (a placeholder that matches no host stays) and requests get 404", async () => {
    await mesh.applyValid(config(ports, false));
    for (const p of ports) expect(await eventually(() => viaGateway(p), (u) => u === "status 404")).toBe("status 404");
    const rcs = await routeConfigs(gateway.envoy);
    expect(rcs.map((rc) => [rc.name, !!rc.vhds, (rc.virtual_hosts ?? []).map((vh) => vh.name)])).toEqual(rcs.map((rc) => [rc.name, true, [`${rc.name}/weft-no-virtual-host`]]));
    await mesh.applyValid(config(ports));
    for (const p of ports) expect(await eventually(() => viaGateway(p), (u) => u === "web")).toBe("web");
  });
});
