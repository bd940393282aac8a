// The ValidatingWebhookConfiguration that sends creates and updates of every Istio kind Weft
// reads to Weft's webhook, and the keeper that keeps it current (the caBundle follows Weft's
// trust bundle, e.g. across a root rotation). Only the leader writes it: server-side apply
// with field manager "weft", and only when what is stored differs from what it should be.
//
// Choices (README "Validating webhook"):
// - failurePolicy Ignore: while no Weft replica answers, applies of Istio resources go through
//   unvalidated rather than being blocked; Weft still refuses to use an invalid resource (it
//   keeps the last valid version) and reports it in the resource's status. Only Istio groups
//   are matched, so other applies never wait on Weft at all.
// - timeoutSeconds 5: an answer takes well under 10 ms; a hung replica costs an apply 5 s.
// - sideEffects None (dry-run applies are reviewed too), matchPolicy Equivalent (every served
//   version), admissionReviewVersions [v1].
import { KubernetesObjectApi, PatchStrategy, type KubeConfig, type V1MutatingWebhook, type V1MutatingWebhookConfiguration, type V1ValidatingWebhook, type V1ValidatingWebhookConfiguration } from "@kubernetes/client-node";
import type { Logger } from "../log/logger.js";
import type { LeaderElection } from "../runner/leader-election.js";
import { ISTIO_KINDS } from "../sources/kubernetes/istio-kinds.js";
import { WEBHOOK_PATH } from "./webhook-server.js";

export const DEFAULT_WEBHOOK_CONFIGURATION_NAME = "weft-validator";
export const WEBHOOK_NAME = "validation.weft.io";
export const FIELD_MANAGER = "weft";
export const WEBHOOK_TIMEOUT_SECONDS = 5;

/** Where the apiserver reaches the webhook: a URL (outside the cluster, tests) or a Service. */
export type WebhookTarget = { url: string } | { service: { namespace: string; name: string; port: number } };

export interface WebhookConfigurationSpec {
  name?: string;
  target: WebhookTarget;
  /** PEM bundle the apiserver verifies the serving certificate with (Weft's trust bundle). */
  caBundlePem: string;
}

export function desiredWebhookConfiguration(spec: WebhookConfigurationSpec): V1ValidatingWebhookConfiguration {
  const groups = [...new Set(ISTIO_KINDS.map((k) => k.group))].sort();
  const webhook: V1ValidatingWebhook = {
    name: WEBHOOK_NAME,
    clientConfig: webhookClientConfig(spec.target, WEBHOOK_PATH, spec.caBundlePem),
    rules: groups.map((group) => ({
      apiGroups: [group],
      apiVersions: ["*"],
      operations: ["CREATE", "UPDATE"],
      resources: ISTIO_KINDS.filter((k) => k.group === group).map((k) => k.plural).sort(),
      scope: "Namespaced",
    })),
    failurePolicy: "Ignore",
    matchPolicy: "Equivalent",
    sideEffects: "None",
    timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
    admissionReviewVersions: ["v1"],
  };
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    metadata: { name: spec.name ?? DEFAULT_WEBHOOK_CONFIGURATION_NAME, labels: { "app.kubernetes.io/part-of": "weft" } },
    webhooks: [webhook],
  };
}

/** Either kind of webhook configuration Weft keeps (validating: /validate, mutating: /inject). */
export type WebhookConfiguration = V1ValidatingWebhookConfiguration | V1MutatingWebhookConfiguration;

/** The webhook's clientConfig for `target` and `path`, with Weft's trust bundle as caBundle. */
export function webhookClientConfig(target: WebhookTarget, path: string, caBundlePem: string): V1ValidatingWebhook["clientConfig"] {
  return {
    ...("url" in target ? { url: target.url } : { service: { ...target.service, path } }),
    caBundle: Buffer.from(caBundlePem).toString("base64"),
  };
}

/** The fields Weft sets, for comparing what is stored with what should be (defaults ignored). */
function ownedFields(w: (V1ValidatingWebhook & Partial<Pick<V1MutatingWebhook, "reinvocationPolicy">>) | undefined): string {
  if (!w) return "";
  const cc = w.clientConfig ?? {};
  // The apiserver stores an absent selector as {} (matches everything): compare them as equal.
  const selector = (s: V1ValidatingWebhook["namespaceSelector"]) => [s?.matchLabels ?? {}, (s?.matchExpressions ?? []).map((e) => [e.key, e.operator, e.values ?? []])];
  return JSON.stringify([
    w.name, cc.url ?? null, cc.service ? [cc.service.namespace, cc.service.name, cc.service.port ?? 443, cc.service.path ?? null] : null, cc.caBundle ? Buffer.from(cc.caBundle as unknown as string, "base64").toString("base64") : null,
    (w.rules ?? []).map((r) => [r.apiGroups, r.apiVersions, r.operations, r.resources, r.scope ?? "*"]),
    w.failurePolicy, w.matchPolicy, w.sideEffects, w.timeoutSeconds, w.admissionReviewVersions,
    selector(w.namespaceSelector), selector(w.objectSelector), w.reinvocationPolicy ?? null,
  ]);
}

/** Whether `stored` has every webhook of `desired` with the fields Weft sets (other webhooks in it are left alone). */
export function configurationCurrent(stored: WebhookConfiguration | undefined, desired: WebhookConfiguration): boolean {
  if (!stored) return false;
  return (desired.webhooks ?? []).every((w) => ownedFields((stored.webhooks ?? []).find((s) => s.name === w.name)) === ownedFields(w));
}

export interface WebhookConfigurationKeeperOptions {
  kubeConfig: KubeConfig;
  /** What the configuration should be now (the trust bundle may change). */
  desired: () => WebhookConfiguration;
  leadership: Pick<LeaderElection, "isLeader" | "onChange">;
  logger: Logger;
  /** How often the stored configuration is compared with the desired one. Default 60 s. */
  intervalMs?: number;
}

export class WebhookConfigurationKeeper {
  /** Writes made (server-side applies), for tests and metrics. */
  writes = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private readonly unsubscribe: () => void;
  private readonly objects: KubernetesObjectApi;

  constructor(private readonly opts: WebhookConfigurationKeeperOptions) {
    this.objects = KubernetesObjectApi.makeApiClient(opts.kubeConfig);
    this.unsubscribe = opts.leadership.onChange((leader) => {
      if (leader) this.trigger();
    });
  }

  /** Checks now and then every intervalMs. Resolves after the first check. */
  async start(): Promise<void> {
    await this.trigger();
  }

  /** Compares and, if needed, writes soon (coalesced with a check in progress). */
  trigger(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.reconcile();
      } while (this.again && !this.closed);
    })().finally(() => {
      this.running = undefined;
      this.schedule();
    });
    return this.running;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (this.closed) return;
    this.timer = setTimeout(() => void this.trigger(), this.opts.intervalMs ?? 60_000);
    this.timer.unref();
  }

  private async reconcile(): Promise<void> {
    if (!this.opts.leadership.isLeader()) return;
    const desired = this.opts.desired();
    const name = desired.metadata!.name!;
    const kind = desired.kind!;
    try {
      let stored: WebhookConfiguration | undefined;
      try {
        stored = (await this.objects.read({ apiVersion: desired.apiVersion!, kind, metadata: { name } })) as WebhookConfiguration;
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw err;
      }
      if (configurationCurrent(stored, desired)) return;
      if (!this.opts.leadership.isLeader()) return;
      await this.objects.patch(desired, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
      this.writes++;
      this.opts.logger.info({ kind, name, created: !stored }, stored ? "webhook configuration updated (caBundle or settings changed)" : "webhook configuration created");
    } catch (err) {
      const e = err as { code?: number; message?: string };
      this.opts.logger.error({ kind, name, code: e.code, err: e.message?.split("\n")[0] }, `cannot read or write ${kind} ${name} (needs get/create/patch on ${kind.toLowerCase()}s); retrying`);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.unsubscribe();
    await this.running;
  }
}
