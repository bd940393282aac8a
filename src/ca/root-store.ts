// Where the built-in CA keeps its self-signed root between runs. The CA talks to this interface;
// file-root-store.ts keeps it in a directory.

/** A root certificate with its private key, both PEM. */
export interface StoredRoot {
  certificatePem: string;
  privateKeyPem: string;
}

export interface StoredRoots {
  /** The root that signs new certificates. */
  signing: StoredRoot;
  /** PEM of roots still trusted while a rotation runs (their keys are gone); undefined when none. */
  retiringCertificatesPem?: string;
  /**
   * The next root, already trusted but not yet signing (the first phase of a rotation, so every
   * proxy trusts it before any certificate chains to it); undefined when none.
   */
  incoming?: StoredRoot;
}

export interface RootStore {
  /** Names used in errors for each piece (for a directory store: file paths). */
  readonly names: { signingCertificate: string; signingKey: string; retiringCertificates: string; incomingRoot: string };
  /** The stored roots, or undefined when nothing has been stored yet. */
  load(): Promise<StoredRoots | undefined>;
  /**
   * Stores the FIRST root, only if none is stored (a store shared by replicas: of replicas
   * starting together exactly one creates it; "exists" means another did and load() gives its
   * root). Stores without it get saveSigningRoot.
   */
  createSigningRoot?(root: StoredRoot): Promise<"created" | "exists">;
  /** Replaces the signing root (certificate and key together). */
  saveSigningRoot(root: StoredRoot): Promise<void>;
  /** Sets the still-trusted old roots, or removes them (undefined) when a rotation finishes. */
  saveRetiringCertificates(pem: string | undefined): Promise<void>;
  /** Sets the next root (trusted, not signing), or removes it (undefined). */
  saveIncomingRoot(root: StoredRoot | undefined): Promise<void>;
  /**
   * Shared stores: a replica that does not lead asks the leader for a rotation by writing the
   * request into the store (`by`: the asking replica's name). The leader's next write of the
   * store consumes it. Only the request is written: the roots stay the leader's.
   */
  requestRotation?(by: string): Promise<void>;
  /** The pending rotation request, if any (who asked and when, ISO time). */
  rotationRequest?(): Promise<{ by: string; at: string } | undefined>;
  /**
   * Stores shared by several replicas (a Kubernetes Secret) call `listener` when another writer
   * may have changed the roots; the CA then reloads. Returns a function that stops watching.
   */
  watch?(listener: () => void): () => void;
}
