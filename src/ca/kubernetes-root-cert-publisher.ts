// Publishes the mesh's trust bundle as ConfigMap `istio-ca-root-cert` (key root-cert.pem) in
// every namespace, under Istio's name so tools and workloads that read it find it. Kept current:
// a new namespace gets it, an edited or deleted one is put back, a changed bundle (root rotation:
// old and new roots together) is written everywhere. Watches Namespaces and those ConfigMaps
// (field selector on the name) and reconciles after each event (debounced) and every `resyncMs`
// (default 5 s; also how a changed bundle is noticed). Only the leader writes (`isLeader`).
import { CoreV1Api, Watch, type KubeConfig, type V1ConfigMap } from "@kubernetes/client-node";
import type { Logger } from "../log/logger.js";

export const ROOT_CERT_CONFIGMAP = "istio-ca-root-cert";
export const ROOT_CERT_KEY = "root-cert.pem";

export interface RootCertPublisherOptions {
  kubeConfig: KubeConfig;
  /** The PEM to publish (read at every reconcile). */
  bundle: () => string;
  isLeader: () => boolean;
  logger: Logger;
  resyncMs?: number;
  debounceMs?: number;
}

const codeOf = (err: unknown) => (err as { code?: number }).code;

export class RootCertPublisher {
  private readonly core: CoreV1Api;
  private readonly watch: Watch;
  private readonly aborts: (() => void)[] = [];
  private timer?: NodeJS.Timeout;
  private resync?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private closed = false;
  /** Writes made (creates and updates), for tests and logs. */
  writes = 0;

  constructor(private readonly opts: RootCertPublisherOptions) {
    this.core = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.watch = new Watch(opts.kubeConfig);
  }

  start(): void {
    this.watchPath("/api/v1/namespaces", {});
    this.watchPath("/api/v1/configmaps", { fieldSelector: `metadata.name=${ROOT_CERT_CONFIGMAP}` });
    this.resync = setInterval(() => this.schedule(), this.opts.resyncMs ?? 5000);
    this.resync.unref();
    this.schedule();
  }

  /** Reconciles soon (events, leadership gained, a new bundle). */
  schedule(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, this.opts.debounceMs ?? 100);
    this.timer.unref();
  }

  /** One reconcile now (tests); resolves when done. */
  async reconcileNow(): Promise<void> {
    await this.run();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.resync);
    for (const abort of this.aborts.splice(0)) abort();
    await this.running;
  }

  private async run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.reconcile()
      .catch((err: unknown) => this.opts.logger.warn({ err: (err as Error).message.split("\n")[0] }, `cannot publish ConfigMap ${ROOT_CERT_CONFIGMAP}; retrying`))
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.closed) {
          this.again = false;
          this.schedule();
        }
      });
    return this.running;
  }

  private async reconcile(): Promise<void> {
    if (this.closed || !this.opts.isLeader()) return;
    const pem = this.opts.bundle();
    const namespaces = (await this.core.listNamespace()).items.filter((n) => n.status?.phase !== "Terminating").map((n) => n.metadata!.name!);
    const existing = new Map<string, V1ConfigMap>();
    for (const cm of (await this.core.listConfigMapForAllNamespaces({ fieldSelector: `metadata.name=${ROOT_CERT_CONFIGMAP}` })).items) existing.set(cm.metadata!.namespace!, cm);
    for (const namespace of namespaces) {
      if (this.closed) return;
      const cm = existing.get(namespace);
      if (cm?.data?.[ROOT_CERT_KEY] === pem) continue;
      const body: V1ConfigMap = {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: ROOT_CERT_CONFIGMAP, namespace, labels: { "istio.io/config": "true", "app.kubernetes.io/managed-by": "weft" }, ...(cm?.metadata?.resourceVersion ? { resourceVersion: cm.metadata.resourceVersion } : {}) },
        data: { [ROOT_CERT_KEY]: pem },
      };
      try {
        if (cm) await this.core.replaceNamespacedConfigMap({ name: ROOT_CERT_CONFIGMAP, namespace, body });
        else await this.core.createNamespacedConfigMap({ namespace, body });
        this.writes++;
      } catch (err) {
        // 409: changed or created meanwhile; 404/403 on a namespace being deleted: the next pass settles it.
        const code = codeOf(err);
        if (code === 409 || code === 404 || (code === 403 && /being terminated/.test(String((err as Error).message)))) this.again = true;
        else throw err;
      }
    }
  }

  private watchPath(path: string, params: Record<string, string>): void {
    const begin = async (): Promise<void> => {
      if (this.closed) return;
      try {
        const controller = await this.watch.watch(path, params, () => this.schedule(), () => {
          if (!this.closed) setTimeout(() => void begin(), 1000).unref();
        });
        this.aborts.push(() => controller.abort());
      } catch {
        if (!this.closed) setTimeout(() => void begin(), 1000).unref();
      }
    };
    void begin();
  }
}
