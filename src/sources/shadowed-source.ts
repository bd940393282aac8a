// A source seen through others: its resources that another source also defines are left out,
// so the others' definitions replace them without a "duplicate" error. `weft analyze -k a.yaml`
// uses it to show what applying a.yaml to the cluster would give (istioctl's habit).
import type { ConfigSource, SourceListener, SourceSnapshot } from "./config-source.js";

export class ShadowedSource implements ConfigSource {
  readonly name: string;
  readonly origin: ConfigSource["origin"];

  constructor(
    private readonly inner: ConfigSource,
    /** The keys (kind/namespace/name) defined elsewhere, asked at each snapshot. */
    private readonly shadowedKeys: () => ReadonlySet<string>,
  ) {
    this.name = inner.name;
    this.origin = inner.origin;
  }

  start(listener: SourceListener): Promise<void> {
    return this.inner.start(listener);
  }

  snapshot(): SourceSnapshot {
    const snapshot = this.inner.snapshot();
    const shadowed = this.shadowedKeys();
    if (shadowed.size === 0) return snapshot;
    return { ...snapshot, entries: snapshot.entries.filter((e) => !shadowed.has(e.key)) };
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
