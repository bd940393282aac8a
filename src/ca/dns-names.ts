// Kubernetes-style name checks (DNS-1123), phrased for people.
import { CertificateAuthorityError } from "./certificate-authority-error.js";

const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isDns1123Label(value: string): boolean {
  return value.length <= 63 && DNS_1123_LABEL.test(value);
}

export function isDns1123Subdomain(value: string): boolean {
  return value.length <= 253 && value.split(".").every(isDns1123Label);
}

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : `${typeof value} ${String(value)}`;
}

/** Throws unless `value` is a DNS-1123 label (like a Kubernetes namespace name). */
export function checkDns1123Label(value: unknown, what: string): string {
  if (typeof value !== "string" || !isDns1123Label(value)) {
    throw new CertificateAuthorityError(
      `${what} ${describe(value)} is not a valid name: expected a DNS-1123 label (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit)`,
    );
  }
  return value;
}

/** Throws unless `value` is a DNS-1123 subdomain (like a Kubernetes service account name). */
export function checkDns1123Subdomain(value: unknown, what: string): string {
  if (typeof value !== "string" || !isDns1123Subdomain(value)) {
    throw new CertificateAuthorityError(
      `${what} ${describe(value)} is not a valid name: expected a DNS-1123 subdomain (at most 253 characters; dot-separated labels of lowercase letters, digits and '-', each starting and ending with a letter or digit)`,
    );
  }
  return value;
}

/** A host name for a serving certificate: a DNS-1123 subdomain, optionally starting with "*.". */
export function checkServingDnsName(value: unknown, what: string): string {
  const host = typeof value === "string" && value.startsWith("*.") ? value.slice(2) : value;
  if (typeof value !== "string" || typeof host !== "string" || !isDns1123Subdomain(host)) {
    throw new CertificateAuthorityError(
      `${what} ${describe(value)} is not a valid DNS name: expected lowercase dot-separated labels of letters, digits and '-' (a leading "*." is allowed)`,
    );
  }
  return value;
}
