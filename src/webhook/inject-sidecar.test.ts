import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { expandContainerReferences } from "../../e2e/kubernetes/container-env.js";
import { desiredInjectionConfiguration, injectionTarget } from "./inject-configuration.js";
import { reviewInjection } from "./inject-review.js";
import { DEFAULT_INJECTION_SETTINGS, injectSidecar, type InjectionSettings, type JsonPatchOperation } from "./inject-sidecar.js";

const GOLDEN_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "testdata", "inject");
const SETTINGS: InjectionSettings = { ...DEFAULT_INJECTION_SETTINGS, image: "weft.dev/weft:test", proxyImage: "envoyproxy/envoy:v1.40.0" };

/** The patch compared with testdata/inject/<name>.json (UPDATE_GOLDEN=1 rewrites it). The bootstrap is checked apart. */
function golden(name: string, value: unknown): void {
  const file = path.join(GOLDEN_DIR, `${name}.json`);
  const text = `${JSON.stringify(value, null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN === "1") {
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, text);
  }
  expect(text).toBe(readFileSync(file, "utf8"));
}

/** Applies "add" operations (RFC 6902) to a copy of `doc`, as the apiserver does. */
function applyPatch(doc: unknown, patch: JsonPatchOperation[]): any {
  const out = structuredClone(doc) as Record<string, unknown>;
  for (const op of patch) {
    const keys = op.path.split("/").slice(1).map((k) => k.replace(/~1/g, "/").replace(/~0/g, "~"));
    const last = keys.pop()!;
    let parent: any = out;
    for (const k of keys) parent = parent[k];
    if (Array.isArray(parent)) {
      if (last === "-") parent.push(op.value);
      else parent.splice(Number(last), 0, op.value);
    } else parent[last] = op.value;
  }
  return out;
}

/** The patch with the (long) inline bootstrap replaced by a marker; the bootstrap is tested on its own. */
function withoutBootstrap(patch: JsonPatchOperation[]): unknown {
  return JSON.parse(JSON.stringify(patch), (key, value) => (key === "args" && Array.isArray(value) && value[0] === "--config-yaml" ? ["--config-yaml", "<bootstrap>", ...value.slice(2)] : value));
}

const pod = (extra: { labels?: Record<string, string>; annotations?: Record<string, string>; spec?: Record<string, unknown> } = {}) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { generateName: "reviews-v1-", namespace: "bookinfo", labels: { app: "reviews", version: "v1", ...extra.labels }, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
  spec: { serviceAccountName: "bookinfo-reviews", containers: [{ name: "reviews", image: "reviews:1", ports: [{ containerPort: 9080 }] }], ...extra.spec },
});

function injected(p: unknown, settings = SETTINGS): JsonPatchOperation[] {
  const d = injectSidecar(p, "bookinfo", settings);
  if (d.outcome !== "injected") throw new Error(`expected injection, got ${JSON.stringify(d)}`);
  return d.patch;
}

describe("injectSidecar: the JSON patch", () => {
  it("a plain pod: istio-init then the native sidecar istio-proxy, token and root volumes, tlsMode label, status annotation", () => {
    const patch = injected(pod());
    golden("plain-pod", withoutBootstrap(patch));
    const result = applyPatch(pod(), patch);
    expect(result.spec.initContainers.map((c: { name: string }) => c.name)).toEqual(["istio-init", "istio-proxy"]);
    const proxy = result.spec.initContainers[1];
    expect(proxy.restartPolicy).toBe("Always");
    expect(proxy.startupProbe.httpGet).toEqual({ path: "/healthz/ready", port: 15021, scheme: "HTTP" });
    expect(result.spec.initContainers[0].securityContext.capabilities).toEqual({ drop: ["ALL"], add: ["NET_ADMIN", "NET_RAW"] });
    expect(result.spec.containers).toEqual(pod().spec.containers);
    expect(result.metadata.labels["security.istio.io/tlsMode"]).toBe("istio");
    expect(JSON.parse(result.metadata.annotations["sidecar.istio.io/status"]).initContainers).toEqual(["istio-init", "istio-proxy"]);
  });

  it("a pod with init containers, volumes and annotations: ours go first, theirs are kept", () => {
    const p = pod({ annotations: { team: "books" }, spec: { initContainers: [{ name: "migrate", image: "m:1" }], volumes: [{ name: "data", emptyDir: {} }] } });
    const patch = injected(p);
    golden("with-init-containers", withoutBootstrap(patch));
    const result = applyPatch(p, patch);
    expect(result.spec.initContainers.map((c: { name: string }) => c.name)).toEqual(["istio-init", "istio-proxy", "migrate"]);
    expect(result.spec.volumes.map((v: { name: string }) => v.name)).toEqual(["data", "istio-token", "istiod-ca-cert"]);
    expect(result.metadata.annotations.team).toBe("books");
  });

  it("Istio's per-pod annotations: resources, log level, capture exclusions, proxy.istio.io/config; unsupported ones are warnings", () => {
    const annotations = {
      "sidecar.istio.io/proxyCPU": "250m", "sidecar.istio.io/proxyMemory": "256Mi", "sidecar.istio.io/proxyCPULimit": "1", "sidecar.istio.io/proxyMemoryLimit": "512Mi",
      "sidecar.istio.io/logLevel": "debug",
      "traffic.sidecar.istio.io/excludeInboundPorts": "8443, 9000", "traffic.sidecar.istio.io/excludeOutboundPorts": "5432", "traffic.sidecar.istio.io/includeOutboundIPRanges": "10.0.0.0/8,172.16.0.0/12",
      "proxy.istio.io/config": "concurrency: 4\nterminationDrainDuration: 20s\ntracing: {}\n",
      "sidecar.istio.io/interceptionMode": "TPROXY",
    };
    const d = injectSidecar(pod({ annotations }), "bookinfo", SETTINGS);
    if (d.outcome !== "injected") throw new Error(JSON.stringify(d));
    golden("overrides", withoutBootstrap(d.patch));
    expect(d.warnings).toEqual([
      "annotation proxy.istio.io/config: field tracing is not supported by Weft's injector and is ignored",
      "annotation sidecar.istio.io/interceptionMode is not supported by Weft's injector and is ignored",
    ]);
    const [init, proxy] = applyPatch(pod({ annotations }), d.patch).spec.initContainers;
    expect(init.args).toEqual(expect.arrayContaining(["--exclude-inbound-ports", "8443,9000", "--exclude-outbound-ports", "5432", "--include-outbound-cidrs", "10.0.0.0/8,172.16.0.0/12"]));
    expect(proxy.args.slice(2)).toEqual(["--disable-hot-restart", "--concurrency", "4", "--drain-time-s", "20", "--drain-strategy", "immediate", "-l", "debug"]);
    expect(proxy.resources).toEqual({ requests: { cpu: "250m", memory: "256Mi" }, limits: { cpu: "1", memory: "512Mi" } });
  });

  it("the app's HTTP probes move to :15021/app-health/<container>/<probe>, forwarded by the sidecar to the app on loopback", () => {
    const containers = [{
      name: "reviews", image: "reviews:1", ports: [{ name: "http", containerPort: 9080 }],
      readinessProbe: { httpGet: { path: "/ready?deep=1", port: "http" }, periodSeconds: 3 },
      livenessProbe: { httpGet: { path: "/live", port: 9081, httpHeaders: [{ name: "x-probe", value: "kubelet" }] } },
      startupProbe: { httpGet: { path: "/tls", port: 9443, scheme: "HTTPS" } },
    }];
    const p = pod({ spec: { containers } });
    const patch = injected(p);
    golden("probe-rewrite", withoutBootstrap(patch));
    const result = applyPatch(p, patch);
    const app = result.spec.containers[0];
    expect(app.readinessProbe).toEqual({ httpGet: { path: "/app-health/reviews/readyz", port: 15021, scheme: "HTTP" }, periodSeconds: 3 });
    expect(app.livenessProbe.httpGet).toEqual({ path: "/app-health/reviews/livez", port: 15021, scheme: "HTTP" });
    expect(app.startupProbe).toEqual(containers[0]!.startupProbe); // HTTPS: left as written
    const bootstrap = parseYaml(expandContainerReferences(result.spec.initContainers[1].args[1], { POD_NAME: "p", INSTANCE_IP: "10.0.0.1" }));
    const readiness = bootstrap.static_resources.listeners.find((l: { name: string }) => l.name === "weft-readiness");
    const routes = readiness.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes;
    expect(routes.slice(1)).toEqual([
      { match: { path: "/app-health/reviews/readyz" }, route: { cluster: "weft-app-probe-9080", timeout: "30s", prefix_rewrite: "/ready?deep=1" } },
      { match: { path: "/app-health/reviews/livez" }, route: { cluster: "weft-app-probe-9081", timeout: "30s", prefix_rewrite: "/live" }, request_headers_to_add: [{ header: { key: "x-probe", value: "kubelet" }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" }] },
    ]);
    const clusters = bootstrap.static_resources.clusters.map((c: { name: string }) => c.name);
    expect(clusters).toEqual(["xds-grpc", "weft-prometheus-stats", "weft-app-probe-9080", "weft-app-probe-9081"]);
    // Opted out: probes stay as written.
    const optedOut = pod({ annotations: { "sidecar.istio.io/rewriteAppHTTPProbers": "false" }, spec: { containers } });
    const kept = applyPatch(optedOut, injected(optedOut));
    expect(kept.spec.containers[0]).toEqual(containers[0]);
  });

  it("refuses a bad override, naming the annotation and what was expected", () => {
    const d = injectSidecar(pod({ annotations: { "sidecar.istio.io/proxyMemory": "lots", "proxy.istio.io/config": "concurrency: -1" } }), "bookinfo", SETTINGS);
    expect(d.outcome).toBe("refused");
    expect(d.outcome === "refused" && d.message).toBe(
      "sidecar injection: Pod bookinfo/reviews-v1-<generated>: annotation sidecar.istio.io/proxyMemory: expected a Kubernetes quantity such as \"100m\" or \"128Mi\", got \"lots\"; annotation proxy.istio.io/config: concurrency: expected a whole number from 0 to 64, got -1",
    );
  });

  it("leaves alone: opted out by annotation or label, hostNetwork, already injected, another revision", () => {
    const skipped = (p: unknown) => {
      const d = injectSidecar(p, "bookinfo", SETTINGS);
      return d.outcome === "skipped" ? d.reason : `not skipped: ${d.outcome}`;
    };
    expect(skipped(pod({ annotations: { "sidecar.istio.io/inject": "false" } }))).toMatch(/annotation sidecar.istio.io\/inject=false/);
    expect(skipped(pod({ annotations: { "sidecar.istio.io/inject": "No" } }))).toMatch(/annotation sidecar.istio.io\/inject=No/);
    expect(skipped(pod({ labels: { "sidecar.istio.io/inject": "false" } }))).toMatch(/label sidecar.istio.io\/inject=false/);
    expect(skipped(pod({ spec: { hostNetwork: true } }))).toMatch(/hostNetwork/);
    expect(skipped(pod({ labels: { "istio.io/rev": "canary" } }))).toMatch(/another revision/);
    // What the webhook itself produced, seen again (e.g. a pod re-created from an injected manifest).
    const once = applyPatch(pod(), injected(pod()));
    expect(skipped(once)).toMatch(/already injected/);
    expect(skipped(pod({ spec: { containers: [{ name: "istio-proxy", image: "istio/proxyv2" }] } }))).toMatch(/already injected/);
    expect(injectSidecar(pod({ annotations: { "sidecar.istio.io/inject": "true" } }), "bookinfo", SETTINGS).outcome).toBe("injected");
  });

  it("without TLS settings (Weft without --security): no token, no root volume, plaintext xDS", () => {
    const patch = injected(pod(), { ...SETTINGS, xdsServerName: undefined });
    const result = applyPatch(pod(), patch);
    expect(result.spec.volumes).toBeUndefined();
    expect(result.spec.initContainers[1].volumeMounts).toBeUndefined();
    expect(result.spec.initContainers[1].args[1]).not.toContain("transport_socket\":{\"name");
  });
});

describe("the injected bootstrap (inline --config-yaml)", () => {
  const args = () => (applyPatch(pod({ labels: { weird: "a.b_c-1" } }), injected(pod({ labels: { weird: "a.b_c-1" } }))).spec.initContainers[1].args as string[]);

  it("after kubelet's $(VAR) expansion: the pod's identity, the projected token file, TLS to Weft's xDS Service", () => {
    const raw = args()[1]!;
    expect(raw).toContain("$(POD_NAME)");
    expect(raw).toContain("$(INSTANCE_IP)");
    const bootstrap = parseYaml(expandContainerReferences(raw, { POD_NAME: "reviews-v1-x7k2p", INSTANCE_IP: "10.1.2.3" }));
    expect(bootstrap.node.id).toBe("sidecar~10.1.2.3~reviews-v1-x7k2p.bookinfo~bookinfo.svc.cluster.local");
    expect(bootstrap.node.cluster).toBe("reviews.bookinfo");
    expect(bootstrap.node.metadata).toEqual({
      NAMESPACE: "bookinfo", POD_NAME: "reviews-v1-x7k2p", SERVICE_ACCOUNT: "bookinfo-reviews", INTERCEPTION_MODE: "REDIRECT", WEFT_STATS_PORT: "15090",
      LABELS: JSON.stringify({ app: "reviews", version: "v1", weird: "a.b_c-1", "security.istio.io/tlsMode": "istio" }),
    });
    expect(bootstrap.admin.address.socket_address).toEqual({ address: "127.0.0.1", port_value: 15000 });
    const grpc = bootstrap.dynamic_resources.ads_config.grpc_services[0].google_grpc;
    expect(grpc.target_uri).toBe("weft.weft-system.svc:15010");
    expect(grpc.channel_credentials.ssl_credentials.root_certs.filename).toBe("/var/run/secrets/istio/root-cert.pem");
    expect(grpc.call_credentials[0].from_plugin.typed_config.secret_data.filename).toBe("/var/run/secrets/tokens/istio-token");
    expect(grpc.channel_args.args["grpc.ssl_target_name_override"].string_value).toBe("weft.weft-system.svc");
    const listeners = bootstrap.static_resources.listeners.map((l: { name: string; address: { socket_address: unknown } }) => [l.name, l.address.socket_address]);
    expect(listeners).toEqual([["weft-prometheus-stats", { address: "0.0.0.0", port_value: 15090 }], ["weft-readiness", { address: "0.0.0.0", port_value: 15021 }]]);
  });

  it("every other $ is escaped for kubelet (the stats tag regexes keep theirs)", () => {
    const raw = args()[1]!;
    const unescaped = raw.replace(/\$\$/g, "").replace(/\$\((POD_NAME|INSTANCE_IP)\)/g, "");
    expect(unescaped).not.toContain("$");
    const expanded = expandContainerReferences(raw, { POD_NAME: "p", INSTANCE_IP: "10.0.0.1" });
    expect(raw.split("$$").length - 1).toBeGreaterThan(0);
    expect(expanded.split("$").length - 1).toBe(raw.split("$$").length - 1);
  });
});

describe("reviewInjection: the AdmissionReview answer", () => {
  const review = (object: unknown, operation = "CREATE", kind = "Pod") => ({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: "u-7", operation, namespace: "bookinfo", kind: { group: "", version: "v1", kind }, object } });

  it("a pod create: allowed with a base64 JSON patch", () => {
    const r = reviewInjection(review(pod()), SETTINGS);
    expect(r.outcome).toBe("injected");
    expect(r.answer.response).toMatchObject({ uid: "u-7", allowed: true, patchType: "JSONPatch" });
    expect(JSON.parse(Buffer.from(r.answer.response.patch!, "base64").toString("utf8"))).toEqual(injected(pod()));
  });

  it("anything but a pod create passes untouched; a refused pod is denied with the message", () => {
    expect(reviewInjection(review(pod(), "UPDATE"), SETTINGS).answer.response).toEqual({ uid: "u-7", allowed: true });
    expect(reviewInjection(review({}, "CREATE", "ConfigMap"), SETTINGS).answer.response).toEqual({ uid: "u-7", allowed: true });
    const denied = reviewInjection(review(pod({ annotations: { "sidecar.istio.io/logLevel": "loud" } })), SETTINGS);
    expect(denied.answer.response).toMatchObject({ allowed: false, status: { code: 400, message: expect.stringContaining("annotation sidecar.istio.io/logLevel: expected one of trace") } });
  });
});

describe("the MutatingWebhookConfiguration", () => {
  it("Istio's selection: namespace label, revision label, pod label; pods CREATE; failurePolicy Fail", () => {
    const config = desiredInjectionConfiguration({ target: { service: { namespace: "weft-system", name: "weft", port: 443 } }, caBundlePem: "PEM", revision: "default" });
    golden("mutating-webhook-configuration", config);
  });

  it("a URL target keeps the server and takes path /inject", () => {
    expect(injectionTarget({ url: "https://127.0.0.1:15017/validate" })).toEqual({ url: "https://127.0.0.1:15017/inject" });
    expect(injectionTarget({ service: { namespace: "n", name: "s", port: 443 } })).toEqual({ service: { namespace: "n", name: "s", port: 443 } });
  });
});
