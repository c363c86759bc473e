/**
 * Runs trials as functions in the driver's process: no sandbox, no process start-up, the same
 * session API. For cheap objectives and tests.
 *
 * @module
 */

import type { Executor, TrialExit, TrialHandle } from "../../core/plugin.ts";
import { type TrainableFn, TrialSession, TrialStopped } from "../../core/session.ts";
import type { Config } from "../../core/trial.ts";

/**
 * An executor that calls the trainable function directly. A trial that never awaits cannot be
 * interrupted (there is no process to kill): use the subprocess executor for those.
 *
 * @param fn the training function, `(config, session) => ...`.
 * @returns the executor.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inprocessExecutor } from "./inprocess.ts";
 * const executor = inprocessExecutor(async (config, session) => {
 *   await session.report({ score: Number(config.x) });
 * });
 * assert.equal(executor.name, "inprocess");
 * ```
 */
export function inprocessExecutor<C = Config>(fn: TrainableFn<C>): Executor {
  return {
    name: "inprocess",
    lazyTrialDir: true,
    start(job, listener): TrialHandle {
      const t0 = performance.now();
      const session = new TrialSession(
        {
          trialId: job.trialId,
          config: job.config,
          iteration: job.iteration,
          ...(job.checkpoint ? { checkpoint: job.checkpoint } : {}),
          trialDir: job.workDir,
          ...(job.resources ? { resources: job.resources } : {}),
          // The runner creates no folder for an in-process trial: the first look at
          // session.trialDir has it written (the trial's records with it).
          onTrialDir: listener.needsDir
            ? () => listener.needsDir!()
            : () => Deno.mkdirSync(job.workDir, { recursive: true }),
        },
        {
          send: (metrics, checkpointDir) => {
            const elapsedS = (performance.now() - t0) / 1000;
            return listener.report(
              checkpointDir ? { metrics, elapsedS, checkpointDir } : { metrics, elapsedS },
            );
          },
        },
      );
      let stopped = false;
      let release!: (e: TrialExit) => void;
      const stoppedEarly = new Promise<TrialExit>((r) => (release = r));
      const run = (async (): Promise<TrialExit> => {
        try {
          await (fn as unknown as TrainableFn<Config>)(session.config, session);
          return { kind: "done" };
        } catch (e) {
          if (e instanceof TrialStopped) return stopped ? { kind: "stopped" } : { kind: "done" };
          const err = e instanceof Error ? e : new Error(String(e));
          return {
            kind: "error",
            message: `${err.name}: ${err.message}`,
            ...(err.stack ? { stack: err.stack } : {}),
          };
        }
      })();
      return {
        exited: Promise.race([run, stoppedEarly]),
        async stop(graceMs = 5000) {
          stopped = true;
          session.abort();
          let timer: ReturnType<typeof setTimeout> | undefined;
          const timeout = new Promise<"timeout">((
            r,
          ) => (timer = setTimeout(() => r("timeout"), graceMs)));
          const r = await Promise.race([run, timeout]);
          clearTimeout(timer);
          // A function that ignores the abort keeps running detached; the trial is over for us.
          if (r === "timeout") release({ kind: "stopped" });
        },
      };
    },
  };
}
