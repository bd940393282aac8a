// Guards the one place Weft reaches into grpc-js internals for speed (DESIGN.md rule 5):
// grpc-js is pinned exactly, and a real grpc-js server and client carry a PreframedMessage
// byte for byte. An upgrade that renames the hook or moves framing elsewhere fails here.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Client, Server, ServerCredentials, credentials, status, type ServerDuplexStream, type ServerWritableStream, type ServiceDefinition } from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { ChunkDecoder, ChunkedMessage, PreframedMessage, acceptChunks, installChunkedReceive, installPreframing, preframe } from "./grpc-framing.js";

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

  describe("chunked receive (grpc-js internals, pinned)", () => {
    it("is switchable: WEFT_GRPC_CHUNKED_RECEIVE=0 installs nothing", () => {
      expect(installChunkedReceive({ WEFT_GRPC_CHUNKED_RECEIVE: "0" })).toBe(false);
    });

    /** A bidi echo service: each request as the handler received it (Buffer or ChunkedMessage), answered by its bytes. */
    async function echo(deserialize: (b: Buffer | ChunkedMessage) => unknown, requests: Buffer[], channelOptions: Record<string, unknown> = {}, maxReceive?: number) {
      const service: ServiceDefinition = {
        echo: { path: "/weft.test.Frames/Echo", requestStream: true, responseStream: true, requestSerialize: identity, requestDeserialize: deserialize as (b: Buffer) => unknown, responseSerialize: identity, responseDeserialize: identity },
      };
      const kinds: string[] = [];
      const server = new Server(maxReceive ? { "grpc.max_receive_message_length": maxReceive } : {});
      servers.push(server);
      server.addService(service, {
        echo: (call: ServerDuplexStream<Buffer | ChunkedMessage, Buffer>) => {
          call.on("data", (m: Buffer | ChunkedMessage) => {
            kinds.push(m instanceof ChunkedMessage ? `chunked/${m.chunks.length > 1 ? "many" : "one"}` : "buffer");
            call.write(m instanceof ChunkedMessage ? m.joined() : m);
          });
          call.on("end", () => call.end());
        },
      });
      const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
      const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure(), channelOptions);
      try {
        const received = await new Promise<Buffer[]>((resolve, reject) => {
          const out: Buffer[] = [];
          const stream = client.makeBidiStreamRequest("/weft.test.Frames/Echo", identity, identity);
          stream.on("data", (b: Buffer) => out.push(b));
          stream.on("error", reject);
          stream.on("end", () => resolve(out));
          for (const r of requests) stream.write(r);
          stream.end();
        });
        return { received, kinds };
      } finally {
        client.close();
      }
    }
    const requests = [Buffer.from("small first"), Buffer.alloc(230_000, 5), Buffer.alloc(0), Buffer.alloc(100_000, 9), Buffer.from("small last"), Buffer.alloc(16 * 1024, 1)];

    it("a marked deserializer gets large requests as their chunks, byte for byte and in order; small ones as Buffers", async () => {
      expect(installChunkedReceive({})).toBe(true); // the pinned grpc-js has what the patch uses
      expect(installChunkedReceive({})).toBe(true); // installing again patches nothing twice
      const { received, kinds } = await echo(acceptChunks((m: Buffer | ChunkedMessage) => m), requests);
      expect(received.length).toBe(requests.length);
      for (let i = 0; i < requests.length; i++) expect(Buffer.compare(received[i]!, requests[i]!), `message ${i}`).toBe(0);
      // The 230 KB request spans several HTTP/2 DATA frames (16 KB each): handed on in pieces.
      expect(kinds).toEqual(["buffer", "chunked/many", "buffer", "chunked/many", "buffer", expect.stringMatching(/^chunked/)]);
    });

    it("an unmarked deserializer, and compressed requests, take grpc-js's own path (Buffers)", async () => {
      expect(installChunkedReceive({})).toBe(true);
      const plain = await echo((m: Buffer | ChunkedMessage) => m, requests);
      expect(plain.kinds.every((k) => k === "buffer")).toBe(true);
      for (let i = 0; i < requests.length; i++) expect(Buffer.compare(plain.received[i]!, requests[i]!)).toBe(0);
      const gzip = await echo(acceptChunks((m: Buffer | ChunkedMessage) => m), [Buffer.alloc(230_000, 5)], { "grpc.default_compression_algorithm": 2 });
      expect(gzip.kinds).toEqual(["buffer"]);
      expect(Buffer.compare(gzip.received[0]!, Buffer.alloc(230_000, 5))).toBe(0);
    });

    it("a request over the server's receive bound ends the call with RESOURCE_EXHAUSTED, as grpc-js does", async () => {
      expect(installChunkedReceive({})).toBe(true);
      await expect(echo(acceptChunks((m: Buffer | ChunkedMessage) => m), [Buffer.alloc(300_000, 1)], {}, 200_000)).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    });

    it("ChunkDecoder: messages cut anywhere (also inside the 5-byte header) come out whole", () => {
      const frame = (flag: number, body: Buffer) => {
        const header = Buffer.alloc(5);
        header[0] = flag;
        header.writeUInt32BE(body.length, 1);
        return Buffer.concat([header, body]);
      };
      const bodies = [Buffer.alloc(40_000, 2), Buffer.from("x"), Buffer.alloc(0), Buffer.alloc(20_000, 4)];
      const stream = Buffer.concat([frame(0, bodies[0]!), frame(0, bodies[1]!), frame(0, bodies[2]!), frame(1, bodies[3]!)]);
      for (const step of [1, 3, 7, 4096, 16384, stream.length]) {
        const d = new ChunkDecoder(-1);
        const out = [];
        for (let at = 0; at < stream.length; at += step) out.push(...d.write(stream.subarray(at, at + step)));
        expect(out.length).toBe(4);
        expect("chunked" in out[0]! && Buffer.compare(out[0].chunked.joined(), bodies[0]!)).toBe(0);
        expect("framed" in out[1]! && Buffer.compare(out[1].framed.subarray(5), bodies[1]!)).toBe(0);
        expect("framed" in out[2]! && out[2].framed.length).toBe(5);
        // Compressed (flag 1): framed for grpc-js's decompression, whatever its size.
        expect("framed" in out[3]! && out[3].framed[0] === 1 && Buffer.compare(out[3].framed.subarray(5), bodies[3]!)).toBe(0);
      }
    });
  });
});
