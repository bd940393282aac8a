// The translators' Bookinfo golden input as a MeshConfig, for controller and runner tests.
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import type { MeshConfig, NetworkingResource } from "../api/types.js";

const BOOKINFO = path.join(path.dirname(new URL(import.meta.url).pathname), "../translate/testdata/in/bookinfo.yaml");

/** Bookinfo (four services, reviews in three versions, an ingress gateway); `edit` rewrites or drops (undefined) resources. */
export function bookinfoConfig(edit: (r: NetworkingResource) => NetworkingResource | undefined = (r) => r): MeshConfig {
  const resources = parseAllDocuments(readFileSync(BOOKINFO, "utf8"))
    .map((d) => d.toJS() as NetworkingResource | null)
    .filter((r): r is NetworkingResource => !!r)
    .map((r) => edit(r))
    .filter((r): r is NetworkingResource => !!r)
    .map((resource, document) => ({ resource, source: { file: "bookinfo.yaml", document } }));
  return { resources, issues: [] };
}
