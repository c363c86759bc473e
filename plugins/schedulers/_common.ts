// Shared helpers of the schedulers: option checks, scores, percentiles, snapshots.
// Private module (leading underscore): not part of the public API.

import { type Decision, requireSingleObjective, type SchedulerContext } from "../../core/plugin.ts";
import type { JsonValue, Mode, TrialResult } from "../../core/trial.ts";
export {
  booleanOption,
  checkKeys as checkOptions,
  enumOption,
  numberOption,
  stringOption,
} from "../../core/options.ts";
import { showValue as show } from "../../core/options.ts";
import { isPlainObject } from "../../core/space.ts";

/** The one `continue` decision (frozen, shared). */
export const CONTINUE: Decision = Object.freeze({ kind: "continue" });
/** The one `pause` decision (frozen, shared). */
export const PAUSE: Decision = Object.freeze({ kind: "pause" });

/** A stop decision with its reason. */
export function stop(reason: string, completed = false): Decision {
  return completed ? { kind: "stop", reason, completed } : { kind: "stop", reason };
}

/** The experiment's metric and mode, as a scheduler keeps them after `setup`. */
export interface Target {
  metric: string;
  mode: Mode;
  seed: number;
}

/** Checks the setup context. */
export function checkContext(fn: string, ctx: SchedulerContext): Target {
  if (ctx) requireSingleObjective(fn, ctx);
  if (!ctx || typeof ctx.metric !== "string" || !ctx.metric) {
    throw new TypeError(`${fn}: setup needs a metric name, got ${show(ctx?.metric)}`);
  }
  if (ctx.mode !== "min" && ctx.mode !== "max") {
    throw new TypeError(`${fn}: setup needs mode "min" or "max", got ${show(ctx.mode)}`);
  }
  const seed = typeof ctx.seed === "number" && Number.isFinite(ctx.seed) ? ctx.seed : 0;
  return { metric: ctx.metric, mode: ctx.mode, seed };
}

/** Throws when a hook runs before `setup`. */
export function needSetup(fn: string, target: Target | undefined): Target {
  if (!target) throw new Error(`${fn}: setup() must be called before the first trial`);
  return target;
}

/**
 * A value of a result by key; keys may be paths joined by `/` into nested objects (the way
 * nested metrics are flattened in progress.csv).
 */
export function resultValue(result: TrialResult, key: string): JsonValue | undefined {
  if (key in result) return result[key];
  if (!key.includes("/")) return undefined;
  let node: JsonValue | undefined = result;
  for (const part of key.split("/")) {
    if (!isPlainObject(node)) return undefined;
    node = (node as Record<string, JsonValue>)[part];
  }
  return node;
}

/** The time attribute of a result, or undefined when absent or not a number. */
export function timeOf(result: TrialResult, timeAttr: string): number | undefined {
  const v = resultValue(result, timeAttr);
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/**
 * The metric as a score where larger is better (negated for `min`), or undefined when the
 * result does not hold it. NaN (JSON `null`) is the worst score, -Infinity: a diverged trial
 * loses every comparison.
 */
export function scoreOf(result: TrialResult, target: Target): number | undefined {
  const v = resultValue(result, target.metric);
  if (v === undefined) return undefined;
  if (typeof v !== "number" || Number.isNaN(v)) {
    return v === null || typeof v === "number" ? -Infinity : undefined;
  }
  return target.mode === "max" ? v : -v;
}

/** The metric value back from a score, for messages. */
export function metricOf(score: number, target: Target): number {
  return target.mode === "max" ? score : -score;
}

/** A number for messages: up to 6 significant digits. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return String(Number(v.toPrecision(6)));
}

/**
 * numpy's `nanpercentile` with linear interpolation, q in [0, 100]. Infinite values are kept
 * (a NaN metric is scored -Infinity before it gets here).
 */
export function percentile(values: readonly number[], q: number): number | undefined {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (!v.length) return undefined;
  const pos = (q / 100) * (v.length - 1);
  const lo = Math.floor(pos), hi = Math.ceil(pos), f = pos - lo;
  if (f === 0 || v[lo] === v[hi]) return v[lo];
  return (1 - f) * v[lo] + f * v[hi];
}

/** Python's `round(x)`: halves go to the even neighbour (`round(2.5) == 2`). */
export function roundHalfEven(x: number): number {
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x);
}

/** numpy's `median`. */
export function median(values: readonly number[]): number | undefined {
  return percentile(values, 50);
}

/** Reads a snapshot object written by the same scheduler, checking its kind and version. */
export function readSnapshot(fn: string, kind: string, state: unknown): Record<string, unknown> {
  if (!isPlainObject(state) || state.kind !== kind || state.version !== 1) {
    throw new TypeError(
      `${fn}: cannot restore from ${
        show(state).slice(0, 80)
      }: expected a snapshot of a "${kind}" scheduler (version 1)`,
    );
  }
  return state;
}

/** The message for a trial that must be restored from a checkpoint it never wrote. */
export function noCheckpointMessage(fn: string, trialId: string, why: string): string {
  return `${fn}: ${why}, but trial "${trialId}" has no checkpoint. Pass one to \`report\` ` +
    `in the trainable, e.g. \`session.report(metrics, { checkpoint: (dir) => save(model, dir) })\`, ` +
    `and restore it from \`session.checkpoint\` when the trial starts.`;
}

/** A number as JSON: infinities (scores of NaN metrics) become strings. */
export function encodeNumber(n: number): JsonValue {
  return Number.isFinite(n) ? n : String(n);
}

/** The inverse of {@linkcode encodeNumber}. */
export function decodeNumber(v: unknown): number {
  if (typeof v === "number") return v;
  if (v === "Infinity" || v === "-Infinity" || v === "NaN") return Number(v);
  throw new TypeError(`bad number in a scheduler snapshot: ${show(v)}`);
}

/** Where a trial is, as a scheduler tracks it from the hooks it sees. */
export type Phase = "pending" | "running" | "paused" | "done";
