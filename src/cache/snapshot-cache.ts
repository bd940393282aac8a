// Versioned snapshots keyed by proxy class (or node id), with watches so a new snapshot
// wakes exactly the streams of that key. A snapshot that fails its consistency check is
// refused and the last good one stays in force.
import { checkConsistency, type ConsistencyProblem } from "./consistency.js";
import type { Snapshot } from "./snapshot.js";

export type SnapshotListener = (snapshot: Snapshot) => void;

export class InconsistentSnapshotError extends Error {
  override name = "InconsistentSnapshotError";
  constructor(
    readonly key: string,
    readonly problems: ConsistencyProblem[],
  ) {
    super(
      `snapshot for "${key}" refused, the previous one stays in force: ` +
        problems.map((p) => `${p.resource}: ${p.message}`).join("; "),
    );
  }
}

export interface SnapshotCacheEvents {
  onSet?(key: string, snapshot: Snapshot): void;
  onRefused?(key: string, error: InconsistentSnapshotError): void;
}

/** The watch interface the xDS server depends on (house rule 1). */
export interface SnapshotSource {
  get(key: string): Snapshot | undefined;
  watch(key: string, listener: SnapshotListener): () => void;
}

export class SnapshotCache implements SnapshotSource {
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly watchers = new Map<string, Set<SnapshotListener>>();

  constructor(private readonly events: SnapshotCacheEvents = {}) {}

  /**
   * Installs a snapshot for a key after checking it. Throws InconsistentSnapshotError (and
   * keeps the previous snapshot) when the check fails. Returns false when it was identical
   * to the current one, in which case nobody is woken.
   */
  set(key: string, snapshot: Snapshot, opts: { skipConsistencyCheck?: boolean } = {}): boolean {
    if (!opts.skipConsistencyCheck) {
      const problems = checkConsistency(snapshot);
      if (problems.length > 0) {
        const error = new InconsistentSnapshotError(key, problems);
        this.events.onRefused?.(key, error);
        throw error;
      }
    }
    const previous = this.snapshots.get(key);
    if (previous && previous.version === snapshot.version) return false;
    this.snapshots.set(key, snapshot);
    this.events.onSet?.(key, snapshot);
    for (const listener of [...(this.watchers.get(key) ?? [])]) listener(snapshot);
    return true;
  }

  get(key: string): Snapshot | undefined {
    return this.snapshots.get(key);
  }

  keys(): string[] {
    return [...this.snapshots.keys()].sort();
  }

  delete(key: string): void {
    this.snapshots.delete(key);
  }

  watch(key: string, listener: SnapshotListener): () => void {
    let set = this.watchers.get(key);
    if (!set) this.watchers.set(key, (set = new Set()));
    set.add(listener);
    return () => {
      const current = this.watchers.get(key);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) this.watchers.delete(key);
    };
  }

  watcherCount(key?: string): number {
    if (key !== undefined) return this.watchers.get(key)?.size ?? 0;
    let n = 0;
    for (const set of this.watchers.values()) n += set.size;
    return n;
  }
}
