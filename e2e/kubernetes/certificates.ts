// The test cluster's key material, made with the openssl command line (EC P-256, short lived):
// a CA, the apiserver's serving certificate for 127.0.0.1 / localhost / kubernetes.default.svc,
// and the service-account token signing key (ES256).
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { mustRun } from "../../src/capture/pod-network.js";

export interface ClusterCertificates {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  /** Signs service-account tokens (PKCS#8 private key). */
  serviceAccountKey: string;
  /** Its public key: the apiserver verifies tokens with it. */
  serviceAccountPublicKey: string;
}

const DAYS = "2";

/** Writes the files into `dir` (which must exist) and returns their paths. */
export async function createClusterCertificates(dir: string): Promise<ClusterCertificates> {
  const file = (name: string) => path.join(dir, name);
  const out: ClusterCertificates = {
    caCert: file("ca.crt"),
    caKey: file("ca.key"),
    servingCert: file("apiserver.crt"),
    servingKey: file("apiserver.key"),
    serviceAccountKey: file("service-account.key"),
    serviceAccountPublicKey: file("service-account.pub"),
  };
  const ecKey = (target: string) => ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", target];
  await Promise.all([
    mustRun(ecKey(out.caKey), "test cluster: CA key"),
    mustRun(ecKey(out.servingKey), "test cluster: serving key"),
    mustRun(ecKey(out.serviceAccountKey), "test cluster: service-account signing key"),
  ]);
  await mustRun(["openssl", "pkey", "-in", out.serviceAccountKey, "-pubout", "-out", out.serviceAccountPublicKey],
    "test cluster: service-account public key");
  await mustRun(["openssl", "req", "-x509", "-new", "-key", out.caKey, "-sha256", "-days", DAYS, "-subj", "/CN=weft-test-cluster-ca",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", out.caCert],
  "test cluster: CA certificate");
  const csr = file("apiserver.csr");
  const ext = file("apiserver.ext");
  await mustRun(["openssl", "req", "-new", "-key", out.servingKey, "-subj", "/CN=kube-apiserver", "-out", csr], "test cluster: serving CSR");
  await writeFile(ext, [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth",
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc," +
      "DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1",
    "",
  ].join("\n"));
  await mustRun(["openssl", "x509", "-req", "-in", csr, "-CA", out.caCert, "-CAkey", out.caKey, "-CAcreateserial", "-sha256",
    "-days", DAYS, "-extfile", ext, "-out", out.servingCert], "test cluster: serving certificate");
  return out;
}
