/**
 * Synchronous HyperBand (Li et al., JMLR 2018), the way Ray Tune's `HyperBandScheduler` runs it:
 * trials pause at their bracket's milestone, and once every trial of the bracket is there the
 * top `ceil(n/eta)` are resumed from their checkpoints and the rest are stopped.
 *
 * @module
 */

import type { Decision, Scheduler, StopRequest } from "../../core/plugin.ts";
import type { JsonValue } from "../../core/trial.ts";
import {
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
}

/** One HyperBand bracket as planned: its size, first budget, milestones and survivors. */
export interface HyperbandBracket {
  /** The bracket index `s` (number of halvings). */
  readonly s: number;
  /** How many trials the bracket holds. */
  readonly n: number;
  /** The first milestone (`r` of the paper), in `timeAttr` units. */
  readonly r: number;
  /** The milestones, ascending; the last is `maxT`. */
  readonly milestones: readonly number[];
  /** How many trials train towards each milestone (a full bracket): `n`, then `ceil(n/eta)`, ... */
  readonly trials: readonly number[];
}

const FN = "hyperbandScheduler";
const KEYS = ["timeAttr", "maxT", "reductionFactor"] as const;

interface Resolved {
  timeAttr: string;
  maxT: number;
  eta: number;
}

function resolve(options: unknown): Resolved {
  const o = checkOptions(FN, options, KEYS);
  return {
    timeAttr: stringOption(FN, o, "timeAttr", "training_iteration"),
    maxT: numberOption(FN, o, "maxT", 81, { minExclusive: 0 }),
    eta: numberOption(FN, o, "reductionFactor", 3, { minExclusive: 1 }),
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
    const milestones: number[] = [];
    for (let i = 0; i < s; i++) milestones.push(Math.min(r * o.eta ** i, o.maxT));
    milestones.push(o.maxT);
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
 * import { hyperbandBrackets } from "./hyperband.ts";
 * console.log(hyperbandBrackets().map((b) => [b.n, b.r])); // [[5,81],[8,27],[15,9],[34,3],[81,1]]
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
  keep: number; // trials allowed towards the current milestone
  closed: boolean; // halved once: no new trials
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
 * `r, r*eta, ...` and finally `maxT`; a trial reaching `maxT` stops.
 *
 * A bracket that is not full yet waits for new trials at its first milestone; when
 * `chooseNext` is offered no new trial and nothing else can run, it is judged with the trials
 * it has, keeping `ceil(count/eta)`, so a short experiment still gets early stopping.
 *
 * Differences from Ray: milestones grow as in the paper, `r * eta^i` up to `maxT` (Ray's
 * bookkeeping caps later milestones at `maxT - previous milestone`, e.g. 54 instead of 81 for
 * the defaults); a bracket that has halved once takes no new trials (Ray lets late trials join
 * and catch up); a NaN or missing metric ranks last; a trial reporting after the bracket's
 * milestone was already passed is judged at once.
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

  function add(id: string): Member {
    const known = where.get(id);
    if (known !== undefined) return brackets[known].members.find((m) => m.id === id)!;
    let b = brackets.at(-1);
    if (!b || b.closed || b.members.length >= specs[b.spec].n) {
      const band = b ? (b.spec + 1 < specs.length ? b.band : b.band + 1) : 0;
      const spec = b && b.band === band ? b.spec + 1 : 0;
      b = { band, spec, members: [], rung: 0, keep: 0, closed: false, progress: 0 };
      brackets.push(b);
    }
    const m: Member = { id, phase: "pending", time: 0, score: -Infinity };
    b.members.push(m);
    b.keep = b.members.length;
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
        // Trials at maxT are done; the reporter's stop is decided by the caller.
        return decision;
      }
      if (alive.some((x) => x.time < m)) return decision;
      // A bracket that may still get trials waits for them (the runner creates trials as slots
      // free up); `force` says none will come.
      if (!b.closed && !force && b.members.length < specs[b.spec].n) return decision;
      // Everyone is at the milestone: keep the top ceil(keep/eta).
      const keep = Math.ceil(b.keep / o.eta - 1e-9);
      const ranked = alive
        .map((x, i) => ({ x, i }))
        .sort((p, q) => q.x.score - p.x.score || p.i - q.i)
        .map((p) => p.x);
      const good = ranked.slice(0, keep), bad = ranked.slice(keep);
      const spec = specs[b.spec];
      for (const x of bad) {
        x.phase = "done";
        const reason = `HyperBand: not in the top ${keep} of ${b.keep} trial(s) at ` +
          `${o.timeAttr} ${fmt(m)} (bracket s=${spec.s}, band ${b.band})`;
        if (x.id === reporter) decision = stop(reason);
        else stops.push({ trialId: x.id, reason });
      }
      b.closed = true;
      b.rung++;
      b.keep = keep;
      const next = milestone(b);
      for (const x of good) {
        if (x.time >= next) {
          x.phase = "waiting"; // already at the next milestone (coarse reports)
          if (x.id === reporter) decision = PAUSE;
        } else if (x.id === reporter) {
          x.phase = "running";
          decision = CONTINUE;
        } else x.phase = "ready";
      }
      if (isLast(b)) {
        // Paused trials already past maxT have nothing left to do.
        for (const x of good) {
          if (x.id !== reporter && x.time >= next) {
            x.phase = "done";
            stops.push({ trialId: x.id, reason: atMaxT(x.time) });
          }
        }
      }
    }
  }

  function atMaxT(t: number): string {
    return `HyperBand: reached maxT (${o.timeAttr} ${fmt(t)} >= ${fmt(o.maxT)})`;
  }

  return {
    name: "hyperband",
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
      if (t < milestone(b)) return CONTINUE;
      if (t >= o.maxT || isLast(b)) {
        member.phase = "done";
        const d = stop(atMaxT(t), true);
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
  };

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
