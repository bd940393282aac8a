// Generates generated/ (TypeScript for Envoy's API) with buf + ts-proto, offline:
// 1. stages Envoy's API protos from npm packages into build/proto;
// 2. runs `buf generate` for the files in scripts/proto-targets.txt (and their imports).
// Run with `npm run gen`; the output is deterministic and committed. Sources:
//   @grpc/grpc-js-xds/deps/{envoy-api,xds,googleapis}  (Envoy data-plane API, xds, googleapis)
//   protoc-gen-validate/src/proto/validate.proto       (a validate.proto new enough for envoy v3:
//                                                         it has StringRules.ignore_empty; the one
//                                                         in grpc-js-xds is older and breaks buf)
import { cpSync, mkdirSync, rmSync, existsSync, readFileSync } from "node:fs";
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
console.error("gen-protos: done");
