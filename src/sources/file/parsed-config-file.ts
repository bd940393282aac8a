// One config file, parsed and validated per resource: what the file source keeps per file (and
// reuses while the file's identity is unchanged). Mesh-wide checks happen later, over all sources.
import { parseDocumentsSteps, validateResource } from "../../api/validate-resource.js";
import { runToEnd, type Steps } from "../../work/work-steps.js";
import { resourceKey, type ValidationIssue } from "../../api/types.js";
import type { SourceEntry } from "../config-source.js";
import { readKubernetesManifest, type ManifestRecord } from "./kubernetes-manifests.js";

export interface ParsedConfigFile {
  file: string;
  /** Bytes read (0 when the file could not be read). */
  bytes: number;
  entries: SourceEntry[];
  /** Problems of documents that name no resource, or an ignored one, and are not errors. */
  unnamedIssues: ValidationIssue[];
  /** Errors not tied to one resource: an unreadable file, YAML syntax errors, unnamed documents. */
  unattributedErrors: ValidationIssue[];
  /** YAML warnings. */
  otherIssues: ValidationIssue[];
  /** Signs of a file caught while being written. */
  endsMidLine: boolean;
  yamlErrors: boolean;
  /** Errors in this file's entries. */
  entryErrors: number;
  /** Kubernetes Services, Endpoints, EndpointSlices and Pods read from this file (registry input). */
  manifests: ManifestRecord[];
}

export function parseConfigFile(file: string, text: string, bytes: number): ParsedConfigFile {
  return runToEnd(parseConfigFileSteps(file, text, bytes));
}

/** parseConfigFile in steps: the reading in pieces of whole documents, then one document validated per step. */
export function* parseConfigFileSteps(file: string, text: string, bytes: number): Steps<ParsedConfigFile> {
  const result: ParsedConfigFile = { file, bytes, entries: [], unnamedIssues: [], unattributedErrors: [], otherIssues: [], endsMidLine: text.length > 0 && !text.endsWith("\n"), yamlErrors: false, entryErrors: 0, manifests: [] };
  const parsed = yield* parseDocumentsSteps(text, file);
  for (const issue of parsed.issues) {
    if (issue.severity === "error") {
      result.unattributedErrors.push(issue);
      result.yamlErrors = true;
    } else result.otherIssues.push(issue);
  }
  for (const { document, value } of parsed.docs) {
    yield;
    const manifest = readKubernetesManifest(value, { file, document });
    if (manifest === "skip") continue;
    if (manifest) {
      result.manifests.push(manifest);
      continue;
    }
    // The parsed document is referenced nowhere else: validated without a copy.
    const { resource, issues, declaredHosts } = validateResource(value, { file, document }, { owned: true });
    const label = issues[0]?.resource ?? (resource ? resourceKey(resource) : "(unknown)");
    const errors = issues.filter((i) => i.severity === "error").length;
    if (label === "(unknown)" && errors > 0) result.unattributedErrors.push(...issues);
    else if (label !== "(unknown)" && (resource || errors > 0)) {
      result.entries.push({ key: label, source: { file, document }, ...(resource ? { resource } : { declaredHosts: declaredHosts ?? [] }), issues });
      result.entryErrors += errors;
    } else result.unnamedIssues.push(...issues); // warnings only: an ignored kind, an unnamed document
  }
  return result;
}

/** A file that could not be read: one error, nothing else. */
export function unreadableConfigFile(file: string, message: string): ParsedConfigFile {
  return {
    file,
    bytes: 0,
    entries: [],
    unnamedIssues: [],
    unattributedErrors: [{ file, document: 0, resource: "(unknown)", field: "(file)", message, severity: "error" }],
    otherIssues: [],
    endsMidLine: false,
    yamlErrors: false,
    entryErrors: 0,
    manifests: [],
  };
}
