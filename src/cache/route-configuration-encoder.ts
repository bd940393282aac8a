// Encodes RouteConfigurations from per-virtual-host frames. A sidecar's outbound route
// configuration holds one virtual host per visible service (thousands); after a change to a
// few services only their virtual hosts are new objects, so encoding the others again is
// wasted work. The protobuf encoding of a message is the concatenation of its fields'
// encodings, and the generated encoder writes `name` (field 1), then every virtual host
// (field 2, each tag + length + bytes), then the other fields; so
//   encode({name}) ‖ encode({virtualHosts: [vh]}) for each vh ‖ encode(the rest)
// is byte-identical to encode(whole message) — same content hash, same version.
// Frames are kept per VirtualHost object (a memo of a pure function, not change detection;
// which virtual hosts are rebuilt is decided by the model diff). The encoder belongs to its
// user (the mesh controller) and is dropped with it; frames go with their virtual hosts.
import type { RouteConfiguration } from "../../generated/envoy/config/route/v3/route.js";
import type { VirtualHost } from "../../generated/envoy/config/route/v3/route_components.js";
import { encodeMessage } from "../envoy/any.js";
import { XDS_TYPES, type XdsResourceTypes, type XdsTypeUrl } from "../envoy/type-urls.js";
import type { MessageEncoder } from "./snapshot.js";

export class RouteConfigurationEncoder {
  private readonly frames = new WeakMap<VirtualHost, Buffer>();

  /** A MessageEncoder for ResourceSet.build: route configurations from frames, other types as usual. */
  readonly encode: MessageEncoder = <U extends XdsTypeUrl>(typeUrl: U, message: XdsResourceTypes[U]): Buffer =>
    typeUrl === XDS_TYPES.route ? this.encodeRoute(message as RouteConfiguration) : encodeMessage(typeUrl, message);

  encodeRoute(config: RouteConfiguration): Buffer {
    const { name, virtualHosts, ...rest } = config;
    const parts: Buffer[] = [encodeMessage(XDS_TYPES.route, { name })];
    for (const vh of virtualHosts ?? []) {
      let frame = this.frames.get(vh);
      if (!frame) {
        frame = encodeMessage(XDS_TYPES.route, { virtualHosts: [vh] });
        this.frames.set(vh, frame);
      }
      parts.push(frame);
    }
    parts.push(encodeMessage(XDS_TYPES.route, rest));
    return Buffer.concat(parts);
  }
}
