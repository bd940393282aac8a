import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildMeshModel } from "../../model/mesh-model.js";
import { ConfigAggregator } from "../config-aggregator.js";
import { FileSource } from "./file-source.js";

// A small hand-written equivalent of Istio's samples/bookinfo/platform/kube/bookinfo.yaml
// (Services, ServiceAccounts, Deployments) plus an Endpoints object and Istio networking files.
const PLATFORM = `
apiVersion: v1
kind: Service
metadata: { name: reviews, labels: { app: reviews, service: reviews } }
spec:
  ports: [{ port: 9080, name: http }]
  selector: { app: reviews }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: bookinfo-reviews }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: reviews-v1, labels: { app: reviews, version: v1 } }
spec:
  replicas: 1
  selector: { matchLabels: { app: reviews, version: v1 } }
  template:
    metadata: { labels: { app: reviews, version: v1 } }
    spec:
      serviceAccountName: bookinfo-reviews
      containers: [{ name: reviews, image: docker.io/istio/examples-bookinfo-reviews-v1:1.20.3, ports: [{ containerPort: 9080 }] }]
---
apiVersion: v1
kind: Service
metadata: { name: productpage }
spec:
  ports: [{ port: 9080, name: http }]
  selector: { app: productpage }
`;

const ENDPOINTS = `
apiVersion: v1
kind: Endpoints
metadata: { name: reviews }
subsets:
- addresses: [{ ip: 10.1.0.7, targetRef: { kind: Pod, name: reviews-v1-abc } }]
  ports: [{ name: http, port: 9080 }]
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v1-abc, labels: { app: reviews, version: v1 } }
spec: { serviceAccountName: bookinfo-reviews }
status: { podIP: 10.1.0.7 }
`;

const NETWORKING = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews, subset: v1 } }] }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  subsets: [{ name: v1, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: productpage }
spec:
  hosts: [productpage]
  http: [{ route: [{ destination: { host: productpage } }] }]
`;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "weft-k8s-manifests-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("plain Kubernetes manifests in a config directory", () => {
  it("bookinfo platform YAML + networking files: Services become registry entries, references resolve, no warnings", () => {
    writeFileSync(join(dir, "bookinfo.yaml"), PLATFORM);
    writeFileSync(join(dir, "endpoints.yaml"), ENDPOINTS);
    writeFileSync(join(dir, "networking.yaml"), NETWORKING);
    const config = new ConfigAggregator([new FileSource(dir)]).load();
    expect(config.issues.map((i) => `${i.severity}: ${i.resource}: ${i.field}: ${i.message}`)).toEqual([]);
    const model = buildMeshModel(config);
    const reviews = model.serviceByHost.get("reviews.default.svc.cluster.local");
    expect(reviews?.ports).toEqual([{ number: 9080, name: "http", protocol: "HTTP", targetPort: 9080 }]);
    expect(reviews?.endpoints.map((e) => [e.address, e.labels.version, e.serviceAccount])).toEqual([["10.1.0.7", "v1", "bookinfo-reviews"]]);
    expect(model.serviceByHost.get("productpage.default.svc.cluster.local")?.endpoints).toEqual([]);
    expect(model.virtualServicesByHost.get("reviews.default.svc.cluster.local")?.map((v) => v.metadata.name)).toEqual(["reviews"]);
  });

  it("without the platform file, the same networking files warn IST0101 (and nothing is an error)", () => {
    writeFileSync(join(dir, "networking.yaml"), NETWORKING);
    const config = new ConfigAggregator([new FileSource(dir)]).load();
    expect(config.issues.filter((i) => i.severity === "error")).toEqual([]);
    // the routes (IST0101) and the DestinationRule for an unknown host (a warning Istio has no code for)
    expect(config.issues.map((i) => i.code)).toEqual(["IST0101", undefined, "IST0101"]);
  });
});
