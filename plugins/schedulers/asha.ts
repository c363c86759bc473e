/**
 * Asynchronous successive halving (ASHA, Li et al. 2020): Ray Tune's stopping variant
 * (`AsyncHyperBandScheduler`) by default, and the paper's promotion variant.
 *
 * @module
 */

import { recordSpec } from "../../core/plugin.ts";
import type { Decision, Scheduler, StopRequest } from "../../core/plugin.ts";
import type { JsonValue, TrialResult, TrialSnapshot } from "../../core/trial.ts";
import { Rng } from "../../core/random.ts";
import {
  booleanOption,
  checkContext,
  checkOptions,
  CONTINUE,
  decodeNumber,
  encodeNumber,
  enumOption,
  fmt,
  metricOf,
  needSetup,
  numberOption,
  PAUSE,
  percentile,
  type Phase,
  readSnapshot,
  scoreOf,
  stop,
  stringOption,
  type Target,
  timeOf,
} from "./_common.ts";

/** Options of {@linkcode ashaScheduler}; the defaults are Ray Tune's. */
export interface AshaSchedulerOptions {
  /** The result key that measures training progress; it must increase. @default "training_iteration" */
  readonly timeAttr?: string;
  /** The most `timeAttr` a trial may use; a trial that reaches it is stopped. @default 100 */
  readonly maxT?: number;
  /** The first rung: no trial is judged before this much `timeAttr`. @default 1 */
  readonly gracePeriod?: number;
  /** Rungs are `reductionFactor` apart and the top `1/reductionFactor` go on (`eta`). @default 4 */
  readonly reductionFactor?: number;
  /** Number of brackets (ASHA-HyperBand); bracket `s` starts at `gracePeriod * rf^s`. @default 1 */
  readonly brackets?: number;
  /** Stop trials when they reach `maxT` (else they run until the trainable ends). @default true */
  readonly stopLastTrials?: boolean;
  /**
   * `"stop"`: Ray's variant, a trial reaching a rung is stopped unless it is in the top
   * `1/reductionFactor` of the trials recorded there so far; nothing pauses, no checkpoints are
   * needed. `"promote"`: the paper's variant, a trial pauses at each rung and is resumed from its
   * checkpoint once it ranks in the top `1/reductionFactor` of its rung.
   * @default "stop"
   */
  readonly mode?: "stop" | "promote";
}

const FN = "ashaScheduler";
const KEYS = [
  "timeAttr",
  "maxT",
  "gracePeriod",
  "reductionFactor",
  "brackets",
  "stopLastTrials",
  "mode",
] as const;

interface Resolved {
  timeAttr: string;
  maxT: number;
  gracePeriod: number;
  reductionFactor: number;
  brackets: number;
  stopLastTrials: boolean;
  mode: "stop" | "promote";
}

function resolve(options: unknown): Resolved {
  const o = checkOptions(FN, options, KEYS);
  const timeAttr = stringOption(FN, o, "timeAttr", "training_iteration");
  const maxT = numberOption(FN, o, "maxT", 100, { minExclusive: 0 });
  const gracePeriod = numberOption(FN, o, "gracePeriod", 1, { minExclusive: 0 });
  if (gracePeriod > maxT) {
    throw new RangeError(`${FN}: "gracePeriod" must be <= "maxT" (${maxT}), got ${gracePeriod}`);
  }
  const reductionFactor = numberOption(FN, o, "reductionFactor", 4, { minExclusive: 1 });
  const brackets = numberOption(FN, o, "brackets", 1, { min: 1, integer: true });
  const most = rungCount(maxT, gracePeriod, reductionFactor, 0);
  if (brackets > most) {
    throw new RangeError(
      `${FN}: "brackets" must be <= ${most} (the number of rungs for maxT ${maxT}, gracePeriod ` +
        `${gracePeriod}, reductionFactor ${reductionFactor}), got ${brackets}: bracket s starts ` +
        `at gracePeriod * reductionFactor^s, so a bracket beyond ${most} would have no rung and ` +
        `its trials would run to maxT unjudged (Ray accepts it and does that). Lower "brackets", ` +
        `or raise "maxT" or lower "gracePeriod" to get more rungs`,
    );
  }
  return {
    timeAttr,
    maxT,
    gracePeriod,
    reductionFactor,
    brackets,
    stopLastTrials: booleanOption(FN, o, "stopLastTrials", true),
    mode: enumOption(
      FN,
      o,
      "mode",
      ["stop", "promote"] as const,
      "stop",
      " (the metric's min/max mode is set on the experiment)",
    ),
  };
}

function rungCount(maxT: number, grace: number, rf: number, s: number): number {
  // Ray: int(log(max_t / grace) / log(rf) - s + 1); the epsilon keeps exact powers (1000 = 10^3)
  // from being lost to rounding.
  return Math.max(0, Math.floor(Math.log(maxT / grace) / Math.log(rf) + 1e-9) - s + 1);
}

/**
 * The rung milestones of each bracket, ascending: bracket `s` has rungs at
 * `gracePeriod * reductionFactor^(k + s)` up to `maxT` (Ray's arithmetic).
 *
 * @param options the scheduler's options (only `maxT`, `gracePeriod`, `reductionFactor`,
 *   `brackets` matter).
 * @returns one array of milestones per bracket.
 * @throws {TypeError | RangeError} on bad options, as {@linkcode ashaScheduler}.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ashaMilestones } from "./asha.ts";
 * assert.deepEqual(ashaMilestones({}), [[1, 4, 16, 64]]);
 * ```
 */
export function ashaMilestones(options: AshaSchedulerOptions = {}): number[][] {
  const o = resolve(options);
  return milestones(o);
}

function milestones(o: Resolved): number[][] {
  const out: number[][] = [];
  for (let s = 0; s < o.brackets; s++) {
    const n = rungCount(o.maxT, o.gracePeriod, o.reductionFactor, s);
    out.push(
      Array.from({ length: n }, (_, k) => o.gracePeriod * o.reductionFactor ** (k + s)),
    );
  }
  return out;
}

interface Rung {
  readonly milestone: number;
  /** trial id -> score, in the order recorded. */
  readonly recorded: Map<string, number>;
  /** Trials promoted out of this rung (promote mode). */
  readonly promoted: Set<string>;
}

interface TrialInfo {
  bracket: number;
  phase: Phase;
  /** Promote mode: index of the rung the trial trains towards (rungs.length: past the top). */
  target: number;
  /** Promote mode: the rung a paused trial waits at. */
  pausedAt?: number;
}

/**
 * Asynchronous successive halving.
 *
 * Rungs sit at `gracePeriod * reductionFactor^k` (1, 4, 16, 64 for the defaults). In `"stop"`
 * mode (Ray's `ASHAScheduler`), a trial reaching a rung is compared with the trials already
 * recorded there: it is stopped when its score is below the `(1 - 1/rf)` percentile (linear
 * interpolation) of theirs, else recorded and continued; the first trial at a rung always
 * continues, and a trial reaching `maxT` is stopped. In `"promote"` mode (the paper's
 * Algorithm 2, which Ray does not have), a trial pauses at each rung; `chooseNext` resumes the
 * best trial that ranks in the top `floor(n/rf)` of its rung and was not promoted yet, else
 * starts a new trial. When nothing runs and no new trial is left, the best trial of each rung
 * is promoted (so the best line of trials reaches `maxT`) and the other paused trials are
 * ended through `takeStops`.
 *
 * A diverged trial (metric NaN, JSON `null`) never lowers the bar for the others: as Ray's
 * `np.nanpercentile`, the cut-off of a rung is computed over the trials recorded there that did
 * not diverge, and in `"promote"` mode the quota `floor(n/rf)` counts only those.
 *
 * Differences from Ray:
 * - a diverged trial is stopped at its next rung when any trial is recorded there (Ray compares
 *   `NaN < cutoff`, which is false, so it never stops it), and is never promoted;
 * - `brackets` above `floor(log_rf(maxT/gracePeriod)) + 1` is refused (Ray accepts it; the extra
 *   brackets have no rung, so their trials run to `maxT` unjudged);
 * - rung counts use a small epsilon so that exact powers keep their top rung: for
 *   `maxT: 1000, gracePeriod: 1, reductionFactor: 10` Ray's `int(log(1000)/log(10))` is 2 in
 *   floating point, so Ray has no rung at 1000 (a decision changes only with
 *   `stopLastTrials: false`, where that rung judges trials reaching `maxT`);
 * - `"promote"` mode is the paper's Algorithm 2, which Ray does not have.
 *
 * @param options see {@linkcode AshaSchedulerOptions}; defaults are Ray's.
 * @returns the scheduler, named `"asha"`.
 * @throws {TypeError} on an unknown option (with a "did you mean") or a value of the wrong type.
 * @throws {RangeError} when `maxT <= 0`, `gracePeriod <= 0` or `> maxT`,
 *   `reductionFactor <= 1`, or `brackets` is not an integer between 1 and the number of rungs.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ashaScheduler } from "./asha.ts";
 * const s = ashaScheduler({ maxT: 10, gracePeriod: 1, reductionFactor: 2 });
 * s.setup?.({ metric: "loss", mode: "min", seed: 1 });
 * const result = { loss: 0.5, training_iteration: 1, time_total_s: 1, time_this_iter_s: 1, timestamp: 0, trial_id: "t1" };
 * const d = s.onReport({ id: "t1", status: "running", config: {}, iteration: 1, dir: "/tmp/t1" }, result);
 * assert.equal(d.kind, "continue"); // the first trial at a rung is never cut
 * ```
 */
export function ashaScheduler(options: AshaSchedulerOptions = {}): Scheduler {
  const o = resolve(options);
  const plan = milestones(o);
  let target: Target | undefined;
  let rng = new Rng(0);
  let brackets: Rung[][] = fresh();
  let trials = new Map<string, TrialInfo>();
  let stops: StopRequest[] = [];

  function fresh(): Rung[][] {
    return plan.map((ms) =>
      ms.map((milestone) => ({ milestone, recorded: new Map(), promoted: new Set() }))
    );
  }

  function add(id: string): TrialInfo {
    let info = trials.get(id);
    if (info) return info;
    let bracket = 0;
    if (brackets.length > 1) {
      // Ray: probability proportional to exp(#rungs_b - max #rungs).
      const sizes = brackets.map((b) => b.length);
      const top = Math.max(...sizes);
      const weights = sizes.map((n) => Math.exp(n - top));
      const total = weights.reduce((a, b) => a + b, 0);
      let u = rng.next() * total;
      bracket = weights.length - 1;
      for (let i = 0; i < weights.length; i++) {
        if ((u -= weights[i]) < 0) {
          bracket = i;
          break;
        }
      }
    }
    info = { bracket, phase: "pending", target: 0 };
    trials.set(id, info);
    return info;
  }

  /** The highest rung reached at `t` where the trial is not recorded yet (Ray's scan). */
  function newRung(rungs: Rung[], id: string, t: number): number | undefined {
    for (let k = rungs.length - 1; k >= 0; k--) {
      const r = rungs[k];
      if (t >= r.milestone && r.recorded.has(id) && !o.stopLastTrials) return undefined;
      if (t < r.milestone || r.recorded.has(id)) continue;
      return k;
    }
    return undefined;
  }

  /** The scores of a rung that count for its cut-off: diverged trials (-Infinity) do not. */
  function judged(rung: Rung): number[] {
    return [...rung.recorded.values()].filter((v) => v > -Infinity);
  }

  function ranking(rung: Rung): string[] {
    return [...rung.recorded.entries()]
      .map(([id, s], i) => ({ id, s, i }))
      .sort((a, b) => b.s - a.s || a.i - b.i)
      .map((e) => e.id);
  }

  function promotable(rung: Rung, id: string, relaxed: boolean): boolean {
    if (rung.promoted.has(id) || !rung.recorded.has(id)) return false;
    // A diverged trial is never promoted and does not count towards the quota of the others.
    if (rung.recorded.get(id) === -Infinity) return false;
    let quota = Math.floor(judged(rung).length / o.reductionFactor);
    if (relaxed) quota = Math.max(quota, 1);
    return ranking(rung).slice(0, quota).includes(id);
  }

  function reachedMaxT(t: number): string {
    return `ASHA: reached maxT (${o.timeAttr} ${fmt(t)} >= ${fmt(o.maxT)})`;
  }

  function onReportStop(trial: TrialSnapshot, t: number, score: number, tg: Target): Decision {
    const info = add(trial.id);
    info.phase = "running";
    if (t >= o.maxT && o.stopLastTrials) {
      info.phase = "done";
      return stop(reachedMaxT(t), true);
    }
    const rungs = brackets[info.bracket];
    const k = newRung(rungs, trial.id, t);
    if (k === undefined) return CONTINUE;
    const rung = rungs[k];
    // Ray's nanpercentile: diverged peers do not lower the bar for the others.
    const cutoff = percentile(judged(rung), (1 - 1 / o.reductionFactor) * 100);
    const n = rung.recorded.size;
    rung.recorded.set(trial.id, score);
    if (score === -Infinity && n > 0) {
      // A diverged trial loses to any recorded peer, even another diverged one.
      info.phase = "done";
      return stop(
        `ASHA: ${tg.metric} is not a number (the trial diverged) at ${o.timeAttr} ` +
          `${fmt(rung.milestone)}, where ${n} trial(s) are recorded`,
      );
    }
    if (cutoff !== undefined && score < cutoff) {
      info.phase = "done";
      return stop(
        `ASHA: ${tg.metric} ${fmt(metricOf(score, tg))} is worse than the cutoff ` +
          `${fmt(metricOf(cutoff, tg))} (top 1/${fmt(o.reductionFactor)} of ${n} trial(s) at ` +
          `${o.timeAttr} ${fmt(rung.milestone)})`,
      );
    }
    return CONTINUE;
  }

  function onReportPromote(trial: TrialSnapshot, t: number, score: number): Decision {
    const info = add(trial.id);
    info.phase = "running";
    info.pausedAt = undefined;
    if (t >= o.maxT && o.stopLastTrials) {
      info.phase = "done";
      return stop(reachedMaxT(t), true);
    }
    const rungs = brackets[info.bracket];
    const k = newRung(rungs, trial.id, t);
    if (k === undefined) return CONTINUE;
    rungs[k].recorded.set(trial.id, score);
    if (k < info.target) return CONTINUE;
    if (promotable(rungs[k], trial.id, false)) {
      rungs[k].promoted.add(trial.id);
      info.target = k + 1;
      return CONTINUE;
    }
    info.phase = "paused";
    info.pausedAt = k;
    return PAUSE;
  }

  function record(trial: TrialSnapshot, result: TrialResult | undefined): void {
    const info = trials.get(trial.id);
    if (!info || !result || !target) return;
    const t = timeOf(result, o.timeAttr), score = scoreOf(result, target);
    if (t === undefined || score === undefined) return;
    // Ray records the final result too (it informs later cutoffs).
    const rungs = brackets[info.bracket];
    const k = newRung(rungs, trial.id, t);
    if (k !== undefined) rungs[k].recorded.set(trial.id, score);
  }

  function chooseNext(runnable: readonly TrialSnapshot[]): string | undefined {
    const waiting: { id: string; info: TrialInfo }[] = [];
    let fresh: string | undefined;
    for (const snap of runnable) {
      const info = add(snap.id);
      if (info.phase === "done") continue;
      if (info.phase === "paused" && info.pausedAt !== undefined) {
        waiting.push({ id: snap.id, info });
      } else fresh ??= snap.id; // pending, or a stale "running" (the runner says it is not)
    }
    const pick = (relaxed: boolean): string | undefined => {
      let best: { id: string; info: TrialInfo; m: number; s: number } | undefined;
      for (const w of waiting) {
        const rung = brackets[w.info.bracket][w.info.pausedAt!];
        if (!promotable(rung, w.id, relaxed)) continue;
        const s = rung.recorded.get(w.id)!;
        if (!best || rung.milestone > best.m || (rung.milestone === best.m && s > best.s)) {
          best = { ...w, m: rung.milestone, s };
        }
      }
      if (!best) return undefined;
      const k = best.info.pausedAt!;
      brackets[best.info.bracket][k].promoted.add(best.id);
      best.info.target = k + 1;
      best.info.pausedAt = undefined;
      best.info.phase = "running";
      return best.id;
    };
    const promoted = pick(false);
    if (promoted) return promoted;
    if (fresh !== undefined) {
      trials.get(fresh)!.phase = "running";
      return fresh;
    }
    const offered = new Set(runnable.map((t) => t.id));
    if ([...trials].some(([id, t]) => t.phase === "running" && !offered.has(id))) return undefined;
    // Nothing runs and no new trial is left: no rung can grow any more. Let the best of each
    // rung go on (so a line of trials reaches maxT), end the rest.
    const last = pick(true);
    if (last) return last;
    for (const w of waiting) {
      const rung = brackets[w.info.bracket][w.info.pausedAt!];
      const rank = ranking(rung).indexOf(w.id) + 1;
      w.info.phase = "done";
      stops.push({
        trialId: w.id,
        reason: `ASHA: not promoted from the rung at ${o.timeAttr} ${fmt(rung.milestone)} ` +
          `(rank ${rank} of ${rung.recorded.size}) and no trial is left to run`,
      });
    }
    return undefined;
  }

  const scheduler: Scheduler = {
    name: "asha",
    setup(ctx) {
      target = checkContext(FN, ctx);
      rng = new Rng(target.seed);
    },
    onTrialAdd(trial) {
      needSetup(FN, target);
      add(trial.id);
    },
    onReport(trial, result) {
      const tg = needSetup(FN, target);
      const t = timeOf(result, o.timeAttr), score = scoreOf(result, tg);
      if (t === undefined || score === undefined) {
        const info = trials.get(trial.id);
        if (info) info.phase = "running";
        return CONTINUE;
      }
      return o.mode === "stop"
        ? onReportStop(trial, t, score, tg)
        : onReportPromote(trial, t, score);
    },
    onComplete(trial, result) {
      record(trial, result);
      const info = trials.get(trial.id);
      if (info) {
        info.phase = "done";
        info.pausedAt = undefined;
      }
    },
    takeStops() {
      const out = stops;
      stops = [];
      return out;
    },
    snapshot(): JsonValue {
      return {
        kind: "asha",
        version: 1,
        rng: rng.snapshot(),
        trials: [...trials].map(([id, t]) => [
          id,
          t.bracket,
          t.phase,
          t.target,
          t.pausedAt ?? null,
        ]),
        brackets: brackets.map((rungs) =>
          rungs.map((r) => ({
            recorded: [...r.recorded].map(([id, s]) => [id, encodeNumber(s)]),
            promoted: [...r.promoted],
          }))
        ),
        stops: stops.map((s) => ({ trialId: s.trialId, reason: s.reason })),
      };
    },
    restore(state) {
      const s = readSnapshot(FN, "asha", state);
      const b = s.brackets as { recorded: [string, JsonValue][]; promoted: string[] }[][];
      if (!Array.isArray(b) || b.length !== plan.length) {
        throw new TypeError(
          `${FN}: the snapshot has ${Array.isArray(b) ? b.length : "no"} bracket(s), this ` +
            `scheduler ${plan.length}: restore with the options the experiment was started with`,
        );
      }
      rng.restore(s.rng as number[]);
      brackets = fresh();
      b.forEach((rungs, i) =>
        rungs.forEach((r, k) => {
          const rung = brackets[i][k];
          for (const [id, v] of r.recorded) rung.recorded.set(id, decodeNumber(v));
          for (const id of r.promoted) rung.promoted.add(id);
        })
      );
      trials = new Map(
        (s.trials as [string, number, Phase, number, number | null][]).map((
          [id, bracket, phase, tgt, pausedAt],
        ) => [id, { bracket, phase, target: tgt, ...(pausedAt === null ? {} : { pausedAt }) }]),
      );
      stops = (s.stops as StopRequest[]).map((x) => ({ trialId: x.trialId, reason: x.reason }));
    },
  };
  if (o.mode === "promote") scheduler.chooseNext = chooseNext;
  return recordSpec("asha", options, scheduler);
}
