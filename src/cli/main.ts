#!/usr/bin/env node
// weft: the command-line entry point. Exit codes: 0 ok, 1 failure, 2 usage error.
import { runCapture } from "./capture.js";
import { runDemo } from "./demo.js";
import { runSampleAppCommand } from "./sample-app.js";
import { runServe } from "./serve.js";
import { runStatus } from "./status.js";
import { runValidate } from "./validate.js";
import { UsageError } from "./usage-error.js";

const COMMANDS: Record<string, { summary: string; run: (argv: string[]) => Promise<number> }> = {
  demo: { summary: "run a local mesh: control plane, app with Envoy sidecars (mTLS), ingress gateway", run: runDemo },
  serve: { summary: "run the control plane (xDS server, admin server)", run: runServe },
  status: { summary: "show connected proxies and their sync/NACK state", run: runStatus },
  validate: { summary: "check a directory of Istio YAML; prints every problem, exit 1 on errors", run: runValidate },
  "sample-app": { summary: "(internal) one workload of the demo's sample application", run: runSampleAppCommand },
  capture: { summary: "apply or remove transparent-capture iptables rules (sidecar init)", run: runCapture },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
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
