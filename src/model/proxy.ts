// A connected proxy as the translators see it: what kind (sidecar or gateway router), its
// namespace and labels, how its traffic is captured. Proxies with equal descriptions form a
// proxy class and share one generated snapshot.
import type { Node } from "../../generated/envoy/config/core/v3/base.js";

export type ProxyType = "sidecar" | "router";
export type CaptureMode = "transparent" | "explicit";

export interface ProxyModel {
  type: ProxyType;
  namespace: string;
  labels: Record<string, string>;
  capture: CaptureMode;
  /** "region/zone/subzone" from the node's locality, "" when unset. */
  locality: string;
  /** Explicit mode: loopback port the app sends outbound HTTP to (default 15080). */
  explicitPort?: number;
  /** The identity the proxy authenticated as (never taken from its own metadata). */
  identity?: { namespace: string; serviceAccount: string };
}

/** Node metadata keys Weft's bootstraps set (Istio's names where Istio has one). */
export const NODE_METADATA = {
  namespace: "NAMESPACE",
  labels: "LABELS", // JSON object of the workload's labels
  interceptionMode: "INTERCEPTION_MODE", // "REDIRECT" (transparent) or "NONE" (explicit)
  explicitPort: "WEFT_EXPLICIT_PORT", // explicit mode: the loopback port of the outbound HTTP listener
} as const;

/** Reads a proxy description from an Envoy node (id "sidecar~ip~name.ns~..." or "router~..."). */
export function proxyFromNode(node: Node): ProxyModel {
  const md = (node.metadata ?? {}) as Record<string, unknown>;
  const id = node.id ?? "";
  const type: ProxyType = id.startsWith("router~") ? "router" : "sidecar";
  let labels: Record<string, string> = {};
  const raw = md[NODE_METADATA.labels];
  if (typeof raw === "string") {
    try {
      const parsed = JSON.parse(raw) as unknown;
      if (parsed && typeof parsed === "object") labels = Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
    } catch {
      labels = {};
    }
  } else if (raw && typeof raw === "object") {
    labels = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, String(v)]));
  }
  const namespace = typeof md[NODE_METADATA.namespace] === "string" ? (md[NODE_METADATA.namespace] as string) : "default";
  const capture: CaptureMode = md[NODE_METADATA.interceptionMode] === "NONE" ? "explicit" : "transparent";
  const loc = node.locality;
  const locality = loc && (loc.region || loc.zone || loc.subZone) ? [loc.region ?? "", loc.zone ?? "", loc.subZone ?? ""].join("/").replace(/\/+$/, "") : "";
  const explicitPort = capture === "explicit" && md[NODE_METADATA.explicitPort] !== undefined ? Number(md[NODE_METADATA.explicitPort]) : undefined;
  return { type, namespace, labels, capture, locality, ...(explicitPort && Number.isInteger(explicitPort) ? { explicitPort } : {}) };
}

/** Stable key of a proxy class: equal keys get identical configuration. */
export function proxyClassKey(p: ProxyModel): string {
  const labels = Object.keys(p.labels)
    .sort()
    .map((k) => `${k}=${p.labels[k]}`)
    .join(",");
  const id = p.identity ? `/id=${p.identity.namespace}/${p.identity.serviceAccount}` : "";
  return `${p.type}/${p.namespace}/${p.capture}${p.explicitPort ? `:${p.explicitPort}` : ""}/${p.locality}/${labels}${id}`;
}

/** Whether two label sets are equal (absent = empty). */
export function sameLabels(a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>> | undefined): boolean {
  const ka = Object.keys(a ?? {});
  return ka.length === Object.keys(b ?? {}).length && ka.every((k) => Object.hasOwn(b ?? {}, k) && a![k] === b![k]);
}
