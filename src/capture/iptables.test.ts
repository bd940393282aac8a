import { afterEach, describe, expect, it, vi } from "vitest";
import { runCapture } from "../cli/capture.js";
import { UsageError } from "../cli/usage-error.js";
import {
  ALWAYS_EXCLUDED_INBOUND_PORTS,
  CAPTURE_CHAINS,
  captureRestoreText,
  captureRules,
  existingCaptureChains,
  removalRestoreText,
  staleJumpDeletions,
} from "./iptables.js";
import { envoyCommandPrefix, sidecarEnvoyOptions } from "./sidecar.js";

const DEFAULT_RULES = `*nat
:WEFT_INBOUND - [0:0]
:WEFT_IN_REDIRECT - [0:0]
:WEFT_OUTPUT - [0:0]
:WEFT_REDIRECT - [0:0]
-A PREROUTING -p tcp -j WEFT_INBOUND
-A OUTPUT -p tcp -j WEFT_OUTPUT
-A WEFT_INBOUND -p tcp -m tcp --dport 22 -j RETURN
-A WEFT_INBOUND -p tcp -m tcp --dport 15000 -j RETURN
-A WEFT_INBOUND -p tcp -m tcp --dport 15001 -j RETURN
-A WEFT_INBOUND -p tcp -m tcp --dport 15006 -j RETURN
-A WEFT_INBOUND -p tcp -m tcp --dport 15008 -j RETURN
-A WEFT_INBOUND -p tcp -m tcp --dport 15020 -j RETURN
-A WEFT_INBOUND -p tcp -m tcp --dport 15021 -j RETURN
-A WEFT_INBOUND -p tcp -m tcp --dport 15090 -j RETURN
-A WEFT_INBOUND -p tcp -j WEFT_IN_REDIRECT
-A WEFT_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A WEFT_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A WEFT_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1337 -j WEFT_IN_REDIRECT
-A WEFT_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A WEFT_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A WEFT_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --gid-owner 1337 -j WEFT_IN_REDIRECT
-A WEFT_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A WEFT_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A WEFT_OUTPUT -d 127.0.0.1/32 -j RETURN
-A WEFT_OUTPUT -j WEFT_REDIRECT
-A WEFT_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
`;

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

describe("captureRules", () => {
  it("matches Istio's sidecar capture with the default ports (WEFT_ chains)", () => {
    expect(captureRules({ proxyUid: 1337 })).toBe(DEFAULT_RULES);
    expect(captureRules({ proxyUid: 1337, outboundPort: 15001, inboundPort: 15006, includeOutboundCidrs: "*" })).toBe(DEFAULT_RULES);
  });

  it("jumps only to declared chains and redirects only in the two redirect chains", () => {
    const text = captureRules({ proxyUid: 7, excludeOutboundPorts: [5432], includeOutboundCidrs: "10.0.0.0/8" });
    const declared = new Set(lines(text).filter((l) => l.startsWith(":")).map((l) => l.slice(1).split(" ")[0]));
    expect([...declared]).toEqual([...CAPTURE_CHAINS]);
    for (const l of lines(text).filter((l) => l.startsWith("-A "))) {
      const target = /-j (\S+)/.exec(l)?.[1];
      expect(["RETURN", "REDIRECT", ...CAPTURE_CHAINS]).toContain(target);
      if (target === "REDIRECT") expect(l).toMatch(/^-A WEFT_(IN_)?REDIRECT /);
    }
    expect(text.startsWith("*nat\n")).toBe(true);
    expect(text.endsWith("COMMIT\n")).toBe(true);
  });

  it("excludes the proxy's ports, 22, the configured listener ports and excludeInboundPorts, sorted once each", () => {
    const text = captureRules({ proxyUid: 1337, inboundPort: 16006, outboundPort: 16001, excludeInboundPorts: [9000, 22, 9000, 80] });
    const excluded = lines(text)
      .filter((l) => l.startsWith("-A WEFT_INBOUND") && l.endsWith("-j RETURN"))
      .map((l) => Number(/--dport (\d+)/.exec(l)?.[1]));
    const expected = [...new Set([...ALWAYS_EXCLUDED_INBOUND_PORTS, 80, 9000, 16001, 16006])].sort((a, b) => a - b);
    expect(excluded).toEqual(expected);
    expect(text).toContain("-A WEFT_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006\n");
    expect(text).toContain("-A WEFT_REDIRECT -p tcp -j REDIRECT --to-ports 16001\n");
    // the catch-all comes after every exclusion
    const all = lines(text);
    expect(all.indexOf("-A WEFT_INBOUND -p tcp -j WEFT_IN_REDIRECT")).toBe(all.findLastIndex((l) => l.startsWith("-A WEFT_INBOUND")));
  });

  it("returns excluded outbound ports before any owner or redirect rule", () => {
    const all = lines(captureRules({ proxyUid: 1337, excludeOutboundPorts: [5432, 3306] }));
    const out = all.filter((l) => l.startsWith("-A WEFT_OUTPUT"));
    expect(out.slice(0, 2)).toEqual([
      "-A WEFT_OUTPUT -p tcp -m tcp --dport 3306 -j RETURN",
      "-A WEFT_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN",
    ]);
  });

  it("exempts the proxy uid and gid separately, before the catch-all redirect", () => {
    const out = lines(captureRules({ proxyUid: 1337, proxyGid: 2000 })).filter((l) => l.startsWith("-A WEFT_OUTPUT"));
    expect(out).toContain("-A WEFT_OUTPUT -m owner --uid-owner 1337 -j RETURN");
    expect(out).toContain("-A WEFT_OUTPUT -m owner --gid-owner 2000 -j RETURN");
    expect(out).toContain("-A WEFT_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --gid-owner 2000 -j WEFT_IN_REDIRECT");
    expect(out.at(-1)).toBe("-A WEFT_OUTPUT -j WEFT_REDIRECT");
    // the inbound passthrough source is the very first loopback exception
    expect(out[0]).toBe("-A WEFT_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN");
  });

  it("captures only includeOutboundCidrs when given, and nothing outbound for an empty list", () => {
    const some = lines(captureRules({ proxyUid: 1337, includeOutboundCidrs: "10.0.0.0/8, 10.77.0.3" }));
    expect(some.filter((l) => l.endsWith("-j WEFT_REDIRECT"))).toEqual([
      "-A WEFT_OUTPUT -d 10.0.0.0/8 -j WEFT_REDIRECT",
      "-A WEFT_OUTPUT -d 10.77.0.3/32 -j WEFT_REDIRECT",
    ]);
    const none = lines(captureRules({ proxyUid: 1337, includeOutboundCidrs: "" }));
    expect(none.filter((l) => l.endsWith("-j WEFT_REDIRECT"))).toEqual([]);
    // inbound capture is unaffected
    expect(none).toContain("-A WEFT_INBOUND -p tcp -j WEFT_IN_REDIRECT");
  });

  it("rejects bad options with a message naming the field", () => {
    expect(() => captureRules({ proxyUid: -1 })).toThrow(/proxyUid must be a non-negative integer/);
    expect(() => captureRules({ proxyUid: 1.5 })).toThrow(/proxyUid/);
    expect(() => captureRules({ proxyUid: 1337, inboundPort: 0 })).toThrow(/inboundPort must be a port 1-65535, got 0/);
    expect(() => captureRules({ proxyUid: 1337, inboundPort: 15001 })).toThrow(/must differ/);
    expect(() => captureRules({ proxyUid: 1337, excludeInboundPorts: [70000] })).toThrow(/excludeInboundPorts entry/);
    expect(() => captureRules({ proxyUid: 1337, includeOutboundCidrs: "10.0.0/8" })).toThrow(/"10.0.0\/8" is not an IPv4 CIDR/);
    expect(() => captureRules({ proxyUid: 1337, includeOutboundCidrs: "10.0.0.0/33" })).toThrow(/not an IPv4 CIDR/);
    expect(() => captureRules({ proxyUid: 1337, includeOutboundCidrs: "*,10.0.0.0/8" })).toThrow(/mixes "\*"/);
  });
});

// What `iptables-save -t nat` prints in a namespace that already has (older) Weft rules
// next to someone else's.
const SAVED_WITH_CAPTURE = `# Generated by iptables-save v1.8.9 (nf_tables) on Mon Nov 23 11:49:09 2026
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:OTHER - [0:0]
:WEFT_INBOUND - [0:0]
:WEFT_OLD - [0:0]
:WEFT_OUTPUT - [0:0]
-A PREROUTING -p tcp -j WEFT_INBOUND
-A PREROUTING -p udp -j OTHER
-A OUTPUT -p tcp -j WEFT_OUTPUT
-A OUTPUT -d 10.1.0.0/16 -g WEFT_OLD
-A POSTROUTING -j MASQUERADE
-A WEFT_INBOUND -p tcp -j WEFT_OLD
-A WEFT_OUTPUT -j RETURN
COMMIT
# Completed on Mon Nov 23 11:49:09 2026
`;

describe("restore texts for an existing namespace", () => {
  it("finds the WEFT_ chains and the jumps into them from other chains", () => {
    expect(existingCaptureChains(SAVED_WITH_CAPTURE)).toEqual(["WEFT_INBOUND", "WEFT_OLD", "WEFT_OUTPUT"]);
    expect(staleJumpDeletions(SAVED_WITH_CAPTURE)).toEqual([
      "-D PREROUTING -p tcp -j WEFT_INBOUND",
      "-D OUTPUT -p tcp -j WEFT_OUTPUT",
      "-D OUTPUT -d 10.1.0.0/16 -g WEFT_OLD",
    ]);
  });

  it("apply: redeclares (flushes) the chains, drops old jumps and stale chains, appends the rules once", () => {
    const text = captureRestoreText(SAVED_WITH_CAPTURE, { proxyUid: 1337 });
    const all = lines(text);
    expect(all[0]).toBe("*nat");
    expect(all.at(-1)).toBe("COMMIT");
    expect(all.filter((l) => l.startsWith(":"))).toEqual([...CAPTURE_CHAINS.map((c) => `:${c} - [0:0]`), ":WEFT_OLD - [0:0]"]);
    expect(all).toContain("-D PREROUTING -p tcp -j WEFT_INBOUND");
    expect(all).toContain("-X WEFT_OLD");
    // deletions happen before the new jumps are appended
    expect(all.indexOf("-D PREROUTING -p tcp -j WEFT_INBOUND")).toBeLessThan(all.indexOf("-A PREROUTING -p tcp -j WEFT_INBOUND"));
    expect(all.indexOf("-X WEFT_OLD")).toBeLessThan(all.indexOf("-A PREROUTING -p tcp -j WEFT_INBOUND"));
    // other rules are not touched (the restore runs with --noflush)
    expect(text).not.toMatch(/OTHER|MASQUERADE/);
    // the rules themselves are exactly captureRules' rules
    const rules = lines(DEFAULT_RULES).filter((l) => l.startsWith("-A "));
    expect(all.filter((l) => l.startsWith("-A "))).toEqual(rules);
  });

  it("apply on a fresh namespace is captureRules plus nothing to delete", () => {
    const fresh = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n";
    expect(captureRestoreText(fresh, { proxyUid: 1337 })).toBe(DEFAULT_RULES);
    expect(captureRestoreText("", { proxyUid: 1337 })).toBe(DEFAULT_RULES);
  });

  it("remove: deletes the jumps, flushes and deletes every WEFT_ chain; nothing when there is none", () => {
    expect(removalRestoreText(SAVED_WITH_CAPTURE)).toBe([
      "*nat",
      "-D PREROUTING -p tcp -j WEFT_INBOUND",
      "-D OUTPUT -p tcp -j WEFT_OUTPUT",
      "-D OUTPUT -d 10.1.0.0/16 -g WEFT_OLD",
      ":WEFT_INBOUND - [0:0]",
      ":WEFT_OLD - [0:0]",
      ":WEFT_OUTPUT - [0:0]",
      "-X WEFT_INBOUND",
      "-X WEFT_OLD",
      "-X WEFT_OUTPUT",
      "COMMIT",
      "",
    ].join("\n"));
    expect(removalRestoreText("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j OTHER\nCOMMIT\n")).toBeUndefined();
  });
});

describe("sidecar command prefix", () => {
  it("enters the pod's namespace, switches to the proxy user and re-arms the parent-death signal", () => {
    expect(envoyCommandPrefix({ netns: "weft-a" })).toEqual([
      "ip", "netns", "exec", "weft-a",
      "setpriv", "--reuid=1337", "--regid=1337", "--clear-groups", "--pdeathsig", "KILL", "--",
    ]);
    expect(envoyCommandPrefix({ netns: "weft-b" }, 1500, 1600)).toContain("--regid=1600");
    expect(sidecarEnvoyOptions({ netns: "weft-a", name: "a" })).toMatchObject({
      name: "sidecar-a",
      workDirOwner: { uid: 1337, gid: 1337 },
    });
  });
});

describe("weft capture (no privileges needed)", () => {
  afterEach(() => vi.restoreAllMocks());

  function captureStdout(): () => string {
    let out = "";
    vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    return () => out;
  }

  it("apply --dry-run prints the iptables-restore input", async () => {
    const out = captureStdout();
    expect(await runCapture(["apply", "--dry-run", "--proxy-uid", "1337"])).toBe(0);
    expect(out()).toBe(DEFAULT_RULES);
  });

  it("passes the flags through", async () => {
    const out = captureStdout();
    expect(await runCapture(["apply", "--dry-run", "--proxy-uid", "2000", "--inbound-port", "16006",
      "--exclude-inbound-ports", "8443, 9000", "--exclude-outbound-ports", "5432", "--include-outbound-cidrs", "10.0.0.0/8"])).toBe(0);
    expect(out()).toBe(captureRules({ proxyUid: 2000, inboundPort: 16006, excludeInboundPorts: [8443, 9000],
      excludeOutboundPorts: [5432], includeOutboundCidrs: "10.0.0.0/8" }));
  });

  it("reports usage errors naming the flag", async () => {
    captureStdout();
    await expect(runCapture(["apply", "--dry-run", "--exclude-inbound-ports", "22,x"])).rejects.toThrow(UsageError);
    await expect(runCapture(["apply", "--dry-run", "--proxy-uid", "abc"])).rejects.toThrow(/--proxy-uid must be a numeric id/);
    await expect(runCapture(["apply", "--dry-run", "--include-outbound-cidrs", "nope"])).rejects.toThrow(/--include-outbound-cidrs entry "nope"/);
    await expect(runCapture(["apply", "--dry-run", "--inbound-port", "15001"])).rejects.toThrow(/--outbound-port and --inbound-port must differ/);
    await expect(runCapture(["frobnicate"])).rejects.toThrow(/unknown subcommand "frobnicate"/);
    expect(await runCapture([])).toBe(2);
  });
});
