// The running mesh control plane: control plane + mesh controller + config sources (behind the
// ConfigSource seam, merged by a ConfigAggregator). Used by `weft serve` and `weft demo`; the
// caller builds the sources (a FileSource for --config-dir, ...): this file names none.
import { formatIssue, type MeshConfig } from "../api/types.js";
import type { Logger } from "../log/logger.js";
import type { MeshSettings } from "../model/mesh-model.js";
import { ConfigAggregator } from "../sources/config-aggregator.js";
import { ConfigProblems, type ConfigProblemsReport } from "./config-problems.js";
import { authorizationProviderIssues } from "../api/security/ext-authz-providers.js";
import { OidcDiscovery } from "./oidc-discovery.js";
import type { ConfigSource } from "../sources/config-source.js";
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from "./control-plane.js";
import { MeshController, type ClassLimits } from "./mesh-controller.js";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { waitForAllSynced } from "./wait-for-sync.js";
import { DEFAULT_SLICE_MS } from "../work/work-steps.js";
import path from "node:path";
import { chmod, mkdir } from "node:fs/promises";
import { writeFileAtomically } from "../state/atomic-file.js";
import type { Metadata } from "@grpc/grpc-js";
import { Counter, Gauge, Registry } from "prom-client";
import { loadOrCreateCa, type CertificateAuthority } from "../ca/certificate-authority.js";
import { CredentialStore } from "../identity/credential-store.js";
import { WorkloadCertificates } from "../identity/workload-certificates.js";
import { alwaysLeader, type LeaderElection } from "./leader-election.js";
import type { KubeConfig } from "@kubernetes/client-node";
import { PLUGGED_CA_SECRET, pluggedCaFromSecret } from "../ca/plugged-ca-secret.js";
import { RootCertPublisher } from "../ca/kubernetes-root-cert-publisher.js";
import { TokenReviewer, type SendTokenReview, type TokenReviewerOptions } from "../identity/kubernetes-token-review.js";
import { PodIdentities, type PodDirectory, type ServiceAccountDirectory } from "../identity/kubernetes-pod-identities.js";
import type { RootStore } from "../ca/root-store.js";
import { NotLeaderError, RootRotation, type RotateBefore } from "./root-rotation.js";
import { ServingCertificate } from "../ca/serving-certificate.js";

/** The xDS certificate's name when none is given: the Service `weft` in namespace `weft-system`. */
export const DEFAULT_XDS_SERVER_NAME = "weft.weft-system.svc";

export interface MeshSecurityOptions {
  /** Where the CA root and workload credentials are kept (reused on restart). */
  stateDir: string;
  trustDomain?: string;
  workloadTtlMs?: number;
  /** Plugged-in CA (Istio's layout: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem). */
  pluggedCaDir?: string;
  /**
   * The name sidecars verify the control plane's xDS certificate against (and dial in a
   * cluster): `weft.<namespace>.svc`. Default "weft.weft-system.svc".
   */
  serverName?: string;
  /** Names and IPs the control plane's serving certificate covers (what Envoys dial). */
  servingNames?: { dnsNames: string[]; ipAddresses: string[] };
  /** Delay before a credential write that failed (disk full) is retried; default 5 s. */
  credentialRetryMs?: number;
  /**
   * Kubernetes: sidecars prove their identity with their pod's projected ServiceAccount token,
   * checked by TokenReview (`send`); namespace and labels come from the pod in `pods`.
   */
  podTokens?: { send: SendTokenReview; pods: PodDirectory; serviceAccounts?: ServiceAccountDirectory; reviewer?: Omit<TokenReviewerOptions, "metrics">; podWaitMs?: number };
  /** Where the built-in root is kept (default: <stateDir>/ca); a Kubernetes Secret shared by replicas. */
  rootStore?: RootStore;
  /** Lifetime of roots the built-in CA creates (default ten years). */
  rootTtlMs?: number;
  /** Automatic root rotation by the leader (defaults: 20% of the root's lifetime left, phases of 2 minutes). */
  rootRotation?: { rotateBefore?: RotateBefore; phaseMs?: number; checkIntervalMs?: number };
  /**
   * Kubernetes: Istio's plug-in CA Secret `cacerts` in `namespace` is used when present (else
   * rootStore / stateDir); the trust bundle is published as ConfigMap istio-ca-root-cert in every
   * namespace (by the leader).
   */
  cluster?: { kubeConfig: KubeConfig; namespace: string; publishResyncMs?: number };
}

export const DEFAULT_ROTATE_BEFORE: RotateBefore = { fraction: 0.2 };
export const DEFAULT_ROTATION_PHASE_MS = 120_000;

export interface MeshRunnerOptions extends Omit<ControlPlaneOptions, "nodeKey" | "admit" | "authenticate" | "xdsTls"> {
  security?: MeshSecurityOptions;
  /**
   * Where the mesh config comes from, in order of precedence: on a kind/namespace/name defined
   * by two sources, the first source's definition is used (the other is reported). None: an empty mesh.
   */
  sources?: ConfigSource[];
  /** Bounds on proxy classes (limit, release grace); metrics go to the control plane's registry. */
  classLimits?: Omit<ClassLimits, "metrics">;
  settings?: Partial<MeshSettings>;
  /** How often issuers found by OpenID Connect discovery are discovered again. Default 20 min (Istio's). */
  oidcRefreshMs?: number;
  /** Quiet time after a source's last change before the config is rebuilt (default 100 ms). */
  debounceMs?: number;
  /** Warn (log + issue) when one change removes at least this share (0..1) of a source's resources; default 0.5. */
  largeRemovalShare?: number;
  /**
   * CPU time (ms) the mesh controller's generation may use before giving the event loop back
   * (default DEFAULT_SLICE_MS); see ControllerWork.
   */
  sliceMs?: number;
  /** Serve route configurations' virtual hosts through VHDS to delta ADS clients (default true; see ControllerWork). */
  virtualHostDiscovery?: boolean;
  /** Called when an applied config's validation problems differ from the previous one's (the demo prints them). */
  onProblemsChanged?: (report: ConfigProblemsReport) => void;
  /** Called after every applied config (tests and the demo use it to measure). */
  onApplied?: (config: MeshConfig) => void;
  /**
   * Which replica does the cluster-wide writes (default: this one, always — file mode or a
   * single replica). The runner starts it once the first config is applied and closes it
   * (releasing a held lease) first on close.
   */
  leaderElection?: LeaderElection;
}

export interface MeshRunner {
  cp: ControlPlane;
  controller: MeshController;
  /** The sources and what they last gave (undefined without sources). */
  config?: ConfigAggregator;
  /** With security: the CA, bootstrap credentials, and the trust bundle file Envoys verify the control plane with. */
  security?: { ca: CertificateAuthority; credentials: CredentialStore; certificates: WorkloadCertificates; trustBundleFile: string; serverName: string; tokenReviewer?: TokenReviewer; pods?: PodIdentities; xdsServing?: ServingCertificate };
  /** Whether this replica is the leader (isLeader(), onChange()); every replica serves xDS. */
  leader: LeaderElection;
  /** With security and the built-in CA: the automatic root rotation (driven by the leader, followed by the others). */
  rootRotation?: RootRotation;
  /**
   * Root rotation without losing connectivity: "begin" adds a new root to every proxy's trust
   * bundle and re-issues every workload certificate from it; "finish" drops the old root.
   */
  rotateRoot(phase: "begin" | "finish"): Promise<void>;
  close(graceMs?: number): Promise<void>;
}

/** Writes the bundle atomically (temp file + fsync + rename), which is what Envoy's watched_directory notices. */
async function writeTrustBundle(file: string, pem: string): Promise<void> {
  try {
    await writeFileAtomically(file, pem, 0o644);
  } catch (err) {
    throw new Error(`trust bundle ${file}: cannot write (${(err as Error).message})`);
  }
}

function logIssues(logger: Logger, config: MeshConfig): void {
  for (const issue of config.issues) {
    const { message: _message, severity: _severity, ...fields } = issue;
    if (issue.severity === "error") logger.error(fields, formatIssue(issue));
    else logger.warn(fields, formatIssue(issue));
  }
}

export async function startMeshRunner(opts: MeshRunnerOptions): Promise<MeshRunner> {
  const logger = opts.logger;
  let rootRotation: RootRotation | undefined;
  let stopWatchingRoots: (() => void) | undefined;
  let controller: MeshController | undefined;
  let controlPlane: ControlPlane | undefined;
  /** Set once the first config is applied: from then on streams are admitted. */
  let admitting = false;
  let security: MeshRunner["security"];
  let xdsTls: { certChainPem: string; privateKeyPem: string } | undefined;
  let xdsServing: ServingCertificate | undefined;
  // The control plane's metrics registry, created here so the CA registers its metrics in it too.
  const metricsRegistry = new Registry();
  const expiryGauge = new Gauge({ name: "weft_workload_certificate_expiry_timestamp_seconds", help: "notAfter of the certificate each workload identity currently holds", labelNames: ["identity"], registers: [metricsRegistry] });
  if (opts.security) {
    const sec = opts.security;
    // In a cluster: Istio's plug-in CA Secret cacerts, when present, is the CA.
    const pluggedFromCluster = sec.cluster && !sec.pluggedCaDir ? await pluggedCaFromSecret(sec.cluster.kubeConfig, sec.cluster.namespace, path.join(sec.stateDir, "cacerts-from-secret")) : undefined;
    const ca = await loadOrCreateCa({
      dir: path.join(sec.stateDir, "ca"),
      trustDomain: sec.trustDomain,
      pluggedCaDir: sec.pluggedCaDir ?? pluggedFromCluster,
      metrics: metricsRegistry,
      onWarning: (message) => logger.warn(message),
      ...(sec.rootStore && !pluggedFromCluster ? { rootStore: sec.rootStore } : {}),
      ...(sec.rootTtlMs !== undefined ? { rootTtlMs: sec.rootTtlMs } : {}),
    });
    if (pluggedFromCluster) logger.info({ secret: `${sec.cluster!.namespace}/${PLUGGED_CA_SECRET}` }, "plug-in CA from the cluster's cacerts Secret");
    // A revoked credential's open streams are ended: the proxy loses its configuration and
    // certificate stream, and cannot reconnect with that token.
    const credentials = new CredentialStore(path.join(sec.stateDir, "credentials"), {
      logger: logger.child({ component: "credentials" }),
      ...(sec.credentialRetryMs !== undefined ? { retryMs: sec.credentialRetryMs } : {}),
      onRevoked: (credential, reason) => {
        const closed = controlPlane?.xds.terminateStreamsOf(credential.principal, GrpcStatus.UNAUTHENTICATED, `credential revoked: ${reason}`) ?? 0;
        if (closed > 0) logger.info({ credential: `${credential.namespace}/${credential.name}`, streams: closed }, "streams of a revoked credential closed");
      },
    });
    const certificates = new WorkloadCertificates(
      ca,
      (key, cert) => {
        expiryGauge.set({ identity: cert.identity }, cert.notAfter.getTime() / 1000);
        controller?.regenerateIdentity(key);
      },
      logger.child({ component: "ca" }),
      sec.workloadTtlMs,
    );
    // Sidecars (uid 1337) read the trust bundle: the state dir is traversable (0711), the
    // bundle sits in public/ (0755); the CA key and credentials stay in 0700 directories.
    await chmod(sec.stateDir, 0o711);
    await mkdir(path.join(sec.stateDir, "public"), { recursive: true, mode: 0o755 });
    const trustBundleFile = path.join(sec.stateDir, "public", "root-cert.pem");
    await writeTrustBundle(trustBundleFile, ca.trustBundlePem());
    const serverName = sec.serverName ?? DEFAULT_XDS_SERVER_NAME;
    let tokenReviewer: TokenReviewer | undefined;
    let pods: PodIdentities | undefined;
    if (sec.podTokens) {
      tokenReviewer = new TokenReviewer(sec.podTokens.send, { ...sec.podTokens.reviewer, metrics: metricsRegistry });
      pods = new PodIdentities(tokenReviewer, sec.podTokens.pods, {
        logger: logger.child({ component: "pod-identity" }),
        ...(sec.podTokens.podWaitMs !== undefined ? { podWaitMs: sec.podTokens.podWaitMs } : {}),
        ...(sec.podTokens.serviceAccounts ? { serviceAccounts: sec.podTokens.serviceAccounts } : {}),
        endStreamsOf: (principal, code, message) => {
          const closed = controlPlane?.xds.terminateStreamsOf(principal, code, message) ?? 0;
          if (closed > 0) logger.info({ principal, streams: closed }, message);
        },
      });
    }
    security = { ca, credentials, certificates, trustBundleFile, serverName, ...(tokenReviewer && pods ? { tokenReviewer, pods } : {}) };
    // Renewed at 2/3 of its life and when the signing root changes, without a restart.
    xdsServing = new ServingCertificate({
      what: "xDS serving certificate",
      ca,
      dnsNames: [serverName, ...(sec.servingNames?.dnsNames ?? ["localhost"])],
      ipAddresses: sec.servingNames?.ipAddresses ?? ["127.0.0.1"],
      ttlMs: 90 * 24 * 3600 * 1000, // the CA's longest lifetime (capped by the root's)
      logger: logger.child({ component: "xds-serving-certificate" }),
    });
    const serving = await xdsServing.start();
    security.xdsServing = xdsServing;
    xdsTls = { certChainPem: serving.certChainPem, privateKeyPem: serving.privateKeyPem };
  }
  const credentials = security?.credentials;
  const problems = new ConfigProblems();
  const cp = await startControlPlane({
    ...opts,
    metricsRegistry,
    configProblems: () => problems.report(),
    // Until the first config is applied (the controller exists and every config source has
    // synced, e.g. a Kubernetes cluster listed), streams are asked to retry: a proxy that
    // reconnects while Weft starts keeps the config it has instead of getting an empty mesh.
    admit: (node, principal) =>
      (admitting ? controller?.admit(node, principal) : undefined) ?? { refused: { code: GrpcStatus.UNAVAILABLE, message: "the control plane is starting (waiting for its config sources to sync); retry" } },
    certificateOf: (key) => controller?.certificateOf(key),
    meshModel: () => controller?.currentModel,
    rootRotation: () =>
      rootRotation && {
        status: () => rootRotation!.status(),
        request: async () => {
          try {
            const { started, requested, status } = await rootRotation!.request();
            return { code: started || requested ? 202 : 200, body: { started, ...(requested ? { requested } : {}), ...status } };
          } catch (err) {
            if (err instanceof NotLeaderError) return { code: 409, body: { error: err.message, leader: err.leader ?? null } };
            return { code: 500, body: { error: (err as Error).message } };
          }
        },
      },
    ...(credentials
      ? {
          authenticate: (metadata: Metadata) => {
            const header = metadata.get("authorization")[0];
            const token = typeof header === "string" && header.startsWith("Bearer ") ? header.slice("Bearer ".length).trim() : undefined;
            const own = credentials.authenticate(token)?.principal;
            if (own !== undefined || !token) return own;
            // Not one of Weft's tokens: a JWT (header.payload.signature) may be a pod's ServiceAccount token.
            const pods = security?.pods;
            return pods && token.split(".").length === 3 ? pods.authenticate(token) : undefined;
          },
          xdsTls,
        }
      : {}),
  });
  controlPlane = cp;
  if (xdsServing) xdsServing.serve = (pair) => cp.xds.setServingCertificate(pair);
  // Generation runs in slices (the event loop is given back every sliceMs): admin and xDS
  // stay responsive while a large config is applied.
  controller = new MeshController(cp.cache, logger.child({ component: "mesh" }), opts.settings, { ...opts.classLimits, metrics: metricsRegistry }, { sliceMs: opts.sliceMs ?? DEFAULT_SLICE_MS, virtualHostDiscovery: opts.virtualHostDiscovery });
  if (security) {
    const sec = security;
    controller.enableSecurity({
      trustDomain: sec.ca.trustDomain,
      trustBundlePem: () => sec.ca.trustBundlePem(),
      certificates: sec.certificates,
      credentials: sec.credentials,
      ...(sec.pods ? { otherPrincipal: (principal: string) => sec.pods!.byPrincipalName(principal) } : {}),
      endStreamsOf: (principal, message) => void cp.xds.terminateStreamsOf(principal, GrpcStatus.UNAVAILABLE, message),
    });
  }
  let aggregator: ConfigAggregator | undefined;
  let oidc: OidcDiscovery | undefined;
  if (opts.sources && opts.sources.length > 0) {
    aggregator = new ConfigAggregator(opts.sources, { debounceMs: opts.debounceMs, largeRemovalShare: opts.largeRemovalShare, sliceMs: opts.sliceMs ?? DEFAULT_SLICE_MS, logger: logger.child({ component: "config" }) });
    // RequestAuthentication rules without keys: their issuers' jwks_uri by OpenID Connect discovery.
    let lastRaw: MeshConfig | undefined;
    oidc = new OidcDiscovery({ logger: logger.child({ component: "oidc-discovery" }), onChange: () => void (lastRaw && apply(lastRaw)), ...(opts.oidcRefreshMs ? { refreshMs: opts.oidcRefreshMs } : {}) });
    const apply = async (raw: MeshConfig): Promise<void> => {
      lastRaw = raw;
      await oidc!.prepare(raw); // bounded: TIMEOUT_MS per issuer, all at once
      if (raw !== lastRaw) return; // a newer config arrived while discovering; it is applied instead
      const { config, issues: discoveryIssues } = oidc!.apply(raw);
      // CUSTOM AuthorizationPolicies whose ext_authz provider cannot be used (mesh settings + services).
      const providerIssues = authorizationProviderIssues(config, opts.settings?.authorizationProviders ?? []);
      const extra = [...providerIssues, ...discoveryIssues];
      logIssues(logger, extra.length ? { ...config, issues: [...config.issues, ...extra] } : config);
      // Problems are shown as soon as the config is read (before its generation finishes).
      if (problems.record({ issues: [...config.issues, ...extra] })) opts.onProblemsChanged?.(problems.report());
      return controller!.applyConfig(config).then(
        () => opts.onApplied?.(raw),
        (err: Error) => logger.error({ err: err.message }, "applying the mesh config failed; proxies keep their last good snapshots"),
      );
    };
    let initial: MeshConfig;
    try {
      initial = await aggregator.start((config) => void apply(config));
    } catch (err) {
      await aggregator.close();
      oidc?.close();
      security?.certificates.close();
      xdsServing?.close();
      await cp.close(0);
      throw err;
    }
    logger.info({ sources: opts.sources.map((s) => s.name), resources: initial.resources.length, issues: initial.issues.length }, "watching config sources");
    await apply(initial);
  }
  admitting = true;
  cp.markConfigLoaded();
  const leader = opts.leaderElection ?? alwaysLeader();
  const leaderGauge = new Gauge({ name: "weft_leader", help: "1 while this replica is the leader (does status writes, webhook caBundle, root rotation), else 0", registers: [metricsRegistry] });
  const leaderTransitions = new Counter({ name: "weft_leader_transitions_total", help: "Times this replica became or stopped being the leader", labelNames: ["to"], registers: [metricsRegistry] });
  leaderGauge.set(leader.isLeader() ? 1 : 0);
  leader.onChange((isLeader) => {
    leaderGauge.set(isLeader ? 1 : 0);
    leaderTransitions.inc({ to: isLeader ? "leader" : "follower" });
  });
  leader.start();
  // Every namespace gets the trust bundle as ConfigMap istio-ca-root-cert (written by the leader).
  const rootPublisher =
    security && opts.security?.cluster
      ? new RootCertPublisher({ kubeConfig: opts.security.cluster.kubeConfig, bundle: () => security!.ca.trustBundlePem(), isLeader: () => leader.isLeader(), logger: logger.child({ component: "root-cert-publisher" }), ...(opts.security.cluster.publishResyncMs ? { resyncMs: opts.security.cluster.publishResyncMs } : {}) })
      : undefined;
  rootPublisher?.start();
  leader.onChange((isLeader) => {
    if (isLeader) rootPublisher?.schedule();
  });
  // After start a failed bundle write (disk full) is logged and retried, never thrown.
  let bundleRetry: NodeJS.Timeout | undefined;
  const publishTrustBundle = async (): Promise<void> => {
    clearTimeout(bundleRetry);
    if (!security) return;
    rootPublisher?.schedule();
    try {
      await writeTrustBundle(security.trustBundleFile, security.ca.trustBundlePem());
    } catch (err) {
      logger.error({ err: (err as Error).message }, "cannot write the trust bundle; retrying in 5 s (proxies get the roots over SDS meanwhile)");
      bundleRetry = setTimeout(() => void publishTrustBundle(), 5000).unref();
    }
  };
  /**
   * Gives this replica's proxies the CA's current trust bundle (file for the xDS connection, ROOTCA
   * over SDS); when the signing root changed, re-issues every workload certificate from it, once
   * the proxies ACKed the bundle.
   */
  const applyTrust = async (change: { signingChanged: boolean }): Promise<void> => {
    if (!security) return;
    await publishTrustBundle();
    await controller!.regenerateAll(); // every proxy's ROOTCA secret
    if (change.signingChanged) {
      if (!(await waitForAllSynced(cp.xds.registry, (key) => cp.cache.get(key), 10_000))) {
        logger.warn("not every proxy ACKed the new trust bundle within 10 s; re-issuing certificates anyway");
      }
      await security.certificates.reissueAll();
      // Proxies trust the new root by now (trusting phase): the control plane's own certificate follows.
      await xdsServing?.renew("the CA's signing root changed");
    }
  };
  if (security && security.ca.roots().length > 0 && !opts.security?.pluggedCaDir) {
    const rotationOpts = opts.security?.rootRotation ?? {};
    const store = opts.security?.rootStore;
    rootRotation = new RootRotation({
      ca: security.ca,
      leader,
      logger: logger.child({ component: "root-rotation" }),
      rotateBefore: rotationOpts.rotateBefore ?? DEFAULT_ROTATE_BEFORE,
      phaseMs: rotationOpts.phaseMs ?? DEFAULT_ROTATION_PHASE_MS,
      ...(rotationOpts.checkIntervalMs !== undefined ? { checkIntervalMs: rotationOpts.checkIntervalMs } : {}),
      applyTrust,
      metrics: metricsRegistry,
      ...(store?.requestRotation && store.rotationRequest ? { requests: { send: (by: string) => store.requestRotation!(by), pending: () => store.rotationRequest!() } } : {}),
    });
    const rotation = rootRotation;
    stopWatchingRoots = opts.security?.rootStore?.watch?.(() => void rotation.follow().catch(() => {}));
    rotation.start();
  }
  return {
    cp,
    controller,
    config: aggregator,
    rootRotation,
    security,
    leader,
    async rotateRoot(phase) {
      if (!security) throw new Error("root rotation needs security to be on");
      if (phase === "begin") await security.ca.beginRootRotation();
      else await security.ca.finishRootRotation();
      // Only once every proxy trusts the new root may any proxy present a certificate from it.
      await applyTrust({ signingChanged: phase === "begin" });
      logger.info({ phase, roots: security.ca.roots().map((r) => r.serial) }, "root rotation");
    },
    async close(graceMs = 5000) {
      // First: a released lease lets another replica lead at once.
      rootRotation?.close();
      stopWatchingRoots?.();
      await leader.close();
      await rootPublisher?.close();
      await aggregator?.close();
      oidc?.close();
      controller?.close();
      clearTimeout(bundleRetry);
      security?.credentials.close();
      security?.certificates.close();
      xdsServing?.close();
      security?.pods?.close();
      security?.tokenReviewer?.close();
      await cp.close(graceMs);
    },
  };
}
