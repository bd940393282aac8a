// The mesh settings file (`weft serve --mesh-config FILE`): Istio's MeshConfig as YAML — what
// Istio keeps under the key `mesh` of the ConfigMap `istio` in istio-system. The file may be the
// MeshConfig itself or that ConfigMap. Weft reads rootNamespace, outboundTrafficPolicy and the
// telemetry settings (extensionProviders, defaultProviders, accessLogFile/Encoding/Format,
// defaultConfig.tracing.sampling) and the ext_authz providers AuthorizationPolicy CUSTOM names
// (extensionProviders of kind envoyExtAuthzHttp / envoyExtAuthzGrpc); other MeshConfig fields
// are warnings ("not used by Weft").
import { CheckedObject, describeValue, isDnsLabel, isMapping, IssueCollector } from "./field-checks.js";
import { checkMeshTelemetrySettings, EMPTY_TELEMETRY_SETTINGS, type MeshTelemetrySettings } from "./telemetry/extension-providers.js";
import { checkExtAuthzProviders, type ExtAuthzProvider } from "./security/ext-authz-providers.js";
import { parseDocuments } from "./validate-resource.js";
import type { ValidationIssue } from "./types.js";

export interface MeshSettingsFile {
  rootNamespace?: string;
  outboundTrafficPolicy?: "ALLOW_ANY" | "REGISTRY_ONLY";
  telemetry: MeshTelemetrySettings;
  /** extensionProviders of kind envoyExtAuthzHttp / envoyExtAuthzGrpc (AuthorizationPolicy CUSTOM). */
  authorizationProviders: ExtAuthzProvider[];
}

const READ_FIELDS = ["rootNamespace", "outboundTrafficPolicy", "extensionProviders", "defaultProviders", "accessLogFile", "accessLogEncoding", "accessLogFormat", "defaultConfig", "enableTracing"] as const;

/** Largest mesh settings file read (Istio's ConfigMap is bounded by Kubernetes' 1 MiB). */
export const MAX_MESH_SETTINGS_BYTES = 1024 * 1024;

/** Reads the settings from the file's text; errors mean the file must not be used. */
export function readMeshSettings(text: string, file: string): { settings: MeshSettingsFile; issues: ValidationIssue[] } {
  const empty = { settings: { telemetry: EMPTY_TELEMETRY_SETTINGS, authorizationProviders: [] } };
  const c = new IssueCollector({ file, document: 1 }, "MeshConfig");
  if (text.length > MAX_MESH_SETTINGS_BYTES) {
    c.error("(file)", `expected at most ${MAX_MESH_SETTINGS_BYTES} bytes of mesh settings, found ${text.length}`);
    return { ...empty, issues: c.issues };
  }
  const parsed = parseDocuments(text, file);
  if (parsed.issues.some((i) => i.severity === "error")) return { ...empty, issues: parsed.issues };
  if (parsed.docs.length !== 1) {
    c.error("(file)", `expected one YAML document (Istio's MeshConfig, or the ConfigMap holding it under data.mesh), found ${parsed.docs.length}`);
    return { ...empty, issues: c.issues };
  }
  let value = parsed.docs[0]!.value;
  if (isMapping(value) && value["kind"] === "ConfigMap") {
    const data = isMapping(value["data"]) ? value["data"]["mesh"] : undefined;
    if (typeof data !== "string") {
      c.error("data.mesh", `expected the MeshConfig as a YAML string under data.mesh, found ${describeValue(data)}`);
      return { ...empty, issues: c.issues };
    }
    const inner = parseDocuments(data, `${file} (data.mesh)`);
    if (inner.issues.some((i) => i.severity === "error")) return { ...empty, issues: inner.issues };
    value = inner.docs[0]?.value ?? {};
  }
  if (!isMapping(value)) {
    c.error("(document)", `expected Istio's MeshConfig (a mapping such as "extensionProviders: [...]"), found ${describeValue(value)}`);
    return { ...empty, issues: c.issues };
  }
  const o = new CheckedObject(c, "", value);
  for (const key of Object.keys(value)) {
    if (!(READ_FIELDS as readonly string[]).includes(key)) c.warning(key, `not used by Weft (it reads ${READ_FIELDS.join(", ")}); ignored`);
  }
  const rootNamespace = o.string("rootNamespace", { nonEmpty: true });
  if (rootNamespace !== undefined && !isDnsLabel(rootNamespace)) c.error("rootNamespace", `expected a namespace name, found ${describeValue(rootNamespace)}`);
  const outbound = o.object("outboundTrafficPolicy", ["mode"]);
  const mode = outbound?.enumValue("mode", ["ALLOW_ANY", "REGISTRY_ONLY"] as const);
  o.boolean("enableTracing");
  const telemetry = checkMeshTelemetrySettings(o);
  const authorizationProviders = checkExtAuthzProviders(o);
  if (value["enableTracing"] === false) {
    // Istio: enableTracing false turns tracing off whatever the providers say.
    telemetry.defaultProviders = { ...telemetry.defaultProviders, tracing: [] };
  }
  if (c.errorCount > 0) return { ...empty, issues: c.issues };
  return {
    settings: { ...(rootNamespace ? { rootNamespace } : {}), ...(mode ? { outboundTrafficPolicy: mode } : {}), telemetry, authorizationProviders },
    issues: c.issues,
  };
}
