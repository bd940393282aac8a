// The demo's sample application, bookinfo-like: productpage calls details and reviews;
// reviews v2 and v3 call ratings (v2 renders black stars, v3 red). Each service answers JSON
// naming itself and its version, so routing is visible from the outside. Started by the demo
// through the hidden `weft sample-app` command, one process per workload.
import { createServer, request as httpRequest, type IncomingHttpHeaders } from "node:http";

export interface SampleAppOptions {
  name: string;
  version: string;
  port: number;
  host?: string;
  /** Transparent mode: call services by name. Explicit mode: send every call to this sidecar port with a Host header. */
  sidecarPort?: number;
}

/**
 * Headers bookinfo propagates so routing by user and tracing work end to end: the request id,
 * W3C trace context (Envoy's OpenTelemetry tracer), B3 in both forms (Envoy's Zipkin tracer) and
 * the other tracers' headers Istio lists. Envoy joins the spans of one request only when the app
 * forwards these from its incoming request to its outgoing calls.
 */
const PROPAGATE = [
  "end-user",
  "user-agent",
  "x-request-id",
  "traceparent",
  "tracestate",
  "b3",
  "x-b3-traceid",
  "x-b3-spanid",
  "x-b3-parentspanid",
  "x-b3-sampled",
  "x-b3-flags",
  "x-ot-span-context",
  "x-cloud-trace-context",
  "grpc-trace-bin",
  "sw8",
];

function call(opts: SampleAppOptions, service: string, path: string, incoming: IncomingHttpHeaders): Promise<unknown> {
  const headers: Record<string, string> = {};
  for (const h of PROPAGATE) if (typeof incoming[h] === "string") headers[h] = incoming[h] as string;
  const target = opts.sidecarPort ? { host: "127.0.0.1", port: opts.sidecarPort, headers: { ...headers, host: `${service}:9080` } } : { host: service, port: 9080, headers };
  return new Promise((resolve) => {
    const req = httpRequest({ ...target, path, method: "GET", timeout: 5000, agent: false }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => {
        try {
          resolve(res.statusCode === 200 ? JSON.parse(body) : { error: `${service} answered ${res.statusCode}`, body: body.slice(0, 200) });
        } catch {
          resolve({ error: `${service} answered ${res.statusCode}`, body: body.slice(0, 200) });
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) => resolve({ error: `${service} unavailable: ${err.message}` }));
    req.end();
  });
}

async function handle(opts: SampleAppOptions, path: string, headers: IncomingHttpHeaders): Promise<Record<string, unknown>> {
  const me = { service: opts.name, version: opts.version };
  switch (opts.name) {
    case "productpage": {
      const [details, reviews] = await Promise.all([call(opts, "details", "/details/0", headers), call(opts, "reviews", "/reviews/0", headers)]);
      return { ...me, user: headers["end-user"] ?? null, details, reviews };
    }
    case "reviews": {
      const reviews = [
        { reviewer: "Reviewer1", text: "An extremely entertaining play by Shakespeare." },
        { reviewer: "Reviewer2", text: "Absolutely fun and entertaining." },
      ];
      if (opts.version === "v1") return { ...me, reviews };
      const ratings = await call(opts, "ratings", "/ratings/0", headers);
      return { ...me, reviews, stars: opts.version === "v2" ? "black" : "red", ratings };
    }
    case "ratings":
      return { ...me, ratings: { Reviewer1: 5, Reviewer2: 4 } };
    case "details":
      return { ...me, details: { author: "William Shakespeare", year: 1595, type: "paperback", pages: 200 } };
    default:
      return { ...me, path };
  }
}

export function runSampleApp(opts: SampleAppOptions): Promise<void> {
  const server = createServer((req, res) => {
    void handle(opts, req.url ?? "/", req.headers).then((body) => {
      const text = JSON.stringify(body) + "\n";
      res.writeHead(200, { "content-type": "application/json", "x-service": opts.name, "x-version": opts.version });
      res.end(text);
    });
  });
  server.keepAliveTimeout = 65_000; // longer than Envoy's idle timeout: Envoy closes first
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "0.0.0.0", () => {
      // The demo waits for this line before it says it is ready.
      process.stdout.write(`${opts.name} ${opts.version} listening on ${opts.host ?? "0.0.0.0"}:${opts.port}\n`);
      const stop = () => server.close(() => resolve());
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });
  });
}
