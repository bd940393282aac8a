// The container image's layout, checked without a Docker engine: the Dockerfile's build stage
// runs `node scripts/stage-image.mjs /opt/weft`; this test runs the same script into a temp
// dir and uses the result as the image would (its ENTRYPOINT, its commands), and checks that
// only production dependencies and no tests went in. hadolint lints the Dockerfile in .ci/run.
//
//   npm run build && npx vitest run e2e/image-layout.e2e.test.ts
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const repo = path.resolve(import.meta.dirname, "..");
const dockerfile = readFileSync(path.join(repo, "Dockerfile"), "utf8");

/** Every file below `dir`, relative to it. */
function walk(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? walk(full, base) : [path.relative(base, full)];
  });
}

describe("container image layout (scripts/stage-image.mjs, as the Dockerfile runs it)", () => {
  let root: string;
  let image: string;
  const weft = (args: string[], input?: string) =>
    spawnSync(process.execPath, [path.join(image, "dist/src/cli/main.js"), ...args], { cwd: root, encoding: "utf8", input, timeout: 60_000 });

  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), "weft-image-"));
    image = path.join(root, "opt-weft");
    execFileSync(process.execPath, [path.join(repo, "scripts/stage-image.mjs"), image], { stdio: ["ignore", "ignore", "inherit"], timeout: 240_000 });
  }, 300_000);

  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("the Dockerfile stages /opt/weft with this script and starts the CLI this layout holds", () => {
    expect(dockerfile).toMatch(/^RUN npm run build && node scripts\/stage-image\.mjs \/opt\/weft$/m);
    expect(dockerfile).toMatch(/^COPY --from=build \/opt\/weft \/opt\/weft$/m);
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
    const argv = JSON.parse(entrypoint ?? "[]") as string[];
    expect(argv[0]).toBe("node");
    expect(argv[1]!.startsWith("/opt/weft/")).toBe(true);
    expect(existsSync(path.join(image, argv[1]!.slice("/opt/weft/".length)))).toBe(true);
    // Runs as a non-root user; the base image is the Node major version package.json pins.
    expect(dockerfile).toMatch(/^USER 65532:65532$/m);
    const pinned = (JSON.parse(readFileSync(path.join(repo, "package.json"), "utf8")) as { devDependencies: Record<string, string> }).devDependencies.node!;
    expect(/^ARG NODE_IMAGE=node:(\d+)\.[\d.]+-bookworm-slim$/m.exec(dockerfile)?.[1]).toBe(/\d+/.exec(pinned)![0]);
  });

  it("holds production dependencies only, and no tests, e2e or bench code", () => {
    const modules = readdirSync(path.join(image, "node_modules"));
    for (const dev of ["vitest", "typescript", "tsx", "fast-check", "ts-proto", "node"]) expect(modules).not.toContain(dev);
    expect(existsSync(path.join(image, "node_modules/@bufbuild"))).toBe(false);
    for (const dep of ["@grpc", "protobufjs", "fastify", "jose", "js-yaml", "@kubernetes"]) expect(modules).toContain(dep);
    const files = walk(path.join(image, "dist"));
    expect(files.filter((f) => /\.test\.js$/.test(f) || f.startsWith("e2e") || f.startsWith("bench"))).toEqual([]);
    expect(statSync(path.join(image, "envoy-bootstrap/sidecar.yaml")).isFile()).toBe(true);
  });

  it("runs the CLI: --version, serve --help, validate, capture apply --dry-run", () => {
    expect(weft(["--version"]).stdout).toMatch(/^weft \d+\.\d+\.\d+/);
    const help = weft(["serve", "--help"]);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("--config-dir");
    const dir = path.join(root, "config");
    execFileSync("mkdir", ["-p", dir]);
    writeFileSync(path.join(dir, "mesh.yaml"), [
      "apiVersion: networking.istio.io/v1",
      "kind: ServiceEntry",
      "metadata: { name: httpbin, namespace: default }",
      "spec: { hosts: [httpbin.example.com], ports: [{ number: 80, name: http, protocol: HTTP }], resolution: DNS }",
      "---",
      "apiVersion: networking.istio.io/v1",
      "kind: VirtualService",
      "metadata: { name: httpbin, namespace: default }",
      "spec: { hosts: [httpbin.example.com], http: [{ timeout: 3x, route: [{ destination: { host: httpbin.example.com } }] }] }",
    ].join("\n"));
    const invalid = weft(["validate", dir]);
    expect(invalid.status).toBe(1);
    expect(invalid.stdout + invalid.stderr).toMatch(/mesh\.yaml.*VirtualService.*timeout/s);
    const rules = weft(["capture", "apply", "--dry-run"]);
    expect(rules.status).toBe(0);
    expect(rules.stdout).toContain("-j REDIRECT --to-ports 15001");
  });
});
