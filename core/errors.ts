/**
 * The errors Tunebox throws. Bad arguments are `TypeError`/`RangeError` at construction;
 * everything that goes wrong while an experiment runs is a {@linkcode TuneError}.
 *
 * @module
 */

/**
 * The base class of every domain error Tunebox raises.
 *
 * @example
 * ```ts
 * import { TuneError } from "./errors.ts";
 * try {
 *   throw new TuneError("Experiment folder is missing");
 * } catch (e) {
 *   if (e instanceof TuneError) console.error(e.message);
 * }
 * ```
 */
export class TuneError extends Error {
  /** Creates the error; `options.cause` keeps the error it wraps. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A trial failed: it threw, exited without finishing, timed out or broke its sandbox.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TrialFailedError } from "./errors.ts";
 * const e = new TrialFailedError("a1b2c_00001", "Trial threw: boom");
 * assert.equal(e.trialId, "a1b2c_00001");
 * ```
 */
export class TrialFailedError extends TuneError {
  /** The id of the failed trial. */
  readonly trialId: string;
  /** What went wrong, without the trial prefix (what `TrialInfo.error` records). */
  readonly reason: string;
  /** Creates the error for `trialId`. */
  constructor(trialId: string, reason: string, options?: ErrorOptions) {
    super(`Trial "${trialId}" failed: ${reason}`, options);
    this.trialId = trialId;
    this.reason = reason;
  }
}

/**
 * A trial tried something its Deno permissions forbid (read, write, net, env, run, ffi, sys).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SandboxViolation } from "./errors.ts";
 * const e = new SandboxViolation("t1", "read", "/etc/passwd", "Requires read access");
 * assert.equal(e.permission, "read");
 * assert.equal(e.target, "/etc/passwd");
 * ```
 */
export class SandboxViolation extends TrialFailedError {
  /** The Deno permission that was missing: `read`, `write`, `net`, `env`, `run`, `ffi`, `sys`, `import`. */
  readonly permission: string;
  /** What the trial tried to reach: a path, host, variable or program. */
  readonly target: string;
  /** Creates the error from the parsed parts of Deno's `NotCapable` message. */
  constructor(trialId: string, permission: string, target: string, detail: string) {
    const fix = permission === "run" || permission === "import"
      ? `Trials may not ${
        permission === "run" ? "start processes" : "load modules from the network"
      }.`
      : `Declare it in the experiment's \`sandbox: { ${permission}: [...] }\` if the trial really needs it.`;
    super(
      trialId,
      `sandbox violation: the trial needs ${permission} access${
        target ? ` to "${target}"` : ""
      }, ` +
        `which the experiment does not allow. ${fix} (${detail})`,
    );
    this.permission = permission;
    this.target = target;
  }
}

/**
 * A plugin (searcher, scheduler, callback) threw from one of its hooks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PluginError } from "./errors.ts";
 * const e = new PluginError("asha", "onReport", new Error("boom"));
 * assert.equal(e.message, 'Plugin "asha" failed in onReport: boom');
 * ```
 */
export class PluginError extends TuneError {
  /** The plugin's name. */
  readonly plugin: string;
  /** The hook that threw. */
  readonly hook: string;
  /** Creates the error; the original error is kept as `cause`. */
  constructor(plugin: string, hook: string, cause: unknown) {
    super(`Plugin "${plugin}" failed in ${hook}: ${errorMessage(cause)}`, { cause });
    this.plugin = plugin;
    this.hook = hook;
  }
}

/**
 * An experiment file (YAML) is wrong: the message names the file, line, column and key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigError } from "./errors.ts";
 * const e = new ConfigError("Unknown key \"num_sample\"", "exp.yaml", 3, 1);
 * assert.equal(e.message, 'exp.yaml:3:1: Unknown key "num_sample"');
 * ```
 */
export class ConfigError extends TuneError {
  /** The file, or `<options>` for options given in code. */
  readonly file: string;
  /** 1-based line, 0 when unknown. */
  readonly line: number;
  /** 1-based column, 0 when unknown. */
  readonly column: number;
  /** Creates the error; the position is prefixed to the message. */
  constructor(message: string, file: string, line = 0, column = 0, options?: ErrorOptions) {
    super(`${file}${line ? `:${line}:${column}` : ""}: ${message}`, options);
    this.file = file;
    this.line = line;
    this.column = column;
  }
}

/**
 * A training backend could not be loaded; `hint` says how to install or enable it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BackendUnavailableError } from "./errors.ts";
 * const e = new BackendUnavailableError("tensorflow", "run `deno install --allow-scripts`");
 * assert.equal(e.hint, "run `deno install --allow-scripts`");
 * ```
 */
export class BackendUnavailableError extends TuneError {
  /** The backend that failed to load. */
  readonly backend: string;
  /** How to make it available. */
  readonly hint: string;
  /** Creates the error. */
  constructor(backend: string, hint: string, options?: ErrorOptions) {
    super(`Backend "${backend}" is not available: ${hint}`, options);
    this.backend = backend;
    this.hint = hint;
  }
}

/**
 * The message of any thrown value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorMessage } from "./errors.ts";
 * assert.equal(errorMessage(new Error("x")), "x");
 * assert.equal(errorMessage("y"), "y");
 * ```
 */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
