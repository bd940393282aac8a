// A serving certificate of Weft's own servers (the xDS server, the admission webhook): issued by
// Weft's CA at start, renewed at two thirds of its lifetime and whenever the CA's signing root
// changes (a root rotation's signing phase), and handed to the running server through `serve`
// (new connections get it at once, open ones carry on). What proxies need to keep trusting the
// xDS one across a rotation: README "Root rotation".
import type { CertificateAuthority, IssuedCertificate } from "./certificate-authority.js";
import type { Logger } from "../log/logger.js";

export interface ServingCertificateOptions {
  /** What it serves, in log messages: "xDS serving certificate". */
  what: string;
  ca: Pick<CertificateAuthority, "issueServingCertificate">;
  dnsNames: string[];
  ipAddresses: string[];
  ttlMs: number;
  logger: Logger;
  /** Serves a new certificate (set once the xDS server exists). */
  serve?: (pair: { certChainPem: string; privateKeyPem: string }) => void;
  /** Retry delay after a failed renewal; default 60 s. */
  retryMs?: number;
}

/** Longest single setTimeout (~24.8 days); longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ServingCertificate {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private issued: IssuedCertificate | undefined;
  serve: ((pair: { certChainPem: string; privateKeyPem: string }) => void) | undefined;

  constructor(private readonly opts: ServingCertificateOptions) {
    this.serve = opts.serve;
  }

  /** Issues the first certificate (what the xDS server starts with). */
  async start(): Promise<IssuedCertificate> {
    const first = await this.issue();
    this.schedule();
    return first;
  }

  /** Serial and expiry of the certificate served now (tests, logs). */
  get current(): { serial: string; notAfter: Date } | undefined {
    return this.issued && { serial: this.issued.serial, notAfter: this.issued.notAfter };
  }

  /** Issues a new certificate now and serves it (after a change of the signing root). */
  async renew(reason: string): Promise<void> {
    if (this.closed) return;
    try {
      const next = await this.issue();
      this.serve?.({ certChainPem: next.certChainPem, privateKeyPem: next.privateKeyPem });
      this.opts.logger.info({ reason, serial: next.serial, notAfter: next.notAfter.toISOString() }, `${this.opts.what} renewed`);
      this.schedule();
    } catch (err) {
      this.opts.logger.error({ reason, err: (err as Error).message }, `cannot renew the ${this.opts.what}; the current one stays, retrying`);
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.renew(reason), this.opts.retryMs ?? 60_000);
      this.timer.unref();
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private async issue(): Promise<IssuedCertificate> {
    this.issued = await this.opts.ca.issueServingCertificate({ dnsNames: this.opts.dnsNames, ipAddresses: this.opts.ipAddresses, ttlMs: this.opts.ttlMs });
    return this.issued;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    const issued = this.issued;
    if (!issued || this.closed) return;
    const due = issued.notBefore.getTime() + ((issued.notAfter.getTime() - issued.notBefore.getTime()) * 2) / 3;
    const wait = (): void => {
      const left = due - Date.now();
      if (left <= 0) return void this.renew("two thirds of its lifetime passed");
      this.timer = setTimeout(wait, Math.min(left, MAX_TIMER_MS));
      this.timer.unref();
    };
    wait();
  }
}
