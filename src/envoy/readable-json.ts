// Readable JSON of Envoy resources for golden files and debugging: ts-proto's JSON, with
// every Any of a registered type expanded into {"@type": url, ...fields} like Envoy's own
// config dump, so a diff shows what changed.
import { Buffer } from "node:buffer";
import { EnvoySchema } from "./proto-json.js";
import { EXTENSION_CODECS, XDS_CODECS, type MessageCodec, type XdsResourceTypes, type XdsTypeUrl } from "./type-urls.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const CODECS: Record<string, MessageCodec<unknown>> = { ...(XDS_CODECS as Record<string, MessageCodec<unknown>>), ...(EXTENSION_CODECS as Record<string, MessageCodec<unknown>>) };

function expandAnys(value: Json): Json {
  if (Array.isArray(value)) return value.map(expandAnys);
  if (value === null || typeof value !== "object") return value;
  const keys = Object.keys(value);
  if (typeof value.typeUrl === "string" && keys.every((k) => k === "typeUrl" || k === "value")) {
    const codec = CODECS[value.typeUrl];
    if (codec) {
      const bytes = typeof value.value === "string" ? Buffer.from(value.value, "base64") : Buffer.alloc(0);
      return { "@type": value.typeUrl, ...(expandAnys(codec.toJSON(codec.decode(bytes)) as Json) as Record<string, Json>) };
    }
    // Types Weft does not generate itself (an EnvoyFilter's Lua, rate limit, ...): through the schema.
    const bytes = typeof value.value === "string" ? Buffer.from(value.value, "base64") : Buffer.alloc(0);
    const schema = EnvoySchema.get();
    if (schema.type(value.typeUrl)) return { "@type": value.typeUrl, ...(schema.toReadableJson(value.typeUrl.replace(/^.*\//, ""), bytes) as Record<string, Json>) };
  }
  return Object.fromEntries(keys.map((k) => [k, expandAnys(value[k]!)]));
}

export function resourceToJson<U extends XdsTypeUrl>(typeUrl: U, resource: XdsResourceTypes[U]): Json {
  const codec = XDS_CODECS[typeUrl] as MessageCodec<XdsResourceTypes[U]>;
  // Round-trip through the encoder so the JSON shows exactly what Envoy receives.
  return expandAnys(codec.toJSON(codec.decode(codec.encode(resource).finish())) as Json);
}
