// Packing and unpacking google.protobuf.Any for the registered type URLs only.
import type { Any } from "../../generated/google/protobuf/any.js";
import {
  EXTENSION_CODECS,
  XDS_CODECS,
  type ExtensionMessageTypes,
  type ExtensionTypeUrl,
  type MessageCodec,
  type XdsResourceTypes,
  type XdsTypeUrl,
} from "./type-urls.js";

type KnownTypes = XdsResourceTypes & ExtensionMessageTypes;
export type KnownTypeUrl = XdsTypeUrl | ExtensionTypeUrl;

function codecFor<U extends KnownTypeUrl>(typeUrl: U): MessageCodec<KnownTypes[U]> {
  const codec = (XDS_CODECS as Record<string, unknown>)[typeUrl] ?? (EXTENSION_CODECS as Record<string, unknown>)[typeUrl];
  if (!codec) throw new Error(`no codec registered for type URL ${typeUrl}`);
  return codec as MessageCodec<KnownTypes[U]>;
}

/** Encodes a message of a registered type. */
export function encodeMessage<U extends KnownTypeUrl>(typeUrl: U, message: KnownTypes[U]): Buffer {
  const bytes = codecFor(typeUrl).encode(message).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Packs a message into an Any, e.g. for a filter's `typedConfig`. */
export function packAny<U extends KnownTypeUrl>(typeUrl: U, message: KnownTypes[U]): Any {
  return { typeUrl, value: encodeMessage(typeUrl, message) };
}

/** Unpacks an Any if it holds the given type, else returns undefined. */
export function unpackAny<U extends KnownTypeUrl>(typeUrl: U, any: Any | undefined): KnownTypes[U] | undefined {
  if (!any || any.typeUrl !== typeUrl || !any.value) return undefined;
  return codecFor(typeUrl).decode(any.value);
}
