// Guards the one place Weft reaches into grpc-js internals for speed (DESIGN.md rule 5):
// grpc-js is pinned exactly, and a real grpc-js server and client carry a PreframedMessage
// byte for byte. An upgrade that renames the hook or moves framing elsewhere fails here.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Client, Server, ServerCredentials, credentials, type ServerWritableStream, type ServiceDefinition } from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { PreframedMessage, installPreframing, preframe } from "./grpc-framing.js";

const require = createRequire(import.meta.url);
const identity = (b: Buffer) => b;
const SERVICE: ServiceDefinition = {
  send: { path: "/weft.test.Frames/Send", requestStream: false, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
};

describe("gRPC preframing (grpc-js internals, pinned)", () => {
  it("@grpc/grpc-js is pinned exactly, and the installed copy is the pinned one", () => {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { dependencies: Record<string, string> };
    const pinned = pkg.dependencies["@grpc/grpc-js"]!;
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/); // no ^ or ~: an upgrade is a deliberate change
    expect((require("@grpc/grpc-js/package.json") as { version: string }).version).toBe(pinned);
    const lock = JSON.parse(readFileSync(new URL("../../package-lock.json", import.meta.url), "utf8")) as { packages: Record<string, { version?: string }> };
    const copies = Object.entries(lock.packages).filter(([path]) => path.endsWith("node_modules/@grpc/grpc-js"));
    expect(copies.map(([, p]) => p.version)).toEqual([pinned]); // one copy: the one patched
  });

  it("is switchable: WEFT_GRPC_PREFRAMING=0 installs nothing", () => {
    expect(installPreframing({ WEFT_GRPC_PREFRAMING: "0" })).toBe(false);
  });

  const servers: Server[] = [];
  afterAll(() => {
    for (const s of servers) s.forceShutdown();
  });

  it("a real grpc-js server sends a PreframedMessage as it is, and plain messages as before", async () => {
    expect(installPreframing({})).toBe(true); // the pinned grpc-js has the hook
    expect(installPreframing({})).toBe(true); // installing again patches nothing twice
    const big = Buffer.alloc(300_000, 7);
    const sent = [preframe(Buffer.from("preframed xds response")), Buffer.from("plain response"), preframe(big), preframe(Buffer.alloc(0))];
    const server = new Server();
    servers.push(server);
    server.addService(SERVICE, {
      send: (call: ServerWritableStream<Buffer, Buffer | PreframedMessage>) => {
        for (const m of sent) call.write(m);
        call.end();
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
    try {
      const received = await new Promise<Buffer[]>((resolve, reject) => {
        const out: Buffer[] = [];
        const stream = client.makeServerStreamRequest("/weft.test.Frames/Send", identity, identity, Buffer.alloc(0));
        stream.on("data", (b: Buffer) => out.push(b));
        stream.on("error", reject);
        stream.on("end", () => resolve(out));
      });
      const expected = sent.map((m) => (m instanceof PreframedMessage ? m.message : m));
      expect(received.length).toBe(expected.length);
      // Byte for byte: a grpc-js that framed a PreframedMessage again (or dropped the hook) would
      // deliver a 5-byte header in front, or fail to serialize the object at all.
      for (let i = 0; i < expected.length; i++) expect(Buffer.compare(received[i]!, expected[i]!), `message ${i}`).toBe(0);
    } finally {
      client.close();
    }
  });

  it("a PreframedMessage in pieces, written piece after piece (as the xDS server's sink does), arrives as one message", async () => {
    expect(installPreframing({})).toBe(true);
    const body = Buffer.alloc(200_000, 3);
    const whole = preframe(Buffer.concat([Buffer.from("head"), body, Buffer.from("tail")]));
    const header = whole.framed.subarray(0, 5 + 4);
    const inPieces = new PreframedMessage(Buffer.from(header), [body, Buffer.from("tail")]);
    expect(inPieces.size).toBe(whole.message.length);
    const sent: (Buffer | PreframedMessage)[] = [preframe(Buffer.from("before")), inPieces, Buffer.from("plain after"), inPieces];
    const server = new Server();
    servers.push(server);
    server.addService(SERVICE, {
      send: (call: ServerWritableStream<Buffer, Buffer | PreframedMessage>) => {
        for (const m of sent) for (const piece of m instanceof PreframedMessage ? m.pieces : [m]) call.write(piece);
        call.end();
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
    try {
      const received = await new Promise<Buffer[]>((resolve, reject) => {
        const out: Buffer[] = [];
        const stream = client.makeServerStreamRequest("/weft.test.Frames/Send", identity, identity, Buffer.alloc(0));
        stream.on("data", (b: Buffer) => out.push(b));
        stream.on("error", reject);
        stream.on("end", () => resolve(out));
      });
      const expected = [Buffer.from("before"), whole.message, Buffer.from("plain after"), whole.message];
      expect(received.length).toBe(expected.length);
      for (let i = 0; i < expected.length; i++) expect(Buffer.compare(received[i]!, expected[i]!), `message ${i}`).toBe(0);
    } finally {
      client.close();
    }
  });
});
