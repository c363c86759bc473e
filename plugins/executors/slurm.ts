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
 * command-line clients (`_slurm_commands.ts`). This module keeps the name, the options check and
 * `capacity()`; the rest (`_slurm_executor.ts` and what it imports) is loaded by `prepare()`, by a
 * computed specifier, so that a process that imports mod.ts (a trial's) reads none of it.
 *
 * @module
 */

import type { Executor, Resources, TrialHandle } from "../../core/plugin.ts";
import { resolveModule } from "../../core/plugin.ts";
import { TuneError } from "../../core/errors.ts";
import { allocationCpus, resourceArgs } from "./_slurm_resources.ts";
import { type SlurmExecutorOptions, slurmMode } from "./_slurm_options.ts";
import type { SlurmRunner } from "./_slurm_executor.ts";

export type { SlurmOptions } from "./_slurm_resources.ts";
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
  // Resolved now, as the options are checked now: a bad trainable or mode throws here.
  const moduleUrl = resolveModule(trainable);
  const cmdEnv = { ...(options.commandEnv ?? Deno.env.toObject()) };
  const mode = slurmMode(options.mode, cmdEnv);
  const resolved: SlurmExecutorOptions = { ...options, mode, commandEnv: cmdEnv };
  let loading: Promise<SlurmRunner> | undefined;
  let runner: SlurmRunner | undefined;
  const warm = mode === "step"
    ? {
      warm(next) {
        runner?.warm(next);
      },
      unwarm(trialId) {
        runner?.unwarm(trialId);
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
      if (mode === "sbatch") return 32;
      const cpus = allocationCpus(cmdEnv.SLURM_JOB_CPUS_PER_NODE);
      return cpus ? Math.max(1, Math.floor(cpus / Math.max(1, resources.cpu ?? 1))) : 1;
    },
    async prepare(ctx) {
      loading ??= trialSide().then((m) => m.slurmRunner(moduleUrl, resolved));
      runner = await loading;
      await runner.prepare(ctx);
    },
    start(job, listener): TrialHandle {
      if (!runner) throw new TuneError("slurmExecutor: prepare() must run before start()");
      return runner.start(job, listener);
    },
    ...warm,
    async close() {
      await runner?.close();
    },
  } as Executor;
}

/**
 * The executor's heavy half, loaded by `prepare()`. The specifier is computed, which Deno's
 * module graph does not follow (a literal `import("./_slurm_executor.ts")` would make every
 * process that imports mod.ts read and hash it and the modules it imports).
 */
function trialSide(): Promise<typeof import("./_slurm_executor.ts")> {
  return import(new URL("./_slurm_executor.ts", import.meta.url).href);
}
