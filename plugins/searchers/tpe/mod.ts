/**
 * A Tree-structured Parzen Estimator (Bergstra et al. 2011) in the manner of hyperopt and
 * Optuna 5, for every domain of a Tunebox space including conditional sub-spaces.
 *
 * The state is explicit: {@linkcode TpeModel} holds the parameters, the observations
 * (`_observations.ts`) and the estimator factory (`_parzen.ts`); the searcher adds grids, preset
 * points, running trials and snapshots around it. GP and CMA-ES use a univariate
 * {@linkcode TpeModel} for the parameters they do not model themselves.
 *
 * @module
 */

import { recordSpec } from "../../../core/plugin.ts";
import type { Searcher, SearcherContext } from "../../../core/plugin.ts";
import { lossVector } from "../../../core/pareto.ts";
import type { Config, JsonValue, TrialResult } from "../../../core/trial.ts";
import { Rng } from "../../../core/random.ts";
import { parameters, type ParamInfo, type Space } from "../../../core/space.ts";
import {
  addGridPoint,
  buildConfig,
  checkOptionKeys,
  checkPoints,
  checkSeed,
  type GridPlan,
  gridPlan,
  isDrawable,
  presetAssignment,
  sampleAssignment,
  stateObject,
} from "../_assignment.ts";
import { active, type Dim, makeDim, toExternal, toInternal } from "./_dims.ts";
import { Observations } from "./_observations.ts";
import { logSumExp, Parzen, type ParzenSettings, pickKernel } from "./_parzen.ts";

/** Options of {@linkcode tpeSearcher}. */
export interface TpeSearcherOptions {
  /**
   * Random trials before the model takes over (counted in finished trials, stopped ones
   * included). itwinai's `n_random_steps` is accepted in YAML as an alias.
   * @default 10
   */
  readonly initialPoints?: number;
  /**
   * Candidates drawn from the "good" density l(x) per suggestion; the one maximising
   * l(x)/g(x) is suggested.
   * @default 24 (48 with several objectives)
   */
  readonly candidates?: number;
  /**
   * How many finished trials form the "good" set: a number β means `min(ceil(β·n), 25)`
   * (Optuna's rule, with β = 0.1); a function maps the number of finished trials to the count
   * (hyperopt's is `(n) => Math.min(Math.ceil(0.25 * Math.sqrt(n)), 25)`).
   * @default 0.15
   */
  readonly gamma?: number | ((n: number) => number);
  /**
   * Weight of the prior kernel (a wide kernel at the domain centre; a uniform row for choices)
   * relative to one observation.
   * @default 1
   */
  readonly priorWeight?: number;
  /**
   * Model all parameters jointly (one kernel per observation over every parameter, as Optuna 5)
   * instead of one independent density per parameter (as hyperopt).
   * @default true (false with several objectives, as Optuna's MOTPE)
   */
  readonly multivariate?: boolean;
  /**
   * Count trials that are still running as bad observations, so that concurrent suggestions
   * spread out.
   * @default true
   */
  readonly constantLiar?: boolean;
  /** Let the domain bounds widen the kernels of the smallest and largest observation. @default false */
  readonly considerEndpoints?: boolean;
  /** Floor each kernel width at range / min(100, observations + 2)^exponent. @default true */
  readonly considerMagicClip?: boolean;
  /** The exponent of the magic clip's floor (1 in hyperopt and Optuna). @default 1 */
  readonly magicClipExponent?: number;
  /**
   * Weights of the observations: `"forgetting"` ramps down all but the newest 25 (hyperopt and
   * Optuna), `"uniform"` weighs them equally, `"ei"` weighs each good observation by how far it
   * beats the best bad one (Watanabe 2023; the bad ones as `"forgetting"`).
   * @default "ei"
   */
  readonly weights?: "forgetting" | "uniform" | "ei";
  /**
   * Kernel widths: `"scott"` is Scott's rule over each group, one width per parameter and group,
   * 1.059·min(IQR/1.34, sd)·n^(−1/5) (Watanabe 2023's recommendation; it keeps the good density
   * tight in 6–10 dimensions, see BENCHMARKS.md); `"gap"` is the larger distance to a
   * neighbouring observation (hyperopt and Optuna).
   * @default "scott"
   */
  readonly bandwidth?: "gap" | "scott";
  /**
   * Smallest kernel width, as a fraction of the parameter's range (the magic clip's floor is
   * range / min(100, observations + 2); the larger of the two applies).
   * @default 0
   */
  readonly minBandwidth?: number;
  /**
   * Configs to try first (partial ones are completed at random); they count as startup trials.
   * @default []
   */
  readonly pointsToEvaluate?: readonly Config[];
  /**
   * Seed of this searcher's random stream.
   * @default the experiment seed
   */
  readonly seed?: number;
}

const OPTION_KEYS = [
  "initialPoints",
  "candidates",
  "gamma",
  "priorWeight",
  "multivariate",
  "constantLiar",
  "considerEndpoints",
  "considerMagicClip",
  "magicClipExponent",
  "weights",
  "bandwidth",
  "minBandwidth",
  "pointsToEvaluate",
  "seed",
] as const;

/** The model settings of a {@linkcode TpeModel}. */
export interface TpeSettings extends ParzenSettings {
  /** Candidates per suggestion. */
  readonly candidates: number;
  /** Size of the good set for n observations. */
  readonly gamma: (n: number) => number;
  /** Joint (true) or per-parameter (false) densities. */
  readonly multivariate: boolean;
}

/** A running trial as the searcher tracks it. */
interface PendingTrial {
  vals: Float64Array;
  lastIter?: number;
  lastValue?: number;
  /** Multi-objective: the last reported loss vector (undefined: an objective missing). */
  lastVec?: number[] | undefined;
}

/**
 * The TPE proper, as an explicit state object: the modelled parameters, their observations and
 * the estimators. Values are internal (log where log-scaled, option indices for choices; NaN for
 * an inactive parameter).
 */
export class TpeModel {
  /** The modelled parameters. */
  readonly dims: readonly Dim[];
  /** Dim index by parameter key. */
  readonly dimOf: ReadonlyMap<string, number>;
  /** The finished trials. */
  readonly obs: Observations;
  private readonly parzen: Parzen;

  /** A model of the drawable parameters of `params` (parents before children). */
  constructor(params: readonly ParamInfo[], readonly settings: TpeSettings, who = "tpeSearcher") {
    const dims: Dim[] = [];
    const dimOf = new Map<string, number>();
    for (const p of params) {
      if (!isDrawable(p)) continue;
      const cond = p.condition
        ? { dim: dimOf.get(p.condition.key)!, index: p.condition.index }
        : undefined;
      dimOf.set(p.key, dims.length);
      dims.push(makeDim(p, cond, who));
    }
    this.dims = dims;
    this.dimOf = dimOf;
    this.obs = new Observations(dims);
    this.parzen = new Parzen(dims, this.obs, settings);
  }

  /** Number of modelled parameters. */
  get D(): number {
    return this.dims.length;
  }

  /** An assignment's values in internal units (NaN for inactive or absent parameters). */
  internalOf(a: ReadonlyMap<string, unknown>): Float64Array {
    const D = this.dims.length;
    const x = new Float64Array(D).fill(NaN);
    for (let p = 0; p < D; p++) {
      const d = this.dims[p];
      if (!active(d, x)) continue;
      const v = a.get(d.key);
      if (typeof v === "number") x[p] = toInternal(d, v);
    }
    return x;
  }

  /** Adds the internal values of `x` to an assignment (keys already there are kept). */
  assignInto(x: Float64Array, a: Map<string, unknown>): Map<string, unknown> {
    for (let p = 0; p < this.dims.length; p++) {
      const d = this.dims[p];
      if (Number.isNaN(x[p]) || a.has(d.key)) continue;
      a.set(d.key, d.kind === "cat" ? x[p] : toExternal(d, x[p]));
    }
    return a;
  }

  /**
   * Suggests values for the active parameters that `fixed` (an assignment) does not hold,
   * counting `pending` (internal vectors of running trials) as bad observations.
   */
  suggest(
    rng: Rng,
    fixed: ReadonlyMap<string, unknown>,
    pending: readonly Float64Array[],
  ): Float64Array {
    const { dims, obs, parzen, settings } = this;
    const D = dims.length;
    const nBelow = settings.gamma(obs.n);
    const { good, bad, threshold } = obs.multiObjective
      ? obs.splitMulti(nBelow)
      : obs.split(nBelow);
    const badMembers = [...bad, ...pending.map((_, i) => -1 - i)];
    const x = new Float64Array(D).fill(NaN);
    // Values a point, the grid or another model fixed are taken as they are.
    const fixedDim = new Uint8Array(D);
    for (const [key, v] of fixed) {
      const p = this.dimOf.get(key);
      if (p !== undefined && typeof v === "number") {
        x[p] = toInternal(dims[p], v);
        fixedDim[p] = 1;
      }
    }
    const nc = settings.candidates;
    if (settings.multivariate) {
      const all = dims.map((_, p) => p);
      const l = parzen.fit(all, good, [], true, threshold);
      const g = parzen.fit(all, badMembers, pending, false, threshold);
      const accL = new Float64Array(l.n), accG = new Float64Array(g.n);
      let best: Float64Array | undefined, bestScore = -Infinity;
      for (let c = 0; c < nc; c++) {
        const j = pickKernel(rng, l.cumw);
        const cand = Float64Array.from(x);
        for (let p = 0; p < D; p++) {
          if (fixedDim[p] || !active(dims[p], cand)) continue;
          cand[p] = parzen.drawFrom(rng, p, l.parts[p]!, j);
        }
        accL.set(l.logw);
        accG.set(g.logw);
        for (let p = 0; p < D; p++) {
          if (Number.isNaN(cand[p]) || fixedDim[p] || !active(dims[p], cand)) continue;
          parzen.addLogPdf(p, l.parts[p]!, cand[p], accL, l.n);
          parzen.addLogPdf(p, g.parts[p]!, cand[p], accG, g.n);
        }
        const score = logSumExp(accL, l.n) - logSumExp(accG, g.n);
        if (score > bestScore || best === undefined) [best, bestScore] = [cand, score];
      }
      return best!;
    }
    // Univariate (hyperopt): one density per parameter, fitted on the trials where it was active,
    // decided in tree order so that a branch's parameters follow its choice.
    for (let p = 0; p < D; p++) {
      if (fixedDim[p] || !active(dims[p], x)) continue;
      const has = (r: number) => !Number.isNaN(r >= 0 ? obs.value(r, p) : pending[-1 - r][p]);
      const l = parzen.fit([p], good.filter(has), [], true, threshold);
      const g = parzen.fit([p], badMembers.filter(has), pending, false, threshold);
      const part = l.parts[p]!, gpart = g.parts[p]!;
      const accL = new Float64Array(l.n), accG = new Float64Array(g.n);
      let bestV = NaN, bestScore = -Infinity;
      for (let c = 0; c < nc; c++) {
        const v = parzen.drawFrom(rng, p, part, pickKernel(rng, l.cumw));
        accL.set(l.logw);
        accG.set(g.logw);
        parzen.addLogPdf(p, part, v, accL, l.n);
        parzen.addLogPdf(p, gpart, v, accG, g.n);
        const score = logSumExp(accL, l.n) - logSumExp(accG, g.n);
        if (score > bestScore || Number.isNaN(bestV)) [bestV, bestScore] = [v, score];
      }
      x[p] = bestV;
    }
    return x;
  }
}

/** The settings of {@linkcode TpeModel} from checked options (defaults filled in). */
export function tpeSettings(F: string, o: Record<string, unknown>): TpeSettings {
  const priorWeight = numberOption(F, "priorWeight", o.priorWeight, 1);
  if (priorWeight <= 0) {
    throw new RangeError(`${F}: "priorWeight" must be > 0, got ${priorWeight}`);
  }
  const clipExponent = numberOption(F, "magicClipExponent", o.magicClipExponent, 1);
  if (clipExponent <= 0) {
    throw new RangeError(`${F}: "magicClipExponent" must be > 0, got ${clipExponent}`);
  }
  const weights = o.weights ?? "ei";
  if (weights !== "forgetting" && weights !== "uniform" && weights !== "ei") {
    throw new TypeError(
      `${F}: "weights" must be "forgetting", "uniform" or "ei", got ${JSON.stringify(weights)}`,
    );
  }
  const bandwidth = o.bandwidth ?? "scott";
  if (bandwidth !== "gap" && bandwidth !== "scott") {
    throw new TypeError(
      `${F}: "bandwidth" must be "gap" or "scott", got ${JSON.stringify(bandwidth)}`,
    );
  }
  const minBandwidth = numberOption(F, "minBandwidth", o.minBandwidth, 0);
  if (minBandwidth < 0 || minBandwidth > 1) {
    throw new RangeError(`${F}: "minBandwidth" must be in [0, 1], got ${minBandwidth}`);
  }
  return {
    candidates: intOption(F, "candidates", o.candidates, 24, 1),
    gamma: gammaOption(F, o.gamma),
    priorWeight,
    multivariate: boolOption(F, "multivariate", o.multivariate, true),
    considerEndpoints: boolOption(F, "considerEndpoints", o.considerEndpoints, false),
    magicClip: boolOption(F, "considerMagicClip", o.considerMagicClip, true),
    clipExponent,
    weights,
    bandwidth,
    minBandwidth,
  };
}

/**
 * A Tree-structured Parzen Estimator searcher. After `initialPoints` random trials, it splits
 * the finished trials into a good set (the best `gamma`) and the rest, fits a Parzen density to
 * each, and suggests the candidate drawn from the good density that maximises good/bad density.
 *
 * - Every domain: floats (log, quantized), integers (log, quantized; likelihoods are the mass of
 *   the value's cell), normals, choices; grids are expanded as Ray does, `sampleFrom` resolved.
 * - Conditional sub-spaces (a `choice` of objects holding domains): each parameter is modelled on
 *   the trials where it was active; a kernel of a trial without it uses the prior there.
 * - Parallel trials: running trials count as bad observations (constant liar), so concurrent
 *   suggestions differ.
 * - Trials a scheduler stopped early rank after the ones that ran their full length, by how far
 *   they got and then by their last result (as Optuna ranks pruned trials).
 * - Several objectives (`metric: ["a", "b"]`): MOTPE, as Optuna's. The good set is filled with
 *   whole non-dominated fronts and the front that does not fit is cut by greedy hypervolume
 *   subset selection; each good trial weighs its hypervolume contribution (with `weights: "ei"`).
 *   Its defaults differ: `multivariate: false` and `candidates: 48`.
 * - Seeded and reproducible; `snapshot()`/`restore()` carry every observation and running trial.
 *
 * @param options model settings, points to try first, seed.
 * @returns a searcher named `"tpe"`.
 * @throws {TypeError} on an unknown option or a value of the wrong type.
 * @throws {RangeError} on a value out of range (e.g. `candidates: 0`).
 * @example
 * ```ts
 * import { tpeSearcher } from "./mod.ts";
 * import { uniform } from "../../../core/space.ts";
 * const s = tpeSearcher({ initialPoints: 5 });
 * s.setup?.({ space: { x: uniform(-5, 5) }, metric: "loss", mode: "min", seed: 1, numSamples: 30 });
 * for (let i = 0; i < 30; i++) {
 *   const c = s.suggest(`t${i}`) as { x: number };
 *   s.onComplete?.(`t${i}`, {
 *     loss: (c.x - 2) ** 2, training_iteration: 1, time_total_s: 0, time_this_iter_s: 0,
 *     timestamp: 0, trial_id: `t${i}`,
 *   });
 * }
 * ```
 */
export function tpeSearcher(options: TpeSearcherOptions = {}): Searcher {
  const F = "tpeSearcher";
  const o = checkOptionKeys(F, options, OPTION_KEYS);
  const initialPoints = intOption(F, "initialPoints", o.initialPoints, 10, 1);
  const settings = tpeSettings(F, o);
  // Several objectives: univariate densities and 48 candidates unless set (as Optuna's MOTPE is
  // univariate; measured better on DTLZ2 and level or better on ZDT1–3, see BENCHMARKS.md).
  const moSettings = tpeSettings(F, {
    ...o,
    multivariate: o.multivariate ?? false,
    candidates: o.candidates ?? 48,
  });
  const constantLiar = boolOption(F, "constantLiar", o.constantLiar, true);
  const points = checkPoints(F, o.pointsToEvaluate);
  const seedOption = checkSeed(F, o.seed);

  // Set up by setup().
  let space: Space | undefined;
  let params: ParamInfo[] = [];
  let model = new TpeModel([], settings);
  let presets: Map<string, unknown>[] = [];
  let plan: GridPlan = { keys: [], values: [], size: 1 };
  let limit = -1; // suggestions before "done" (-1: none)
  let metric = "loss";
  let sign = 1;
  // Multi-objective (MOTPE): every objective and its sign; empty for one objective.
  let metrics: readonly string[] = [];
  let modes: readonly ("min" | "max")[] = [];
  const vecOf = (r: TrialResult): number[] | undefined =>
    lossVector(r as Record<string, unknown>, metrics, modes);
  let rng = new Rng(0);
  let count = 0;
  const pending = new Map<string, PendingTrial>();
  let restored: Record<string, JsonValue> | undefined;

  const applyState = (s: Record<string, JsonValue>): void => {
    const D = model.D;
    if (s.dims !== D) {
      throw new TypeError(
        `${F}: the snapshot has ${s.dims} parameters but the space has ${D}; restore with the same space`,
      );
    }
    rng.restore(s.rng as number[]);
    count = s.count as number;
    model.obs.reset();
    for (const ob of s.obs as JsonValue[][]) {
      const [v, l, it, st, vec] = ob as [
        (number | null)[],
        number | null,
        number,
        boolean,
        number[] | null | undefined,
      ];
      model.obs.add(
        Float64Array.from(v, (y) => (y === null ? NaN : y)),
        l ?? Infinity,
        it,
        st,
        vec ?? undefined,
      );
    }
    pending.clear();
    for (const pr of s.pending as JsonValue[][]) {
      const [id, v, it, lv, vec] = pr as [
        string,
        (number | null)[],
        number | null,
        number | null,
        number[] | null | undefined,
      ];
      pending.set(id, {
        vals: Float64Array.from(v, (y) => (y === null ? NaN : y)),
        ...(it !== null ? { lastIter: it } : {}),
        ...(lv !== null ? { lastValue: lv } : {}),
        ...(vec ? { lastVec: vec } : {}),
      });
    }
  };

  const nullIfNaN = (v: number): number | null => (Number.isFinite(v) ? v : null);

  return recordSpec("tpe", options, {
    name: "tpe",
    multiObjective: true,
    setup(ctx: SearcherContext): void {
      space = ctx.space;
      params = parameters(space);
      plan = gridPlan(params);
      const multi = ctx.metrics !== undefined && ctx.metrics.length > 1;
      model = new TpeModel(params, multi ? moSettings : settings);
      metrics = multi ? ctx.metrics! : [];
      modes = multi ? ctx.modes ?? ctx.metrics!.map(() => ctx.mode) : [];
      model.obs.multiObjective = multi;
      presets = points.map((pt, i) =>
        presetAssignment(ctx.space, pt, `${F}: "pointsToEvaluate[${i}]"`)
      );
      limit = ctx.numSamples < 0 ? -1 : ctx.numSamples * plan.size;
      if (limit >= 0) limit = Math.max(limit, points.length);
      metric = ctx.metric;
      sign = ctx.mode === "max" ? -1 : 1;
      rng = new Rng(seedOption ?? ctx.seed);
      count = 0;
      pending.clear();
      if (restored) applyState(restored);
      restored = undefined;
    },
    suggest(trialId: string): Config | "done" {
      if (!space) throw new Error(`${F}: suggest() was called before setup()`);
      if (limit >= 0 && count >= limit) return "done";
      const i = count++;
      const fixed = new Map<string, unknown>();
      addGridPoint(plan, i % plan.size, fixed);
      if (i < presets.length) { for (const [k, v] of presets[i]) fixed.set(k, v); }
      let a: Map<string, unknown>;
      if (i < presets.length || model.obs.n < initialPoints || model.D === 0) {
        a = sampleAssignment(params, rng, fixed);
      } else {
        const pend = constantLiar ? [...pending.values()].map((t) => t.vals) : [];
        a = model.assignInto(model.suggest(rng, fixed, pend), new Map(fixed));
      }
      pending.set(trialId, { vals: model.internalOf(a) });
      return buildConfig(space, rng, a, i < points.length ? points[i] : undefined);
    },
    onReport(trialId: string, result: TrialResult): void {
      const t = pending.get(trialId);
      if (!t) return;
      const v = result[metric];
      t.lastIter = result.training_iteration;
      t.lastValue = typeof v === "number" ? v : NaN;
      if (metrics.length) t.lastVec = vecOf(result);
    },
    onComplete(
      trialId: string,
      final: TrialResult | undefined,
      info?: { readonly error?: boolean; readonly stopped?: boolean },
    ): void {
      const t = pending.get(trialId);
      if (!t) return;
      pending.delete(trialId);
      if (info?.error) return;
      let value: unknown = t.lastValue, iter = t.lastIter, vec = t.lastVec;
      if (final) {
        value = final[metric];
        iter = final.training_iteration;
        if (metrics.length) vec = vecOf(final);
      }
      if (iter === undefined) return; // never reported: nothing to learn
      const l = typeof value === "number" && Number.isFinite(value) ? sign * value : Infinity;
      model.obs.add(t.vals, l, typeof iter === "number" ? iter : 1, info?.stopped === true, vec);
    },
    snapshot(): JsonValue {
      const { obs } = model;
      const D = model.D;
      const list: JsonValue[] = [];
      for (let i = 0; i < obs.n; i++) {
        list.push([
          Array.from(obs.vals.subarray(i * D, i * D + D), nullIfNaN),
          nullIfNaN(obs.loss[i]),
          obs.iters[i],
          obs.stopped[i],
          ...(obs.multiObjective ? [obs.lossVec[i] ?? null] : []),
        ]);
      }
      const pend: JsonValue[] = [];
      for (const [id, t] of pending) {
        pend.push([
          id,
          Array.from(t.vals, nullIfNaN),
          t.lastIter ?? null,
          t.lastValue ?? null,
          ...(model.obs.multiObjective ? [t.lastVec ?? null] : []),
        ]);
      }
      return { version: 1, dims: D, count, rng: rng.snapshot(), obs: list, pending: pend };
    },
    restore(state: JsonValue): void {
      const s = stateObject(F, state);
      if (
        s.version !== 1 || !Array.isArray(s.rng) || !Array.isArray(s.obs) ||
        !Array.isArray(s.pending)
      ) {
        throw new TypeError(`${F}: restore() expects the object snapshot() returned (version 1)`);
      }
      if (space) applyState(s);
      else restored = s;
    },
  });
}

/** An integer option (default when undefined). */
export function intOption(f: string, name: string, v: unknown, def: number, min: number): number {
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new TypeError(`${f}: "${name}" must be an integer, got ${JSON.stringify(v)}`);
  }
  if (v < min) throw new RangeError(`${f}: "${name}" must be >= ${min}, got ${v}`);
  return v;
}

/** A finite number option. */
export function numberOption(f: string, name: string, v: unknown, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new TypeError(`${f}: "${name}" must be a finite number, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** A boolean option. */
export function boolOption(f: string, name: string, v: unknown, def: boolean): boolean {
  if (v === undefined) return def;
  if (typeof v !== "boolean") {
    throw new TypeError(`${f}: "${name}" must be a boolean, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** The `gamma` option as a function of the number of observations. */
export function gammaOption(f: string, v: unknown): (n: number) => number {
  if (v === undefined) return (n) => Math.min(Math.ceil(0.15 * n), 25);
  if (typeof v === "function") return v as (n: number) => number;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new TypeError(
      `${f}: "gamma" must be a number in (0, 1] or a function of the trial count, got ${
        JSON.stringify(v)
      }`,
    );
  }
  if (!(v > 0 && v <= 1)) throw new RangeError(`${f}: "gamma" must be in (0, 1], got ${v}`);
  return (n) => Math.min(Math.ceil(v * n), 25);
}
