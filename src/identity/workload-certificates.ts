// Current certificate per workload identity (namespace + service account), issued by the CA
// on first use and re-issued well before expiry (50-80% of the lifetime, jittered); every
// renewal is reported so the proxies with that identity get the new one over SDS.
import type { CertificateAuthority, IssuedCertificate } from "../ca/certificate-authority.js";
import { renewalTime } from "../ca/certificate-authority.js";
import type { Logger } from "../log/logger.js";

export interface WorkloadIdentity {
  namespace: string;
  serviceAccount: string;
}

export function identityKey(id: WorkloadIdentity): string {
  return `${id.namespace}/${id.serviceAccount}`;
}

export class WorkloadCertificates {
  private readonly current = new Map<string, IssuedCertificate>();
  private readonly pending = new Map<string, Promise<IssuedCertificate>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly ca: CertificateAuthority,
    private readonly onRenewed: (key: string, cert: IssuedCertificate) => void,
    private readonly logger: Logger,
    private readonly ttlMs?: number,
  ) {}

  get(id: WorkloadIdentity): IssuedCertificate | undefined {
    return this.current.get(identityKey(id));
  }

  /** Every identity's current certificate (for status and metrics). */
  all(): { key: string; cert: IssuedCertificate }[] {
    return [...this.current.entries()].map(([key, cert]) => ({ key, cert }));
  }

  /** The identity's certificate, issuing it if there is none yet (concurrent callers share one issuance). */
  ensure(id: WorkloadIdentity): Promise<IssuedCertificate> {
    const key = identityKey(id);
    const have = this.current.get(key);
    if (have) return Promise.resolve(have);
    return this.issue(id);
  }

  /** Re-issues every identity's certificate now (e.g. after a root rotation began). */
  async reissueAll(): Promise<void> {
    await Promise.all([...this.current.keys()].map((key) => {
      const [namespace, serviceAccount] = key.split("/") as [string, string];
      return this.issue({ namespace, serviceAccount });
    }));
  }

  private issue(id: WorkloadIdentity): Promise<IssuedCertificate> {
    const key = identityKey(id);
    const inflight = this.pending.get(key);
    if (inflight) return inflight;
    const p = this.ca
      .issueWorkloadCertificate({ ...id, ...(this.ttlMs ? { ttlMs: this.ttlMs } : {}) })
      .then((cert) => {
        this.pending.delete(key);
        if (this.closed) return cert;
        this.current.set(key, cert);
        this.schedule(id, cert);
        this.logger.info({ identity: cert.identity, serial: cert.serial, notAfter: cert.notAfter.toISOString() }, "workload certificate issued");
        this.onRenewed(key, cert);
        return cert;
      })
      .catch((err: unknown) => {
        this.pending.delete(key);
        this.logger.error({ identity: key, err: (err as Error).message }, "certificate issuance failed; retrying in 5 s");
        if (!this.closed) this.timers.set(key, setTimeout(() => void this.issue(id), 5000).unref());
        throw err;
      });
    this.pending.set(key, p);
    return p;
  }

  private schedule(id: WorkloadIdentity, cert: IssuedCertificate): void {
    const key = identityKey(id);
    clearTimeout(this.timers.get(key));
    // The CA back-dates notBefore for clock skew; measure the lifetime from now, or a short
    // TTL would look mostly spent and renew at once (measured: an issuance storm, 2000+ certs
    // in 5 s with 10 s certificates). Never renew sooner than 1 s.
    const delay = Math.max(1000, renewalTime({ notBefore: new Date(), notAfter: cert.notAfter }).getTime() - Date.now());
    // setTimeout fires at once for delays over 2^31-1 ms (~24.8 days): wait in steps.
    const MAX_TIMER_MS = 2 ** 31 - 1;
    const due = Date.now() + delay;
    const arm = (): void => {
      const left = due - Date.now();
      this.timers.set(key, setTimeout(() => (left > MAX_TIMER_MS ? arm() : void this.issue(id).catch(() => undefined)), Math.min(left, MAX_TIMER_MS)).unref());
    };
    arm();
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
