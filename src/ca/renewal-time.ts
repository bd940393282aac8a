// When a holder of a certificate should ask for a new one.
import { CertificateAuthorityError } from "./certificate-authority-error.js";

/** Renewal is due somewhere in this part of the lifetime, chosen at random to spread load. */
export const RENEWAL_WINDOW = { earliest: 0.5, latest: 0.8 } as const;
/** Never later than this fraction of the lifetime, whatever the random source returns. */
export const RENEWAL_DEADLINE_FRACTION = 0.9;

/**
 * When to renew: a jittered point between 50% and 80% of the lifetime (notBefore to notAfter),
 * never after notAfter minus 10% of the lifetime. `random` returns a number in [0, 1); values
 * outside are clamped into it.
 */
export function renewalTime(cert: { notBefore: Date; notAfter: Date }, random: () => number = Math.random): Date {
  const start = cert.notBefore.getTime();
  const end = cert.notAfter.getTime();
  if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) {
    throw new CertificateAuthorityError(
      `renewalTime: expected notAfter later than notBefore, found notBefore ${cert.notBefore.toString()} and notAfter ${cert.notAfter.toString()}`,
    );
  }
  const lifetime = end - start;
  const draw = random();
  const jitter = Number.isFinite(draw) ? Math.min(Math.max(draw, 0), 1) : 0;
  const fraction = RENEWAL_WINDOW.earliest + (RENEWAL_WINDOW.latest - RENEWAL_WINDOW.earliest) * jitter;
  return new Date(Math.min(start + lifetime * fraction, end - lifetime * (1 - RENEWAL_DEADLINE_FRACTION)));
}
