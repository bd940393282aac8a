// VHDS (Virtual Host Discovery) views of route configurations, for delta ADS clients.
//
// A sidecar's outbound route configuration holds one virtual host per visible service (1000
// services: ~423 KB); sent whole, one VirtualService edit costs every proxy the whole
// configuration. Envoy's VHDS (delta xDS only) lets a route configuration name a `vhds` config
// source instead of listing its virtual hosts: Envoy then subscribes to resources of type
// envoy.config.route.v3.VirtualHost with the route configuration's name, and takes every
// VirtualHost resource named "<route configuration name>/<anything>" as one of its virtual
// hosts (namespace matching: the part before the last "/"); a removal names the resource.
// Envoy keys these virtual hosts by VirtualHost.name, so the virtual host's own name must be
// the resource name (a removal is matched against it).
//
// So each route configuration with virtual hosts has two more forms here, derived from the
// translator's output (EnvoyFilter patches already applied):
// - the route configuration without virtual hosts, with `vhds` (view VHDS_ROUTES);
// - each virtual host renamed "<route configuration>/<virtual host>" (type VirtualHost; a "/"
//   in the virtual host's name escaped as %2F).
// Every route configuration is served this way, also one without virtual hosts: Envoy keeps
// the virtual hosts it got through VHDS when a route configuration drops `vhds` (so an inline
// form after a vhds one would keep serving removed virtual hosts), and it holds a listener
// until the first VirtualHost update naming its route configuration (so one without any would
// wait forever). A route configuration without virtual hosts therefore gets one placeholder,
// EMPTY_PLACEHOLDER: a domain under the reserved .invalid TLD (RFC 2606) and no route — a
// request for it gets the 404 it gets from a configuration with no virtual host at all.
import type { ConfigSource } from "../../generated/envoy/config/core/v3/config_source.js";
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import type { VirtualHost } from "../../generated/envoy/config/route/v3/route_components.js";
import { ADS_CONFIG_SOURCE } from "../envoy/builders.js";

/** The view of a snapshot holding the route configurations served to VHDS clients. */
export const VHDS_ROUTES = "vhds-routes";

/** Where Envoy fetches the virtual hosts: the same (delta) ADS stream, no initial fetch timeout (as routes). */
export const VHDS_CONFIG_SOURCE: ConfigSource = { ...ADS_CONFIG_SOURCE, initialFetchTimeout: { seconds: 0, nanos: 0 } };

/**
 * The VirtualHost resource name of a route configuration's virtual host (Envoy's VHDS naming).
 * Envoy takes the part before the LAST "/" as the route configuration, so a "/" in the virtual
 * host's name (a gateway's "namespace/host:port") is escaped ("%" first, so names stay distinct).
 */
export function virtualHostResourceName(routeConfigurationName: string, virtualHostName: string): string {
  return `${routeConfigurationName}/${virtualHostName.replaceAll("%", "%25").replaceAll("/", "%2F")}`;
}

/** The route configuration a VirtualHost resource belongs to ("" when the name has no "/"), as Envoy matches it. */
export function routeConfigurationOf(virtualHostResourceName: string): string {
  const at = virtualHostResourceName.lastIndexOf("/");
  return at < 0 ? "" : virtualHostResourceName.slice(0, at);
}

/** The virtual host of a route configuration that has none (see above); never matches a real host. */
export const EMPTY_PLACEHOLDER: VirtualHost = Object.freeze({ name: "weft-no-virtual-host", domains: Object.freeze(["weft-no-virtual-host.invalid"]) as string[], routes: Object.freeze([]) as [] });

/** The route configuration served with `vhds` (no inline virtual hosts). */
export function vhdsRouteConfiguration(rc: RouteConfiguration): RouteConfiguration {
  return { ...rc, virtualHosts: [], vhds: { configSource: VHDS_CONFIG_SOURCE } };
}

/** The virtual hosts served through VHDS for a route configuration (EMPTY_PLACEHOLDER when it has none). */
export function vhdsVirtualHosts(rc: RouteConfiguration): readonly VirtualHost[] {
  return rc.virtualHosts?.length ? rc.virtualHosts : [EMPTY_PLACEHOLDER];
}

/**
 * The VirtualHost resources of route configurations, one message per (virtual host, route
 * configuration), kept as long as the virtual host object lives: a rebuilt part whose
 * virtual hosts were reused (the translator reuses unchanged ones) makes no new messages, so
 * their encodings (remembered by message object) are reused too. Owned by a ResourceEncoder.
 */
export class VirtualHostResources {
  private readonly renamed = new WeakMap<VirtualHost, Map<string, VirtualHost>>();

  /** The virtual host as served through VHDS for route configuration `rc`. */
  of(rc: string, vh: VirtualHost): VirtualHost {
    let byRoute = this.renamed.get(vh);
    if (!byRoute) this.renamed.set(vh, (byRoute = new Map()));
    let renamed = byRoute.get(rc);
    if (!renamed) byRoute.set(rc, (renamed = Object.freeze({ ...vh, name: virtualHostResourceName(rc, vh.name ?? "") })));
    return renamed;
  }
}
