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

export type {
  Callback,
  CheckpointEvent,
  ExperimentEnd,
  ExperimentStart,
  TrialEnd,
  TrialOutcome,
  TrialReport,
  TrialStart,
} from "./callback.ts";
export type {
  Ack,
  Backend,
  Executor,
  RawReport,
  Resources,
  SandboxPolicy,
  TrialExit,
  TrialHandle,
  TrialJob,
  TrialListener,
  WarmJob,
} from "./executor.ts";
export {
  lookupPlugin,
  type PluginFactory,
  pluginNames,
  type PluginRole,
  recordSpec,
  registerPlugin,
} from "./plugin_registry.ts";
export {
  checkPluginShape,
  requireSingleObjective,
  resourcesProblem,
  validateDecision,
} from "./plugin_checks.ts";

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
