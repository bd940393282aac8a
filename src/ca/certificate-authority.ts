// The built-in certificate authority: issues SPIFFE workload certificates (and the control
// plane's own serving certificate) from a self-signed root kept in a directory, or from a CA
// plugged in with Istio's file layout. Helpers live beside this file:
//   root-certificate.ts   creating the self-signed root (with @peculiar/x509, via x509-library.ts)
//   file-root-store.ts    keeping it on disk (behind root-store.ts's interface)
//   plugged-ca.ts         reading and checking a plugged-in CA
//   certificate-signer.ts the signing certificate + key, checked, with the chain above it
//   leaf-certificate.ts   issuing workload and serving certificates (DER from der-encoding.ts)
//   renewal-time.ts       when holders should renew
import { X509Certificate as NodeX509Certificate } from "node:crypto";
import { isIP } from "node:net";
import type { Registry } from "prom-client";
import { CaMetrics } from "./ca-metrics.js";
import { CertificateAuthorityError } from "./certificate-authority-error.js";
import { createCertificateSigner, type CertificateSigner } from "./certificate-signer.js";
import { checkServingDnsName } from "./dns-names.js";
import { FileRootStore } from "./file-root-store.js";
import { importSigningKey, isKeyAlgorithm, KEY_ALGORITHMS, type KeyAlgorithm } from "./key-algorithm.js";
import { EXTENDED_KEY_USAGE, issueLeafCertificate, type CertificateKind, type ExtendedKeyUsage, type IssuedCertificate, type SubjectAltName } from "./leaf-certificate.js";
import { joinPem, splitPemCertificates } from "./pem-blocks.js";
import { loadPluggedCa } from "./plugged-ca.js";
import { CLOCK_SKEW_ALLOWANCE_MS, createRootCertificate, wholeSeconds } from "./root-certificate.js";
import type { RootStore } from "./root-store.js";
export type { RootStore, StoredRoot, StoredRoots } from "./root-store.js";
import { checkTrustDomain, spiffeId } from "./spiffe-id.js";
import * as x509 from "./x509-library.js";

export { CertificateAuthorityError } from "./certificate-authority-error.js";
export type { KeyAlgorithm } from "./key-algorithm.js";
export type { IssuedCertificate } from "./leaf-certificate.js";
export { renewalTime } from "./renewal-time.js";
export { spiffeId } from "./spiffe-id.js";

export const DEFAULT_TRUST_DOMAIN = "cluster.local";
export const DEFAULT_WORKLOAD_TTL_MS = 24 * 60 * 60 * 1000;
/** Istio's default for max-workload-cert-ttl. */
export const DEFAULT_MAX_WORKLOAD_TTL_MS = 90 * 24 * 60 * 60 * 1000;
/** Certificate times have one-second precision. */
export const MIN_TTL_MS = 1000;

export interface CertificateAuthority {
  /** Default "cluster.local". */
  readonly trustDomain: string;
  /** PEM bundle of every root currently trusted (old and new during a root rotation). */
  trustBundlePem(): string;
  /** Serial and expiry of the root(s), for status, in trust bundle order (the built-in CA's signing root first). */
  roots(): { serial: string; notBefore: Date; notAfter: Date; subject: string }[];
  /** True between beginRootRotation() and finishRootRotation(). */
  rootRotationInProgress(): boolean;
  /**
   * Where a root rotation stands: "idle"; "trusting" (prepareRootRotation: the next root is in the
   * trust bundle, the old one still signs); "signing" (beginRootRotation: the new root signs, the
   * old one is still trusted). finishRootRotation returns to "idle".
   */
  rootRotationPhase(): RootRotationPhase;
  /**
   * A certificate for spiffe://<trust domain>/ns/<namespace>/sa/<serviceAccount> with a fresh key.
   * ttlMs defaults to defaultWorkloadTtlMs; more than maxWorkloadTtlMs is refused. A lifetime
   * that would outlast the signing CA's chain is shortened to end with it (see notAfter).
   */
  issueWorkloadCertificate(opts: { namespace: string; serviceAccount: string; ttlMs?: number }): Promise<IssuedCertificate>;
  /** For the control plane's own xDS/SDS TLS endpoint: serverAuth only, names as DNS and IP SANs. */
  issueServingCertificate(opts: { dnsNames: string[]; ipAddresses: string[]; ttlMs?: number }): Promise<IssuedCertificate>;
  /**
   * First phase of a rotation across replicas: creates the next root and adds it to the trust
   * bundle; the current root keeps signing. Only for the built-in root.
   */
  prepareRootRotation(): Promise<void>;
  /**
   * Starts signing with a new root (the prepared one, else a new one created now); the trust
   * bundle carries old + new. Certificates issued before keep verifying against the bundle.
   * Only for the built-in root.
   */
  beginRootRotation(): Promise<void>;
  /**
   * Ends it: the old root leaves the trust bundle. Call it only once every workload has a
   * certificate from the new root and the new bundle (wait at least one workload lifetime).
   */
  finishRootRotation(): Promise<void>;
  /**
   * Reads the root store again (another replica, the leader, may have changed it) and takes its
   * state. True when the trust bundle or the signing root changed.
   */
  reload(): Promise<{ bundleChanged: boolean; signingChanged: boolean }>;
}

export type RootRotationPhase = "idle" | "trusting" | "signing";

export interface CaOptions {
  /**
   * Where the self-signed root is persisted (created with mode 0700, key files 0600) and reused
   * on restart. A persisted root is reused whatever its key algorithm or organization; rotate
   * the root to change them. Unused when pluggedCaDir is set.
   */
  dir: string;
  trustDomain?: string;
  /** Default ECDSA_P256 (new roots, and workload keys). */
  keyAlgorithm?: KeyAlgorithm;
  /**
   * Plug in an existing CA: a directory with Istio's plugged-in CA layout: ca-cert.pem,
   * ca-key.pem, root-cert.pem, cert-chain.pem. Issue from ca-cert/ca-key; chains include
   * cert-chain.pem; trust bundle = root-cert.pem. The files are read once, at load.
   */
  pluggedCaDir?: string;
  /** Default 24 h. */
  defaultWorkloadTtlMs?: number;
  /** Longest lifetime a caller may ask for; default 90 days (Istio's max-workload-cert-ttl). */
  maxWorkloadTtlMs?: number;
  metrics?: Registry;
  /** Told about problems that do not stop the CA (e.g. a plugged-in ca-key.pem readable by others). */
  onWarning?: (message: string) => void;
  /** Lifetime of a root the built-in CA creates; default ten years. */
  rootTtlMs?: number;
  /** Where the built-in root is kept; default a FileRootStore in dir (a Kubernetes Secret with replicas). */
  rootStore?: RootStore;
  /** For tests. */
  now?: () => Date;
}

/** The part of the CA that changes on root rotation. */
interface TrustState {
  signer: CertificateSigner;
  /** The root new certificates chain to. */
  anchorRootPem: string;
  /** Every trusted root: for the built-in CA the signing root first; for a plugged-in CA, root-cert.pem in file order. */
  trustedRootPems: string[];
  /** The next root (built-in CA, "trusting" phase): trusted, not yet signing. */
  incoming?: { certificatePem: string; privateKeyPem: string };
}

type RootSource = { kind: "built-in"; store: RootStore; keyAlgorithm: KeyAlgorithm; rootTtlMs?: number } | { kind: "plugged-in"; dir: string };

function formatDuration(ms: number): string {
  const units: [number, string][] = [
    [24 * 60 * 60 * 1000, "d"],
    [60 * 60 * 1000, "h"],
    [60 * 1000, "m"],
    [1000, "s"],
  ];
  for (const [size, unit] of units) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

function checkTtl(value: unknown, what: string, maxMs: number, maxWhat: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < MIN_TTL_MS) {
    throw new CertificateAuthorityError(`${what}: expected a number of milliseconds, at least ${MIN_TTL_MS} (one second), found ${String(value)}`);
  }
  if (value > maxMs) {
    throw new CertificateAuthorityError(`${what}: ${formatDuration(value)} is longer than the longest lifetime allowed, ${formatDuration(maxMs)} (${maxWhat})`);
  }
  return value;
}

function summarizeRoot(pem: string): { serial: string; notBefore: Date; notAfter: Date; subject: string } {
  const certificate = new x509.X509Certificate(pem);
  return { serial: certificate.serialNumber, notBefore: certificate.notBefore, notAfter: certificate.notAfter, subject: certificate.subject };
}

class MeshCertificateAuthority implements CertificateAuthority {
  private state: TrustState;
  private rootSummaries: { serial: string; notBefore: Date; notAfter: Date; subject: string }[];
  /** Root rotations run one at a time. */
  private rotationQueue: Promise<void> = Promise.resolve();

  constructor(
    readonly trustDomain: string,
    private readonly source: RootSource,
    initialState: TrustState,
    private readonly settings: { keyAlgorithm: KeyAlgorithm; defaultWorkloadTtlMs: number; maxWorkloadTtlMs: number; now: () => Date; metrics?: CaMetrics },
  ) {
    this.state = initialState;
    this.rootSummaries = [];
    this.setState(initialState);
  }

  private setState(state: TrustState): void {
    this.state = state;
    this.rootSummaries = state.trustedRootPems.map(summarizeRoot);
    this.settings.metrics?.rootExpiry.set(new x509.X509Certificate(state.anchorRootPem).notAfter.getTime() / 1000);
  }

  trustBundlePem(): string {
    return joinPem(this.state.trustedRootPems);
  }

  roots(): { serial: string; notBefore: Date; notAfter: Date; subject: string }[] {
    return this.rootSummaries.map((root) => ({ ...root, notBefore: new Date(root.notBefore), notAfter: new Date(root.notAfter) }));
  }

  rootRotationInProgress(): boolean {
    return this.rootRotationPhase() === "signing";
  }

  rootRotationPhase(): RootRotationPhase {
    if (this.source.kind !== "built-in") return "idle";
    if (this.state.incoming) return "trusting";
    return this.state.trustedRootPems.length > 1 ? "signing" : "idle";
  }

  issueWorkloadCertificate(opts: { namespace: string; serviceAccount: string; ttlMs?: number }): Promise<IssuedCertificate> {
    return this.issue("workload", () => {
      const identity = spiffeId(this.trustDomain, opts.namespace, opts.serviceAccount);
      return {
        identity,
        subjectAltNames: [{ type: "uri", value: identity }],
        extendedKeyUsages: [EXTENDED_KEY_USAGE.serverAuth, EXTENDED_KEY_USAGE.clientAuth],
        ttlMs: opts.ttlMs,
      };
    });
  }

  issueServingCertificate(opts: { dnsNames: string[]; ipAddresses: string[]; ttlMs?: number }): Promise<IssuedCertificate> {
    return this.issue("serving", () => {
      const dnsNames = opts.dnsNames ?? [];
      const ipAddresses = opts.ipAddresses ?? [];
      if (!Array.isArray(dnsNames) || !Array.isArray(ipAddresses)) {
        throw new CertificateAuthorityError("issueServingCertificate: expected dnsNames and ipAddresses to be lists of strings");
      }
      if (dnsNames.length === 0 && ipAddresses.length === 0) {
        throw new CertificateAuthorityError("issueServingCertificate: expected at least one DNS name or IP address to put in the certificate");
      }
      dnsNames.forEach((name, index) => checkServingDnsName(name, `issueServingCertificate: dnsNames[${index}]`));
      ipAddresses.forEach((address, index) => {
        if (typeof address !== "string" || isIP(address) === 0) {
          throw new CertificateAuthorityError(
            `issueServingCertificate: ipAddresses[${index}] ${JSON.stringify(address)} is not an IP address; expected IPv4 (10.0.0.1) or IPv6 (fd00::1)`,
          );
        }
      });
      return {
        identity: dnsNames[0] ?? ipAddresses[0]!,
        subjectAltNames: [...dnsNames.map((value) => ({ type: "dns" as const, value })), ...ipAddresses.map((value) => ({ type: "ip" as const, value }))],
        extendedKeyUsages: [EXTENDED_KEY_USAGE.serverAuth],
        ttlMs: opts.ttlMs,
      };
    });
  }

  private async issue(
    kind: CertificateKind,
    describe: () => { identity: string; subjectAltNames: SubjectAltName[]; extendedKeyUsages: ExtendedKeyUsage[]; ttlMs: number | undefined },
  ): Promise<IssuedCertificate> {
    const started = performance.now();
    try {
      const request = describe();
      const what = kind === "workload" ? "issueWorkloadCertificate" : "issueServingCertificate";
      const ttlMs = checkTtl(request.ttlMs ?? this.settings.defaultWorkloadTtlMs, `${what}: ttlMs`, this.settings.maxWorkloadTtlMs, "option maxWorkloadTtlMs");
      const signer = this.state.signer; // a rotation mid-issue does not mix two roots in one certificate
      const now = this.settings.now().getTime();
      let notAfter = wholeSeconds(now + ttlMs);
      if (notAfter > signer.validUntil) notAfter = signer.validUntil; // documented: never outlive the signing chain
      if (notAfter.getTime() <= now) {
        throw new CertificateAuthorityError(
          `${what}: the signing CA's chain expired at ${signer.validUntil.toISOString()}; no certificate can be issued until the CA is replaced`,
        );
      }
      const issued = await issueLeafCertificate(signer, {
        identity: request.identity,
        subjectAltNames: request.subjectAltNames,
        extendedKeyUsages: request.extendedKeyUsages,
        notBefore: wholeSeconds(now - CLOCK_SKEW_ALLOWANCE_MS),
        notAfter,
        keyAlgorithm: this.settings.keyAlgorithm,
      });
      this.settings.metrics?.recordIssued(kind, (performance.now() - started) / 1000);
      return issued;
    } catch (err) {
      this.settings.metrics?.recordFailure(kind);
      throw err;
    }
  }

  private exclusively(operation: () => Promise<void>): Promise<void> {
    const run = this.rotationQueue.then(operation);
    this.rotationQueue = run.catch(() => undefined);
    return run;
  }

  beginRootRotation(): Promise<void> {
    return this.exclusively(async () => {
      const source = this.builtInSource("beginRootRotation");
      if (this.rootRotationInProgress()) {
        throw new CertificateAuthorityError(
          `beginRootRotation: a root rotation is already in progress (the old root is in ${source.store.names.retiringCertificates}); call finishRootRotation() first`,
        );
      }
      const now = this.settings.now();
      const created = this.state.incoming ?? (await this.createNextRoot(source, now));
      const signer = await createCertificateSigner({
        certificatePem: created.certificatePem,
        certificateFile: source.store.names.signingCertificate,
        key: importSigningKey(created.privateKeyPem, source.store.names.signingKey),
        keyFile: source.store.names.signingKey,
        chainAfterLeaf: [],
        now,
      });
      const oldRootPem = this.state.anchorRootPem;
      // Keep trusting the old root before the new one takes over, so a crash in between leaves
      // nothing untrusted.
      await source.store.saveRetiringCertificates(oldRootPem);
      await source.store.saveSigningRoot(created);
      if (this.state.incoming) await source.store.saveIncomingRoot(undefined);
      this.setState({ signer, anchorRootPem: created.certificatePem, trustedRootPems: [created.certificatePem, oldRootPem] });
    });
  }

  private createNextRoot(source: Extract<RootSource, { kind: "built-in" }>, now: Date): Promise<{ certificatePem: string; privateKeyPem: string }> {
    // A rotated root gets its own subject (see rootSubject): the generation is its creation time.
    return createRootCertificate({ trustDomain: this.trustDomain, keyAlgorithm: source.keyAlgorithm, now, generation: now.toISOString().replace(/[-:]|\.\d+/g, ""), ttlMs: source.rootTtlMs });
  }

  prepareRootRotation(): Promise<void> {
    return this.exclusively(async () => {
      const source = this.builtInSource("prepareRootRotation");
      if (this.rootRotationPhase() !== "idle") {
        throw new CertificateAuthorityError(`prepareRootRotation: a root rotation is already in progress (phase ${this.rootRotationPhase()}); finish it first`);
      }
      const next = await this.createNextRoot(source, this.settings.now());
      await source.store.saveIncomingRoot(next);
      this.setState({ ...this.state, trustedRootPems: [this.state.anchorRootPem, next.certificatePem], incoming: next });
    });
  }

  reload(): Promise<{ bundleChanged: boolean; signingChanged: boolean }> {
    let result = { bundleChanged: false, signingChanged: false };
    return this.exclusively(async () => {
      if (this.source.kind !== "built-in") return;
      const next = await loadBuiltInTrust(this.source.store, this.trustDomain, this.source.keyAlgorithm, this.settings.now(), this.source.rootTtlMs);
      const bundleChanged = next.trustedRootPems.join() !== this.state.trustedRootPems.join();
      const signingChanged = next.anchorRootPem !== this.state.anchorRootPem;
      if (bundleChanged || signingChanged || next.incoming?.certificatePem !== this.state.incoming?.certificatePem) this.setState(next);
      result = { bundleChanged, signingChanged };
    }).then(() => result);
  }

  finishRootRotation(): Promise<void> {
    return this.exclusively(async () => {
      const source = this.builtInSource("finishRootRotation");
      if (!this.rootRotationInProgress()) {
        throw new CertificateAuthorityError("finishRootRotation: no root rotation is in progress; call beginRootRotation() first");
      }
      await source.store.saveRetiringCertificates(undefined);
      this.setState({ signer: this.state.signer, anchorRootPem: this.state.anchorRootPem, trustedRootPems: [this.state.anchorRootPem] });
    });
  }

  private builtInSource(operation: string): Extract<RootSource, { kind: "built-in" }> {
    if (this.source.kind !== "built-in") {
      throw new CertificateAuthorityError(
        `${operation}: the CA is plugged in from ${this.source.dir}; rotate its root by replacing the files there (root-cert.pem listing old and new roots first), not through Weft`,
      );
    }
    return this.source;
  }
}

function checkOptions(opts: CaOptions): { trustDomain: string; keyAlgorithm: KeyAlgorithm; defaultWorkloadTtlMs: number; maxWorkloadTtlMs: number } {
  if (typeof opts.dir !== "string" || opts.dir === "") {
    throw new CertificateAuthorityError("CA option dir: expected the path of a directory to keep the root in");
  }
  const trustDomain = checkTrustDomain(opts.trustDomain ?? DEFAULT_TRUST_DOMAIN, "CA option trustDomain");
  const keyAlgorithm = opts.keyAlgorithm ?? "ECDSA_P256";
  if (!isKeyAlgorithm(keyAlgorithm)) {
    throw new CertificateAuthorityError(`CA option keyAlgorithm: expected one of ${KEY_ALGORITHMS.join(", ")}, found ${JSON.stringify(keyAlgorithm)}`);
  }
  if (opts.rootTtlMs !== undefined && (!Number.isFinite(opts.rootTtlMs) || opts.rootTtlMs < 10_000)) {
    throw new CertificateAuthorityError(`CA option rootTtlMs: expected a number of milliseconds, at least 10000 (ten seconds), found ${String(opts.rootTtlMs)}`);
  }
  const maxWorkloadTtlMs = checkTtl(opts.maxWorkloadTtlMs ?? DEFAULT_MAX_WORKLOAD_TTL_MS, "CA option maxWorkloadTtlMs", Number.MAX_SAFE_INTEGER, "");
  const defaultWorkloadTtlMs = checkTtl(opts.defaultWorkloadTtlMs ?? DEFAULT_WORKLOAD_TTL_MS, "CA option defaultWorkloadTtlMs", maxWorkloadTtlMs, "option maxWorkloadTtlMs");
  return { trustDomain, keyAlgorithm, defaultWorkloadTtlMs, maxWorkloadTtlMs };
}

/** Loads the built-in root from the store, creating and saving one on first use. */
async function loadBuiltInTrust(store: RootStore, trustDomain: string, keyAlgorithm: KeyAlgorithm, now: Date, rootTtlMs?: number): Promise<TrustState> {
  let stored = await store.load();
  if (!stored) {
    const created = await createRootCertificate({ trustDomain, keyAlgorithm, now, ttlMs: rootTtlMs });
    // Create-only where the store is shared: a replica that read "nothing stored" must never
    // replace the root another replica created meanwhile.
    if (store.createSigningRoot) await store.createSigningRoot(created);
    else await store.saveSigningRoot(created);
    // A store shared by replicas keeps the root the first of them saved: read back what won.
    stored = (await store.load()) ?? { signing: created };
  }
  const rootFile = store.names.signingCertificate;
  const [rootPem, ...extra] = splitPemCertificates(stored.signing.certificatePem, rootFile);
  if (extra.length > 0) {
    throw new CertificateAuthorityError(`${rootFile}: holds ${extra.length + 1} certificates; expected exactly one, the self-signed root`);
  }
  const rootCertificate = new NodeX509Certificate(rootPem!);
  if (!rootCertificate.checkIssued(rootCertificate) || !rootCertificate.verify(rootCertificate.publicKey)) {
    throw new CertificateAuthorityError(
      `${rootFile}: the certificate is not self-signed; the built-in CA signs with a root of its own (to sign with a CA issued by another, use the pluggedCaDir option)`,
    );
  }
  const signer = await createCertificateSigner({
    certificatePem: rootPem!,
    certificateFile: rootFile,
    key: importSigningKey(stored.signing.privateKeyPem, store.names.signingKey),
    keyFile: store.names.signingKey,
    chainAfterLeaf: [],
    expiredRemedy: `Remove ${rootFile} and ${store.names.signingKey} to create a new root (every workload will then need the new trust bundle)`,
    now,
  });
  const retiring =
    stored.retiringCertificatesPem === undefined || stored.retiringCertificatesPem.trim() === ""
      ? []
      : splitPemCertificates(stored.retiringCertificatesPem, store.names.retiringCertificates).filter((pem) => pem !== rootPem);
  const incoming = stored.incoming && stored.incoming.certificatePem.trim() !== rootPem!.trim() ? stored.incoming : undefined;
  const incomingPem = incoming ? splitPemCertificates(incoming.certificatePem, store.names.incomingRoot)[0]! : undefined;
  return {
    signer,
    anchorRootPem: rootPem!,
    trustedRootPems: [rootPem!, ...retiring, ...(incomingPem && !retiring.includes(incomingPem) ? [incomingPem] : [])],
    ...(incoming && incomingPem ? { incoming: { certificatePem: incomingPem, privateKeyPem: incoming.privateKeyPem } } : {}),
  };
}

/**
 * The CA for a mesh: the plugged-in CA when pluggedCaDir is set, else the self-signed root in
 * dir (created on first use). Checks every option and file, with errors naming the one at fault.
 */
export async function loadOrCreateCa(opts: CaOptions): Promise<CertificateAuthority> {
  const checked = checkOptions(opts);
  const now = opts.now ?? (() => new Date());
  const metrics = opts.metrics ? new CaMetrics(opts.metrics) : undefined;
  const settings = { keyAlgorithm: checked.keyAlgorithm, defaultWorkloadTtlMs: checked.defaultWorkloadTtlMs, maxWorkloadTtlMs: checked.maxWorkloadTtlMs, now, ...(metrics ? { metrics } : {}) };
  if (opts.pluggedCaDir !== undefined) {
    const plugged = await loadPluggedCa(opts.pluggedCaDir, now(), opts.onWarning);
    const state = { signer: plugged.signer, anchorRootPem: plugged.anchorRootPem, trustedRootPems: plugged.rootCertificatePems };
    return new MeshCertificateAuthority(checked.trustDomain, { kind: "plugged-in", dir: opts.pluggedCaDir }, state, settings);
  }
  const store = opts.rootStore ?? new FileRootStore(opts.dir);
  const state = await loadBuiltInTrust(store, checked.trustDomain, checked.keyAlgorithm, now(), opts.rootTtlMs);
  return new MeshCertificateAuthority(checked.trustDomain, { kind: "built-in", store, keyAlgorithm: checked.keyAlgorithm, ...(opts.rootTtlMs !== undefined ? { rootTtlMs: opts.rootTtlMs } : {}) }, state, settings);
}
