// The docker-compose version of `weft demo` (examples/compose/): the same Istio YAML, the same
// workloads and the same sidecar bootstraps (renderBootstrap with the demo's node identity and
// metadata), laid out as compose services. scripts/gen-compose.ts writes these files;
// `npm run gen:compose -- --check` (in .ci/run) fails when the checked-in copy differs, and
// e2e/compose.e2e.test.ts runs the topology with real Envoy in network namespaces.
//
// Per workload (e.g. reviews-v2), three services share one network namespace, as a pod's
// containers do: the app (owns the namespace, has the workload's address), `<name>-init`
// (`weft capture apply`, NET_ADMIN/NET_RAW, exits) and `<name>-sidecar` (upstream Envoy as
// uid 1337, started once the init finished and the control plane is healthy).
import { stringify } from "yaml";
import { renderBootstrap } from "../envoy/bootstrap.js";
import { NODE_METADATA } from "../model/proxy.js";
import { DEMO_SERVICES, DEMO_WORKLOADS, routingYaml, serviceHostNames, servicesYaml, serviceVip, workloadsYaml, type DemoWorkload } from "./default-mesh.js";

/** Where things are inside the compose containers. */
export const COMPOSE = {
  subnet: "172.30.0.0/24",
  controlPlaneAddress: "172.30.0.10",
  gatewayAddress: "172.30.0.20",
  /** The first workload's address; the others follow in DEMO_WORKLOADS order. */
  firstWorkloadOctet: 11,
  ingressPort: 8080,
  xdsPort: 15010,
  adminPort: 15014,
  appPort: 9080,
  sidecarAdminPort: 15000,
  proxyUid: 1337,
  configDir: "/etc/weft/config",
  bootstrapDir: "/etc/weft/bootstrap",
  stateDir: "/var/lib/weft",
  /** The xDS server certificate's DNS name (mesh-runner's serverName). */
  xdsServerName: "weft.weft-system.svc",
  weftImage: "weft:0.1.0",
  envoyImage: "envoyproxy/envoy:v1.40.0",
} as const;

export interface ComposeWorkload {
  workload: DemoWorkload;
  /** "<app>-<version>": the compose service, the WorkloadEntry and the credential's name. */
  name: string;
  address: string;
}

export function composeWorkloads(): ComposeWorkload[] {
  const base = COMPOSE.subnet.split(".").slice(0, 3).join(".");
  return DEMO_WORKLOADS.map((w, i) => ({ workload: w, name: `${w.app}-${w.version}`, address: `${base}.${COMPOSE.firstWorkloadOctet + i}` }));
}

/** The node metadata of a demo sidecar (the same in `weft demo` and in compose). */
export function demoSidecarMetadata(w: DemoWorkload, mode: "transparent" | "explicit", explicitPort?: number): Record<string, string> {
  return {
    [NODE_METADATA.namespace]: "default",
    [NODE_METADATA.labels]: JSON.stringify({ app: w.app, version: w.version }),
    [NODE_METADATA.interceptionMode]: mode === "transparent" ? "REDIRECT" : "NONE",
    ...(explicitPort ? { [NODE_METADATA.explicitPort]: String(explicitPort) } : {}),
  };
}

/** The demo's sidecar node id. */
export function demoSidecarNodeId(w: DemoWorkload, address: string): string {
  return `sidecar~${address}~${w.app}-${w.version}.default~default.svc.cluster.local`;
}

export const DEMO_GATEWAY = {
  namespace: "istio-system",
  name: "istio-ingressgateway",
  // Istio's gateway Deployment labels: `app` names its spans (istio-ingressgateway.istio-system) and metrics.
  labels: { app: "istio-ingressgateway", istio: "ingressgateway" },
  nodeId: (address: string) => `router~${address}~ingressgateway.istio-system~istio-system.svc.cluster.local`,
  metadata: { [NODE_METADATA.namespace]: "istio-system", [NODE_METADATA.labels]: JSON.stringify({ app: "istio-ingressgateway", istio: "ingressgateway" }) },
} as const;

/** In compose the gateway authenticates like the sidecars: its WorkloadEntry gets a token file. */
function gatewayYaml(): string {
  return `# The ingress gateway's registration: \`weft serve --security\` writes its token to
# ${COMPOSE.stateDir}/credentials/${DEMO_GATEWAY.namespace}/${DEMO_GATEWAY.name}.token, which its Envoy reads.
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${DEMO_GATEWAY.name}, namespace: ${DEMO_GATEWAY.namespace} }
spec:
  address: ${COMPOSE.gatewayAddress}
  labels: { app: istio-ingressgateway, istio: ingressgateway }
  serviceAccount: ${DEMO_GATEWAY.name}
`;
}

function tokenFile(namespace: string, name: string): string {
  return `${COMPOSE.stateDir}/credentials/${namespace}/${name}.token`;
}

const XDS_TLS = { caFile: `${COMPOSE.stateDir}/public/root-cert.pem`, sni: COMPOSE.xdsServerName };

/** Every file of examples/compose/, by path relative to it. */
export function composeFiles(): Map<string, string> {
  const files = new Map<string, string>();
  const workloads = composeWorkloads();
  files.set("config/services.yaml", servicesYaml());
  files.set("config/routing.yaml", routingYaml(COMPOSE.ingressPort));
  files.set("config/workloads.yaml", workloadsYaml(workloads.map((w) => ({ workload: w.workload, address: w.address, port: COMPOSE.appPort })), { sidecarInbound: true }));
  files.set("config/gateway.yaml", gatewayYaml());
  for (const w of workloads) {
    files.set(
      `bootstrap/${w.name}.yaml`,
      renderBootstrap({
        nodeId: demoSidecarNodeId(w.workload, w.address),
        cluster: w.workload.app,
        metadata: demoSidecarMetadata(w.workload, "transparent"),
        xdsAddress: "weft",
        xdsPort: COMPOSE.xdsPort,
        adminAddress: w.address,
        adminPort: COMPOSE.sidecarAdminPort,
        xdsTls: XDS_TLS,
        xdsTokenFile: tokenFile("default", w.name),
      }),
    );
  }
  files.set(
    "bootstrap/ingressgateway.yaml",
    renderBootstrap({
      nodeId: DEMO_GATEWAY.nodeId(COMPOSE.gatewayAddress),
      cluster: DEMO_GATEWAY.name,
      metadata: { ...DEMO_GATEWAY.metadata },
      xdsAddress: "weft",
      xdsPort: COMPOSE.xdsPort,
      adminAddress: COMPOSE.gatewayAddress,
      adminPort: COMPOSE.sidecarAdminPort,
      xdsTls: XDS_TLS,
      xdsTokenFile: tokenFile(DEMO_GATEWAY.namespace, DEMO_GATEWAY.name),
    }),
  );
  files.set("compose.yaml", composeYaml(workloads));
  return files;
}

function composeYaml(workloads: ComposeWorkload[]): string {
  // Service names resolve to the services' virtual IPs, as cluster DNS (and the demo's hosts
  // files) would: the sidecar captures the connection and routes it.
  const extraHosts = DEMO_SERVICES.flatMap((s) => serviceHostNames(s).map((h) => `${h}:${serviceVip(s)}`));
  const sidecarVolumes = [`./bootstrap:${COMPOSE.bootstrapDir}:ro`, `weft-state:${COMPOSE.stateDir}:ro`];
  const envoyCommand = (file: string) => ["-c", `${COMPOSE.bootstrapDir}/${file}`, "--drain-time-s", "1", "--drain-strategy", "immediate"];
  const uid = `${COMPOSE.proxyUid}:${COMPOSE.proxyUid}`;
  const services: Record<string, unknown> = {
    weft: {
      image: COMPOSE.weftImage,
      build: { context: "../.." },
      // The sidecars (uid 1337) read their token files from the shared state volume, which the
      // control plane writes 0600: in compose it runs as the same uid.
      user: uid,
      command: ["serve", "--security", "--state-dir", COMPOSE.stateDir, "--config-dir", COMPOSE.configDir, "--xds-address", "0.0.0.0", "--xds-port", String(COMPOSE.xdsPort), "--admin-address", "0.0.0.0", "--admin-port", String(COMPOSE.adminPort)],
      volumes: [`./config:${COMPOSE.configDir}:ro`, `weft-state:${COMPOSE.stateDir}`],
      ports: [`${COMPOSE.adminPort}:${COMPOSE.adminPort}`],
      healthcheck: {
        test: ["CMD", "node", "-e", `fetch("http://127.0.0.1:${COMPOSE.adminPort}/readyz").then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`],
        interval: "2s",
        timeout: "2s",
        retries: 30,
      },
      networks: { mesh: { ipv4_address: COMPOSE.controlPlaneAddress } },
    },
  };
  for (const w of workloads) {
    services[w.name] = {
      image: COMPOSE.weftImage,
      command: ["sample-app", "--name", w.workload.app, "--version", w.workload.version, "--port", String(COMPOSE.appPort)],
      extra_hosts: extraHosts,
      networks: { mesh: { ipv4_address: w.address } },
    };
    services[`${w.name}-init`] = {
      image: COMPOSE.weftImage,
      user: "0:0",
      cap_drop: ["ALL"],
      cap_add: ["NET_ADMIN", "NET_RAW"],
      network_mode: `service:${w.name}`,
      command: ["capture", "apply", "--proxy-uid", String(COMPOSE.proxyUid)],
      depends_on: { [w.name]: { condition: "service_started" } },
    };
    services[`${w.name}-sidecar`] = {
      image: COMPOSE.envoyImage,
      user: uid,
      network_mode: `service:${w.name}`,
      command: envoyCommand(`${w.name}.yaml`),
      volumes: sidecarVolumes,
      depends_on: { [`${w.name}-init`]: { condition: "service_completed_successfully" }, weft: { condition: "service_healthy" } },
    };
  }
  services.ingressgateway = {
    image: COMPOSE.envoyImage,
    user: uid,
    command: envoyCommand("ingressgateway.yaml"),
    volumes: sidecarVolumes,
    ports: [`${COMPOSE.ingressPort}:${COMPOSE.ingressPort}`],
    networks: { mesh: { ipv4_address: COMPOSE.gatewayAddress } },
    depends_on: { weft: { condition: "service_healthy" } },
  };
  const doc = {
    services,
    networks: { mesh: { ipam: { config: [{ subnet: COMPOSE.subnet }] } } },
    volumes: { "weft-state": {} },
  };
  return (
    "# Generated by `npm run gen:compose` from src/demo/compose-topology.ts: the demo's mesh in\n" +
    "# docker-compose. Run from this directory: docker compose up --build; then\n" +
    `#   curl http://127.0.0.1:${COMPOSE.ingressPort}/productpage\n` +
    stringify(doc, { lineWidth: 0 })
  );
}
