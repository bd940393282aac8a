// The root kept in a directory (mode 0700):
//   root-cert.pem           the signing root's certificate
//   root-key.pem            its PKCS#8 private key (mode 0600)
//   previous-root-cert.pem  roots still trusted during a root rotation (absent otherwise)
//   next-root-cert.pem      the next root, trusted but not yet signing (first phase of a rotation)
//   next-root-key.pem       its key (mode 0600)
// Each file is written to a temporary name, flushed and renamed into place (then the directory
// is flushed). A root key with group/other permission bits refuses to load. Replacing the root writes
// root-key.pem.new and root-cert.pem.new first, then renames the key, then the certificate; a
// crash between the two renames is completed on the next load, and a crash before them leaves
// the old root in force. One process at a time should own the directory.
import { chmod, mkdir, readFile, rename, rm, stat } from "node:fs/promises";
import { privateKeyFileExposure, writeFileAtomically } from "../state/atomic-file.js";
import path from "node:path";
import { CertificateAuthorityError } from "./certificate-authority-error.js";
import type { RootStore, StoredRoot, StoredRoots } from "./root-store.js";

export const ROOT_CERTIFICATE_FILE = "root-cert.pem";
export const ROOT_KEY_FILE = "root-key.pem";
export const PREVIOUS_ROOT_CERTIFICATES_FILE = "previous-root-cert.pem";
export const NEXT_ROOT_CERTIFICATE_FILE = "next-root-cert.pem";
export const NEXT_ROOT_KEY_FILE = "next-root-key.pem";
const PENDING_SUFFIX = ".new";

async function readIfPresent(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CertificateAuthorityError(`${file}: cannot read (${(err as Error).message})`);
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw new CertificateAuthorityError(`${file}: cannot check (${(err as Error).message})`);
  }
}

/** Writes (flushed, exact mode) and renames into place, or throws naming the file; nothing half-written is left. */
async function writeFileWithMode(file: string, contents: string, mode: number): Promise<void> {
  try {
    await writeFileAtomically(file, contents, mode);
  } catch (err) {
    throw new CertificateAuthorityError(`${file}: cannot write (${(err as Error).message})`);
  }
}

export class FileRootStore implements RootStore {
  readonly names: RootStore["names"];
  private readonly certificateFile: string;
  private readonly keyFile: string;
  private readonly previousFile: string;
  private readonly nextCertificateFile: string;
  private readonly nextKeyFile: string;

  constructor(readonly dir: string) {
    this.certificateFile = path.join(dir, ROOT_CERTIFICATE_FILE);
    this.keyFile = path.join(dir, ROOT_KEY_FILE);
    this.previousFile = path.join(dir, PREVIOUS_ROOT_CERTIFICATES_FILE);
    this.nextCertificateFile = path.join(dir, NEXT_ROOT_CERTIFICATE_FILE);
    this.nextKeyFile = path.join(dir, NEXT_ROOT_KEY_FILE);
    this.names = { signingCertificate: this.certificateFile, signingKey: this.keyFile, retiringCertificates: this.previousFile, incomingRoot: this.nextCertificateFile };
  }

  /** Creates the directory with mode 0700 if it does not exist. */
  private async ensureDir(): Promise<void> {
    try {
      const created = await mkdir(this.dir, { recursive: true, mode: 0o700 });
      if (created !== undefined) await chmod(this.dir, 0o700);
    } catch (err) {
      throw new CertificateAuthorityError(`CA directory ${this.dir}: cannot create it (${(err as Error).message})`);
    }
  }

  /** Completes or abandons a root replacement that a crash interrupted. */
  private async recoverInterruptedSave(): Promise<void> {
    const pendingKey = this.keyFile + PENDING_SUFFIX;
    const pendingCertificate = this.certificateFile + PENDING_SUFFIX;
    if (await exists(pendingKey)) {
      // Neither file was renamed: the old root is still whole.
      await rm(pendingKey, { force: true });
      await rm(pendingCertificate, { force: true });
    } else if (await exists(pendingCertificate)) {
      // The key was renamed into place, the certificate was not.
      await rename(pendingCertificate, this.certificateFile);
    }
  }

  async load(): Promise<StoredRoots | undefined> {
    await this.ensureDir();
    await this.recoverInterruptedSave();
    const certificatePem = await readIfPresent(this.certificateFile);
    const privateKeyPem = await readIfPresent(this.keyFile);
    if (certificatePem === undefined && privateKeyPem === undefined) return undefined;
    if (certificatePem === undefined || privateKeyPem === undefined) {
      const [present, missing] = certificatePem === undefined ? [this.keyFile, this.certificateFile] : [this.certificateFile, this.keyFile];
      throw new CertificateAuthorityError(
        `${missing} is missing but ${present} exists: the root needs both its certificate and its key. ` +
          `Restore ${path.basename(missing)}, or remove ${path.basename(present)} to create a new root (every workload will then need the new trust bundle)`,
      );
    }
    // Weft creates the key 0600; looser bits mean someone changed them and others may have read it.
    const exposure = await privateKeyFileExposure(this.keyFile);
    if (exposure) {
      throw new CertificateAuthorityError(
        `${this.keyFile}: ${exposure}; the CA's private key must be readable by its owner only. Run "chmod 600 ${this.keyFile}" ` +
          `(and, if others may have read it, remove ${ROOT_KEY_FILE} and ${ROOT_CERTIFICATE_FILE} to create a new root)`,
      );
    }
    const retiringCertificatesPem = await readIfPresent(this.previousFile);
    // The next root's key is written before its certificate: a certificate without its key is
    // a crash in between, and the phase is simply not started.
    const nextCertificatePem = await readIfPresent(this.nextCertificateFile);
    const nextKeyPem = nextCertificatePem !== undefined ? await readIfPresent(this.nextKeyFile) : undefined;
    return {
      signing: { certificatePem, privateKeyPem },
      ...(retiringCertificatesPem !== undefined ? { retiringCertificatesPem } : {}),
      ...(nextCertificatePem !== undefined && nextKeyPem !== undefined ? { incoming: { certificatePem: nextCertificatePem, privateKeyPem: nextKeyPem } } : {}),
    };
  }

  async saveSigningRoot(root: StoredRoot): Promise<void> {
    await this.ensureDir();
    const pendingKey = this.keyFile + PENDING_SUFFIX;
    const pendingCertificate = this.certificateFile + PENDING_SUFFIX;
    // Key first: a lone root-cert.pem.new then always means the key was already renamed.
    await writeFileWithMode(pendingKey, root.privateKeyPem, 0o600);
    await writeFileWithMode(pendingCertificate, root.certificatePem, 0o644);
    await rename(pendingKey, this.keyFile);
    await rename(pendingCertificate, this.certificateFile);
  }

  async saveRetiringCertificates(pem: string | undefined): Promise<void> {
    await this.ensureDir();
    if (pem === undefined) {
      await rm(this.previousFile, { force: true });
      return;
    }
    await writeFileWithMode(this.previousFile, pem, 0o644);
  }

  async saveIncomingRoot(root: StoredRoot | undefined): Promise<void> {
    await this.ensureDir();
    if (root === undefined) {
      await rm(this.nextCertificateFile, { force: true });
      await rm(this.nextKeyFile, { force: true });
      return;
    }
    await writeFileWithMode(this.nextKeyFile, root.privateKeyPem, 0o600);
    await writeFileWithMode(this.nextCertificateFile, root.certificatePem, 0o644);
  }
}
