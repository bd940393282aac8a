// Prometheus metrics of the xDS server. Labels are bounded: type (cds/eds/lds/rds/sds) and api.
// Next to Weft's weft_* metrics, the ones whose meaning matches istiod's carry Istio's names, so
// Istio's control-plane dashboards and alerts work: pilot_xds (connected proxies),
// pilot_xds_pushes{type}, pilot_total_xds_rejects{type}.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { TYPE_SHORT_NAMES } from "../envoy/type-urls.js";

export class XdsMetrics {
  readonly connectedProxies: Gauge<"api">;
  readonly inflightBytes: Gauge;
  readonly pushes: Counter<"type" | "api">;
  readonly pushBytes: Counter<"type" | "api">;
  readonly pushResources: Counter<"type" | "api">;
  readonly acks: Counter<"type">;
  readonly nacks: Counter<"type">;
  readonly pushToAck: Histogram<"type">;
  readonly snapshotsRefused: Counter;
  readonly snapshotsSet: Counter;
  readonly streamsRefused: Counter<"reason">;
  readonly requestsIgnored: Counter<"reason">;
  readonly overdueBytes: Gauge;
  /** Istio's names for the same counts (see the header). */
  readonly pilotXds: Gauge;
  readonly pilotXdsPushes: Counter<"type">;
  readonly pilotXdsRejects: Counter<"type">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.inflightBytes = new Gauge({ name: "weft_xds_inflight_bytes", help: "Bytes of xDS responses sent and not yet ACKed or NACKed (bounded; pushes wait above the bound)", registers });
    this.connectedProxies = new Gauge({ name: "weft_xds_connected_proxies", help: "Open xDS streams, by API variant (sotw, delta)", labelNames: ["api"], registers });
    this.pushes = new Counter({ name: "weft_xds_pushes_total", help: "xDS responses sent, by type", labelNames: ["type", "api"], registers });
    this.pushBytes = new Counter({ name: "weft_xds_push_bytes_total", help: "Encoded bytes of xDS responses sent, by type", labelNames: ["type", "api"], registers });
    this.pushResources = new Counter({ name: "weft_xds_pushed_resources_total", help: "Resources carried by xDS responses, by type", labelNames: ["type", "api"], registers });
    this.acks = new Counter({ name: "weft_xds_acks_total", help: "xDS responses ACKed by proxies, by type", labelNames: ["type"], registers });
    this.nacks = new Counter({ name: "weft_xds_nacks_total", help: "xDS responses rejected (NACKed) by proxies, by type", labelNames: ["type"], registers });
    this.pushToAck = new Histogram({
      name: "weft_xds_push_to_ack_seconds",
      help: "Time from sending an xDS response to its ACK or NACK",
      labelNames: ["type"],
      // Istio's convergence buckets (pilot_proxy_convergence_time), plus finer ones below 10 ms.
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.1, 0.5, 1, 3, 5, 10, 20, 30],
      registers,
    });
    this.streamsRefused = new Counter({
      name: "weft_xds_streams_refused_total",
      help: "xDS streams the server ended because the client broke a bound (reason: node_id, type_url, names, initial_versions, stalled, overdue)",
      labelNames: ["reason"],
      registers,
    });
    this.requestsIgnored = new Counter({ name: "weft_xds_requests_ignored_total", help: "xDS requests ignored (reason: type_url = unsupported or wrong for the service)", labelNames: ["reason"], registers });
    this.overdueBytes = new Gauge({ name: "weft_xds_overdue_bytes", help: "Bytes of xDS responses unanswered past the budget hold time (no longer counted in weft_xds_inflight_bytes; bounded, the oldest streams are ended above the bound)", registers });
    this.pilotXds = new Gauge({ name: "pilot_xds", help: "Istio's name: connected xDS clients (as weft_xds_connected_proxies, all APIs)", registers });
    this.pilotXdsPushes = new Counter({ name: "pilot_xds_pushes", help: "Istio's name: xDS responses sent, by type (as weft_xds_pushes_total)", labelNames: ["type"], registers });
    this.pilotXdsRejects = new Counter({ name: "pilot_total_xds_rejects", help: "Istio's name: xDS responses rejected by proxies, by type (as weft_xds_nacks_total)", labelNames: ["type"], registers });
    this.snapshotsSet = new Counter({ name: "weft_snapshots_set_total", help: "Snapshots accepted into the cache", registers });
    this.snapshotsRefused = new Counter({ name: "weft_snapshots_refused_total", help: "Snapshots refused by the consistency check (the previous one stays in force)", registers });
    // Rejects start at 0 per type, as exported series: rate() and alerts see 0, not "no data",
    // in a mesh that never had a NACK (the Grafana control-plane dashboard reads both).
    for (const type of Object.values(TYPE_SHORT_NAMES)) {
      this.nacks.inc({ type }, 0);
      this.pilotXdsRejects.inc({ type }, 0);
    }
  }
}
