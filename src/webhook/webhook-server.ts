// The admission webhooks' HTTPS server (fastify): POST /validate takes an AdmissionReview and
// answers it (admission-review.ts); with injection settings, POST /inject answers pod creates
// with the sidecar's JSON patch (inject-review.ts) on the same server and certificate. TLS with a serving certificate from
// Weft's CA for the webhook's names (the Service's DNS names, or the URL's host), renewed at
// two thirds of its lifetime without a restart (setSecureContext). Bodies are bounded (an
// AdmissionReview carries the object and, on update, the old object: 2 x Kubernetes' ~1.5 MB
// object limit), and so are the time a request may take and the connections kept idle.
import type { Server as HttpsServer } from "node:https";
import Fastify, { type FastifyInstance } from "fastify";
import { Counter, Histogram, type Registry } from "prom-client";
import type { CertificateAuthority } from "../ca/certificate-authority.js";
import { ServingCertificate } from "../ca/serving-certificate.js";
import type { Logger } from "../log/logger.js";
import { BadAdmissionReview, reviewAdmission } from "./admission-review.js";
import { INJECT_PATH } from "./inject-configuration.js";
import { reviewInjection } from "./inject-review.js";
import type { InjectionSettings } from "./inject-sidecar.js";

export const WEBHOOK_PATH = "/validate";
export const DEFAULT_WEBHOOK_PORT = 15017; // Istio's webhook port
/** Largest request body accepted (bytes). */
export const MAX_ADMISSION_REVIEW_BYTES = 4 * 1024 * 1024;
export const DEFAULT_SERVING_TTL_MS = 30 * 24 * 3600 * 1000;

export interface WebhookServerOptions {
  ca: CertificateAuthority;
  /** Names the serving certificate covers (what the apiserver dials). */
  dnsNames: string[];
  ipAddresses: string[];
  address?: string;
  /** 0 picks a free port. */
  port?: number;
  logger: Logger;
  metrics?: Registry;
  clusterId?: string;
  /** Serving certificate lifetime; renewed at 2/3 of it. Default 30 days (capped by the CA). */
  servingTtlMs?: number;
  /** Serve POST /inject (sidecar injection) with these settings. */
  injection?: InjectionSettings;
}

export class WebhookServer {
  private app: FastifyInstance | undefined;
  private certificate: ServingCertificate | undefined;
  private readonly reviews?: Counter;
  private readonly latency?: Histogram;
  private readonly injections?: Counter;
  private closed = false;
  port = 0;

  private constructor(private readonly opts: WebhookServerOptions) {
    if (opts.metrics) {
      this.reviews = new Counter({ name: "weft_webhook_reviews_total", help: "admission reviews answered, by kind and outcome (allowed, denied, skipped, bad_request)", labelNames: ["kind", "outcome"], registers: [opts.metrics] });
      this.injections = new Counter({ name: "weft_sidecar_injections_total", help: "pod creates answered by the injector, by outcome (injected, skipped, refused, bad_request)", labelNames: ["outcome"], registers: [opts.metrics] });
      this.latency = new Histogram({ name: "weft_webhook_review_seconds", help: "time to answer one admission review (parsing excluded)", buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5], registers: [opts.metrics] });
    }
  }

  static async start(opts: WebhookServerOptions): Promise<WebhookServer> {
    const server = new WebhookServer(opts);
    await server.listen();
    return server;
  }

  private async listen(): Promise<void> {
    const certificate = new ServingCertificate({
      what: "admission webhook's serving certificate",
      ca: this.opts.ca,
      dnsNames: this.opts.dnsNames,
      ipAddresses: this.opts.ipAddresses,
      ttlMs: this.opts.servingTtlMs ?? DEFAULT_SERVING_TTL_MS,
      logger: this.opts.logger,
    });
    this.certificate = certificate;
    const first = await certificate.start();
    const app = Fastify({
      logger: false,
      https: { cert: first.certChainPem, key: first.privateKeyPem, minVersion: "TLSv1.2" },
      bodyLimit: MAX_ADMISSION_REVIEW_BYTES,
      // The apiserver gives up after the webhook's timeoutSeconds (at most 30 s).
      requestTimeout: 30_000,
      connectionTimeout: 30_000,
      keepAliveTimeout: 30_000,
    });
    app.post(WEBHOOK_PATH, async (req, reply) => {
      const started = process.hrtime.bigint();
      try {
        const decision = reviewAdmission(req.body, { clusterId: this.opts.clusterId ?? "" });
        this.reviews?.inc({ kind: decision.kind ?? "", outcome: decision.outcome });
        this.latency?.observe(Number(process.hrtime.bigint() - started) / 1e9);
        if (decision.outcome === "denied") this.opts.logger.info({ kind: decision.kind, message: decision.answer.response.status?.message }, "admission denied");
        return decision.answer;
      } catch (err) {
        if (!(err instanceof BadAdmissionReview)) throw err;
        this.reviews?.inc({ kind: "", outcome: "bad_request" });
        reply.code(400);
        return { error: err.message };
      }
    });
    const injection = this.opts.injection;
    if (injection) {
      app.post(INJECT_PATH, async (req, reply) => {
        try {
          const review = reviewInjection(req.body, injection);
          this.injections?.inc({ outcome: review.outcome });
          if (review.outcome === "refused") this.opts.logger.info({ message: review.reason }, "sidecar injection refused");
          else this.opts.logger.debug({ outcome: review.outcome, reason: review.reason }, "sidecar injection");
          return review.answer;
        } catch (err) {
          if (!(err instanceof BadAdmissionReview)) throw err;
          this.injections?.inc({ outcome: "bad_request" });
          reply.code(400);
          return { error: err.message };
        }
      });
    }
    app.get("/healthz", async () => ({ status: "ok" }));
    try {
      await app.listen({ host: this.opts.address ?? "0.0.0.0", port: this.opts.port ?? DEFAULT_WEBHOOK_PORT });
    } catch (err) {
      certificate.close();
      throw err;
    }
    const address = app.server.address();
    this.port = typeof address === "object" && address ? address.port : 0;
    this.app = app;
    certificate.serve = (pair) => (app.server as HttpsServer).setSecureContext({ cert: pair.certChainPem, key: pair.privateKeyPem, minVersion: "TLSv1.2" });
    this.opts.logger.info({ port: this.port, dnsNames: this.opts.dnsNames, ipAddresses: this.opts.ipAddresses, notAfter: first.notAfter.toISOString() }, "admission webhook listening (HTTPS)");
  }

  /** Issues a fresh serving certificate and serves it to new connections (after a root rotation too). */
  async renew(): Promise<void> {
    if (!this.app || this.closed) return;
    await this.certificate?.renew("the CA's signing root changed");
  }

  async close(): Promise<void> {
    this.closed = true;
    this.certificate?.close();
    await this.app?.close();
  }
}
