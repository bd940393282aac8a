// A CA plugged in from files, in Istio's layout (the "cacerts" secret):
//   ca-cert.pem     the certificate that signs workload certificates (an intermediate, usually)
//   ca-key.pem      its private key
//   root-cert.pem   the root(s) workloads trust: this file is the trust bundle
//   cert-chain.pem  the chain from ca-cert.pem up to the root
// Issued chains are the leaf, ca-cert.pem, then the certificates of cert-chain.pem on the path
// to the root, in path order, each once; roots never go in a chain (a peer must already trust
// them), so a cert-chain.pem that repeats ca-cert.pem or ends with the root works too.
import { X509Certificate as NodeX509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { privateKeyFileExposure } from "../state/atomic-file.js";
import path from "node:path";
import { CertificateAuthorityError } from "./certificate-authority-error.js";
import { createCertificateSigner, type CertificateSigner } from "./certificate-signer.js";
import { importSigningKey } from "./key-algorithm.js";
import { splitPemCertificates } from "./pem-blocks.js";

export const PLUGGED_CA_FILES = {
  caCertificate: "ca-cert.pem",
  caKey: "ca-key.pem",
  rootCertificates: "root-cert.pem",
  certificateChain: "cert-chain.pem",
} as const;

/** Longest path from ca-cert.pem to a root that is followed. */
const MAX_CHAIN_LENGTH = 8;

export interface PluggedCa {
  signer: CertificateSigner;
  /** Every certificate of root-cert.pem, in file order. */
  rootCertificatePems: string[];
  /** The root that ca-cert.pem chains to. */
  anchorRootPem: string;
}

async function readRequiredFile(file: string, expected: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : `cannot read it (${(err as Error).message})`;
    throw new CertificateAuthorityError(`plugged-in CA file ${file}: ${reason}; expected ${expected}`);
  }
}

interface ParsedCertificate {
  pem: string;
  node: NodeX509Certificate;
}

function parseCertificates(pemText: string, file: string): ParsedCertificate[] {
  return splitPemCertificates(pemText, file).map((pem, index) => {
    try {
      return { pem, node: new NodeX509Certificate(pem) };
    } catch (err) {
      throw new CertificateAuthorityError(`${file}: certificate ${index + 1} cannot be parsed (${(err as Error).message})`);
    }
  });
}

/** Whether `parent` signed `child`: names and key identifiers line up and the signature verifies. */
function signedBy(child: NodeX509Certificate, parent: NodeX509Certificate): boolean {
  return child.checkIssued(parent) && child.verify(parent.publicKey);
}

function subjectOf(certificate: NodeX509Certificate): string {
  // Node leaves subject undefined (despite its type) when the subject is empty.
  return (certificate.subject ?? "").replace(/\n/g, ", ");
}

function checkStillValid(certificate: ParsedCertificate, file: string, now: Date): void {
  if (now.getTime() >= certificate.node.validToDate.getTime()) {
    throw new CertificateAuthorityError(
      `${file}: the certificate "${subjectOf(certificate.node)}" expired at ${certificate.node.validToDate.toISOString()}; replace the plugged-in CA files`,
    );
  }
}

/**
 * Reads and checks a plugged-in CA directory: ca-key.pem must match ca-cert.pem, ca-cert.pem
 * must be a CA certificate, and it must chain (through cert-chain.pem) to a root in
 * root-cert.pem, with nothing on the path expired. Errors name the file at fault.
 */
export async function loadPluggedCa(dir: string, now: Date, onWarning?: (message: string) => void): Promise<PluggedCa> {
  const file = (name: string): string => path.join(dir, name);
  const caCertificateFile = file(PLUGGED_CA_FILES.caCertificate);
  const caKeyFile = file(PLUGGED_CA_FILES.caKey);
  const rootFile = file(PLUGGED_CA_FILES.rootCertificates);
  const chainFile = file(PLUGGED_CA_FILES.certificateChain);

  const caCertificates = parseCertificates(await readRequiredFile(caCertificateFile, "the PEM certificate of the CA that signs workload certificates"), caCertificateFile);
  const caKeyPem = await readRequiredFile(caKeyFile, `the PEM private key of ${PLUGGED_CA_FILES.caCertificate}`);
  // Warned, not refused: a plugged-in CA is often a mounted Kubernetes Secret (mode 0644 by default).
  const exposure = await privateKeyFileExposure(caKeyFile);
  if (exposure) onWarning?.(`${caKeyFile}: ${exposure}; a CA private key should be readable by its owner only ("chmod 600 ${caKeyFile}", or defaultMode: 0400 on the Secret volume)`);
  const roots = parseCertificates(await readRequiredFile(rootFile, "the PEM root certificate(s) that workloads trust"), rootFile);
  const chain = parseCertificates(
    await readRequiredFile(chainFile, `the PEM certificates from ${PLUGGED_CA_FILES.caCertificate} up to the root in ${PLUGGED_CA_FILES.rootCertificates}`),
    chainFile,
  );

  if (caCertificates.length !== 1) {
    throw new CertificateAuthorityError(
      `${caCertificateFile}: holds ${caCertificates.length} certificates; expected exactly one, the signing CA's (put the certificates above it in ${PLUGGED_CA_FILES.certificateChain})`,
    );
  }
  const caCertificate = caCertificates[0]!;
  for (const root of roots) {
    if (!signedBy(root.node, root.node)) {
      throw new CertificateAuthorityError(`${rootFile}: the certificate "${subjectOf(root.node)}" is not self-signed; expected only root certificates in this file`);
    }
  }

  // Walk up from ca-cert.pem to a root, taking issuers from cert-chain.pem.
  const isRoot = (candidate: ParsedCertificate): boolean => roots.some((root) => root.node.fingerprint256 === candidate.node.fingerprint256);
  const pathToRoot: ParsedCertificate[] = [];
  let current = caCertificate;
  let anchor: ParsedCertificate | undefined;
  if (isRoot(caCertificate)) {
    anchor = caCertificate;
  } else {
    pathToRoot.push(caCertificate);
    const candidates = chain.filter((c) => !isRoot(c) && c.node.fingerprint256 !== caCertificate.node.fingerprint256);
    while (!anchor) {
      anchor = roots.find((root) => signedBy(current.node, root.node));
      if (anchor) break;
      const issuer = candidates.find((c) => !pathToRoot.includes(c) && signedBy(current.node, c.node));
      if (!issuer || pathToRoot.length >= MAX_CHAIN_LENGTH) {
        throw new CertificateAuthorityError(
          `${caCertificateFile} does not chain to ${rootFile}: no certificate in ${PLUGGED_CA_FILES.certificateChain} or ${PLUGGED_CA_FILES.rootCertificates} ` +
            `signed "${subjectOf(current.node)}" (its issuer is "${(current.node.issuer ?? "").replace(/\n/g, ", ")}"); ` +
            `put that issuer in ${PLUGGED_CA_FILES.certificateChain}, or the root it leads to in ${PLUGGED_CA_FILES.rootCertificates}`,
        );
      }
      pathToRoot.push(issuer);
      current = issuer;
    }
  }
  for (const [index, certificate] of pathToRoot.entries()) checkStillValid(certificate, index === 0 ? caCertificateFile : chainFile, now);
  checkStillValid(anchor, rootFile, now);

  const chainValidUntil = [...pathToRoot, anchor].map((c) => c.node.validToDate).reduce((a, b) => (a < b ? a : b));
  const signer = await createCertificateSigner({
    certificatePem: caCertificate.pem,
    certificateFile: caCertificateFile,
    key: importSigningKey(caKeyPem, caKeyFile),
    keyFile: caKeyFile,
    chainAfterLeaf: pathToRoot.map((c) => c.pem),
    chainValidUntil,
    now,
  });
  return { signer, rootCertificatePems: roots.map((r) => r.pem), anchorRootPem: anchor.pem };
}
