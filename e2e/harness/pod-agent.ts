// A request agent inside a pod: the test process (on the host) asks it over HTTP to make a
// request from inside the pod, so the request leaves through the pod's transparent capture
// exactly as an application's would.
// POD_AGENT_SCRIPT is exported so a pod that also runs an app (e2e/kubernetes/kubelet.ts) can
// serve both from one Node process.
import { request } from "node:http";
import type { ChildProcess } from "node:child_process";
import type { Pod } from "../../src/capture/pod-network.js";

export const AGENT_PORT = 7777;

export const POD_AGENT_SCRIPT = `
const http = require("node:http");
http.createServer((req, res) => {
  const q = new URL(req.url, "http://agent").searchParams;
  const headers = JSON.parse(q.get("headers") || "{}");
  const started = Date.now();
  const out = http.request({ host: q.get("host"), port: Number(q.get("port")), path: q.get("path") || "/", method: "GET", headers, agent: false, timeout: Number(q.get("timeout") || 10000) }, (r) => {
    let body = "";
    r.on("data", (d) => (body += d));
    r.on("end", () => { res.writeHead(200, { "content-type": "application/json" }); res.end(JSON.stringify({ status: r.statusCode, headers: r.headers, body, ms: Date.now() - started })); });
  });
  out.on("timeout", () => out.destroy(new Error("timeout")));
  out.on("error", (e) => { res.writeHead(200, { "content-type": "application/json" }); res.end(JSON.stringify({ error: e.message, ms: Date.now() - started })); });
  out.end();
}).listen(${AGENT_PORT}, "0.0.0.0", () => console.log("agent ready"));
`;

export interface AgentResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  ms: number;
}

export async function startPodAgent(pod: Pod): Promise<ChildProcess> {
  const child = pod.exec([process.execPath, "-e", POD_AGENT_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent in ${pod.name} did not start`)), 15_000);
    child.stdout!.on("data", (d: Buffer) => {
      if (d.toString().includes("agent ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`agent in ${pod.name} exited (${code})`)));
  });
  return child;
}

/** Makes a GET from inside the pod to host:port (an IP; capture decides where it really goes). */
export function fetchFromPod(pod: Pod, target: { host: string; port: number; path: string; headers: Record<string, string>; timeoutMs?: number }): Promise<AgentResponse> {
  const q = new URLSearchParams({ host: target.host, port: String(target.port), path: target.path, headers: JSON.stringify(target.headers), timeout: String(target.timeoutMs ?? 10_000) });
  return new Promise((resolve, reject) => {
    const req = request({ host: pod.ip, port: AGENT_PORT, path: `/fetch?${q}`, agent: false }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => {
        const parsed = JSON.parse(body) as AgentResponse & { error?: string };
        if (parsed.error) reject(new Error(`request from pod ${pod.name} failed: ${parsed.error}`));
        else resolve(parsed);
      });
    });
    req.on("error", reject);
    req.end();
  });
}
