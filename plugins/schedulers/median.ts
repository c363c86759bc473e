/**
 * The median stopping rule of Google Vizier (Golovin et al., KDD 2017), with Ray Tune's
 * `MedianStoppingRule` semantics and defaults.
 *
 * @module
 */

import { recordSpec } from "../../core/plugin.ts";
import type { Scheduler } from "../../core/plugin.ts";
import type { JsonValue, TrialSnapshot } from "../../core/trial.ts";
import {
  booleanOption,
  checkContext,
  checkOptions,
  CONTINUE,
  decodeNumber,
  encodeNumber,
  fmt,
  median,
  metricOf,
  needSetup,
  numberOption,
  PAUSE,
  type Phase,
  readSnapshot,
  scoreOf,
  stop,
  stringOption,
  type Target,
  timeOf,
} from "./_common.ts";

/** Options of {@linkcode medianStoppingScheduler}; the defaults are Ray Tune's. */
export interface MedianStoppingSchedulerOptions {
  /** The result key that measures training progress; it must increase. @default "time_total_s" */
  readonly timeAttr?: string;
  /** No trial is judged before this much `timeAttr`; running means start here too. @default 60 */
  readonly gracePeriod?: number;
  /** How many other trials must have reached the same time before a trial is judged. @default 3 */
  readonly minSamplesRequired?: number;
  /**
   * With too few peers to judge it, a trial yields its slot to a waiting (pending or paused)
   * trial, but only after running this long since it last yielded, in milliseconds of its own
   * training time (`time_total_s`). Ray's `min_time_slice` counts in `timeAttr` units instead.
   * @default 0
   */
  readonly minTimeSliceMs?: number;
  /** Stop trials below the median; when false they are paused and resumed last, FIFO. @default true */
  readonly hardStop?: boolean;
}

const FN = "medianStoppingScheduler";
const KEYS = [
  "timeAttr",
  "gracePeriod",
  "minSamplesRequired",
  "minTimeSliceMs",
  "hardStop",
] as const;

interface TrialInfo {
  phase: Phase;
  /** [time, score] per report, in order. */
  results: [number, number][];
  /** time_total_s when it last yielded (-Infinity: never). */
  lastPauseS: number;
  /** Judged below the median (soft mode: paused, then runs FIFO without further checks). */
  stopped: boolean;
}

/**
 * Stops a trial whose best metric so far is strictly worse than the median of the other trials'
 * running averages up to the same time.
 *
 * On each result at time `t >= gracePeriod`, the peers are the other trials whose latest result
 * has time `>= t` (finished trials included). With fewer than `minSamplesRequired` peers the
 * trial continues, or pauses to let a waiting trial run (see `minTimeSliceMs`). Otherwise each
 * peer's running mean of the metric over its results with `gracePeriod <= time <= t` is taken,
 * and the trial stops (pauses when `hardStop` is false) if its best value is worse than their
 * median. `chooseNext` runs pending trials first, then trials that yielded, then trials paused
 * by the soft rule.
 *
 * A diverged trial (metric NaN, JSON `null`) never lowers the bar for the others: a peer with a
 * NaN inside `[gracePeriod, t]` has no running mean and is left out of the median and of the
 * `minSamplesRequired` count (numpy's `nanmedian` over Ray's running means).
 *
 * Differences from Ray:
 * - `minTimeSliceMs` is measured in the trial's own training time, not in `timeAttr` units;
 * - a peer whose running mean is NaN — no result inside `[gracePeriod, t]`, or a NaN metric
 *   there — is left out; Ray's `np.median` turns NaN, and `max(NaN, best) != best` then stops
 *   every trial it judges;
 * - a trial whose current result is NaN is stopped (paused when `hardStop` is false) whenever
 *   it can be judged, even if an earlier result was good; Ray's verdict on it depends on where
 *   the NaN sits in its list (`max([nan, 1])` is NaN, `max([1, nan])` is 1);
 * - a trial only yields its slot when it has a checkpoint to resume from.
 *
 * @param options see {@linkcode MedianStoppingSchedulerOptions}; defaults are Ray's.
 * @returns the scheduler, named `"median_stopping"`.
 * @throws {TypeError} on an unknown option (with a "did you mean") or a value of the wrong type.
 * @throws {RangeError} when `gracePeriod` or `minTimeSliceMs` is negative, or
 *   `minSamplesRequired` is not a positive integer.
 * @example
 * ```ts
 * import { medianStoppingScheduler } from "./median.ts";
 * const s = medianStoppingScheduler({ timeAttr: "training_iteration", gracePeriod: 5 });
 * s.setup?.({ metric: "loss", mode: "min", seed: 0 });
 * ```
 */
export function medianStoppingScheduler(options: MedianStoppingSchedulerOptions = {}): Scheduler {
  const raw = checkOptions(FN, options, KEYS);
  const timeAttr = stringOption(FN, raw, "timeAttr", "time_total_s");
  const grace = numberOption(FN, raw, "gracePeriod", 60, { min: 0 });
  const minSamples = numberOption(FN, raw, "minSamplesRequired", 3, { min: 1, integer: true });
  const sliceMs = numberOption(FN, raw, "minTimeSliceMs", 0, { min: 0 });
  const hardStop = booleanOption(FN, raw, "hardStop", true);
  let target: Target | undefined;
  let trials = new Map<string, TrialInfo>();

  function add(id: string): TrialInfo {
    let info = trials.get(id);
    if (!info) {
      info = { phase: "pending", results: [], lastPauseS: -Infinity, stopped: false };
      trials.set(id, info);
    }
    return info;
  }

  function runningMean(info: TrialInfo, t: number): number | undefined {
    let sum = 0, n = 0;
    for (const [time, s] of info.results) {
      if (time >= grace && time <= t) {
        sum += s;
        n++;
      }
    }
    // A NaN metric (scored -Infinity) makes the mean NaN, as numpy's `mean` does; the caller
    // then leaves this peer out, as `np.nanmedian` would.
    return n && Number.isFinite(sum) ? sum / n : undefined;
  }

  return recordSpec("median_stopping", options, {
    name: "median_stopping",
    setup(ctx) {
      target = checkContext(FN, ctx);
    },
    onTrialAdd(trial) {
      needSetup(FN, target);
      add(trial.id);
    },
    onReport(trial, result) {
      const tg = needSetup(FN, target);
      const info = add(trial.id);
      info.phase = "running";
      const t = timeOf(result, timeAttr), score = scoreOf(result, tg);
      if (t === undefined || score === undefined) return CONTINUE;
      if (info.stopped) return CONTINUE; // soft mode: runs FIFO after its pause
      info.results.push([t, score]);
      if (t < grace) return CONTINUE;
      // Peers whose running mean is NaN (they diverged inside the window) are not samples:
      // a diverged trial must never lower the bar for the others (ASHA does the same).
      const peers: number[] = [];
      for (const [id, other] of trials) {
        if (id === trial.id) continue;
        const last = other.results.at(-1);
        if (!last || last[0] < t) continue;
        const mean = runningMean(other, t);
        if (mean !== undefined) peers.push(mean);
      }
      if (peers.length < minSamples) {
        const totalS = typeof result.time_total_s === "number" ? result.time_total_s : 0;
        const othersWait = [...trials].some(([id, x]) =>
          id !== trial.id && (x.phase === "pending" || x.phase === "paused")
        );
        if (othersWait && trial.checkpoint && (totalS - info.lastPauseS) * 1000 > sliceMs) {
          info.lastPauseS = totalS;
          info.phase = "paused";
          return PAUSE;
        }
        return CONTINUE;
      }
      const mid = median(peers)!;
      let best = -Infinity;
      for (const [, s] of info.results) if (s > best) best = s;
      const diverged = score === -Infinity;
      if (!diverged && !(best < mid)) return CONTINUE;
      info.stopped = true;
      if (!hardStop) {
        info.phase = "paused";
        return PAUSE;
      }
      info.phase = "done";
      if (diverged) {
        return stop(
          `median stopping: ${tg.metric} is not a number (the trial diverged) at ${timeAttr} ` +
            `${fmt(t)}, where ${peers.length} other trials have running averages`,
        );
      }
      return stop(
        `median stopping: best ${tg.metric} ${fmt(metricOf(best, tg))} is worse than the median ` +
          `${fmt(metricOf(mid, tg))} of ${peers.length} other trials' running averages at ` +
          `${timeAttr} ${fmt(t)}`,
      );
    },
    onComplete(trial, result) {
      const info = trials.get(trial.id);
      if (!info) return;
      info.phase = "done";
      if (!result || !target) return;
      // Ray appends the final result again; keep it only when it is new.
      const t = timeOf(result, timeAttr), score = scoreOf(result, target);
      if (t === undefined || score === undefined) return;
      const last = info.results.at(-1);
      if (!last || last[0] !== t) info.results.push([t, score]);
    },
    chooseNext(runnable: readonly TrialSnapshot[]) {
      let yielded: string | undefined, stopped: string | undefined;
      for (const snap of runnable) {
        const info = add(snap.id);
        if (info.phase === "done") continue;
        if (snap.status === "pending") {
          info.phase = "running";
          return snap.id;
        }
        if (info.stopped) stopped ??= snap.id;
        else yielded ??= snap.id;
      }
      const pick = yielded ?? stopped;
      if (pick !== undefined) trials.get(pick)!.phase = "running";
      return pick;
    },
    snapshot(): JsonValue {
      return {
        kind: "median_stopping",
        version: 1,
        trials: [...trials].map(([id, x]) => [
          id,
          x.phase,
          x.results.map(([t, s]) => [t, encodeNumber(s)]),
          encodeNumber(x.lastPauseS),
          x.stopped,
        ]),
      };
    },
    restore(state) {
      const s = readSnapshot(FN, "median_stopping", state);
      trials = new Map(
        (s.trials as [string, Phase, [number, JsonValue][], JsonValue, boolean][]).map((
          [id, phase, results, lastPause, stopped],
        ) => [id, {
          phase,
          results: results.map(([t, v]) => [t, decodeNumber(v)] as [number, number]),
          lastPauseS: decodeNumber(lastPause),
          stopped,
        }]),
      );
    },
  });
}
