// "Pods" on one machine: a network namespace per pod, wired to a host bridge, so that
// `weft demo` and the e2e tests can run apps with real sidecars and transparent capture.
//
//   host:  bridge weft0 10.77.0.1/24 ── weft-v2 ─┐      ┌─ weft-v3 ── ...
//   pod a: netns weft-a ── eth0 10.77.0.2/24 ────┘      └─ pod b: netns weft-b, eth0 10.77.0.3/24
//                          lo up, default via 10.77.0.1
//
// Pods reach each other over the bridge (layer 2) and the host at the bridge address
// (10.77.0.1): a control plane that pods must reach listens there (or on 0.0.0.0), not on
// 127.0.0.1. Nothing is routed beyond the bridge (no ip_forward, no NAT): pods talk only to
// each other and to this host, which is all the demo and the tests need.
//
// Names: a pod's namespace is `<prefix><name>` (default prefix "weft-"); its host-side veth
// is `<prefix>v<last octet>` (weft-v2 .. weft-v254, within Linux's 15-character interface
// limit); the pod side is created directly inside the namespace as `eth0`. Creating the
// veth is also how an address is claimed: `ip link add weft-v5 ...` fails when another pod
// (in any process) holds .5, and we try the next one.
//
// Cleanup: destroy() kills every process in the namespace, deletes the veth and the
// namespace, and removes the bridge (and any host firewall rule we added) once no pod is
// attached. Each pod also has an owner record (/run/weft/pods/<netns>.json: pid and start
// time of the process that made it); cleanupLeftovers() removes namespaces whose owner is
// gone (a crashed run) and leaves pods of live processes alone (a concurrent test run),
// unless told otherwise.

import { spawn, spawnSync, type ChildProcess, type StdioOptions } from "node:child_process";
import { accessSync, constants as fsConstants, readFileSync, rmSync } from "node:fs";
import { mkdir, readdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

// ---------------------------------------------------------------------------------------
// Running commands

export interface CommandResult {
  /** Exit code; null when killed by a signal (or the timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunCommandOptions {
  /** Written to stdin, which is then closed. */
  input?: string;
  /** SIGKILL after this long. Default 30000. */
  timeoutMs?: number;
}

/** Runs argv[0] with the rest as arguments; never throws for a non-zero exit (see mustRun). */
export function runCommand(argv: string[], opts: RunCommandOptions = {}): Promise<CommandResult> {
  const [command, ...args] = argv;
  if (command === undefined) return Promise.reject(new Error("runCommand: empty command"));
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${command}: ${err.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on("error", () => {}); // the command may exit without reading its input
    child.stdin.end(opts.input ?? "");
  });
}

/** Runs a command that must succeed; the error names the command, what it was for and its stderr. */
export async function mustRun(argv: string[], what: string, opts: RunCommandOptions = {}): Promise<string> {
  const result = await runCommand(argv, opts);
  if (result.code !== 0) {
    throw new Error(`${what} failed: \`${argv.join(" ")}\` exited with ${result.code ?? "a signal"}` +
      (result.stderr.trim() ? `: ${result.stderr.trim()}` : ""));
  }
  return result.stdout;
}

/** True when `name` is an executable file in a PATH directory (or an executable path). */
export function onPath(name: string): boolean {
  const candidates = name.includes("/") ? [name]
    : (process.env.PATH ?? "").split(path.delimiter).filter((d) => d !== "").map((d) => path.join(d, name));
  // sbin directories are often missing from a non-login PATH; iptables and ip live there.
  if (!name.includes("/")) candidates.push(`/usr/sbin/${name}`, `/sbin/${name}`);
  return candidates.some((file) => {
    try {
      accessSync(file, fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

let setprivWorks: boolean | undefined;
/** util-linux setpriv with --pdeathsig (same probe as the Envoy harness). */
export function hasSetpriv(): boolean {
  setprivWorks ??= process.platform === "linux" &&
    spawnSync("setpriv", ["--pdeathsig", "KILL", "--", "true"], { stdio: "ignore", timeout: 5000 }).status === 0;
  return setprivWorks;
}

// ---------------------------------------------------------------------------------------
// Network layout

export interface PodNetworkOptions {
  /** Host bridge. Default "weft0". */
  bridge?: string;
  /** The pods' subnet; only /24 is supported. The bridge takes .1, pods .2-.254. Default 10.77.0.0/24. */
  cidr?: string;
  /** Namespace and host-veth prefix. Default "weft-". */
  prefix?: string;
}

export const DEFAULT_POD_NETWORK: Readonly<Required<PodNetworkOptions>> = {
  bridge: "weft0",
  cidr: "10.77.0.0/24",
  prefix: "weft-",
};

/** Linux's interface name limit (IFNAMSIZ 16, including the NUL). */
const MAX_IFNAME = 15;
/** Pod names: a DNS label, short enough to read in `ip netns list`. */
const POD_NAME = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;

interface Layout {
  bridge: string;
  prefix: string;
  /** "10.77.0" */
  base: string;
  /** "10.77.0.1" */
  gateway: string;
}

function layoutOf(opts: PodNetworkOptions = {}): Layout {
  const { bridge, cidr, prefix } = { ...DEFAULT_POD_NETWORK, ...opts };
  if (!/^[A-Za-z0-9_.-]+$/.test(bridge) || bridge.length > MAX_IFNAME) {
    throw new Error(`pod network: bridge name "${bridge}" must be 1-${MAX_IFNAME} characters of letters, digits, "_", "." or "-"`);
  }
  if (!/^[a-z0-9-]+$/.test(prefix) || prefix.length + "v254".length > MAX_IFNAME) {
    throw new Error(`pod network: prefix "${prefix}" must be lowercase letters, digits or "-" and at most ` +
      `${MAX_IFNAME - 4} characters (host veths are named <prefix>v<octet>)`);
  }
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/.exec(cidr);
  if (!match || match.slice(1).some((octet) => Number(octet) > 255)) {
    throw new Error(`pod network: cidr "${cidr}" must be an IPv4 /24 ending in .0, e.g. 10.77.0.0/24`);
  }
  const base = match.slice(1, 4).join(".");
  return { bridge, prefix, base, gateway: `${base}.1` };
}

/** The bridge's address: where pods reach the host (and a control plane listening there). */
export function bridgeAddress(opts: PodNetworkOptions = {}): string {
  return layoutOf(opts).gateway;
}

// ---------------------------------------------------------------------------------------
// Pods

export interface PodExecOptions {
  /** Run as this uid (through setpriv, after entering the namespace). Default: ours (root). */
  uid?: number;
  /** Run as this gid. Default: uid when uid is set. */
  gid?: number;
  /** Default ["ignore", "pipe", "pipe"]. */
  stdio?: StdioOptions;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface PodRunOptions extends PodExecOptions {
  input?: string;
  /** SIGKILL after this long. Default 30000. */
  timeoutMs?: number;
}

export interface Pod {
  readonly name: string;
  /** Network namespace, e.g. "weft-a". */
  readonly netns: string;
  /** The pod's address on the bridge, e.g. "10.77.0.2". */
  readonly ip: string;
  /** Host-side veth, e.g. "weft-v2". */
  readonly hostVeth: string;
  /** The bridge address (the pod's default gateway, and the host as pods see it). */
  readonly gateway: string;
  /**
   * Starts a process inside the pod (`ip netns exec <netns> ...`). It dies with this
   * process where setpriv exists, and destroy() kills it in any case.
   */
  exec(cmd: string[], opts?: PodExecOptions): ChildProcess;
  /** exec() and wait: exit code, stdout and stderr. */
  run(cmd: string[], opts?: PodRunOptions): Promise<CommandResult>;
  /** Kills everything in the pod, removes its veth and namespace (and the bridge after the last pod). Idempotent. */
  destroy(): Promise<void>;
}

/**
 * The command prefix that runs something inside `netns`, optionally as another user:
 * `ip netns exec <netns> [setpriv --reuid U --regid G --clear-groups --pdeathsig KILL --]`.
 * Every step execs the next in place, so the pid spawned is the final program's. Changing
 * uid clears a parent-death signal set earlier, so the user switch re-arms it.
 */
export function netnsExecPrefix(netns: string, opts: { uid?: number; gid?: number } = {}): string[] {
  const prefix = ["ip", "netns", "exec", netns];
  if (opts.uid === undefined && opts.gid === undefined) return prefix;
  const uid = opts.uid ?? 0;
  const gid = opts.gid ?? uid;
  return [...prefix, "setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--pdeathsig", "KILL", "--"];
}

const livePods = new Set<PodImpl>();

/**
 * Creates pod `name`: namespace `<prefix><name>`, a veth to the bridge (created on first
 * use), the next free address, lo up and a default route via the bridge address.
 */
export async function createPod(name: string, opts: PodNetworkOptions & { address?: string } = {}): Promise<Pod> {
  const layout = layoutOf(opts);
  const wanted = opts.address === undefined ? undefined : Number(opts.address.slice(layout.base.length + 1));
  if (opts.address !== undefined && (!opts.address.startsWith(`${layout.base}.`) || !Number.isInteger(wanted) || wanted! < 2 || wanted! > 254)) {
    throw new Error(`pod "${name}": address "${opts.address}" must be ${layout.base}.2-${layout.base}.254`);
  }
  if (!POD_NAME.test(name)) {
    throw new Error(`pod name "${name}" must be 1-32 lowercase letters, digits or "-", starting and ending with a letter or digit`);
  }
  const netns = layout.prefix + name;
  if ((await listNetns()).includes(netns)) {
    throw new Error(`pod "${name}": network namespace ${netns} already exists ` +
      `(another run is using it, or a crashed run left it: cleanupLeftovers() / \`ip netns del ${netns}\` removes it)`);
  }

  await mustRun(["ip", "netns", "add", netns], `pod "${name}": creating network namespace ${netns}`);
  let pod: PodImpl | undefined;
  try {
    const { octet, hostVeth } = await withNetworkLock(async () => {
      await ensureBridge(layout);
      const claimed = await claimAddress(layout, netns, wanted);
      await mustRun(["ip", "link", "set", claimed.hostVeth, "master", layout.bridge, "up"],
        `pod "${name}": attaching ${claimed.hostVeth} to bridge ${layout.bridge}`);
      return claimed;
    });
    const ip = `${layout.base}.${octet}`;
    pod = new PodImpl(name, netns, ip, hostVeth, layout);
    livePods.add(pod);
    installExitHook();
    await writeOwnerRecord({ netns, hostVeth, ip, bridge: layout.bridge, ...ownerIdentity() });
    const inPod = ["ip", "-n", netns];
    await mustRun([...inPod, "link", "set", "lo", "up"], `pod "${name}": bringing up lo`);
    await mustRun([...inPod, "addr", "add", `${ip}/24`, "dev", "eth0"], `pod "${name}": assigning ${ip}/24 to eth0`);
    await mustRun([...inPod, "link", "set", "eth0", "up"], `pod "${name}": bringing up eth0`);
    await mustRun([...inPod, "route", "add", "default", "via", layout.gateway, "dev", "eth0"],
      `pod "${name}": adding the default route via ${layout.gateway}`);
    return pod;
  } catch (err) {
    if (pod) await pod.destroy().catch(() => {});
    else await runCommand(["ip", "netns", "del", netns]);
    throw err;
  }
}

/** Pods created by this process and not destroyed yet. */
export function livePodList(): Pod[] {
  return [...livePods];
}

/** Destroys every pod this process created (for afterAll and shutdown paths). */
export async function destroyAllPods(): Promise<void> {
  await Promise.all([...livePods].map((pod) => pod.destroy()));
}

class PodImpl implements Pod {
  private readonly children = new Set<ChildProcess>();
  private destroying: Promise<void> | undefined;

  constructor(
    readonly name: string,
    readonly netns: string,
    readonly ip: string,
    readonly hostVeth: string,
    private readonly layout: Layout,
  ) {}

  get gateway(): string {
    return this.layout.gateway;
  }

  get bridge(): string {
    return this.layout.bridge;
  }

  exec(cmd: string[], opts: PodExecOptions = {}): ChildProcess {
    if (this.destroying) throw new Error(`pod "${this.name}" is destroyed`);
    if (cmd.length === 0) throw new Error(`pod "${this.name}": exec needs a command`);
    const inner = [...netnsExecPrefix(this.netns, { uid: opts.uid, gid: opts.gid }), ...cmd];
    const argv = hasSetpriv() ? ["setpriv", "--pdeathsig", "KILL", "--", ...inner] : inner;
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: opts.stdio ?? ["ignore", "pipe", "pipe"],
      ...(opts.env && { env: opts.env }),
      ...(opts.cwd && { cwd: opts.cwd }),
    });
    this.children.add(child);
    child.on("error", () => {}); // surfaced to the caller through 'close' / run()
    child.on("close", () => this.children.delete(child));
    return child;
  }

  run(cmd: string[], opts: PodRunOptions = {}): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      const child = this.exec(cmd, { ...opts, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
      child.on("error", (err) => {
        clearTimeout(timer);
        reject(new Error(`pod "${this.name}": cannot run ${cmd.join(" ")}: ${err.message}`));
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      child.stdin?.on("error", () => {});
      child.stdin?.end(opts.input ?? "");
    });
  }

  destroy(): Promise<void> {
    this.destroying ??= this.doDestroy();
    return this.destroying;
  }

  private async doDestroy(): Promise<void> {
    for (const child of this.children) child.kill("SIGKILL");
    await removeNamespace(this.netns);
    // Deleting the namespace destroys eth0 and with it the veth pair; make sure anyway.
    await runCommand(["ip", "link", "del", this.hostVeth]);
    await rm(ownerRecordPath(this.netns), { force: true });
    livePods.delete(this);
    await withNetworkLock(() => removeBridgeIfUnused(this.layout.bridge));
  }

  /** Synchronous best effort for process exit. */
  destroyNow(): void {
    for (const child of this.children) child.kill("SIGKILL");
    killNamespaceProcessesSync(this.netns);
    spawnSync("ip", ["netns", "del", this.netns], { stdio: "ignore" });
    spawnSync("ip", ["link", "del", this.hostVeth], { stdio: "ignore" });
    rmSync(ownerRecordPath(this.netns), { force: true });
  }
}

let exitHookInstalled = false;
/**
 * On a normal exit, tear down pods still alive. (On a fatal signal the process dies before
 * 'exit' handlers run: processes started with exec() die by their parent-death signal and
 * cleanupLeftovers() removes the rest on the next run.)
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    if (livePods.size === 0) return;
    const bridges = new Set<string>();
    for (const pod of livePods) {
      pod.destroyNow();
      bridges.add(pod.bridge);
    }
    livePods.clear();
    for (const bridge of bridges) {
      const ports = spawnSync("ip", ["-j", "link", "show", "master", bridge], { encoding: "utf8" });
      if (ports.status === 0 && parseIpJson(ports.stdout).length === 0) {
        spawnSync("ip", ["link", "del", bridge], { stdio: "ignore" });
        removeHostFirewallRulesSync(bridge);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------
// Bridge, addresses, namespaces

/** Creates and addresses the bridge unless it exists; adds host firewall rules if the host filters. */
async function ensureBridge(layout: Layout): Promise<void> {
  const exists = (await runCommand(["ip", "link", "show", layout.bridge])).code === 0;
  if (!exists) {
    const add = await runCommand(["ip", "link", "add", layout.bridge, "type", "bridge"]);
    if (add.code !== 0 && !/exists/i.test(add.stderr)) {
      throw new Error(`creating bridge ${layout.bridge} failed: ${add.stderr.trim()}`);
    }
  }
  const addresses = await mustRun(["ip", "-j", "addr", "show", "dev", layout.bridge], `reading ${layout.bridge}'s addresses`);
  const has = parseIpJson(addresses).some((link) =>
    Array.isArray(link.addr_info) && link.addr_info.some((a: { local?: string }) => a.local === layout.gateway));
  if (!has) {
    await mustRun(["ip", "addr", "add", `${layout.gateway}/24`, "dev", layout.bridge], `addressing bridge ${layout.bridge}`);
  }
  // A bridge without an address of its own takes the lowest of its ports' MACs, so it changed as
  // pods came and went and the pods' ARP entries for their gateway (the control plane) went stale.
  await mustRun(["ip", "link", "set", layout.bridge, "address", podMac(layout, 1), "up"], `bringing up bridge ${layout.bridge}`);
  await ensureHostFirewallRules(layout.bridge);
}

/**
 * The MAC address of the pod holding `<base>.<octet>`: derived from the address, so a pod that
 * gets the address of a deleted one also gets its MAC. Neighbours' ARP entries for a reused
 * address then stay right; with random MACs they pointed at the deleted pod's MAC for up to
 * ~45 s (REACHABLE, then DELAY and unicast probes), and connections to the new pod hung.
 * Octet 1 is the bridge's (the gateway's) own MAC.
 */
export function podMac(layout: { base: string }, octet: number): string {
  const bytes = [0x02, 0x00, ...layout.base.split(".").map(Number), octet];
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/** Claims the lowest free .2-.254 (or only `only`) by creating its host veth, with the pod end as eth0 in `netns`. */
async function claimAddress(layout: Layout, netns: string, only?: number): Promise<{ octet: number; hostVeth: string }> {
  const taken = new Set(hostLinks().filter((n) => n.startsWith(`${layout.prefix}v`)));
  let lastError = "";
  for (let octet = only ?? 2; octet <= (only ?? 254); octet++) {
    const hostVeth = `${layout.prefix}v${octet}`;
    if (taken.has(hostVeth)) continue;
    const add = await runCommand(["ip", "link", "add", hostVeth, "type", "veth", "peer", "name", "eth0", "address", podMac(layout, octet), "netns", netns]);
    if (add.code === 0) return { octet, hostVeth };
    lastError = add.stderr.trim();
    if (!/exists/i.test(lastError)) throw new Error(`creating veth ${hostVeth} for ${netns} failed: ${lastError}`);
  }
  if (only !== undefined) throw new Error(`address ${layout.base}.${only} is taken (${lastError || `${layout.prefix}v${only} exists`})`);
  throw new Error(`no free address left in ${layout.base}.0/24 (last error: ${lastError || "all of .2-.254 are taken"})`);
}

async function removeBridgeIfUnused(bridge: string): Promise<void> {
  const ports = await runCommand(["ip", "-j", "link", "show", "master", bridge]);
  if (ports.code !== 0) return; // no such bridge
  if (parseIpJson(ports.stdout).length > 0) return;
  await runCommand(["ip", "link", "del", bridge]);
  await removeHostFirewallRules(bridge);
}

interface IpLink {
  ifname?: string;
  addr_info?: { local?: string }[];
  [key: string]: unknown;
}

function parseIpJson(text: string): IpLink[] {
  if (text.trim() === "") return [];
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? (parsed as IpLink[]) : [];
  } catch {
    return [];
  }
}

function hostLinks(): string[] {
  const out = spawnSync("ip", ["-j", "link", "show"], { encoding: "utf8" });
  return parseIpJson(out.stdout ?? "").flatMap((l) => (typeof l.ifname === "string" ? [l.ifname] : []));
}

async function listNetns(): Promise<string[]> {
  const out = await runCommand(["ip", "netns", "list"]);
  // Lines look like "weft-a (id: 3)" or just "weft-a".
  return out.stdout.split("\n").map((l) => l.trim().split(/\s+/)[0] ?? "").filter((n) => n !== "");
}

/** Kills every process in the namespace, waits for them to go, deletes the namespace. */
async function removeNamespace(netns: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const pids = await namespacePids(netns);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await sleep(20);
  }
  await runCommand(["ip", "netns", "del", netns]);
}

async function namespacePids(netns: string): Promise<number[]> {
  const out = await runCommand(["ip", "netns", "pids", netns]);
  return out.code === 0 ? out.stdout.split(/\s+/).filter((p) => /^\d+$/.test(p)).map(Number) : [];
}

function killNamespaceProcessesSync(netns: string): void {
  const out = spawnSync("ip", ["netns", "pids", netns], { encoding: "utf8" });
  for (const pid of (out.stdout ?? "").split(/\s+/).filter((p) => /^\d+$/.test(p))) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // already gone
    }
  }
}

// ---------------------------------------------------------------------------------------
// Host firewall: only when the host filters. With br_netfilter loaded
// (net.bridge.bridge-nf-call-iptables=1) bridged pod-to-pod traffic crosses the host's
// FORWARD chain, and pod-to-host traffic always crosses INPUT. A host whose chains are
// empty with policy ACCEPT needs nothing; otherwise (Docker sets FORWARD to DROP, for one)
// we insert ACCEPT rules for the bridge, tagged with a comment, and remove them with it.

function firewallComment(bridge: string): string {
  return `weft:${bridge}`;
}

function hostFirewallRules(bridge: string): { chain: "INPUT" | "FORWARD"; spec: string[] }[] {
  const comment = ["-m", "comment", "--comment", firewallComment(bridge)];
  return [
    { chain: "INPUT", spec: ["-i", bridge, ...comment, "-j", "ACCEPT"] },
    { chain: "FORWARD", spec: ["-i", bridge, "-o", bridge, ...comment, "-j", "ACCEPT"] },
  ];
}

/** True when a chain is anything but empty with policy ACCEPT (`iptables -S` lists "-P X ACCEPT" alone then). */
function chainFilters(listing: string, chain: string): boolean {
  const lines = listing.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  return !(lines.length === 1 && lines[0] === `-P ${chain} ACCEPT`);
}

async function ensureHostFirewallRules(bridge: string): Promise<void> {
  if (!onPath("iptables")) return;
  const bridgeNf = await readFile("/proc/sys/net/bridge/bridge-nf-call-iptables", "utf8").catch(() => "0");
  for (const { chain, spec } of hostFirewallRules(bridge)) {
    if (chain === "FORWARD" && bridgeNf.trim() !== "1") continue;
    const listing = await runCommand(["iptables", "-w", "5", "-S", chain]);
    if (listing.code !== 0 || !chainFilters(listing.stdout, chain)) continue;
    if ((await runCommand(["iptables", "-w", "5", "-C", chain, ...spec])).code === 0) continue;
    await mustRun(["iptables", "-w", "5", "-I", chain, "1", ...spec], `allowing ${bridge} traffic in the host's ${chain} chain`);
  }
}

async function removeHostFirewallRules(bridge: string): Promise<void> {
  if (!onPath("iptables")) return;
  for (const { chain, spec } of hostFirewallRules(bridge)) {
    const listing = await runCommand(["iptables", "-w", "5", "-S", chain]);
    if (listing.code !== 0 || !listing.stdout.includes(firewallComment(bridge))) continue;
    while ((await runCommand(["iptables", "-w", "5", "-D", chain, ...spec])).code === 0) {
      // delete every copy
    }
  }
}

function removeHostFirewallRulesSync(bridge: string): void {
  if (!onPath("iptables")) return;
  for (const { chain, spec } of hostFirewallRules(bridge)) {
    const listing = spawnSync("iptables", ["-w", "5", "-S", chain], { encoding: "utf8" });
    if (listing.status !== 0 || !(listing.stdout ?? "").includes(firewallComment(bridge))) continue;
    for (let i = 0; i < 10; i++) {
      if (spawnSync("iptables", ["-w", "5", "-D", chain, ...spec], { stdio: "ignore" }).status !== 0) break;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Owner records and the cross-process lock

function runDir(): string {
  return process.env.WEFT_RUN_DIR || "/run/weft";
}

function ownerRecordPath(netns: string): string {
  return path.join(runDir(), "pods", `${netns}.json`);
}

interface OwnerRecord {
  netns: string;
  hostVeth?: string;
  ip?: string;
  bridge?: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat: tells a live owner from a reused pid. */
  startTime: string;
}

export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

export function ownerIdentity(): { pid: number; startTime: string } {
  return { pid: process.pid, startTime: processStartTime(process.pid) ?? "" };
}

export function ownerAlive(record: { pid: number; startTime: string }): boolean {
  const now = processStartTime(record.pid);
  return now !== undefined && now === record.startTime;
}

async function writeOwnerRecord(record: OwnerRecord): Promise<void> {
  await mkdir(path.dirname(ownerRecordPath(record.netns)), { recursive: true });
  await writeFile(ownerRecordPath(record.netns), JSON.stringify(record) + "\n");
}

async function readOwnerRecord(netns: string): Promise<OwnerRecord | undefined> {
  try {
    const parsed = JSON.parse(await readFile(ownerRecordPath(netns), "utf8")) as Partial<OwnerRecord>;
    return typeof parsed.pid === "number" && typeof parsed.startTime === "string" ? (parsed as OwnerRecord) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Marks a namespace that is not a pod (e.g. captureSupport()'s probe) as owned by this
 * process, so a concurrent cleanupLeftovers() leaves it alone. Returns the unmark function.
 */
export async function markNamespaceOwned(netns: string): Promise<() => Promise<void>> {
  await writeOwnerRecord({ netns, ...ownerIdentity() });
  return () => rm(ownerRecordPath(netns), { force: true });
}

/**
 * Serializes bridge creation/attachment and last-pod bridge removal across processes, so a
 * pod being attached in one process cannot lose its bridge to a teardown in another.
 * mkdir is atomic; a lock whose owner died is taken over.
 */
async function withNetworkLock<T>(fn: () => Promise<T>): Promise<T> {
  const lockDir = path.join(runDir(), "network.lock");
  const ownerFile = path.join(lockDir, "owner.json");
  await mkdir(runDir(), { recursive: true });
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(ownerFile, JSON.stringify(ownerIdentity()));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = await readFile(ownerFile, "utf8").then((t) => JSON.parse(t) as { pid: number; startTime: string }).catch(() => undefined);
      // No owner file yet: the holder is between mkdir and writeFile; wait for it.
      if (owner && !ownerAlive(owner)) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(`pod network: lock ${lockDir} held by pid ${owner?.pid ?? "unknown"} for over 15 s; ` +
          `remove the directory if that process is stuck`);
      }
      await sleep(20);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(ownerFile, { force: true });
    await rmdir(lockDir).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------
// Leftovers

export interface PodNamespace {
  netns: string;
  /** From the owner record; undefined when there is none. */
  ownerPid?: number;
  /** True when the process that created it is still running (or it is ours). */
  ownerAlive: boolean;
}

/** Network namespaces named `<prefix>*` and whether their creator is still running. */
export async function listPodNamespaces(prefix = DEFAULT_POD_NETWORK.prefix): Promise<PodNamespace[]> {
  const ours = new Set([...livePods].map((p) => p.netns));
  const out: PodNamespace[] = [];
  for (const netns of (await listNetns()).filter((n) => n.startsWith(prefix))) {
    const record = await readOwnerRecord(netns);
    out.push({
      netns,
      ...(record && { ownerPid: record.pid }),
      ownerAlive: ours.has(netns) || (record !== undefined && ownerAlive(record)),
    });
  }
  return out;
}

export interface CleanupOptions {
  /** Bridge to remove when nothing is attached any more. Default "weft0". */
  bridge?: string;
  /** Also remove pods whose owner process is still running. Default false. */
  includeLive?: boolean;
}

export interface CleanupReport {
  namespaces: string[];
  veths: string[];
  bridge?: string;
  /** Namespaces left alone because their owner process is alive. */
  skippedLive: string[];
}

/**
 * Removes what a crashed run left behind: namespaces named `<prefix>*` (killing the
 * processes in them), host veths named `<prefix>v<n>`, and the bridge once nothing is
 * attached. Pods owned by a live process (per their owner record) are left alone unless
 * includeLive is set. `weft demo` calls this at start.
 */
export async function cleanupLeftovers(prefix = DEFAULT_POD_NETWORK.prefix, opts: CleanupOptions = {}): Promise<CleanupReport> {
  const bridge = opts.bridge ?? DEFAULT_POD_NETWORK.bridge;
  const report: CleanupReport = { namespaces: [], veths: [], skippedLive: [] };
  const protectedVeths = new Set<string>();
  const ours = new Set([...livePods].map((p) => p.netns));

  for (const netns of (await listNetns()).filter((n) => n.startsWith(prefix))) {
    const record = await readOwnerRecord(netns);
    if (!opts.includeLive && (ours.has(netns) || (record && ownerAlive(record)))) {
      report.skippedLive.push(netns);
      if (record?.hostVeth) protectedVeths.add(record.hostVeth);
      continue;
    }
    await removeNamespace(netns);
    await rm(ownerRecordPath(netns), { force: true });
    report.namespaces.push(netns);
  }
  for (const pod of livePods) if (!opts.includeLive) protectedVeths.add(pod.hostVeth);

  for (const link of hostLinks()) {
    if (!new RegExp(`^${escapeRegExp(prefix)}v\\d+$`).test(link) || protectedVeths.has(link)) continue;
    if ((await runCommand(["ip", "link", "del", link])).code === 0) report.veths.push(link);
  }
  // Records of namespaces that no longer exist.
  const pods = path.join(runDir(), "pods");
  for (const file of await readdir(pods).catch(() => [] as string[])) {
    const netns = file.replace(/\.json$/, "");
    if (!netns.startsWith(prefix) || report.skippedLive.includes(netns)) continue;
    const record = await readOwnerRecord(netns);
    if (!record || !ownerAlive(record) || opts.includeLive) await rm(path.join(pods, file), { force: true });
  }
  if (opts.includeLive) {
    for (const pod of [...livePods]) livePods.delete(pod);
  }
  await withNetworkLock(async () => {
    const existed = (await runCommand(["ip", "link", "show", bridge])).code === 0;
    await removeBridgeIfUnused(bridge);
    if (existed && (await runCommand(["ip", "link", "show", bridge])).code !== 0) report.bridge = bridge;
  });
  return report;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
