#!/usr/bin/env node
// weft: the command-line entry point. Exit codes: 0 ok, 1 failure, 2 usage error.
import { UsageError } from "./usage-error.js";
import { applyGlibcMallocSettings } from "./glibc-malloc-settings.js";
import { applyV8GcSettings } from "./v8-gc-settings.js";

// Each command's module is loaded when it runs: `weft validate` does not load gRPC, fastify
// and the Kubernetes client (0.6 s of CPU at start, measured).
const COMMANDS: Record<string, { summary: string; run: (argv: string[]) => Promise<number> }> = {
  demo: { summary: "run a local mesh: control plane, app with Envoy sidecars (mTLS), ingress gateway", run: async (argv) => (await import("./demo.js")).runDemo(argv) },
  serve: { summary: "run the control plane (xDS server, admin server)", run: async (argv) => (await import("./serve.js")).runServe(argv) },
  status: { summary: "show connected proxies and their sync/NACK state", run: async (argv) => (await import("./status.js")).runStatus(argv) },
  dashboard: { summary: "print (or --open) the mesh console's URL: graph, sync state, certificates, problems", run: async (argv) => (await import("./dashboard.js")).runDashboard(argv) },
  "proxy-config": { summary: "what Weft sends one proxy: clusters, listeners, routes, endpoints, secrets", run: async (argv) => (await import("./proxy-config.js")).runProxyConfig(argv) },
  "config-dump": { summary: "everything Weft sends one proxy, readable JSON/YAML (private keys redacted)", run: async (argv) => (await import("./proxy-config.js")).runConfigDump(argv) },
  validate: { summary: "check a directory of Istio YAML; prints every problem, exit 1 on errors", run: async (argv) => (await import("./validate.js")).runValidate(argv) },
  analyze: { summary: "istioctl analyze's habits: Istio's message codes (IST0101, ...) for files, dirs or a cluster (-k)", run: async (argv) => (await import("./analyze.js")).runAnalyze(argv) },
  "sample-app": { summary: "(internal) one workload of the demo's sample application", run: async (argv) => (await import("./sample-app.js")).runSampleAppCommand(argv) },
  ca: { summary: "CA roots and root rotation: status, rotate-root (through the admin API)", run: async (argv) => (await import("./ca.js")).runCa(argv) },
  capture: { summary: "apply or remove transparent-capture iptables rules (sidecar init)", run: async (argv) => (await import("./capture.js")).runCapture(argv) },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`);
  return `weft - a lean service mesh control plane for Envoy\n\nUsage: weft <command> [flags]\n\nCommands:\n${lines.join("\n")}\n\nRun 'weft <command> --help' for a command's flags.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(usage());
    return command ? 0 : 2;
  }
  if (command === "--version") {
    process.stdout.write("weft 0.1.0\n");
    return 0;
  }
  const entry = COMMANDS[command];
  if (!entry) {
    process.stderr.write(`weft: unknown command "${command}"\n\n${usage()}`);
    return 2;
  }
  // The long-running commands hold thousands of streams' buffers: glibc's allocator is set to
  // give large freed blocks back (re-executes once, before anything else is loaded).
  if (command === "serve" || command === "demo") {
    applyGlibcMallocSettings();
    // Opt-in (WEFT_V8_GC_TUNING=1): less GC CPU for much more peak memory (see v8-gc-settings.ts).
    applyV8GcSettings();
  }
  try {
    return await entry.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`weft ${command}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`weft ${command}: ${(err as Error).message}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`weft: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
