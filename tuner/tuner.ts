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
import { checkPluginShape, type PluginFactory, resolveModule } from "../core/plugin.ts";
import type { Config, JsonValue, Mode, TrialResources, TrialResult } from "../core/trial.ts";
import {
  type ConfigOf,
  gridSize,
  type Space,
  spaceFromJson,
  suggest,
  validateSpace,
} from "../core/space.ts";
import type { TrainableFn } from "../core/session.ts";
import {
  type CheckpointOptions,
  type ResourceGate,
  type RestoredTrial,
  runExperiment,
  type RunnerConfig,
  type StopCriteria,
} from "../core/runner.ts";
import { ResultGrid, type TrialInfo } from "../core/results.ts";
import { TuneError } from "../core/errors.ts";
import { OptionError, OptionRangeError } from "../core/options.ts";
import {
  materializeTrial,
  readExperiment,
  readStoredTrials,
  readTrialEvents,
} from "../core/store.ts";
import { type Device, discoverGpus, ResourcePool } from "../core/resources.ts";
import { fifoScheduler } from "../plugins/schedulers/fifo.ts";
import { randomSearcher } from "../plugins/searchers/random.ts";
import { subprocessExecutor } from "../plugins/executors/subprocess.ts";
import { inprocessExecutor } from "../plugins/executors/inprocess.ts";
import { executorFromSpec } from "../plugins/executors/mod.ts";
import { tableReporter } from "../plugins/reporters/table.ts";
import { findPluginFactory } from "./plugin_table.ts";
import { SAVED_AS_IS, TUNER_OPTION_NAMES } from "./option_table.ts";

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

const OPTION_KEYS = TUNER_OPTION_NAMES;

/**
 * Runs a hyperparameter search: samples configs from a space, runs a trial per config, and
 * returns a {@linkcode ResultGrid}.
 *
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { Tuner } from "./tuner.ts";
 * import { uniform } from "../core/space.ts";
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
        id: s.id,
        status,
        config: s.config,
        iteration: resumable ? Math.max(ckIter, 0) : last?.training_iteration ?? 0,
        ...(last ? { lastResult: last } : {}),
        ...(cks.length ? { checkpoint: cks.at(-1)!.path } : {}),
        checkpoints: cks,
        history,
        failures: s.failures,
        ...(s.reason ? { reason: s.reason } : {}),
        ...(s.resources ? { resources: s.resources } : {}),
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

/** The backend an experiment saved, made again (`tfjs`), or an error saying to pass it. */
async function backendFromSpec(
  saved: JsonValue | undefined,
  dir: string,
): Promise<Backend | undefined> {
  if (!saved || typeof saved !== "object" || Array.isArray(saved)) return undefined;
  const spec = saved as { name?: JsonValue; options?: JsonValue };
  if (spec.name === "tfjs" && spec.options && typeof spec.options === "object") {
    const { tfjsBackend } = await import("../plugins/backends/tfjs/permissions.ts");
    return tfjsBackend(spec.options as Record<string, unknown>) as Backend;
  }
  throw new TuneError(
    `The experiment in "${dir}" used the backend ${JSON.stringify(spec.name)}: pass it again ` +
      `with Tuner.restore(path, { backend })`,
  );
}

function restoreScalars(saved: Record<string, JsonValue>): Partial<TunerOptions<Space>> {
  const out: Record<string, unknown> = {};
  for (const k of SAVED_AS_IS) {
    if (saved[k] !== undefined && saved[k] !== null) out[k] = saved[k];
  }
  return out as Partial<TunerOptions<Space>>;
}

/** The saved `stop`: criteria as they are, a stopper's spec made again by its registered name. */
async function restoreStop(
  saved: JsonValue | undefined,
  dir: string,
): Promise<StopCriteria | undefined> {
  if (saved === undefined || saved === null) return undefined;
  const again = (what: string) =>
    new TuneError(
      `The experiment in "${dir}" stopped trials with ${what}: pass it again with ` +
        `Tuner.restore(path, { stop })`,
    );
  if (saved === "<function>") throw again("a stop function");
  if (typeof saved !== "object" || Array.isArray(saved)) return undefined;
  const spec = saved as { name?: JsonValue; options?: JsonValue };
  if (typeof spec.name !== "string") return saved as { readonly [key: string]: number };
  const factory = await findPluginFactory("stopper", spec.name);
  if (!factory) {
    throw again(`the stopper "${spec.name}" (register its name with registerPlugin first)`);
  }
  const options = spec.options && typeof spec.options === "object" ? spec.options : {};
  return factory(options as Record<string, unknown>) as StopCriteria;
}

function savedOptions(o: TunerOptions<Space>, seed: number): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {
    trainable: typeof o.trainable === "function"
      ? "<function>"
      : o.trainable instanceof URL
      ? o.trainable.href
      : resolveModule(o.trainable),
    numSamples: o.numSamples ?? 1,
    seed,
  };
  for (const k of SAVED_AS_IS as readonly (keyof TunerOptions<Space>)[]) {
    if (o[k] !== undefined) out[k] = o[k] as JsonValue;
  }
  const spec = (p: unknown) => (p as { spec?: JsonValue } | undefined)?.spec;
  if (o.stop && typeof o.stop !== "function") out.stop = o.stop as JsonValue;
  else if (o.stop) out.stop = spec(o.stop) ?? "<function>";
  if (spec(o.scheduler)) out.scheduler = spec(o.scheduler)!;
  if (spec(o.searcher)) out.searcher = spec(o.searcher)!;
  if (spec(o.executor)) out.executor = spec(o.executor)!;
  if (o.backend) out.backend = spec(o.backend) ?? { name: o.backend.name };
  return out;
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

/** A gate and the CPUs and GPUs it shares out. */
interface Gate {
  readonly gate: ResourceGate;
  readonly total: TrialResources;
}

/** The gate of this machine: CPUs and devices packed by a {@linkcode ResourcePool}. */
async function makeGate(
  req: TrialResources,
  maxConcurrent: number | undefined,
  gpus: readonly Device[] | number | undefined,
  backend?: Backend,
  cpus?: number,
): Promise<Gate> {
  const devices = await discoverGpus(gpus !== undefined ? { gpus } : {});
  const total = cpus ?? Math.max(navigator.hardwareConcurrency || 1, req.cpu);
  const pool = new ResourcePool({ cpus: total, gpus: devices });
  pool.check(req);
  const limit = maxConcurrent ?? Math.max(1, pool.maxConcurrent(req));
  let running = 0;
  const gate: ResourceGate = {
    canStart(r = req) {
      if (running >= limit) return false;
      const probe = pool.tryAcquire("\u0000probe", r);
      if (probe) pool.release("\u0000probe");
      return !!probe;
    },
    acquire(id, r = req) {
      const a = pool.tryAcquire(id, r);
      if (!a) throw new TuneError(`No resources left for trial "${id}"`);
      running++;
      if (!backend) return { ...a.env };
      const held = a.gpus.map((g) => devices.find((d) => d.index === g.index)!);
      return { ...backendEnv(backend, held), ...a.env };
    },
    release(id) {
      if (pool.release(id)) running--;
    },
    check: (r) => pool.check(r),
  };
  return { gate, total: { cpu: total, gpu: devices.length } };
}

/** A backend's environment, its errors named. */
function backendEnv(backend: Backend, devices: readonly Device[]): Record<string, string> {
  let env: unknown;
  try {
    env = backend.env(devices);
  } catch (e) {
    throw new TuneError(`backend "${backend.name}": env() failed: ${(e as Error)?.message ?? e}`, {
      cause: e,
    });
  }
  if (
    typeof env !== "object" || env === null ||
    Object.values(env).some((v) => typeof v !== "string")
  ) {
    throw new TuneError(
      `backend "${backend.name}": env() must return { NAME: "value" } strings, got ${
        JSON.stringify(env)
      }`,
    );
  }
  return env as Record<string, string>;
}

/**
 * The backend's environment for a trial a cluster places: the cluster picks the devices (and
 * sets `CUDA_VISIBLE_DEVICES` itself), so the backend sees placeholders numbered from 0.
 */
function clusterEnv(backend: Backend | undefined, gpu: number): Record<string, string> {
  if (!backend) return {};
  const devices = Array.from(
    { length: Math.ceil(gpu) },
    (_, index) => ({ index, name: "a GPU the cluster gives" }),
  );
  const { CUDA_VISIBLE_DEVICES: _, ...env } = backendEnv(backend, devices);
  return env;
}

/** Two sandbox policies as one: lists joined, duplicates dropped. */
function joinPolicies(a: SandboxPolicy, b: SandboxPolicy): SandboxPolicy {
  const out: Record<string, string[]> = {};
  for (const k of ["read", "write", "net", "env", "sys", "ffi", "unstable"] as const) {
    const list = [...new Set([...(a[k] ?? []), ...(b[k] ?? [])])];
    if (list.length) out[k] = list;
  }
  return out;
}

/**
 * The gate of a cluster executor: the cluster decides where trials run; this counts them (at most
 * `limit`) and sums what they hold against the experiment's total (`cpus` and `gpus`, or `limit` trials of
 * `req`), so that a trial given more resources leaves room for fewer others.
 */
function clusterGate(
  limit: number,
  req: TrialResources,
  given: { readonly cpu?: number; readonly gpu?: number },
  backend: Backend | undefined,
): Gate {
  const max = Math.max(1, Math.floor(limit));
  // Counted in 1/10000 units, as the pool does, so that sums of fractions compare exactly.
  const u = (x: number) => Math.round(x * 10_000);
  const total = { cpu: given.cpu ?? max * req.cpu, gpu: given.gpu ?? max * req.gpu };
  const held = new Map<string, TrialResources>();
  let cpu = 0, gpu = 0;
  const fits = (r: TrialResources) =>
    held.size < max && u(cpu) + u(r.cpu) <= u(total.cpu) && u(gpu) + u(r.gpu) <= u(total.gpu);
  const gate: ResourceGate = {
    canStart: (r = req) => fits(r),
    acquire(id, r = req) {
      held.set(id, r);
      cpu += r.cpu;
      gpu += r.gpu;
      return clusterEnv(backend, r.gpu);
    },
    release(id) {
      const r = held.get(id);
      if (!r) return;
      held.delete(id);
      cpu -= r.cpu;
      gpu -= r.gpu;
    },
    check(r) {
      if (u(r.cpu) > u(total.cpu) || u(r.gpu) > u(total.gpu)) {
        throw new RangeError(
          `a trial asks for cpu=${r.cpu}, gpu=${r.gpu} but the experiment has cpu=${total.cpu}, ` +
            `gpu=${total.gpu} on the cluster (the "cpus" and "gpus" options, or maxConcurrent/capacity ` +
            `times resources)`,
        );
      }
    },
  };
  return { gate, total };
}

/**
 * The objectives of the options as two lists of the same length (one entry for one metric).
 * Throws on a bad metric or mode, or lists that do not match.
 */
function objectivesOf(
  o: Pick<TunerOptions<Space>, "metric" | "mode">,
): { metrics: readonly string[]; modes: readonly Mode[] } {
  const m = o.metric, d = o.mode;
  const example = `e.g. metric: ["val_loss", "latency_ms"], mode: ["min", "min"]`;
  if (typeof m === "string") {
    if (!m) fail("metric", `"metric" is an empty string: name a reported metric, e.g. "val_loss"`);
    if (Array.isArray(d)) {
      fail(
        "mode",
        `"mode" is a list (${
          JSON.stringify(d)
        }) but "metric" is one name: give a list of metrics too, ${example}`,
      );
    }
    if (d !== "min" && d !== "max") {
      fail("mode", `"mode" must be "min" or "max", got ${JSON.stringify(d)}`);
    }
    return { metrics: [m], modes: [d] };
  }
  if (!Array.isArray(m)) {
    fail(
      "metric",
      `"metric" must name a reported metric, e.g. "val_loss", or list several, got ${
        JSON.stringify(m)
      }`,
    );
  }
  if (!m.length) fail("metric", `"metric" is an empty list: name at least one reported metric`);
  for (const [i, x] of m.entries()) {
    if (typeof x !== "string" || !x) {
      fail("metric", `"metric" entry ${i + 1} must be a metric name, got ${JSON.stringify(x)}`);
    }
    if (m.indexOf(x) !== i) fail("metric", `"metric" lists "${x}" twice`);
  }
  if (!Array.isArray(d)) {
    fail(
      "mode",
      `"metric" lists ${m.length} metrics, so "mode" must list ${m.length} modes (one per metric, ` +
        `in order), got ${JSON.stringify(d)}; ${example}`,
    );
  }
  if (d.length !== m.length) {
    fail(
      "mode",
      `"metric" lists ${m.length} metrics but "mode" lists ${d.length} modes: give one mode per metric, in order`,
    );
  }
  for (const [i, x] of d.entries()) {
    if (x !== "min" && x !== "max") {
      fail(
        "mode",
        `"mode" entry ${i + 1} (for ${m[i]}) must be "min" or "max", got ${JSON.stringify(x)}`,
      );
    }
  }
  return { metrics: m as readonly string[], modes: d as readonly Mode[] };
}

// `key` (dotted for nested options) lets the YAML loader point at the line of that key.
function fail(
  key: string,
  message: string,
  Kind: typeof OptionError | typeof OptionRangeError = OptionError,
): never {
  throw new Kind("Tuner", key, `Tuner: ${message}`);
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v > 0;
}

function validateOptions(o: TunerOptions<Space>): void {
  if (typeof o !== "object" || o === null) fail("", `expected an options object, got ${String(o)}`);
  for (const k of Object.keys(o)) {
    if (!OPTION_KEYS.includes(k)) fail(k, `unknown option "${k}"${suggest(k, OPTION_KEYS)}`);
  }
  const t = o.trainable;
  if (!(typeof t === "function" || typeof t === "string" || t instanceof URL)) {
    fail(
      "trainable",
      `"trainable" must be a module URL or path, or a function (config, session) => ..., got ${
        t === undefined ? "nothing" : typeof t
      }`,
    );
  }
  if (typeof t === "string" && !t) fail("trainable", `"trainable" is an empty string`);
  if (o.space === undefined) {
    fail("space", `"space" is missing: give the search space, e.g. { lr: loguniform(1e-4, 1e-1) }`);
  }
  validateSpace(o.space);
  const { metrics } = objectivesOf(o);
  if (metrics.length > 1) {
    const list = metrics.map((m) => JSON.stringify(m)).join(", ");
    if (o.searcher !== undefined && o.searcher.multiObjective !== true) {
      fail(
        "searcher",
        `"searcher": ${o.searcher.name} optimises one metric, but "metric" lists ${metrics.length} (${list}): ` +
          `use tpeSearcher (MOTPE), nsga2Searcher or randomSearcher, or give one metric`,
      );
    }
    if (o.scheduler !== undefined && o.scheduler.multiObjective !== true) {
      fail(
        "scheduler",
        `"scheduler": ${o.scheduler.name} decides by one metric, but "metric" lists ${metrics.length} (${list}): ` +
          `use fifoScheduler (the default) for a multi-objective experiment, or give one metric`,
      );
    }
  }
  if (o.numSamples !== undefined && !(o.numSamples === -1 || isPositiveInt(o.numSamples))) {
    fail(
      "numSamples",
      `"numSamples" must be a positive integer or -1 (unlimited), got ${o.numSamples}`,
      OptionRangeError,
    );
  }
  if (o.numSamples === -1 && o.timeBudgetMs === undefined && !o.searcher) {
    fail(
      "numSamples",
      `"numSamples: -1" runs forever with the random searcher: set "timeBudgetMs" too`,
      OptionRangeError,
    );
  }
  if (
    o.cpus !== undefined &&
    (typeof o.cpus !== "number" || !Number.isFinite(o.cpus) || o.cpus <= 0)
  ) {
    fail("cpus", `"cpus" must be a number of CPUs > 0, got ${String(o.cpus)}`, OptionRangeError);
  }
  if (o.maxConcurrent !== undefined && !isPositiveInt(o.maxConcurrent)) {
    fail(
      "maxConcurrent",
      `"maxConcurrent" must be a positive integer, got ${o.maxConcurrent}`,
      OptionRangeError,
    );
  }
  if (o.resources !== undefined) {
    for (const [k, v] of Object.entries(o.resources)) {
      if (k === "custom") {
        for (const [name, n] of Object.entries(v ?? {})) {
          if (typeof n !== "number" || !(n >= 0) || !Number.isFinite(n)) {
            fail(
              `resources.custom.${name}`,
              `"resources.custom.${name}" must be a number >= 0, got ${n}`,
              OptionRangeError,
            );
          }
        }
        continue;
      }
      if (k === "workers") {
        if (!isPositiveInt(v)) {
          fail(
            "resources.workers",
            `"resources.workers" must be a whole number of workers per trial >= 1, got ${
              JSON.stringify(v)
            }`,
            OptionRangeError,
          );
        }
        continue;
      }
      if (k !== "cpu" && k !== "gpu" && k !== "memoryMb") {
        fail(
          `resources.${k}`,
          `unknown resource "${k}"${
            suggest(k, ["workers", "cpu", "gpu", "memoryMb", "custom"])
          }; use { workers, cpu, gpu, memoryMb, custom }`,
        );
      }
      if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v)) {
        fail(
          `resources.${k}`,
          `"resources.${k}" must be a number >= 0, got ${v}`,
          OptionRangeError,
        );
      }
    }
    if ((o.resources.cpu ?? 1) === 0 && (o.resources.gpu ?? 0) === 0) {
      fail("resources", `"resources" asks for nothing: give cpu or gpu > 0`, OptionRangeError);
    }
  }
  for (const k of ["timeBudgetMs", "trialTimeoutMs", "callbackDrainMs"] as const) {
    const v = o[k];
    if (v !== undefined && !(typeof v === "number" && v > 0)) {
      fail(k, `"${k}" must be a number of milliseconds > 0, got ${v}`, OptionRangeError);
    }
  }
  if (o.trialFolders !== undefined && o.trialFolders !== "lazy" && o.trialFolders !== "end") {
    fail(
      "trialFolders",
      `"trialFolders" must be "lazy" or "end", got ${JSON.stringify(o.trialFolders)}`,
    );
  }
  if (o.maxFailures !== undefined && !(Number.isInteger(o.maxFailures) && o.maxFailures >= -1)) {
    fail(
      "maxFailures",
      `"maxFailures" must be an integer >= 0, or -1 for unlimited retries, got ${o.maxFailures}`,
      OptionRangeError,
    );
  }
  if (o.stop !== undefined && typeof o.stop !== "function") {
    if (typeof o.stop !== "object" || o.stop === null || Array.isArray(o.stop)) {
      fail("stop", `"stop" must be an object like { training_iteration: 10 } or a function`);
    }
    for (const [k, v] of Object.entries(o.stop)) {
      if (typeof v !== "number" || Number.isNaN(v)) {
        fail(
          `stop.${k}`,
          `"stop.${k}" must be a number (stop when the result reaches it), got ${
            JSON.stringify(v)
          }`,
        );
      }
    }
  }
  if (o.checkpoint !== undefined) {
    const c = o.checkpoint;
    for (const k of Object.keys(c)) {
      const keys = ["numToKeep", "scoreAttribute", "scoreOrder"];
      if (!keys.includes(k)) {
        fail(`checkpoint.${k}`, `unknown checkpoint option "${k}"${suggest(k, keys)}`);
      }
    }
    if (c.numToKeep !== undefined && !isPositiveInt(c.numToKeep)) {
      fail(
        "checkpoint.numToKeep",
        `"checkpoint.numToKeep" must be a positive integer, got ${c.numToKeep}`,
        OptionRangeError,
      );
    }
    if (c.scoreOrder !== undefined && c.scoreOrder !== "min" && c.scoreOrder !== "max") {
      fail(
        "checkpoint.scoreOrder",
        `"checkpoint.scoreOrder" must be "min" or "max", got ${JSON.stringify(c.scoreOrder)}`,
      );
    }
  }
  if (o.sandbox !== undefined) {
    const keys = ["read", "write", "net", "env", "sys", "ffi", "unstable"];
    for (const [k, v] of Object.entries(o.sandbox)) {
      if (!keys.includes(k)) fail(`sandbox.${k}`, `unknown sandbox key "${k}"${suggest(k, keys)}`);
      if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
        fail(`sandbox.${k}`, `"sandbox.${k}" must be a list of strings`);
      }
    }
  }
  if (o.backend !== undefined) {
    const b = o.backend as unknown as Record<string, unknown> | null;
    if (
      typeof b !== "object" || b === null || typeof b.name !== "string" ||
      typeof b.permissions !== "function" || typeof b.env !== "function"
    ) {
      fail(
        "backend",
        `"backend" must be an object with a name, permissions() and env(devices), such as ` +
          `tfjsBackend({ native: true }) of "@tunebox/tunebox/backends/tfjs"`,
      );
    }
  }
  if (o.scheduler !== undefined) {
    const p = checkPluginShape("scheduler", o.scheduler);
    if (p) fail("scheduler", `"scheduler": ${p}`);
  }
  if (o.searcher !== undefined) {
    const p = checkPluginShape("searcher", o.searcher);
    if (p) fail("searcher", `"searcher": ${p}`);
  }
  for (const [i, cb] of (o.callbacks ?? []).entries()) {
    const p = checkPluginShape("callback", cb);
    if (p) fail("callbacks", `"callbacks[${i}]": ${p}`);
  }
  if (o.seed !== undefined && !(typeof o.seed === "number" && Number.isFinite(o.seed))) {
    fail("seed", `"seed" must be a number, got ${o.seed}`);
  }
  if (o.name !== undefined && (typeof o.name !== "string" || !/^[\w.-]+$/.test(o.name))) {
    fail(
      "name",
      `"name" must be a folder name of letters, digits, "_", "-" and ".", got ${
        JSON.stringify(o.name)
      }`,
    );
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
