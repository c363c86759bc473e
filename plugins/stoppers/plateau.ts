/**
 * Plateau stop criteria, as Ray Tune's `TrialPlateauStopper` and `ExperimentPlateauStopper`.
 *
 * @module
 */

import type { Stopper } from "../../core/runner.ts";
import type { JsonValue, Mode, TrialResult } from "../../core/trial.ts";
import { withSpec } from "./_spec.ts";
import { checkKeys as checkOptionKeys } from "../../core/options.ts";

export type { Stopper };

/** Options of {@linkcode trialPlateauStopper}; the defaults are Ray's. */
export interface TrialPlateauStopperOptions {
  /** The result key to watch (paths into nested metrics joined by `/`). */
  readonly metric: string;
  /** A trial plateaued when the (population) standard deviation of its last results is below this. @default 0.01 */
  readonly std?: number;
  /** How many of the latest results the standard deviation is computed over. @default 4 */
  readonly numResults?: number;
  /** No trial is stopped before it has reported this many results. @default 4 */
  readonly gracePeriod?: number;
  /**
   * Stop only once the latest value is at least this good: `>=` for `mode: "max"`, `<=` for
   * `"min"`. Needs `mode`.
   */
  readonly metricThreshold?: number;
  /** Whether `metricThreshold` is a floor (`"max"`) or a ceiling (`"min"`). */
  readonly mode?: Mode;
}

/** Options of {@linkcode experimentPlateauStopper}; the defaults are Ray's. */
export interface ExperimentPlateauStopperOptions {
  /** The result key to watch (paths into nested metrics joined by `/`). */
  readonly metric: string;
  /** The top values plateaued when their standard deviation is at most this (> 0). @default 0.001 */
  readonly std?: number;
  /** How many of the best values seen so far are compared (an integer > 1). @default 10 */
  readonly top?: number;
  /** Which values are the best. @default "min" */
  readonly mode?: Mode;
  /** How many further results the plateau must last before the experiment stops. @default 0 */
  readonly patience?: number;
}

function value(result: TrialResult, key: string): number | undefined {
  let node: JsonValue | undefined = result[key];
  if (node === undefined && key.includes("/")) {
    node = result;
    for (const part of key.split("/")) {
      node = node && typeof node === "object" && !Array.isArray(node)
        ? (node as Record<string, JsonValue>)[part]
        : undefined;
    }
  }
  return typeof node === "number" && !Number.isNaN(node) ? node : undefined;
}

/** numpy's `std` (population, ddof 0). */
function std(xs: readonly number[]): number {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length);
}

function check(
  fn: string,
  name: string,
  v: unknown,
  rule: { min?: number; above?: number; integer?: boolean },
): void {
  if (v === undefined) return;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new TypeError(`${fn}: "${name}" must be a finite number, got ${JSON.stringify(v)}`);
  }
  if (rule.integer && !Number.isInteger(v)) {
    throw new RangeError(`${fn}: "${name}" must be an integer, got ${v}`);
  }
  if (rule.above !== undefined && !(v > rule.above)) {
    throw new RangeError(`${fn}: "${name}" must be > ${rule.above}, got ${v}`);
  }
  if (rule.min !== undefined && v < rule.min) {
    throw new RangeError(`${fn}: "${name}" must be >= ${rule.min}, got ${v}`);
  }
}

function checkKeys(fn: string, options: unknown, keys: readonly string[]): void {
  if (!options || typeof options !== "object" || Array.isArray(options)) {
    throw new TypeError(`${fn}: options must be an object with at least "metric"`);
  }
  checkOptionKeys(fn, options, keys);
  const metric = (options as { metric?: unknown }).metric;
  if (typeof metric !== "string" || !metric) {
    throw new TypeError(
      `${fn}: "metric" must be the name of a reported metric, got ${JSON.stringify(metric)}`,
    );
  }
}

/**
 * Stops a trial whose metric has plateaued (Ray's `TrialPlateauStopper`): once the trial has
 * reported `gracePeriod` results, it stops when the standard deviation of its last
 * `numResults` values is below `std` (and, with `metricThreshold`, its latest value is at least
 * that good). Pass it as the experiment's `stop`.
 *
 * A result without the metric (or with NaN) counts as a report but breaks the window, as in
 * Ray, where `np.std` of a window holding `None` fails and the trial goes on.
 *
 * Differences from Ray: `metricThreshold: 0` is a threshold (Ray's `if metric_threshold:`
 * ignores a threshold of 0); a value missing from a result does not raise.
 *
 * @param options see {@linkcode TrialPlateauStopperOptions}.
 * @returns a stop function for the `stop` option (it never stops the whole experiment).
 * @throws {TypeError} on an unknown option or a missing `metric`; when `metricThreshold` is
 *   given without `mode`.
 * @throws {RangeError} when `std <= 0`, or `numResults` or `gracePeriod` is not a positive
 *   integer.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { trialPlateauStopper } from "./plateau.ts";
 * const stop = trialPlateauStopper({ metric: "loss", std: 0.001, numResults: 3, gracePeriod: 3 });
 * const r = (loss: number) => ({ loss, training_iteration: 1, time_total_s: 1, time_this_iter_s: 1, timestamp: 0, trial_id: "a" });
 * assert.deepEqual([0.5, 0.2, 0.2, 0.2].map((x) => stop("a", r(x))), [false, false, false, true]);
 * ```
 */
export function trialPlateauStopper(options: TrialPlateauStopperOptions): Stopper {
  const fn = "trialPlateauStopper";
  checkKeys(fn, options, ["metric", "std", "numResults", "gracePeriod", "metricThreshold", "mode"]);
  const o = options;
  check(fn, "std", o.std, { above: 0 });
  check(fn, "numResults", o.numResults, { min: 1, integer: true });
  check(fn, "gracePeriod", o.gracePeriod, { min: 0, integer: true });
  check(fn, "metricThreshold", o.metricThreshold, {});
  if (o.metricThreshold !== undefined && o.mode !== "min" && o.mode !== "max") {
    throw new TypeError(
      `${fn}: "metricThreshold" needs "mode" "min" or "max" (whether the value must fall below ` +
        `or rise above it), got ${JSON.stringify(o.mode)}`,
    );
  }
  const limit = o.std ?? 0.01, n = o.numResults ?? 4, grace = o.gracePeriod ?? 4;
  const windows = new Map<string, (number | undefined)[]>();
  const counts = new Map<string, number>();
  const stopper = (trialId: string, result: TrialResult): boolean => {
    const v = value(result, o.metric);
    const window = windows.get(trialId) ?? [];
    window.push(v);
    if (window.length > n) window.shift();
    windows.set(trialId, window);
    const count = (counts.get(trialId) ?? 0) + 1;
    counts.set(trialId, count);
    if (count < grace || window.length < n) return false;
    if (o.metricThreshold !== undefined) {
      if (v === undefined) return false;
      if (o.mode === "min" ? v > o.metricThreshold : v < o.metricThreshold) return false;
    }
    if (window.some((x) => x === undefined)) return false;
    return std(window as number[]) < limit;
  };
  return withSpec(Object.assign(stopper, { stopAll: () => false }), {
    name: "trial_plateau",
    options: { ...o } as Record<string, JsonValue>,
  });
}

/**
 * Stops the whole experiment when the best values have plateaued (Ray's
 * `ExperimentPlateauStopper`): it keeps the `top` best values of the metric reported so far by
 * any trial; once it holds `top` of them and their standard deviation is at most `std` for more
 * than `patience` further results, the reporting trial and every running trial stop, and no
 * new trial starts. Pass it as the experiment's `stop`.
 *
 * Differences from Ray: a result without the metric, or with NaN, is skipped (Ray raises a
 * `KeyError` on a missing metric and sorts NaN unpredictably).
 *
 * @param options see {@linkcode ExperimentPlateauStopperOptions}.
 * @returns a stop function for the `stop` option whose `stopAll()` says when to end the
 *   experiment.
 * @throws {TypeError} on an unknown option, a missing `metric`, or a `mode` other than
 *   `"min"`/`"max"`.
 * @throws {RangeError} when `std <= 0`, `top` is not an integer > 1, or `patience` is not an
 *   integer >= 0.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { experimentPlateauStopper } from "./plateau.ts";
 * const stop = experimentPlateauStopper({ metric: "loss", top: 2, std: 0.01 });
 * const r = (loss: number) => ({ loss, training_iteration: 1, time_total_s: 1, time_this_iter_s: 1, timestamp: 0, trial_id: "a" });
 * assert.equal(stop("a", r(0.5)), false);
 * assert.equal(stop("b", r(0.1)), false);
 * assert.equal(stop("c", r(0.105)), true);
 * ```
 */
export function experimentPlateauStopper(options: ExperimentPlateauStopperOptions): Stopper {
  const fn = "experimentPlateauStopper";
  checkKeys(fn, options, ["metric", "std", "top", "mode", "patience"]);
  const o = options;
  if (o.mode !== undefined && o.mode !== "min" && o.mode !== "max") {
    throw new TypeError(`${fn}: "mode" must be "min" or "max", got ${JSON.stringify(o.mode)}`);
  }
  check(fn, "std", o.std, { above: 0 });
  check(fn, "top", o.top, { above: 1, integer: true });
  check(fn, "patience", o.patience, { min: 0, integer: true });
  const limit = o.std ?? 0.001,
    top = o.top ?? 10,
    mode = o.mode ?? "min",
    patience = o.patience ?? 0;
  let best: number[] = [];
  let iterations = 0;
  const plateaued = () => best.length === top && std(best) <= limit;
  const stopAll = () => plateaued() && iterations >= patience;
  const stopper = (_trialId: string, result: TrialResult): boolean => {
    const v = value(result, o.metric);
    if (v !== undefined) {
      best.push(v);
      best.sort((a, b) => a - b);
      best = mode === "min" ? best.slice(0, top) : best.slice(-top);
    }
    iterations = plateaued() ? iterations + 1 : 0;
    return stopAll();
  };
  return withSpec(Object.assign(stopper, { stopAll }), {
    name: "experiment_plateau",
    options: { ...o } as Record<string, JsonValue>,
  });
}
