// Identity of Kubernetes sidecars: a proxy sends its pod's projected ServiceAccount token; the
// API server's TokenReview (kubernetes-token-review.ts) says which ServiceAccount it belongs to
// and which pod it is bound to; that pod, as the Kubernetes source holds it, gives the
// class-defining facts (namespace, labels). Node metadata decides none of it.
//
// A stream's principal names the pod by namespace, name AND uid ("pod:<ns>/<name>/<uid>"), so
// a pod deleted and created again under the same name is another principal. When a pod goes
// away its cached reviews are dropped and its streams are ended (UNAUTHENTICATED); when its
// labels change its streams are ended with UNAVAILABLE so the proxy reconnects into the class
// of its new labels (as Istio's sidecars follow their pod's labels). When a ServiceAccount is
// deleted (or re-created: another uid), its cached reviews are dropped and the streams of every
// pod that authenticated with its tokens are ended at once (UNAUTHENTICATED); while the
// ServiceAccounts are known (listed), a token whose ServiceAccount is absent or has another uid
// proves nothing, even if a review answered before the deletion reached the API server's cache.
import { status as GrpcStatus } from "@grpc/grpc-js";
import type { Logger } from "../log/logger.js";
import type { Credential } from "./credential-store.js";
import type { TokenReviewer } from "./kubernetes-token-review.js";

/** The ServiceAccounts a cluster source holds (KubernetesSource with watchServiceAccounts). */
export interface ServiceAccountDirectory {
  /** False until they are listed: before that none is known to be missing. */
  readonly serviceAccountsSynced: boolean;
  serviceAccount(namespace: string, name: string): { uid: string } | undefined;
  /** Called after each change of a ServiceAccount (before/after undefined: added/removed); returns an unsubscribe. */
  onServiceAccountChange(listener: (before: ServiceAccountFacts | undefined, after: ServiceAccountFacts | undefined) => void): () => void;
}

export interface ServiceAccountFacts {
  namespace: string;
  name: string;
  uid: string;
}

/** What Weft knows of a pod (the Kubernetes source's record). */
export interface PodFacts {
  namespace: string;
  name: string;
  uid: string;
  serviceAccount: string;
  labels: Record<string, string>;
}

/** The pods a cluster source holds, and their changes. */
export interface PodDirectory {
  pod(namespace: string, name: string): PodFacts | undefined;
  /** Called after each change of a pod (before/after undefined: added/removed); returns an unsubscribe. */
  onPodChange(listener: (before: PodFacts | undefined, after: PodFacts | undefined) => void): () => void;
}

export interface PodIdentitiesOptions {
  logger: Logger;
  /** Ends the streams that authenticated as `principal`. */
  endStreamsOf: (principal: string, code: number, message: string) => void;
  /** How long a review naming a pod (or ServiceAccount) the source has not seen yet waits for it. Default 5 s. */
  podWaitMs?: number;
  /** ServiceAccounts as the cluster holds them; without, only the review (and its cache) decides. */
  serviceAccounts?: ServiceAccountDirectory;
}

const WARN_INTERVAL_MS = 10_000;

export function podPrincipal(p: Pick<PodFacts, "namespace" | "name" | "uid">): string {
  return `pod:${p.namespace}/${p.name}/${p.uid}`;
}

function parsePodPrincipal(principal: string): { namespace: string; name: string; uid: string } | undefined {
  const m = /^pod:([^/]+)\/([^/]+)\/([^/]+)$/.exec(principal);
  return m ? { namespace: m[1]!, name: m[2]!, uid: m[3]! } : undefined;
}

const sameLabels = (a: Record<string, string>, b: Record<string, string>) => {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
};

export class PodIdentities {
  private readonly unsubscribe: (() => void)[] = [];
  /** Pod principals that authenticated, by "namespace/serviceAccount" (released with their pod). */
  private readonly principalsByAccount = new Map<string, Set<string>>();
  private readonly waiters = new Set<() => void>();
  private readonly lastWarned = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly reviewer: TokenReviewer,
    private readonly pods: PodDirectory,
    private readonly opts: PodIdentitiesOptions,
  ) {
    this.unsubscribe.push(pods.onPodChange((before, after) => this.podChanged(before, after)));
    const accounts = opts.serviceAccounts;
    if (accounts) this.unsubscribe.push(accounts.onServiceAccountChange((before, after) => this.accountChanged(before, after)));
  }

  /** The principal a token proves (its pod's), or undefined. Rejects when the API server cannot answer. */
  async authenticate(token: string): Promise<string | undefined> {
    const outcome = await this.reviewer.review(token);
    if (!outcome.ok) return this.refuse("review", outcome.reason);
    const { namespace, serviceAccount, pod } = outcome.token;
    if (!pod) return this.refuse("unbound", `the ServiceAccount token of ${namespace}/${serviceAccount} is not bound to a pod; sidecars need their pod's projected token (audience "${this.reviewer.audience}")`);
    const facts = await this.waitForPod(namespace, pod.name, pod.uid);
    if (!facts || facts.uid !== pod.uid) return this.refuse("pod", `the token's pod ${namespace}/${pod.name} (uid ${pod.uid}) does not exist (deleted?)`);
    if (facts.serviceAccount !== serviceAccount) return this.refuse("pod", `the token's ServiceAccount ${serviceAccount} is not pod ${namespace}/${pod.name}'s (${facts.serviceAccount})`);
    const accounts = this.opts.serviceAccounts;
    if (accounts?.serviceAccountsSynced) {
      const account = await this.waitFor(() => accounts.serviceAccount(namespace, serviceAccount));
      if (!account) return this.refuse("serviceaccount", `the token's ServiceAccount ${namespace}/${serviceAccount} does not exist (deleted?)`);
      const uid = outcome.token.serviceAccountUid;
      if (uid !== undefined && account.uid !== uid) return this.refuse("serviceaccount", `the token's ServiceAccount ${namespace}/${serviceAccount} was deleted (the one of that name now has another uid)`);
    }
    const principal = podPrincipal(facts);
    const key = `${namespace}/${serviceAccount}`;
    const set = this.principalsByAccount.get(key) ?? new Set<string>();
    set.add(principal);
    this.principalsByAccount.set(key, set);
    return principal;
  }

  /** The credential behind a pod principal, with the pod's current labels; undefined once the pod is gone. */
  byPrincipalName(principal: string): Credential | undefined {
    const ref = parsePodPrincipal(principal);
    if (!ref) return undefined;
    const pod = this.pods.pod(ref.namespace, ref.name);
    if (!pod || pod.uid !== ref.uid) return undefined;
    return { kind: "pod", namespace: pod.namespace, name: pod.name, serviceAccount: pod.serviceAccount, labels: { ...pod.labels }, principal, issuedAt: "" };
  }

  close(): void {
    for (const u of this.unsubscribe) u();
    for (const wake of this.waiters) wake();
    this.principalsByAccount.clear();
  }

  private accountChanged(before: ServiceAccountFacts | undefined, after: ServiceAccountFacts | undefined): void {
    for (const wake of [...this.waiters]) wake();
    if (!before || after?.uid === before.uid) return;
    const key = `${before.namespace}/${before.name}`;
    this.reviewer.forgetServiceAccount(before.namespace, before.name);
    const principals = this.principalsByAccount.get(key);
    this.principalsByAccount.delete(key);
    for (const principal of principals ?? []) {
      this.opts.endStreamsOf(principal, GrpcStatus.UNAUTHENTICATED, `ServiceAccount ${key} was deleted: its tokens no longer prove an identity`);
    }
  }

  private podChanged(before: PodFacts | undefined, after: PodFacts | undefined): void {
    for (const wake of [...this.waiters]) wake();
    if (!before) return;
    const principal = podPrincipal(before);
    if (!after || after.uid !== before.uid) {
      this.reviewer.forgetPod(before.uid);
      const set = this.principalsByAccount.get(`${before.namespace}/${before.serviceAccount}`);
      set?.delete(principal);
      if (set?.size === 0) this.principalsByAccount.delete(`${before.namespace}/${before.serviceAccount}`);
      this.opts.endStreamsOf(principal, GrpcStatus.UNAUTHENTICATED, `pod ${before.namespace}/${before.name} was deleted: its ServiceAccount token no longer proves an identity`);
    } else if (!sameLabels(before.labels, after.labels)) {
      this.opts.endStreamsOf(principal, GrpcStatus.UNAVAILABLE, `pod ${after.namespace}/${after.name} changed its labels; reconnect`);
    }
  }

  /** The pod, waiting up to podWaitMs for the source to see it (a sidecar may dial before the watch delivers its pod). */
  private async waitForPod(namespace: string, name: string, uid: string): Promise<PodFacts | undefined> {
    const pod = await this.waitFor(() => {
      const p = this.pods.pod(namespace, name);
      return p?.uid === uid ? p : undefined;
    });
    return pod ?? this.pods.pod(namespace, name);
  }

  /** What `found` gives, waiting up to podWaitMs (woken by every pod or ServiceAccount change). */
  private async waitFor<T>(found: () => T | undefined): Promise<T | undefined> {
    let value = found();
    if (value) return value;
    const deadline = Date.now() + (this.opts.podWaitMs ?? 5000);
    while (!value && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, Math.max(1, deadline - Date.now()));
        timer.unref();
        this.waiters.add(wake);
      });
      value = found();
    }
    return value;
  }

  private refuse(kind: string, reason: string): undefined {
    const now = Date.now();
    const last = this.lastWarned.get(kind);
    if (last && now - last.at < WARN_INTERVAL_MS) last.suppressed++;
    else {
      this.lastWarned.set(kind, { at: now, suppressed: 0 });
      this.opts.logger.warn({ ...(last?.suppressed ? { suppressedSinceLastWarning: last.suppressed } : {}) }, `xDS stream refused: ${reason}`);
    }
    return undefined;
  }
}
