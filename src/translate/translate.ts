// Pure translation: (mesh model, proxy) -> the Envoy resources of that proxy's snapshot.
import type { SnapshotInput } from "../cache/snapshot.js";
import type { MeshModel } from "../model/mesh-model.js";
import type { ProxyModel } from "../model/proxy.js";
import { translateGateway } from "./gateway.js";
import { translateSidecar } from "./sidecar.js";
import type { MeshSecurity } from "./mtls.js";

/** `security`: the mesh's trust domain and, for an authenticated proxy, its secrets (mTLS on). */
export function translateProxy(model: MeshModel, proxy: ProxyModel, security?: MeshSecurity): SnapshotInput {
  return proxy.type === "router" ? translateGateway(model, proxy, security) : translateSidecar(model, proxy, security);
}
