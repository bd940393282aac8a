// Response frames shared between streams: the same resources at the same version are the
// same bytes for every proxy that gets them, nonce included.
//
// A nonce only has to be unique within one stream (it pairs a response with its ACK), so a
// shared response carries one nonce of its own, drawn from a namespace per-stream nonces never
// use ("_" prefix). A stream sends at most one response per type at a time and never re-sends a
// NACKed one, so even the same shared frame sent twice to one stream is answered unambiguously.
// Before, each stream appended its own nonce: one copy of the whole response per stream (a
// 423 KB route configuration to 2000 proxies was 847 MB of copies).

/** An encoded response and the nonce it carries. */
export interface Frame {
  readonly bytes: Buffer;
  readonly nonce: string;
}

/** Shared frames, keyed weakly by what was sent (a resource, or a whole type's map). */
const sharedFrames = new WeakMap<object, Map<string, Frame>>();
let sharedNonces = 0;

/**
 * The frame for `key` (the resources sent) and `variant` (type, version, ...): encoded once with
 * a shared nonce. Without a key, encoded with the stream's own `nonce`.
 */
export function sharedFrame(key: object | undefined, variant: string, nonce: string, encode: (nonce: string) => Buffer): Frame {
  if (!key) return { bytes: encode(nonce), nonce };
  let byVariant = sharedFrames.get(key);
  if (!byVariant) sharedFrames.set(key, (byVariant = new Map()));
  let frame = byVariant.get(variant);
  if (!frame) {
    const shared = `_${(++sharedNonces).toString(36)}`;
    frame = { bytes: encode(shared), nonce: shared };
    if (byVariant.size > 8) byVariant.clear(); // a resource shared at many versions: keep it small
    byVariant.set(variant, frame);
  }
  return frame;
}
