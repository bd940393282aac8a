// Which replica is the leader. Every replica serves xDS; only the leader does the cluster-wide
// writes (status, webhook caBundle, driving a root rotation). Code that must run on one replica
// only asks `isLeader()` before acting and subscribes with `onChange` to start or stop work.
//
// Two implementations: `alwaysLeader()` (file mode, a single replica, tests) and
// `LeaseLeaderElection` (lease-leader-election.ts: a coordination.k8s.io/v1 Lease, as
// client-go's leaderelection package does).

export interface LeaderElection {
  /** This replica's name in the Lease (holderIdentity). */
  readonly identity: string;
  /** True while this replica holds the lease (and has renewed it within the renew deadline). */
  isLeader(): boolean;
  /** The holder this replica last saw (itself when leader); undefined when none is known. */
  leaderIdentity(): string | undefined;
  /**
   * Called with true when this replica becomes leader, false when it stops being leader.
   * Not called for the current state at subscription: read isLeader() for that. Returns unsubscribe.
   */
  onChange(listener: (leader: boolean) => void): () => void;
  /** Starts campaigning (idempotent). */
  start(): void;
  /** Stops campaigning; a leader releases the lease so another replica takes over at once. */
  close(): Promise<void>;
}

/** A replica that is always the leader: file mode or a single replica. */
export function alwaysLeader(identity = "single-replica"): LeaderElection {
  return {
    identity,
    isLeader: () => true,
    leaderIdentity: () => identity,
    onChange: () => () => {},
    start: () => {},
    close: async () => {},
  };
}

/** Keeps the listeners of a LeaderElection and tells them of changes (a listener that throws does not stop the others). */
export class LeaderListeners {
  private readonly listeners = new Set<(leader: boolean) => void>();

  constructor(private readonly onListenerError: (err: unknown) => void) {}

  add(listener: (leader: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  notify(leader: boolean): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(leader);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
