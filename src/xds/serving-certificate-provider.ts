// The xDS server's TLS certificate as a grpc-js certificate provider (the public
// `experimental.CertificateProvider` interface): `set` hands a new certificate and key to every
// listening server at once, so a renewal or a root rotation needs no restart. Only the
// identity half is used (Weft's xDS server does not ask clients for certificates).
import type { experimental } from "@grpc/grpc-js";

type IdentityUpdate = experimental.IdentityCertificateUpdate;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

export class ServingCertificateProvider implements experimental.CertificateProvider {
  private current: IdentityUpdate | null = null;
  private readonly listeners = new Set<IdentityListener>();

  set(pair: { certChainPem: string; privateKeyPem: string }): void {
    this.current = { certificate: Buffer.from(pair.certChainPem), privateKey: Buffer.from(pair.privateKeyPem) };
    for (const listener of [...this.listeners]) listener(this.current);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.listeners.add(listener);
    // After the caller returns: grpc-js registers its server's watcher only after this call,
    // and a synchronous answer would reach no one (the server would drop every connection).
    queueMicrotask(() => {
      if (this.current && this.listeners.has(listener)) listener(this.current);
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.listeners.delete(listener);
  }

  /** No CA half: clients are not asked for certificates. */
  addCaCertificateListener(): void {}
  removeCaCertificateListener(): void {}
}
