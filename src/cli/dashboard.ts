// weft dashboard: the mesh console's address (the admin server's /ui), checked and printed;
// --open starts the desktop's browser on it (xdg-open / open).
import { spawn } from "node:child_process";
import { helpText, parseFlags, type FlagSpec } from "./flags.js";

const FLAGS = {
  admin: { type: "string", env: "WEFT_ADMIN_URL", default: "http://127.0.0.1:15014", help: "admin URL of the control plane" },
  open: { type: "boolean", help: "open the console in the desktop's browser (xdg-open, or open on macOS)" },
} satisfies Record<string, FlagSpec>;

export async function runDashboard(argv: string[]): Promise<number> {
  const { help, values } = parseFlags(argv, FLAGS);
  if (help) {
    process.stdout.write(helpText("dashboard", "Prints the mesh console's URL (the graph, proxies' sync state, certificates, config problems), after checking the control plane serves it.", FLAGS));
    return 0;
  }
  const url = new URL("/ui/", values.admin).toString();
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new Error(`cannot reach the control plane's admin server at ${values.admin}: ${(err as Error).cause ?? (err as Error).message}`);
  }
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${(await res.text()).slice(0, 300).trim()}`);
  process.stdout.write(`${url}\n`);
  if (values.open) {
    const opener = process.platform === "darwin" ? "open" : "xdg-open";
    const child = spawn(opener, [url], { stdio: "ignore", detached: true });
    child.on("error", (err) => process.stderr.write(`weft dashboard: cannot start ${opener} (${err.message}); open the URL above\n`));
    child.unref();
  }
  return 0;
}
