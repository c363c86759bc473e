/**
 * Synchronous HyperBand (Li et al., JMLR 2018), the way Ray Tune's `HyperBandScheduler` runs it:
 * trials pause at their bracket's milestone, and once every trial of the bracket is there the
 * top `ceil(n/eta)` are resumed from their checkpoints and the rest are stopped.
 *
 * @module
 */

import { recordSpec } from "../../core/plugin.ts";
import type { Decision, Scheduler, StopRequest } from "../../core/plugin.ts";
import type { JsonValue } from "../../core/trial.ts";
import {
  booleanOption,
  checkContext,
  checkOptions,
  CONTINUE,
  decodeNumber,
  encodeNumber,
  fmt,
  needSetup,
  numberOption,
  PAUSE,
  readSnapshot,
  scoreOf,
  stop,
  stringOption,
  type Target,
  timeOf,
} from "./_common.ts";

/** Options of {@linkcode hyperbandScheduler}; the defaults are Ray Tune's. */
export interface HyperbandSchedulerOptions {
  /** The result key that measures training progress; it must increase. @default "training_iteration" */
  readonly timeAttr?: string;
  /** The most `timeAttr` a trial may use (`R` of the paper); trials reaching it stop. @default 81 */
  readonly maxT?: number;
  /** `eta`: each halving keeps the top `ceil(n/eta)` and multiplies the budget by `eta`. @default 3 */
  readonly reductionFactor?: number;
  /**
   * Stop the trials of a bracket's last rung when they reach it; `false` lets them run on until
   * the trainable ends (or a stop criterion says so), as Ray's `stop_last_trials=False`.
   * @default true
   */
  readonly stopLastTrials?: boolean;
  /**
   * `false` (Ray's way): a bracket halves as soon as every live trial in it (created and not
   * ended) has reached the milestone, keeping the top `ceil(n/eta)` of the bracket's planned
   * size `n`; a trial that ends early or errors frees its place, and a trial created later
   * joins the newest bracket while it has room and catches up. `true` (the paper's synchronous
   * successive halving): a bracket waits at its first milestone until it holds its `n` trials
   * (or no trial is left to come), keeps the top `ceil(count/eta)` of the trials it has, and
   * takes no trial after its first halving.
   * @default false
   */
  readonly waitForFullBrackets?: boolean;
  /**
   * Fill the bracket with the most halvings (and trials) first, as Ray's `HyperBandForBOHB`
   * (YAML `hyperband_for_bohb` sets this and `waitForFullBrackets`); Ray's HyperBand fills
   * `s = 0` first.
   * @default false
   */
  readonly largestBracketFirst?: boolean;
}

/** One HyperBand bracket as planned: its size, first budget, milestones and survivors. */
export interface HyperbandBracket {
  /** The bracket index `s` (number of halvings). */
  readonly s: number;
  /** How many trials the bracket holds. */
  readonly n: number;
  /** The first milestone (`r` of the paper), in `timeAttr` units. */
  readonly r: number;
  /**
   * The milestones, ascending: `r`, then `floor(min(previous * eta, maxT))` (Ray's
   * arithmetic), so the last is at most `maxT`.
   */
  readonly milestones: readonly number[];
  /** How many trials train towards each milestone (a full bracket): `n`, then `ceil(n/eta)`, ... */
  readonly trials: readonly number[];
}

const FN = "hyperbandScheduler";
const KEYS = [
  "timeAttr",
  "maxT",
  "reductionFactor",
  "stopLastTrials",
  "waitForFullBrackets",
  "largestBracketFirst",
] as const;

interface Resolved {
  timeAttr: string;
  maxT: number;
  eta: number;
  stopLastTrials: boolean;
  full: boolean;
  largestFirst: boolean;
}

function resolve(options: unknown): Resolved {
  const o = checkOptions(FN, options, KEYS);
  return {
    timeAttr: stringOption(FN, o, "timeAttr", "training_iteration"),
    maxT: numberOption(FN, o, "maxT", 81, { minExclusive: 0 }),
    eta: numberOption(FN, o, "reductionFactor", 3, { minExclusive: 1 }),
    stopLastTrials: booleanOption(FN, o, "stopLastTrials", true),
    full: booleanOption(FN, o, "waitForFullBrackets", false),
    largestFirst: booleanOption(FN, o, "largestBracketFirst", false),
  };
}

function plan(o: Resolved): HyperbandBracket[] {
  // Ray: s_max_1 = round(log(max_t)/log(eta)) + 1; n0(s) = ceil(s_max_1/(s+1) * eta^s);
  // r0(s) = int(max_t * eta^-s), brackets with r0 = 0 are skipped.
  const sMax1 = Math.round(Math.log(o.maxT) / Math.log(o.eta)) + 1;
  const out: HyperbandBracket[] = [];
  for (let s = 0; s < sMax1; s++) {
    const n = Math.ceil(sMax1 / (s + 1) * o.eta ** s - 1e-9);
    const r = Math.floor(o.maxT * o.eta ** -s + 1e-9);
    if (r <= 0) continue;
    // Ray's `successive_halving`: r = int(min(r * eta, max_t)) after each halving.
    const milestones = [r];
    for (let i = 0; i < s; i++) {
      milestones.push(Math.floor(Math.min(milestones[i] * o.eta, o.maxT) + 1e-9));
    }
    const trials = [n];
    for (let i = 0; i < s; i++) trials.push(Math.ceil(trials[i] / o.eta - 1e-9));
    out.push({ s, n, r, milestones, trials });
  }
  return out;
}

/**
 * The brackets of one HyperBand band, in the order trials fill them (`s = 0` first, as Ray).
 * With the defaults `(n, r)` are (5, 81), (8, 27), (15, 9), (34, 3), (81, 1).
 *
 * @param options the scheduler's options.
 * @returns one entry per bracket.
 * @throws {TypeError | RangeError} on bad options, as {@linkcode hyperbandScheduler}.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hyperbandBrackets } from "./hyperband.ts";
 * assert.deepEqual(hyperbandBrackets().map((b) => [b.n, b.r]), [[5,81],[8,27],[15,9],[34,3],[81,1]]);
 * ```
 */
export function hyperbandBrackets(options: HyperbandSchedulerOptions = {}): HyperbandBracket[] {
  return plan(resolve(options));
}

type Phase = "pending" | "running" | "waiting" | "ready" | "done";

interface Member {
  readonly id: string;
  phase: Phase;
  time: number;
  score: number;
}

interface Bracket {
  readonly band: number;
  readonly spec: number; // index into the plan
  readonly members: Member[];
  rung: number; // index of the current milestone
  // The bracket's size `n`: Ray's way, the planned size, divided by eta at each halving; the
  // paper's way, the trials it took, then divided likewise.
  keep: number;
  closed: boolean; // halved once (the paper's way takes no new trials then)
  progress: number;
}

/**
 * Synchronous HyperBand.
 *
 * A band holds brackets `s = 0 .. s_max` with `n = ceil(s_max1/(s+1) * eta^s)` trials starting
 * at `r = floor(maxT * eta^-s)`; new trials fill the current bracket, then the next, then a new
 * band (Ray's order). A trial trains to its bracket's milestone and pauses there; when every
 * live trial of the bracket has reached it, the top `ceil(n/eta)` by the metric (their latest
 * result) are resumed through `chooseNext` (least complete bracket first) and the rest end
 * through `takeStops` (or a `stop` decision for the trial that reported last). Milestones are
 * `r`, then `floor(min(previous * eta, maxT))` as in Ray; a trial reaching its bracket's last
 * milestone stops (unless `stopLastTrials: false`, which lets it run on), as does any trial
 * reaching `maxT`.
 *
 * By default a bracket halves the way Ray's does: as soon as its live trials (created, not
 * ended) are all at the milestone, keeping `ceil(n/eta)` of its planned size `n` (so a bracket
 * the experiment never fills may keep everyone); a trial that ends early or errors leaves the
 * bracket, which may then halve at once, and makes room for a later trial, which joins the
 * newest bracket and catches up. This is the default because Tunebox users compare decisions
 * with Ray's. `waitForFullBrackets: true` gives the paper's synchronous successive halving
 * instead: a bracket waits at its first milestone until it holds its `n` trials, or until
 * `chooseNext` is offered no new trial and nothing else can run (then it is judged with the
 * trials it has, keeping `ceil(count/eta)`), and it takes no trial after its first halving.
 *
 * Ray's way asks the runner to keep the newest bracket filled with pending trials (Ray's default
 * variant generator keeps up to 200 pending), so their configs are drawn before the bracket's
 * results exist; with a model-based searcher (TPE, BOHB) prefer `waitForFullBrackets: true`,
 * which creates trials one at a time as slots free up.
 *
 * Differences from Ray:
 * - a trial reaching its bracket's last milestone (or `maxT`) is stopped at once; Ray pauses it
 *   until the whole bracket is there, then stops it (the same trials train the same budget);
 * - a NaN or missing metric ranks last (Ray sorts NaN where Python's `sorted` leaves it);
 * - a trial reporting after the bracket's milestone was already passed (coarse reports) is
 *   judged at once, at the milestone it reached;
 * - fair scheduling orders brackets by the work of their planned milestones; Ray's progress
 *   estimate caps each later budget at `maxT` minus the first milestone (the cumulative form
 *   lives only there: its milestones are `min(r * eta, maxT)`, as here);
 * - `waitForFullBrackets: true` is not in Ray (see above).
 *
 * Needs checkpoints: a paused trial resumes from its latest checkpoint.
 *
 * @param options see {@linkcode HyperbandSchedulerOptions}; defaults are Ray's.
 * @returns the scheduler, named `"hyperband"`.
 * @throws {TypeError} on an unknown option (with a "did you mean") or a value of the wrong type.
 * @throws {RangeError} when `maxT <= 0` or `reductionFactor <= 1`.
 * @example
 * ```ts
 * import { hyperbandScheduler } from "./hyperband.ts";
 * const s = hyperbandScheduler({ maxT: 27, reductionFactor: 3 });
 * s.setup?.({ metric: "loss", mode: "min", seed: 0 });
 * ```
 */
export function hyperbandScheduler(options: HyperbandSchedulerOptions = {}): Scheduler {
  const o = resolve(options);
  const specs = plan(o);
  let target: Target | undefined;
  let brackets: Bracket[] = [];
  let where = new Map<string, number>(); // trial id -> bracket index
  let stops: StopRequest[] = [];

  function totalWork(b: Bracket): number {
    const spec = specs[b.spec];
    let work = 0, prev = 0;
    spec.milestones.forEach((m, i) => {
      work += spec.trials[i] * (m - prev);
      prev = m;
    });
    return work;
  }

  function filled(b: Bracket): boolean {
    // Ray: a bracket is full while its live trials number its current size; the paper's way
    // counts every trial it ever took, and a halved bracket takes none.
    if (o.full) return b.closed || b.members.length >= specs[b.spec].n;
    return live(b).length >= b.keep;
  }

  function add(id: string): Member {
    const known = where.get(id);
    if (known !== undefined) return brackets[known].members.find((m) => m.id === id)!;
    let b = brackets.at(-1);
    if (!b || filled(b)) {
      // Ray fills s = 0 (fewest trials) first; HyperBandForBOHB the largest bracket first.
      const step = o.largestFirst ? -1 : 1, first = o.largestFirst ? specs.length - 1 : 0;
      const inBand = b && specs[b.spec + step] !== undefined;
      const band = b ? (inBand ? b.band : b.band + 1) : 0;
      const spec = b && inBand ? b.spec + step : first;
      b = {
        band,
        spec,
        members: [],
        rung: 0,
        keep: o.full ? 0 : specs[spec].n,
        closed: false,
        progress: 0,
      };
      brackets.push(b);
    }
    const m: Member = { id, phase: "pending", time: 0, score: -Infinity };
    b.members.push(m);
    if (o.full) b.keep = b.members.length;
    where.set(id, brackets.length - 1);
    return m;
  }

  function live(b: Bracket): Member[] {
    return b.members.filter((m) => m.phase !== "done");
  }

  function milestone(b: Bracket): number {
    return specs[b.spec].milestones[b.rung];
  }

  function isLast(b: Bracket): boolean {
    return b.rung === specs[b.spec].milestones.length - 1;
  }

  /**
   * Halves the bracket while every live trial has reached its milestone. Returns the decision
   * for `reporter` when it takes part.
   */
  function process(b: Bracket, reporter: string | undefined, force = false): Decision | undefined {
    let decision: Decision | undefined;
    for (;;) {
      const alive = live(b);
      if (!alive.length) return decision;
      const m = milestone(b);
      if (isLast(b)) {
        // Trials at the last milestone are done; the reporter's stop is decided by the caller.
        return decision;
      }
      if (alive.some((x) => x.time < m)) return decision;
      // The paper's way: a bracket that may still get trials waits for them (the runner creates
      // trials as slots free up); `force` says none will come.
      if (o.full && !b.closed && !force && b.members.length < specs[b.spec].n) return decision;
      // Everyone is at the milestone: keep the top ceil(n/eta).
      const keep = Math.ceil(b.keep / o.eta - 1e-9);
      const ranked = alive
        .map((x, i) => ({ x, i }))
        .sort((p, q) => q.x.score - p.x.score || p.i - q.i)
        .map((p) => p.x);
      const good = ranked.slice(0, keep), bad = ranked.slice(keep);
      const spec = specs[b.spec];
      for (const x of bad) {
        x.phase = "done";
        const reason = `HyperBand: not in the top ${keep} (ceil(${b.keep}/${fmt(o.eta)})) of ` +
          `the ${alive.length} trial(s) at ${o.timeAttr} ${fmt(m)} (bracket s=${spec.s}, band ` +
          `${b.band})`;
        if (x.id === reporter) decision = stop(reason);
        else stops.push({ trialId: x.id, reason });
      }
      b.closed = true;
      b.rung++;
      b.keep = keep;
      const next = milestone(b);
      const stopHere = isLast(b) && o.stopLastTrials;
      for (const x of good) {
        if (x.time >= next && stopHere) {
          // Already past the last milestone (coarse reports): nothing left to do.
          x.phase = "done";
          if (x.id === reporter) decision = stop(atLast(x.time, next), true);
          else stops.push({ trialId: x.id, reason: atLast(x.time, next) });
        } else if (x.time >= next && !isLast(b)) {
          x.phase = "waiting"; // already at the next milestone (coarse reports)
          if (x.id === reporter) decision = PAUSE;
        } else if (x.id === reporter) {
          x.phase = "running";
          decision = CONTINUE;
        } else x.phase = "ready";
      }
    }
  }

  function atLast(t: number, m: number): string {
    return m >= o.maxT
      ? `HyperBand: reached maxT (${o.timeAttr} ${fmt(t)} >= ${fmt(o.maxT)})`
      : `HyperBand: reached the bracket's last milestone (${o.timeAttr} ${fmt(t)} >= ${fmt(m)})`;
  }

  return recordSpec("hyperband", options, {
    name: "hyperband",
    /**
     * Ray's way keeps the newest bracket filled with pending trials, as Ray's default variant
     * generator keeps up to 200 trials pending: a bracket halves when its trials, not only the
     * running ones, have reached the milestone. The paper's way needs none ahead (its brackets
     * wait), so a model-based searcher (BOHB, TPE) draws each config as late as possible. A
     * getter: the runner reads it before creating trials.
     */
    get pendingTrials(): number {
      if (o.full) return 1;
      let pending = 0;
      for (const b of brackets) for (const m of b.members) if (m.phase === "pending") pending++;
      const b = brackets.at(-1);
      const room = b && !filled(b) ? b.keep - live(b).length : 0;
      return Math.max(1, pending + room);
    },
    setup(ctx) {
      target = checkContext(FN, ctx);
    },
    onTrialAdd(trial) {
      needSetup(FN, target);
      add(trial.id);
    },
    onReport(trial, result) {
      const tg = needSetup(FN, target);
      const member = add(trial.id);
      const b = brackets[where.get(trial.id)!];
      if (member.phase === "done") return CONTINUE;
      member.phase = "running";
      const t = timeOf(result, o.timeAttr);
      if (t === undefined) return CONTINUE;
      b.progress += Math.max(0, t - member.time);
      member.time = t;
      member.score = scoreOf(result, tg) ?? -Infinity;
      if (o.stopLastTrials && t >= o.maxT) {
        member.phase = "done";
        const d = stop(atLast(t, o.maxT), true);
        process(b, undefined);
        return d;
      }
      if (t < milestone(b)) return CONTINUE;
      if (isLast(b)) {
        // Ray's `stop_last_trials=False`: the last rung runs on until the trainable ends.
        if (!o.stopLastTrials) return CONTINUE;
        member.phase = "done";
        const d = stop(atLast(t, milestone(b)), true);
        process(b, undefined);
        return d;
      }
      member.phase = "waiting";
      const d = process(b, trial.id);
      if (d) return d;
      return PAUSE;
    },
    onComplete(trial) {
      const i = where.get(trial.id);
      if (i === undefined) return;
      const b = brackets[i];
      const member = b.members.find((m) => m.id === trial.id)!;
      if (member.phase === "done") return;
      member.phase = "done";
      process(b, undefined);
    },
    chooseNext(runnable) {
      const ids = new Set(runnable.map((t) => t.id));
      for (const t of runnable) add(t.id);
      const pick = choose(ids);
      if (pick !== undefined) return pick;
      // Nothing to run and no new trial offered: no trial will join the unfilled brackets, so
      // judge them with the trials they have.
      for (const b of brackets) {
        if (!b.closed && live(b).length) process(b, undefined, true);
      }
      return choose(ids);
    },
    takeStops() {
      const out = stops;
      stops = [];
      return out;
    },
    snapshot(): JsonValue {
      return {
        kind: "hyperband",
        version: 1,
        brackets: brackets.map((b) => ({
          band: b.band,
          spec: b.spec,
          rung: b.rung,
          keep: b.keep,
          closed: b.closed,
          progress: b.progress,
          members: b.members.map((m) => [m.id, m.phase, m.time, encodeNumber(m.score)]),
        })),
        stops: stops.map((s) => ({ trialId: s.trialId, reason: s.reason })),
      };
    },
    restore(state) {
      const s = readSnapshot(FN, "hyperband", state);
      const bs = s.brackets as {
        band: number;
        spec: number;
        rung: number;
        keep: number;
        closed: boolean;
        progress: number;
        members: [string, Phase, number, JsonValue][];
      }[];
      if (bs.some((b) => !specs[b.spec] || b.rung >= specs[b.spec].milestones.length)) {
        throw new TypeError(
          `${FN}: the snapshot does not fit this scheduler's brackets: restore with the options ` +
            `the experiment was started with`,
        );
      }
      brackets = bs.map((b) => ({
        band: b.band,
        spec: b.spec,
        rung: b.rung,
        keep: b.keep,
        closed: b.closed,
        progress: b.progress,
        members: b.members.map(([id, phase, time, score]) => ({
          id,
          phase,
          time,
          score: decodeNumber(score),
        })),
      }));
      where = new Map();
      brackets.forEach((b, i) => b.members.forEach((m) => where.set(m.id, i)));
      stops = (s.stops as StopRequest[]).map((x) => ({ trialId: x.trialId, reason: x.reason }));
    },
  });

  function choose(ids: ReadonlySet<string>): string | undefined {
    // Fair scheduling (Ray): within each band, the least complete bracket first.
    const order = brackets
      .map((b, i) => ({ b, i, c: completion(b) }))
      .sort((p, q) => p.b.band - q.b.band || p.c - q.c || p.i - q.i);
    for (const { b } of order) {
      for (const m of b.members) {
        // "running" here means a stale view: the runner says it is not running.
        if (ids.has(m.id) && m.phase !== "waiting" && m.phase !== "done") {
          m.phase = "running";
          return m.id;
        }
      }
    }
    return undefined;
  }

  function completion(b: Bracket): number {
    if (!live(b).length) return 1;
    return Math.min(b.progress / totalWork(b), 1);
  }
}
