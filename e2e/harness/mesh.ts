// A test mesh: a control plane with the mesh controller, Istio YAML applied as config, and
// sidecar / gateway Envoys that connect to it. Waits until every Envoy ACKed the current
// configuration, so tests assert on traffic, not on timing.
import { parseAllDocuments } from "yaml";
import type { Node } from "../../generated/envoy/config/core/v3/base.js";
import { formatIssue, type MeshConfig, type NetworkingResource } from "../../src/api/types.js";
import { parseDocuments, validateResource } from "../../src/api/validate-resource.js";
import { renderBootstrap, type BootstrapOptions } from "../../src/envoy/bootstrap.js";
import { startEnvoy, type EnvoyProcess, type StartEnvoyOptions } from "../../src/envoy/envoy-process.js";
import type { MeshSettings } from "../../src/model/mesh-model.js";
import { NODE_METADATA } from "../../src/model/proxy.js";
import type { ControlPlane } from "../../src/runner/control-plane.js";
import { MeshController } from "../../src/runner/mesh-controller.js";
import { silentLogger } from "../../src/log/logger.js";
import { applyCapture } from "../../src/capture/iptables.js";
import { bridgeAddress, createPod, type Pod } from "../../src/capture/pod-network.js";
import { DEFAULT_PROXY_UID, SIDECAR_ADMIN_PORT, sidecarEnvoyOptions } from "../../src/capture/sidecar.js";
import { startTestControlPlane, waitForSync } from "./control-plane.js";
import { AGENT_PORT, fetchFromPod, startPodAgent, type AgentResponse } from "./pod-agent.js";

export interface ProxySpec {
  name: string;
  namespace?: string;
  labels: Record<string, string>;
  type?: "sidecar" | "router";
  capture?: "transparent" | "explicit";
  explicitPort?: number;
  locality?: { region?: string; zone?: string; subZone?: string };
  /** Where the Envoy runs (e.g. inside a pod's network namespace). */
  envoy?: Partial<StartEnvoyOptions>;
  xdsAddress?: string;
  /** Bootstrap options on top of the harness's (e.g. adminPort + statsPort for a scrape listener). */
  bootstrap?: Partial<BootstrapOptions>;
}

export interface MeshProxy {
  spec: ProxySpec;
  nodeId: string;
  node: Node;
  envoy: EnvoyProcess;
  /** Transparent mode: the pod the proxy and its request agent run in. */
  pod?: Pod;
  /** Transparent mode: a GET made from inside the pod (through its capture). */
  fetch?: (target: { host: string; port: number; path: string; headers: Record<string, string>; timeoutMs?: number }) => Promise<AgentResponse>;
}

/** Parses Istio YAML into a MeshConfig (tests write valid YAML; validation has its own tests). */
export function meshConfigFromYaml(yaml: string): MeshConfig {
  const resources = parseAllDocuments(yaml)
    .map((d) => d.toJS() as NetworkingResource | null)
    .filter((r): r is NetworkingResource => !!r)
    .map((resource, i) => ({ resource: { ...resource, metadata: { namespace: "default", ...resource.metadata } }, source: { file: "test.yaml", document: i } }));
  return { resources, issues: [] };
}

export class TestMesh {
  readonly proxies: MeshProxy[] = [];
  private readonly pods: Pod[] = [];
  private constructor(
    readonly cp: ControlPlane,
    readonly controller: MeshController,
  ) {}

  static async start(settings: Partial<MeshSettings> = {}, opts: { transparent?: boolean } = {}): Promise<TestMesh> {
    let mc: MeshController | undefined;
    // Pods reach the control plane at the bridge address.
    const cp = await startTestControlPlane({ admit: (node, principal) => mc!.admit(node, principal), xdsAddress: opts.transparent ? "0.0.0.0" : "127.0.0.1" });
    mc = new MeshController(cp.cache, silentLogger(), settings);
    return new TestMesh(cp, mc);
  }

  /** Applies Istio YAML and waits until every proxy ACKed its new configuration. */
  async apply(yaml: string): Promise<void> {
    this.controller.setConfig(meshConfigFromYaml(yaml));
    await this.waitForSync();
  }

  /** As `apply`, after the real validator found no error in the YAML (a test's input must be what Istio accepts). */
  async applyValid(yaml: string): Promise<void> {
    const { docs, issues } = parseDocuments(yaml, "e2e.yaml");
    for (const d of docs) issues.push(...validateResource(d.value, { file: "e2e.yaml", document: d.document }).issues);
    const errors = issues.filter((i) => i.severity === "error");
    if (errors.length) throw new Error(`test YAML refused by the validator:\n${errors.map(formatIssue).join("\n")}`);
    await this.apply(yaml);
  }

  async waitForSync(timeoutMs = 20_000): Promise<void> {
    await Promise.all(
      this.proxies.map((p) => {
        const snap = this.cp.cache.get(this.controller.nodeKey(p.node));
        return snap ? waitForSync(this.cp.xds.registry, p.nodeId, snap, timeoutMs) : Promise.resolve();
      }),
    );
  }

  async startProxy(spec: ProxySpec): Promise<MeshProxy> {
    const namespace = spec.namespace ?? "default";
    const type = spec.type ?? "sidecar";
    const transparent = (spec.capture ?? "explicit") === "transparent";
    const pod = transparent ? await createPod(spec.name) : undefined;
    if (pod) this.pods.push(pod);
    const nodeId = `${type}~${pod?.ip ?? "127.0.0.1"}~${spec.name}.${namespace}~${namespace}.svc.cluster.local`;
    const metadata: Record<string, string> = {
      [NODE_METADATA.namespace]: namespace,
      [NODE_METADATA.labels]: JSON.stringify(spec.labels),
      [NODE_METADATA.interceptionMode]: transparent ? "REDIRECT" : "NONE",
      ...(spec.explicitPort ? { [NODE_METADATA.explicitPort]: String(spec.explicitPort) } : {}),
    };
    const node: Node = { id: nodeId, cluster: spec.name, metadata, ...(spec.locality ? { locality: spec.locality } : {}) };
    let yaml = renderBootstrap({
      nodeId,
      cluster: spec.name,
      metadata,
      xdsAddress: pod ? bridgeAddress() : (spec.xdsAddress ?? "127.0.0.1"),
      xdsPort: this.cp.xdsPort,
      ...(pod ? { adminAddress: pod.ip, adminPort: SIDECAR_ADMIN_PORT } : {}),
      ...spec.bootstrap,
    });
    if (spec.locality) {
      yaml = yaml.replace(/^node:\n/m, `node:\n  locality: ${JSON.stringify({ region: spec.locality.region ?? "", zone: spec.locality.zone ?? "", sub_zone: spec.locality.subZone ?? "" })}\n`);
    }
    let proxy: MeshProxy;
    if (pod) {
      await applyCapture(pod.netns, { proxyUid: DEFAULT_PROXY_UID, excludeInboundPorts: [AGENT_PORT] });
      const envoy = await startEnvoy({ bootstrapYaml: yaml, ...sidecarEnvoyOptions(pod), ...spec.envoy });
      await startPodAgent(pod);
      proxy = { spec, nodeId, node, envoy, pod, fetch: (t) => fetchFromPod(pod, t) };
    } else {
      const envoy = await startEnvoy({ name: spec.name, bootstrapYaml: yaml, ...spec.envoy });
      proxy = { spec, nodeId, node, envoy };
    }
    this.proxies.push(proxy);
    const snap = this.cp.cache.get(this.controller.nodeKey(node));
    if (snap) await waitForSync(this.cp.xds.registry, nodeId, snap);
    return proxy;
  }

  async close(): Promise<void> {
    await Promise.all(this.proxies.map((p) => p.envoy.stop()));
    await Promise.all(this.pods.map((p) => p.destroy()));
    await this.cp.close(500);
  }
}
