// Where the resources a listener or cluster references (routes, endpoints, secrets) come from:
// the same ADS stream, and, as Istio's sidecars do, no initial fetch timeout — Envoy waits for
// them instead of giving up after 15 s and serving with the reference unresolved.
import type { ConfigSource } from "../../generated/envoy/config/core/v3/config_source.js";
import { ADS_CONFIG_SOURCE } from "../envoy/builders.js";

export const MESH_CONFIG_SOURCE: ConfigSource = { ...ADS_CONFIG_SOURCE, initialFetchTimeout: { seconds: 0, nanos: 0 } };
