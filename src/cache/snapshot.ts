// An immutable, consistent set of xDS resources for one proxy class, encoded once.
// Versions come from content (house rule 4): a resource's version is a hash of its encoded
// bytes; a type's version is a hash of its sorted (name, version) pairs.
import { createHash } from "node:crypto";
import { encodeMessage } from "../envoy/any.js";
import { collectReferences, type SnapshotReferences } from "./references.js";
import { PUSH_ORDER, resourceName, type XdsResourceTypes, type XdsTypeUrl } from "../envoy/type-urls.js";

export interface CachedResource {
  readonly name: string;
  /** Content hash of `body`. */
  readonly version: string;
  /** The encoded message (the value of the Any that carries it). */
  readonly body: Buffer;
}

export interface TypeResources {
  /** Hash over every resource of this type; changes only when one of them does. */
  readonly version: string;
  readonly resources: ReadonlyMap<string, CachedResource>;
}

export type SnapshotInput = { [U in XdsTypeUrl]?: readonly XdsResourceTypes[U][] };

function hash(parts: readonly (string | Buffer)[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("base64url").slice(0, 16);
}

/** Version of a set of resources: stable for the same contents, whatever their order. */
export function versionOf(resources: Iterable<CachedResource>): string {
  const pairs = [...resources].map((r) => `${r.name}\u0000${r.version}\n`).sort();
  return pairs.length === 0 ? "empty" : hash(pairs);
}

export class Snapshot {
  private constructor(
    private readonly byType: ReadonlyMap<XdsTypeUrl, TypeResources>,
    /** The decoded resources, kept for consistency checks and debugging. */
    readonly input: SnapshotInput,
    /** EDS and RDS names that this snapshot's clusters and listeners fetch over ADS. */
    readonly references: SnapshotReferences,
  ) {}

  static build(input: SnapshotInput): Snapshot {
    const byType = new Map<XdsTypeUrl, TypeResources>();
    for (const typeUrl of PUSH_ORDER) {
      const list = (input[typeUrl] ?? []) as readonly XdsResourceTypes[typeof typeUrl][];
      const resources = new Map<string, CachedResource>();
      for (const message of list) {
        const name = resourceName(typeUrl, message);
        if (!name) throw new SnapshotError(`a ${shortType(typeUrl)} resource has no name`);
        if (resources.has(name)) throw new SnapshotError(`duplicate ${shortType(typeUrl)} resource "${name}"`);
        const body = encodeMessage(typeUrl, message);
        resources.set(name, { name, version: hash([body]), body });
      }
      const sorted = new Map([...resources.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      byType.set(typeUrl, { version: versionOf(sorted.values()), resources: sorted });
    }
    return new Snapshot(byType, input, collectReferences(input));
  }

  resources(typeUrl: XdsTypeUrl): TypeResources {
    return this.byType.get(typeUrl) ?? { version: "empty", resources: new Map() };
  }

  /** Summary version of the whole snapshot (for logs and status). */
  get version(): string {
    return hash(PUSH_ORDER.map((t) => `${t}=${this.resources(t).version};`));
  }
}

export class SnapshotError extends Error {
  override name = "SnapshotError";
}

function shortType(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf(".") + 1);
}
