// Generates generated/ (TypeScript for Envoy's API) with buf + ts-proto, offline:
// 1. stages Envoy's API protos from npm packages into build/proto;
// 2. runs `buf generate` for the files in scripts/proto-targets.txt (and their imports).
// Run with `npm run gen`; the output is deterministic and committed. Sources:
//   @grpc/grpc-js-xds/deps/{envoy-api,xds,googleapis}  (Envoy data-plane API, xds, googleapis)
//   protoc-gen-validate/src/proto/validate.proto       (a validate.proto new enough for envoy v3:
//                                                         it has StringRules.ignore_empty; the one
//                                                         in grpc-js-xds is older and breaks buf)
import { cpSync, mkdirSync, rmSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);
const root = join(dirname(new URL(import.meta.url).pathname), "..");
const out = join(root, "build", "proto");
const xdsDeps = join(dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps");
const pgvProto = join(dirname(require.resolve("protoc-gen-validate/package.json")), "src", "proto", "validate.proto");

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const copies = [
  [join(xdsDeps, "envoy-api", "envoy"), join(out, "envoy")],
  [join(xdsDeps, "xds", "xds"), join(out, "xds")],
  [join(xdsDeps, "xds", "udpa"), join(out, "udpa")],
  [join(xdsDeps, "googleapis", "google"), join(out, "google")],
  [pgvProto, join(out, "validate", "validate.proto")],
];
for (const [from, to] of copies) {
  if (!existsSync(from)) {
    console.error(`gen-protos: missing ${from}; run npm ci first`);
    process.exit(1);
  }
  mkdirSync(dirname(to), { recursive: true });
  cpSync(from, to, { recursive: true, filter: (p) => !p.includes("/java/") });
}
console.error(`gen-protos: staged Envoy API protos in ${out}`);

const targets = readFileSync(join(root, "scripts", "proto-targets.txt"), "utf8")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith("#"));
const buf = join(root, "node_modules", ".bin", "buf");
const args = ["generate", ...targets.flatMap((t) => ["--path", join("build", "proto", t)])];
console.error(`gen-protos: buf generate for ${targets.length} target files (and their imports) -> generated/`);
const r = spawnSync(buf, args, { cwd: root, stdio: "inherit" });
if (r.status !== 0) {
  console.error(`gen-protos: buf generate failed (exit ${r.status})`);
  process.exit(1);
}
writeSchema();
console.error("gen-protos: done");

/**
 * generated/envoy-schema.json: the message and enum shapes (names, field numbers, types; no
 * options or comments) of every file in proto-targets.txt and proto-schema-targets.txt and
 * their imports, in protobufjs's JSON form, for reading EnvoyFilter patch values
 * (src/envoy/proto-json.ts). Field names are kept as in the .proto files (snake_case).
 */
function writeSchema() {
  const protobuf = require("protobufjs");
  const schemaTargets = readFileSync(join(root, "scripts", "proto-schema-targets.txt"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const all = [...new Set([...targets, ...schemaTargets])];
  const pbRoot = new protobuf.Root();
  // google/protobuf/*: protobufjs carries the well-known types itself (its `common`) and ships
  // descriptor.proto; buf has them built in, so they are not staged in build/proto.
  const pbGoogle = join(dirname(require.resolve("protobufjs/package.json")), "google", "protobuf");
  pbRoot.resolvePath = (_origin, target) => (target.startsWith("google/protobuf/") && !existsSync(join(out, target)) ? join(pbGoogle, target.slice("google/protobuf/".length)) : join(out, target));
  pbRoot.loadSync(all, { keepCase: true });
  pbRoot.resolveAll();
  const strip = (node) => {
    if (Array.isArray(node)) return node.map(strip);
    if (!node || typeof node !== "object") return node;
    const res = {};
    for (const key of Object.keys(node)) {
      if (key === "options" || key === "comment" || key === "comments" || key === "valuesOptions" || key === "edition") continue;
      res[key] = strip(node[key]);
    }
    return res;
  };
  const json = JSON.stringify(strip(pbRoot.toJSON()));
  writeFileSync(join(root, "generated", "envoy-schema.json"), json + "\n");
  console.error(`gen-protos: wrote generated/envoy-schema.json (${all.length} target files, ${Math.round(json.length / 1024)} KB)`);
}
