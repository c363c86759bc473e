/**
 * Trial states, results and the read-only snapshots plugins see.
 *
 * @module
 */

/** Any value JSON can hold. Configs, metrics and plugin snapshots are made of these. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | readonly JsonValue[]
  | { readonly [key: string]: JsonValue };

/** A resolved trial configuration: the search space with every domain sampled. */
export type Config = { readonly [key: string]: JsonValue };

/** Whether the experiment minimises or maximises its metric. */
export type Mode = "min" | "max";

/** Where a trial is in its life. */
export type TrialStatus = "pending" | "running" | "paused" | "terminated" | "error";

/**
 * One report of a trial as the driver records it: the user's metrics plus Ray Tune's
 * auto-filled keys.
 */
export interface TrialResult {
  /** The user's metrics (nested objects allowed). */
  readonly [key: string]: JsonValue;
  /** 1 for the first report, then +1 per report (continues across pause/resume and retries). */
  readonly training_iteration: number;
  /** Seconds since the trial first started, summed over its runs. */
  readonly time_total_s: number;
  /** Seconds since the previous report. */
  readonly time_this_iter_s: number;
  /** Unix time of the report, in seconds. */
  readonly timestamp: number;
  /** The trial's id. */
  readonly trial_id: string;
}

/**
 * The CPUs and GPUs one trial holds (per worker, for a trial of several workers): what
 * `session.resources` shows the trainable, and what a resource-changing scheduler changes.
 */
export interface TrialResources {
  /** CPUs (may be fractional). */
  readonly cpu: number;
  /** GPUs (a fraction of one device, or a whole number of devices). */
  readonly gpu: number;
}

/** What schedulers, searchers and callbacks see of a trial: a frozen copy. */
export interface TrialSnapshot {
  /** The trial id, e.g. `a2b9e_00003`. */
  readonly id: string;
  /** Current status. */
  readonly status: TrialStatus;
  /** The trial's config (changes when PBT exploits). */
  readonly config: Config;
  /** The last `training_iteration` reported (0 before the first report). */
  readonly iteration: number;
  /** The last result, if any. */
  readonly lastResult?: TrialResult;
  /** The latest committed checkpoint folder, if any. */
  readonly checkpoint?: string;
  /** The trial folder (an in-process trial has it only once it needs it: see `trialFolders`). */
  readonly dir: string;
  /** The error message when `status` is `"error"`. */
  readonly error?: string;
  /** Why it was stopped early (a scheduler's reason, a stop criterion, the time budget). */
  readonly reason?: string;
  /** The node it runs (or last ran) on, when a cluster executor placed it (e.g. Slurm's `n1`). */
  readonly node?: string;
  /**
   * The CPUs and GPUs it holds (or will hold when it next starts): the experiment's `resources`
   * until a resource-changing scheduler gives it others. Absent where nothing counts resources.
   */
  readonly resources?: TrialResources;
}
