/**
 * The driver half of `Tuner`: `fit()` and `Tuner.restore()` with everything they load
 * (the runner, the store, the executors, the default plugins, the live table). `tuner.ts`
 * imports it on first use, so a trial process whose trainable imports `mod.ts` never loads it.
 *
 * @module
 */

import { basename, join, resolve } from "../core/_path.ts";
import type { PluginFactory } from "../core/plugin.ts";
import type { Config, JsonValue } from "../core/trial.ts";
import { gridSize, type Space, spaceFromJson } from "../core/space.ts";
import type { TrainableFn } from "../core/session.ts";
import { type RestoredTrial, runExperiment, type RunnerConfig } from "../core/runner.ts";
import { ResultGrid, type TrialInfo } from "../core/results.ts";
import { TuneError } from "../core/errors.ts";
import { exists } from "../core/_fs.ts";
import {
  materializeTrial,
  readExperiment,
  readStoredTrials,
  readTrialEvents,
} from "../core/store.ts";
import { fifoScheduler } from "../plugins/schedulers/fifo.ts";
import { randomSearcher } from "../plugins/searchers/random.ts";
import { subprocessExecutor } from "../plugins/executors/subprocess.ts";
import { inprocessExecutor } from "../plugins/executors/inprocess.ts";
import { executorFromSpec } from "../plugins/executors/mod.ts";
import { tableReporter } from "../plugins/reporters/table.ts";
import { findPluginFactory } from "./plugin_table.ts";
import { objectivesOf } from "./validate_options.ts";
import { clusterGate, joinPolicies, makeGate } from "./gate.ts";
import { backendFromSpec, restoreScalars, restoreStop, savedOptions } from "./saved_options.ts";
import type { RestoreOptions, TunerOptions } from "./tuner.ts";

/** What `Tuner.restore` found on disk, for `fit()` to continue from. */
export interface RestoreState {
  /** The experiment's folder. */
  readonly dir: string;
  /** The trials and plugin states to continue from. */
  readonly restored: NonNullable<RunnerConfig["restored"]>;
  /** When the experiment was first made. */
  readonly createdAt: string;
  /** Its id. */
  readonly experimentId: string;
}

/**
 * Runs the experiment of validated `options` to its end (see `Tuner.fit`).
 *
 * @param options the Tuner's validated options.
 * @param restore what `Tuner.restore` found, when continuing an experiment.
 * @returns its results.
 */
export async function fitTuner(
  options: TunerOptions<Space>,
  restore: RestoreState | undefined,
): Promise<ResultGrid> {
  const o = options;
  const storage = resolve(o.storage ?? "./tunebox_results");
  const name = o.name ?? `${trainableName(o.trainable)}_${stamp()}`;
  const dir = restore?.dir ?? join(storage, name);
  if (!restore) prepareFolder(storage, dir);
  const seed = o.seed ?? (Date.now() % 2 ** 31);
  const numSamples = o.numSamples ?? 1;
  const total = numSamples < 0 ? Infinity : numSamples * gridSize(o.space);
  // cpu and gpu are per worker: a trial of N workers holds N times as much.
  const workers = o.resources?.workers ?? 1;
  const resources = {
    cpu: (o.resources?.cpu ?? 1) * workers,
    gpu: (o.resources?.gpu ?? 0) * workers,
  };
  const executor = o.executor ??
    (typeof o.trainable === "function"
      ? inprocessExecutor(o.trainable as TrainableFn<Config>)
      : subprocessExecutor(o.trainable, {
        ...(o.denoConfig !== undefined ? { denoConfig: o.denoConfig } : {}),
        ...(o.allowRemoteTrainable ? { allowRemoteTrainable: true } : {}),
      }));
  if (workers > 1 && !executor.multiWorker) {
    throw new TuneError(
      `resources.workers is ${workers}, but the "${executor.name}" executor runs one worker per ` +
        `trial; use a trainable module (not a function) with the default subprocess executor, ` +
        `or an executor that runs several workers per trial`,
    );
  }
  // An executor that places trials itself (a cluster) says how many fit; else this machine.
  const { gate, total: totalResources } = executor.capacity
    ? clusterGate(
      o.maxConcurrent ?? executor.capacity({ ...o.resources, ...resources }),
      resources,
      { cpu: o.cpus, gpu: typeof o.gpus === "number" ? o.gpus : o.gpus?.length },
      o.backend,
    )
    : await makeGate(resources, o.maxConcurrent, o.gpus, o.backend, o.cpus);
  const { metrics, modes } = objectivesOf(o);
  const multi = metrics.length > 1 ? { metrics, modes } : {};
  const reporter = o.reporter === undefined
    ? tableReporter({ metricColumns: [...metrics], totalTrials: total })
    : o.reporter;
  const outcome = await runExperiment({
    name: basename(dir),
    dir,
    experimentId: restore?.experimentId ?? randomHex5(),
    space: o.space,
    metric: metrics[0],
    mode: modes[0],
    ...multi,
    seed,
    numSamples,
    totalTrials: total,
    searcher: o.searcher ?? randomSearcher(),
    scheduler: o.scheduler ?? fifoScheduler(),
    callbacks: [...(reporter ? [reporter] : []), ...(o.callbacks ?? [])],
    executor,
    gate,
    totalResources,
    ...(o.stop ? { stop: o.stop } : {}),
    ...(o.timeBudgetMs !== undefined ? { timeBudgetMs: o.timeBudgetMs } : {}),
    ...(o.trialTimeoutMs !== undefined ? { trialTimeoutMs: o.trialTimeoutMs } : {}),
    ...(o.callbackDrainMs !== undefined ? { callbackDrainMs: o.callbackDrainMs } : {}),
    ...(o.trialFolders ? { trialFolders: o.trialFolders } : {}),
    maxFailures: o.maxFailures ?? 0,
    checkpoint: o.checkpoint ?? {},
    sandbox: o.backend ? joinPolicies(o.backend.permissions(), o.sandbox ?? {}) : o.sandbox ?? {},
    ...(o.resources ? { resources: o.resources } : {}),
    ...(o.resources?.memoryMb !== undefined ? { memoryMb: o.resources.memoryMb } : {}),
    savedOptions: savedOptions(o, seed),
    createdAt: restore?.createdAt ?? new Date().toISOString(),
    ...(restore ? { restored: restore.restored } : {}),
  });
  if (outcome.fatal) {
    throw outcome.fatal instanceof TuneError
      ? outcome.fatal
      : new TuneError(`The experiment stopped: ${outcome.fatal.message}`, {
        cause: outcome.fatal,
      });
  }
  // The runner's map of histories (every trial's) is the grid's; each trial's record is built by
  // assignment (10,000 trials at once at the end of an experiment: no spread objects).
  const histories = outcome.histories;
  const trials: TrialInfo[] = [];
  for (const t of outcome.trials) {
    const info: { -readonly [K in keyof TrialInfo]: TrialInfo[K] } = {
      id: t.id,
      status: t.status,
      config: t.config,
      metrics: t.lastResult,
      iterations: t.iteration,
    } as TrialInfo;
    if (t.error) info.error = t.error;
    if (t.reason) info.reason = t.reason;
    info.path = t.dir;
    if (t.checkpoint) info.checkpoint = t.checkpoint;
    trials.push(info);
  }
  return new ResultGrid({
    path: dir,
    metric: metrics[0],
    mode: modes[0],
    ...multi,
    trials,
    histories,
    interrupted: outcome.interrupted || outcome.budgetExhausted,
  });
}

/**
 * Reads an interrupted experiment back (see `Tuner.restore`): the options to make its Tuner
 * with, and where to continue from.
 *
 * @param path the experiment's folder.
 * @param options what cannot be saved, given again.
 * @returns the Tuner's options and the state to continue from.
 */
export async function restoreTuner(
  path: string,
  options: RestoreOptions,
): Promise<{ options: TunerOptions<Space>; restore: RestoreState }> {
  const dir = resolve(path);
  const record = await readExperiment(dir);
  const saved = record.options as Record<string, JsonValue>;
  const trainable = options.trainable ??
    (saved.trainable === "<function>" ? undefined : String(saved.trainable));
  if (!trainable) {
    throw new TuneError(
      `The experiment in "${dir}" trained a function, which cannot be saved: pass it again with Tuner.restore(path, { trainable })`,
    );
  }
  const spaceJson = JSON.stringify(record.space);
  if (!options.space && spaceJson.includes('"sample_from"')) {
    throw new TuneError(
      `The space of "${dir}" uses sampleFrom, which cannot be saved: pass it again with Tuner.restore(path, { space })`,
    );
  }
  const space = options.space ?? spaceFromJson(record.space);
  // The factories of the saved specs, found by name (tuner/plugin_table.ts loads a built-in's
  // module on demand, so restoring needs no imports first).
  const factories: Partial<Record<"scheduler" | "searcher", PluginFactory<unknown>>> = {};
  for (const role of ["scheduler", "searcher"] as const) {
    const name = (saved[role] as { name?: unknown } | null | undefined)?.name;
    if (typeof name === "string") factories[role] = await findPluginFactory(role, name);
  }
  const plugin = <T>(
    role: "scheduler" | "searcher",
    given: T | undefined,
    savedName: string,
    defaultName: string,
    make: () => T,
  ): T => {
    if (given) return given;
    const spec = saved[role] as
      | { name?: string; options?: Record<string, unknown> }
      | null
      | undefined;
    if (spec && typeof spec === "object" && spec.name) {
      const factory = factories[role];
      if (factory) return factory(spec.options ?? {}) as T;
    }
    if (savedName === defaultName) return make();
    throw new TuneError(
      `The experiment in "${dir}" used the ${role} "${savedName}": pass it again with Tuner.restore(path, { ${role} })`,
    );
  };
  const scheduler = plugin(
    "scheduler",
    options.scheduler,
    record.scheduler.name,
    "fifo",
    () => fifoScheduler(),
  );
  const searcher = plugin(
    "searcher",
    options.searcher,
    record.searcher.name,
    "random",
    () => randomSearcher(),
  );
  // An executor made from a spec (YAML, CLI) is made again; a custom one is given again.
  const savedExecutor = saved.executor as { name?: string; options?: Record<string, unknown> };
  const executor = options.executor ??
    (savedExecutor && typeof savedExecutor === "object" && savedExecutor.name &&
        typeof trainable !== "function"
      ? executorFromSpec(
        { name: savedExecutor.name, options: savedExecutor.options ?? {} },
        trainable,
      )
      : undefined);
  const backend = options.backend ?? await backendFromSpec(saved.backend, dir);
  const events = await readTrialEvents(dir);
  const trials: RestoredTrial[] = [];
  for (const s of await readStoredTrials(dir, events)) {
    const tdir = s.dir;
    const history = [...s.history];
    // A folder a killed driver had begun to write (an in-process trial's, behind the
    // journal) is completed now; an in-process trial without one keeps its records in the
    // journal alone (written at the end with trialFolders: "end").
    if (
      (s.behindJournal || !(await exists(join(tdir, "params.json"), { followLinks: false }))) &&
      await exists(tdir, { followLinks: false })
    ) {
      await materializeTrial(tdir, s.config, history);
    }
    const lastIter = history.at(-1)?.training_iteration ?? 0;
    // A checkpoint newer than the last recorded result was never acknowledged: drop it.
    const all = s.checkpoints;
    const cks = all.filter((c) => c.iteration <= lastIter);
    for (const c of all) {
      if (c.iteration > lastIter) await Deno.remove(c.path, { recursive: true });
    }
    const status = s.status === "error" && options.restartErrored ? "pending" : s.status;
    // Reports after the last checkpoint are on disk, but the trial restarts from that checkpoint.
    const last = history.at(-1);
    const resumable = status === "pending" || status === "running" || status === "paused";
    const ckIter = cks.at(-1)?.iteration ?? 0;
    trials.push({
      ...s,
      status,
      history,
      checkpoints: cks,
      iteration: resumable ? Math.max(ckIter, 0) : last?.training_iteration ?? 0,
      ...(last ? { lastResult: last } : {}),
      ...(cks.length ? { checkpoint: cks.at(-1)!.path } : {}),
    });
  }
  const stop = options.stop ?? await restoreStop(saved.stop, dir);
  const o: TunerOptions<Space> = {
    trainable: trainable as TunerOptions<Space>["trainable"],
    space,
    metric: record.metrics ?? record.metric,
    mode: record.modes ?? record.mode,
    numSamples: Number(saved.numSamples ?? 1),
    seed: record.seed,
    scheduler,
    searcher,
    ...(executor ? { executor } : {}),
    ...(backend ? { backend } : {}),
    ...(options.callbacks ? { callbacks: options.callbacks } : {}),
    ...(options.reporter !== undefined ? { reporter: options.reporter } : {}),
    ...restoreScalars(saved),
    ...(stop ? { stop } : {}),
  };
  return {
    options: o,
    restore: {
      dir,
      createdAt: record.createdAt,
      experimentId: record.experimentId,
      restored: {
        trials,
        trialCount: record.trialCount,
        searcherState: record.searcher.state,
        schedulerState: record.scheduler.state,
        replay: events.slice(record.eventCount ?? 0),
      },
    },
  };
}

function trainableName(t: TunerOptions<Space>["trainable"]): string {
  if (typeof t === "function") return t.name || "trainable";
  const href = t instanceof URL ? t.href : t;
  return (href.split("/").pop() ?? "trainable").replace(/\.[jt]sx?$/, "").replace(/[^\w-]/g, "_") ||
    "trainable";
}

function stamp(): string {
  const d = new Date(), p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}_${p(d.getHours())}-${
    p(d.getMinutes())
  }-${p(d.getSeconds())}`;
}

function randomHex5(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 5);
}

/**
 * Makes the experiment's folder, with synchronous calls (four small ones: Deno's asynchronous
 * writeTextFile loads its streams module on first use, milliseconds of a short experiment).
 */
function prepareFolder(storage: string, dir: string): void {
  try {
    Deno.mkdirSync(storage, { recursive: true });
    const probe = join(storage, `.tunebox_probe_${crypto.randomUUID().slice(0, 8)}`);
    Deno.writeFileSync(probe, new Uint8Array());
    Deno.removeSync(probe);
  } catch (e) {
    throw new TuneError(
      `The storage folder "${storage}" is not writable (${
        (e as Error).message
      }); pass another with \`storage\` (YAML: storage:)`,
      { cause: e },
    );
  }
  try {
    Deno.mkdirSync(dir);
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new TuneError(
        `The experiment folder "${dir}" already exists: resume it with Tuner.restore("${dir}") (CLI: tunebox resume ${dir}), or choose another \`name\``,
      );
    }
    throw new TuneError(`Cannot create the experiment folder "${dir}": ${(e as Error).message}`, {
      cause: e,
    });
  }
}
