// weft sample-app (internal): one workload of the demo's sample application.
import { runSampleApp } from "../demo/bookinfo-app.js";
import { helpText, parseFlags, parsePort, type FlagSpec } from "./flags.js";
import { UsageError } from "./usage-error.js";

const FLAGS = {
  name: { type: "string", help: "service name: productpage, details, reviews, ratings" },
  version: { type: "string", default: "v1", help: "version label" },
  port: { type: "string", default: "9080", help: "port to listen on" },
  host: { type: "string", default: "0.0.0.0", help: "address to listen on" },
  "sidecar-port": { type: "string", help: "explicit mode: the sidecar's outbound HTTP port on 127.0.0.1" },
} satisfies Record<string, FlagSpec>;

export async function runSampleAppCommand(argv: string[]): Promise<number> {
  const { help, values } = parseFlags(argv, FLAGS);
  if (help) {
    process.stdout.write(helpText("sample-app", "Runs one workload of the demo's bookinfo-like sample application (used by weft demo).", FLAGS));
    return 0;
  }
  if (!values.name) throw new UsageError("--name is required");
  await runSampleApp({
    name: values.name,
    version: values.version ?? "v1",
    port: parsePort("port", values.port),
    host: values.host,
    ...(values["sidecar-port"] ? { sidecarPort: parsePort("sidecar-port", values["sidecar-port"]) } : {}),
  });
  return 0;
}
