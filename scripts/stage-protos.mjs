// Stages Envoy's API protos from npm packages into build/proto for `buf generate`.
// Nothing is fetched from the network. Sources:
//   @grpc/grpc-js-xds/deps/{envoy-api,xds,googleapis}  (Envoy data-plane API, xds, googleapis)
//   protoc-gen-validate/src/proto/validate.proto       (a validate.proto new enough for envoy v3:
//                                                         it has StringRules.ignore_empty; the one
//                                                         in grpc-js-xds is older and breaks buf)
import { cpSync, mkdirSync, rmSync, existsSync } from "node:fs";
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
    console.error(`stage-protos: missing ${from}; run npm ci first`);
    process.exit(1);
  }
  mkdirSync(dirname(to), { recursive: true });
  cpSync(from, to, { recursive: true, filter: (p) => !p.includes("/java/") });
}
console.error(`stage-protos: staged Envoy API protos in ${out}`);
