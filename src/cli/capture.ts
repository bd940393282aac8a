// weft capture: install or remove the sidecar capture rules (iptables nat) in the current
// network namespace — what a Kubernetes init container runs before the app and its
// sidecar start — and check whether transparent capture is possible here.
//
//   weft capture apply --proxy-uid 1337 [--inbound-port 15006] [--outbound-port 15001]
//                      [--exclude-inbound-ports 22,...] [--exclude-outbound-ports ...]
//                      [--include-outbound-cidrs "*"] [--dry-run]
//   weft capture remove
//   weft capture check
import {
  applyCapture,
  captureRules,
  captureSupport,
  DEFAULT_INBOUND_PORT,
  DEFAULT_OUTBOUND_PORT,
  removeCapture,
  type CaptureOptions,
} from "../capture/iptables.js";
import { DEFAULT_PROXY_UID } from "../capture/sidecar.js";
import { helpText, parseFlags, parsePort, type FlagSpec } from "./flags.js";
import { UsageError } from "./usage-error.js";

const NETNS_FLAG = {
  netns: { type: "string", help: "work in this named network namespace (ip netns) instead of the current one" },
} satisfies Record<string, FlagSpec>;

const APPLY_FLAGS = {
  "proxy-uid": { type: "string", env: "WEFT_PROXY_UID", default: String(DEFAULT_PROXY_UID), help: "uid Envoy runs as; its traffic is not captured" },
  "proxy-gid": { type: "string", env: "WEFT_PROXY_GID", help: "gid Envoy runs as (default: the proxy uid)" },
  "inbound-port": { type: "string", env: "WEFT_INBOUND_PORT", default: String(DEFAULT_INBOUND_PORT), help: "Envoy's inbound capture port" },
  "outbound-port": { type: "string", env: "WEFT_OUTBOUND_PORT", default: String(DEFAULT_OUTBOUND_PORT), help: "Envoy's outbound capture port" },
  "exclude-inbound-ports": { type: "string", env: "WEFT_EXCLUDE_INBOUND_PORTS", help: "comma-separated inbound ports not to capture (22 and the proxy's ports never are)" },
  "exclude-outbound-ports": { type: "string", env: "WEFT_EXCLUDE_OUTBOUND_PORTS", help: "comma-separated destination ports not to capture" },
  "include-outbound-cidrs": { type: "string", env: "WEFT_INCLUDE_OUTBOUND_CIDRS", default: "*", help: "comma-separated IPv4 CIDRs to capture outbound, \"*\" for all, \"\" for none" },
  "dry-run": { type: "boolean", help: "print the iptables-restore input instead of applying it" },
  ...NETNS_FLAG,
} satisfies Record<string, FlagSpec>;

const SUBCOMMANDS: Record<string, string> = {
  apply: "install (or replace) the capture rules",
  remove: "remove the capture rules",
  check: "say whether transparent capture works on this machine (exit 1 if not)",
};

function usage(): string {
  const rows = Object.entries(SUBCOMMANDS).map(([name, summary]) => `  ${name.padEnd(8)} ${summary}`);
  return "Usage: weft capture <apply|remove|check> [flags]\n\n" +
    "Sidecar traffic capture: iptables nat rules that send the pod's inbound TCP to Envoy's\n" +
    "inbound port and the app's outbound TCP to Envoy's outbound port (like istio-init).\n" +
    "Runs in the current network namespace; needs root (CAP_NET_ADMIN) and iptables.\n\n" +
    `Subcommands:\n${rows.join("\n")}\n\nRun 'weft capture <subcommand> --help' for its flags.\n`;
}

export async function runCapture(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    process.stdout.write(usage());
    return sub === undefined ? 2 : 0;
  }
  switch (sub) {
    case "apply":
      return runApply(rest);
    case "remove":
      return runRemove(rest);
    case "check":
      return runCheck(rest);
    default:
      throw new UsageError(`unknown subcommand "${sub}"; expected apply, remove or check`);
  }
}

async function runApply(argv: string[]): Promise<number> {
  const { help, values } = parseFlags(argv, APPLY_FLAGS);
  if (help) {
    process.stdout.write(helpText("capture apply", "Installs the sidecar capture rules (iptables nat table). Idempotent: re-running replaces them.", APPLY_FLAGS));
    return 0;
  }
  const opts: CaptureOptions = {
    proxyUid: parseId("proxy-uid", values["proxy-uid"]),
    ...(values["proxy-gid"] !== undefined && { proxyGid: parseId("proxy-gid", values["proxy-gid"]) }),
    inboundPort: parseNonZeroPort("inbound-port", values["inbound-port"]),
    outboundPort: parseNonZeroPort("outbound-port", values["outbound-port"]),
    excludeInboundPorts: parsePortList("exclude-inbound-ports", values["exclude-inbound-ports"]),
    excludeOutboundPorts: parsePortList("exclude-outbound-ports", values["exclude-outbound-ports"]),
    includeOutboundCidrs: values["include-outbound-cidrs"] ?? "*",
  };
  let rules: string;
  try {
    rules = captureRules(opts);
  } catch (err) {
    // Name the flag, not the option field.
    const flags: Record<string, string> = {
      proxyUid: "--proxy-uid", proxyGid: "--proxy-gid", inboundPort: "--inbound-port", outboundPort: "--outbound-port",
      excludeInboundPorts: "--exclude-inbound-ports", excludeOutboundPorts: "--exclude-outbound-ports",
      includeOutboundCidrs: "--include-outbound-cidrs",
    };
    throw new UsageError((err as Error).message.replace(/^capture: /, "")
      .replace(/\b(proxyUid|proxyGid|inboundPort|outboundPort|excludeInboundPorts|excludeOutboundPorts|includeOutboundCidrs)\b/g, (m) => flags[m] ?? m));
  }
  if (values["dry-run"]) {
    process.stdout.write(rules);
    return 0;
  }
  const netns = values.netns;
  await applyCapture(netns, opts);
  process.stderr.write(`weft capture: installed: inbound TCP -> ${opts.inboundPort}, outbound TCP -> ${opts.outboundPort}, ` +
    `proxy uid ${opts.proxyUid} exempt${netns ? ` (network namespace ${netns})` : ""}\n`);
  return 0;
}

async function runRemove(argv: string[]): Promise<number> {
  const { help, values } = parseFlags(argv, NETNS_FLAG);
  if (help) {
    process.stdout.write(helpText("capture remove", "Removes the sidecar capture rules (every WEFT_ chain and the jumps to them).", NETNS_FLAG));
    return 0;
  }
  const removed = await removeCapture(values.netns);
  process.stderr.write(`weft capture: ${removed ? "removed the capture rules" : "no capture rules were installed"}\n`);
  return 0;
}

async function runCheck(argv: string[]): Promise<number> {
  const { help } = parseFlags(argv, {});
  if (help) {
    process.stdout.write(helpText("capture check", "Probes whether transparent capture works here (root, iptables, network namespaces).", {}));
    return 0;
  }
  const support = await captureSupport();
  process.stdout.write(support.transparent ? "transparent capture: available\n" : `transparent capture: unavailable: ${support.reason}\n`);
  return support.transparent ? 0 : 1;
}

function parseId(name: string, value: string | undefined): number {
  if (value === undefined || !/^\d+$/.test(value)) throw new UsageError(`--${name} must be a numeric id, got "${value ?? ""}"`);
  return Number(value);
}

function parseNonZeroPort(name: string, value: string | undefined): number {
  const port = parsePort(name, value);
  if (port === 0) throw new UsageError(`--${name} must be a port number 1-65535, got "0"`);
  return port;
}

function parsePortList(name: string, value: string | undefined): number[] {
  if (value === undefined || value.trim() === "") return [];
  return value.split(",").map((item) => item.trim()).filter((item) => item !== "").map((item) => {
    if (!/^\d+$/.test(item) || Number(item) < 1 || Number(item) > 65535) {
      throw new UsageError(`--${name} must be comma-separated ports 1-65535, got "${item}" in "${value}"`);
    }
    return Number(item);
  });
}
