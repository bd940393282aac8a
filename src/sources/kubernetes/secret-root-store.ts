// The CA's self-signed root kept in a Kubernetes Secret, so every replica signs with the same
// root and follows a rotation the leader drives (the RootStore of src/ca/root-store.ts).
//
// Secret <namespace>/<name> (default istio-system/weft-ca-root), type Opaque, keys:
//   ca-cert.pem             the signing root's certificate (Istio's self-signed layout name)
//   ca-key.pem              its PKCS#8 private key
//   root-cert.pem           every trusted root (what proxies trust), for tools that read it
//   previous-root-cert.pem  roots still trusted while a rotation runs ("signing" phase)
//   next-root-cert.pem      the next root, trusted but not yet signing ("trusting" phase)
//   next-root-key.pem       its key
// Only the leader writes the roots (replace with the resourceVersion read: a concurrent writer is
// an error, never a silent overwrite); the first root is created with create(), so of replicas
// starting together the first one's root wins and the others read it back. A follower asked for
// a rotation (`weft ca rotate-root`) only merge-patches two annotations,
// weft.io/root-rotation-requested-by and -at; the leader sees them through its watch, and its
// next write (starting the rotation) drops them (other annotations are kept).
// Followers watch the Secret and reload the CA on every change.
import { CoreV1Api, PatchStrategy, setHeaderOptions, Watch, type KubeConfig, type V1Secret } from "@kubernetes/client-node";
import { CertificateAuthorityError } from "../../ca/certificate-authority-error.js";
import type { RootStore, StoredRoot, StoredRoots } from "../../ca/root-store.js";
import { joinPem, splitPemCertificates } from "../../ca/pem-blocks.js";

const KEYS = {
  signingCertificate: "ca-cert.pem",
  signingKey: "ca-key.pem",
  bundle: "root-cert.pem",
  retiring: "previous-root-cert.pem",
  nextCertificate: "next-root-cert.pem",
  nextKey: "next-root-key.pem",
} as const;

/** A follower's request for a rotation (see the header). */
export const ROTATION_REQUESTED_BY = "weft.io/root-rotation-requested-by";
export const ROTATION_REQUESTED_AT = "weft.io/root-rotation-requested-at";

/** Largest Secret read (Kubernetes caps a Secret at 1 MiB). */
const MAX_SECRET_BYTES = 1024 * 1024;

function statusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === "number" ? code : undefined;
}

function decode(data: Record<string, string> | undefined, key: string): string | undefined {
  const value = data?.[key];
  return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");
}

export class SecretRootStore implements RootStore {
  readonly names: RootStore["names"];
  private readonly core: CoreV1Api;
  private readonly where: string;

  constructor(private readonly kubeConfig: KubeConfig, private readonly namespace: string, private readonly name: string, private readonly onWatchError?: (message: string) => void) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.where = `Secret ${namespace}/${name}`;
    this.names = {
      signingCertificate: `${this.where} key ${KEYS.signingCertificate}`,
      signingKey: `${this.where} key ${KEYS.signingKey}`,
      retiringCertificates: `${this.where} key ${KEYS.retiring}`,
      incomingRoot: `${this.where} key ${KEYS.nextCertificate}`,
    };
  }

  private async read(): Promise<V1Secret | undefined> {
    try {
      const secret = await this.core.readNamespacedSecret({ name: this.name, namespace: this.namespace });
      const size = Object.values(secret.data ?? {}).reduce((n, v) => n + v.length, 0);
      if (size > MAX_SECRET_BYTES) throw new CertificateAuthorityError(`${this.where}: ${size} bytes of data; a CA root Secret holds a few KB (at most ${MAX_SECRET_BYTES} read)`);
      return secret;
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      if (err instanceof CertificateAuthorityError) throw err;
      throw new CertificateAuthorityError(`${this.where}: cannot read (${(err as Error).message.split("\n")[0]})`);
    }
  }

  private static toStored(secret: V1Secret, where: string): StoredRoots | undefined {
    const certificatePem = decode(secret.data, KEYS.signingCertificate);
    const privateKeyPem = decode(secret.data, KEYS.signingKey);
    if (certificatePem === undefined && privateKeyPem === undefined) return undefined;
    if (certificatePem === undefined || privateKeyPem === undefined) {
      throw new CertificateAuthorityError(`${where}: has ${certificatePem === undefined ? KEYS.signingKey : KEYS.signingCertificate} but not ${certificatePem === undefined ? KEYS.signingCertificate : KEYS.signingKey}; the root needs both (delete the Secret to create a new root: every workload will then need the new trust bundle)`);
    }
    const retiring = decode(secret.data, KEYS.retiring);
    const nextCertificate = decode(secret.data, KEYS.nextCertificate);
    const nextKey = decode(secret.data, KEYS.nextKey);
    return {
      signing: { certificatePem, privateKeyPem },
      ...(retiring !== undefined && retiring.trim() !== "" ? { retiringCertificatesPem: retiring } : {}),
      ...(nextCertificate !== undefined && nextKey !== undefined ? { incoming: { certificatePem: nextCertificate, privateKeyPem: nextKey } } : {}),
    };
  }

  async load(): Promise<StoredRoots | undefined> {
    const secret = await this.read();
    return secret ? SecretRootStore.toStored(secret, this.where) : undefined;
  }

  private data(roots: StoredRoots): Record<string, string> {
    const bundle = [roots.signing.certificatePem, ...(roots.retiringCertificatesPem ? [roots.retiringCertificatesPem] : []), ...(roots.incoming ? [roots.incoming.certificatePem] : [])]
      .flatMap((pem) => splitPemCertificates(pem, this.where))
      .filter((pem, i, all) => all.indexOf(pem) === i);
    const text: Record<string, string> = {
      [KEYS.signingCertificate]: roots.signing.certificatePem,
      [KEYS.signingKey]: roots.signing.privateKeyPem,
      [KEYS.bundle]: joinPem(bundle),
      ...(roots.retiringCertificatesPem ? { [KEYS.retiring]: roots.retiringCertificatesPem } : {}),
      ...(roots.incoming ? { [KEYS.nextCertificate]: roots.incoming.certificatePem, [KEYS.nextKey]: roots.incoming.privateKeyPem } : {}),
    };
    return Object.fromEntries(Object.entries(text).map(([k, v]) => [k, Buffer.from(v, "utf8").toString("base64")]));
  }

  /** Reads, changes and writes back the whole Secret (one write: followers never see half a change). */
  private async update(change: (current: StoredRoots | undefined) => StoredRoots): Promise<void> {
    const secret = await this.read();
    const next = change(secret ? SecretRootStore.toStored(secret, this.where) : undefined);
    const body: V1Secret = {
      apiVersion: "v1",
      kind: "Secret",
      type: "Opaque",
      metadata: {
        name: this.name,
        namespace: this.namespace,
        labels: { "app.kubernetes.io/managed-by": "weft" },
        // Others' annotations stay; a rotation request is consumed by this write.
        annotations: Object.fromEntries(Object.entries(secret?.metadata?.annotations ?? {}).filter(([k]) => k !== ROTATION_REQUESTED_BY && k !== ROTATION_REQUESTED_AT)),
        ...(secret?.metadata?.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}),
      },
      data: this.data(next),
    };
    try {
      if (secret) await this.core.replaceNamespacedSecret({ name: this.name, namespace: this.namespace, body });
      else await this.core.createNamespacedSecret({ namespace: this.namespace, body });
    } catch (err) {
      // Another replica created the first root at the same moment: theirs stands (load() reads it).
      if (!secret && statusCode(err) === 409) return;
      throw new CertificateAuthorityError(
        statusCode(err) === 409
          ? `${this.where}: changed by another writer while this replica updated it (only the leader should write it); nothing written`
          : `${this.where}: cannot write (${(err as Error).message.split("\n")[0]})`,
      );
    }
  }

  private static requireCurrent(current: StoredRoots | undefined, where: string): StoredRoots {
    if (!current) throw new CertificateAuthorityError(`${where}: does not exist (deleted while Weft runs?); restart a replica to create a new root`);
    return current;
  }

  /** The first root: created only if the Secret does not exist (409: another replica's root stands). */
  async createSigningRoot(root: StoredRoot): Promise<"created" | "exists"> {
    const body: V1Secret = {
      apiVersion: "v1",
      kind: "Secret",
      type: "Opaque",
      metadata: { name: this.name, namespace: this.namespace, labels: { "app.kubernetes.io/managed-by": "weft" } },
      data: this.data({ signing: root }),
    };
    try {
      await this.core.createNamespacedSecret({ namespace: this.namespace, body });
      return "created";
    } catch (err) {
      if (statusCode(err) === 409) return "exists";
      throw new CertificateAuthorityError(`${this.where}: cannot create (${(err as Error).message.split("\n")[0]})`);
    }
  }

  saveSigningRoot(root: StoredRoot): Promise<void> {
    return this.update((current) => ({ ...(current ?? {}), signing: root }));
  }

  saveRetiringCertificates(pem: string | undefined): Promise<void> {
    return this.update((current) => {
      const { retiringCertificatesPem: _old, ...rest } = SecretRootStore.requireCurrent(current, this.where);
      return pem === undefined ? rest : { ...rest, retiringCertificatesPem: pem };
    });
  }

  saveIncomingRoot(root: StoredRoot | undefined): Promise<void> {
    return this.update((current) => {
      const { incoming: _old, ...rest } = SecretRootStore.requireCurrent(current, this.where);
      return root === undefined ? rest : { ...rest, incoming: root };
    });
  }

  async requestRotation(by: string): Promise<void> {
    const annotations = { [ROTATION_REQUESTED_BY]: by.slice(0, 253), [ROTATION_REQUESTED_AT]: new Date().toISOString() };
    try {
      await this.core.patchNamespacedSecret({ name: this.name, namespace: this.namespace, body: { metadata: { annotations } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
    } catch (err) {
      throw new CertificateAuthorityError(`${this.where}: cannot write the rotation request (${statusCode(err) === 403 ? "403: Weft's ServiceAccount needs patch on this Secret" : (err as Error).message.split("\n")[0]})`);
    }
  }

  async rotationRequest(): Promise<{ by: string; at: string } | undefined> {
    const annotations = (await this.read())?.metadata?.annotations;
    const at = annotations?.[ROTATION_REQUESTED_AT];
    return at ? { by: (annotations?.[ROTATION_REQUESTED_BY] ?? "").slice(0, 253), at: at.slice(0, 64) } : undefined;
  }

  /** Calls `listener` on every change of the Secret (and after each reconnect of the watch). */
  watch(listener: () => void): () => void {
    let stopped = false;
    let abort: AbortController | undefined;
    let retry: NodeJS.Timeout | undefined;
    const start = (): void => {
      if (stopped) return;
      new Watch(this.kubeConfig)
        .watch(`/api/v1/namespaces/${this.namespace}/secrets`, { fieldSelector: `metadata.name=${this.name}` }, () => listener(), (err: unknown) => {
          if (stopped) return;
          if (err) this.onWatchError?.(`${this.where}: watch ended (${String((err as Error).message ?? err).split("\n")[0]}); watching again in 1 s`);
          retry = setTimeout(start, 1000);
          retry.unref?.();
        })
        .then((controller) => {
          abort = controller;
          if (stopped) controller.abort();
          listener(); // anything that changed while not watching
        })
        .catch((err: unknown) => {
          this.onWatchError?.(`${this.where}: cannot watch (${String((err as Error).message ?? err).split("\n")[0]}); retrying in 1 s`);
          retry = setTimeout(start, 1000);
          retry.unref?.();
        });
    };
    start();
    return () => {
      stopped = true;
      clearTimeout(retry);
      abort?.abort();
    };
  }
}
