// Sidecar injection, pure: a Pod (as the apiserver sends it to the mutating webhook) in, the
// JSON patch that adds Weft's sidecar out — or why it is left alone. Istio's conventions:
//
// - Which pods: the MutatingWebhookConfiguration's selectors decide on the namespace
//   (istio-injection=enabled, istio.io/rev=<revision>) and the pod label sidecar.istio.io/inject
//   (inject-configuration.ts); here a pod is still skipped when its label or annotation
//   sidecar.istio.io/inject says no, it uses hostNetwork (capture would rewrite the node's
//   rules), it is already injected (annotation sidecar.istio.io/status or a container named
//   istio-proxy), or its istio.io/rev label names another revision.
// - What is added (names as Istio's, so `kubectl logs -c istio-proxy` and existing tooling work):
//   initContainers[0] istio-init: `weft capture apply ...` (the capture rules; root with
//     NET_ADMIN and NET_RAW only, like istio-init), image = Weft's image;
//   initContainers[1] istio-proxy: upstream Envoy as a NATIVE sidecar (restartPolicy Always):
//     the app's containers (and later init containers) start only once its startupProbe
//     (GET :15021/healthz/ready = Envoy's /ready: initial configuration and certificates in
//     place) passes, and at shutdown it is stopped only after the app's containers exited;
//   volumes istio-token (projected ServiceAccount token, audience = Weft's --token-audience,
//     bound to the pod) and istiod-ca-cert (ConfigMap istio-ca-root-cert, Weft publishes it);
//   label security.istio.io/tlsMode=istio, annotation sidecar.istio.io/status;
//   the app containers' HTTP probes rewritten to :15021/app-health/<container>/<probe> (Istio's
//   paths), which the sidecar forwards to the app on 127.0.0.1 — so a kubelet probe is not refused
//   by the STRICT mTLS inbound listener (annotation sidecar.istio.io/rewriteAppHTTPProbers=false
//   keeps them as written).
// - The bootstrap (renderBootstrap) is passed inline (`--config-yaml`): node id, NAMESPACE,
//   LABELS, SERVICE_ACCOUNT from the pod; POD_NAME and the pod IP are not known at admission
//   (generateName, no IP yet), so they are Kubernetes `$(VAR)` references to downward-API env
//   vars that the kubelet expands in args. Every other `$` is escaped as `$$`.
import { renderBootstrap } from "../envoy/bootstrap.js";
import { PROMETHEUS_STATS_PORT, READINESS_PATH, READINESS_PORT, type AppProbeRoute } from "../envoy/proxy-stats.js";
import { DEFAULT_INBOUND_PORT, DEFAULT_OUTBOUND_PORT } from "../capture/iptables.js";
import { DEFAULT_PROXY_UID, SIDECAR_ADMIN_PORT } from "../capture/sidecar.js";
import { INJECT_ANNOTATION, STATUS_ANNOTATION, injectFlag, readOverrides, type InjectionOverrides } from "./inject-overrides.js";

export const PROXY_CONTAINER = "istio-proxy";
export const INIT_CONTAINER = "istio-init";
export const TOKEN_VOLUME = "istio-token";
export const CA_VOLUME = "istiod-ca-cert";
export const TOKEN_DIR = "/var/run/secrets/tokens";
export const TOKEN_FILE = `${TOKEN_DIR}/istio-token`;
export const CA_DIR = "/var/run/secrets/istio";
export const CA_FILE = `${CA_DIR}/root-cert.pem`;
/** The ConfigMap Weft publishes in every namespace (Istio's name). */
export const ROOT_CERT_CONFIGMAP = "istio-ca-root-cert";
export const TLS_MODE_LABEL = "security.istio.io/tlsMode";
export const REVISION_LABEL = "istio.io/rev";
export const REWRITE_PROBES_ANNOTATION = "sidecar.istio.io/rewriteAppHTTPProbers";

export interface InjectionSettings {
  /** Weft's image (entrypoint `weft`): runs `weft capture apply` in the init container. */
  image: string;
  /** The sidecar's image (upstream Envoy). */
  proxyImage: string;
  /** Where sidecars reach Weft's xDS server: a DNS name (the Service) or an IP. */
  xdsAddress: string;
  xdsPort: number;
  /**
   * TLS to the xDS server, verified against the mesh root (ConfigMap istio-ca-root-cert) with this
   * name (SNI), and the projected token sent at every stream. undefined: plaintext xDS and no
   * token (Weft without --security trusts node metadata).
   */
  xdsServerName?: string;
  /** Audience of the projected token (Weft's --token-audience). */
  tokenAudience: string;
  /** Lifetime asked for the projected token (kubelet refreshes it at 80 %). */
  tokenExpirationSeconds: number;
  /** This control plane's revision (istio.io/rev). */
  revision: string;
  clusterDomain: string;
}

export const DEFAULT_INJECTION_SETTINGS: InjectionSettings = {
  image: "ghcr.io/weft-mesh/weft:latest",
  proxyImage: "envoyproxy/envoy:v1.40.0",
  xdsAddress: "weft.weft-system.svc",
  xdsPort: 15010,
  xdsServerName: "weft.weft-system.svc",
  tokenAudience: "istio-ca",
  tokenExpirationSeconds: 43200,
  revision: "default",
  clusterDomain: "cluster.local",
};

/** Sidecar defaults (Istio's): resources, concurrency, drain. */
export const PROXY_DEFAULTS = {
  requests: { cpu: "100m", memory: "128Mi" },
  limits: { cpu: "2000m", memory: "1Gi" },
  concurrency: 2,
  drainSeconds: 5,
  logLevel: "warning",
} as const;

export interface JsonPatchOperation {
  op: "add";
  path: string;
  value: unknown;
}

export type InjectionDecision =
  | { outcome: "injected"; patch: JsonPatchOperation[]; warnings: string[] }
  | { outcome: "skipped"; reason: string }
  | { outcome: "refused"; message: string; warnings: string[] };

/** Bounds on what is read of a pod. */
const MAX_LABELS = 64;
const MAX_CONTAINERS = 64;

interface PodLike {
  metadata?: { name?: unknown; generateName?: unknown; namespace?: unknown; labels?: unknown; annotations?: unknown };
  spec?: { hostNetwork?: unknown; serviceAccountName?: unknown; containers?: unknown; initContainers?: unknown; volumes?: unknown };
}

function stringMap(value: unknown): Record<string, string> {
  if (!value || typeof value !== "object" || Array.isArray(value)) return {};
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === "string"));
}

function namesOf(list: unknown): string[] {
  return Array.isArray(list) ? list.flatMap((c) => (c && typeof c === "object" && typeof (c as { name?: unknown }).name === "string" ? [(c as { name: string }).name] : [])) : [];
}

/** RFC 6901: "~" -> "~0", "/" -> "~1". */
function pointer(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

/** Decides and builds the patch for `pod` created in `namespace`. */
export function injectSidecar(pod: unknown, namespace: string, settings: InjectionSettings): InjectionDecision {
  const p = (pod && typeof pod === "object" ? pod : {}) as PodLike;
  const labels = stringMap(p.metadata?.labels);
  const annotations = stringMap(p.metadata?.annotations);
  const objectName = typeof p.metadata?.name === "string" && p.metadata.name !== "" ? p.metadata.name : `${typeof p.metadata?.generateName === "string" ? p.metadata.generateName : ""}<generated>`;
  const who = `Pod ${namespace}/${objectName}`;

  if (injectFlag(annotations[INJECT_ANNOTATION]) === false) return { outcome: "skipped", reason: `${who}: annotation ${INJECT_ANNOTATION}=${annotations[INJECT_ANNOTATION]}` };
  if (injectFlag(labels[INJECT_ANNOTATION]) === false) return { outcome: "skipped", reason: `${who}: label ${INJECT_ANNOTATION}=${labels[INJECT_ANNOTATION]}` };
  if (p.spec?.hostNetwork === true) return { outcome: "skipped", reason: `${who}: uses hostNetwork (capture rules would apply to the node)` };
  const initNames = namesOf(p.spec?.initContainers);
  const containerNames = namesOf(p.spec?.containers);
  if (annotations[STATUS_ANNOTATION] !== undefined || [...initNames, ...containerNames].includes(PROXY_CONTAINER)) {
    return { outcome: "skipped", reason: `${who}: already injected (annotation ${STATUS_ANNOTATION} or a container named ${PROXY_CONTAINER})` };
  }
  if (labels[REVISION_LABEL] !== undefined && labels[REVISION_LABEL] !== settings.revision) {
    return { outcome: "skipped", reason: `${who}: label ${REVISION_LABEL}=${labels[REVISION_LABEL]} names another revision than this control plane's (${settings.revision})` };
  }

  const { overrides, errors, warnings } = readOverrides(annotations);
  if (Object.keys(labels).length > MAX_LABELS) errors.push(`metadata.labels: ${Object.keys(labels).length} labels, more than the ${MAX_LABELS} Weft reads`);
  if (initNames.length + containerNames.length > MAX_CONTAINERS) errors.push(`spec: more than ${MAX_CONTAINERS} containers`);
  if (initNames.includes(INIT_CONTAINER)) errors.push(`spec.initContainers: a container is already named ${INIT_CONTAINER}`);
  const volumeNames = namesOf(p.spec?.volumes);
  for (const v of [TOKEN_VOLUME, CA_VOLUME]) if (settings.xdsServerName && volumeNames.includes(v)) errors.push(`spec.volumes: a volume is already named ${v}`);
  if (errors.length > 0) return { outcome: "refused", message: `sidecar injection: ${who}: ${errors.join("; ")}`, warnings };

  const rewrites = injectFlag(annotations[REWRITE_PROBES_ANNOTATION]) === false ? [] : probeRewrites(p.spec?.containers);
  const serviceAccount = typeof p.spec?.serviceAccountName === "string" && p.spec.serviceAccountName !== "" ? p.spec.serviceAccountName : "default";
  const podLabels = { ...labels, [TLS_MODE_LABEL]: "istio" };
  const proxy = proxyContainer(namespace, podLabels, serviceAccount, settings, overrides, rewrites.map((r) => r.route));
  const init = initContainer(settings, overrides);
  const volumes = settings.xdsServerName ? injectedVolumes(settings) : [];

  const patch: JsonPatchOperation[] = [];
  if (Array.isArray(p.spec?.initContainers) && p.spec.initContainers.length > 0) {
    patch.push({ op: "add", path: "/spec/initContainers/0", value: proxy });
    patch.push({ op: "add", path: "/spec/initContainers/0", value: init });
  } else {
    patch.push({ op: "add", path: "/spec/initContainers", value: [init, proxy] });
  }
  if (volumes.length > 0) {
    if (Array.isArray(p.spec?.volumes) && p.spec.volumes.length > 0) for (const v of volumes) patch.push({ op: "add", path: "/spec/volumes/-", value: v });
    else patch.push({ op: "add", path: "/spec/volumes", value: volumes });
  }
  for (const r of rewrites) patch.push({ op: "add", path: `/spec/containers/${r.container}/${r.kind}`, value: r.probe });
  const status = JSON.stringify({ initContainers: [INIT_CONTAINER, PROXY_CONTAINER], containers: [], volumes: volumes.map((v) => v.name), revision: settings.revision });
  addToMap(patch, "/metadata/labels", p.metadata?.labels, { [TLS_MODE_LABEL]: "istio" });
  addToMap(patch, "/metadata/annotations", p.metadata?.annotations, { [STATUS_ANNOTATION]: status });
  return { outcome: "injected", patch, warnings };
}

function addToMap(patch: JsonPatchOperation[], path: string, existing: unknown, entries: Record<string, string>): void {
  if (existing && typeof existing === "object" && !Array.isArray(existing)) {
    for (const [k, v] of Object.entries(entries)) patch.push({ op: "add", path: `${path}/${pointer(k)}`, value: v });
  } else {
    patch.push({ op: "add", path, value: entries });
  }
}

/** Placeholders renderBootstrap accepts that cannot occur in names or label values; become $(VAR). */
const POD_NAME_MARK = "@@POD_NAME@@";
const POD_IP_MARK = "@@INSTANCE_IP@@";

/** The Envoy bootstrap (YAML) for `--config-yaml`, with $(POD_NAME) and $(INSTANCE_IP) for the kubelet to expand. */
export function injectedBootstrap(namespace: string, labels: Record<string, string>, serviceAccount: string, settings: InjectionSettings, appProbes: AppProbeRoute[] = []): string {
  const app = labels.app ?? labels["app.kubernetes.io/name"];
  const rendered = renderBootstrap({
    nodeId: `sidecar~${POD_IP_MARK}~${POD_NAME_MARK}.${namespace}~${namespace}.svc.${settings.clusterDomain}`,
    cluster: `${app ?? POD_NAME_MARK}.${namespace}`,
    metadata: {
      NAMESPACE: namespace,
      LABELS: JSON.stringify(labels),
      POD_NAME: POD_NAME_MARK,
      SERVICE_ACCOUNT: serviceAccount,
      INTERCEPTION_MODE: "REDIRECT",
    },
    xdsAddress: settings.xdsAddress,
    xdsPort: settings.xdsPort,
    adminAddress: "127.0.0.1",
    adminPort: SIDECAR_ADMIN_PORT,
    listenerAddress: "0.0.0.0",
    statsPort: PROMETHEUS_STATS_PORT,
    readinessPort: READINESS_PORT,
    appProbes,
    ...(settings.xdsServerName ? { xdsTls: { caFile: CA_FILE, sni: settings.xdsServerName }, xdsTokenFile: TOKEN_FILE } : {}),
  });
  // The rendered YAML as it is (parsing it to re-serialise as JSON cost ~14 ms per pod with the
  // yaml package: bench/inject-review.ts), without its comment lines: the placeholders are
  // one-line JSON literals, so a line starting with "#" is always a template comment.
  const yaml = rendered.split("\n").filter((line) => !/^\s*#/.test(line) && line.trim() !== "").join("\n");
  return yaml.replace(/\$/g, "$$$$").replaceAll(POD_NAME_MARK, "$(POD_NAME)").replaceAll(POD_IP_MARK, "$(INSTANCE_IP)");
}

function proxyContainer(namespace: string, labels: Record<string, string>, serviceAccount: string, settings: InjectionSettings, o: InjectionOverrides, appProbes: AppProbeRoute[]): Record<string, unknown> {
  const concurrency = o.concurrency ?? PROXY_DEFAULTS.concurrency;
  const probe = (periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path: READINESS_PATH, port: READINESS_PORT, scheme: "HTTP" },
    periodSeconds,
    timeoutSeconds: 3,
    failureThreshold,
  });
  const fieldEnv = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { apiVersion: "v1", fieldPath } } });
  return {
    name: PROXY_CONTAINER,
    image: o.proxyImage ?? settings.proxyImage,
    // A native sidecar: started before the app's containers, stopped after them.
    restartPolicy: "Always",
    command: ["envoy"],
    args: [
      "--config-yaml", injectedBootstrap(namespace, labels, serviceAccount, settings, appProbes),
      "--disable-hot-restart",
      ...(concurrency > 0 ? ["--concurrency", String(concurrency)] : []),
      "--drain-time-s", String(o.drainSeconds ?? PROXY_DEFAULTS.drainSeconds),
      "--drain-strategy", "immediate",
      "-l", o.logLevel ?? PROXY_DEFAULTS.logLevel,
    ],
    env: [fieldEnv("POD_NAME", "metadata.name"), fieldEnv("POD_NAMESPACE", "metadata.namespace"), fieldEnv("INSTANCE_IP", "status.podIP"), fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName")],
    ports: [
      { name: "http-envoy-prom", containerPort: PROMETHEUS_STATS_PORT, protocol: "TCP" },
      { name: "status-port", containerPort: READINESS_PORT, protocol: "TCP" },
    ],
    startupProbe: probe(1, 600),
    readinessProbe: probe(15, 4),
    resources: {
      requests: { cpu: o.resources.requests.cpu ?? PROXY_DEFAULTS.requests.cpu, memory: o.resources.requests.memory ?? PROXY_DEFAULTS.requests.memory },
      limits: { cpu: o.resources.limits.cpu ?? PROXY_DEFAULTS.limits.cpu, memory: o.resources.limits.memory ?? PROXY_DEFAULTS.limits.memory },
    },
    securityContext: {
      runAsUser: DEFAULT_PROXY_UID,
      runAsGroup: DEFAULT_PROXY_UID,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    },
    ...(settings.xdsServerName
      ? { volumeMounts: [{ name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true }, { name: CA_VOLUME, mountPath: CA_DIR, readOnly: true }] }
      : {}),
  };
}

const PROBE_KINDS = [["readinessProbe", "readyz"], ["livenessProbe", "livez"], ["startupProbe", "startupz"]] as const;

interface ProbeRewrite {
  container: number;
  kind: (typeof PROBE_KINDS)[number][0];
  probe: Record<string, unknown>;
  route: AppProbeRoute;
}

interface LooseProbe {
  httpGet?: { path?: unknown; port?: unknown; host?: unknown; scheme?: unknown; httpHeaders?: unknown };
  [k: string]: unknown;
}

/** The app containers' plain-HTTP probes, moved to the readiness port (HTTPS probes and probes of another host stay). */
function probeRewrites(containers: unknown): ProbeRewrite[] {
  if (!Array.isArray(containers)) return [];
  const out: ProbeRewrite[] = [];
  containers.slice(0, MAX_CONTAINERS).forEach((c: { name?: unknown; ports?: unknown; [k: string]: unknown } | null, index) => {
    if (!c || typeof c.name !== "string") return;
    for (const [kind, short] of PROBE_KINDS) {
      const probe = c[kind] as LooseProbe | undefined;
      const get = probe?.httpGet;
      if (!probe || !get || get.host !== undefined || (get.scheme !== undefined && get.scheme !== "HTTP")) continue;
      const port = typeof get.port === "number" ? get.port
        : typeof get.port === "string" && /^\d+$/.test(get.port) ? Number(get.port)
        : Array.isArray(c.ports) ? (c.ports as { name?: unknown; containerPort?: unknown }[]).find((p) => p?.name === get.port)?.containerPort : undefined;
      if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) continue;
      const appPath = typeof get.path === "string" && get.path.startsWith("/") ? get.path : "/";
      const headers = Array.isArray(get.httpHeaders)
        ? (get.httpHeaders as { name?: unknown; value?: unknown }[]).filter((h): h is { name: string; value: string } => typeof h?.name === "string" && typeof h.value === "string").slice(0, 16)
        : [];
      const path = `/app-health/${c.name}/${short}`;
      out.push({
        container: index,
        kind,
        probe: { ...probe, httpGet: { path, port: READINESS_PORT, scheme: "HTTP" } },
        route: { path, port, appPath, ...(headers.length ? { headers } : {}) },
      });
    }
  });
  return out;
}

function initContainer(settings: InjectionSettings, o: InjectionOverrides): Record<string, unknown> {
  return {
    name: INIT_CONTAINER,
    image: settings.image,
    args: [
      "capture", "apply",
      "--proxy-uid", String(DEFAULT_PROXY_UID),
      "--proxy-gid", String(DEFAULT_PROXY_UID),
      "--inbound-port", String(DEFAULT_INBOUND_PORT),
      "--outbound-port", String(DEFAULT_OUTBOUND_PORT),
      ...(o.excludeInboundPorts.length ? ["--exclude-inbound-ports", o.excludeInboundPorts.join(",")] : []),
      ...(o.excludeOutboundPorts.length ? ["--exclude-outbound-ports", o.excludeOutboundPorts.join(",")] : []),
      "--include-outbound-cidrs", o.includeOutboundCidrs ?? "*",
    ],
    resources: { requests: { cpu: "10m", memory: "40Mi" }, limits: { cpu: "2000m", memory: "1Gi" } },
    // As istio-init: root in the pod's network namespace, with NET_ADMIN and NET_RAW only.
    securityContext: {
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: false,
      capabilities: { drop: ["ALL"], add: ["NET_ADMIN", "NET_RAW"] },
    },
  };
}

function injectedVolumes(settings: InjectionSettings): { name: string; [k: string]: unknown }[] {
  return [
    { name: TOKEN_VOLUME, projected: { sources: [{ serviceAccountToken: { audience: settings.tokenAudience, expirationSeconds: settings.tokenExpirationSeconds, path: "istio-token" } }] } },
    { name: CA_VOLUME, configMap: { name: ROOT_CERT_CONFIGMAP } },
  ];
}
