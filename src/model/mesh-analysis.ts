// `weft analyze`'s checks beyond validation: configurations Weft (like Istio) accepts but that
// are probably not what was meant, each with Istio's analysis message code (analysis-messages.ts)
// and the conditions of Istio's analyzer of that code (written from its documentation and
// behaviour, not its code). Pure: a MeshConfig and its model in, ValidationIssues out
// (severity "warning": none of these keeps a resource out of the mesh; the level `weft analyze`
// prints comes from the code).
import {
  CONFLICTING_GATEWAYS,
  CONFLICTING_MESH_GATEWAY_VIRTUAL_SERVICE_HOSTS,
  GATEWAY_PORT_NOT_DEFINED_ON_SERVICE,
  CONFLICTING_SIDECAR_WORKLOAD_SELECTORS,
  MULTIPLE_SIDECARS_WITHOUT_WORKLOAD_SELECTORS,
  NO_SERVER_CERTIFICATE_VERIFICATION_DESTINATION_LEVEL,
  NO_SERVER_CERTIFICATE_VERIFICATION_PORT_LEVEL,
  REFERENCED_RESOURCE_NOT_FOUND,
  VIRTUAL_SERVICE_DESTINATION_PORT_SELECTOR_REQUIRED,
  VIRTUAL_SERVICE_HOST_NOT_FOUND_IN_GATEWAY,
  type AnalysisMessageType,
} from "../api/analysis-messages.js";
import { boundText, resourceKey, type Destination, type Gateway, type MeshConfig, type SourceRef, type ValidationIssue, type VirtualService } from "../api/types.js";
import { hostsOverlap } from "./host-match.js";
import { mergeDelegates, type UnresolvedDelegate } from "./virtual-service-delegation.js";
import { buildMeshModel, labelsMatch, namespaceOf, resolveHost, DOMAIN_SUFFIX, type MeshModel } from "./mesh-model.js";

const MESH_GATEWAY = "mesh";

interface Finding {
  resource: { kind: string; metadata: { name: string; namespace?: string } };
  field: string;
  type: AnalysisMessageType;
  message: string;
}

/** Every analyzer finding of a config (in a fixed order: by check, then resource order). */
export function analyzeMesh(config: MeshConfig, model: MeshModel = buildMeshModel(config)): ValidationIssue[] {
  const sources = new Map<object, SourceRef>(config.resources.map((s) => [s.resource, s.source]));
  const findings: Finding[] = [
    ...conflictingMeshGatewayHosts(model),
    ...destinationPorts(model),
    ...gatewayHosts(model),
    ...sidecarSelectors(model),
    ...caCertificates(model),
    ...unresolvedDelegates(model),
    ...conflictingGateways(model),
    ...gatewayPortsOnServices(model),
  ];
  return findings.flatMap((f) => {
    const source = sources.get(f.resource);
    if (!source) return [];
    return [{ ...source, resource: boundText(resourceKey(f.resource)), field: f.field, message: boundText(f.message), severity: "warning" as const, code: f.type.code }];
  });
}

/** "ns/name", as Istio names resources in messages. */
function fullName(r: { metadata: { name: string; namespace?: string } }): string {
  return `${namespaceOf(r)}/${r.metadata.name}`;
}

function qualify(host: string, namespace: string): string {
  return host.includes(".") || host.includes("*") ? host : `${host}.${namespace}.${DOMAIN_SUFFIX}`;
}

function boundToMesh(vs: VirtualService): boolean {
  return !vs.spec.gateways || vs.spec.gateways.length === 0 || vs.spec.gateways.includes(MESH_GATEWAY);
}

/**
 * IST0109: VirtualServices bound to the mesh that define the same host for the same namespaces
 * (their exportTo scopes: "*" or each namespace named, "." being their own).
 */
function conflictingMeshGatewayHosts(model: MeshModel): Finding[] {
  const byScopedHost = new Map<string, VirtualService[]>();
  for (const vs of model.virtualServices) {
    if (!boundToMesh(vs)) continue;
    const ns = namespaceOf(vs);
    const exportTo = vs.spec.exportTo ?? [];
    const scopes = exportTo.length === 0 || exportTo.includes("*") ? ["*"] : [...new Set(exportTo.map((e) => (e === "." ? ns : e)))];
    for (const scope of scopes) {
      for (const host of new Set(vs.spec.hosts ?? [])) {
        const key = `${scope}/${qualify(host, ns)}`;
        const list = byScopedHost.get(key);
        if (list) list.push(vs);
        else byScopedHost.set(key, [vs]);
      }
    }
  }
  const findings: Finding[] = [];
  for (const [scopedHost, list] of byScopedHost) {
    if (list.length < 2) continue;
    const names = list.map(fullName).join(",");
    for (const vs of list) {
      findings.push({
        resource: vs,
        field: "spec.hosts",
        type: CONFLICTING_MESH_GATEWAY_VIRTUAL_SERVICE_HOSTS,
        message: `The VirtualServices ${names} associated with mesh gateway define the same host ${scopedHost} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.`,
      });
    }
  }
  return findings;
}

/** Every destination of a VirtualService (routes of http, tcp, tls; HTTP mirrors), with its field path. */
function destinationsOf(vs: VirtualService): { destination: Destination; path: string; what: string }[] {
  const found: { destination: Destination; path: string; what: string }[] = [];
  (vs.spec.http ?? []).forEach((rule, i) => {
    (rule.route ?? []).forEach((d, j) => found.push({ destination: d.destination, path: `spec.http[${i}].route[${j}].destination`, what: "host:port" }));
    if (rule.mirror) found.push({ destination: rule.mirror, path: `spec.http[${i}].mirror`, what: "mirror host:port" });
  });
  for (const kind of ["tcp", "tls"] as const) {
    (vs.spec[kind] ?? []).forEach((rule, i) => {
      (rule.route ?? []).forEach((d, j) => found.push({ destination: d.destination, path: `spec.${kind}[${i}].route[${j}].destination`, what: "host:port" }));
    });
  }
  return found;
}

/**
 * IST0112: a destination without a port to a service with more than one port; IST0101
 * ("host:port"): a destination port the service does not have. (An unknown host is reported
 * by validation, IST0101 "host".)
 */
function destinationPorts(model: MeshModel): Finding[] {
  const findings: Finding[] = [];
  for (const vs of model.virtualServices) {
    for (const { destination, path, what } of destinationsOf(vs)) {
      const service = resolveHost(model, destination.host, namespaceOf(vs));
      if (!service) continue;
      const ports = service.ports.map((p) => p.number);
      if (destination.port === undefined) {
        if (ports.length > 1) {
          findings.push({
            resource: vs,
            field: path,
            type: VIRTUAL_SERVICE_DESTINATION_PORT_SELECTOR_REQUIRED,
            message: `This VirtualService routes to a service "${destination.host}" that exposes multiple ports [${ports.join(" ")}]. Specifying a port in the destination is required to disambiguate.`,
          });
        }
      } else if (!ports.includes(destination.port.number)) {
        findings.push({
          resource: vs,
          field: `${path}.port.number`,
          type: REFERENCED_RESOURCE_NOT_FOUND,
          message: `Referenced ${what} not found: "${destination.host}:${destination.port.number}"`,
        });
      }
    }
  }
  return findings;
}

/**
 * IST0132: a VirtualService bound to a Gateway none of whose server hosts (as seen from the
 * VirtualService's namespace) overlaps any of its hosts. A Gateway that does not exist has no
 * hosts, so it is reported too (as Istio does, besides IST0101 for the reference).
 */
function gatewayHosts(model: MeshModel): Finding[] {
  const gateways = new Map(model.gateways.map((g) => [fullName(g), g]));
  const findings: Finding[] = [];
  for (const vs of model.virtualServices) {
    const vsNamespace = namespaceOf(vs);
    (vs.spec.gateways ?? []).forEach((name, i) => {
      if (name === MESH_GATEWAY) return;
      const gatewayName = name.includes("/") ? name : `${vsNamespace}/${name}`;
      const gateway = gateways.get(gatewayName);
      const serverHosts = (gateway?.spec.servers ?? []).flatMap((s) => s.hosts ?? []);
      const visible = serverHosts.flatMap((h) => hostVisibleFrom(h, namespaceOf(gateway ?? vs), vsNamespace));
      const hosts = vs.spec.hosts ?? [];
      if (visible.some((gh) => hosts.some((h) => hostsOverlap(gh, h)))) return;
      findings.push({
        resource: vs,
        field: `spec.gateways[${i}]`,
        type: VIRTUAL_SERVICE_HOST_NOT_FOUND_IN_GATEWAY,
        message: `one or more host [${hosts.join(" ")}] defined in VirtualService ${fullName(vs)} not found in Gateway ${gatewayName}.`,
      });
    });
  }
  return findings;
}

/** A Gateway server host ("host", "ns/host", "./host", "*\/host") as seen by VirtualServices of `namespace`: [] when not for them. */
function hostVisibleFrom(serverHost: string, gatewayNamespace: string, namespace: string): string[] {
  const slash = serverHost.indexOf("/");
  if (slash === -1) return [serverHost];
  const ns = serverHost.slice(0, slash);
  const host = serverHost.slice(slash + 1);
  if (ns === "*" || ns === namespace || (ns === "." && gatewayNamespace === namespace)) return [host];
  return [];
}

/**
 * IST0111: more than one Sidecar without a workloadSelector in a namespace; IST0110: a workload
 * of the namespace (a WorkloadEntry, or a service endpoint such as a Kubernetes Pod) selected by
 * more than one Sidecar's workloadSelector.
 */
function sidecarSelectors(model: MeshModel): Finding[] {
  const findings: Finding[] = [];
  const byNamespace = new Map<string, typeof model.sidecars>();
  for (const s of model.sidecars) byNamespace.set(namespaceOf(s), [...(byNamespace.get(namespaceOf(s)) ?? []), s]);
  for (const [namespace, sidecars] of byNamespace) {
    const unselected = sidecars.filter((s) => !s.spec.workloadSelector);
    if (unselected.length > 1) {
      const names = `[${unselected.map((s) => s.metadata.name).join(" ")}]`;
      for (const s of unselected) {
        findings.push({ resource: s, field: "spec", type: MULTIPLE_SIDECARS_WITHOUT_WORKLOAD_SELECTORS, message: `The Sidecars ${names} in namespace "${namespace}" have no workload selector, which can lead to undefined behavior.` });
      }
    }
    const selecting = sidecars.filter((s) => s.spec.workloadSelector);
    if (selecting.length < 2) continue;
    const reported = new Set<object>();
    for (const workload of workloadsOf(model, namespace)) {
      const matching = selecting.filter((s) => labelsMatch(s.spec.workloadSelector?.labels ?? {}, workload.labels));
      if (matching.length < 2) continue;
      const names = `[${matching.map((s) => s.metadata.name).join(" ")}]`;
      for (const s of matching) {
        if (reported.has(s)) continue;
        reported.add(s);
        findings.push({
          resource: s,
          field: "spec.workloadSelector",
          type: CONFLICTING_SIDECAR_WORKLOAD_SELECTORS,
          message: `The Sidecars ${names} in namespace "${namespace}" select the same workload pod "${workload.name}", which can lead to undefined behavior.`,
        });
      }
    }
  }
  return findings;
}

/** The workloads of a namespace with their labels: WorkloadEntries, and the endpoints of its services (one per address). */
function workloadsOf(model: MeshModel, namespace: string): { name: string; labels: Record<string, string> }[] {
  const found = new Map<string, Record<string, string>>();
  for (const we of model.workloads) {
    if (namespaceOf(we) === namespace) found.set(we.metadata.name, { ...(we.metadata.labels ?? {}), ...(we.spec.labels ?? {}) });
  }
  for (const service of model.services) {
    if (service.namespace !== namespace) continue;
    for (const ep of service.endpoints) {
      const name = ep.workload ? ep.workload.slice(ep.workload.indexOf("/") + 1) : ep.address;
      if (!found.has(name)) found.set(name, ep.labels);
    }
  }
  return [...found].sort(([a], [b]) => a.localeCompare(b)).map(([name, labels]) => ({ name, labels }));
}

/** IST0128 / IST0129: a DestinationRule originating TLS (SIMPLE or MUTUAL) without caCertificates, so the server is not verified. */
function caCertificates(model: MeshModel): Finding[] {
  const findings: Finding[] = [];
  for (const dr of model.destinationRules) {
    const ns = namespaceOf(dr);
    const tls = dr.spec.trafficPolicy?.tls;
    if (tls && (tls.mode === "SIMPLE" || tls.mode === "MUTUAL") && !tls.caCertificates) {
      findings.push({
        resource: dr,
        field: "spec.trafficPolicy.tls",
        type: NO_SERVER_CERTIFICATE_VERIFICATION_DESTINATION_LEVEL,
        message: `DestinationRule ${fullName(dr)} in namespace ${ns} has TLS mode set to ${tls.mode} but no caCertificates are set to validate server identity for host: ${dr.spec.host}`,
      });
    }
    (dr.spec.trafficPolicy?.portLevelSettings ?? []).forEach((p, i) => {
      if (p.tls && (p.tls.mode === "SIMPLE" || p.tls.mode === "MUTUAL") && !p.tls.caCertificates) {
        findings.push({
          resource: dr,
          field: `spec.trafficPolicy.portLevelSettings[${i}].tls`,
          type: NO_SERVER_CERTIFICATE_VERIFICATION_PORT_LEVEL,
          message: `DestinationRule ${fullName(dr)} in namespace ${ns} has TLS mode set to ${p.tls.mode} but no caCertificates are set to validate server identity for host: ${dr.spec.host} at port ${p.port.number}`,
        });
      }
    });
  }
  return findings;
}

/** IST0101 ("delegate VirtualService"): a root rule whose delegate is missing or not exported to the root's namespace; the rule applies nothing. */
function unresolvedDelegates(model: MeshModel): Finding[] {
  const unresolved: UnresolvedDelegate[] = [];
  mergeDelegates(model.virtualServices, unresolved);
  return unresolved.map(({ root, rule, delegate, reason }) => {
    const name = `${delegate.namespace || namespaceOf(root)}/${delegate.name}`;
    return {
      resource: root,
      field: `spec.http[${rule}].delegate`,
      type: REFERENCED_RESOURCE_NOT_FOUND,
      message:
        reason === "missing"
          ? `Referenced delegate VirtualService not found: "${name}" (a delegate is a VirtualService without hosts); this rule routes nothing until it exists`
          : `Referenced delegate VirtualService not found: "${name}" exists but its exportTo does not include namespace "${namespaceOf(root)}"; this rule routes nothing`,
    };
  });
}

/** A label selector as Kubernetes prints one ("app=a,istio=ingressgateway": keys sorted), as Istio's messages show it. */
function selectorText(selector: Record<string, string> | undefined): string {
  return Object.keys(selector ?? {})
    .sort()
    .map((k) => `${k}=${selector![k]}`)
    .join(",");
}

/** Every workload's labels (WorkloadEntries and service endpoints such as Kubernetes Pods), across namespaces. */
function allWorkloadLabels(model: MeshModel): Record<string, string>[] {
  const namespaces = new Set([...model.workloads.map(namespaceOf), ...model.services.map((s) => s.namespace)]);
  return [...namespaces].flatMap((ns) => workloadsOf(model, ns).map((w) => w.labels));
}

/**
 * IST0145: two Gateways that select the same workloads (the same selector, or selectors that
 * both match a known workload) with servers on the same port naming the same host (as written,
 * with the same bind): the gateway proxy can serve only one of them.
 */
function conflictingGateways(model: MeshModel): Finding[] {
  if (model.gateways.length < 2) return [];
  const workloads = allWorkloadLabels(model);
  const sameWorkloads = (a: Gateway, b: Gateway): boolean => {
    const sa = selectorText(a.spec.selector);
    const sb = selectorText(b.spec.selector);
    if (sa === sb) return true;
    return workloads.some((labels) => labelsMatch(a.spec.selector ?? {}, labels) && labelsMatch(b.spec.selector ?? {}, labels));
  };
  const byPort = new Map<number, { gateway: Gateway; hosts: Set<string>; bind: string }[]>();
  for (const gateway of model.gateways) {
    for (const server of gateway.spec.servers ?? []) {
      const list = byPort.get(server.port.number) ?? [];
      list.push({ gateway, hosts: new Set(server.hosts ?? []), bind: server.bind ?? "" });
      byPort.set(server.port.number, list);
    }
  }
  const findings: Finding[] = [];
  for (const gateway of model.gateways) {
    (gateway.spec.servers ?? []).forEach((server, i) => {
      const bind = server.bind ?? "";
      const others = (byPort.get(server.port.number) ?? []).filter(
        (o) => o.gateway !== gateway && fullName(o.gateway) !== fullName(gateway) && o.bind === bind && (server.hosts ?? []).some((h) => o.hosts.has(h)) && sameWorkloads(gateway, o.gateway),
      );
      if (others.length === 0) return;
      const names = [...new Set(others.map((o) => fullName(o.gateway)))].sort();
      findings.push({
        resource: gateway,
        field: `spec.servers[${i}]`,
        type: CONFLICTING_GATEWAYS,
        message: `Conflict with gateways ${names.join(",")} (workload selector ${selectorText(gateway.spec.selector)}, port ${server.port.number}, hosts ${(server.hosts ?? []).join(",")}).`,
      });
    });
  }
  return findings;
}

/**
 * IST0162: a Gateway server port that no service of the Gateway's workloads exposes (neither as
 * a service port nor as the port its endpoints listen on): clients of that service cannot reach
 * it. Only Gateways whose selector matches endpoints of some service are checked (a gateway
 * proxy run without a service, as in file mode, is not reported).
 */
function gatewayPortsOnServices(model: MeshModel): Finding[] {
  const findings: Finding[] = [];
  for (const gateway of model.gateways) {
    const selector = gateway.spec.selector ?? {};
    if (Object.keys(selector).length === 0) continue;
    const exposed = new Set<number>();
    let selected = false;
    for (const service of model.services) {
      for (const ep of service.endpoints) {
        if (!labelsMatch(selector, ep.labels)) continue;
        selected = true;
        for (const port of service.ports) {
          exposed.add(port.number);
          exposed.add(ep.ports[port.number] ?? port.targetPort);
        }
      }
    }
    if (!selected) continue;
    (gateway.spec.servers ?? []).forEach((server, i) => {
      if (exposed.has(server.port.number)) return;
      findings.push({
        resource: gateway,
        field: `spec.servers[${i}].port`,
        type: GATEWAY_PORT_NOT_DEFINED_ON_SERVICE,
        message: `The gateway is listening on a target port (port ${server.port.number}) that is not defined in the Service associated with its workload instances (Pod selector ${selectorText(selector)}). If you need to access the gateway port through the gateway Service, it will not be available.`,
      });
    });
  }
  return findings;
}
