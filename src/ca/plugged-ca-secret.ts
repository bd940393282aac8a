// Istio's plug-in CA Secret `cacerts` (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)
// in Weft's namespace: when present, Weft's CA signs with it (the plugged-in CA of plugged-ca.ts)
// instead of a self-signed root, as istiod does. The Secret is read once, at start.
import { chmod, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { CoreV1Api, type KubeConfig, type V1Secret } from "@kubernetes/client-node";
import { CertificateAuthorityError } from "./certificate-authority-error.js";
import { PLUGGED_CA_FILES } from "./plugged-ca.js";

export const PLUGGED_CA_SECRET = "cacerts";

const codeOf = (err: unknown) => (err as { code?: number }).code;
const unb64 = (data: Record<string, string> | undefined, key: string) => (data?.[key] !== undefined ? Buffer.from(data[key]!, "base64").toString("utf8") : undefined);

function apiError(what: string, err: unknown): CertificateAuthorityError {
  const code = codeOf(err);
  const hint = code === 403 ? " (Weft needs get on secrets in its namespace)" : "";
  return new CertificateAuthorityError(`${what}: ${code ? `HTTP ${code}: ` : ""}${(err as Error).message.split("\n")[0]!.slice(0, 200)}${hint}`);
}

/**
 * Istio's plug-in CA Secret `cacerts` in `namespace`, written into `dir` (0700, files 0600) in
 * the plugged-in CA layout for loadOrCreateCa's pluggedCaDir; undefined when there is none.
 */
export async function pluggedCaFromSecret(kubeConfig: KubeConfig, namespace: string, dir: string): Promise<string | undefined> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  let secret: V1Secret;
  try {
    secret = await core.readNamespacedSecret({ name: PLUGGED_CA_SECRET, namespace });
  } catch (err) {
    if (codeOf(err) === 404) return undefined;
    throw apiError(`reading Secret ${namespace}/${PLUGGED_CA_SECRET}`, err);
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  for (const file of Object.values(PLUGGED_CA_FILES)) {
    const text = unb64(secret.data, file);
    if (text === undefined) throw new CertificateAuthorityError(`Secret ${namespace}/${PLUGGED_CA_SECRET} lacks ${file}; Istio's plug-in CA layout has ${Object.values(PLUGGED_CA_FILES).join(", ")}`);
    await writeFile(path.join(dir, file), text, { mode: 0o600 });
    await chmod(path.join(dir, file), 0o600);
  }
  return dir;
}
