/**
 * The Callback contract and the events a callback is sent, in the order an experiment sends them.
 * Part of the plugin contracts: {@linkcode ./plugin.ts} re-exports everything here.
 *
 * @module
 */

import type { Mode, TrialResult, TrialSnapshot } from "./trial.ts";
import type { Space } from "./space.ts";
import type { Decision } from "./plugin.ts";

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
