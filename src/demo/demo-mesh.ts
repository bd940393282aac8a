// The demo's built-in mesh: an ingress Envoy routing to four sample services, one of them in
// two versions split by weight. (The Istio-API translation replaces this with embedded YAML.)
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import { Snapshot } from "../cache/snapshot.js";
import { buildEdsCluster, buildHttpListener, buildLoadAssignment } from "../envoy/builders.js";
import { XDS_TYPES } from "../envoy/type-urls.js";
import type { SampleService } from "./sample-service.js";

export const DEMO_SERVICES = [
  { name: "productpage", version: "v1" },
  { name: "details", version: "v1" },
  { name: "reviews", version: "v1" },
  { name: "reviews", version: "v2" },
  { name: "ratings", version: "v1" },
] as const;

export function buildDemoSnapshot(opts: { services: SampleService[]; ingressPort: number; reviewsV2Weight: number }): Snapshot {
  const clusterOf = (s: { name: string; version: string }) => `${s.name}-${s.version}`;
  const routes: RouteConfiguration = {
    name: "ingress",
    virtualHosts: [
      {
        name: "demo",
        domains: ["*"],
        routes: [
          ...["details", "ratings"].map((name) => ({ match: { prefix: `/${name}` }, route: { cluster: `${name}-v1` } })),
          {
            match: { prefix: "/reviews" },
            route: {
              weightedClusters: {
                clusters: [
                  { name: "reviews-v1", weight: 100 - opts.reviewsV2Weight },
                  { name: "reviews-v2", weight: opts.reviewsV2Weight },
                ].filter((c) => c.weight > 0),
              },
            },
          },
          { match: { prefix: "/" }, route: { cluster: "productpage-v1" } },
        ],
      },
    ],
  };
  return Snapshot.build({
    [XDS_TYPES.cluster]: opts.services.map((s) => buildEdsCluster({ name: clusterOf(s) })),
    [XDS_TYPES.endpoint]: opts.services.map((s) => buildLoadAssignment(clusterOf(s), [{ address: s.host, port: s.port }])),
    [XDS_TYPES.listener]: [buildHttpListener({ name: "ingress", address: "127.0.0.1", port: opts.ingressPort, routeConfigName: "ingress" })],
    [XDS_TYPES.route]: [routes],
  });
}
