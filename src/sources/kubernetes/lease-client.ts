// The coordination.k8s.io/v1 Lease that leader election reads and writes (the LeaseClient of
// src/runner/lease-leader-election.ts), through client-node.
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from "@kubernetes/client-node";
import type { LeaseClient, LeaseRecord, StoredLease } from "../../runner/lease-leader-election.js";

function statusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === "number" ? code : undefined;
}

function timeMs(value: unknown): number {
  if (value instanceof Date) return value.getTime();
  if (typeof value === "string") return Date.parse(value) || 0;
  return 0;
}

export class KubernetesLeaseClient implements LeaseClient {
  readonly description: string;
  private readonly api: CoordinationV1Api;

  constructor(kubeConfig: KubeConfig, private readonly namespace: string, private readonly name: string) {
    this.api = kubeConfig.makeApiClient(CoordinationV1Api);
    this.description = `Lease ${namespace}/${name}`;
  }

  async get(): Promise<StoredLease | undefined> {
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace });
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
    const spec = lease.spec ?? {};
    return {
      resourceVersion: lease.metadata?.resourceVersion ?? "",
      record: {
        holderIdentity: spec.holderIdentity ?? "",
        leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
        acquireTime: timeMs(spec.acquireTime),
        renewTime: timeMs(spec.renewTime),
        leaseTransitions: spec.leaseTransitions ?? 0,
      },
    };
  }

  private body(record: LeaseRecord, resourceVersion?: string): V1Lease {
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: this.name, namespace: this.namespace, ...(resourceVersion ? { resourceVersion } : {}) },
      spec: {
        holderIdentity: record.holderIdentity,
        leaseDurationSeconds: record.leaseDurationSeconds,
        acquireTime: new V1MicroTime(record.acquireTime),
        renewTime: new V1MicroTime(record.renewTime),
        leaseTransitions: record.leaseTransitions,
      },
    };
  }

  async create(record: LeaseRecord): Promise<boolean> {
    try {
      await this.api.createNamespacedLease({ namespace: this.namespace, body: this.body(record) });
      return true;
    } catch (err) {
      if (statusCode(err) === 409) return false;
      throw err;
    }
  }

  async update(record: LeaseRecord, resourceVersion: string): Promise<boolean> {
    try {
      await this.api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body: this.body(record, resourceVersion) });
      return true;
    } catch (err) {
      if (statusCode(err) === 409) return false;
      throw err;
    }
  }
}
