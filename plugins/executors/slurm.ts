/**
 * Runs trials on a Slurm cluster: inside an allocation each trial is a job step
 * (`srun --exact`); from a login node each trial is a batch job (`sbatch`), watched with
 * `squeue`/`scontrol` and cancelled with `scancel`. Trials talk to the driver over TLS
 * (`core/remote/channel.ts`) and run with the same Deno permissions as local trials.
 *
 * The parts, each in its own private module: the shared record of one executor
 * (`_slurm_context.ts`), what `prepare()` sets up and each trial's command line
 * (`_slurm_setup.ts`), the batch jobs' poller (`_slurm_batch.ts`), warm steps
 * (`_slurm_warm.ts`), one trial's run (`_slurm_trial.ts`), how a stopped step is ended so Slurm
 * frees its CPUs (`_slurm_reap.ts`), multi-worker rings (`_slurm_group.ts`), and Slurm's
 * command-line clients (`_slurm_commands.ts`).
 *
 * @module
 */

import type { Executor, Resources, TrialHandle } from "../../core/plugin.ts";
import { TuneError } from "../../core/errors.ts";
import { allocationCpus, resourceArgs } from "./_slurm_commands.ts";
import type { SlurmExecutorOptions } from "./_slurm_options.ts";
import { SlurmContext } from "./_slurm_context.ts";
import { prepareSlurm } from "./_slurm_setup.ts";
import { BatchJobs } from "./_slurm_batch.ts";
import { WarmSteps } from "./_slurm_warm.ts";
import { SlurmTrial } from "./_slurm_trial.ts";

export type { SlurmOptions } from "./_slurm_commands.ts";
export type { SlurmExecutorOptions } from "./_slurm_options.ts";

/**
 * An executor that runs each trial on a Slurm cluster, sandboxed by the same Deno permissions
 * as a local trial, talking to the driver over TLS. Resources map to Slurm: `cpu` → `-c`,
 * `memoryMb` → `--mem`, `gpu` → `--gres=gpu:<n>` (whole GPUs only). A trial's environment is
 * exactly the sandbox's (`--export=NIL,...`).
 *
 * The experiment folder (storage), the trainable's folder, Tunebox and Deno itself must be on
 * storage every node sees; the driver checks this with the first trial.
 *
 * @param trainable the trainable module (URL or path); its default export is run.
 * @param options mode, Slurm flags, driver address, timing.
 * @returns the executor.
 * @example
 * ```ts ignore
 * import { slurmExecutor } from "./slurm.ts";
 * const executor = slurmExecutor(new URL("./train.ts", import.meta.url), {
 *   mode: "sbatch",
 *   slurm: { partition: "gpu", account: "proj42", time: "1:00:00" },
 * });
 * ```
 */
export function slurmExecutor(
  trainable: string | URL,
  options: SlurmExecutorOptions = {},
): Executor {
  const ctx = new SlurmContext(trainable, options);
  const batch = new BatchJobs(ctx.cmdEnv, ctx.pollMs, ctx.log);
  const warmSteps = new WarmSteps((job, binding) =>
    ctx.setup && new SlurmTrial(ctx, ctx.setup, batch, job, undefined, binding).handle()
  );
  const warm = ctx.mode === "step"
    ? {
      warm(next) {
        if (ctx.setup) warmSteps.warm(next);
      },
      unwarm(trialId) {
        warmSteps.unwarm(trialId);
      },
    } satisfies Pick<Executor, "warm" | "unwarm">
    : {};
  return {
    name: "slurm",
    // Several workers per trial are the tasks of one step (srun -n N), or of one batch job
    // whose script runs them as one step.
    multiWorker: true,
    capacity(resources: Resources): number {
      // Refuses what Slurm cannot express (fractional GPUs or CPUs) before any trial starts.
      resourceArgs(
        { cpu: resources.cpu ?? 1, gpu: resources.gpu ?? 0, workers: resources.workers ?? 1 },
        options.slurm ?? {},
      );
      if (options.maxJobs !== undefined) return options.maxJobs;
      if (ctx.mode === "sbatch") return 32;
      const cpus = allocationCpus(ctx.cmdEnv.SLURM_JOB_CPUS_PER_NODE);
      return cpus ? Math.max(1, Math.floor(cpus / Math.max(1, resources.cpu ?? 1))) : 1;
    },
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
    ...warm,
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
  } as Executor;
}
