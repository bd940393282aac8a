// weft serve: runs the control plane until SIGTERM/SIGINT, then closes streams and exits 0.
import { createLogger } from "../log/logger.js";
import { startMeshRunner } from "../runner/mesh-runner.js";
import { FILE_SOURCE_DEFAULTS, FileSource, type FileSourceOptions } from "../sources/file/file-source.js";
import { helpText, parseFlags, parsePort, type FlagSpec } from "./flags.js";
import { UsageError } from "./usage-error.js";
import { prometheusFlag } from "./prometheus-flag.js";
import path from "node:path";
import { parseDurationMs } from "../api/duration.js";
import { KubernetesSource, loadKubeConfig } from "../sources/kubernetes/kubernetes-source.js";
import { isDnsSubdomain } from "../api/field-checks.js";
import { tokenReviewClient } from "../identity/kubernetes-token-review.js";
import { DEFAULT_CLASS_RELEASE_GRACE_MS, DEFAULT_MAX_PROXY_CLASSES } from "../runner/mesh-controller.js";

function parseClassLimits(maxText: string | undefined, graceText: string | undefined): { maxClasses: number; releaseGraceMs: number } {
  const maxClasses = Number(maxText);
  if (!Number.isInteger(maxClasses) || maxClasses < 1) throw new UsageError(`--max-proxy-classes must be a whole number of at least 1, got "${maxText}"`);
  const releaseGraceMs = parseDurationMs(graceText ?? "30s");
  if (releaseGraceMs === undefined || releaseGraceMs < 0) throw new UsageError(`--proxy-class-grace must be a duration such as "30s" or "0s", got "${graceText}"`);
  return { maxClasses, releaseGraceMs };
}
import { DEFAULT_XDS_LIMITS } from "../xds/xds-limits.js";
import { hostname } from "node:os";
import { checkLeaseTimings, DEFAULT_LEASE_TIMINGS, LeaseLeaderElection, type LeaseTimings } from "../runner/lease-leader-election.js";
import { KubernetesLeaseClient } from "../sources/kubernetes/lease-client.js";
import type { LeaderElection } from "../runner/leader-election.js";
import type { RotateBefore } from "../runner/root-rotation.js";
import { SecretRootStore } from "../sources/kubernetes/secret-root-store.js";

function parseLeaseTimings(values: { "lease-duration"?: string; "renew-deadline"?: string; "retry-period"?: string }): LeaseTimings {
  const duration = (flag: "lease-duration" | "renew-deadline" | "retry-period", fallback: string): number => {
    const ms = parseDurationMs(values[flag] ?? fallback);
    if (ms === undefined || ms <= 0) throw new UsageError(`--${flag} must be a duration such as "${fallback}", got "${values[flag]}"`);
    return ms;
  };
  try {
    const d = DEFAULT_LEASE_TIMINGS;
    return checkLeaseTimings({ leaseDurationMs: duration("lease-duration", `${d.leaseDurationMs / 1000}s`), renewDeadlineMs: duration("renew-deadline", `${d.renewDeadlineMs / 1000}s`), retryPeriodMs: duration("retry-period", `${d.retryPeriodMs / 1000}s`) });
  } catch (err) {
    throw new UsageError(`--lease-duration/--renew-deadline/--retry-period: ${(err as Error).message}`);
  }
}

/** This replica's name in the Lease: the pod's name in a cluster, else host name and process id. */
export function replicaIdentity(): string {
  const pod = process.env.POD_NAME;
  return pod && pod.length <= 253 ? pod : `${hostname()}_${process.pid}`;
}

import { DEFAULT_WEBHOOK_PORT, WEBHOOK_PATH } from "../webhook/webhook-server.js";
import { DEFAULT_WEBHOOK_CONFIGURATION_NAME, type WebhookTarget } from "../webhook/webhook-configuration.js";
import { startAdmissionWebhook, type AdmissionWebhook } from "../webhook/admission-webhook.js";
import { DEFAULT_INJECTION_CONFIGURATION_NAME } from "../webhook/inject-configuration.js";
import { DEFAULT_INJECTION_SETTINGS, type InjectionSettings } from "../webhook/inject-sidecar.js";

/** --inject-xds-address: host:port (a DNS name or IPv4 address). */
function parseHostPort(flag: string, text: string): { host: string; port: number } {
  const m = /^([A-Za-z0-9.-]+):(\d+)$/.exec(text);
  const port = Number(m?.[2]);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--${flag} must be host:port such as "weft.weft-system.svc:15010", got "${text}"`);
  return { host: m[1]!, port };
}
import { loadOrCreateCa } from "../ca/certificate-authority.js";
import { startStatusWriting } from "../runner/status-writing.js";
import type { StatusController } from "../status/status-controller.js";
import type { MeshConfig } from "../api/types.js";

/** --webhook-url or --webhook-service as the webhook configuration's target. */
function parseWebhookTarget(url: string | undefined, service: string | undefined): WebhookTarget {
  if (url) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`--webhook-url must be an https URL such as "https://10.0.0.5:15017${WEBHOOK_PATH}", got "${url}"`);
    }
    if (parsed.protocol !== "https:") throw new UsageError(`--webhook-url must use https (the apiserver only calls webhooks over TLS), got "${url}"`);
    return { url };
  }
  const m = /^([a-z0-9-]+)\/([a-z0-9-]+)(?::(\d+))?$/.exec(service ?? "");
  const port = Number(m?.[3] ?? 443);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--webhook-service must be namespace/name or namespace/name:port such as "weft-system/weft:443", got "${service}"`);
  return { service: { namespace: m[1]!, name: m[2]!, port } };
}

function parseRotateBefore(text: string | undefined): RotateBefore {
  const value = text ?? "20%";
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(value);
  if (percent) {
    const fraction = Number(percent[1]) / 100;
    if (fraction > 0 && fraction < 1) return { fraction };
  } else {
    const ms = parseDurationMs(value);
    if (ms !== undefined && ms > 0) return { ms };
  }
  throw new UsageError(`--root-rotate-before must be a percentage between 0% and 100% (such as "20%") or a duration (such as "720h"), got "${value}"`);
}

function parseDurationFlag(flag: string, text: string | undefined, fallback: string, minMs: number): number {
  const ms = parseDurationMs(text ?? fallback);
  if (ms === undefined || ms < minMs) throw new UsageError(`--${flag} must be a duration of at least ${minMs / 1000}s such as "${fallback}", got "${text}"`);
  return ms;
}

import { readFileSync } from "node:fs";
import { MAX_MESH_SETTINGS_BYTES, readMeshSettings, type MeshSettingsFile } from "../api/mesh-settings.js";
import { formatIssue } from "../api/types.js";
import type { Logger } from "../log/logger.js";

/** Reads --mesh-config: errors stop the start (a usage error naming the file and field); warnings are logged. */
export function loadMeshSettingsFile(file: string, logger: Pick<Logger, "warn">): MeshSettingsFile {
  let text: string;
  try {
    const buffer = readFileSync(file);
    if (buffer.length > MAX_MESH_SETTINGS_BYTES) throw new Error(`larger than ${MAX_MESH_SETTINGS_BYTES} bytes`);
    text = buffer.toString("utf8");
  } catch (err) {
    throw new UsageError(`--mesh-config: cannot read ${file}: ${(err as Error).message}`);
  }
  const { settings, issues } = readMeshSettings(text, file);
  const errors = issues.filter((i) => i.severity === "error");
  if (errors.length > 0) throw new UsageError(`--mesh-config: ${file} is not valid:\n${errors.map(formatIssue).join("\n")}`);
  for (const i of issues) logger.warn(formatIssue(i));
  return settings;
}

function parseTtl(text: string | undefined): number {
  const ms = parseDurationMs(text ?? "24h");
  if (ms === undefined || ms < 1000) throw new UsageError(`--workload-cert-ttl must be a duration of at least 1s such as "24h" or "90m", got "${text}"`);
  return ms;
}

function parseRequestBytes(text: string | undefined): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 64 * 1024) throw new UsageError(`--xds-max-request-bytes must be a whole number of bytes, at least 65536, got "${text}"`);
  return n;
}

function parseStallTimeout(text: string | undefined): number {
  if (text === "0") return 0;
  const ms = parseDurationMs(text ?? "60s");
  if (ms === undefined || ms < 1000) throw new UsageError(`--xds-stall-timeout must be a duration of at least 1s such as "60s" or "5m", or 0 for never, got "${text}"`);
  return ms;
}

const FLAGS = {
  "xds-address": { type: "string", env: "WEFT_XDS_ADDRESS", help: "address the xDS gRPC server binds (default 127.0.0.1; 0.0.0.0 with --security; plaintext on another address logs a warning)" },
  "xds-port": { type: "string", env: "WEFT_XDS_PORT", default: "15010", help: "xDS gRPC port" },
  "admin-address": { type: "string", env: "WEFT_ADMIN_ADDRESS", default: "127.0.0.1", help: "address of the admin HTTP server" },
  "admin-port": { type: "string", env: "WEFT_ADMIN_PORT", default: "15014", help: "admin HTTP port (/metrics, /healthz, /readyz, /debug/syncz)" },
  "admin-open-debug": { type: "boolean", env: "WEFT_ADMIN_OPEN_DEBUG", help: "serve the admin server's privileged routes (/debug/*, the console /ui, POST /ca/rotate-root) to every peer; default: loopback peers only (403 to others; use kubectl port-forward). /metrics, /healthz, /readyz are always open" },
  "prometheus-url": { type: "string", env: "WEFT_PROMETHEUS_URL", help: "the mesh console (/ui) reads edge metrics from this Prometheus (Istio's series from manifests/prometheus rules) instead of each proxy's own stats" },
  "config-dir": { type: "string", env: "WEFT_CONFIG_DIR", help: "directory of Istio YAML (ServiceEntry, VirtualService, ...), watched and hot-reloaded" },
  "config-settle": { type: "string", env: "WEFT_CONFIG_SETTLE", default: "500ms", help: "a config file caught while being written (emptied, cut mid-line, lost resources) is applied once unchanged this long (held at most 10x this)" },
  "config-max-file-bytes": { type: "string", env: "WEFT_CONFIG_MAX_FILE_BYTES", default: String(FILE_SOURCE_DEFAULTS.maxFileBytes), help: "largest config file read, in bytes" },
  "config-max-total-bytes": { type: "string", env: "WEFT_CONFIG_MAX_TOTAL_BYTES", default: String(FILE_SOURCE_DEFAULTS.maxTotalBytes), help: "most bytes read across all files of --config-dir" },
  "large-removal-warning": { type: "string", env: "WEFT_LARGE_REMOVAL_WARNING", default: "50", help: "warn (log + issue) when one config change removes at least this percentage of a source's resources (at least 5 of them); 101 turns it off" },
  kubernetes: { type: "boolean", env: "WEFT_KUBERNETES", help: "read Services, EndpointSlices, Pods, Nodes, Namespaces and Istio resources from a Kubernetes cluster (with or without --config-dir)" },
  kubeconfig: { type: "string", env: "WEFT_KUBECONFIG", help: "with --kubernetes: kubeconfig file (default: the in-cluster service account inside a pod, else $KUBECONFIG, else ~/.kube/config)" },
  "cluster-domain": { type: "string", env: "WEFT_CLUSTER_DOMAIN", default: "cluster.local", help: "with --kubernetes: the cluster's DNS domain (Service hosts are <name>.<namespace>.svc.<domain>)" },
  "cluster-id": { type: "string", env: "WEFT_CLUSTER_ID", default: "Kubernetes", help: "with --kubernetes: the cluster's name in messages (Istio's default cluster ID)" },
  vhds: { type: "string", env: "WEFT_VHDS", default: "true", help: "serve the virtual hosts of route configurations through VHDS to delta ADS clients, so a route change sends only the changed virtual hosts (true/false; false: whole route configurations, as to state-of-the-world clients)" },
  "leader-elect": { type: "string", env: "WEFT_LEADER_ELECT", default: "true", help: "with --kubernetes: elect one leader among replicas with a coordination.k8s.io Lease (true/false; false: this replica always leads)" },
  "leader-election-namespace": { type: "string", env: "WEFT_LEADER_ELECTION_NAMESPACE", help: "with --kubernetes: namespace of the leader Lease (default $POD_NAMESPACE, else istio-system)" },
  "leader-election-name": { type: "string", env: "WEFT_LEADER_ELECTION_NAME", default: "weft-leader", help: "with --kubernetes: name of the leader Lease" },
  "lease-duration": { type: "string", env: "WEFT_LEASE_DURATION", default: "10s", help: "how long a leader's Lease lasts after its last renewal before another replica takes over (whole seconds; counted from the Lease's renewTime when the clocks agree)" },
  "renew-deadline": { type: "string", env: "WEFT_RENEW_DEADLINE", default: "5s", help: "a leader that could not renew its Lease for this long stops leading (at least 1s shorter than --lease-duration)" },
  "retry-period": { type: "string", env: "WEFT_RETRY_PERIOD", default: "2s", help: "between attempts to acquire or renew the Lease" },
  "write-status": { type: "string", env: "WEFT_WRITE_STATUS", default: "true", help: "with --kubernetes: write status.conditions (Reconciled: validation problems, proxies' NACKs) on Istio resources, leader only (true/false)" },
  "status-write-rate": { type: "string", env: "WEFT_STATUS_WRITE_RATE", default: "10", help: "with --kubernetes: most status writes per second (burst 20)" },
  webhook: { type: "boolean", env: "WEFT_WEBHOOK", help: "with --kubernetes: serve the validating admission webhook (HTTPS, certificate from Weft's CA) and keep its ValidatingWebhookConfiguration current" },
  "webhook-address": { type: "string", env: "WEFT_WEBHOOK_ADDRESS", default: "0.0.0.0", help: "with --webhook: address the webhook's HTTPS server binds" },
  "webhook-port": { type: "string", env: "WEFT_WEBHOOK_PORT", default: String(DEFAULT_WEBHOOK_PORT), help: "with --webhook: port of the webhook's HTTPS server" },
  "webhook-service": { type: "string", env: "WEFT_WEBHOOK_SERVICE", help: "with --webhook: the Service (namespace/name:port) the apiserver calls the webhook through (default <$POD_NAMESPACE or weft-system>/weft:443)" },
  "webhook-url": { type: "string", env: "WEFT_WEBHOOK_URL", help: "with --webhook: call the webhook at this https URL instead of a Service (Weft outside the cluster), e.g. https://10.0.0.5:15017/validate" },
  "webhook-configuration": { type: "string", env: "WEFT_WEBHOOK_CONFIGURATION", default: DEFAULT_WEBHOOK_CONFIGURATION_NAME, help: "with --webhook: name of the ValidatingWebhookConfiguration Weft creates and keeps" },
  inject: { type: "boolean", env: "WEFT_INJECT", help: "with --webhook: sidecar injection on the same HTTPS server (POST /inject) and its MutatingWebhookConfiguration (namespace label istio-injection=enabled or istio.io/rev, pod label sidecar.istio.io/inject)" },
  "inject-image": { type: "string", env: "WEFT_INJECT_IMAGE", default: DEFAULT_INJECTION_SETTINGS.image, help: "with --inject: Weft's image, run by the istio-init container (`weft capture apply`)" },
  "inject-proxy-image": { type: "string", env: "WEFT_INJECT_PROXY_IMAGE", default: DEFAULT_INJECTION_SETTINGS.proxyImage, help: "with --inject: the sidecar's Envoy image (annotation sidecar.istio.io/proxyImage overrides it per pod)" },
  "inject-xds-address": { type: "string", env: "WEFT_INJECT_XDS_ADDRESS", help: "with --inject: host:port injected sidecars dial for xDS (default <--xds-server-name>:<--xds-port>; TLS with the name --xds-server-name under --security)" },
  "xds-server-name": { type: "string", env: "WEFT_XDS_SERVER_NAME", help: "with --security: the name in the xDS serving certificate, which sidecars verify (default weft.<$POD_NAMESPACE or weft-system>.svc: the Service weft in Weft's own namespace)" },
  "injection-configuration": { type: "string", env: "WEFT_INJECTION_CONFIGURATION", default: DEFAULT_INJECTION_CONFIGURATION_NAME, help: "with --inject: name of the MutatingWebhookConfiguration Weft creates and keeps" },
  revision: { type: "string", env: "WEFT_REVISION", default: "default", help: "with --inject: this control plane's revision: namespaces labelled istio.io/rev=<revision> get sidecars" },
  "outbound-traffic-policy": { type: "string", env: "WEFT_OUTBOUND_TRAFFIC_POLICY", default: "ALLOW_ANY", help: "mesh default for unknown destinations: ALLOW_ANY or REGISTRY_ONLY" },
  "root-namespace": { type: "string", env: "WEFT_ROOT_NAMESPACE", default: "istio-system", help: "namespace whose Sidecar/DestinationRule apply mesh-wide" },
  "mesh-config": { type: "string", env: "WEFT_MESH_CONFIG", help: "Istio mesh settings (MeshConfig YAML, or the istio ConfigMap holding it under data.mesh): extensionProviders, defaultProviders, accessLogFile, rootNamespace, outboundTrafficPolicy; read at start (its values win over the flags' defaults)" },
  security: { type: "boolean", env: "WEFT_SECURITY", help: "turn on the CA, SDS certificates, authenticated xDS over TLS and mTLS" },
  "state-dir": { type: "string", env: "WEFT_STATE_DIR", default: ".weft/state", help: "with --security: CA root, workload credentials, public trust bundle (kept across restarts)" },
  "trust-domain": { type: "string", env: "WEFT_TRUST_DOMAIN", default: "cluster.local", help: "SPIFFE trust domain" },
  "workload-cert-ttl": { type: "string", env: "WEFT_WORKLOAD_CERT_TTL", default: "24h", help: "workload certificate lifetime (renewed at 50-80%)" },
  "token-audience": { type: "string", env: "WEFT_TOKEN_AUDIENCE", default: "istio-ca", help: "with --kubernetes --security: the audience sidecars' projected ServiceAccount tokens must carry (checked by TokenReview)" },
  "root-ttl": { type: "string", env: "WEFT_ROOT_TTL", default: "87600h", help: "with --security: lifetime of a root the built-in CA creates (at first start and at each rotation)" },
  "root-rotate-before": { type: "string", env: "WEFT_ROOT_ROTATE_BEFORE", default: "20%", help: "with --security: the leader rotates the root once this much of its lifetime is left: a percentage (20%) or a duration (720h)" },
  "root-rotation-phase": { type: "string", env: "WEFT_ROOT_ROTATION_PHASE", default: "2m", help: "with --security: least time each rotation phase lasts (trusting, signing) so every replica and proxy follows" },
  "ca-root-secret": { type: "string", env: "WEFT_CA_ROOT_SECRET", default: "weft-ca-root", help: "with --kubernetes --security: Secret (in the leader election namespace) holding the CA root, shared by replicas; empty: keep it in --state-dir" },
  "plugged-ca-dir": { type: "string", env: "WEFT_PLUGGED_CA_DIR", help: "use an existing CA: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem" },
  "max-proxy-classes": { type: "string", env: "WEFT_MAX_PROXY_CLASSES", default: String(DEFAULT_MAX_PROXY_CLASSES), help: "most distinct proxy classes (namespace, labels, ...) with a generated configuration; past it new ones are refused (RESOURCE_EXHAUSTED)" },
  "proxy-class-grace": { type: "string", env: "WEFT_PROXY_CLASS_GRACE", default: `${DEFAULT_CLASS_RELEASE_GRACE_MS / 1000}s`, help: "how long a proxy class's configuration is kept after its last proxy left (a duration such as 30s)" },
  "xds-max-request-bytes": { type: "string", env: "WEFT_XDS_MAX_REQUEST_BYTES", default: String(DEFAULT_XDS_LIMITS.maxRequestBytes), help: "largest xDS request message accepted from a client, in bytes" },
  "xds-stall-timeout": { type: "string", env: "WEFT_XDS_STALL_TIMEOUT", default: "60s", help: "end an xDS stream whose response stays unanswered (no ACK/NACK) this long; 0 = never" },
  "log-level": { type: "string", env: "WEFT_LOG_LEVEL", default: "info", help: "log level: debug, info, warn, error" },
  "shutdown-grace": { type: "string", env: "WEFT_SHUTDOWN_GRACE_MS", default: "5000", help: "milliseconds to wait for streams to close on shutdown" },
} satisfies Record<string, FlagSpec>;

function parseFileLimits(settle: string | undefined, fileBytes: string | undefined, totalBytes: string | undefined): FileSourceOptions {
  const settleMs = parseDurationMs(settle ?? "500ms");
  if (settleMs === undefined || settleMs > 60_000) throw new UsageError(`--config-settle must be a duration up to 60s such as "500ms", got "${settle}"`);
  const bytes = (flag: string, text: string | undefined): number => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 1024) throw new UsageError(`--${flag} must be a number of bytes, at least 1024, got "${text}"`);
    return n;
  };
  return { settleMs, maxHoldMs: Math.max(settleMs * 10, 1000), maxFileBytes: bytes("config-max-file-bytes", fileBytes), maxTotalBytes: bytes("config-max-total-bytes", totalBytes) };
}

export async function runServe(argv: string[]): Promise<number> {
  const { help, values } = parseFlags(argv, FLAGS);
  if (help) {
    process.stdout.write(helpText("serve", "Runs the Weft control plane: the xDS server Envoy connects to and the admin server.", FLAGS));
    return 0;
  }
  const policy = values["outbound-traffic-policy"];
  if (policy !== "ALLOW_ANY" && policy !== "REGISTRY_ONLY") throw new UsageError(`--outbound-traffic-policy must be ALLOW_ANY or REGISTRY_ONLY, got "${policy}"`);
  const removalPercent = Number(values["large-removal-warning"]);
  if (!Number.isFinite(removalPercent) || removalPercent < 0 || removalPercent > 101) throw new UsageError(`--large-removal-warning must be a percentage from 0 to 101, got "${values["large-removal-warning"]}"`);
  const fileLimits = parseFileLimits(values["config-settle"], values["config-max-file-bytes"], values["config-max-total-bytes"]);
  const classLimits = parseClassLimits(values["max-proxy-classes"], values["proxy-class-grace"]);
  const logger = createLogger({ level: values["log-level"] });
  const meshSettings = values["mesh-config"] ? loadMeshSettingsFile(values["mesh-config"], logger) : undefined;
  if (values.kubeconfig && !values.kubernetes) throw new UsageError("--kubeconfig needs --kubernetes");
  if (values.webhook && !values.kubernetes) throw new UsageError("--webhook needs --kubernetes (the apiserver calls the webhook)");
  // In a cluster Weft's own namespace (the downward API's POD_NAMESPACE, as istiod) names its Service.
  const ownNamespace = process.env.POD_NAMESPACE || "weft-system";
  const xdsServerName = values["xds-server-name"] ?? `weft.${ownNamespace}.svc`;
  if (xdsServerName.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(xdsServerName)) {
    throw new UsageError(`--xds-server-name (or weft.<POD_NAMESPACE>.svc) must be a DNS name such as "weft.weft-system.svc", got "${xdsServerName.slice(0, 300)}"`);
  }
  const webhookTarget = values.webhook ? parseWebhookTarget(values["webhook-url"], values["webhook-service"] ?? `${ownNamespace}/weft:443`) : undefined;
  const webhookPort = values.webhook ? parsePort("webhook-port", values["webhook-port"]) : 0;
  if (values.inject && !values.webhook) throw new UsageError("--inject needs --webhook (the injector is served by the webhook's HTTPS server)");
  const revision = values.revision ?? "default";
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(revision)) throw new UsageError(`--revision must be a label value such as "default" or "canary", got "${revision}"`);
  const injectXds = values["inject-xds-address"] ? parseHostPort("inject-xds-address", values["inject-xds-address"]) : undefined;
  const writeStatus = values["write-status"] ?? "true";
  if (writeStatus !== "true" && writeStatus !== "false") throw new UsageError(`--write-status must be true or false, got "${writeStatus}"`);
  const statusRate = Number(values["status-write-rate"] ?? "10");
  if (!Number.isFinite(statusRate) || statusRate <= 0 || statusRate > 1000) throw new UsageError(`--status-write-rate must be a number of writes per second from 0.1 to 1000, got "${values["status-write-rate"]}"`);
  // Resource status: created once the runner is up; fed every applied config (the first one too).
  let status: StatusController | undefined;
  let lastConfig: MeshConfig | undefined;
  const clusterDomain = values["cluster-domain"] ?? "cluster.local";
  if (!isDnsSubdomain(clusterDomain)) throw new UsageError(`--cluster-domain must be a DNS name such as "cluster.local", got "${clusterDomain}"`);
  let kubernetes: { kubeConfig: ReturnType<typeof loadKubeConfig>["kubeConfig"]; clusterDomain: string; clusterId: string; configFrom: string } | undefined;
  if (values.kubernetes) {
    let loaded: ReturnType<typeof loadKubeConfig>;
    try {
      loaded = loadKubeConfig(values.kubeconfig);
    } catch (err) {
      throw new UsageError(`--kubernetes: cannot load the cluster configuration${values.kubeconfig ? ` from ${values.kubeconfig}` : ""}: ${(err as Error).message}`);
    }
    const server = loaded.kubeConfig.getCurrentCluster()?.server;
    if (!server) throw new UsageError(`--kubernetes: ${loaded.from} names no current cluster; pass --kubeconfig or set KUBECONFIG`);
    kubernetes = { kubeConfig: loaded.kubeConfig, clusterDomain, clusterId: values["cluster-id"] ?? "Kubernetes", configFrom: loaded.from };
    logger.info({ server, from: loaded.from, clusterDomain }, "Kubernetes mode: reading Services, EndpointSlices, Pods, Nodes, Namespaces and Istio resources from the cluster");
    if (!values.security) {
      logger.warn(
        "Kubernetes mode without --security trusts node metadata: a proxy's namespace, labels, pod name and service account are taken from what it sends (NAMESPACE, LABELS, POD_NAME, SERVICE_ACCOUNT), not proven; anyone who can reach the xDS port can claim any workload. With --security sidecars prove their pod with its ServiceAccount token (TokenReview)",
      );
    }
  }
  const vhds = values.vhds ?? "true";
  if (vhds !== "true" && vhds !== "false") throw new UsageError(`--vhds must be true or false, got "${vhds}"`);
  let leaderElection: LeaderElection | undefined;
  const leaderElect = values["leader-elect"] ?? "true";
  if (leaderElect !== "true" && leaderElect !== "false") throw new UsageError(`--leader-elect must be true or false, got "${leaderElect}"`);
  const namespace = values["leader-election-namespace"] ?? process.env.POD_NAMESPACE ?? "istio-system";
  const rootSecret = values["ca-root-secret"] ?? "weft-ca-root";
  if (rootSecret !== "" && !isDnsSubdomain(rootSecret)) throw new UsageError(`--ca-root-secret must be a Secret name, got "${rootSecret}"`);
  const rootStore = kubernetes && values.security && !values["plugged-ca-dir"] && rootSecret !== ""
    ? new SecretRootStore(kubernetes.kubeConfig, namespace, rootSecret, (message) => logger.warn(message))
    : undefined;
  const rootTtlMs = parseDurationFlag("root-ttl", values["root-ttl"], "87600h", 10_000);
  const rootRotation = { rotateBefore: parseRotateBefore(values["root-rotate-before"]), phaseMs: parseDurationFlag("root-rotation-phase", values["root-rotation-phase"], "2m", 1000) };
  if (kubernetes && leaderElect === "true") {
    const name = values["leader-election-name"] ?? "weft-leader";
    if (!isDnsSubdomain(namespace) || !isDnsSubdomain(name)) throw new UsageError(`--leader-election-namespace/--leader-election-name must be Kubernetes names, got "${namespace}/${name}"`);
    leaderElection = new LeaseLeaderElection({
      client: new KubernetesLeaseClient(kubernetes.kubeConfig, namespace, name),
      identity: replicaIdentity(),
      timings: parseLeaseTimings(values),
      logger: logger.child({ component: "leader" }),
    });
  }
  // With --security, ServiceAccounts are watched too: a deleted one's tokens stop working at once.
  const kubernetesSource = kubernetes ? new KubernetesSource({ ...kubernetes, logger: logger.child({ component: "kubernetes" }), watchServiceAccounts: Boolean(values.security) }) : undefined;
  const runner = await startMeshRunner({
    ...(leaderElection ? { leaderElection } : {}),
    onApplied: (config) => {
      lastConfig = config;
      status?.configApplied(config);
    },
    logger,
    // Plaintext xDS trusts whatever node metadata a client claims: loopback unless secured.
    xdsAddress: values["xds-address"] ?? (values.security ? "0.0.0.0" : "127.0.0.1"),
    xdsLimits: { maxRequestBytes: parseRequestBytes(values["xds-max-request-bytes"]), stallTimeoutMs: parseStallTimeout(values["xds-stall-timeout"]) },
    xdsPort: parsePort("xds-port", values["xds-port"]),
    adminAddress: values["admin-address"],
    adminPort: parsePort("admin-port", values["admin-port"]),
    adminOpenDebug: values["admin-open-debug"] === true,
    ...prometheusFlag(values["prometheus-url"]),
    processMetrics: true,
    // Files first: a resource defined by both a file and the cluster is taken from the file.
    sources: [...(values["config-dir"] ? [new FileSource(values["config-dir"], { ...fileLimits, logger: logger.child({ component: "files" }) })] : []), ...(kubernetesSource ? [kubernetesSource] : [])],
    largeRemovalShare: removalPercent / 100,
    classLimits,
    virtualHostDiscovery: vhds === "true",
    settings: { outboundTrafficPolicy: policy, rootNamespace: values["root-namespace"], ...meshSettings },
    ...(values.security
      ? {
          security: {
            stateDir: values["state-dir"] ?? ".weft/state",
            serverName: xdsServerName,
            trustDomain: values["trust-domain"],
            workloadTtlMs: parseTtl(values["workload-cert-ttl"]),
            rootTtlMs,
            rootRotation,
            ...(rootStore ? { rootStore } : {}),
            ...(values["plugged-ca-dir"] ? { pluggedCaDir: values["plugged-ca-dir"] } : {}),
            // Sidecars in the cluster authenticate with their pod's projected ServiceAccount token.
            // Istio's cacerts Secret (plug-in CA) and the istio-ca-root-cert ConfigMaps: in Weft's namespace.
            ...(kubernetes ? { cluster: { kubeConfig: kubernetes.kubeConfig, namespace } } : {}),
            ...(kubernetes && kubernetesSource ? { podTokens: { send: tokenReviewClient(kubernetes.kubeConfig), pods: kubernetesSource, serviceAccounts: kubernetesSource, reviewer: { audience: values["token-audience"] ?? "istio-ca" } } } : {}),
          },
        }
      : {}),
  });
  if (runner.security) {
    logger.info(
      { trustBundle: runner.security.trustBundleFile, serverName: runner.security.serverName, credentials: path.join(values["state-dir"] ?? ".weft/state", "credentials") },
      "security on: sidecars authenticate with their workload token and verify the control plane against the trust bundle",
    );
  }
  const cp = runner.cp;
  if (kubernetes && writeStatus === "true") {
    status = startStatusWriting(runner, { kubeConfig: kubernetes.kubeConfig, clusterId: kubernetes.clusterId, logger: logger.child({ component: "status" }), ratePerSecond: statusRate });
    if (lastConfig) status.configApplied(lastConfig);
  }
  let webhook: AdmissionWebhook | undefined;
  if (kubernetes && webhookTarget) {
    const stateDir = values["state-dir"] ?? ".weft/state";
    // The webhook's serving certificate comes from Weft's CA: the mesh's with --security, else
    // the same CA kept in the state directory.
    const ca = runner.security?.ca ?? (await loadOrCreateCa({ dir: path.join(stateDir, "ca"), trustDomain: values["trust-domain"], metrics: cp.metricsRegistry, onWarning: (message) => logger.warn(message) }));
    try {
      webhook = await startAdmissionWebhook({
        ca,
        kubeConfig: kubernetes.kubeConfig,
        leadership: runner.leader,
        logger: logger.child({ component: "webhook" }),
        target: webhookTarget,
        address: values["webhook-address"],
        port: webhookPort,
        clusterDomain,
        configurationName: values["webhook-configuration"],
        metrics: cp.metricsRegistry,
        ...(values.inject
          ? {
              injection: {
                configurationName: values["injection-configuration"],
                settings: {
                  ...DEFAULT_INJECTION_SETTINGS,
                  image: values["inject-image"] ?? DEFAULT_INJECTION_SETTINGS.image,
                  proxyImage: values["inject-proxy-image"] ?? DEFAULT_INJECTION_SETTINGS.proxyImage,
                  xdsAddress: injectXds?.host ?? xdsServerName,
                  xdsPort: injectXds?.port ?? cp.xdsPort,
                  // Without --security: plaintext xDS, no token (node metadata is trusted).
                  ...(runner.security ? { xdsServerName: runner.security.serverName } : { xdsServerName: undefined }),
                  tokenAudience: values["token-audience"] ?? "istio-ca",
                  revision,
                  clusterDomain,
                } satisfies InjectionSettings,
              },
            }
          : {}),
      });
    } catch (err) {
      status?.close();
      await runner.close(0);
      throw new Error(`admission webhook: cannot start on ${values["webhook-address"]}:${webhookPort}: ${(err as Error).message}`);
    }
  }
  logger.info({ xdsPort: cp.xdsPort, adminPort: cp.adminPort, ...(webhook ? { webhookPort: webhook.server.port } : {}) }, "weft control plane ready");
  const grace = Number(values["shutdown-grace"]) || 5000;
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, "shutting down");
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  status?.close();
  await webhook?.close();
  await runner.close(grace);
  return 0;
}
