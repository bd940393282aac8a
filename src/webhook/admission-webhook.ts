// The admission webhook as one piece: the HTTPS server (webhook-server.ts) and, on the leader,
// the keeper of its ValidatingWebhookConfiguration (webhook-configuration.ts). A local check
// every few seconds follows the CA: when its signing root changes (root rotation) the serving
// certificate is re-issued and the configuration's caBundle is rewritten.
import { isIP } from "node:net";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Registry } from "prom-client";
import type { CertificateAuthority } from "../ca/certificate-authority.js";
import type { Logger } from "../log/logger.js";
import type { LeaderElection } from "../runner/leader-election.js";
import { desiredWebhookConfiguration, WebhookConfigurationKeeper, type WebhookTarget } from "./webhook-configuration.js";
import { WebhookServer } from "./webhook-server.js";
import { desiredInjectionConfiguration } from "./inject-configuration.js";
import type { InjectionSettings } from "./inject-sidecar.js";

export interface AdmissionWebhookOptions {
  ca: CertificateAuthority;
  kubeConfig: KubeConfig;
  leadership: Pick<LeaderElection, "isLeader" | "onChange">;
  logger: Logger;
  target: WebhookTarget;
  address?: string;
  port?: number;
  clusterDomain?: string;
  clusterId?: string;
  configurationName?: string;
  metrics?: Registry;
  /** How often the CA's root is compared (serving certificate + caBundle follow it). Default 5 s. */
  checkIntervalMs?: number;
  /** How often the stored configuration is compared with the desired one. Default 60 s. */
  reconcileIntervalMs?: number;
  /** Sidecar injection on the same server (POST /inject) and its MutatingWebhookConfiguration. */
  injection?: { settings: InjectionSettings; configurationName?: string };
}

export interface AdmissionWebhook {
  server: WebhookServer;
  keeper: WebhookConfigurationKeeper;
  /** Keeps the MutatingWebhookConfiguration, with injection. */
  injectionKeeper?: WebhookConfigurationKeeper;
  close(): Promise<void>;
}

/** The names the serving certificate must cover for `target`. */
export function servingNames(target: WebhookTarget, clusterDomain = "cluster.local"): { dnsNames: string[]; ipAddresses: string[] } {
  if ("url" in target) {
    const host = new URL(target.url).hostname.replace(/^\[|\]$/g, "");
    return isIP(host) ? { dnsNames: [], ipAddresses: [host] } : { dnsNames: [host], ipAddresses: [] };
  }
  const { name, namespace } = target.service;
  return { dnsNames: [`${name}.${namespace}.svc`, `${name}.${namespace}.svc.${clusterDomain}`], ipAddresses: [] };
}

export async function startAdmissionWebhook(opts: AdmissionWebhookOptions): Promise<AdmissionWebhook> {
  const names = servingNames(opts.target, opts.clusterDomain);
  const server = await WebhookServer.start({ ca: opts.ca, ...names, address: opts.address, port: opts.port, logger: opts.logger, metrics: opts.metrics, clusterId: opts.clusterId, ...(opts.injection ? { injection: opts.injection.settings } : {}) });
  const keeper = new WebhookConfigurationKeeper({
    kubeConfig: opts.kubeConfig,
    leadership: opts.leadership,
    logger: opts.logger,
    intervalMs: opts.reconcileIntervalMs,
    desired: () => desiredWebhookConfiguration({ name: opts.configurationName, target: opts.target, caBundlePem: opts.ca.trustBundlePem() }),
  });
  const injection = opts.injection;
  const injectionKeeper = injection
    ? new WebhookConfigurationKeeper({
        kubeConfig: opts.kubeConfig,
        leadership: opts.leadership,
        logger: opts.logger,
        intervalMs: opts.reconcileIntervalMs,
        desired: () => desiredInjectionConfiguration({ name: injection.configurationName, target: opts.target, caBundlePem: opts.ca.trustBundlePem(), revision: injection.settings.revision }),
      })
    : undefined;
  const keepers = [keeper, ...(injectionKeeper ? [injectionKeeper] : [])];
  const triggerAll = () => Promise.all(keepers.map((k) => k.trigger()));
  let signingRoot = opts.ca.roots()[0]?.serial;
  let bundle = opts.ca.trustBundlePem();
  const check = setInterval(() => {
    const root = opts.ca.roots()[0]?.serial;
    const nextBundle = opts.ca.trustBundlePem();
    // The bundle first (it trusts old and new during a rotation), then the new certificate.
    if (nextBundle !== bundle) {
      bundle = nextBundle;
      void triggerAll();
    }
    if (root !== signingRoot) {
      signingRoot = root;
      void triggerAll().then(() => server.renew());
    }
  }, opts.checkIntervalMs ?? 5000);
  check.unref();
  try {
    await Promise.all(keepers.map((k) => k.start()));
  } catch (err) {
    clearInterval(check);
    await server.close();
    throw err;
  }
  return {
    server,
    keeper,
    ...(injectionKeeper ? { injectionKeeper } : {}),
    async close() {
      clearInterval(check);
      await Promise.all(keepers.map((k) => k.close()));
      await server.close();
    },
  };
}
