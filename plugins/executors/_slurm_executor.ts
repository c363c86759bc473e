// Private to the Slurm executor: its heavy half, which slurm.ts loads by a computed specifier on
// `prepare()` (a trial whose trainable imports mod.ts then never reads it). slurm.ts keeps the
// name, the options check and `capacity()`; everything that runs trials is here.

import type { Executor, TrialHandle } from "../../core/plugin.ts";
import { TuneError } from "../../core/errors.ts";
import type { SlurmExecutorOptions } from "./_slurm_options.ts";
import { SlurmContext } from "./_slurm_context.ts";
import { prepareSlurm } from "./_slurm_setup.ts";
import { BatchJobs } from "./_slurm_batch.ts";
import { WarmSteps } from "./_slurm_warm.ts";
import { SlurmTrial } from "./_slurm_trial.ts";

/** What slurm.ts delegates to once loaded. */
export type SlurmRunner = Required<
  Pick<Executor, "prepare" | "start" | "warm" | "unwarm" | "close">
>;

/**
 * The executor's trial side for `trainable` with `options` as slurm.ts resolved them (its
 * `mode` and `commandEnv` set).
 *
 * @throws {TypeError} for a mode other than "step" or "sbatch".
 */
export function slurmRunner(trainable: string, options: SlurmExecutorOptions): SlurmRunner {
  const ctx = new SlurmContext(trainable, options);
  const batch = new BatchJobs(ctx.cmdEnv, ctx.pollMs, ctx.log);
  const warmSteps = new WarmSteps((job, binding) =>
    ctx.setup && new SlurmTrial(ctx, ctx.setup, batch, job, undefined, binding).handle()
  );
  return {
    async prepare({ experimentDir, sandbox }) {
      batch.dir = experimentDir;
      ctx.setup = await prepareSlurm(ctx, experimentDir, sandbox, () => batch.cancelLeftovers());
    },
    start(job, listener): TrialHandle {
      if (!ctx.setup) throw new TuneError("slurmExecutor: prepare() must run before start()");
      const h = warmSteps.take(job, { job, listener }) ??
        new SlurmTrial(ctx, ctx.setup, batch, job, listener).handle();
      if (ctx.mode === "step") warmSteps.track(h.ready);
      return h;
    },
    warm(next) {
      if (ctx.setup) warmSteps.warm(next);
    },
    unwarm(trialId) {
      warmSteps.unwarm(trialId);
    },
    async close() {
      warmSteps.close();
      // The runner has stopped its trials; whatever still runs (a warm step) ends here, through
      // Slurm, before the driver may exit.
      const live = [...ctx.live];
      for (const run of live) run.kill();
      await Promise.all(live.map((run) => run.settled));
      ctx.setup?.channel.close();
      await batch.close();
    },
  };
}
