/**
 * What the runner is given and what it returns: its config, the resource gate, stop
 * criteria, checkpoint options, the trials a restore hands it, and its outcome.
 *
 * @module
 */

import type {
  Callback,
  Executor,
  Resources,
  SandboxPolicy,
  Scheduler,
  Searcher,
} from "./plugin.ts";
import type { JsonValue, Mode, TrialResources, TrialResult, TrialSnapshot } from "./trial.ts";
import type { Space } from "./space.ts";
import type { DiskTrial, TrialEvent } from "./store.ts";

/**
 * Decides whether another trial may start, and gives it its devices' environment. A request is
 * what the whole trial holds (its workers together); without one, the experiment's `resources`.
 */
export interface ResourceGate {
  /** Whether one more trial (of `request`, or of the experiment's size) fits now. */
  canStart(request?: TrialResources): boolean;
  /** Takes the resources of one trial; returns the environment to set for it. */
  acquire(trialId: string, request?: TrialResources): Record<string, string>;
  /** Gives a trial's resources back. */
  release(trialId: string): void;
  /**
   * Throws a `RangeError` saying what exists when `request` could never fit, however many
   * trials end. @default no check
   */
  check?(request: TrialResources): void;
}

/**
 * A gate that lets at most `n` trials run at once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { concurrencyGate } from "./runner.ts";
 * const gate = concurrencyGate(2);
 * gate.acquire("a");
 * assert.equal(gate.canStart(), true);
 * gate.acquire("b");
 * assert.equal(gate.canStart(), false);
 * gate.release("a");
 * assert.equal(gate.canStart(), true);
 * ```
 */
export function concurrencyGate(n: number): ResourceGate {
  const held = new Set<string>();
  return {
    canStart: (_request?: TrialResources) => held.size < n,
    acquire(id) {
      held.add(id);
      return {};
    },
    release(id) {
      held.delete(id);
    },
  };
}

/**
 * A stop function, as Ray's `Stopper`: called with every result, true stops that trial. With
 * `stopAll`, checked after each call, true also stops every running trial and starts no new
 * one: the experiment ends (Ray's `stop_all`). A plain `(trialId, result) => boolean` is one.
 */
export interface Stopper {
  /** Whether the trial that reported `result` should stop. */
  (trialId: string, result: TrialResult): boolean;
  /** Whether the whole experiment should stop. */
  stopAll?(): boolean;
}

/** Stop criteria: Ray's dict (`{ training_iteration: 10 }`: stop when any value is reached) or a {@linkcode Stopper}. */
export type StopCriteria =
  | { readonly [key: string]: number }
  | Stopper;

/** Checkpoint retention. */
export interface CheckpointOptions {
  /** Keep at most this many checkpoints per trial (the latest is always kept). @default all */
  readonly numToKeep?: number;
  /** Rank checkpoints by this result key instead of recency. */
  readonly scoreAttribute?: string;
  /** Whether a higher or lower score is better. @default "max" */
  readonly scoreOrder?: Mode;
}

/**
 * A trial the runner restores: the trial read from disk ({@linkcode DiskTrial}) as
 * `Tuner.restore` settles it for resuming (its status maybe reset by `restartErrored`,
 * checkpoints newer than its last result dropped), with where it continues from.
 */
export interface RestoredTrial extends DiskTrial {
  /** The iteration it continues from: its latest checkpoint's when it will run again, else its last result's. */
  readonly iteration: number;
  /** Its last result on disk (the last of `history`). */
  readonly lastResult?: TrialResult;
  /** Its latest committed checkpoint (the last of `checkpoints`). */
  readonly checkpoint?: string;
}

/** Everything the runner needs; the Tuner fills it from its options. */
export interface RunnerConfig {
  readonly name: string;
  readonly dir: string;
  readonly experimentId: string;
  readonly space: Space;
  readonly metric: string;
  readonly mode: Mode;
  /** Every objective of a multi-objective experiment (`metric` first); absent for one. */
  readonly metrics?: readonly string[];
  /** The mode of each of `metrics`. */
  readonly modes?: readonly Mode[];
  readonly seed: number;
  readonly numSamples: number;
  readonly totalTrials: number;
  readonly searcher: Searcher;
  readonly scheduler: Scheduler;
  readonly callbacks: readonly Callback[];
  readonly executor: Executor;
  readonly gate: ResourceGate;
  readonly stop?: StopCriteria;
  readonly timeBudgetMs?: number;
  readonly trialTimeoutMs?: number;
  readonly maxFailures: number;
  readonly checkpoint: CheckpointOptions;
  readonly sandbox: SandboxPolicy;
  /** Memory cap of each sandboxed trial in MiB (`resources.memoryMb`). */
  readonly memoryMb?: number;
  /** What each trial asks for (`resources`), handed to the executor with every job. */
  readonly resources?: Resources;
  /**
   * The CPUs and GPUs all trials share (what the gate hands out), told to the scheduler with
   * `resources` as `SchedulerContext.resources`; without it the scheduler is told nothing.
   */
  readonly totalResources?: TrialResources;
  readonly savedOptions: { readonly [key: string]: JsonValue };
  readonly createdAt: string;
  readonly restored?: {
    readonly trials: readonly RestoredTrial[];
    readonly trialCount: number;
    readonly searcherState: JsonValue;
    readonly schedulerState: JsonValue;
    /** Events logged after the plugin snapshots were taken: replayed into the plugins. */
    readonly replay: readonly TrialEvent[];
  };
  /** Prints warnings (default: console.warn). */
  readonly warn?: (message: string) => void;
  /** Handle SIGINT/SIGTERM by stopping trials and saving state. @default true */
  readonly handleSignals?: boolean;
  /** How long the end of the experiment waits for busy callbacks. @default 60000 */
  readonly callbackDrainMs?: number;
  /**
   * When the folders of trials a lazy executor runs (in-process) are written: `"lazy"`, only
   * when a trial needs its folder (a checkpoint, an exploit, `session.trialDir`, an error), the
   * journal being the record of the rest; `"end"`, also every other one, in one batched pass
   * before the experiment returns. @default "lazy"
   */
  readonly trialFolders?: "lazy" | "end";
}

/** What {@linkcode runExperiment} returns. */
export interface RunOutcome {
  /** Every trial, in creation order. */
  readonly trials: readonly TrialSnapshot[];
  /** Every trial's results, in order. */
  readonly histories: ReadonlyMap<string, readonly TrialResult[]>;
  /** True when stopped by a signal. */
  readonly interrupted: boolean;
  /** True when the time budget ran out. */
  readonly budgetExhausted: boolean;
  /** A plugin or trainable error that ended the experiment early. */
  readonly fatal?: Error;
}
