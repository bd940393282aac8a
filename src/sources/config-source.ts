// The config-source seam: what every source of mesh configuration (a directory of YAML, a
// Kubernetes cluster, ...) gives the ConfigAggregator, and nothing more. The runner and the
// aggregator know only this interface; a new source implements it and is handed to
// `startMeshRunner({ sources: [...] })` — the runner never names a concrete source.
//
// The contract in one paragraph: a source keeps its own view of its resources. Whenever that
// view may have changed it calls `listener.changed()` (cheap, as often as it likes). The
// aggregator debounces those calls, then asks `snapshot()` for the source's complete current
// state, checks the merged state of all sources as a mesh, keeps the last valid version of
// anything that became invalid or unreadable, and pushes the result. A source that is not
// synced (first list not done, relisting after a watch expired) says `synced: false`, and the
// aggregator keeps using that source's last synced snapshot — an incomplete list is never
// mistaken for deletions.
import { isAbsolute } from "node:path";
import type { SourceRef, Sourced, ValidationIssue } from "../api/types.js";

export interface ConfigSource {
  /**
   * For logs and messages, short and specific: "directory config/", "kubernetes (kubeconfig ~/.kube/config)".
   * Two sources of one aggregator have different names.
   */
  readonly name: string;
  /**
   * A reference to the source as a whole, for problems about the source itself (e.g. "this
   * change removes most of the mesh"): a file source gives `{ file: <dir>, document: 0 }`,
   * a cluster `{ cluster, kind: "", name: "", resourceVersion: "" }`.
   */
  readonly origin: SourceRef;
  /**
   * Starts watching. Call `listener.changed()` each time the content may have changed, from
   * now until close(); never call it synchronously from within snapshot(). Resolve once the
   * source is running (it need not be synced yet: report that in snapshot()). Reject only if
   * it can never run (bad flags); transient trouble (a server away) is the source's to retry,
   * with `synced: false` until it is back. A source that is never started is still
   * snapshotted once (`weft validate`): snapshot() must work without start().
   */
  start(listener: SourceListener): Promise<void>;
  /**
   * The source's complete current state, built from what it holds now. Synchronous and
   * side-effect free towards the aggregator (no listener calls); the aggregator calls it after
   * start(), after each debounced change, and once without start() for one-shot validation.
   * The returned object belongs to the aggregator, which never mutates it; the source may
   * reuse entries and issue objects across snapshots (a parse cache) for the same reason.
   */
  snapshot(): SourceSnapshot;
  /**
   * Optional: does the expensive part of the next snapshot() ahead of it, giving the event
   * loop back between pieces (the file source parses changed files one at a time), so a large
   * reload does not block the process. snapshot() must stay complete and correct without it
   * and whatever changed in between.
   */
  prepare?(): Promise<void>;
  /** Stops watching: no timers, watches, sockets or listener calls left behind. Idempotent. */
  close(): Promise<void>;
}

export interface SourceListener {
  /** "My content may have changed": the aggregator will call snapshot() after its debounce. */
  changed(): void;
}

/**
 * A source's complete state at one moment. Everything the source holds is in `entries`
 * (named resources, valid or not) or `issues` (problems not tied to one named resource);
 * `unreadable` says which places could not be read, so that what was there is kept.
 */
export interface SourceSnapshot {
  /**
   * False while the state is incomplete: the first list has not finished, or a relist is in
   * progress (e.g. after a Kubernetes watch answered 410 Gone). The aggregator then ignores
   * this snapshot entirely and goes on using this source's last synced one (before the first,
   * the source contributes nothing and the runner does not report ready). Report true only
   * for a complete view: a resource absent from a synced snapshot is deleted.
   */
  synced: boolean;
  /**
   * Every named resource the source holds, in a stable order (the order of messages and of
   * "first definition wins"). `resource` is present when it passed its own checks
   * (`validateResource`); absent when its current version is invalid, in which case `issues`
   * holds at least one error and the aggregator keeps the resource's last valid version.
   */
  entries: SourceEntry[];
  /** Problems not tied to one named resource: an unreadable file, YAML syntax errors, unnamed documents, warnings. */
  issues: ValidationIssue[];
  /**
   * Places that could not be read completely (a file with a YAML syntax error, a file being
   * rewritten, a directory that vanished). A resource whose last valid version came from a
   * covered place (see `placeOf`) and that appears nowhere in this snapshot is kept, and
   * "keeping the last valid version of ..." is added to the errors among `issues` here. The
   * `issues` here are the same objects as in `SourceSnapshot.issues` (listed there too).
   */
  unreadable: UnreadablePlace[];
}

export interface SourceEntry {
  /** `resourceKey` of the resource: "VirtualService/default/reviews". Also for an invalid one. */
  key: string;
  /** Where this version was read. */
  source: SourceRef;
  /** The validated resource; absent when this version is invalid. */
  resource?: Sourced["resource"];
  /** Problems of this version (warnings alone leave it valid). */
  issues: ValidationIssue[];
  /** For an invalid version: the hosts it would declare (so references to it say "exists but is invalid"). */
  declaredHosts?: string[];
}

export interface UnreadablePlace {
  /** A `placeOf` value, or a prefix of one ending before a "/": a directory covers the files under it. */
  place: string;
  /** The problems that explain why (each also in `SourceSnapshot.issues`). */
  issues: ValidationIssue[];
}

/**
 * A place a resource was read from, as a path: the file for a FileRef; for a cluster object
 * "kubernetes/<cluster>/<kind>/<namespace>/<name>" (so "kubernetes/<cluster>/<kind>" covers a kind).
 */
export function placeOf(ref: SourceRef): string {
  if ("file" in ref) return ref.file;
  return ["kubernetes", ref.cluster, ref.kind, ref.namespace ?? "", ref.name].join("/");
}

/** Whether `place` (from `UnreadablePlace`) covers the place of `ref`. */
export function placeCovers(place: string, ref: SourceRef): boolean {
  const p = placeOf(ref);
  if (place === ".") return "file" in ref && !isAbsolute(p); // the current directory covers every relative path
  return p === place || p.startsWith(place.endsWith("/") ? place : `${place}/`);
}
