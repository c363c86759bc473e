/**
 * `Tuner`: the options of an experiment, their validation, the defaults, and `fit()`.
 *
 * @module
 */

import { basename, join, resolve } from "../core/_path.ts";
import type {
  Backend,
  Callback,
  Executor,
  Resources,
  SandboxPolicy,
  Scheduler,
  Searcher,
} from "../core/plugin.ts";
import type { PluginFactory } from "../core/plugin.ts";
import type { Config, JsonValue, Mode, TrialResult } from "../core/trial.ts";
import { type ConfigOf, gridSize, type Space, spaceFromJson } from "../core/space.ts";
import type { TrainableFn } from "../core/session.ts";
import {
  type CheckpointOptions,
  type RestoredTrial,
  runExperiment,
  type RunnerConfig,
  type StopCriteria,
} from "../core/runner.ts";
import { ResultGrid, type TrialInfo } from "../core/results.ts";
import { TuneError } from "../core/errors.ts";

import {
  materializeTrial,
  readExperiment,
  readStoredTrials,
  readTrialEvents,
} from "../core/store.ts";
import type { Device } from "../core/resources.ts";
import { fifoScheduler } from "../plugins/schedulers/fifo.ts";
import { randomSearcher } from "../plugins/searchers/random.ts";
import { subprocessExecutor } from "../plugins/executors/subprocess.ts";
import { inprocessExecutor } from "../plugins/executors/inprocess.ts";
import { executorFromSpec } from "../plugins/executors/mod.ts";
import { tableReporter } from "../plugins/reporters/table.ts";
import { findPluginFactory } from "./plugin_table.ts";
import { objectivesOf, validateOptions } from "./validate_options.ts";
import { clusterGate, joinPolicies, makeGate } from "./gate.ts";
import { backendFromSpec, restoreScalars, restoreStop, savedOptions } from "./saved_options.ts";

/** The options of a {@linkcode Tuner}. */
export interface TunerOptions<S extends Space = Space> {
  /**
   * What to train: a module URL or path whose default export is a trainable (runs in a sandboxed
   * subprocess), or a function `(config, session) => ...` (runs in-process).
   */
  readonly trainable: string | URL | TrainableFn<ConfigOf<S>>;
  /** The search space. */
  readonly space: S;
  /**
   * The metric to optimise (a key of the reported metrics; nested keys joined by `/`), or a list
   * of metrics for a multi-objective search (`["val_loss", "latency_ms"]`): then the results'
   * `paretoFront()` holds the trials no other beats in every objective.
   */
  readonly metric: string | readonly string[];
  /** Whether to minimise or maximise `metric`; a list of modes, one per metric, for a list. */
  readonly mode: Mode | readonly Mode[];
  /** How many samples of the space to run (each runs the whole grid); -1: until the budget ends. @default 1 */
  readonly numSamples?: number;
  /** At most this many trials at once. @default what `resources` allow on this machine */
  readonly maxConcurrent?: number;
  /** What each trial needs. @default { cpu: 1, gpu: 0 } */
  readonly resources?: Resources;
  /**
   * GPUs to use instead of discovery (`nvidia-smi -L`, or `TUNEBOX_GPUS`): devices, or a count.
   * With a cluster executor, the GPUs all trials share there. @default discovered; with a cluster
   * executor, what its `capacity` allows times `resources.gpu`
   */
  readonly gpus?: readonly Device[] | number;
  /**
   * CPUs all trials share (Ray's `ray.init(num_cpus=...)`): trials start while their
   * `resources.cpu` fit, and a resource-changing scheduler hands out what is left. @default this
   * machine's CPUs (`navigator.hardwareConcurrency`); with a cluster executor, what its
   * `capacity` allows times `resources.cpu`
   */
  readonly cpus?: number;
  /** Stop a trial when any criterion is reached (`{ training_iteration: 10 }`), or when the function says so. */
  readonly stop?: StopCriteria;
  /** Stop the whole experiment after this long. */
  readonly timeBudgetMs?: number;
  /** Retry a failed trial from its last checkpoint this many times (-1: forever). @default 0 */
  readonly maxFailures?: number;
  /** Kill a trial run that takes longer than this (counts as a failure). */
  readonly trialTimeoutMs?: number;
  /** Checkpoint retention. */
  readonly checkpoint?: CheckpointOptions;
  /** What sandboxed trials may reach beyond their own folder. */
  readonly sandbox?: SandboxPolicy;
  /** When to stop, pause or exploit trials. @default fifoScheduler() */
  readonly scheduler?: Scheduler;
  /** How to choose configs. @default randomSearcher() */
  readonly searcher?: Searcher;
  /** Loggers and other observers. */
  readonly callbacks?: readonly Callback[];
  /** The live trial table, or `false` for none. @default tableReporter() */
  readonly reporter?: Callback | false;
  /** Where experiment folders go. @default "./tunebox_results" */
  readonly storage?: string;
  /** The experiment folder's name. @default "<trainable>_<date>" */
  readonly name?: string;
  /** Seed of every random choice: the same seed gives the same configs in the same order. */
  readonly seed?: number;
  /** Run trials with a custom executor instead of the default for the trainable's kind. */
  readonly executor?: Executor;
  /**
   * The training backend trials use (e.g. `tfjsBackend({ native: true })` of
   * `./backends/tfjs`): its permissions join `sandbox`, and its `env(devices)` is set for every
   * trial (the native backend's `LD_LIBRARY_PATH`, `TF_*`; the allocation's `CUDA_*` win).
   */
  readonly backend?: Backend;
  /** How long the end of an experiment waits for slow callbacks (loggers). @default 60000 */
  readonly callbackDrainMs?: number;
  /**
   * When in-process trials get their folders (`params.json`, `result.jsonl`, `progress.csv`):
   * `"lazy"`, only when a trial needs one (a checkpoint, an exploit, `session.trialDir`, an
   * error), the rest living in the journal `trials.jsonl` (which `ResultGrid.load`, the report
   * and resume read); `"end"`, every trial's, in one pass before `fit()` returns. Sandboxed
   * trials always have theirs. @default "lazy"
   */
  readonly trialFolders?: "lazy" | "end";
  /** The deno.json sandboxed trials run with, or false for none. @default the nearest above the trainable */
  readonly denoConfig?: string | false;
  /**
   * Run a trainable given as an `http:`/`https:` URL (it is fetched, then runs sandboxed).
   * @default false: such a trainable is refused before anything starts
   */
  readonly allowRemoteTrainable?: boolean;
}

/** Options of {@linkcode Tuner.restore}. */
export interface RestoreOptions {
  /** The trainable again; required when it was a function. */
  readonly trainable?: string | URL | TrainableFn<Config>;
  /** The space again; required when it holds `sampleFrom`. */
  readonly space?: Space;
  /** The scheduler again; required unless it was the default or came from a YAML name. */
  readonly scheduler?: Scheduler;
  /** The searcher again; required unless it was the default or came from a YAML name. */
  readonly searcher?: Searcher;
  /** Callbacks (loggers) for the resumed run. */
  readonly callbacks?: readonly Callback[];
  /** The live table, or false. */
  readonly reporter?: Callback | false;
  /** Retry trials that had failed. @default false */
  readonly restartErrored?: boolean;
  /** The executor again (a custom one); one made from a YAML/CLI spec is made again. */
  readonly executor?: Executor;
  /** The backend again (a custom one); `tfjsBackend` is made again from its saved options. */
  readonly backend?: Backend;
  /**
   * The stop function again; required when it was a function that records no spec (stoppers of
   * `/stoppers` and YAML stoppers are made again by name).
   */
  readonly stop?: StopCriteria;
}

/**
 * Runs a hyperparameter search: samples configs from a space, runs a trial per config, and
 * returns a {@linkcode ResultGrid}.
 *
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { Tuner } from "./tuner.ts";
 *
 * const results = await new Tuner({
 *   trainable: async (config, session) => {
 *     await session.report({ score: -((config.x - 2) ** 2) });
 *   },
 *   space: { x: uniform(-5, 5) },
 *   metric: "score",
 *   mode: "max",
 *   numSamples: 20,
 * }).fit();
 * assert.ok(Math.abs(results.best().config.x - 2) < 5);
 * ```
 */
export class Tuner<S extends Space = Space> {
  /** The validated options. */
  readonly options: TunerOptions<S>;
  #restore: {
    dir: string;
    restored: NonNullable<RunnerConfig["restored"]>;
    createdAt: string;
    experimentId: string;
  } | undefined;

  /**
   * Validates the options; nothing runs until {@linkcode Tuner.fit}.
   *
   * @throws {TypeError | RangeError} naming the option when one is wrong.
   */
  constructor(options: TunerOptions<S>) {
    validateOptions(options as TunerOptions<Space>);
    this.options = options;
  }

  /**
   * Runs the experiment to its end and returns its results. A signal (Ctrl-C) stops the trials,
   * saves the state and resolves with `interrupted: true`; resume with {@linkcode Tuner.restore}.
   *
   * @throws {TuneError} when the storage folder cannot be written, the trainable cannot run, or
   * a plugin fails (the experiment's data is kept).
   */
  async fit(): Promise<ResultGrid> {
    const o = this.options as TunerOptions<Space>;
    const storage = resolve(o.storage ?? "./tunebox_results");
    const name = o.name ?? `${trainableName(o.trainable)}_${stamp()}`;
    const dir = this.#restore?.dir ?? join(storage, name);
    if (!this.#restore) await prepareFolder(storage, dir);
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
      experimentId: this.#restore?.experimentId ?? randomHex5(),
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
      createdAt: this.#restore?.createdAt ?? new Date().toISOString(),
      ...(this.#restore ? { restored: this.#restore.restored } : {}),
    });
    if (outcome.fatal) {
      throw outcome.fatal instanceof TuneError
        ? outcome.fatal
        : new TuneError(`The experiment stopped: ${outcome.fatal.message}`, {
          cause: outcome.fatal,
        });
    }
    const histories = new Map<string, readonly TrialResult[]>();
    const trials: TrialInfo[] = [];
    for (const t of outcome.trials) {
      histories.set(t.id, outcome.histories.get(t.id) ?? []);
      trials.push({
        id: t.id,
        status: t.status,
        config: t.config,
        metrics: t.lastResult,
        iterations: t.iteration,
        ...(t.error ? { error: t.error } : {}),
        ...(t.reason ? { reason: t.reason } : {}),
        path: t.dir,
        ...(t.checkpoint ? { checkpoint: t.checkpoint } : {}),
      });
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
   * A Tuner that continues an interrupted experiment: finished trials are kept, unfinished ones
   * restart from their last checkpoint, nothing acknowledged is lost.
   *
   * @throws {TuneError} when the folder is not an experiment, or a part that cannot be saved
   * (a function trainable, a `sampleFrom` space, a custom plugin) is not given again.
   */
  static async restore(path: string, options: RestoreOptions = {}): Promise<Tuner> {
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
        (s.behindJournal || !(await exists(join(tdir, "params.json")))) &&
        await exists(tdir)
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
    const tuner = new Tuner(o);
    tuner.#restore = {
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
    };
    return tuner;
  }
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

async function prepareFolder(storage: string, dir: string): Promise<void> {
  try {
    await Deno.mkdir(storage, { recursive: true });
    const probe = join(storage, `.tunebox_probe_${crypto.randomUUID().slice(0, 8)}`);
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
  } catch (e) {
    throw new TuneError(
      `The storage folder "${storage}" is not writable (${
        (e as Error).message
      }); pass another with \`storage\` (YAML: storage:)`,
      { cause: e },
    );
  }
  try {
    await Deno.mkdir(dir);
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

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
