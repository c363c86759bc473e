/**
 * Runs each trial as its own `deno run` subprocess whose permissions are its sandbox.
 *
 * This module is in every process that imports mod.ts, a trial's too, so it imports only light
 * modules: `prepare()` loads the executor's heavy half, `_subprocess_executor.ts` (with the
 * sandbox, channel-serving and host modules it imports), by a computed specifier.
 *
 * @module
 */

import type { Executor, SandboxPolicy } from "../../core/plugin.ts";
import { resolveModule } from "../../core/plugin.ts";
import type { ChannelLimits } from "../../core/channel.ts";
import { TuneError } from "../../core/errors.ts";
import type { SubprocessRunner } from "./_subprocess_executor.ts";

/** Options of {@linkcode subprocessExecutor}. */
export interface SubprocessExecutorOptions {
  /** Extra permissions for every trial (merged with each job's). */
  readonly sandbox?: SandboxPolicy;
  /**
   * The `deno.json` trials resolve imports with, or `false` for `--no-config`. Trials never
   * write its lockfile, `node_modules` or vendor folder, and it may turn on only the unstable
   * features `sandbox.unstable` lists. @default the nearest deno.json/deno.jsonc above the
   * trainable module
   */
  readonly denoConfig?: string | false;
  /** How long a stopped trial may take to exit before it is sent SIGTERM. @default 5000 */
  readonly graceMs?: number;
  /** How long after SIGTERM a trial is sent SIGKILL. @default 2000 */
  readonly killAfterMs?: number;
  /** `--v8-flags` for trials, e.g. `--max-old-space-size=4096`. */
  readonly v8Flags?: string;
  /** Allow a trainable loaded over `http:`/`https:` (it runs sandboxed, but is fetched). @default false */
  readonly allowRemoteTrainable?: boolean;
  /** Cap of each of `stdout.log` and `stderr.log`, in bytes; later output is dropped. @default 67108864 */
  readonly maxLogBytes?: number;
  /** Bounds on the trial channel (report size, authentication). */
  readonly channel?: ChannelLimits;
  /**
   * How long a collective of a multi-worker trial (`session.allreduce`, ...) may wait for the
   * other workers before it fails the trial: what catches a worker that hangs without dying
   * (one that dies fails the trial at once). @default 1800000 (30 minutes, as PyTorch's)
   */
  readonly collectiveTimeoutMs?: number;
}

/**
 * An executor that starts each trial as a sandboxed `deno run` subprocess. Each trial talks to
 * the driver over its own unix socket, in a private folder that only that trial is granted; the
 * socket is removed once the trial has connected, so no trial can reach, replace or pose as
 * another's channel. The user's stdout/stderr go to `stdout.log`/`stderr.log` in the trial
 * folder. Stopping escalates from a `stop` message to SIGTERM and SIGKILL on the whole process
 * group, and trials die with the driver (parent-death signal via `setpriv`, where present, plus
 * a stdin watchdog).
 *
 * @param trainable the trainable module (URL or path); its default export is run.
 * @param options sandbox, deno.json and timing options.
 * @returns the executor.
 * @example
 * ```ts ignore
 * import { subprocessExecutor } from "./subprocess.ts";
 * const executor = subprocessExecutor(new URL("./train.ts", import.meta.url));
 * ```
 */
export function subprocessExecutor(
  trainable: string | URL,
  options: SubprocessExecutorOptions = {},
): Executor {
  const moduleUrl = resolveModule(trainable);
  let loading: Promise<SubprocessRunner> | undefined;
  let runner: SubprocessRunner | undefined;
  return {
    name: "subprocess",
    multiWorker: true,
    async prepare(ctx) {
      loading ??= trialSide().then((m) => m.subprocessRunner(moduleUrl, options));
      runner = await loading;
      await runner.prepare(ctx);
    },
    start(job, listener) {
      if (!runner) throw new TuneError("subprocessExecutor: prepare() must run before start()");
      return runner.start(job, listener);
    },
    warm(next) {
      runner?.warm(next);
    },
    unwarm(trialId) {
      runner?.unwarm(trialId);
    },
    async close() {
      await runner?.close();
    },
  };
}

/**
 * The executor's heavy half, loaded by `prepare()`. The specifier is computed, which Deno's
 * module graph does not follow (a literal `import("./_subprocess_executor.ts")` would make every
 * process that imports mod.ts read and hash it and the modules it imports).
 */
function trialSide(): Promise<typeof import("./_subprocess_executor.ts")> {
  return import(new URL("./_subprocess_executor.ts", import.meta.url).href);
}
