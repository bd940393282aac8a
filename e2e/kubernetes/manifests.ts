// Applying manifests to the test cluster with @kubernetes/client-node (server-side apply, as
// `kubectl apply --server-side` does), and Weft's Istio CRDs from manifests/crds/.
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  ApiextensionsV1Api, KubernetesObjectApi, PatchStrategy, type KubeConfig, type KubernetesObject,
} from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";

export const CRD_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "manifests", "crds");
const FIELD_MANAGER = "weft-tests";

/** Parses multi-document YAML into objects (empty documents skipped). */
export function parseManifests(yaml: string, where = "manifest"): KubernetesObject[] {
  return parseAllDocuments(yaml).flatMap((doc, i) => {
    if (doc.errors.length > 0) throw new Error(`${where}: document ${i}: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as KubernetesObject | null;
    if (value === null || value === undefined) return [];
    if (!value.apiVersion || !value.kind || !value.metadata?.name) {
      throw new Error(`${where}: document ${i}: needs apiVersion, kind and metadata.name`);
    }
    return [value];
  });
}

/**
 * Server-side applies every object (creating or updating it); `namespace` fills in
 * metadata.namespace where a namespaced object has none. Returns what the apiserver stored.
 */
export async function applyManifests(kubeConfig: KubeConfig, objects: KubernetesObject[], opts: { namespace?: string } = {}): Promise<KubernetesObject[]> {
  const client = KubernetesObjectApi.makeApiClient(kubeConfig);
  const out: KubernetesObject[] = [];
  for (const object of objects) {
    const body = opts.namespace && !object.metadata?.namespace
      ? { ...object, metadata: { ...object.metadata, namespace: opts.namespace } } : object;
    try {
      out.push(await client.patch(body, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply));
    } catch (err) {
      const e = err as { message?: string; body?: unknown };
      const body = typeof e.body === "string" ? e.body : JSON.stringify(e.body ?? "");
      throw new Error(`applying ${object.kind} ${object.metadata?.namespace ?? opts.namespace ?? ""}/${object.metadata?.name}: ` +
        `${e.message?.split("\n")[0] ?? String(err)} ${body.slice(0, 500)}`);
    }
  }
  return out;
}

/** applyManifests() of a YAML text. */
export function applyYaml(kubeConfig: KubeConfig, yaml: string, opts: { namespace?: string; where?: string } = {}): Promise<KubernetesObject[]> {
  return applyManifests(kubeConfig, parseManifests(yaml, opts.where), opts);
}

/** The CRD files Weft ships (manifests/crds/*.yaml). */
export function crdFiles(): string[] {
  return readdirSync(CRD_DIR).filter((f) => f.endsWith(".yaml")).sort().map((f) => path.join(CRD_DIR, f));
}

/** Applies Weft's Istio CRDs and waits until the apiserver serves every one (condition Established). */
export async function applyCrds(kubeConfig: KubeConfig, timeoutMs = 30_000): Promise<string[]> {
  const objects = crdFiles().flatMap((file) => parseManifests(readFileSync(file, "utf8"), file));
  await applyManifests(kubeConfig, objects);
  const api = kubeConfig.makeApiClient(ApiextensionsV1Api);
  const names = objects.map((o) => o.metadata!.name!);
  const deadline = Date.now() + timeoutMs;
  for (const name of names) {
    for (;;) {
      const crd = await api.readCustomResourceDefinition({ name });
      if (crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established in ${timeoutMs} ms: ${JSON.stringify(crd.status?.conditions ?? [])}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return names;
}
