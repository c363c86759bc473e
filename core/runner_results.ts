/**
 * How the runner builds what plugins see of a trial: the automatic keys of a result,
 * the check that a result has the metric, the stop criteria, frozen snapshots, and the
 * resources a trial holds. Methods of the runner, kept here.
 *
 * @module
 */

import type { Resources } from "./plugin.ts";
import type { JsonValue, TrialResources, TrialResult, TrialSnapshot } from "./trial.ts";
import { flatten } from "./store.ts";
import type { Runner, TrialState } from "./runner.ts";

/** Keys the runner fills in; not user metrics. */
export const AUTO_KEYS: ReadonlySet<string> = new Set([
  "training_iteration",
  "time_this_iter_s",
  "time_total_s",
  "timestamp",
  "date",
  "trial_id",
  "iterations_since_restore",
  "time_since_restore",
  "done",
  "checkpoint_dir_name",
]);

/** The keys a user reported (not the ones the runner fills in), for messages. */
export function userKeys(flat: Readonly<Record<string, JsonValue>>): string {
  return Object.keys(flat).filter((k) => !AUTO_KEYS.has(k)).join(", ") || "nothing";
}

/** The CPUs and GPUs per worker a trial holds, defaults filled in. */
export function current(r: Resources): TrialResources {
  return { cpu: r.cpu ?? 1, gpu: r.gpu ?? 0 };
}

/** What a trial holds in all: its resources times its workers. */
export function demand(r: Resources): TrialResources {
  const w = r.workers ?? 1;
  return { cpu: (r.cpu ?? 1) * w, gpu: (r.gpu ?? 0) * w };
}

/** Resources for messages: `cpu=2, gpu=0` (per worker, with the workers). */
export function show(r: Resources): string {
  const c = current(r);
  const w = r.workers && r.workers > 1 ? ` per worker x ${r.workers} workers` : "";
  return `cpu=${c.cpu}, gpu=${c.gpu}${w}`;
}

/** Local time as `YYYY-MM-DD_HH-MM-SS`, Ray's `date`. */
export function isoLocal(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}_${p(d.getHours())}-${
    p(d.getMinutes())
  }-${p(d.getSeconds())}`;
}

/**
 * The frozen snapshot of a trial that plugins see. Built by assignment in a fixed order (the
 * optional keys only when set), not from spread literals: made for every report, it should cost
 * one object.
 */
export function snap(this: Runner, t: TrialState): TrialSnapshot {
  const s: { -readonly [K in keyof TrialSnapshot]: TrialSnapshot[K] } = {
    id: t.id,
    status: t.status,
    config: t.config,
    iteration: t.iteration,
    dir: t.dir,
  } as TrialSnapshot;
  if (t.lastResult) s.lastResult = t.lastResult;
  if (t.checkpoint) s.checkpoint = t.checkpoint;
  if (t.error) s.error = t.error;
  if (t.reason) s.reason = t.reason;
  if (t.node) s.node = t.node;
  // One frozen view per resources object (trials share the experiment's until reallocated).
  let view = this.resourceViews.get(t.resources);
  if (!view) this.resourceViews.set(t.resources, view = Object.freeze(current(t.resources)));
  s.resources = view;
  return Object.freeze(s);
}

/** Why the stop criteria end a trial at this result, or undefined. */
export function stopCriterion(this: Runner, t: TrialState, r: TrialResult): string | undefined {
  if (r.done === true) return "the trial reported done";
  const stop = this.c.stop;
  if (!stop) return undefined;
  if (typeof stop === "function") {
    const v = this.plugin("stop", "function", () => stop(t.id, r));
    if (
      typeof stop.stopAll === "function" && !this.stopping &&
      this.plugin("stop", "stopAll", () => stop.stopAll!()) === true
    ) {
      this.stopAllRequested = true;
      return "the stopper's stopAll() returned true: the experiment ends";
    }
    return v ? "the stop function returned true" : undefined;
  }
  const flat = flatten(r);
  for (const [k, limit] of Object.entries(stop)) {
    const v = flat[k];
    if (typeof v !== "number") {
      this.warnOnce(
        t,
        `stop:${k}`,
        `stop criterion "${k}" is not in the results of trial "${t.id}" (it reported ${
          userKeys(flat)
        })`,
      );
      continue;
    }
    if (v >= limit) return `${k} >= ${limit}`;
  }
  return undefined;
}

/** Warns once when a result lacks the metric (or it is not a finite number). */
export function checkMetric(this: Runner, t: TrialState, r: TrialResult): void {
  // A metric at the top level is read as is; a nested one ("a/b") needs the flat view.
  let flat: Record<string, JsonValue> | undefined;
  const objectives = this.objectives;
  // An indexed loop: this runs for every report, and a for-of makes an iterator object until V8
  // optimizes it.
  for (let i = 0; i < objectives.length; i++) {
    const metric = objectives[i];
    const direct = r[metric];
    const v = typeof direct === "number" ? direct : (flat ??= flatten(r))[metric];
    if (v === undefined) {
      flat ??= flatten(r);
      if (!this.warnedMissingMetric) {
        this.warnedMissingMetric = true;
        this.warn(
          `trial "${t.id}" did not report the metric "${metric}" (it reported ${
            userKeys(flat)
          }); ` +
            `schedulers and searchers need it in every report`,
        );
      }
    } else if (typeof v === "number" && !Number.isFinite(v)) {
      this.warnOnce(
        t,
        `nan:${metric}`,
        `trial "${t.id}" reported ${metric}=${v} at iteration ${r.training_iteration}: recorded, never picked as best`,
      );
    }
  }
}

/** `date` of a result: the local time to the second, made once a second. */
export function localDate(this: Runner, ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== this.dateSecond) {
    this.dateSecond = second;
    this.dateText = isoLocal(ms);
  }
  return this.dateText;
}
