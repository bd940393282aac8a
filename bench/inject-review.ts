// What Weft's injector itself costs per pod create: reviewInjection (AdmissionReview in, JSON patch
// out: the bootstrap rendered from its template, parsed and re-serialised inline, probes rewritten)
// timed in process, no network. The apiserver round trip is measured in
// e2e/kubernetes-injection.e2e.test.ts (printed, not asserted).
//
//   npx tsx bench/inject-review.ts [N]      (default 2000)
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { reviewInjection } from "../src/webhook/inject-review.js";
import { DEFAULT_INJECTION_SETTINGS } from "../src/webhook/inject-sidecar.js";

const n = Number(process.argv[2] ?? 2000);
const review = (i: number) => ({
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  request: {
    uid: `u-${i}`, operation: "CREATE", namespace: "bookinfo", kind: { group: "", version: "v1", kind: "Pod" },
    object: {
      metadata: { generateName: "reviews-v1-", labels: { app: "reviews", version: "v1", "pod-template-hash": "7d9f8c6b5" } },
      spec: { serviceAccountName: "bookinfo-reviews", containers: [{ name: "reviews", image: "reviews:1", ports: [{ name: "http", containerPort: 9080 }], readinessProbe: { httpGet: { path: "/health", port: "http" } } }] },
    },
  },
});
for (let i = 0; i < 200; i++) reviewInjection(review(i), DEFAULT_INJECTION_SETTINGS); // warm-up
const times: number[] = [];
let patchBytes = 0;
for (let i = 0; i < n; i++) {
  const t = process.hrtime.bigint();
  const r = reviewInjection(review(i), DEFAULT_INJECTION_SETTINGS);
  times.push(Number(process.hrtime.bigint() - t) / 1e6);
  patchBytes = Buffer.from(r.answer.response.patch ?? "", "base64").length;
}
times.sort((a, b) => a - b);
const mean = times.reduce((a, b) => a + b, 0) / n;
const line = `reviewInjection, N=${n}: mean ${mean.toFixed(3)} ms, p50 ${times[Math.floor(n / 2)]!.toFixed(3)} ms, p99 ${times[Math.floor(n * 0.99)]!.toFixed(3)} ms; JSON patch ${patchBytes} bytes`;
console.log(line);
const out = path.join(path.dirname(fileURLToPath(import.meta.url)), "results", "inject-review.md");
writeFileSync(out, `# Sidecar injector cost per pod (in process)\n\n\`npx tsx bench/inject-review.ts ${n}\`, ${new Date().toISOString()}, load average ${(await import("node:os")).loadavg()[0]!.toFixed(1)} on a shared 2-core machine:\n\n${line}\n`);
