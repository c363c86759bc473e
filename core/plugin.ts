/**
 * The plugin contracts: Searcher, Scheduler, Callback, Executor; and the name registry the YAML
 * experiment file uses (`scheduler: { name: asha }` -> `ashaScheduler`).
 *
 * Plugins are plain objects made by factories. They see read-only trial snapshots, never the
 * runner, and return data: a searcher returns a config, `"wait"` or `"done"`; a scheduler returns
 * a {@linkcode Decision}.
 *
 * @module
 */

import type {
  Config,
  JsonValue,
  Mode,
  TrialResources,
  TrialResult,
  TrialSnapshot,
  TrialStatus,
} from "./trial.ts";
import { resolve } from "./_path.ts";
import type { Space } from "./space.ts";
import type { Device } from "./resources.ts";

/** What every searcher is told once, before the first `suggest`. */
export interface SearcherContext {
  /** The search space. */
  readonly space: Space;
  /** The experiment's metric. */
  readonly metric: string;
  /** Whether the metric is minimised or maximised. */
  readonly mode: Mode;
  /** The experiment seed: a searcher with the same seed suggests the same configs. */
  readonly seed: number;
  /** `numSamples` of the experiment (-1: unlimited). The runner caps the number of trials. */
  readonly numSamples: number;
  /**
   * Every objective of a multi-objective experiment (`metric` is the first); absent when there
   * is one. Only a searcher that says `multiObjective: true` is given several.
   */
  readonly metrics?: readonly string[];
  /** The mode of each of `metrics`, in order. */
  readonly modes?: readonly Mode[];
}

/**
 * Proposes configs. The runner calls `suggest` while resources are free and stops asking after
 * `numSamples × gridSize(space)` trials; a searcher may say `"done"` earlier (an exhausted grid)
 * or `"wait"` (e.g. a concurrency limit, or waiting for results).
 */
export interface Searcher {
  /** A short name, shown in logs and errors. */
  readonly name: string;
  /**
   * True when it handles several objectives (`metric: ["a", "b"]`): it reads
   * `SearcherContext.metrics` and proposes configs for the Pareto front. A multi-objective
   * experiment refuses a searcher without it. @default false
   */
  readonly multiObjective?: boolean;
  /** Called once before the first suggestion. */
  setup?(ctx: SearcherContext): void;
  /** A config for a new trial, `"wait"` to be asked again after the next event, or `"done"`. */
  suggest(trialId: string): Config | "wait" | "done";
  /** An intermediate result of a trial. */
  onReport?(trialId: string, result: TrialResult): void;
  /**
   * A trial ended. `final` is its last result (undefined if it never reported); `error` is true
   * when it failed. `stopped` is true when a scheduler stopped it early (pruned).
   */
  onComplete?(
    trialId: string,
    final: TrialResult | undefined,
    info?: { readonly error?: boolean; readonly stopped?: boolean },
  ): void;
  /** JSON state for resume. */
  snapshot?(): JsonValue;
  /** Restores {@linkcode Searcher.snapshot}'s state. */
  restore?(state: JsonValue): void;
}

/** What every scheduler is told once, before the first trial. */
export interface SchedulerContext {
  /** The experiment's metric. */
  readonly metric: string;
  /** Whether the metric is minimised or maximised. */
  readonly mode: Mode;
  /** The experiment seed, for schedulers that draw random numbers (PBT). */
  readonly seed: number;
  /**
   * Every objective of a multi-objective experiment (`metric` is the first); absent when there
   * is one. Only a scheduler that says `multiObjective: true` is given several.
   */
  readonly metrics?: readonly string[];
  /** The mode of each of `metrics`, in order. */
  readonly modes?: readonly Mode[];
  /**
   * What the experiment may hand out: `total`, the CPUs and GPUs all trials share (the Tuner's
   * `cpus` and `gpus`, by default this machine's, or what a cluster executor holds), and `trial`,
   * what each trial asks for (`resources`, the base a resource-changing scheduler starts from).
   * The runner always gives it; a scheduler tested on its own may not get it.
   */
  readonly resources?: {
    readonly total: TrialResources;
    readonly trial: TrialResources & { readonly workers?: number };
  };
}

/**
 * What a scheduler decides for a trial that just reported. `reallocate` (a resource-changing
 * scheduler) pauses the trial at the checkpoint of this report and restarts it from there with
 * new CPUs and GPUs (per worker); a report without a checkpoint is not reallocated (the trial
 * continues, with a warning).
 */
export type Decision =
  | { readonly kind: "continue" }
  | {
    readonly kind: "stop";
    readonly reason: string;
    /** The trial used its whole budget (e.g. reached `maxT`): it ends as completed, not pruned. */
    readonly completed?: boolean;
  }
  | { readonly kind: "pause" }
  | { readonly kind: "exploit"; readonly from: string; readonly config: Config }
  | { readonly kind: "reallocate"; readonly resources: TrialResources };

/** A scheduler's wish to end a trial that is not the one reporting (e.g. a paused loser). */
export interface StopRequest {
  /** The trial to end. */
  readonly trialId: string;
  /** Why, shown to the user and recorded. */
  readonly reason: string;
}

/** A paused trial that must take over another trial's checkpoint and a new config (synchronous PBT). */
export interface ExploitRequest {
  /** The trial to change (paused). */
  readonly trialId: string;
  /** The donor whose latest checkpoint is copied into it. */
  readonly from: string;
  /** The trial's new config. */
  readonly config: Config;
}

/**
 * Decides, at every report, whether a trial continues, stops, pauses or exploits another
 * (PBT), and which pending or paused trial runs next.
 */
export interface Scheduler {
  /** A short name, shown in logs and errors. */
  readonly name: string;
  /**
   * True when its decisions do not rank trials by one metric (FIFO), or it handles several
   * objectives: only such a scheduler runs a multi-objective experiment. @default false
   */
  readonly multiObjective?: boolean;
  /** Called once before the first trial. */
  setup?(ctx: SchedulerContext): void;
  /** A trial was created (status pending). */
  onTrialAdd?(trial: TrialSnapshot): void;
  /** The decision for a trial that just reported `result`. */
  onReport(trial: TrialSnapshot, result: TrialResult): Decision;
  /** A trial ended (finished, stopped or failed); `result` is its last result. */
  onComplete?(trial: TrialSnapshot, result?: TrialResult): void;
  /**
   * Which of the runnable trials (pending or paused) to start next, or undefined to start none
   * now. When absent, the runner resumes paused trials first, then pending ones in order.
   */
  chooseNext?(runnable: readonly TrialSnapshot[]): string | undefined;
  /** Trials other than the reporting one that should end now; called after each hook. */
  takeStops?(): readonly StopRequest[];
  /** Paused trials that must clone another trial before they resume; called after each hook. */
  takeExploits?(): readonly ExploitRequest[];
  /**
   * How many trials the runner keeps created ahead as pending, even with no free slot (PBT
   * wants its whole population to exist). @default 1
   */
  readonly pendingTrials?: number;
  /** JSON state for resume. */
  snapshot?(): JsonValue;
  /** Restores {@linkcode Scheduler.snapshot}'s state. */
  restore?(state: JsonValue): void;
}

/** Sent to callbacks when the experiment starts (or resumes). */
export interface ExperimentStart {
  /** Experiment name. */
  readonly name: string;
  /** The experiment folder. */
  readonly dir: string;
  /** The search space. */
  readonly space: Space;
  /** The metric and its mode. */
  readonly metric: string;
  /** Whether the metric is minimised or maximised. */
  readonly mode: Mode;
  /** Every objective of a multi-objective experiment (`metric` is the first); absent for one. */
  readonly metrics?: readonly string[];
  /** The mode of each of `metrics`, in order. */
  readonly modes?: readonly Mode[];
  /** Names of the searcher and scheduler. */
  readonly searcher: string;
  /** Name of the scheduler. */
  readonly scheduler: string;
  /** True when resuming an interrupted experiment. */
  readonly resumed: boolean;
}

/** Sent when a trial (re)starts. */
export interface TrialStart {
  /** The trial as it starts. */
  readonly trial: TrialSnapshot;
  /** True when it resumes (retry, unpause, exploit, experiment resume). */
  readonly resumed: boolean;
}

/** Sent after every report is recorded. */
export interface TrialReport {
  /** The trial after the report. */
  readonly trial: TrialSnapshot;
  /** The recorded result. */
  readonly result: TrialResult;
  /** The scheduler's decision. */
  readonly decision: Decision;
}

/** Sent when a checkpoint is committed. */
export interface CheckpointEvent {
  /** The trial. */
  readonly trial: TrialSnapshot;
  /** The committed folder. */
  readonly path: string;
  /** The iteration it belongs to. */
  readonly iteration: number;
}

/** How a trial ended. */
export type TrialOutcome = "completed" | "stopped" | "error" | "paused";

/** Sent when a trial process ends (finished, stopped, failed, or paused). */
export interface TrialEnd {
  /** The trial after it ended. */
  readonly trial: TrialSnapshot;
  /** Why it ended. */
  readonly outcome: TrialOutcome;
  /** The scheduler's reason when stopped, or the error message. */
  readonly reason?: string;
}

/** Sent when the experiment ends. */
export interface ExperimentEnd {
  /** Every trial. */
  readonly trials: readonly TrialSnapshot[];
  /** Whether the experiment was interrupted (signal, time budget). */
  readonly interrupted: boolean;
}

/**
 * Observes the experiment: loggers and reporters. A callback that throws or is slow never
 * stalls the runner: its failure is reported with its name and the experiment goes on.
 */
export interface Callback {
  /** A short name, shown when it fails. */
  readonly name: string;
  /** The experiment starts or resumes. */
  onExperimentStart?(e: ExperimentStart): void | Promise<void>;
  /** A trial (re)starts. */
  onTrialStart?(e: TrialStart): void | Promise<void>;
  /** A trial reported. */
  onReport?(e: TrialReport): void | Promise<void>;
  /** A checkpoint was committed. */
  onCheckpoint?(e: CheckpointEvent): void | Promise<void>;
  /** A trial process ended. */
  onTrialEnd?(e: TrialEnd): void | Promise<void>;
  /** The experiment ended; flush and close here. */
  onExperimentEnd?(e: ExperimentEnd): void | Promise<void>;
}

/** Extra permissions a trial needs, merged into its sandbox. */
export interface SandboxPolicy {
  /** Paths the trial may read (besides its own folder, the trainable and the module cache). */
  readonly read?: readonly string[];
  /** Paths the trial may write (besides its own folder). */
  readonly write?: readonly string[];
  /** Hosts (`host[:port]`) the trial may connect to. */
  readonly net?: readonly string[];
  /** Environment variables the trial may read (their values are passed through). */
  readonly env?: readonly string[];
  /** Deno `--allow-sys` APIs (`cpus`, `hostname`, ...). */
  readonly sys?: readonly string[];
  /** Paths for `--allow-ffi` (native backends only). */
  readonly ffi?: readonly string[];
  /**
   * Unstable Deno features trials may use (`kv`, `raw-imports`, ...): passed as
   * `--unstable-<name>`; a trainable's deno.json may turn on only these. @default none
   */
  readonly unstable?: readonly string[];
}

/**
 * What the driver knows of a training backend (DESIGN §5): the permissions its trials need and
 * the environment that pins a trial to its devices (and, for a native library, e.g. its
 * `LD_LIBRARY_PATH`). Give one as the Tuner's `backend`: its permissions join the sandbox and its
 * environment is set for every trial. `tfjsBackend()` of `./backends/tfjs` is one.
 *
 * @example
 * ```ts
 * import type { Backend } from "./plugin.ts";
 * const backend: Backend = {
 *   name: "mylib",
 *   permissions: () => ({ env: ["MYLIB_*"] }),
 *   env: (devices) => ({ MYLIB_DEVICES: devices.map((d) => d.index).join(",") }),
 * };
 * ```
 */
export interface Backend {
  /** The backend's name. */
  readonly name: string;
  /** What a trial's sandbox must allow for the backend to load. */
  permissions(): SandboxPolicy;
  /**
   * The environment for a trial given the GPUs it holds (empty for a CPU-only trial; on a
   * cluster, placeholders numbered from 0, as the cluster numbers the devices it gives).
   */
  env(devices: readonly Device[]): Record<string, string>;
}

/** The resources a trial asks for. */
export interface Resources {
  /** CPUs (may be fractional). @default 1 */
  readonly cpu?: number;
  /** GPUs (may be fractional, e.g. 0.5 to share). @default 0 */
  readonly gpu?: number;
  /**
   * Memory cap of a sandboxed trial in MiB: V8's heap limit, plus an OS limit on the process's
   * data segment where `prlimit` exists. A trial over it dies and fails. @default no cap
   */
  readonly memoryMb?: number;
  /**
   * Custom resources by name (e.g. `{ node2: 1 }`), for executors that place trials on a
   * cluster (Ray's `entrypoint_resources`); local executors ignore them. @default none
   */
  readonly custom?: Readonly<Record<string, number>>;
  /**
   * Workers per trial (data-parallel training, Ray Train's `ScalingConfig(num_workers)`): each
   * trial runs this many sandboxed processes, with `session.rank`, `session.worldSize` and the
   * collectives (`session.allreduce`, ...); `cpu` and `gpu` are per worker. Needs an executor
   * that runs several workers per trial ({@linkcode Executor.multiWorker}). @default 1
   */
  readonly workers?: number;
}

/** Everything an executor needs to run one trial. */
export interface TrialJob {
  /** Trial id. */
  readonly trialId: string;
  /** The trial's config. */
  readonly config: Config;
  /**
   * The trial's record folder (exists): `params.json`, `result.jsonl`, `progress.csv`, logs and
   * committed checkpoints, written by the driver only. A sandboxed trial may read it, not write.
   */
  readonly dir: string;
  /**
   * The trial's own folder (exists, inside `dir`): the one place a sandboxed trial may write
   * (its files and checkpoint staging). `session.trialDir` and the trial's working directory.
   */
  readonly workDir: string;
  /** The iteration to continue from (0 for a fresh trial). */
  readonly iteration: number;
  /** Committed checkpoint to restore from. */
  readonly checkpoint?: string;
  /** Seconds already spent in earlier runs of this trial (for `time_total_s`). */
  readonly timeOffsetS: number;
  /** Extra permissions. */
  readonly sandbox: SandboxPolicy;
  /** Environment variables set for the trial (e.g. `CUDA_VISIBLE_DEVICES`). */
  readonly env: Readonly<Record<string, string>>;
  /** The trial's memory cap in MiB (`resources.memoryMb`), if any. */
  readonly memoryMb?: number;
  /**
   * What this trial holds: the experiment's `resources`, with the `cpu` and `gpu` a
   * resource-changing scheduler gave it. A cluster executor requests it; the trial sees its
   * `cpu` and `gpu` as `session.resources`.
   */
  readonly resources?: Resources;
}

/** What an executor knows of a trial before it starts: enough for its process and sandbox. */
export type WarmJob = Pick<
  TrialJob,
  "trialId" | "dir" | "workDir" | "sandbox" | "env" | "memoryMb" | "resources"
>;

/** A report as it arrives from a trial, before the driver fills in the automatic keys. */
export interface RawReport {
  /** The user's metrics. */
  readonly metrics: Readonly<Record<string, JsonValue>>;
  /** A staging folder holding a checkpoint written with this report, if any. */
  readonly checkpointDir?: string;
  /** Seconds since this run of the trial started, measured by the trial. */
  readonly elapsedS?: number;
}

/** The driver's answer to a report. */
export type Ack = "continue" | "stop";

/** How a trial process ended. */
export type TrialExit =
  | { readonly kind: "done" }
  | { readonly kind: "stopped" }
  | {
    readonly kind: "error";
    readonly message: string;
    readonly stack?: string;
    /** Set when Deno refused a permission: the trial broke its sandbox. */
    readonly violation?: { readonly permission: string; readonly target: string };
    /** Set when the trainable itself is unusable (no default export): retrying cannot help. */
    readonly fatal?: boolean;
  };

/** What the runner gives an executor to talk back. */
export interface TrialListener {
  /** A report came in; the returned promise resolves with the ack sent back to the trial. */
  report(report: RawReport): Promise<Ack>;
  /** Where the trial runs, once a cluster executor knows (a node name; shown in the live table). */
  placed?(node: string): void;
  /**
   * A lazy executor's trial is about to use its folder (`session.trialDir`): the runner writes
   * the trial's folder and records now, and from then on writes its reports there too.
   */
  needsDir?(): void;
}

/** A running trial. */
export interface TrialHandle {
  /** Resolves once the trial has ended, however it ended. */
  readonly exited: Promise<TrialExit>;
  /**
   * Ask the trial to end; after `graceMs` it is sent SIGTERM, then SIGKILL, whatever it does
   * (a process executor must end it). Calling it again with a shorter grace speeds this up.
   */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Runs trials: in a sandboxed subprocess, in-process, or on a cluster. The runner never looks
 * at which: it hands over a {@linkcode TrialJob} and gets reports through the
 * {@linkcode TrialListener}. A process executor owns the transport to its trials and speaks the
 * protocol through `core/channel.ts` (`TrialChannelServer` to authenticate a per-trial
 * connection, `driveTrial` to run it); it must enforce `stop` with signals.
 */
export interface Executor {
  /** A short name. */
  readonly name: string;
  /**
   * Called once before the first trial: warm caches, check the trainable, open channels.
   * `sandbox` is the experiment's policy (every job carries it too).
   */
  prepare?(
    ctx: { readonly experimentDir: string; readonly sandbox?: SandboxPolicy },
  ): Promise<void>;
  /**
   * How many trials this executor can run at once with these per-trial resources, when it
   * places trials itself (a cluster). The runner then limits concurrency by this (or
   * `maxConcurrent`) instead of this machine's CPUs and GPUs. @default local resources
   */
  capacity?(resources: Resources): number;
  /**
   * True when a trial needs no folder to start (it runs in the driver's process and calls
   * {@linkcode TrialListener.needsDir} before it uses `workDir`). The runner then records its
   * reports in the experiment's journal only, and writes the trial's own folder and records
   * (`params.json`, `result.jsonl`, `progress.csv`) only when it needs them: a checkpoint, an
   * exploit, `needsDir`, an error, or `trialFolders: "end"`. @default false
   */
  readonly lazyTrialDir?: boolean;
  /**
   * Starts the process of a trial the runner expects to start soon, ahead of time (a warm
   * start; the runner asks for the next two): the runner has made its folder, and the process
   * gets that trial's permissions and waits for its assignment. `start` with that trial id (and
   * the same `env`) then hands the trial to it; a warmed process is never used for another trial.
   */
  warm?(next: WarmJob): void;
  /** Kills the warmed process of `trialId` if `start` never took it. */
  unwarm?(trialId: string): void;
  /**
   * Whether it runs trials of several workers (`resources.workers > 1`); an experiment that
   * asks for workers on an executor without it is refused before any trial starts.
   * @default false
   */
  readonly multiWorker?: boolean;
  /** Starts a trial. */
  start(job: TrialJob, listener: TrialListener): TrialHandle;
  /** Releases pooled resources. */
  close?(): Promise<void>;
}

/**
 * The roles a plugin can play, for the YAML registry. A `"stopper"` is a stop function for the
 * experiment's `stop` (see `Stopper`), not an object.
 */
export type PluginRole = "searcher" | "scheduler" | "callback" | "stopper";

/** The factory type a registry entry or a plugin module's default export has. */
export type PluginFactory<T> = (options: Record<string, unknown>) => T;

const registry: Record<PluginRole, Map<string, PluginFactory<unknown>>> = {
  searcher: new Map(),
  scheduler: new Map(),
  callback: new Map(),
  stopper: new Map(),
};

/**
 * Registers a plugin factory under a name for YAML files (`scheduler: { name: asha }`). YAML
 * options arrive with snake_case keys converted to camelCase.
 *
 * @example
 * ```ts
 * import { registerPlugin } from "./plugin.ts";
 * registerPlugin("scheduler", "my_fifo", () => ({ name: "my_fifo", onReport: () => ({ kind: "continue" }) }));
 * ```
 */
export function registerPlugin<T>(role: PluginRole, name: string, factory: PluginFactory<T>): void {
  registry[role].set(name, factory as PluginFactory<unknown>);
}

/**
 * Records how a built-in plugin was made — its registered name and its options — as a hidden
 * `spec` property, so that `Tuner.restore` can make it again by name, whether it was built from
 * YAML or in code. Options that are not plain JSON (functions, domains) are not recorded: such a
 * plugin must be given again to `Tuner.restore`.
 *
 * @param name The name the plugin's factory is registered under (`"asha"`, `"tpe"`).
 * @param options The options the factory was given.
 * @param plugin The plugin.
 * @returns `plugin`, with `spec` set when the options are plain JSON.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { recordSpec } from "./plugin.ts";
 *
 * const s = recordSpec("my_fifo", { patience: 3 }, { name: "my_fifo" });
 * assert.deepEqual((s as { spec?: unknown }).spec, { name: "my_fifo", options: { patience: 3 } });
 * assert.deepEqual(Object.keys(s), ["name"]);
 * ```
 */
export function recordSpec<T extends object>(name: string, options: unknown, plugin: T): T {
  const o = options ?? {};
  if (isPlainJson(o, 0) && typeof o === "object" && !Array.isArray(o)) {
    Object.defineProperty(plugin, "spec", {
      value: { name, options: structuredClone(o) },
      enumerable: false,
      configurable: true,
    });
  }
  return plugin;
}

/**
 * The factory registered under a name, or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lookupPlugin } from "./plugin.ts";
 * assert.equal(lookupPlugin("scheduler", "nope"), undefined);
 * ```
 */
export function lookupPlugin(role: PluginRole, name: string): PluginFactory<unknown> | undefined {
  return registry[role].get(name);
}

/**
 * The names registered for a role.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pluginNames, registerPlugin } from "./plugin.ts";
 * registerPlugin("scheduler", "my_fifo", () => ({ name: "my_fifo", onReport: () => ({ kind: "continue" }) }));
 * assert.ok(pluginNames("scheduler").includes("my_fifo"));
 * ```
 */
export function pluginNames(role: PluginRole): string[] {
  return [...registry[role].keys()].sort();
}

/**
 * Checks that a value has the shape of a plugin of `role`; returns a problem description or
 * undefined when it fits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkPluginShape } from "./plugin.ts";
 * assert.match(checkPluginShape("searcher", { name: "x" })!, /suggest/);
 * assert.equal(checkPluginShape("searcher", { name: "x", suggest: () => "done" }), undefined);
 * ```
 */
export function checkPluginShape(role: PluginRole, value: unknown): string | undefined {
  if (role === "stopper") {
    if (typeof value !== "function") {
      return `a stopper must be a function (trialId, result) => boolean, got ${
        value === null ? "null" : typeof value
      }`;
    }
    const stopAll = (value as { stopAll?: unknown }).stopAll;
    if (stopAll !== undefined && typeof stopAll !== "function") {
      return `a stopper's stopAll must be a function`;
    }
    return undefined;
  }
  if (typeof value !== "object" || value === null) {
    return `a ${role} must be an object, got ${String(value)}`;
  }
  const v = value as Record<string, unknown>;
  if (typeof v.name !== "string" || !v.name) return `a ${role} needs a string "name"`;
  const required = role === "searcher" ? ["suggest"] : role === "scheduler" ? ["onReport"] : [];
  for (const m of required) {
    if (typeof v[m] !== "function") return `${role} "${v.name}" has no ${m}() method`;
  }
  const hooks = role === "callback"
    ? [
      "onExperimentStart",
      "onTrialStart",
      "onReport",
      "onCheckpoint",
      "onTrialEnd",
      "onExperimentEnd",
    ]
    : role === "searcher"
    ? ["setup", "onReport", "onComplete", "snapshot", "restore"]
    : [
      "setup",
      "onTrialAdd",
      "onComplete",
      "chooseNext",
      "takeStops",
      "takeExploits",
      "snapshot",
      "restore",
    ];
  for (const h of hooks) {
    if (h in v && v[h] !== undefined && typeof v[h] !== "function") {
      return `${role} "${v.name}": ${h} must be a function`;
    }
  }
  if (v.multiObjective !== undefined && typeof v.multiObjective !== "boolean") {
    return `${role} "${v.name}": multiObjective must be true or false`;
  }
  return undefined;
}

/**
 * Checks a scheduler's {@linkcode Decision}: the one check the runner applies to every decision
 * and the scheduler contract suite (`@tunebox/tunebox/testing`) asserts. Returns a problem
 * description, or undefined when the decision is valid.
 *
 * @param d What `onReport` returned.
 * @param trials The ids of the experiment's trials, to check an exploit's donor; omit to skip.
 * @returns The problem, or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateDecision } from "./plugin.ts";
 *
 * assert.equal(validateDecision({ kind: "stop", reason: "below the median" }), undefined);
 * assert.match(validateDecision({ kind: "stop" })!, /needs a reason/);
 * assert.match(
 *   validateDecision({ kind: "exploit", from: "a_00009", config: {} }, new Set(["a_00000"]))!,
 *   /exploit from unknown trial "a_00009"/,
 * );
 * ```
 */
export function validateDecision(
  d: unknown,
  trials?: { has(id: string): boolean },
): string | undefined {
  const kinds = ["continue", "stop", "pause", "exploit", "reallocate"];
  const x = d as Record<string, unknown>;
  if (typeof d !== "object" || d === null || !kinds.includes(x.kind as string)) {
    let shown: string;
    try {
      shown = JSON.stringify(d) ?? String(d);
    } catch {
      shown = String(d);
    }
    return `it returned ${shown}, not a Decision ({ kind: "continue" | "stop" | "pause" | "exploit" | "reallocate" })`;
  }
  if (x.kind === "stop") {
    if (typeof x.reason !== "string" || !x.reason) {
      return `a stop decision needs a reason (a non-empty string), got ${JSON.stringify(x.reason)}`;
    }
    if (x.completed !== undefined && typeof x.completed !== "boolean") {
      return `a stop decision's "completed" must be true or false, got ${
        JSON.stringify(x.completed)
      }`;
    }
  }
  if (x.kind === "exploit") {
    if (typeof x.from !== "string") return "an exploit decision needs a donor id in `from`";
    if (trials && !trials.has(x.from)) return `exploit from unknown trial "${x.from}"`;
    const c = x.config;
    if (!c || typeof c !== "object" || Array.isArray(c)) {
      return "an exploit decision needs a config object";
    }
    if (!isPlainJson(c, 0)) return "an exploit config must be plain JSON";
  }
  if (x.kind === "reallocate") return resourcesProblem(x.resources, "a reallocate decision");
  return undefined;
}

/**
 * What is wrong with the CPUs and GPUs a trial is given (a `reallocate` decision, an allocation
 * function's answer), or undefined. The amounts must be finite and >= 0, not both 0, and GPUs
 * above 1 whole (a trial shares one device or takes whole devices); whether they fit the
 * experiment is the runner's check.
 *
 * @param r The resources, `{ cpu, gpu }`.
 * @param what What gave them, for the message.
 * @returns The problem, or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resourcesProblem } from "./plugin.ts";
 *
 * assert.equal(resourcesProblem({ cpu: 2, gpu: 0.5 }, "x"), undefined);
 * assert.match(resourcesProblem({ cpu: -1, gpu: 0 }, "x")!, /cpu must be a finite number >= 0/);
 * assert.match(resourcesProblem({ cpu: 1, gpu: 1.5 }, "x")!, /whole number/);
 * ```
 */
export function resourcesProblem(r: unknown, what: string): string | undefined {
  if (!r || typeof r !== "object" || Array.isArray(r)) {
    return `${what} needs resources: { cpu, gpu }, got ${JSON.stringify(r) ?? String(r)}`;
  }
  const o = r as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => k !== "cpu" && k !== "gpu");
  if (extra.length) {
    return `${what}: only cpu and gpu can be changed, not ${extra.map((k) => `"${k}"`).join(", ")}`;
  }
  for (const k of ["cpu", "gpu"] as const) {
    const v = o[k];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      return `${what}: ${k} must be a finite number >= 0, got ${
        typeof v === "string" ? JSON.stringify(v) : String(v)
      }`;
    }
  }
  const cpu = o.cpu as number, gpu = o.gpu as number;
  if (gpu > 1 && !Number.isInteger(gpu)) {
    return `${what}: gpu is ${gpu}, but GPUs above 1 must be a whole number (a trial shares one ` +
      `device or takes whole devices)`;
  }
  if (cpu === 0 && gpu === 0) return `${what} gives the trial no cpu and no gpu`;
  return undefined;
}

/** Whether `v` survives a JSON round trip unchanged (finite numbers, plain objects, no cycles). */
function isPlainJson(v: unknown, depth: number): boolean {
  if (depth > 64) return false;
  if (v === null || typeof v === "string" || typeof v === "boolean") return true;
  if (typeof v === "number") return Number.isFinite(v);
  if (Array.isArray(v)) return v.every((x) => isPlainJson(x, depth + 1));
  if (typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(v as object).every((x) => isPlainJson(x, depth + 1));
}

/**
 * Throws a clear error when a single-objective plugin is set up for a multi-objective
 * experiment (its context lists several `metrics`). Plugins call it first thing in `setup`.
 *
 * @param who the plugin's factory name, for the message.
 * @param ctx the setup context.
 * @throws {TypeError} naming the objectives and what to use instead.
 * @example
 * ```ts
 * import { requireSingleObjective } from "./plugin.ts";
 * requireSingleObjective("mySearcher", { metric: "loss" }); // fine: one objective
 * ```
 */
export function requireSingleObjective(
  who: string,
  ctx: { readonly metric: string; readonly metrics?: readonly string[] },
): void {
  if (!ctx.metrics || ctx.metrics.length <= 1) return;
  throw new TypeError(
    `${who} optimises one metric, but the experiment has ${ctx.metrics.length} objectives (${
      ctx.metrics.map((m) => JSON.stringify(m)).join(", ")
    }): use a multi-objective plugin (searchers: tpeSearcher, nsga2Searcher, randomSearcher; ` +
      `scheduler: fifoScheduler), or give the experiment one metric`,
  );
}

/** Re-exported so plugin authors import everything from one module. */
export type { Config, JsonValue, Mode, TrialResources, TrialResult, TrialSnapshot, TrialStatus };

/**
 * The module URL of a trainable or plugin given as a URL, a `file:`/`npm:`/`jsr:` specifier, or a
 * path relative to `baseFile` (YAML files) or to the working directory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveModule } from "./plugin.ts";
 * assert.equal(resolveModule("./train.ts", "/exp/experiment.yaml"), "file:///exp/train.ts");
 * ```
 */
export function resolveModule(path: string | URL, baseFile?: string): string {
  if (path instanceof URL) return path.href;
  if (/^(file|https?|npm|jsr|data):/.test(path)) return path;
  return new URL(path, baseFile ? `file://${resolve(baseFile)}` : `file://${Deno.cwd()}/`).href;
}
