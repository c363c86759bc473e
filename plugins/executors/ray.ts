/**
 * Runs trials on a Ray cluster: every trial is a Ray job submitted through the Jobs
 * REST API of the cluster's dashboard, placed by Ray on a node with the CPUs, GPUs and custom
 * resources the trial asks for, and talking to the driver over TLS (`core/remote/channel.ts`)
 * with the same Deno permissions as a local trial.
 *
 * @module
 */

// For whoever changes it: the executor is made of private modules, each owning one part:
//
// - `ray.ts` (this module): the name, the options checked at once, `capacity()`, the saved spec.
//   It is in every process that imports mod.ts (a trial's too), so it imports only light modules;
//   `prepare()` loads the rest, `_ray_executor.ts`, by a computed specifier.
// - `_ray_options.ts`: the options, and the settings (the options checked, with defaults).
// - `_ray_executor.ts`: `prepare()`, `start()`, `close()`: which kind of trial a job becomes.
// - `_ray_context.ts`: `RayContext`, the state all of an executor's trials share, and
//   `prepare()`, which makes it (entry, module cache, package, channel, probe).
// - `_ray_jobs.ts`: the table of the jobs submitted and not deleted yet, its poller, `.ray_jobs`.
// - `_ray_job_spec.ts`: what a job asks for (resources, the placement check) and runs (its
//   entrypoint).
// - `_ray_trial.ts`: a trial (or a worker) as a job of its own.
// - `_ray_group.ts`: a trial of several workers, their ring ports.
// - `_ray_pool.ts`, `_ray_pooled_trial.ts`: jobs that run several trials (`trialsPerJob`).
// - `_ray_failure.ts`: how a trial that ended without an outcome failed, in words.
// - `_ray_client.ts` (the Jobs API), `_ray_package.ts` (the shipped `working_dir`),
//   `_ray_launcher.ts` (a pooled job's program), `_ray_io.ts` (log files, a held connection).

import type { Executor, Resources } from "../../core/plugin.ts";
import { resolveModule } from "../../core/plugin.ts";
import { TuneError } from "../../core/errors.ts";
import { type RayExecutorOptions, raySettings } from "./_ray_options.ts";
import type { RayRunner } from "./_ray_executor.ts";

export { rayErrorLine } from "./_ray_error_line.ts";
export type { RayExecutorOptions } from "./_ray_options.ts";

/**
 * An executor that runs each trial as a Ray job on an existing Ray cluster, sandboxed by the
 * same Deno permissions as a local trial. Resources map to Ray: `cpu` → `entrypoint_num_cpus`,
 * `gpu` → `entrypoint_num_gpus` (fractional allowed; Ray sets `CUDA_VISIBLE_DEVICES` and the
 * trial sees it), `custom` → `entrypoint_resources`, `memoryMb` → `entrypoint_memory`. The
 * trial is started through `env -i` with only the sandbox's variables (Ray's jobs inherit the
 * `ray start` environment, tokens included) and stdin `/dev/null`.
 *
 * A trial of several workers (`resources: { workers: N, cpu, gpu, custom }`, all per worker) is
 * N jobs that Ray places wherever each fits; the workers wait, connected to the driver, until all
 * of them run, then form their collectives' ring over their nodes' addresses. The first worker
 * to fail (or to stay PENDING past `pendingTimeoutMs`) fails the trial and the others' jobs are
 * stopped.
 *
 * Short trials can share jobs (`trialsPerJob`, as Ray Tune's `reuse_actors`): a job then runs
 * Tunebox's launcher, which starts the trials it is given one after another, each as its own
 * sandboxed process, so Ray's per-job supervisor is paid once per job instead of once per trial.
 *
 * @param trainable the trainable module (URL or path); its default export is run.
 * @param options the cluster's address and token, where Deno comes from, storage, timing.
 * @returns the executor.
 * @example
 * ```ts ignore
 * import { rayExecutor } from "./ray.ts";
 * const executor = rayExecutor(new URL("./train.ts", import.meta.url), {
 *   address: "http://head:8265",
 *   trialsPerJob: 8, // short trials: one Ray job runs up to 8 of them, one after another
 * });
 * ```
 */
export function rayExecutor(
  trainable: string | URL,
  options: RayExecutorOptions = {},
): Executor {
  const moduleUrl = resolveModule(trainable);
  const settings = raySettings(options);
  let loading: Promise<RayRunner> | undefined;
  let runner: RayRunner | undefined;

  const executor = {
    name: "ray",
    // A trial of N workers is N jobs, placed by Ray wherever each fits.
    multiWorker: true,
    capacity(resources: Resources): number {
      return Math.max(1, Math.floor((options.maxJobs ?? 64) / (resources.workers ?? 1)));
    },
    async prepare(ctx) {
      loading ??= trialSide().then((m) => m.rayRunner(moduleUrl, settings));
      runner = await loading;
      await runner.prepare(ctx);
    },
    start(job, listener) {
      if (!runner) throw new TuneError("rayExecutor: prepare() must run before start()");
      return runner.start(job, listener);
    },
    async close() {
      await runner?.close();
    },
  } as Executor;
  // Saved in experiment.json so `tunebox resume` makes it again; never the token (the resumed
  // driver reads RAY_AUTH_TOKEN) nor the log function.
  const { token: _t, log: _l, ...saved } = options;
  Object.defineProperty(executor, "spec", {
    value: {
      name: "ray",
      options: JSON.parse(JSON.stringify({ ...saved, address: settings.address })),
    },
    enumerable: false,
    configurable: true,
  });
  return executor;
}

/**
 * The executor's heavy half, loaded by `prepare()`. The specifier is computed, which Deno's
 * module graph does not follow (a literal `import("./_ray_executor.ts")` would make every
 * process that imports mod.ts read and hash it and the modules it imports).
 */
function trialSide(): Promise<typeof import("./_ray_executor.ts")> {
  return import(new URL("./_ray_executor.ts", import.meta.url).href);
}
