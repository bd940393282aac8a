// The MutatingWebhookConfiguration that sends pod creates to Weft's injector (POST /inject on
// the same HTTPS server as /validate), kept current by the leader like the validating one
// (WebhookConfigurationKeeper). Istio's selection rules, as four webhooks on one path:
//
//   namespace.sidecar-injector.weft.io      namespace istio-injection=enabled
//   rev.namespace.sidecar-injector.weft.io  namespace istio.io/rev=<revision>, no istio-injection label
//   object.sidecar-injector.weft.io         pod label sidecar.istio.io/inject=true, namespace unlabelled
//   rev.object.sidecar-injector.weft.io     pod label istio.io/rev=<revision>, namespace unlabelled
//
// and in every one a pod labelled sidecar.istio.io/inject=false is not sent (the annotation of
// the same name is checked by the injector itself: selectors see labels only).
// failurePolicy Fail, as Istio's: a pod that should have a sidecar is not started without one
// while no Weft replica answers (with STRICT mTLS it could not talk to the mesh anyway).
import type { V1LabelSelector, V1MutatingWebhook, V1MutatingWebhookConfiguration } from "@kubernetes/client-node";
import { INJECT_ANNOTATION } from "./inject-overrides.js";
import { REVISION_LABEL } from "./inject-sidecar.js";
import { webhookClientConfig, type WebhookTarget } from "./webhook-configuration.js";

export const INJECT_PATH = "/inject";
export const DEFAULT_INJECTION_CONFIGURATION_NAME = "weft-sidecar-injector";
export const INJECTION_TIMEOUT_SECONDS = 10;
export const INJECTION_LABEL = "istio-injection";

export interface InjectionConfigurationSpec {
  name?: string;
  /** The validating webhook's target: a Service gets path /inject, a URL keeps its origin with path /inject. */
  target: WebhookTarget;
  caBundlePem: string;
  revision: string;
}

/** The injector's target: same server as `target`, path /inject. */
export function injectionTarget(target: WebhookTarget): WebhookTarget {
  if (!("url" in target)) return target;
  return { url: `${new URL(target.url).origin}${INJECT_PATH}` };
}

export function desiredInjectionConfiguration(spec: InjectionConfigurationSpec): V1MutatingWebhookConfiguration {
  const notOptedOut = { key: INJECT_ANNOTATION, operator: "NotIn", values: ["false"] };
  const webhook = (name: string, namespaceSelector: V1LabelSelector, objectSelector: V1LabelSelector): V1MutatingWebhook => ({
    name,
    clientConfig: webhookClientConfig(injectionTarget(spec.target), INJECT_PATH, spec.caBundlePem),
    rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"], scope: "Namespaced" }],
    namespaceSelector,
    objectSelector,
    failurePolicy: "Fail",
    matchPolicy: "Equivalent",
    sideEffects: "None",
    reinvocationPolicy: "Never",
    timeoutSeconds: INJECTION_TIMEOUT_SECONDS,
    admissionReviewVersions: ["v1"],
  });
  const unlabelled = [{ key: INJECTION_LABEL, operator: "DoesNotExist" }, { key: REVISION_LABEL, operator: "DoesNotExist" }];
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: spec.name ?? DEFAULT_INJECTION_CONFIGURATION_NAME, labels: { "app.kubernetes.io/part-of": "weft", [REVISION_LABEL]: spec.revision } },
    webhooks: [
      webhook("namespace.sidecar-injector.weft.io", { matchExpressions: [{ key: INJECTION_LABEL, operator: "In", values: ["enabled"] }] }, { matchExpressions: [notOptedOut] }),
      webhook("rev.namespace.sidecar-injector.weft.io", { matchExpressions: [{ key: REVISION_LABEL, operator: "In", values: [spec.revision] }, { key: INJECTION_LABEL, operator: "DoesNotExist" }] }, { matchExpressions: [notOptedOut] }),
      webhook("object.sidecar-injector.weft.io", { matchExpressions: unlabelled }, { matchExpressions: [{ key: INJECT_ANNOTATION, operator: "In", values: ["true"] }] }),
      webhook("rev.object.sidecar-injector.weft.io", { matchExpressions: unlabelled }, { matchExpressions: [{ key: REVISION_LABEL, operator: "In", values: [spec.revision] }, notOptedOut] }),
    ],
  };
}
