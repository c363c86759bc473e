/**
 * The permission policy of a sandboxed trial, turned into `deno run` flags:
 * default deny; the trial reads its own folder, its trainable, the npm packages and what the
 * experiment declares; writes its own folder; talks to the driver's socket; reads only the
 * environment variables it is given; never runs processes; FFI only for native backends.
 *
 * @module
 */

import { fileURLToPath } from "./_path.ts";
import { dirname, relative, resolve, sep } from "./_path.ts";
import type { SandboxPolicy } from "./plugin.ts";
import { TuneError } from "./errors.ts";

/** Where one trial runs, for {@linkcode sandboxFlags}. */
export interface SandboxContext {
  /** The trial's own folder (read and write). */
  readonly trialDir: string;
  /** The trial's record folder (read only: its results, logs and committed checkpoints). */
  readonly recordDir?: string;
  /** The trial's own channel socket (a unix socket only this trial is granted), if any. */
  readonly socketPath?: string;
  /** Folders the trial may read: the trainable's folder, Tunebox, npm packages. */
  readonly readRoots: readonly string[];
  /** The deno.json whose import map trials resolve with (see {@linkcode checkDenoConfig}). */
  readonly configFile?: string;
  /** Whether the config's folder has a `node_modules` folder to use (never written). */
  readonly nodeModules?: boolean;
  /** Environment variable names the trial may read. */
  readonly envNames: readonly string[];
  /** What the experiment (and the backend) declared. */
  readonly policy: SandboxPolicy;
  /** The trial's own origin for `localStorage` and the Cache API (`--location`). */
  readonly location?: string;
}

/**
 * The `deno run` arguments (without the entry module) for one trial.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sandboxFlags } from "./sandbox.ts";
 * const flags = sandboxFlags({
 *   trialDir: "/tmp/exp/t1/files", socketPath: "/tmp/s/1/c.sock", readRoots: [],
 *   envNames: ["TUNEBOX_TOKEN"], policy: { read: ["/data"] },
 * });
 * assert.equal(flags.includes("--allow-read=/tmp/exp/t1/files,/tmp/s/1/c.sock,/data"), true);
 * ```
 */
export function sandboxFlags(ctx: SandboxContext): string[] {
  const p = ctx.policy;
  const sock = ctx.socketPath ? [ctx.socketPath] : [];
  const read = unique([
    ctx.trialDir,
    ...(ctx.recordDir ? [ctx.recordDir] : []),
    ...sock,
    ...ctx.readRoots,
    ...(p.read ?? []),
  ]);
  const write = unique([ctx.trialDir, ...sock, ...(p.write ?? [])]);
  const net = unique([...sock.map((s) => `unix:${s}`), ...(p.net ?? [])]);
  const env = unique([...ctx.envNames, ...(p.env ?? [])]);
  const flags = [
    "run",
    "--no-prompt",
    // Nothing is downloaded by a trial (npm: imports would otherwise fetch without --allow-net).
    "--cached-only",
    // The trainable's deno.json gives its import map; it cannot make the trial write a lockfile,
    // a node_modules or vendor folder (checkDenoConfig refuses what else could widen the sandbox).
    ...(ctx.configFile
      ? [
        `--config=${ctx.configFile}`,
        "--no-lock",
        `--node-modules-dir=${ctx.nodeModules ? "manual" : "none"}`,
        "--vendor=false",
      ]
      : ["--no-config", "--no-lock"]),
    ...(ctx.location ? [`--location=${ctx.location}`] : []),
    `--allow-read=${read.join(",")}`,
    `--allow-write=${write.join(",")}`,
    ...(net.length ? [`--allow-net=${net.join(",")}`] : []),
    `--allow-env=${env.join(",")}`,
  ];
  if (p.sys?.length) flags.push(`--allow-sys=${unique(p.sys).join(",")}`);
  if (p.ffi?.length) flags.push(`--allow-ffi=${unique(p.ffi).join(",")}`);
  for (const u of unique(p.unstable ?? [])) {
    if (!/^[a-z][a-z0-9-]*$/.test(u)) throw new TypeError(`Unknown unstable feature "${u}"`);
    flags.push(`--unstable-${u}`);
  }
  for (const v of [...read, ...write, ...env]) {
    if (v.includes(",")) {
      throw new TypeError(
        `Sandbox entry "${v}" contains a comma, which Deno's flags cannot express`,
      );
    }
  }
  return flags;
}

function unique(xs: readonly string[]): string[] {
  return [...new Set(xs.filter((x) => x !== ""))];
}

/**
 * The folder of the Tunebox package when it runs from local files (trials may read it: the
 * trainable imports `trainable.ts`), or undefined when it was loaded from a registry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tuneboxRoot } from "./sandbox.ts";
 * assert.equal(typeof tuneboxRoot(), "string"); // in a checkout
 * ```
 */
export function tuneboxRoot(): string | undefined {
  const url = new URL("../", import.meta.url);
  return url.protocol === "file:" ? fileURLToPath(url).replace(/[\\/]+$/, "") : undefined;
}

/**
 * Refuses a trainable that cannot be run safely before anything starts: a local path that is
 * not a regular file (a FIFO would hang the CLI), or an `http:`/`https:` module unless allowed.
 *
 * @throws {TuneError} naming the module and what is wrong.
 * @example
 * ```ts ignore
 * import { checkTrainableSource } from "./sandbox.ts";
 * await checkTrainableSource("file:///tmp/train.ts");
 * ```
 */
export async function checkTrainableSource(
  moduleUrl: string,
  options: { readonly allowRemote?: boolean } = {},
): Promise<void> {
  if (/^https?:/.test(moduleUrl)) {
    if (options.allowRemote) return;
    throw new TuneError(
      `The trainable "${moduleUrl}" is a remote module: tunebox does not fetch and run remote ` +
        `code unless asked to; download it, or pass allowRemoteTrainable: true ` +
        `(YAML: allow_remote_trainable: true)`,
    );
  }
  if (!moduleUrl.startsWith("file:")) return;
  const path = fileURLToPath(moduleUrl);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    throw new TuneError(
      `Cannot load the trainable module ${moduleUrl}: "${path}" does not exist or cannot be read`,
      { cause: e },
    );
  }
  if (!info.isFile) {
    const what = info.isDirectory ? "a folder" : info.isFifo ? "a FIFO" : "not a regular file";
    throw new TuneError(
      `Cannot load the trainable module ${moduleUrl}: "${path}" is ${what}; give a module file ` +
        `(.ts or .js)`,
    );
  }
}

/**
 * Refuses a deno.json that would widen a trial's sandbox: `unstable` features the experiment
 * did not list in `sandbox.unstable`, or an `importMap` file outside the config's folder (Deno
 * reads it without a permission check, and `import.meta.resolve` would show its values).
 *
 * @throws {TuneError} naming the file and the key.
 * @example
 * ```ts ignore
 * import { checkDenoConfig } from "./sandbox.ts";
 * await checkDenoConfig("/project/deno.json", { unstable: [] });
 * ```
 */
export async function checkDenoConfig(
  configFile: string,
  policy: SandboxPolicy,
): Promise<void> {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(stripJsonComments(await Deno.readTextFile(configFile)));
  } catch (e) {
    throw new TuneError(`Cannot read ${configFile}: ${(e as Error).message}`, { cause: e });
  }
  if (typeof json.importMap === "string") {
    const dir = dirname(resolve(configFile));
    const map = resolve(dir, json.importMap);
    if (!map.startsWith(dir + sep)) {
      throw new TuneError(
        `${configFile} takes its import map from "${json.importMap}", outside its folder; ` +
          `trials may only use an import map beside their deno.json (or "imports" in it)`,
      );
    }
  }
  const allowed = new Set(policy.unstable ?? []);
  const unstable = Array.isArray(json.unstable) ? json.unstable.map(String) : [];
  const extra = unstable.filter((u) => !allowed.has(u));
  if (extra.length) {
    throw new TuneError(
      `${configFile} turns on unstable Deno APIs (${
        extra.map((u) => `"${u}"`).join(", ")
      }) for the trials it would configure; list them in \`sandbox.unstable\` to allow that, ` +
        `or pass denoConfig: false`,
    );
  }
}

function stripJsonComments(text: string): string {
  let out = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === "\\") out += text[++i] ?? "";
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      out += "\n";
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      if (end < 0) break;
      i = end + 1;
    } else out += c;
  }
  return out.replace(/,(\s*[}\]])/g, "$1");
}

/** Options of {@linkcode checkModuleGraph}. */
export interface ModuleGraphOptions {
  /** Folders a trial may load local modules from. */
  readonly roots: readonly string[];
  /** The deno.json to resolve with, if any. */
  readonly configFile?: string;
  /** Unstable features the experiment turned on (e.g. `raw-imports`). */
  readonly unstable?: readonly string[];
}

/**
 * Checks the trainable's whole module graph (`deno info --json`) before any trial runs: every
 * local module, JSON, text or bytes file it imports (statically or by a literal dynamic import)
 * must lie in one of `roots`. Deno loads a literal import without checking read permission, so
 * this is where such an import is caught; at run time the trial imports the trainable by a
 * computed specifier, so Deno checks the rest too.
 *
 * @throws {TuneError} naming the module, the file:line:col that imports it, and the fix.
 * @example
 * ```ts ignore
 * import { checkModuleGraph } from "./sandbox.ts";
 * await checkModuleGraph("file:///project/train.ts", { roots: ["/project"] });
 * ```
 */
export async function checkModuleGraph(
  moduleUrl: string,
  options: ModuleGraphOptions,
): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "info",
      "--json",
      ...(options.configFile ? [`--config=${options.configFile}`, "--no-lock"] : ["--no-config"]),
      ...(options.unstable ?? []).map((u) => `--unstable-${u}`),
      moduleUrl,
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(0, 4).join("\n");
    throw new TuneError(`Cannot read the module graph of ${moduleUrl}: ${err}`);
  }
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: {
      specifier: string;
      dependencies?: {
        specifier: string;
        code?: { specifier: string; span?: { start: { line: number; character: number } } };
      }[];
    }[];
  };
  const roots = options.roots.map((r) => resolve(r));
  const inside = (path: string) =>
    roots.some((r) => path === r || path.startsWith(r.endsWith(sep) ? r : r + sep));
  const where = (url: string) =>
    url.startsWith("file:") ? relative(Deno.cwd(), fileURLToPath(url)) || url : url;
  for (const m of info.modules) {
    for (const d of m.dependencies ?? []) {
      const target = d.code?.specifier;
      if (!target?.startsWith("file:")) continue;
      const path = fileURLToPath(target);
      if (inside(path)) continue;
      const pos = d.code?.span?.start;
      const at = pos ? `${where(m.specifier)}:${pos.line + 1}:${pos.character + 1}` : where(
        m.specifier,
      );
      throw new TuneError(
        `The trainable imports "${d.specifier}" (${path}) at ${at}, outside the folders trials ` +
          `may read (the trainable's folder ${roots[0] ?? ""}, Tunebox, the npm packages and ` +
          `sandbox.read). Move it into the trainable's folder, or add "${
            dirname(path)
          }" to sandbox.read`,
      );
    }
  }
}

export { type Denial, parseDenial } from "./denial.ts";
