/**
 * `Tuner`: the options of an experiment, their validation, the defaults, and `fit()`.
 *
 * @module
 */

import type {
  Backend,
  Callback,
  Executor,
  Resources,
  SandboxPolicy,
  Scheduler,
  Searcher,
} from "../core/plugin.ts";
import type { Config, Mode } from "../core/trial.ts";
import type { ConfigOf, Space } from "../core/space.ts";
import type { TrainableFn } from "../core/session.ts";
import type { CheckpointOptions, StopCriteria } from "../core/runner.ts";
import type { ResultGrid } from "../core/results.ts";
import type { Device } from "../core/resources.ts";
import { validateOptions } from "./validate_options.ts";
import type { RestoreState } from "./_fit.ts";

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
  #restore: RestoreState | undefined;

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
    const { fitTuner } = await driverHalf();
    return await fitTuner(this.options as TunerOptions<Space>, this.#restore);
  }

  /**
   * A Tuner that continues an interrupted experiment: finished trials are kept, unfinished ones
   * restart from their last checkpoint, nothing acknowledged is lost.
   *
   * @throws {TuneError} when the folder is not an experiment, or a part that cannot be saved
   * (a function trainable, a `sampleFrom` space, a custom plugin) is not given again.
   */
  static async restore(path: string, options: RestoreOptions = {}): Promise<Tuner> {
    const { restoreTuner } = await driverHalf();
    const found = await restoreTuner(path, options);
    const tuner = new Tuner(found.options);
    tuner.#restore = found.restore;
    return tuner;
  }
}

/**
 * The runner, the store, the executors and the default plugins, loaded on first use. The
 * specifier is computed, which Deno's module graph does not follow: a trainable that imports
 * `mod.ts` then loads none of it in its trial process. (A literal `import("./_fit.ts")`, or a
 * template like `./${name}.ts`, which Deno reads as a pattern of files, would make every trial
 * process read and hash the whole driver at start.)
 */
function driverHalf(): Promise<typeof import("./_fit.ts")> {
  return import(new URL("./_fit.ts", import.meta.url).href);
}
