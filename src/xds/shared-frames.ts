// Response frames shared between streams: the same resources at the same version are the
// same bytes for every proxy that gets them, except the nonce.
/**
 * Bytes of the response without its nonce, shared by every stream that sends the same
 * resources at the same version (e.g. a route configuration to a whole namespace's proxies):
 * encoded once, keyed weakly by what was sent (a resource, or a whole type's map).
 */
const sharedBodies = new WeakMap<object, Map<string, Buffer>>();

/** Field 5 (nonce), appended after the shared fields: protobuf accepts fields in any order. */
function nonceField(nonce: string): Buffer {
  const value = Buffer.from(nonce);
  const out = Buffer.alloc(2 + value.length);
  out[0] = (5 << 3) | 2;
  out[1] = value.length; // nonces are short base-36 counters (< 128 bytes)
  value.copy(out, 2);
  return out;
}

/** `encode("")` once per (key, variant), then the nonce appended per stream. */
export function sharedFrame(key: object | undefined, variant: string, nonce: string, encode: (nonce: string) => Buffer): Buffer {
  if (!key || nonce.length >= 128) return encode(nonce);
  let byVariant = sharedBodies.get(key);
  if (!byVariant) sharedBodies.set(key, (byVariant = new Map()));
  let body = byVariant.get(variant);
  if (!body) {
    body = encode("");
    if (byVariant.size > 8) byVariant.clear(); // a resource shared at many versions: keep it small
    byVariant.set(variant, body);
  }
  return Buffer.concat([body, nonceField(nonce)]);
}

