// Istio's analysis message types that Weft reports: the one table of codes, names and levels
// (written from Istio's public list, istio.io/docs/reference/config/analysis). Validation sets
// `ValidationIssue.code` from here; `weft analyze` prints every issue with its message type:
// the issue's own code, else IST0106 SchemaValidationError for an error and IST0133
// SchemaWarning for a warning (what istioctl reports for a resource that fails its schema checks).
import type { ValidationIssue } from "./types.js";

/** Istio's message levels, worst first. */
export const ANALYSIS_LEVELS = ["Error", "Warning", "Info"] as const;
export type AnalysisLevel = (typeof ANALYSIS_LEVELS)[number];

export interface AnalysisMessageType {
  code: string;
  name: string;
  level: AnalysisLevel;
  description: string;
}

function messageType(code: string, name: string, level: AnalysisLevel, description: string): AnalysisMessageType {
  return { code, name, level, description };
}

export const REFERENCED_RESOURCE_NOT_FOUND = messageType("IST0101", "ReferencedResourceNotFound", "Error", "A resource being referenced does not exist.");
export const SCHEMA_VALIDATION_ERROR = messageType("IST0106", "SchemaValidationError", "Error", "The resource has a schema validation error.");
export const CONFLICTING_MESH_GATEWAY_VIRTUAL_SERVICE_HOSTS = messageType(
  "IST0109",
  "ConflictingMeshGatewayVirtualServiceHosts",
  "Error",
  "Conflicting hosts on VirtualServices associated with mesh gateway",
);
export const CONFLICTING_SIDECAR_WORKLOAD_SELECTORS = messageType("IST0110", "ConflictingSidecarWorkloadSelectors", "Error", "A Sidecar resource selects the same workloads as another Sidecar resource");
export const MULTIPLE_SIDECARS_WITHOUT_WORKLOAD_SELECTORS = messageType(
  "IST0111",
  "MultipleSidecarsWithoutWorkloadSelectors",
  "Error",
  "More than one sidecar resource in a namespace has no workload selector",
);
export const VIRTUAL_SERVICE_DESTINATION_PORT_SELECTOR_REQUIRED = messageType(
  "IST0112",
  "VirtualServiceDestinationPortSelectorRequired",
  "Error",
  "A VirtualService routes to a service with more than one port exposed, but does not specify which to use.",
);
export const NO_SERVER_CERTIFICATE_VERIFICATION_DESTINATION_LEVEL = messageType(
  "IST0128",
  "NoServerCertificateVerificationDestinationLevel",
  "Warning",
  "No caCertificates are set in DestinationRule, this results in no verification of presented server certificate.",
);
export const NO_SERVER_CERTIFICATE_VERIFICATION_PORT_LEVEL = messageType(
  "IST0129",
  "NoServerCertificateVerificationPortLevel",
  "Warning",
  "No caCertificates are set in DestinationRule, this results in no verification of presented server certificate for traffic to a given port.",
);
export const VIRTUAL_SERVICE_UNREACHABLE_RULE = messageType("IST0130", "VirtualServiceUnreachableRule", "Warning", "A VirtualService rule will never be used because a previous rule uses the same match.");
export const VIRTUAL_SERVICE_INEFFECTIVE_MATCH = messageType("IST0131", "VirtualServiceIneffectiveMatch", "Info", "A VirtualService rule match duplicates a match in a previous rule.");
export const VIRTUAL_SERVICE_HOST_NOT_FOUND_IN_GATEWAY = messageType("IST0132", "VirtualServiceHostNotFoundInGateway", "Warning", "Host defined in VirtualService not found in Gateway.");
export const SCHEMA_WARNING = messageType("IST0133", "SchemaWarning", "Warning", "The resource has a schema validation warning.");
export const CONFLICTING_GATEWAYS = messageType("IST0145", "ConflictingGateways", "Error", "Gateway should not have the same selector, port and matched hosts of server");
export const GATEWAY_PORT_NOT_DEFINED_ON_SERVICE = messageType("IST0162", "GatewayPortNotDefinedOnService", "Warning", "Gateway port not exposed by service");

/** Every message type Weft reports, by code order (`weft analyze --list-analyzers` prints them). */
export const ANALYSIS_MESSAGE_TYPES: readonly AnalysisMessageType[] = [
  REFERENCED_RESOURCE_NOT_FOUND,
  SCHEMA_VALIDATION_ERROR,
  CONFLICTING_MESH_GATEWAY_VIRTUAL_SERVICE_HOSTS,
  CONFLICTING_SIDECAR_WORKLOAD_SELECTORS,
  MULTIPLE_SIDECARS_WITHOUT_WORKLOAD_SELECTORS,
  VIRTUAL_SERVICE_DESTINATION_PORT_SELECTOR_REQUIRED,
  NO_SERVER_CERTIFICATE_VERIFICATION_DESTINATION_LEVEL,
  NO_SERVER_CERTIFICATE_VERIFICATION_PORT_LEVEL,
  VIRTUAL_SERVICE_UNREACHABLE_RULE,
  VIRTUAL_SERVICE_INEFFECTIVE_MATCH,
  VIRTUAL_SERVICE_HOST_NOT_FOUND_IN_GATEWAY,
  SCHEMA_WARNING,
  CONFLICTING_GATEWAYS,
  GATEWAY_PORT_NOT_DEFINED_ON_SERVICE,
];

const BY_CODE = new Map(ANALYSIS_MESSAGE_TYPES.map((t) => [t.code, t]));

/** The message type of a validation issue: its own code, else SchemaValidationError (errors) or SchemaWarning (warnings). */
export function messageTypeOf(issue: Pick<ValidationIssue, "code" | "severity">): AnalysisMessageType {
  const own = issue.code !== undefined ? BY_CODE.get(issue.code) : undefined;
  if (own) return own;
  return issue.severity === "error" ? SCHEMA_VALIDATION_ERROR : SCHEMA_WARNING;
}

/** Whether `level` is at least as bad as `threshold` (Error > Warning > Info). */
export function isAtLeast(level: AnalysisLevel, threshold: AnalysisLevel): boolean {
  return ANALYSIS_LEVELS.indexOf(level) <= ANALYSIS_LEVELS.indexOf(threshold);
}
