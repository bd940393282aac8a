// What translating one model computes once and reuses across proxies: each service's clusters
// and endpoints (so proxies with equal inputs get the very same objects, encoded once), the
// VirtualServices bound to a gateway set, per-namespace service indexes, the label keys routes
// read, and compiled EnvoyFilter patches.
//
// Translators stay pure: a memo only saves work (same inputs, same output, with or without it).
// It belongs to whoever translates — the mesh controller makes one per model it builds and drops
// it with that model (DESIGN.md rule 8); a translation without one gets a fresh memo. Before,
// these were module-level WeakMaps keyed by the model.
import type { Cluster } from "../../generated/envoy/config/cluster/v3/cluster.js";
import type { ClusterLoadAssignment } from "../../generated/envoy/config/endpoint/v3/endpoint.js";
import type { EnvoyFilter } from "../api/envoy-filter.js";
import type { VirtualService } from "../api/types.js";
import type { MeshModel, ServiceModel } from "../model/mesh-model.js";
import type { CompiledPatch } from "./envoy-filter-patches.js";

export type ServiceClusters = { clusters: Cluster[]; endpoints: ClusterLoadAssignment[] };

export class TranslationMemo {
  private model?: MeshModel;
  private readonly clusters = new Map<string, ServiceClusters>();
  private readonly bound = new Map<string, VirtualService[]>();
  private readonly patches = new Map<EnvoyFilter, CompiledPatch[]>();
  private internal?: ReadonlyMap<string, readonly ServiceModel[]>;
  private routeLabels?: ReadonlySet<string>;

  /** Binds the memo to the model it serves; a memo is valid for one model only (throws otherwise). */
  of(model: MeshModel): this {
    if (this.model === undefined) this.model = model;
    else if (this.model !== model) throw new Error("a TranslationMemo was used with a second model; make one per model");
    return this;
  }

  /** A service's clusters and endpoints, by everything they depend on (see serviceClusters). */
  serviceClusters(key: string, make: () => ServiceClusters): ServiceClusters {
    let found = this.clusters.get(key);
    if (!found) this.clusters.set(key, (found = make()));
    return found;
  }

  /** The VirtualServices bound to a set of gateways and visible from a namespace. */
  boundVirtualServices(key: string, make: () => VirtualService[]): VirtualService[] {
    let found = this.bound.get(key);
    if (!found) this.bound.set(key, (found = make()));
    return found;
  }

  /** MESH_INTERNAL services by namespace. */
  internalServicesByNamespace(make: () => ReadonlyMap<string, readonly ServiceModel[]>): ReadonlyMap<string, readonly ServiceModel[]> {
    return (this.internal ??= make());
  }

  /** Label keys VirtualService routes read (sourceLabels). */
  routeSourceLabelKeys(make: () => ReadonlySet<string>): ReadonlySet<string> {
    return (this.routeLabels ??= make());
  }

  /** An EnvoyFilter's patches, read once. */
  compiledPatches(filter: EnvoyFilter, make: () => CompiledPatch[]): CompiledPatch[] {
    let found = this.patches.get(filter);
    if (!found) this.patches.set(filter, (found = make()));
    return found;
  }
}
