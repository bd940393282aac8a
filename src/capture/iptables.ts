// Sidecar traffic capture: the iptables rules (nat table) that send a pod's TCP traffic
// through its Envoy, equivalent to Istio's istio-iptables / istio-init.
//
// ## Two capture modes
//
// TRANSPARENT (the default where possible). Apps dial their peers' real addresses and
// listen on their real ports; the nat rules below, installed in the pod's network
// namespace, redirect:
//   - inbound TCP to any port (except the proxy's own ports, 22 and excludeInboundPorts)
//     to Envoy's inbound listener, 15006;
//   - outbound TCP from the app to Envoy's outbound listener, 15001, except traffic from
//     the proxy's own uid/gid (Envoy's upstream connections, which would loop), traffic to
//     loopback, and excludeOutboundPorts.
// Envoy recovers the address the app actually dialled with SO_ORIGINAL_DST (listener
// filter envoy.filters.listener.original_dst) and routes on it. Envoy runs as a dedicated
// uid (1337 by convention, see src/capture/sidecar.ts); it must never be the app's uid.
// Needs root (CAP_NET_ADMIN) in the pod's namespace, the iptables binaries and kernel nat
// support; captureSupport() checks all three. IPv4 only (no ip6tables rules yet).
//
// EXPLICIT (the fallback when captureSupport() says transparent is impossible: not root,
// no iptables, no network namespaces, e.g. a laptop or a locked-down container; or when
// WEFT_CAPTURE_MODE=explicit forces it). No iptables, nothing is redirected, Envoy needs
// no special uid and no privileges. This is Istio's Sidecar resource with
// `captureMode: NONE` and egress listeners bound to 127.0.0.1; the proxy announces it
// with node metadata INTERCEPTION_MODE=NONE (src/model/proxy.ts).
//   - outbound: the app addresses its sidecar directly, on loopback. The translator
//     (src/translate/sidecar.ts) builds one HTTP listener on 127.0.0.1:<explicit port>
//     (default 15080, node metadata WEFT_EXPLICIT_PORT) that routes by Host/:authority to
//     every service the proxy can see: the app sends plain HTTP to 127.0.0.1:15080 with
//     `Host: reviews.default.svc.cluster.local:9080` (or uses it as its HTTP proxy).
//     Istio's per-port form — a listener on 127.0.0.1:<service port> per service — is the
//     natural extension for non-HTTP (TCP) services, which need one loopback port each:
//     a Sidecar egress listener with a port builds it (src/translate/egress-listeners.ts).
//   - inbound: traffic arrives where the peer addresses it. A sidecar's inbound listener
//     only sees it when peers target the sidecar's inbound port (the workload's endpoints
//     advertise <pod ip>:<inbound port>, and the inbound listener forwards to the app on
//     127.0.0.1:<app port>, the app listening on 127.0.0.1 only). In explicit mode the
//     translator builds inbound listeners only from a Sidecar resource's `ingress` listeners
//     (each bound to its port, forwarding to its defaultEndpoint, as Istio); without one,
//     inbound goes straight to the app and inbound policy (mTLS, authorization) is not
//     enforced for explicit-mode workloads.
// This module only decides (captureSupport) and, in transparent mode, captures; the
// translation layer builds the listeners for both modes.
//
// ## The rules (defaults: proxy uid 1337, outbound 15001, inbound 15006)
//
//   PREROUTING -p tcp -j WEFT_INBOUND             every inbound TCP connection ...
//   WEFT_INBOUND --dport <excluded> -j RETURN      ... except proxy ports, 22 and excludes ...
//   WEFT_INBOUND -j WEFT_IN_REDIRECT               ... goes to Envoy's inbound listener
//   WEFT_IN_REDIRECT -j REDIRECT --to-ports 15006
//   OUTPUT -p tcp -j WEFT_OUTPUT
//   WEFT_OUTPUT --dport <excluded> -j RETURN       excluded outbound ports are never captured
//   WEFT_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN    Envoy's inbound passthrough to the app
//                                                   (it binds 127.0.0.6 as source)
//   WEFT_OUTPUT ! -d 127.0.0.1/32 -o lo --uid-owner 1337 -j WEFT_IN_REDIRECT
//        Envoy calling a service whose endpoint is this very pod (dst = own pod IP, so the
//        kernel routes it over lo): treat it as inbound, so inbound policy still applies
//   WEFT_OUTPUT -o lo ! --uid-owner 1337 -j RETURN the app talking to itself: not captured
//   WEFT_OUTPUT --uid-owner 1337 -j RETURN         everything else Envoy sends: no loop
//   (the same three for --gid-owner)
//   WEFT_OUTPUT -d 127.0.0.1/32 -j RETURN          loopback
//   WEFT_OUTPUT -j WEFT_REDIRECT                    (or -d <cidr> per includeOutboundCidrs)
//   WEFT_REDIRECT -j REDIRECT --to-ports 15001
//
// So the Envoy config must: exempt nothing itself (the uid does that); bind source
// 127.0.0.6 on any cluster that connects to the pod's OWN IP (the ORIGINAL_DST inbound
// passthrough cluster; Istio sets upstream_bind_config on InboundPassthroughCluster).
// Without that bind the connection matches the WEFT_IN_REDIRECT rule above and comes
// straight back to 15006: measured here, one request became 1024 looped connections (the
// default max_connections circuit breaker) and the client got a reset. Inbound clusters
// that target 127.0.0.1:<port> need no bind.
//
// applyCapture()/removeCapture() are idempotent and atomic: one `iptables-restore
// --noflush` that (re)declares the WEFT_ chains (declaring flushes them), deletes jumps
// to them left by an earlier apply, and appends the new rules. Other nat rules are kept.

import { isIP } from "node:net";
import { markNamespaceOwned, mustRun, netnsExecPrefix, onPath, runCommand } from "./pod-network.js";

export interface CaptureOptions {
  /** uid Envoy runs as; its traffic is never captured. */
  proxyUid: number;
  /** gid Envoy runs as. Default proxyUid. */
  proxyGid?: number;
  /** Envoy's outbound (virtual) listener. Default 15001. */
  outboundPort?: number;
  /** Envoy's inbound listener. Default 15006. */
  inboundPort?: number;
  /** Inbound ports never captured, on top of ALWAYS_EXCLUDED_INBOUND_PORTS. */
  excludeInboundPorts?: number[];
  /** Outbound destination ports never captured. */
  excludeOutboundPorts?: number[];
  /** Comma-separated IPv4 CIDRs whose outbound traffic is captured; "*" (default) means all, "" none. */
  includeOutboundCidrs?: string;
}

export const DEFAULT_OUTBOUND_PORT = 15001;
export const DEFAULT_INBOUND_PORT = 15006;
/** Envoy's inbound passthrough binds this source so the app-bound hop is not captured again. */
export const INBOUND_PASSTHROUGH_SOURCE = "127.0.0.6";

/**
 * Inbound ports never redirected: ssh, and the proxy's own ports (admin 15000, outbound
 * 15001, inbound 15006, HBONE 15008, agent 15020, health 15021, Prometheus 15090).
 */
export const ALWAYS_EXCLUDED_INBOUND_PORTS: readonly number[] = [22, 15000, 15001, 15006, 15008, 15020, 15021, 15090];

export const CAPTURE_CHAINS = ["WEFT_INBOUND", "WEFT_IN_REDIRECT", "WEFT_OUTPUT", "WEFT_REDIRECT"] as const;
const CHAIN_PREFIX = "WEFT_";

// ---------------------------------------------------------------------------------------
// Rules text (pure)

interface ResolvedOptions {
  uid: number;
  gid: number;
  outboundPort: number;
  inboundPort: number;
  excludeInbound: number[];
  excludeOutbound: number[];
  /** undefined: capture all destinations. */
  cidrs: string[] | undefined;
}

function resolve(opts: CaptureOptions): ResolvedOptions {
  const id = (name: string, value: number): number => {
    if (!Number.isInteger(value) || value < 0 || value > 0xfffffffe) {
      throw new Error(`capture: ${name} must be a non-negative integer, got ${value}`);
    }
    return value;
  };
  const port = (name: string, value: number): number => {
    if (!Number.isInteger(value) || value < 1 || value > 65535) {
      throw new Error(`capture: ${name} must be a port 1-65535, got ${value}`);
    }
    return value;
  };
  const uid = id("proxyUid", opts.proxyUid);
  const gid = id("proxyGid", opts.proxyGid ?? uid);
  const outboundPort = port("outboundPort", opts.outboundPort ?? DEFAULT_OUTBOUND_PORT);
  const inboundPort = port("inboundPort", opts.inboundPort ?? DEFAULT_INBOUND_PORT);
  if (outboundPort === inboundPort) throw new Error(`capture: outboundPort and inboundPort must differ (both ${inboundPort})`);
  const excludeInbound = sortedUnique([
    ...ALWAYS_EXCLUDED_INBOUND_PORTS, outboundPort, inboundPort,
    ...(opts.excludeInboundPorts ?? []).map((p) => port("excludeInboundPorts entry", p)),
  ]);
  const excludeOutbound = sortedUnique((opts.excludeOutboundPorts ?? []).map((p) => port("excludeOutboundPorts entry", p)));
  return { uid, gid, outboundPort, inboundPort, excludeInbound, excludeOutbound, cidrs: parseCidrs(opts.includeOutboundCidrs ?? "*") };
}

function sortedUnique(values: number[]): number[] {
  return [...new Set(values)].sort((a, b) => a - b);
}

/** "*" -> undefined (all); "" -> []; "10.0.0.0/8, 10.77.0.3" -> ["10.0.0.0/8", "10.77.0.3/32"]. */
function parseCidrs(text: string): string[] | undefined {
  const items = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.includes("*")) {
    if (items.length > 1) throw new Error(`capture: includeOutboundCidrs "${text}" mixes "*" with CIDRs`);
    return undefined;
  }
  return items.map((item) => {
    const [address = "", bits = "32", extra] = item.split("/");
    const n = Number(bits);
    if (extra !== undefined || isIP(address) !== 4 || !/^\d+$/.test(bits) || n > 32) {
      throw new Error(`capture: includeOutboundCidrs entry "${item}" is not an IPv4 CIDR like 10.0.0.0/8`);
    }
    return `${address}/${n}`;
  });
}

/** The capture rules as `-A ...` lines (no table header, no chain declarations). */
function ruleLines(o: ResolvedOptions): string[] {
  const lines = [
    "-A PREROUTING -p tcp -j WEFT_INBOUND",
    "-A OUTPUT -p tcp -j WEFT_OUTPUT",
    ...o.excludeInbound.map((p) => `-A WEFT_INBOUND -p tcp -m tcp --dport ${p} -j RETURN`),
    "-A WEFT_INBOUND -p tcp -j WEFT_IN_REDIRECT",
    `-A WEFT_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${o.inboundPort}`,
    ...o.excludeOutbound.map((p) => `-A WEFT_OUTPUT -p tcp -m tcp --dport ${p} -j RETURN`),
    `-A WEFT_OUTPUT -s ${INBOUND_PASSTHROUGH_SOURCE}/32 -o lo -j RETURN`,
  ];
  for (const [flag, value] of [["--uid-owner", o.uid], ["--gid-owner", o.gid]] as const) {
    lines.push(
      `-A WEFT_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner ${flag} ${value} -j WEFT_IN_REDIRECT`,
      `-A WEFT_OUTPUT -o lo -m owner ! ${flag} ${value} -j RETURN`,
      `-A WEFT_OUTPUT -m owner ${flag} ${value} -j RETURN`,
    );
  }
  lines.push("-A WEFT_OUTPUT -d 127.0.0.1/32 -j RETURN");
  if (o.cidrs === undefined) lines.push("-A WEFT_OUTPUT -j WEFT_REDIRECT");
  else for (const cidr of o.cidrs) lines.push(`-A WEFT_OUTPUT -d ${cidr} -j WEFT_REDIRECT`);
  lines.push(`-A WEFT_REDIRECT -p tcp -j REDIRECT --to-ports ${o.outboundPort}`);
  return lines;
}

/**
 * The iptables-restore input (nat table) that installs capture in a namespace without
 * Weft rules yet: `iptables-restore --noflush < text`. (applyCapture also handles a
 * namespace that has them, see captureRestoreText.)
 */
export function captureRules(opts: CaptureOptions): string {
  const lines = ["*nat", ...CAPTURE_CHAINS.map((c) => `:${c} - [0:0]`), ...ruleLines(resolve(opts)), "COMMIT"];
  return lines.join("\n") + "\n";
}

/**
 * Jumps into WEFT_ chains from other chains in `iptables-save -t nat` output, as the
 * `-D ...` lines that delete them.
 */
export function staleJumpDeletions(savedNat: string): string[] {
  const jump = new RegExp(`\\s-[jg]\\s+${CHAIN_PREFIX}\\S+`);
  return savedNat.split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("-A ") && !l.startsWith(`-A ${CHAIN_PREFIX}`) && jump.test(l))
    .map((l) => `-D ${l.slice(3)}`);
}

/** WEFT_ chains that exist in `iptables-save -t nat` output. */
export function existingCaptureChains(savedNat: string): string[] {
  return savedNat.split("\n")
    .map((l) => /^:(\S+)\s/.exec(l.trim())?.[1])
    .filter((c): c is string => c !== undefined && c.startsWith(CHAIN_PREFIX));
}

/**
 * `iptables-restore --noflush` input that moves a namespace from its current nat state
 * (`iptables-save -t nat` output) to exactly one copy of the capture rules.
 */
export function captureRestoreText(savedNat: string, opts: CaptureOptions): string {
  const rules = ruleLines(resolve(opts));
  const stale = existingCaptureChains(savedNat).filter((c) => !(CAPTURE_CHAINS as readonly string[]).includes(c));
  return [
    "*nat",
    ...[...CAPTURE_CHAINS, ...stale].map((c) => `:${c} - [0:0]`), // declaring an existing chain flushes it
    ...staleJumpDeletions(savedNat),
    ...stale.map((c) => `-X ${c}`),
    ...rules,
    "COMMIT",
  ].join("\n") + "\n";
}

/** `iptables-restore --noflush` input removing every WEFT_ chain and jump; undefined when there is none. */
export function removalRestoreText(savedNat: string): string | undefined {
  const chains = existingCaptureChains(savedNat);
  const jumps = staleJumpDeletions(savedNat);
  if (chains.length === 0 && jumps.length === 0) return undefined;
  return [
    "*nat",
    ...jumps,
    ...chains.map((c) => `:${c} - [0:0]`),
    ...chains.map((c) => `-X ${c}`),
    "COMMIT",
  ].join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------
// Applying (inside a namespace, or in the current one when netns is undefined)

function inNamespace(netns: string | undefined, argv: string[]): string[] {
  return netns === undefined ? argv : [...netnsExecPrefix(netns), ...argv];
}

async function saveNat(netns: string | undefined): Promise<string> {
  return mustRun(inNamespace(netns, ["iptables-save", "-t", "nat"]), `reading the nat table${where(netns)}`);
}

async function restoreNoflush(netns: string | undefined, text: string, what: string): Promise<void> {
  await mustRun(inNamespace(netns, ["iptables-restore", "--noflush"]), `${what}${where(netns)}`, { input: text });
}

function where(netns: string | undefined): string {
  return netns === undefined ? "" : ` in network namespace ${netns}`;
}

/** Installs (or replaces) the capture rules in `netns` (undefined: this process's namespace). Idempotent. */
export async function applyCapture(netns: string | undefined, opts: CaptureOptions): Promise<void> {
  const text = captureRestoreText(await saveNat(netns), opts); // validates opts before touching anything
  await restoreNoflush(netns, text, "installing the capture rules");
}

/** Removes every WEFT_ chain and the jumps to them. Returns false when there was nothing to remove. */
export async function removeCapture(netns: string | undefined): Promise<boolean> {
  const text = removalRestoreText(await saveNat(netns));
  if (text === undefined) return false;
  await restoreNoflush(netns, text, "removing the capture rules");
  return true;
}

// ---------------------------------------------------------------------------------------
// Can we capture here?

export interface CaptureSupport {
  transparent: boolean;
  /** Why not, and what to do about it (set when transparent is false). */
  reason?: string;
}

let cachedSupport: Promise<CaptureSupport> | undefined;

/**
 * Whether transparent capture (pods + iptables) works on this machine: Linux, root, the
 * ip/iptables-restore/iptables-save/setpriv binaries, and a real probe: create a network
 * namespace, install the capture rules in it (owner match, REDIRECT) and delete it.
 * WEFT_CAPTURE_MODE=explicit forces the fallback (default "auto": probe).
 * Cached per process; `refresh` probes again. The probe takes about 30 ms.
 */
export function captureSupport(opts: { refresh?: boolean } = {}): Promise<CaptureSupport> {
  if (opts.refresh) cachedSupport = undefined;
  cachedSupport ??= probeCaptureSupport();
  return cachedSupport;
}

const EXPLICIT = "; using explicit mode (apps call their sidecar on 127.0.0.1)";

async function probeCaptureSupport(): Promise<CaptureSupport> {
  const no = (reason: string): CaptureSupport => ({ transparent: false, reason: reason + EXPLICIT });
  const forced = process.env.WEFT_CAPTURE_MODE;
  if (forced === "explicit") return no("WEFT_CAPTURE_MODE=explicit is set");
  if (forced !== undefined && forced !== "" && forced !== "auto") {
    return no(`WEFT_CAPTURE_MODE="${forced}" is not one of auto, explicit`);
  }
  if (process.platform !== "linux") return no(`transparent capture needs Linux network namespaces and iptables; this is ${process.platform}`);
  const uid = process.getuid?.();
  if (uid !== 0) return no(`transparent capture needs root (network namespaces, iptables); running as uid ${uid}`);
  const missing = ["ip", "iptables-restore", "iptables-save", "setpriv"].filter((b) => !onPath(b));
  if (missing.length > 0) {
    return no(`transparent capture needs ${missing.join(", ")} on PATH (Debian/Ubuntu: apt-get install -y iproute2 iptables util-linux)`);
  }
  const probe = `weft-probe-${process.pid}`;
  const unmark = await markNamespaceOwned(probe).catch(() => async () => {});
  try {
    const add = await runCommand(["ip", "netns", "add", probe]);
    if (add.code !== 0) return no(`cannot create a network namespace (\`ip netns add\`: ${add.stderr.trim()})`);
    try {
      await applyCapture(probe, { proxyUid: 1337 });
    } catch (err) {
      return no(`iptables nat rules do not work here (${(err as Error).message}); the kernel may lack nat/REDIRECT/owner-match support`);
    }
    return { transparent: true };
  } finally {
    await runCommand(["ip", "netns", "del", probe]);
    await unmark();
  }
}
