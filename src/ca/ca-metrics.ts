// Prometheus metrics of the certificate authority. Several CAs may share one registry (tests
// do); each metric is registered once and shared.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { CertificateKind } from "./leaf-certificate.js";

function registeredOnce<T>(registry: Registry, name: string, isSameKind: (metric: unknown) => metric is T, create: () => T): T {
  const existing: unknown = registry.getSingleMetric(name);
  return isSameKind(existing) ? existing : create();
}

export class CaMetrics {
  readonly certificatesIssued: Counter<"kind">;
  readonly issuanceFailures: Counter<"kind">;
  readonly issuanceSeconds: Histogram<"kind">;
  readonly rootExpiry: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.certificatesIssued = registeredOnce(
      registry,
      "weft_ca_certificates_issued_total",
      (m): m is Counter<"kind"> => m instanceof Counter,
      () => new Counter({ name: "weft_ca_certificates_issued_total", help: "Certificates issued by the CA, by kind (workload, serving)", labelNames: ["kind"], registers }),
    );
    this.issuanceFailures = registeredOnce(
      registry,
      "weft_ca_issuance_failures_total",
      (m): m is Counter<"kind"> => m instanceof Counter,
      () => new Counter({ name: "weft_ca_issuance_failures_total", help: "Certificate requests refused or failed, by kind (workload, serving)", labelNames: ["kind"], registers }),
    );
    this.issuanceSeconds = registeredOnce(
      registry,
      "weft_ca_issuance_seconds",
      (m): m is Histogram<"kind"> => m instanceof Histogram,
      () =>
        new Histogram({
          name: "weft_ca_issuance_seconds",
          help: "Time to issue one certificate (key generation, signing, encoding), by kind",
          labelNames: ["kind"],
          // ECDSA issuance takes about a millisecond; RSA 4096 key generation can take seconds.
          buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
          registers,
        }),
    );
    this.rootExpiry = registeredOnce(
      registry,
      "weft_ca_root_expiry_timestamp_seconds",
      (m): m is Gauge => m instanceof Gauge,
      () => new Gauge({ name: "weft_ca_root_expiry_timestamp_seconds", help: "Unix time at which the root that new certificates chain to expires", registers }),
    );
  }

  recordIssued(kind: CertificateKind, seconds: number): void {
    this.certificatesIssued.inc({ kind });
    this.issuanceSeconds.observe({ kind }, seconds);
  }

  recordFailure(kind: CertificateKind): void {
    this.issuanceFailures.inc({ kind });
  }
}
