// Which Istio resources a proxy's NACK is about: Envoy's rejection text, read against the
// resources of the rejected type the proxy was sent, mapped back to the resources that
// produced them. Pure. Conservative: a resource is named only on evidence; a NACK whose text
// points at nothing Weft can trace stays unattributed (it is still in /debug/syncz and logs).
//
// - RDS: Envoy quotes the offending value ("regex '/(a){300}' RE2 program size of ..."). Every
//   route of the sent RouteConfigurations carrying a quoted value is found; the VirtualService
//   that produced the route is read from its decorator ("<name>.<namespace>:<rule>", as
//   http-routes.ts writes it). VHDS (delta clients get virtual hosts as resources of their own):
//   the same, over the VirtualHost resources sent.
// - CDS: Envoy names the clusters ("Error adding/updating cluster(s) outbound|9080|v1|reviews...:
//   ..."). An outbound cluster's settings come from the DestinationRule that applies to its host
//   for the proxy's namespace; without one, from the ServiceEntry that declared the host.
// - LDS, EDS, SDS: not attributed (a listener mixes many resources; endpoints and secrets come
//   from the registry and the CA).
import type { CachedResource } from "../cache/snapshot.js";
import { XDS_CODECS, XDS_TYPES } from "../envoy/type-urls.js";
import { namespaceOf, type MeshModel } from "../model/mesh-model.js";
import { destinationRuleFor } from "../translate/traffic-policy.js";
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";

/** At most this many quoted values are looked for in one message. */
const MAX_FRAGMENTS = 8;
/** Shorter quoted values are too common to be evidence. */
const MIN_FRAGMENT_CHARS = 3;
/** Strings looked at per route (a route with more is cut, never crashes). */
const MAX_STRINGS_PER_ROUTE = 2000;

/** Values Envoy quoted in its message ('...'). */
export function quotedValues(message: string): string[] {
  const out: string[] = [];
  for (const m of message.matchAll(/'([^'\n]{3,1000})'/g)) {
    if (m[1]!.length >= MIN_FRAGMENT_CHARS && !out.includes(m[1]!)) out.push(m[1]!);
    if (out.length >= MAX_FRAGMENTS) break;
  }
  return out;
}

/** "reviews.bookinfo:0" -> VirtualService/bookinfo/reviews (a namespace has no dots; a name may). */
export function virtualServiceOfDecorator(operation: string): string | undefined {
  const colon = operation.indexOf(":");
  if (colon <= 0) return undefined;
  const head = operation.slice(0, colon);
  const dot = head.lastIndexOf(".");
  if (dot <= 0 || dot === head.length - 1) return undefined;
  return `VirtualService/${head.slice(dot + 1)}/${head.slice(0, dot)}`;
}

function collectStrings(value: unknown, out: string[]): void {
  if (out.length >= MAX_STRINGS_PER_ROUTE) return;
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) for (const v of value) collectStrings(v, out);
  else if (value && typeof value === "object" && !(value instanceof Uint8Array)) for (const v of Object.values(value)) collectStrings(v, out);
}

export interface NackToAttribute {
  /** Short type name ("rds", "cds", ...). */
  type: string;
  message: string;
  /** The resources of that type the proxy was sent (its snapshot's). */
  resources: ReadonlyMap<string, CachedResource>;
  /** The proxy's namespace (which DestinationRule applies depends on it). */
  proxyNamespace?: string;
}

/** Decoded RouteConfigurations (a VirtualHost: a configuration of one), by type and content version: decode each body once per pass. */
export type RouteDecodeCache = Map<string, RouteConfiguration>;

/** Keys ("VirtualService/ns/name") of the resources the NACK is about, sorted; [] when unclear. */
export function attributeNack(nack: NackToAttribute, model: MeshModel, decoded: RouteDecodeCache = new Map()): string[] {
  const keys = new Set<string>();
  if (nack.type === "rds" || nack.type === "vhds") {
    const fragments = quotedValues(nack.message);
    if (fragments.length === 0) return [];
    const known = new Set(model.virtualServices.map((vs) => `VirtualService/${namespaceOf(vs)}/${vs.metadata.name}`));
    for (const resource of nack.resources.values()) {
      // VHDS (delta clients): the resources are virtual hosts, seen here as a configuration of one.
      const key = `${nack.type}\u0000${resource.version}`;
      let config = decoded.get(key);
      if (!config) {
        config = nack.type === "rds" ? XDS_CODECS[XDS_TYPES.route].decode(resource.body) : { virtualHosts: [XDS_CODECS[XDS_TYPES.virtualHost].decode(resource.body)] };
        decoded.set(key, config);
      }
      for (const vhost of config.virtualHosts ?? []) {
        for (const route of vhost.routes ?? []) {
          const strings: string[] = [];
          collectStrings(route.match, strings);
          collectStrings(route.route, strings);
          collectStrings(route.redirect, strings);
          collectStrings(route.requestHeadersToAdd, strings);
          collectStrings(route.responseHeadersToAdd, strings);
          if (!strings.some((s) => fragments.some((f) => s === f || s.includes(f)))) continue;
          const key = route.decorator?.operation ? virtualServiceOfDecorator(route.decorator.operation) : undefined;
          if (key && known.has(key)) keys.add(key);
        }
      }
    }
  } else if (nack.type === "cds") {
    for (const m of nack.message.matchAll(/outbound\|(\d{1,5})\|([^|\s]*)\|([A-Za-z0-9.*_-]{1,253})/g)) {
      const service = model.serviceByHost.get(m[3]!);
      if (!service) continue;
      const dr = destinationRuleFor(model, service, nack.proxyNamespace ?? service.namespace);
      if (dr) keys.add(`DestinationRule/${namespaceOf(dr)}/${dr.metadata.name}`);
      else if (service.origin) keys.add(service.origin);
    }
  }
  return [...keys].sort();
}
