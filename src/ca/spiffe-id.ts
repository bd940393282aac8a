// SPIFFE IDs for Kubernetes workloads: spiffe://<trust domain>/ns/<namespace>/sa/<service account>.
import { CertificateAuthorityError } from "./certificate-authority-error.js";
import { checkDns1123Label, checkDns1123Subdomain } from "./dns-names.js";

/** SPIFFE trust domain names: lowercase letters, digits, '.', '-' and '_' (SPIFFE-ID spec §2.1). */
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;

/** Throws unless `value` is a valid SPIFFE trust domain name; `what` names the option. */
export function checkTrustDomain(value: unknown, what = "trust domain"): string {
  if (typeof value !== "string" || value.length === 0 || value.length > 255 || !TRUST_DOMAIN.test(value)) {
    throw new CertificateAuthorityError(
      `${what} ${typeof value === "string" ? JSON.stringify(value) : String(value)} is not a valid SPIFFE trust domain: ` +
        `expected 1 to 255 lowercase letters, digits, '.', '-' or '_' (for example "cluster.local")`,
    );
  }
  return value;
}

/** spiffe://td/ns/<namespace>/sa/<serviceAccount>, after checking each part. */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  checkTrustDomain(trustDomain);
  checkDns1123Label(namespace, "namespace");
  checkDns1123Subdomain(serviceAccount, "service account");
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
