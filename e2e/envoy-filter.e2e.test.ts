// EnvoyFilter with real Envoy: filters Istio users add through EnvoyFilter work on Weft's
// output. A local rate limit (envoy.filters.http.local_ratelimit, istio.io's rate-limit task
// shape) on the ingress gateway answers 429 after N requests; a Lua filter
// (envoy.filters.http.lua) added to a sidecar's outbound HTTP adds a response header. No pods:
// the gateway and an explicit-mode sidecar run on loopback ports picked free.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../src/runner/free-port.js";
import { httpGet } from "./harness/http.js";
import { TestMesh } from "./harness/mesh.js";
import { startUpstream, type Upstream } from "./harness/upstream.js";
import { webBehindGateway } from "./harness/web-gateway.js";

const RATE_LIMIT = 3;

describe("EnvoyFilter with real Envoy", () => {
  let mesh: TestMesh;
  let upstream: Upstream;
  let gatewayPort: number;
  let sidecarPort: number;

  const registry = () => webBehindGateway({ upstreamPort: upstream.port, gatewayPort });

  const localRateLimit = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: filter-local-ratelimit-gateway, namespace: istio-system }
spec:
  workloadSelector:
    labels:
      istio: ingressgateway
  configPatches:
    - applyTo: HTTP_FILTER
      match:
        context: GATEWAY
        listener:
          filterChain:
            filter:
              name: "envoy.filters.network.http_connection_manager"
              subFilter:
                name: "envoy.filters.http.router"
      patch:
        operation: INSERT_BEFORE
        value:
          name: envoy.filters.http.local_ratelimit
          typed_config:
            "@type": type.googleapis.com/udpa.type.v1.TypedStruct
            type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
            value:
              stat_prefix: http_local_rate_limiter
              token_bucket:
                max_tokens: ${RATE_LIMIT}
                tokens_per_fill: ${RATE_LIMIT}
                fill_interval: 3600s
              filter_enabled:
                runtime_key: local_rate_limit_enabled
                default_value: { numerator: 100, denominator: HUNDRED }
              filter_enforced:
                runtime_key: local_rate_limit_enforced
                default_value: { numerator: 100, denominator: HUNDRED }
              response_headers_to_add:
                - append_action: OVERWRITE_IF_EXISTS_OR_ADD
                  header: { key: x-local-rate-limit, value: "true" }
---
`;

  const lua = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: add-header-lua, namespace: default }
spec:
  workloadSelector:
    labels: { app: client }
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      context: SIDECAR_OUTBOUND
      listener:
        filterChain:
          filter:
            name: "envoy.filters.network.http_connection_manager"
            subFilter:
              name: "envoy.filters.http.router"
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.lua
        typed_config:
          "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
          inlineCode: |
            function envoy_on_response(response_handle)
              response_handle:headers():add("x-added-by-lua", "weft")
            end
---
`;

  const apply = (yaml: string) => mesh.applyValid(yaml);

  beforeAll(async () => {
    upstream = await startUpstream("web");
    gatewayPort = await freePort();
    sidecarPort = await freePort();
    mesh = await TestMesh.start();
    await apply(registry());
    await mesh.startProxy({ name: "ingressgateway", namespace: "istio-system", type: "router", labels: { istio: "ingressgateway" } });
    await mesh.startProxy({ name: "client", labels: { app: "client" }, capture: "explicit", explicitPort: sidecarPort });
  });

  afterAll(async () => {
    await mesh?.close();
    await upstream?.close();
  });

  it(`a local rate limit added by EnvoyFilter answers 429 after ${RATE_LIMIT} requests`, async () => {
    const atGateway = () => httpGet(`http://127.0.0.1:${gatewayPort}/`, { headers: { host: "web.example.com" }, timeoutMs: 5000 });
    // Without the EnvoyFilter: no limit.
    for (let i = 0; i < RATE_LIMIT + 2; i++) expect((await atGateway()).status).toBe(200);
    await apply(registry() + localRateLimit);
    const statuses: number[] = [];
    for (let i = 0; i < RATE_LIMIT + 3; i++) statuses.push((await atGateway()).status);
    expect(statuses).toEqual([...Array(RATE_LIMIT).fill(200), 429, 429, 429]);
    const limited = await atGateway();
    expect(limited.status).toBe(429);
    expect(limited.headers["x-local-rate-limit"]).toBe("true");
  });

  it("a Lua filter added by EnvoyFilter adds a response header (selected sidecar only)", async () => {
    const viaSidecar = () => httpGet(`http://127.0.0.1:${sidecarPort}/`, { headers: { host: "web:8000" }, timeoutMs: 5000 });
    const before = await viaSidecar();
    expect(before.status).toBe(200);
    expect(before.headers["x-added-by-lua"]).toBeUndefined();
    await apply(registry() + lua);
    const after = await viaSidecar();
    expect(after.status).toBe(200);
    expect(after.headers["x-upstream"]).toBe("web");
    expect(after.headers["x-added-by-lua"]).toBe("weft");
    // The gateway is not selected: no header there (and its rate limit is gone with its EnvoyFilter).
    const gw = await httpGet(`http://127.0.0.1:${gatewayPort}/`, { headers: { host: "web.example.com" }, timeoutMs: 5000 });
    expect(gw.status).toBe(200);
    expect(gw.headers["x-added-by-lua"]).toBeUndefined();
  });
});
