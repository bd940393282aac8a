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
}

export interface RootStore {
  /** Names used in errors for each piece (for a directory store: file paths). */
  readonly names: { signingCertificate: string; signingKey: string; retiringCertificates: string };
  /** The stored roots, or undefined when nothing has been stored yet. */
  load(): Promise<StoredRoots | undefined>;
  /** Replaces the signing root (certificate and key together). */
  saveSigningRoot(root: StoredRoot): Promise<void>;
  /** Sets the still-trusted old roots, or removes them (undefined) when a rotation finishes. */
  saveRetiringCertificates(pem: string | undefined): Promise<void>;
}
