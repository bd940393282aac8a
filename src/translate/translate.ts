// Pure translation: (mesh model, proxy) -> the Envoy resources of that proxy's snapshot.
import type { SnapshotInput } from "../cache/snapshot.js";
import type { MeshModel } from "../model/mesh-model.js";
import type { ProxyModel } from "../model/proxy.js";
import { translateGateway } from "./gateway.js";
import { translateSidecar } from "./sidecar.js";

export function translateProxy(model: MeshModel, proxy: ProxyModel): SnapshotInput {
  return proxy.type === "router" ? translateGateway(model, proxy) : translateSidecar(model, proxy);
}
