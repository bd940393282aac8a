// Envoy bootstraps for the four modes of go-control-plane's integration test (its
// sample/bootstrap-{ads,xds,delta,delta-ads}.yaml, without the access-log cluster and the RTDS
// layer, which the parity fixture does not use):
//   ads        ads_config GRPC;        cds_config / lds_config { ads: {} }
//   delta-ads  ads_config DELTA_GRPC;  cds_config / lds_config { ads: {} }
//   xds        cds_config / lds_config api_config_source GRPC       -> xds_cluster (one stream per type)
//   delta      cds_config / lds_config api_config_source DELTA_GRPC -> xds_cluster
// EDS and RDS come from the config source inside each cluster / HTTP connection manager (see
// weft-parity-server.ts and bench/go/parityserver), so they follow the same split.
// Rendered as JSON, which Envoy reads as YAML.
import { XDS_CLUSTER, isAggregated, type ParityMode } from "./modes.js";

export interface ParityBootstrapOptions {
  mode: ParityMode;
  xdsPort: number;
  nodeId?: string;
  nodeCluster?: string;
}

export function renderParityBootstrap(opts: ParityBootstrapOptions): string {
  const ads = isAggregated(opts.mode);
  const apiType = opts.mode === "delta" || opts.mode === "delta-ads" ? "DELTA_GRPC" : "GRPC";
  const grpcServices = [{ envoy_grpc: { cluster_name: XDS_CLUSTER } }];
  const source = ads
    ? { ads: {}, resource_api_version: "V3" }
    : { resource_api_version: "V3", api_config_source: { api_type: apiType, transport_api_version: "V3", grpc_services: grpcServices, set_node_on_first_message_only: true } };
  const bootstrap = {
    node: { id: opts.nodeId ?? "test-id", cluster: opts.nodeCluster ?? "test-cluster" },
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    dynamic_resources: {
      ...(ads ? { ads_config: { api_type: apiType, transport_api_version: "V3", set_node_on_first_message_only: true, grpc_services: grpcServices } } : {}),
      cds_config: source,
      lds_config: source,
    },
    static_resources: {
      clusters: [
        {
          name: XDS_CLUSTER,
          type: "STATIC",
          connect_timeout: "1s",
          load_assignment: {
            cluster_name: XDS_CLUSTER,
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: opts.xdsPort } } } }] }],
          },
          typed_extension_protocol_options: {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
              "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
        },
      ],
    },
  };
  return JSON.stringify(bootstrap, null, 2) + "\n";
}
