/**
 * The permission policy of a sandboxed trial, turned into `deno run` flags (DESIGN §7):
 * default deny; the trial reads its own folder, its trainable, the npm packages and what the
 * experiment declares; writes its own folder; talks to the driver's socket; reads only the
 * environment variables it is given; never runs processes; FFI only for native backends.
 *
 * @module
 */

import type { SandboxPolicy } from "./plugin.ts";

/** Where one trial runs, for {@linkcode sandboxFlags}. */
export interface SandboxContext {
  /** The trial folder (read and write). */
  readonly trialDir: string;
  /** The driver's unix socket. */
  readonly socketPath: string;
  /** Local file of the trainable module, if it is one. */
  readonly trainableFile?: string;
  /** Folders of npm packages (a `node_modules` folder, Deno's npm cache). */
  readonly packageDirs: readonly string[];
  /** The `deno.json` to run with (its import map and `nodeModulesDir`), or none. */
  readonly configFile?: string;
  /** Environment variable names the trial may read. */
  readonly envNames: readonly string[];
  /** What the experiment (and the backend) declared. */
  readonly policy: SandboxPolicy;
}

/**
 * The `deno run` arguments (without the entry module) for one trial.
 *
 * @example
 * ```ts
 * import { sandboxFlags } from "./sandbox.ts";
 * const flags = sandboxFlags({
 *   trialDir: "/tmp/exp/t1", socketPath: "/tmp/s/d.sock", packageDirs: [],
 *   envNames: ["TUNEBOX_TOKEN"], policy: { read: ["/data"] },
 * });
 * console.log(flags.includes("--allow-read=/tmp/exp/t1,/tmp/s/d.sock,/data")); // true
 * ```
 */
export function sandboxFlags(ctx: SandboxContext): string[] {
  const p = ctx.policy;
  const read = unique([
    ctx.trialDir,
    ctx.socketPath,
    ...(ctx.trainableFile ? [ctx.trainableFile] : []),
    ...ctx.packageDirs,
    ...(p.read ?? []),
  ]);
  const write = unique([ctx.trialDir, ctx.socketPath, ...(p.write ?? [])]);
  const net = unique([`unix:${ctx.socketPath}`, ...(p.net ?? [])]);
  const env = unique([...ctx.envNames, ...(p.env ?? [])]);
  const flags = [
    "run",
    "--no-prompt",
    // Nothing is downloaded by a trial (npm: imports would otherwise fetch without --allow-net).
    "--cached-only",
    ctx.configFile ? `--config=${ctx.configFile}` : "--no-config",
    `--allow-read=${read.join(",")}`,
    `--allow-write=${write.join(",")}`,
    `--allow-net=${net.join(",")}`,
    `--allow-env=${env.join(",")}`,
  ];
  if (p.sys?.length) flags.push(`--allow-sys=${unique(p.sys).join(",")}`);
  if (p.ffi?.length) flags.push(`--allow-ffi=${unique(p.ffi).join(",")}`);
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

/** A parsed Deno permission denial. */
export interface Denial {
  /** The permission: read, write, net, env, run, ffi, sys, import. */
  readonly permission: string;
  /** The path, host, variable or program (empty when Deno gives none). */
  readonly target: string;
}

/**
 * Finds a Deno permission denial (`NotCapable: Requires read access to "/etc/passwd"`) in an
 * error message or stderr text.
 *
 * @example
 * ```ts
 * import { parseDenial } from "./sandbox.ts";
 * console.log(parseDenial('NotCapable: Requires net access to "127.0.0.1:80", run again'));
 * // { permission: "net", target: "127.0.0.1:80" }
 * ```
 */
export function parseDenial(text: string): Denial | undefined {
  const m = /Requires (\w+) access(?: to "([^"]*)")?/.exec(text);
  if (m) return { permission: m[1], target: m[2] ?? "" };
  const sym = /(Deno\.\w+\(\)|\w+) requires unscoped --allow-(\w+)/.exec(text);
  if (sym) return { permission: sym[2], target: sym[1] };
  return undefined;
}
