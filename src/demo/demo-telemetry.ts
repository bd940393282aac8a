// The demo's observability: mesh settings declaring its telemetry providers, and telemetry.yaml
// (written to the demo's config directory, editable live) turning on Istio's default access
// logs everywhere and, when Jaeger runs, tracing of every request to it.
import type { MeshTelemetrySettings } from "../api/telemetry/extension-providers.js";

/** The collector service the sidecars report spans to (a ServiceEntry in telemetry.yaml). */
export const DEMO_COLLECTOR_HOST = "jaeger-collector.istio-system.svc.cluster.local";

/** Providers: "envoy" (built in: text on each Envoy's stdout), "envoy-json" (Istio's JSON labels), and with Jaeger "jaeger" (OTLP gRPC) and "zipkin". */
export function demoTelemetrySettings(jaeger: { otlpPort: number; zipkinPort: number } | undefined): MeshTelemetrySettings {
  return {
    extensionProviders: [
      { name: "envoy-json", envoyFileAccessLog: { path: "/dev/stdout", logFormat: { labels: {} } } },
      ...(jaeger
        ? [
            { name: "jaeger", opentelemetry: { service: DEMO_COLLECTOR_HOST, port: jaeger.otlpPort } },
            { name: "zipkin", zipkin: { service: DEMO_COLLECTOR_HOST, port: jaeger.zipkinPort } },
          ]
        : []),
    ],
    defaultProviders: {},
  };
}

/** The collector's ServiceEntry: Jaeger's OTLP gRPC and Zipkin ports at `address` (a YAML document). */
export function collectorServiceEntryYaml(jaeger: { address: string; otlpPort: number; zipkinPort: number }): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: jaeger-collector, namespace: istio-system }
spec:
  hosts: [${DEMO_COLLECTOR_HOST}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: ${jaeger.otlpPort}, name: grpc-otlp, protocol: GRPC }, { number: ${jaeger.zipkinPort}, name: http-zipkin, protocol: HTTP }]
  endpoints: [{ address: ${jaeger.address} }]
`;
}

/** telemetry.yaml: the collector's ServiceEntry (with Jaeger) and the mesh-wide Telemetry. */
export function telemetryYaml(jaeger: { address: string; otlpPort: number; zipkinPort: number } | undefined): string {
  const collector = jaeger ? `${collectorServiceEntryYaml(jaeger)}---\n` : "";
  const tracing = jaeger
    ? `  # Every request is traced (Istio's default is 1%); try 0, or providers: [{ name: zipkin }].
  tracing:
  - providers: [{ name: jaeger }]
    randomSamplingPercentage: 100
`
    : "";
  return `# Observability for the whole mesh (Istio's Telemetry API). Providers are declared in the
# mesh settings: envoy (Istio's text format on each Envoy's stdout), envoy-json${jaeger ? ", jaeger, zipkin" : ""}.
${collector}apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-default, namespace: istio-system }
spec:
${tracing}  accessLogging:
  - providers: [{ name: envoy }]
`;
}
