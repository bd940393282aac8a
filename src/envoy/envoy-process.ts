// Runs a real Envoy as a child process and talks to its admin API.
//
// Used by every e2e test and by `weft demo`. Each Envoy gets its own temp dir holding
// the bootstrap (envoy.yaml), the admin address file and the combined stdout/stderr log
// (envoy.log). Envoys run with --disable-hot-restart, so any number can run at once
// without sharing memory or domain sockets, and with admin port 0 allowed: the kernel
// picks the port and Envoy writes it to --admin-address-path.
//
// No orphans: live Envoys sit in a module-level registry and are SIGKILLed when this
// process exits or gets SIGINT/SIGTERM/SIGHUP. Where util-linux `setpriv` exists, Envoy
// is also started under `setpriv --pdeathsig KILL`, so the kernel kills it even when
// this process dies by SIGKILL.
//
// Sidecars in pods: `commandPrefix` runs Envoy through other commands, e.g.
// `ip netns exec weft-a setpriv --reuid=1337 ... --` (see src/capture/sidecar.ts). The
// command line becomes `setpriv --pdeathsig KILL -- <prefix...> <envoy> <args>`. Each
// prefix command must exec the next in place (ip netns exec, nsenter, setpriv, chroot do;
// sudo and su do not) so that the pid we track and signal is Envoy's. A uid/gid change
// clears the parent-death signal, so a prefix that switches user must re-arm it
// (`setpriv --reuid=... --pdeathsig KILL --`). `workDirOwner` chowns the temp dir so an
// Envoy running as that user can read its bootstrap and write the admin address file.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, rmSync, type WriteStream } from "node:fs";
import { chown, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { findEnvoyBinary } from "./find-envoy.js";

// ---------------------------------------------------------------------------------------
// Typed JSON (the admin API returns JSON; we never use `any`)

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export function asObject(value: JsonValue | undefined): JsonObject | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? value : undefined;
}
export function asArray(value: JsonValue | undefined): JsonValue[] {
  return Array.isArray(value) ? value : [];
}
export function asString(value: JsonValue | undefined): string | undefined {
  return typeof value === "string" ? value : undefined;
}

// ---------------------------------------------------------------------------------------
// Public types

export interface StartEnvoyOptions {
  /** Full bootstrap YAML (see renderBootstrap, or build a static one). */
  bootstrapYaml: string;
  /** Label for errors and the temp dir name. Default envoy-<n>. */
  name?: string;
  /** Envoy binary. Default: findEnvoyBinary(). */
  binary?: string;
  /** Envoy's -l level. Default $WEFT_ENVOY_LOG_LEVEL or "info". */
  logLevel?: string;
  /** Parent of the per-Envoy temp dir. Default os.tmpdir(). */
  workDir?: string;
  /** Worker threads (--concurrency). Default 1: light, and load balancing is deterministic. */
  concurrency?: number;
  /** Appended to Envoy's command line. */
  extraArgs?: string[];
  /** How long to wait for the admin API (and LIVE). Default 20000. */
  readyTimeoutMs?: number;
  /** Wait until GET /ready says LIVE (needs all initial xDS answered). Default true. */
  waitForLive?: boolean;
  /**
   * The admin API listens where this process cannot reach it (127.0.0.1 inside a pod's network
   * namespace, as an injected sidecar's does): start returns once Envoy has written its admin
   * address (admin bound, bootstrap accepted); adminRequest and everything built on it throw.
   * Default false.
   */
  adminOutOfReach?: boolean;
  /** stop(): how long after SIGTERM before SIGKILL. Default 5000. */
  stopGraceMs?: number;
  /**
   * Commands placed before the Envoy binary, e.g. envoyCommandPrefix(pod, 1337) from
   * src/capture/sidecar.ts. Each must exec the next in place; see the header comment.
   */
  commandPrefix?: string[];
  /**
   * Owner of the temp dir, its bootstrap and log file: the user Envoy runs as when
   * commandPrefix switches user. (The temp dir's parent must be searchable by that user;
   * os.tmpdir() is.) Default: unchanged (this process's user).
   */
  workDirOwner?: { uid: number; gid: number };
}

/** GET /config_dump: one entry per config type (ListenersConfigDump, ClustersConfigDump, ...). */
export interface ConfigDump {
  configs: JsonObject[];
}

/** One host line group of GET /clusters. */
export interface ClusterHost {
  /** "ip:port" as Envoy prints it. */
  address: string;
  /** True when Envoy prints health_flags "healthy". */
  healthy: boolean;
  /** Failure flags, e.g. ["failed_active_hc"]; empty when healthy. */
  healthFlags: string[];
  weight?: number;
  /** Numeric per-host stats: cx_total, rq_success, ... */
  stats: Record<string, number>;
}

export interface ListenerStatus {
  name: string;
  /** "ip:port" actually bound (useful with port 0). */
  address: string;
}

export interface ServerInfo {
  version: string;
  /** LIVE, DRAINING, PRE_INITIALIZING or INITIALIZING. */
  state: string;
  raw: JsonObject;
}

export interface AdminResponse {
  status: number;
  body: string;
}

export interface WaitForOptions {
  /** Shown in the timeout error: "listener 'x' at version 3". */
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
}

/** A probe returns a value when the condition holds; false/null/undefined (or a throw) means "not yet". */
export type Probe<T> = () => T | false | null | undefined | Promise<T | false | null | undefined>;

export interface EnvoyProcess {
  readonly name: string;
  readonly pid: number;
  /** e.g. http://127.0.0.1:39551 */
  readonly adminUrl: string;
  readonly workDir: string;
  readonly logPath: string;
  /** Last lines of Envoy's stdout/stderr (up to 200). */
  logTail(lines?: number): string;
  /** Any admin endpoint, e.g. adminRequest("/logging?level=debug", "POST"). Never throws on status. */
  adminRequest(pathAndQuery: string, method?: "GET" | "POST"): Promise<AdminResponse>;
  configDump(opts?: { includeEds?: boolean }): Promise<ConfigDump>;
  /** GET /clusters, raw text. */
  clusters(): Promise<string>;
  /** GET /clusters parsed: cluster name -> hosts (clusters without hosts map to []). */
  clusterHosts(): Promise<Map<string, ClusterHost[]>>;
  listeners(): Promise<ListenerStatus[]>;
  /** Counters and gauges; `filter` is Envoy's regex filter (e.g. "^server\\."). */
  stats(filter?: string): Promise<Map<string, number>>;
  serverInfo(): Promise<ServerInfo>;
  /** Polls `probe` until it returns a value; fails early if Envoy exits. */
  waitFor<T>(probe: Probe<T>, opts: WaitForOptions): Promise<T>;
  /** SIGTERM, SIGKILL after the grace period, wait for exit, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// Start

const DEFAULT_READY_TIMEOUT_MS = 20_000;
const DEFAULT_STOP_GRACE_MS = 5_000;
const ADMIN_REQUEST_TIMEOUT_MS = 5_000;
const LOG_TAIL_LINES = 200;

let started = 0;

export async function startEnvoy(opts: StartEnvoyOptions): Promise<EnvoyProcess> {
  const name = opts.name ?? `envoy-${++started}`;
  const binary = opts.binary ?? (await findEnvoyBinary());
  const workDir = await mkdtemp(path.join(opts.workDir ?? os.tmpdir(), `weft-${name.replace(/[^A-Za-z0-9_.-]/g, "_")}-`));
  const configPath = path.join(workDir, "envoy.yaml");
  const adminAddressPath = path.join(workDir, "admin-address.txt");
  const logPath = path.join(workDir, "envoy.log");
  await writeFile(configPath, opts.bootstrapYaml);
  if (opts.workDirOwner) {
    const { uid, gid } = opts.workDirOwner;
    try {
      await writeFile(logPath, "");
      for (const file of [workDir, configPath, logPath]) await chown(file, uid, gid);
    } catch (err) {
      await rm(workDir, { recursive: true, force: true });
      throw new Error(`envoy "${name}": cannot hand ${workDir} to uid ${uid} gid ${gid}: ${(err as Error).message}`);
    }
  }

  const args = [
    "--config-path", configPath,
    "--admin-address-path", adminAddressPath,
    "--disable-hot-restart",
    "--concurrency", String(opts.concurrency ?? 1),
    "-l", opts.logLevel ?? process.env.WEFT_ENVOY_LOG_LEVEL ?? "info",
    ...(opts.extraArgs ?? []),
  ];
  const argv = [...(hasSetpriv() ? ["setpriv", "--pdeathsig", "KILL", "--"] : []), ...(opts.commandPrefix ?? []), binary, ...args];
  const [command, ...commandArgs] = argv as [string, ...string[]];
  const child = spawn(command, commandArgs, { stdio: ["ignore", "pipe", "pipe"] });
  if (child.pid === undefined) {
    const [spawnError]: unknown[] = await once(child, "error");
    await rm(workDir, { recursive: true, force: true });
    throw new Error(`envoy "${name}": cannot run ${command}: ` +
      (spawnError instanceof Error ? spawnError.message : String(spawnError)));
  }

  const envoy = new RunningEnvoy(name, child, workDir, logPath, opts.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
  try {
    await envoy.waitUntilReady(adminAddressPath, opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
      opts.waitForLive ?? true, [...(opts.commandPrefix ?? []), binary, ...args].join(" "), !opts.adminOutOfReach);
  } catch (err) {
    await envoy.stop();
    throw err;
  }
  return envoy;
}

/** Stops every Envoy this process started (for afterAll in tests). */
export async function stopAllEnvoys(): Promise<void> {
  await Promise.all([...live].map((envoy) => envoy.stop()));
}

// ---------------------------------------------------------------------------------------
// The running process

type ExitInfo = { code: number | null; signal: NodeJS.Signals | null };

class RunningEnvoy implements EnvoyProcess {
  readonly pid: number;
  adminUrl = "";
  private readonly log: WriteStream;
  private readonly tail = new LineTail(LOG_TAIL_LINES);
  private exitInfo: ExitInfo | undefined;
  private readonly closed: Promise<ExitInfo>;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly workDir: string,
    readonly logPath: string,
    private readonly stopGraceMs: number,
  ) {
    if (child.pid === undefined) throw new Error(`envoy "${name}": spawn failed (no pid)`);
    this.pid = child.pid;
    this.log = createWriteStream(logPath);
    this.log.on("error", (err) => this.tail.push(`[weft] cannot write ${logPath}: ${err.message}\n`));
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        this.log.write(chunk);
        this.tail.push(chunk);
      });
    }
    // 'close' fires after the process exited *and* its stdout/stderr are drained.
    this.closed = new Promise((resolve) => {
      child.on("error", (err) => this.tail.push(`[weft] spawn error: ${err.message}\n`));
      child.on("close", (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        resolve(this.exitInfo);
      });
    });
    live.add(this);
    installExitHooks();
  }

  logTail(lines = LOG_TAIL_LINES): string {
    return this.tail.lines().slice(-lines).join("\n");
  }

  /** Waits for the admin address file, then for the admin API (and LIVE if asked). */
  async waitUntilReady(adminAddressPath: string, timeoutMs: number, waitForLive: boolean, commandLine: string, adminReachable = true): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let state = "admin not up yet";
    while (Date.now() < deadline) {
      if (this.exitInfo) {
        throw new Error(`envoy "${this.name}" exited during startup (${describeExit(this.exitInfo)}).\n` +
          `Command: ${commandLine}\n${this.tailForError()}`);
      }
      if (this.adminUrl === "") {
        const address = (await readFile(adminAddressPath, "utf8").catch(() => "")).trim();
        if (/:\d+$/.test(address) && !adminReachable) return;
        if (/:\d+$/.test(address)) this.adminUrl = `http://${address}`;
      }
      if (this.adminUrl !== "") {
        const ready = await this.adminRequest("/ready").catch(() => undefined);
        if (ready) {
          state = ready.body.trim() || `HTTP ${ready.status}`;
          if (!waitForLive || (ready.status === 200 && state === "LIVE")) return;
        }
      }
      await sleep(25);
    }
    throw new Error(`envoy "${this.name}" not ${waitForLive ? "LIVE" : "answering on its admin API"} ` +
      `within ${timeoutMs} ms (last state: ${state}; admin ${this.adminUrl || "unknown"}).\n` +
      `Command: ${commandLine}\n${this.tailForError()}`);
  }

  async adminRequest(pathAndQuery: string, method: "GET" | "POST" = "GET"): Promise<AdminResponse> {
    if (this.adminUrl === "") throw new Error(`envoy "${this.name}": admin address not known yet`);
    const response = await fetch(this.adminUrl + pathAndQuery, {
      method,
      signal: AbortSignal.timeout(ADMIN_REQUEST_TIMEOUT_MS),
    });
    return { status: response.status, body: await response.text() };
  }

  /** GET that must answer 200; returns the body. */
  private async adminGet(pathAndQuery: string): Promise<string> {
    const { status, body } = await this.adminRequest(pathAndQuery);
    if (status !== 200) {
      throw new Error(`envoy "${this.name}": GET ${pathAndQuery} answered ${status}: ${body.slice(0, 500)}`);
    }
    return body;
  }

  private async adminJson(pathAndQuery: string): Promise<JsonObject> {
    const parsed: JsonValue = JSON.parse(await this.adminGet(pathAndQuery));
    const object = asObject(parsed);
    if (!object) throw new Error(`envoy "${this.name}": GET ${pathAndQuery} did not return a JSON object`);
    return object;
  }

  async configDump(opts: { includeEds?: boolean } = {}): Promise<ConfigDump> {
    const dump = await this.adminJson(opts.includeEds ? "/config_dump?include_eds" : "/config_dump");
    const configs: JsonObject[] = [];
    for (const entry of asArray(dump.configs)) {
      const config = asObject(entry);
      if (config) configs.push(config);
    }
    return { configs };
  }

  clusters(): Promise<string> {
    return this.adminGet("/clusters");
  }

  async clusterHosts(): Promise<Map<string, ClusterHost[]>> {
    return parseClustersText(await this.clusters());
  }

  async listeners(): Promise<ListenerStatus[]> {
    const body = await this.adminJson("/listeners?format=json");
    return asArray(body.listener_statuses).flatMap((entry) => {
      const status = asObject(entry);
      const socket = asObject(asObject(status?.local_address)?.socket_address);
      const name = asString(status?.name);
      if (name === undefined || !socket) return [];
      const ip = asString(socket.address) ?? "";
      const host = ip.includes(":") ? `[${ip}]` : ip;
      return [{ name, address: `${host}:${typeof socket.port_value === "number" ? socket.port_value : 0}` }];
    });
  }

  async stats(filter?: string): Promise<Map<string, number>> {
    const query = new URLSearchParams({ format: "json" });
    if (filter !== undefined) query.set("filter", filter);
    const body = await this.adminJson(`/stats?${query}`);
    const result = new Map<string, number>();
    for (const entry of asArray(body.stats)) {
      // Counters and gauges are {name, value:number}; histograms and text readouts are skipped.
      const stat = asObject(entry);
      const name = asString(stat?.name);
      if (name !== undefined && typeof stat?.value === "number") result.set(name, stat.value);
    }
    return result;
  }

  async serverInfo(): Promise<ServerInfo> {
    const raw = await this.adminJson("/server_info");
    return { version: asString(raw.version) ?? "", state: asString(raw.state) ?? "", raw };
  }

  async waitFor<T>(probe: Probe<T>, opts: WaitForOptions): Promise<T> {
    return pollUntil(probe, {
      ...opts,
      what: `${opts.what} (envoy "${this.name}", admin ${this.adminUrl})`,
      abortIf: () => this.exitInfo && `envoy exited (${describeExit(this.exitInfo)})`,
      details: () => this.tailForError(),
    });
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (!this.exitInfo) {
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), this.stopGraceMs);
      await this.closed;
      clearTimeout(timer);
    }
    await new Promise<void>((resolve) => this.log.end(resolve));
    if (!keepLogs()) await rm(this.workDir, { recursive: true, force: true });
  }

  /** Emergency path for process exit: synchronous, no waiting. */
  killNow(): void {
    try {
      process.kill(this.pid, "SIGKILL");
    } catch {
      // already gone
    }
    if (!keepLogs()) rmSync(this.workDir, { recursive: true, force: true });
  }

  private tailForError(): string {
    const keep = keepLogs() ? `full log: ${this.logPath}` : "set WEFT_KEEP_ENVOY_LOGS=1 to keep the full log";
    return `Last lines of Envoy's log (${keep}):\n${this.logTail(40) || "(empty)"}`;
  }
}

// ---------------------------------------------------------------------------------------
// Helpers (exported where tests can use them without an Envoy)

/**
 * Parses GET /clusters text. Lines look like `cluster::field::value` (cluster level),
 * `cluster::default_priority::max_connections::1024` (circuit breakers) and
 * `cluster::10.0.0.1:80::health_flags::healthy` (hosts). The address can hold "::"
 * itself (IPv6), so the cluster is split off the front and field and value off the back.
 */
export function parseClustersText(text: string): Map<string, ClusterHost[]> {
  const clusters = new Map<string, ClusterHost[]>();
  const hosts = new Map<string, ClusterHost>(); // key: cluster + address
  for (const line of text.split("\n")) {
    const first = line.indexOf("::");
    const last = line.lastIndexOf("::");
    if (first < 0 || last <= first) continue;
    const cluster = line.slice(0, first);
    const value = line.slice(last + 2);
    const middle = line.slice(first + 2, last);
    if (!clusters.has(cluster)) clusters.set(cluster, []);
    const split = middle.lastIndexOf("::");
    if (split < 0) continue; // cluster-level field
    const address = middle.slice(0, split);
    const field = middle.slice(split + 2);
    if (address === "default_priority" || address === "high_priority") continue;

    let host = hosts.get(`${cluster}\n${address}`);
    if (!host) {
      host = { address, healthy: false, healthFlags: [], stats: {} };
      hosts.set(`${cluster}\n${address}`, host);
      clusters.get(cluster)?.push(host);
    }
    if (field === "health_flags") {
      host.healthy = value === "healthy";
      host.healthFlags = host.healthy ? [] : value.split("/").filter((f) => f !== "");
    } else if (field === "weight") {
      host.weight = Number(value);
    } else if (/^-?\d+(\.\d+)?$/.test(value)) {
      host.stats[field] = Number(value);
    }
  }
  return clusters;
}

export type DumpedState = "static" | "active" | "warming" | "draining" | "error";

export interface DumpedResource {
  name: string;
  state: DumpedState;
  /** xDS version_info; absent for static resources. */
  version?: string;
  /** The resource itself (Listener, Cluster, RouteConfiguration, ClusterLoadAssignment). */
  resource: JsonObject;
  /** For state "error" (a rejected listener update): Envoy's reason. */
  error?: string;
}

export type DumpedKind = "listeners" | "clusters" | "routes" | "endpoints";

/**
 * Lists the resources of one kind in a config dump, with their state and xDS version;
 * e2e tests poll this to see the control plane's config arrive (or get rejected).
 * Endpoints appear only in configDump({ includeEds: true }).
 */
export function dumpedResources(dump: ConfigDump, kind: DumpedKind): DumpedResource[] {
  const layout = DUMP_LAYOUT[kind];
  const section = dump.configs.find((c) => asString(c["@type"])?.endsWith(`.${layout.type}`));
  if (!section) return [];
  const out: DumpedResource[] = [];
  const add = (entry: JsonValue, state: DumpedState, error?: string): void => {
    const holder = asObject(entry);
    const resource = asObject(holder?.[layout.field]);
    if (!holder || !resource) return;
    const name = asString(resource[layout.nameField]) ?? asString(holder.name) ?? "";
    const version = asString(holder.version_info);
    out.push({ name, state, resource, ...(version !== undefined && { version }), ...(error !== undefined && { error }) });
  };
  for (const entry of asArray(section[layout.staticList])) add(entry, "static");
  for (const [list, state] of layout.dynamicLists) {
    for (const entry of asArray(section[list])) add(entry, state);
  }
  if (kind === "listeners") {
    // Dynamic listeners nest one object per name with a sub-object per state.
    for (const entry of asArray(section.dynamic_listeners)) {
      const listener = asObject(entry);
      add(listener?.active_state ?? null, "active");
      add(listener?.warming_state ?? null, "warming");
      add(listener?.draining_state ?? null, "draining");
      const failed = asObject(listener?.error_state);
      if (failed) {
        out.push({ name: asString(listener?.name) ?? "", state: "error",
          resource: asObject(failed.failed_configuration) ?? {}, error: asString(failed.details) ?? "" });
      }
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

const DUMP_LAYOUT: Record<DumpedKind, {
  type: string; field: string; nameField: string; staticList: string; dynamicLists: [string, DumpedState][];
}> = {
  listeners: { type: "ListenersConfigDump", field: "listener", nameField: "name", staticList: "static_listeners", dynamicLists: [] },
  clusters: { type: "ClustersConfigDump", field: "cluster", nameField: "name", staticList: "static_clusters",
    dynamicLists: [["dynamic_active_clusters", "active"], ["dynamic_warming_clusters", "warming"]] },
  routes: { type: "RoutesConfigDump", field: "route_config", nameField: "name", staticList: "static_route_configs",
    dynamicLists: [["dynamic_route_configs", "active"]] },
  endpoints: { type: "EndpointsConfigDump", field: "endpoint_config", nameField: "cluster_name",
    staticList: "static_endpoint_configs", dynamicLists: [["dynamic_endpoint_configs", "active"]] },
};

/** Generic poll loop behind EnvoyProcess.waitFor; usable on its own (e.g. for upstreams). */
export async function pollUntil<T>(probe: Probe<T>, opts: WaitForOptions & {
  /** Return a reason to stop polling at once (e.g. the process died). */
  abortIf?: () => string | false | undefined;
  /** Extra text for the timeout error (e.g. a log tail). */
  details?: () => string;
}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  for (;;) {
    const abort = opts.abortIf?.();
    if (abort) throw new Error(`gave up waiting for ${opts.what}: ${abort}\n${opts.details?.() ?? ""}`.trim());
    try {
      const value = await probe();
      if (value !== false && value !== null && value !== undefined) return value;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what}` +
        (lastError ? `; last probe error: ${lastError}` : "") +
        (opts.details ? `\n${opts.details()}` : ""));
    }
    await sleep(intervalMs);
  }
}

/** Keeps the last `max` lines of a stream of text chunks. */
class LineTail {
  private readonly buffer: string[] = [];
  private partial = "";
  constructor(private readonly max: number) {}

  push(chunk: string): void {
    const parts = (this.partial + chunk).split("\n");
    this.partial = parts.pop() ?? "";
    this.buffer.push(...parts);
    if (this.buffer.length > this.max) this.buffer.splice(0, this.buffer.length - this.max);
  }

  lines(): string[] {
    return this.partial === "" ? [...this.buffer] : [...this.buffer, this.partial];
  }
}

function describeExit(info: ExitInfo): string {
  return info.signal ? `killed by ${info.signal}` : `exit code ${info.code}`;
}

function keepLogs(): boolean {
  const value = process.env.WEFT_KEEP_ENVOY_LOGS;
  return value !== undefined && value !== "" && value !== "0";
}

let setprivWorks: boolean | undefined;
/**
 * util-linux `setpriv --pdeathsig` (Linux; util-linux >= 2.33) makes the kernel kill Envoy
 * when its parent dies. Probed once by running `setpriv --pdeathsig KILL -- true`.
 */
function hasSetpriv(): boolean {
  setprivWorks ??= process.platform === "linux" &&
    spawnSync("setpriv", ["--pdeathsig", "KILL", "--", "true"], { stdio: "ignore", timeout: 5000 }).status === 0;
  return setprivWorks;
}

// ---------------------------------------------------------------------------------------
// Registry of live Envoys and the exit hooks that keep them from outliving us

const live = new Set<RunningEnvoy>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const killAll = (): void => {
    for (const envoy of live) envoy.killNow();
    live.clear();
  };
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      killAll();
      // Listening to a signal cancels Node's default (exit). If nobody else handles it,
      // stop listening and re-send it so the process still dies the normal way.
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}
