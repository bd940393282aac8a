// Envoy messages as protobuf JSON, read and merged through their schema: what EnvoyFilter
// patch values are written in (YAML/JSON protobuf with `"@type"` in every Any, field names in
// snake_case or lowerCamelCase, durations as "1.5s", wrappers as plain values, Struct as any
// JSON). The schema (generated/envoy-schema.json, written by `npm run gen` from the protos in
// scripts/proto-targets.txt and scripts/proto-schema-targets.txt) is protobufjs reflection;
// Weft's own resources (ts-proto objects) cross into it as bytes, so one encoding is the truth.
//
// A message here is a `ProtoObject`: protobufjs's plain form (`Type.toObject`), fields by their
// .proto names, Any as { type_url, value: bytes }, 64-bit integers as decimal strings.
import { createRequire } from "node:module";
import protobuf from "protobufjs";

export type ProtoObject = { [field: string]: unknown };

/** A patch value that does not read as the message it must be: `path` names the field. */
export class ProtoJsonError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

const TYPE_PREFIX = "type.googleapis.com/";
const INT32 = new Set(["int32", "sint32", "sfixed32"]);
const UINT32 = new Set(["uint32", "fixed32"]);
const INT64 = new Set(["int64", "sint64", "sfixed64", "uint64", "fixed64"]);
const WRAPPERS: Record<string, string> = {
  "google.protobuf.DoubleValue": "double",
  "google.protobuf.FloatValue": "float",
  "google.protobuf.Int64Value": "int64",
  "google.protobuf.UInt64Value": "uint64",
  "google.protobuf.Int32Value": "int32",
  "google.protobuf.UInt32Value": "uint32",
  "google.protobuf.BoolValue": "bool",
  "google.protobuf.StringValue": "string",
  "google.protobuf.BytesValue": "bytes",
};
const TYPED_STRUCTS = new Set(["udpa.type.v1.TypedStruct", "xds.type.v3.TypedStruct"]);
/** The most nested messages a value may have (Any included); deeper is refused, never a stack overflow. */
const MAX_DEPTH = 64;

function lowerCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function fullName(t: protobuf.Type): string {
  return t.fullName.replace(/^\./, "");
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 37) + "..." : v)}`;
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return String(v);
}

function join(path: string, key: string | number): string {
  return typeof key === "number" ? `${path}[${key}]` : path ? `${path}.${key}` : key;
}

/**
 * Envoy's message types as protobufjs reflection, loaded from the generated schema. Immutable
 * once built; `EnvoySchema.get()` builds it on first use (it is generated code, not state).
 */
export class EnvoySchema {
  private static instance: EnvoySchema | undefined;
  private readonly root: protobuf.Root;
  /** Per message type: field by .proto name and by lowerCamelCase JSON name. */
  private readonly fieldIndex = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();

  private constructor() {
    const require = createRequire(import.meta.url);
    const json = require("../../generated/envoy-schema.json") as protobuf.INamespace;
    this.root = protobuf.Root.fromJSON(json);
    this.root.resolveAll();
  }

  static get(): EnvoySchema {
    return (EnvoySchema.instance ??= new EnvoySchema());
  }

  /** The message type named by a type URL or full name, if the schema has it. */
  type(nameOrUrl: string): protobuf.Type | undefined {
    const name = nameOrUrl.startsWith(TYPE_PREFIX) ? nameOrUrl.slice(TYPE_PREFIX.length) : nameOrUrl;
    if (!/^[A-Za-z_][\w.]*$/.test(name)) return undefined;
    try {
      const found = this.root.lookup(name);
      return found instanceof protobuf.Type ? found : undefined;
    } catch {
      return undefined;
    }
  }

  private requireType(name: string): protobuf.Type {
    const t = this.type(name);
    if (!t) throw new Error(`the Envoy schema has no message ${name}`);
    return t;
  }

  private fields(t: protobuf.Type): Map<string, protobuf.Field> {
    let m = this.fieldIndex.get(t);
    if (!m) {
      m = new Map();
      for (const f of t.fieldsArray) {
        m.set(f.name, f);
        m.set(lowerCamel(f.name), f);
        if (f.options?.["json_name"]) m.set(String(f.options["json_name"]), f);
      }
      this.fieldIndex.set(t, m);
    }
    return m;
  }

  // -------------------------------------------------------------------------------------
  // Reading protobuf JSON

  /**
   * Reads a JSON value as the message `typeName`, strictly: wrong types, unknown enum values,
   * unknown `@type`s and two members of one oneof throw ProtoJsonError naming the field.
   * Unknown fields are left out and listed in `unknownFields` (Istio warns about them).
   */
  fromJson(typeName: string, value: unknown, path = ""): { message: ProtoObject; unknownFields: string[] } {
    const unknownFields: string[] = [];
    const message = this.readMessage(this.requireType(typeName), value, path, unknownFields, 0);
    // Canonical form: what encoding and decoding give (default scalars dropped, enums as numbers).
    return { message: this.decode(typeName, this.encode(typeName, message)), unknownFields };
  }

  private readMessage(t: protobuf.Type, value: unknown, path: string, unknown: string[], depth: number): ProtoObject {
    if (depth > MAX_DEPTH) throw new ProtoJsonError(path, `nested more than ${MAX_DEPTH} messages deep`);
    const special = this.readWellKnown(t, value, path, unknown, depth);
    if (special !== undefined) return special;
    if (!isPlainObject(value)) throw new ProtoJsonError(path, `expected a mapping (${fullName(t)}), found ${describe(value)}`);
    const out: ProtoObject = {};
    const oneofSet = new Map<string, string>();
    const index = this.fields(t);
    for (const [key, v] of Object.entries(value)) {
      const f = index.get(key);
      const at = join(path, key);
      if (!f) {
        unknown.push(`${at} (no such field in ${fullName(t)})`);
        continue;
      }
      if (v === null && f.resolvedType?.fullName !== ".google.protobuf.Value") continue; // null = not set
      if (f.partOf) {
        const other = oneofSet.get(f.partOf.name);
        if (other && other !== f.name) throw new ProtoJsonError(at, `${other} and ${f.name} are both set, but only one of them may be (oneof ${f.partOf.name} of ${fullName(t)})`);
        oneofSet.set(f.partOf.name, f.name);
      }
      if (f.name in out) throw new ProtoJsonError(at, `field ${f.name} is given twice (as ${f.name} and ${lowerCamel(f.name)})`);
      out[f.name] = this.readField(f, v, at, unknown, depth);
    }
    if (TYPED_STRUCTS.has(fullName(t))) this.checkTypedStruct(value, path, unknown, depth);
    return out;
  }

  /**
   * A TypedStruct carries an extension's config as a Struct next to its type URL; Envoy reads
   * the Struct as that type, so Weft checks it the same way (an unknown type URL is left to Envoy).
   */
  private checkTypedStruct(value: Record<string, unknown>, path: string, unknown: string[], depth: number): void {
    const url = value["type_url"] ?? value["typeUrl"];
    const inner = typeof url === "string" ? this.type(url) : undefined;
    if (inner && value["value"] !== undefined && value["value"] !== null) this.readMessage(inner, value["value"], join(path, "value"), unknown, depth + 1);
  }

  private readField(f: protobuf.Field, v: unknown, path: string, unknown: string[], depth: number): unknown {
    if (f.map) {
      if (!isPlainObject(v)) throw new ProtoJsonError(path, `expected a mapping, found ${describe(v)}`);
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = this.readSingle(f, item, join(path, k), unknown, depth);
      return out;
    }
    if (f.repeated) {
      if (!Array.isArray(v)) throw new ProtoJsonError(path, `expected a list, found ${describe(v)}`);
      return v.map((item, i) => this.readSingle(f, item, join(path, i), unknown, depth));
    }
    return this.readSingle(f, v, path, unknown, depth);
  }

  private readSingle(f: protobuf.Field, v: unknown, path: string, unknown: string[], depth: number): unknown {
    const rt = f.resolvedType;
    if (rt instanceof protobuf.Type) return this.readMessage(rt, v, path, unknown, depth + 1);
    if (rt instanceof protobuf.Enum) return readEnum(rt, v, path);
    return readScalar(f.type, v, path);
  }

  /** JSON forms of well-known types; undefined when `t` has none. */
  private readWellKnown(t: protobuf.Type, value: unknown, path: string, unknown: string[], depth: number): ProtoObject | undefined {
    const name = fullName(t);
    const wrapped = WRAPPERS[name];
    if (wrapped) return { value: readScalar(wrapped, value, path) };
    switch (name) {
      case "google.protobuf.Duration": {
        const m = typeof value === "string" ? /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(value) : null;
        if (!m) throw new ProtoJsonError(path, `expected a duration in seconds such as "1s" or "0.25s", found ${describe(value)}`);
        const sign = m[1] ? -1 : 1;
        return { seconds: String(sign * Number(m[2])), nanos: sign * Number((m[3] ?? "").padEnd(9, "0")) };
      }
      case "google.protobuf.Timestamp": {
        const ms = typeof value === "string" ? Date.parse(value) : NaN;
        if (!Number.isFinite(ms)) throw new ProtoJsonError(path, `expected an RFC 3339 time, found ${describe(value)}`);
        return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
      }
      case "google.protobuf.FieldMask":
        if (typeof value !== "string") throw new ProtoJsonError(path, `expected a comma-separated list of paths, found ${describe(value)}`);
        return { paths: value ? value.split(",").map((p) => p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)) : [] };
      case "google.protobuf.Struct":
        if (!isPlainObject(value)) throw new ProtoJsonError(path, `expected a mapping, found ${describe(value)}`);
        return { fields: Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.readValue(v, join(path, k), depth)])) };
      case "google.protobuf.Value":
        return this.readValue(value, path, depth);
      case "google.protobuf.ListValue":
        if (!Array.isArray(value)) throw new ProtoJsonError(path, `expected a list, found ${describe(value)}`);
        return { values: value.map((v, i) => this.readValue(v, join(path, i), depth)) };
      case "google.protobuf.Any": {
        if (!isPlainObject(value)) throw new ProtoJsonError(path, `expected a mapping with "@type", found ${describe(value)}`);
        const url = value["@type"];
        if (typeof url !== "string" || !url) throw new ProtoJsonError(join(path, "@type"), `an Any needs "@type" (e.g. "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua")`);
        const inner = this.type(url);
        if (!inner) throw new ProtoJsonError(join(path, "@type"), `unknown type ${JSON.stringify(url)}: not an Envoy v3 message Weft knows (see scripts/proto-schema-targets.txt)${url.includes(".v2.") ? "; v2 types are gone: use the v3 API" : ""}`);
        const { "@type": _t, ...rest } = value;
        const innerName = fullName(inner);
        const special = innerName.startsWith("google.protobuf.") && (WRAPPERS[innerName] || /Duration|Timestamp|FieldMask|Struct|Value|ListValue/.test(innerName));
        const body = this.readMessage(inner, special ? rest["value"] : rest, path, unknown, depth + 1);
        return { type_url: url.startsWith(TYPE_PREFIX) ? url : `${TYPE_PREFIX}${url.replace(/^.*\//, "")}`, value: this.encode(innerName, body) };
      }
      default:
        return undefined;
    }
  }

  /** google.protobuf.Value from any JSON value (its field names as the schema spells them). */
  private readValue(v: unknown, path: string, depth: number): ProtoObject {
    if (depth > MAX_DEPTH) throw new ProtoJsonError(path, `nested more than ${MAX_DEPTH} levels deep`);
    const field = (json: string) => this.fields(this.requireType("google.protobuf.Value")).get(json)!.name;
    if (v === null || v === undefined) return { [field("nullValue")]: 0 };
    if (typeof v === "number") return { [field("numberValue")]: v };
    if (typeof v === "string") return { [field("stringValue")]: v };
    if (typeof v === "boolean") return { [field("boolValue")]: v };
    if (Array.isArray(v)) return { [field("listValue")]: { values: v.map((x, i) => this.readValue(x, join(path, i), depth + 1)) } };
    if (isPlainObject(v)) return { [field("structValue")]: { fields: Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.readValue(x, join(path, k), depth + 1)])) } };
    throw new ProtoJsonError(path, `expected a JSON value, found ${describe(v)}`);
  }

  // -------------------------------------------------------------------------------------
  // Bytes, ts-proto objects and merging

  encode(typeName: string, message: ProtoObject): Uint8Array {
    const t = this.requireType(typeName);
    return t.encode(t.fromObject(message)).finish();
  }

  decode(typeName: string, bytes: Uint8Array): ProtoObject {
    const t = this.requireType(typeName);
    return t.toObject(t.decode(bytes), { longs: String, defaults: false, arrays: false }) as ProtoObject;
  }

  /**
   * Readable protobuf JSON of an encoded message (enums by name, 64-bit integers as strings,
   * bytes as base64), every Any of a known type expanded to { "@type", ...fields }, as Envoy's
   * config dump shows them. Field names as in the .proto files.
   */
  toReadableJson(typeName: string, bytes: Uint8Array): unknown {
    const t = this.requireType(typeName);
    return this.expandAnys(t.toObject(t.decode(bytes), { longs: String, enums: String, bytes: String, json: true }));
  }

  private expandAnys(v: unknown): unknown {
    if (Array.isArray(v)) return v.map((x) => this.expandAnys(x));
    if (!isPlainObject(v)) return v;
    const keys = Object.keys(v);
    // An Any's value is base64 in JSON (a TypedStruct, with the same field names, holds a Struct).
    if (typeof v["type_url"] === "string" && (v["value"] === undefined || typeof v["value"] === "string") && keys.every((k) => k === "type_url" || k === "value")) {
      const t = this.type(v["type_url"]);
      if (t) return { "@type": v["type_url"], ...(this.toReadableJson(fullName(t), Buffer.from((v["value"] as string | undefined) ?? "", "base64")) as object) };
    }
    return Object.fromEntries(keys.map((k) => [k, this.expandAnys(v[k])]));
  }

  /** The message inside an Any, if its type is known. */
  unpack(any: unknown): { typeName: string; message: ProtoObject } | undefined {
    if (!isPlainObject(any) || typeof any["type_url"] !== "string") return undefined;
    const t = this.type(any["type_url"]);
    if (!t) return undefined;
    const value = any["value"] instanceof Uint8Array ? any["value"] : new Uint8Array();
    return { typeName: fullName(t), message: this.decode(fullName(t), value) };
  }

  pack(typeName: string, message: ProtoObject): ProtoObject {
    return { type_url: `${TYPE_PREFIX}${typeName}`, value: this.encode(typeName, message) };
  }

  /**
   * Protobuf merge of `src` into a copy of `dst` (both of type `typeName`): set scalars
   * replace, messages merge field by field, lists are appended, map entries replace by key,
   * setting one member of a oneof clears the others. An Any whose type URL is the same on both
   * sides is merged inside (Istio's rule for typed_config); otherwise it is replaced.
   */
  merge(typeName: string, dst: ProtoObject, src: ProtoObject): ProtoObject {
    return this.mergeType(this.requireType(typeName), dst, src);
  }

  private mergeType(t: protobuf.Type, dst: ProtoObject, src: ProtoObject): ProtoObject {
    const out: ProtoObject = { ...dst };
    if (fullName(t) === "google.protobuf.Any") {
      if (dst["type_url"] === src["type_url"]) {
        const a = this.unpack(dst);
        const b = this.unpack(src);
        if (a && b) return this.pack(a.typeName, this.merge(a.typeName, a.message, b.message));
      }
      return { ...src };
    }
    for (const [key, v] of Object.entries(src)) {
      const f = t.fields[key];
      if (!f) continue;
      if (f.partOf) for (const member of f.partOf.fieldsArray) if (member.name !== key) delete out[member.name];
      const current = out[key];
      if (f.map) out[key] = { ...(isPlainObject(current) ? current : {}), ...(v as object) };
      else if (f.repeated) out[key] = [...(Array.isArray(current) ? current : []), ...(v as unknown[])];
      else if (f.resolvedType instanceof protobuf.Type && isPlainObject(current) && isPlainObject(v)) out[key] = this.mergeType(f.resolvedType, current, v);
      else out[key] = v;
    }
    return out;
  }
}

function readEnum(e: protobuf.Enum, v: unknown, path: string): number {
  if (typeof v === "string" && Object.hasOwn(e.values, v)) return e.values[v]!;
  if (typeof v === "number" && Number.isInteger(v)) return v;
  const names = Object.keys(e.values);
  throw new ProtoJsonError(path, `expected one of ${names.slice(0, 12).join(", ")}${names.length > 12 ? ", ..." : ""}, found ${describe(v)}`);
}

function readScalar(type: string, v: unknown, path: string): unknown {
  const integer = (min: number, max: number): number => {
    const n = typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) throw new ProtoJsonError(path, `expected an integer from ${min} to ${max}, found ${describe(v)}`);
    return n;
  };
  if (INT32.has(type)) return integer(-(2 ** 31), 2 ** 31 - 1);
  if (UINT32.has(type)) return integer(0, 2 ** 32 - 1);
  if (INT64.has(type)) {
    const s = typeof v === "number" && Number.isSafeInteger(v) ? String(v) : typeof v === "string" && /^-?\d{1,20}$/.test(v) ? v : undefined;
    if (s === undefined || (type.startsWith("u") || type.startsWith("fixed") ? s.startsWith("-") : false)) throw new ProtoJsonError(path, `expected an integer (${type}), found ${describe(v)}`);
    return s;
  }
  switch (type) {
    case "double":
    case "float": {
      if (typeof v === "number") return v;
      if (typeof v === "string" && (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(v) || ["NaN", "Infinity", "-Infinity"].includes(v))) return Number(v);
      throw new ProtoJsonError(path, `expected a number, found ${describe(v)}`);
    }
    case "bool":
      if (typeof v !== "boolean") throw new ProtoJsonError(path, `expected true or false, found ${describe(v)}`);
      return v;
    case "string":
      if (typeof v !== "string") throw new ProtoJsonError(path, `expected a string, found ${describe(v)}`);
      return v;
    case "bytes":
      if (typeof v !== "string" || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) throw new ProtoJsonError(path, `expected base64 bytes, found ${describe(v)}`);
      return Buffer.from(v, "base64");
    default:
      throw new ProtoJsonError(path, `unsupported field type ${type}`);
  }
}

