// Tracing (Istio's Telemetry tracing with opentelemetry or zipkin providers): the HTTP connection
// manager's `tracing` — sampling, custom tags, and the tracer that reports spans to the
// provider's service through its outbound cluster (`outbound|port||host`, as Istio). The
// OpenTelemetry tracer propagates W3C trace context (traceparent); the Zipkin tracer B3 headers.
// Each sidecar reports its own spans: the outbound side a client span, the inbound side a server
// span, joined into one trace when the app forwards the trace headers it received.
import type { HttpConnectionManager_Tracing } from "../../generated/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.js";
import type { CustomTag } from "../../generated/envoy/type/tracing/v3/custom_tag.js";
import { ZipkinConfig_CollectorEndpointVersion } from "../../generated/envoy/config/trace/v3/zipkin.js";
import { providerServiceHost, type ExtensionProvider } from "../api/telemetry/extension-providers.js";
import type { CustomTag as IstioCustomTag } from "../api/telemetry/types.js";
import { packAny } from "../envoy/any.js";
import { EXTENSION_TYPES } from "../envoy/type-urls.js";
import { resolveHost, type MeshModel, type ServiceModel } from "../model/mesh-model.js";
import type { TracingPlan } from "../model/telemetry.js";
import { outboundClusterName } from "./naming.js";

/** Istio's default for the length of the path tag on spans. */
const MAX_PATH_TAG_LENGTH = 256;

/** Labels naming a workload's service, most specific first (Istio's canonical service). */
const CANONICAL_NAME_LABELS = ["service.istio.io/canonical-name", "app.kubernetes.io/name", "app"] as const;

/** The label keys the tracing translation reads from a proxy (they may split proxy classes). */
export const TRACING_LABEL_KEYS: readonly string[] = CANONICAL_NAME_LABELS;

/** The service a workload's spans are reported under: "<canonical service>.<namespace>", as Istio. */
export function tracingServiceName(namespace: string, labels: Readonly<Record<string, string>>): string {
  const name = CANONICAL_NAME_LABELS.map((k) => labels[k]).find((v) => v !== undefined && v !== "") ?? "unknown";
  return `${name}.${namespace}`;
}

/** Where a provider sends: its service in the model and the outbound cluster for its port. */
export interface ProviderTarget {
  service: ServiceModel;
  port: number;
  cluster: string;
  host: string;
}

/** The provider's `service` resolved in the registry (Istio: a provider whose service is unknown is skipped). */
export function providerTarget(model: MeshModel, provider: ExtensionProvider): ProviderTarget | undefined {
  const spec = provider.opentelemetry ?? provider.zipkin;
  if (!spec) return undefined;
  const { namespace, host } = providerServiceHost(spec.service);
  const service = resolveHost(model, host, namespace ?? model.settings.rootNamespace);
  if (!service || !service.ports.some((p) => p.number === spec.port)) return undefined;
  return { service, port: spec.port, cluster: outboundClusterName(spec.port, "", service.hostname), host: service.hostname };
}

function customTag(tag: string, from: IstioCustomTag): CustomTag {
  if (from.literal) return { tag, literal: { value: from.literal.value } };
  if (from.environment) return { tag, environment: { name: from.environment.name, ...(from.environment.defaultValue !== undefined ? { defaultValue: from.environment.defaultValue } : {}) } };
  return { tag, requestHeader: { name: from.header!.name, ...(from.header!.defaultValue !== undefined ? { defaultValue: from.header!.defaultValue } : {}) } };
}

function tracer(provider: ExtensionProvider, target: ProviderTarget, serviceName: string): HttpConnectionManager_Tracing["provider"] {
  if (provider.zipkin) {
    const z = provider.zipkin;
    return {
      name: "envoy.tracers.zipkin",
      typedConfig: packAny(EXTENSION_TYPES.zipkinTracer, {
        collectorCluster: target.cluster,
        collectorEndpoint: z.path ?? "/api/v2/spans",
        collectorEndpointVersion: ZipkinConfig_CollectorEndpointVersion.HTTP_JSON,
        collectorHostname: target.host,
        traceId128bit: !(z.enable64bitTraceId ?? false),
        // Client and server spans of one hop are separate spans (parent and child), as Istio.
        sharedSpanContext: false,
      }),
    };
  }
  const o = provider.opentelemetry!;
  const timeoutSeconds = o.http?.timeout ? Number.parseFloat(o.http.timeout) : undefined;
  return {
    name: "envoy.tracers.opentelemetry",
    typedConfig: packAny(EXTENSION_TYPES.openTelemetryTracer, {
      serviceName,
      ...(o.http
        ? {
            httpService: {
              httpUri: { uri: `http://${target.host}:${target.port}${o.http.path ?? "/v1/traces"}`, cluster: target.cluster, timeout: { seconds: Math.floor(timeoutSeconds ?? 5), nanos: 0 } },
              requestHeadersToAdd: (o.http.headers ?? []).map((h) => ({ header: { key: h.name, value: h.value } })),
            },
          }
        : { grpcService: { envoyGrpc: { clusterName: target.cluster, authority: target.host } } }),
      ...(o.resourceDetectors?.environment
        ? { resourceDetectors: [{ name: "envoy.tracers.opentelemetry.resource_detectors.environment", typedConfig: packAny(EXTENSION_TYPES.environmentResourceDetector, {}) }] }
        : {}),
    }),
  };
}

/**
 * The connection manager's `tracing` for one side of a workload, or undefined when there is no
 * tracing (no provider configured, or its service is not in the registry). With span reporting
 * disabled, Envoy still samples and keeps trace context, and reports nothing.
 */
export function buildTracing(model: MeshModel, plan: TracingPlan | undefined, workload: { namespace: string; labels: Readonly<Record<string, string>> }): HttpConnectionManager_Tracing | undefined {
  if (!plan) return undefined;
  const target = plan.provider ? providerTarget(model, plan.provider) : undefined;
  if (plan.provider && !target) return undefined;
  const canonical = tracingServiceName(workload.namespace, workload.labels);
  const tags: CustomTag[] = [
    // Istio's own span tags, then the Telemetry's (by name).
    { tag: "istio.canonical_service", literal: { value: canonical.slice(0, canonical.length - workload.namespace.length - 1) } },
    { tag: "istio.namespace", literal: { value: workload.namespace } },
    ...Object.entries(plan.customTags).map(([name, tag]) => customTag(name, tag)),
  ];
  return {
    clientSampling: { value: 100 },
    randomSampling: { value: plan.samplingPercentage },
    overallSampling: { value: 100 },
    maxPathTagLength: MAX_PATH_TAG_LENGTH,
    customTags: tags,
    ...(plan.provider && target ? { provider: tracer(plan.provider, target, canonical) } : {}),
  };
}

/** The services of the tracing providers `plans` use, so that their clusters are in the proxy's configuration. */
export function tracingProviderServices(model: MeshModel, plans: readonly (TracingPlan | undefined)[]): ServiceModel[] {
  const services = new Map<string, ServiceModel>();
  for (const plan of plans) {
    const target = plan?.provider ? providerTarget(model, plan.provider) : undefined;
    if (target) services.set(target.service.hostname, target.service);
  }
  return [...services.values()];
}
