// PeerAuthentication -> the mTLS mode of one workload port. Pure; the listener wiring that
// acts on the mode lives elsewhere.
//
// Istio's precedence, most specific first:
//   1. the workload policy (same namespace, a selector with labels that match the workload):
//      its portLevelMtls entry for the port, then its mtls.mode;
//   2. the namespace policy (same namespace, no selector, or a selector without labels);
//   3. the mesh policy (root namespace, no selector).
// UNSET (or no mtls at all) inherits from the next level; when every level is unset the mode is
// PERMISSIVE. Istio picks the oldest policy when a level has several; creation times are not
// kept here, so the first by name wins (and validation of the mesh should warn about it).
import type { MtlsMode, PeerAuthentication } from "../../api/security/types.js";
import { selectorMatches } from "./authorization.js";

export type EffectiveMtlsMode = Exclude<MtlsMode, "UNSET">;

export interface MtlsWorkloadRef {
  namespace: string;
  labels: Readonly<Record<string, string>>;
  /** Istio's root namespace (usually "istio-system"): a policy there without selector is mesh-wide. */
  rootNamespace: string;
  /** The workload port (the port the workload listens on); omit for the workload-wide mode. */
  port?: number;
}

const DEFAULT_MODE: EffectiveMtlsMode = "PERMISSIVE";

function hasLabels(p: PeerAuthentication): boolean {
  return Object.keys(p.spec.selector?.matchLabels ?? {}).length > 0;
}

function firstByName(policies: readonly PeerAuthentication[]): PeerAuthentication | undefined {
  return [...policies].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0))[0];
}

function set(mode: MtlsMode | undefined): EffectiveMtlsMode | undefined {
  return mode === undefined || mode === "UNSET" ? undefined : mode;
}

/** The mTLS mode in force for a workload (and port), from the PeerAuthentications of the mesh. */
export function effectiveMtlsMode(policies: readonly PeerAuthentication[], workload: MtlsWorkloadRef): EffectiveMtlsMode {
  const ns = (p: PeerAuthentication) => p.metadata.namespace ?? "default";
  const workloadPolicy = firstByName(policies.filter((p) => ns(p) === workload.namespace && hasLabels(p) && selectorMatches(p.spec.selector, workload.labels)));
  const namespacePolicy = firstByName(policies.filter((p) => ns(p) === workload.namespace && !hasLabels(p)));
  const meshPolicy = firstByName(policies.filter((p) => ns(p) === workload.rootNamespace && !hasLabels(p)));

  const portMode = workload.port !== undefined && workloadPolicy ? set(workloadPolicy.spec.portLevelMtls?.[String(workload.port)]?.mode) : undefined;
  return portMode ?? set(workloadPolicy?.spec.mtls?.mode) ?? set(namespacePolicy?.spec.mtls?.mode) ?? set(meshPolicy?.spec.mtls?.mode) ?? DEFAULT_MODE;
}
