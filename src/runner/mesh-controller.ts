// Turns mesh config into per-proxy-class snapshots: rebuilds the model when the config
// changes and regenerates each known proxy class; a class is registered (and generated) the
// moment its first proxy connects. A snapshot refused by the consistency check is logged and
// the class keeps its last good snapshot.
import type { Node } from "../../generated/envoy/config/core/v3/base.js";
import type { MeshConfig } from "../api/types.js";
import { ResourceSet, Snapshot, type CachedResource } from "../cache/snapshot.js";
import { InconsistentSnapshotError, type SnapshotCache } from "../cache/snapshot-cache.js";
import type { Logger } from "../log/logger.js";
import { buildMeshModel, type MeshModel, type MeshSettings } from "../model/mesh-model.js";
import { proxyClassKey, proxyFromNode, type ProxyModel } from "../model/proxy.js";
import { SHARED_RESOURCES, outboundEndpoints, planProxy } from "../translate/translate.js";
import { diffModels } from "../model/model-diff.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import type { MeshSecurity } from "../translate/mtls.js";
import type { CredentialStore } from "../identity/credential-store.js";
import { identityKey, type WorkloadCertificates } from "../identity/workload-certificates.js";

/** mTLS for the mesh: the CA's trust domain and bundle, workload certificates, bootstrap credentials. */
export interface ControllerSecurity {
  trustDomain: string;
  trustBundlePem: () => string;
  certificates: WorkloadCertificates;
  credentials: CredentialStore;
}

export interface GenerationStats {
  classes: number;
  /** "full": every class regenerated; "endpoints": the EDS fast path; "none": nothing to do. */
  path: "full" | "endpoints" | "none";
  changed: number;
  refused: number;
  millis: number;
}

export class MeshController {
  private model: MeshModel;
  private readonly classes = new Map<string, ProxyModel>();
  /** Outbound parts of the current model, by outbound key: shared by every class with that key. */
  private outbound = new Map<string, ResourceSet>();
  /** Equal resource bodies of the current model's parts share one Buffer. */
  private intern = new Map<string, CachedResource>();
  /** Each class's local part (inbound listener, gateway config, secrets) of the current model. */
  private locals = new Map<string, ResourceSet>();
  private readonly shared = ResourceSet.build(SHARED_RESOURCES());

  private security?: ControllerSecurity;

  constructor(
    private readonly cache: SnapshotCache,
    private readonly logger: Logger,
    private readonly settings: Partial<MeshSettings> = {},
  ) {
    this.model = buildMeshModel({ resources: [], issues: [] }, settings);
  }

  /** Turns mTLS on: authenticated proxies get certificates over SDS and talk mTLS. */
  enableSecurity(security: ControllerSecurity): void {
    this.security = security;
  }

  /**
   * What the proxy is: its node metadata for routing, but for an authenticated stream the
   * namespace, labels and service account come from its registered WorkloadEntry (principal
   * "namespace/name"); a principal without a WorkloadEntry (e.g. a gateway) uses its name as
   * service account.
   */
  private describe(node: Node, principal: string | undefined): ProxyModel {
    const proxy = proxyFromNode(node);
    if (!principal || !this.security) return proxy;
    const [namespace, name] = principal.split("/") as [string, string];
    const we = this.model.workloads.find((w) => (w.metadata.namespace ?? "default") === namespace && w.metadata.name === name);
    if (!we) return { ...proxy, namespace, identity: { namespace, serviceAccount: name } };
    return { ...proxy, namespace, labels: { ...(we.metadata.labels ?? {}), ...(we.spec.labels ?? {}) }, identity: { namespace, serviceAccount: we.spec.serviceAccount ?? "default" } };
  }

  /** The snapshot key of a node; registers and generates its class on first sight. */
  readonly nodeKey = (node: Node, principal?: string): string => {
    const proxy = this.describe(node, principal);
    const key = proxyClassKey(proxy);
    if (!this.classes.has(key)) {
      this.classes.set(key, proxy);
      this.generate(key, proxy);
    }
    return key;
  };

  /**
   * Applies a new mesh config. A change of endpoints only takes the EDS fast path: the shared
   * outbound parts get the new ClusterLoadAssignments of the changed services, and only the
   * classes of those services' namespaces rebuild their local part. Anything else regenerates
   * every known class. Classes whose snapshot comes out identical wake nobody.
   */
  setConfig(config: MeshConfig): GenerationStats {
    const start = performance.now();
    const previous = this.model;
    this.model = buildMeshModel(config, this.settings);
    const change = diffModels(previous, this.model);
    // Registering a workload creates its bootstrap credential.
    if (this.security) for (const we of this.model.workloads) this.security.credentials.ensure({ namespace: we.metadata.namespace ?? "default", name: we.metadata.name });
    let changed = 0;
    let refused = 0;
    const count = (r: "changed" | "unchanged" | "refused") => {
      if (r === "changed") changed++;
      if (r === "refused") refused++;
    };
    if (change.kind === "endpoints") {
      const updated = new Map<string, ResourceSet>();
      for (const [key, proxy] of this.classes) {
        // A rebuilt local part is compared with the previous one (read before it is replaced),
        // so its unchanged types keep their objects and streams see "nothing changed" at once.
        count(
          this.generate(key, proxy, {
            reuseLocal: !change.namespaces.has(proxy.namespace),
            outboundUpdate: { from: this.outbound, into: updated, services: change.services },
            previous: { outbound: this.outbound, locals: this.locals },
          }),
        );
      }
      this.outbound = updated;
    } else if (change.kind === "full") {
      // New parts are compared with the previous ones, so unchanged types keep their objects
      // and changed ones say which names changed (streams then look at those only).
      const previous = { outbound: this.outbound, locals: this.locals };
      this.outbound = new Map();
      this.intern = new Map();
      this.locals = new Map();
      for (const [key, proxy] of this.classes) count(this.generate(key, proxy, { previous }));
    }
    const stats = { classes: this.classes.size, path: change.kind, changed, refused, millis: Math.round((performance.now() - start) * 10) / 10 };
    this.logger.info(stats, "mesh config applied");
    return stats;
  }

  get currentModel(): MeshModel {
    return this.model;
  }

  /** The certificate served to a proxy class (for sync status). */
  certificateOf(key: string): { identity: string; serial: string; notAfter: string } | undefined {
    const id = this.classes.get(key)?.identity;
    const cert = id ? this.security?.certificates.get(id) : undefined;
    return cert ? { identity: cert.identity, serial: cert.serial, notAfter: cert.notAfter.toISOString() } : undefined;
  }

  /** Regenerates every proxy class (e.g. the trust bundle changed). */
  regenerateAll(): void {
    for (const [key, proxy] of this.classes) this.generate(key, proxy);
  }

  /** Regenerates the classes of one identity (its certificate was renewed). */
  regenerateIdentity(idKey: string): void {
    for (const [key, proxy] of this.classes) if (proxy.identity && identityKey(proxy.identity) === idKey) this.generate(key, proxy);
  }

  private securityFor(proxy: ProxyModel): MeshSecurity | undefined | "pending" {
    const sec = this.security;
    if (!sec) return undefined;
    if (!proxy.identity) return { trustDomain: sec.trustDomain };
    const cert = sec.certificates.get(proxy.identity);
    if (!cert) {
      void sec.certificates.ensure(proxy.identity).then(() => this.regenerateIdentity(identityKey(proxy.identity!))).catch(() => undefined);
      return "pending";
    }
    return { trustDomain: sec.trustDomain, secrets: { certChainPem: cert.certChainPem, privateKeyPem: cert.privateKeyPem, trustBundlePem: sec.trustBundlePem() } };
  }

  /**
   * Builds a class's snapshot from the shared part, its outbound part (generated once per
   * outbound key and model) and its local part. `reuseLocal` keeps the local part of the
   * previous model; `outboundUpdate` (EDS fast path) derives the outbound part from the
   * previous model's by replacing the endpoints of the changed services.
   */
  private generate(
    key: string,
    proxy: ProxyModel,
    opts: {
      reuseLocal?: boolean;
      outboundUpdate?: { from: ReadonlyMap<string, ResourceSet>; into: Map<string, ResourceSet>; services: ReadonlySet<string> };
      previous?: { outbound: ReadonlyMap<string, ResourceSet>; locals: ReadonlyMap<string, ResourceSet> };
    } = {},
  ): "changed" | "unchanged" | "refused" {
    try {
      const security = this.securityFor(proxy);
      if (security === "pending") return "unchanged"; // generated once its certificate is issued
      const plan = planProxy(this.model, proxy, security);
      let local = opts.reuseLocal ? this.locals.get(key) : undefined;
      if (!local) this.locals.set(key, (local = ResourceSet.build(plan.local(), this.intern, opts.previous?.locals.get(key))));
      const parts = [this.shared, local];
      if (plan.outboundKey !== undefined) {
        const memo = opts.outboundUpdate?.into ?? this.outbound;
        let outbound = memo.get(plan.outboundKey);
        if (!outbound) {
          const before = opts.outboundUpdate?.from.get(plan.outboundKey);
          outbound = before
            ? before.replacing(XDS_TYPES.endpoint, outboundEndpoints(this.model, proxy, security, opts.outboundUpdate!.services))
            : ResourceSet.build(plan.outbound(), this.intern, opts.previous?.outbound.get(plan.outboundKey));
          memo.set(plan.outboundKey, outbound);
        }
        parts.push(outbound);
      }
      const snapshot = Snapshot.compose(parts, this.cache.get(key));
      return this.cache.set(key, snapshot) ? "changed" : "unchanged";
    } catch (err) {
      if (err instanceof InconsistentSnapshotError) return "refused";
      this.logger.error({ key, err: (err as Error).message }, "translation failed; the proxy class keeps its last good snapshot");
      return "refused";
    }
  }
}
