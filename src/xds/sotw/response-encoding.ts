// SotW DiscoveryResponses, encoded straight into a gRPC frame.
//
// At 2000 proxies (one proxy class each: nothing to share between streams) the initial sync
// spent a third of the server's CPU encoding responses with the generated protobuf encoder:
// it records one operation per field, copies every resource body into its buffer, and the
// frame for gRPC was a second copy of the whole message (profile: encodeResponse 32 %,
// Writer byte copies 10 %, Any.encode 9 %, and much of the 21 % GC). A DiscoveryResponse is
// a flat message around bytes that are already encoded, so it is written here by hand: the
// size computed first, one allocation holding the 5-byte gRPC header and the message, each
// body copied once. The bytes equal the generated encoder's (field order, defaults omitted);
// response-encoding.test.ts compares the two.
import type { CachedResource, TypeResources } from "../../cache/snapshot.js";
import type { XdsTypeUrl } from "../../envoy/type-urls.js";
import { GRPC_FRAME_HEADER_BYTES, PreframedMessage } from "../grpc-framing.js";
import type { Frame, SharedFrames } from "../shared-frames.js";

const VERSION_INFO = (1 << 3) | 2;
const RESOURCES = (2 << 3) | 2;
const TYPE_URL = (4 << 3) | 2;
const NONCE = (5 << 3) | 2;
const CONTROL_PLANE = (6 << 3) | 2;
/** Inside google.protobuf.Any and ControlPlane (the helpers below are shared with the delta encoder). */
const ANY_TYPE_URL = (1 << 3) | 2;
export const ANY_VALUE = (2 << 3) | 2;
const CONTROL_PLANE_IDENTIFIER = (1 << 3) | 2;

export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

export function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** Size of a length-delimited field (key + length + content) whose content is `len` bytes. */
export function fieldSize(len: number): number {
  return 1 + varintSize(len) + len;
}

/** Writes a string field unless the string is empty (as the generated encoder does). */
export function writeString(buf: Buffer, pos: number, key: number, value: Buffer): number {
  if (value.length === 0) return pos;
  buf[pos++] = key;
  pos = writeVarint(buf, pos, value.length);
  return pos + value.copy(buf, pos);
}

/** The `resources` fields (each an Any around a body) of a response of type `typeUrl`: their size and a writer. */
interface ResourceFields {
  size: number;
  write(out: Buffer, pos: number): number;
}

/** The Any's type_url field, the same for every resource of a response: encoded once. */
export function anyTypeFieldOf(typeBytes: Buffer): Buffer {
  const field = typeBytes.length === 0 ? Buffer.alloc(0) : Buffer.alloc(fieldSize(typeBytes.length));
  writeString(field, 0, ANY_TYPE_URL, typeBytes);
  return field;
}

function resourceFields(typeBytes: Buffer, resources: Iterable<CachedResource>): ResourceFields {
  const anyTypeField = anyTypeFieldOf(typeBytes);
  const list = Array.isArray(resources) ? (resources as readonly CachedResource[]) : [...resources];
  let size = 0;
  for (const r of list) size += fieldSize(anyTypeField.length + (r.body.length > 0 ? fieldSize(r.body.length) : 0));
  return {
    size,
    write(out, pos) {
      for (const r of list) {
        const body = r.body;
        out[pos++] = RESOURCES;
        pos = writeVarint(out, pos, anyTypeField.length + (body.length > 0 ? fieldSize(body.length) : 0));
        out.set(anyTypeField, pos);
        pos += anyTypeField.length;
        if (body.length > 0) {
          out[pos++] = ANY_VALUE;
          pos = writeVarint(out, pos, body.length);
          out.set(body, pos);
          pos += body.length;
        }
      }
      return pos;
    },
  };
}

/**
 * The `resources` fields of a response of type `typeUrl` carrying `resources`, as bytes: a
 * segment of a response, the same in every response that carries these resources in this order
 * (see encodeFramedSegments).
 */
export function encodeResourceFields(typeUrl: string, resources: Iterable<CachedResource>): Buffer {
  const fields = resourceFields(Buffer.from(typeUrl, "utf8"), resources);
  const out = Buffer.allocUnsafe(fields.size);
  const end = fields.write(out, 0);
  if (end !== out.length) throw new Error(`DiscoveryResponse encoding: wrote ${end} of ${out.length} resource bytes`);
  return out;
}

function encodeFramed(typeUrl: string, versionInfo: string, nonce: string, fields: ResourceFields, controlPlaneId: string): PreframedMessage {
  const typeBytes = Buffer.from(typeUrl, "utf8");
  const versionBytes = Buffer.from(versionInfo, "utf8");
  const nonceBytes = Buffer.from(nonce, "utf8");
  const idBytes = Buffer.from(controlPlaneId, "utf8");

  let size = 0;
  if (versionBytes.length > 0) size += fieldSize(versionBytes.length);
  size += fields.size;
  if (typeBytes.length > 0) size += fieldSize(typeBytes.length);
  if (nonceBytes.length > 0) size += fieldSize(nonceBytes.length);
  size += fieldSize(idBytes.length > 0 ? fieldSize(idBytes.length) : 0);

  const out = Buffer.allocUnsafe(GRPC_FRAME_HEADER_BYTES + size);
  out[0] = 0; // not compressed
  out.writeUInt32BE(size, 1);
  let pos = GRPC_FRAME_HEADER_BYTES;
  pos = writeString(out, pos, VERSION_INFO, versionBytes);
  pos = fields.write(out, pos);
  pos = writeString(out, pos, TYPE_URL, typeBytes);
  pos = writeString(out, pos, NONCE, nonceBytes);
  out[pos++] = CONTROL_PLANE;
  pos = writeVarint(out, pos, idBytes.length > 0 ? fieldSize(idBytes.length) : 0);
  pos = writeString(out, pos, CONTROL_PLANE_IDENTIFIER, idBytes);
  if (pos !== out.length) throw new Error(`DiscoveryResponse encoding: wrote ${pos} of ${out.length} bytes`);
  return new PreframedMessage(out);
}

/**
 * One DiscoveryResponse framed for gRPC (header + message, one allocation): the same bytes as
 * `DiscoveryResponse.encode({versionInfo, typeUrl, nonce, resources: [{typeUrl, value: body}],
 * controlPlane: {identifier}})`, behind the 5-byte header.
 */
export function encodeFramedResponse(typeUrl: string, versionInfo: string, nonce: string, resources: readonly CachedResource[], controlPlaneId: string): PreframedMessage {
  return encodeFramed(typeUrl, versionInfo, nonce, resourceFields(Buffer.from(typeUrl, "utf8"), resources), controlPlaneId);
}

/**
 * The same response as encodeFramedResponse for the resources whose fields `segments` are
 * (encodeResourceFields of consecutive runs of them, in order): each segment copied whole.
 */
export function encodeFramedSegments(typeUrl: string, versionInfo: string, nonce: string, segments: readonly Buffer[], controlPlaneId: string): PreframedMessage {
  let size = 0;
  for (const seg of segments) size += seg.length;
  const fields: ResourceFields = {
    size,
    write(out, pos) {
      for (const seg of segments) pos += seg.copy(out, pos);
      return pos;
    },
  };
  return encodeFramed(typeUrl, versionInfo, nonce, fields, controlPlaneId);
}

/** A response, its encoding shared (through `frames`) by every stream that sends the same resources at the same version. */
export function encodeDiscoveryResponse(
  frames: SharedFrames,
  typeUrl: XdsTypeUrl,
  versionInfo: string,
  nonce: string,
  resources: readonly CachedResource[],
  controlPlaneId: string,
  /**
   * What `resources` are, for sharing the encoding: the single resource, a shared subscription,
   * or a string when `versionInfo` names the content (a whole type's map at its version).
   */
  shareKey?: object | string,
): Frame {
  const key = shareKey ?? (resources.length === 1 ? resources[0] : undefined);
  return frames.frame(key, `sotw\u0000${typeUrl}\u0000${versionInfo}\u0000${controlPlaneId}\u0000${resources.length}`, nonce, (n) => encodeFramedResponse(typeUrl, versionInfo, n, resources, controlPlaneId));
}

/**
 * The same response as encodeFramedSegments, in pieces (see PreframedMessage): the gRPC header
 * and version_info, each segment as it is (no copy: a segment shared with other responses stays
 * one buffer), then type_url, nonce and control_plane.
 */
export function encodeFramedPieces(typeUrl: string, versionInfo: string, nonce: string, segments: readonly Buffer[], controlPlaneId: string): PreframedMessage {
  const typeBytes = Buffer.from(typeUrl, "utf8");
  const versionBytes = Buffer.from(versionInfo, "utf8");
  const nonceBytes = Buffer.from(nonce, "utf8");
  const idBytes = Buffer.from(controlPlaneId, "utf8");
  const headSize = versionBytes.length > 0 ? fieldSize(versionBytes.length) : 0;
  let tailSize = 0;
  if (typeBytes.length > 0) tailSize += fieldSize(typeBytes.length);
  if (nonceBytes.length > 0) tailSize += fieldSize(nonceBytes.length);
  tailSize += fieldSize(idBytes.length > 0 ? fieldSize(idBytes.length) : 0);
  let size = headSize + tailSize;
  for (const seg of segments) size += seg.length;

  const head = Buffer.allocUnsafe(GRPC_FRAME_HEADER_BYTES + headSize);
  head[0] = 0; // not compressed
  head.writeUInt32BE(size, 1);
  if (writeString(head, GRPC_FRAME_HEADER_BYTES, VERSION_INFO, versionBytes) !== head.length) throw new Error("DiscoveryResponse encoding: head");
  const tail = Buffer.allocUnsafe(tailSize);
  let pos = writeString(tail, 0, TYPE_URL, typeBytes);
  pos = writeString(tail, pos, NONCE, nonceBytes);
  tail[pos++] = CONTROL_PLANE;
  pos = writeVarint(tail, pos, idBytes.length > 0 ? fieldSize(idBytes.length) : 0);
  pos = writeString(tail, pos, CONTROL_PLANE_IDENTIFIER, idBytes);
  if (pos !== tail.length) throw new Error(`DiscoveryResponse encoding: wrote ${pos} of ${tail.length} tail bytes`);
  return new PreframedMessage(head, [...segments.filter((seg) => seg.length > 0), tail]);
}

/**
 * Parts of a type with at least this many resources are encoded once for every response that
 * carries them (SharedFrames.segment); smaller ones cost less to encode than to look up.
 */
const SEGMENT_MIN_RESOURCES = 64;

/**
 * A response carrying the whole of `typed` (a wildcard subscription), shared by every stream
 * that sends this type at this version (versions are content hashes). When `typed` is merged
 * from parts (Snapshot.compose), each large part is encoded once for every response that
 * carries it: at 2000 proxy classes, each CDS (1.2 MB) was one class's few inbound clusters
 * and the 3300 outbound clusters of its namespace, encoded again for each of 1000 classes. The
 * response goes out in pieces (encodeFramedPieces): the shared segments are not copied either.
 */
export function encodeWholeTypeResponse(frames: SharedFrames, typeUrl: XdsTypeUrl, typed: TypeResources, nonce: string, controlPlaneId: string): Frame {
  const count = typed.resources.size;
  return frames.frame(`whole-type`, `sotw\u0000${typeUrl}\u0000${typed.version}\u0000${controlPlaneId}\u0000${count}`, nonce, (n) => {
    if (!typed.parts) return encodeFramedResponse(typeUrl, typed.version, n, [...typed.resources.values()], controlPlaneId);
    const segments = typed.parts.map((part) =>
      part.resources.size >= SEGMENT_MIN_RESOURCES
        ? frames.segment(`${typeUrl}\u0000${part.version}`, () => encodeResourceFields(typeUrl, part.resources.values()))
        : encodeResourceFields(typeUrl, part.resources.values()),
    );
    // In pieces: the shared segments are written as they are, not copied into a frame per class.
    return encodeFramedPieces(typeUrl, typed.version, n, segments, controlPlaneId);
  });
}

/** One DiscoveryResponse, encoded (the message alone, not framed). */
export function encodeResponse(typeUrl: XdsTypeUrl, versionInfo: string, nonce: string, resources: readonly CachedResource[], controlPlaneId: string): Buffer {
  return encodeFramedResponse(typeUrl, versionInfo, nonce, resources, controlPlaneId).message;
}
