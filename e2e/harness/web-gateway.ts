// The mesh several real-Envoy tests start from: one HTTP service "web" (a ServiceEntry on a
// loopback upstream) published on an ingress gateway (selector istio: ingressgateway) for any host.
// Ends with a document separator, so tests append their own resources.

export interface WebGatewayOptions {
  /** The loopback port the upstream serving "web" listens on. */
  upstreamPort: number;
  /** The gateway's HTTP port. */
  gatewayPort: number;
  /** Where the Gateway resource lives (default: default, with the service). */
  gatewayNamespace?: string;
}

export function webBehindGateway({ upstreamPort, gatewayPort, gatewayNamespace = "default" }: WebGatewayOptions): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: default }
spec:
  hosts: [web.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${upstreamPort} } }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public, namespace: ${gatewayNamespace} }
spec:
  selector: { istio: ingressgateway }
  servers:
  - { port: { number: ${gatewayPort}, name: http, protocol: HTTP }, hosts: ["*"] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: ["*"]
  gateways: [${gatewayNamespace}/public]
  http:
  - route: [{ destination: { host: web.default.svc.cluster.local, port: { number: 8000 } } }]
---
`;
}
