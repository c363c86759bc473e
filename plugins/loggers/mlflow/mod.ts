/**
 * Logs an experiment to an MLflow tracking server over its REST API: one parent run per
 * experiment and one nested child run per trial, with the trial's config as params, every
 * numeric metric of every report at `step = training_iteration`, tags, final statuses and
 * (optionally) the trial's best or last checkpoint as artifacts.
 *
 * Nothing is sent on the report path: hooks put data in a queue that one background worker
 * delivers in batches. A slow, failing or unreachable server never stalls the experiment:
 * requests are retried with backoff (honouring `Retry-After`), data is kept in memory and
 * spooled to `mlflow.json` in the experiment folder, and a resumed experiment delivers what
 * was left. Resending is safe: metric points keep their timestamps, so MLflow's SQL store
 * drops exact duplicates.
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import { mlflowLogger } from "./mod.ts";
 * // e.g. after `mlflow server --host 127.0.0.1 --port 5000`
 * const logger = mlflowLogger({ trackingUri: "http://127.0.0.1:5000", experiment: "mnist" });
 * assert.equal(logger.name, "mlflow");
 * ```
 *
 * @module
 */

import type {
  Callback,
  CheckpointEvent,
  Decision,
  ExperimentEnd,
  ExperimentStart,
  TrialEnd,
  TrialOutcome,
  TrialReport,
  TrialStart,
} from "../../../core/plugin.ts";
import type {
  Config,
  JsonValue,
  Mode,
  TrialResult,
  TrialSnapshot,
  TrialStatus,
} from "../../../core/trial.ts";
import type { Space } from "../../../core/space.ts";
import { Delivery } from "./_delivery.ts";
import { checkOptions } from "./_options.ts";

// Re-exported so the documented API is complete from this entry point.
export type {
  Callback,
  CheckpointEvent,
  Config,
  Decision,
  ExperimentEnd,
  ExperimentStart,
  JsonValue,
  Mode,
  TrialEnd,
  TrialOutcome,
  TrialReport,
  TrialResult,
  TrialSnapshot,
  TrialStart,
  TrialStatus,
};
export type { Space };

/** Which checkpoint of a trial to upload as artifacts when the trial ends. */
export type MlflowCheckpointUpload = "none" | "best" | "last";

/** Options of {@linkcode mlflowLogger}. Every field is optional. */
export interface MlflowLoggerOptions {
  /**
   * The tracking server, `http(s)://host:port[/prefix]`.
   * @default the `MLFLOW_TRACKING_URI` environment variable, else `"http://127.0.0.1:5000"`
   */
  readonly trackingUri?: string;
  /**
   * The MLflow experiment name; it is created when missing.
   * @default the `MLFLOW_EXPERIMENT_NAME` environment variable, else the Tunebox experiment's name
   */
  readonly experiment?: string;
  /**
   * Bearer token (`Authorization: Bearer ...`).
   * @default the `MLFLOW_TRACKING_TOKEN` environment variable
   */
  readonly token?: string;
  /**
   * HTTP Basic user name; wins over `token` when `password` is set too.
   * @default the `MLFLOW_TRACKING_USERNAME` environment variable
   */
  readonly username?: string;
  /**
   * HTTP Basic password.
   * @default the `MLFLOW_TRACKING_PASSWORD` environment variable
   */
  readonly password?: string;
  /**
   * Extra tags set on the parent run and on every trial run.
   * @default {}
   */
  readonly tags?: Readonly<Record<string, string>>;
  /**
   * Upload the trial's best checkpoint (by the experiment's metric and mode), its last one, or
   * none, as artifacts under `<checkpoint folder name>/` when the trial ends. Needs a server that
   * proxies artifacts (`mlflow server`'s default `--serve-artifacts`).
   * @default "none"
   */
  readonly checkpoint?: MlflowCheckpointUpload;
  /**
   * Longest param value sent, in characters; longer values are truncated with a warning
   * (MLflow 2.x servers before 6000 characters allowed 500, and 1.x 250).
   * @default 6000
   */
  readonly maxParamValueLength?: number;
  /**
   * How long `onExperimentEnd` waits for undelivered data before it spools the rest to
   * `mlflow.json` in the experiment folder and returns.
   * @default 30000
   */
  readonly drainTimeoutMs?: number;
  /**
   * Time limit of one HTTP request.
   * @default 30000
   */
  readonly requestTimeoutMs?: number;
  /**
   * First delay before retrying a failed request; doubled (with jitter) per failure in a row.
   * @default 500
   */
  readonly retryDelayMs?: number;
  /**
   * Longest delay between retries (a larger `Retry-After` is still honoured).
   * @default 30000
   */
  readonly maxRetryDelayMs?: number;
  /**
   * Where warnings go; each kind of problem is reported once.
   * @default console.warn
   */
  readonly warn?: (message: string) => void;
}

/** What the logger has delivered and what it still holds. */
export interface MlflowDelivery {
  /** Items delivered so far (runs created, params, tags, metric points, status updates, files). */
  readonly delivered: number;
  /** Items still waiting to be delivered. */
  readonly pending: number;
  /** The file in the experiment folder that holds run ids and any undelivered items. */
  readonly stateFile?: string;
  /** Why delivery is stuck (e.g. rejected credentials), when it is. */
  readonly problem?: string;
}

/** The MLflow logger: a {@linkcode Callback} plus a way to wait for delivery. */
export interface MlflowLogger extends Callback {
  /** Always `"mlflow"`. */
  readonly name: string;
  /**
   * Waits until everything queued so far is delivered, delivery is stuck, or `timeoutMs`
   * passed, and says what is left. The experiment never needs to call this.
   */
  flush(timeoutMs?: number): Promise<MlflowDelivery>;
}

/**
 * Makes the MLflow logger callback. Options are checked here; environment variables are read
 * only when the experiment starts, and only for options not given (a missing `--allow-env`
 * permission is tolerated).
 *
 * @param options where and how to log; see {@linkcode MlflowLoggerOptions}.
 * @returns a callback named `"mlflow"`.
 * @throws {TypeError} an unknown option or an option of the wrong type or form.
 * @throws {RangeError} a number option out of range.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mlflowLogger } from "./mod.ts";
 * const logger = mlflowLogger({
 *   trackingUri: "http://127.0.0.1:5000",
 *   experiment: "mnist-asha",
 *   checkpoint: "best",
 * });
 * assert.equal(logger.name, "mlflow");
 * // new Tuner({ ..., callbacks: [logger] })
 * ```
 */
export function mlflowLogger(options: MlflowLoggerOptions = {}): MlflowLogger {
  const o = checkOptions(options);
  const d = new Delivery(o);
  return {
    name: "mlflow",
    onExperimentStart: (e) => d.start(e),
    onTrialStart: (e) => d.guard("onTrialStart", () => d.trialStart(e)),
    onReport: (e) => d.guard("onReport", () => d.report(e)),
    onCheckpoint: (e) => d.guard("onCheckpoint", () => d.checkpoint(e)),
    onTrialEnd: (e) => d.guard("onTrialEnd", () => d.trialEnd(e)),
    onExperimentEnd: (e) => d.end(e),
    flush: (timeoutMs) => d.flush(timeoutMs ?? o.drainTimeoutMs),
  };
}
