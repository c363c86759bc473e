/**
 * Gaussian-process Bayesian optimisation, in the manner of Optuna 5's `GPSampler`: a Matérn 5/2
 * ARD kernel over the numeric parameters (scaled to [0, 1], log-scaled ones in log space) and the
 * choices (Hamming distance), hyperparameters by maximum a posteriori marginal likelihood, and
 * log expected improvement maximised by random search plus local search.
 *
 * @module
 */

import { recordSpec } from "../../../core/plugin.ts";
import type { Searcher } from "../../../core/plugin.ts";
import type { Config, JsonValue } from "../../../core/trial.ts";
import type { Rng } from "../../../core/random.ts";
import type { ParamInfo } from "../../../core/space.ts";
import { checkOptionKeys, checkPoints, checkSeed, isDrawable } from "../_assignment.ts";
import {
  type Assignment,
  assignmentFromJson,
  assignmentToJson,
  modelSearcher,
  type SearchModel,
} from "../_shell.ts";
import { boolOption, intOption, TpeModel, tpeSettings } from "../tpe/mod.ts";
import { makeDim, type NumDim, toExternal, toInternal } from "../tpe/_dims.ts";
import { fitGp, GaussianProcess, type GpData, type GpParams } from "./_gp.ts";
import { maximizeLogEI } from "./_acquisition.ts";
import { warpLosses } from "./_warp.ts";

/** Options of {@linkcode gpSearcher}. */
export interface GpSearcherOptions {
  /** Random trials before the model takes over (finished trials). @default 10 */
  readonly initialPoints?: number;
  /**
   * The objective has no noise: the GP interpolates (noise fixed at 1e-6) instead of fitting a
   * noise level.
   * @default false
   */
  readonly deterministic?: boolean;
  /**
   * Warp the losses before the GP sees them: a Box–Cox transform with its maximum-likelihood λ in
   * [−2, 1], which only ever compresses the bad (high) tail, so an objective whose poor values lie
   * far above its good ones (Levy, Rosenbrock, Styblinski–Tang) is modelled where it matters. It
   * is applied only when a likelihood-ratio test rejects λ = 1 at the 5 % level (at each
   * suggestion, on the losses so far): losses without such a tail, or only mildly skewed ones
   * (Ackley's plateau, where warping kept more runs stuck), are modelled as they are.
   * BENCHMARKS.md, "The GP searcher, round four" and "issue 15's last GP gap". `false`: never
   * warp; the standardised losses, as Optuna's GPSampler.
   * @default true
   */
  readonly warpOutput?: boolean;
  /** Random points scored before the local searches of the acquisition. @default 512 */
  readonly candidates?: number;
  /** Local searches of the acquisition (from the best random points and the best trial). @default 10 */
  readonly localSearches?: number;
  /**
   * Configs to try first (partial ones are completed at random); they count as start-up trials.
   * @default []
   */
  readonly pointsToEvaluate?: readonly Config[];
  /** Seed of this searcher's random stream. @default the experiment seed */
  readonly seed?: number;
}

const OPTION_KEYS = [
  "initialPoints",
  "deterministic",
  "warpOutput",
  "candidates",
  "localSearches",
  "pointsToEvaluate",
  "seed",
] as const;

const MIN_NOISE = 1e-6;
/** Up to this many finished trials, the kernel is refitted at every suggestion. */
const REFIT_ALWAYS = 100;

/** A GP input: a numeric parameter in [0, 1] or a choice (option index). */
interface Input {
  readonly key: string;
  readonly num?: NumDim;
  readonly options: number;
}

/**
 * A Gaussian-process Bayesian optimisation searcher.
 *
 * - Models the parameters every config has (floats and integers, log-scaled ones in log space,
 *   choices by Hamming distance); parameters inside a choice branch and normal-distributed ones
 *   are proposed by a univariate TPE given the GP's values (Optuna samples those at random).
 * - Fits the kernel (Matérn 5/2 with one lengthscale per parameter, signal and noise variance) by
 *   maximum a posteriori marginal likelihood with Optuna's priors, warm-started from the last
 *   fit, at every suggestion up to 100 finished trials and then at every 10 % more; standardises
 *   the objective and Box–Cox-warps a long tail of bad values when a likelihood-ratio test says
 *   there is one (`warpOutput`); a failed metric counts as the worst value seen.
 * - Maximises log expected improvement: `candidates` random points, then L-BFGS local searches
 *   (and every option of each choice) from the best ones and from the best trial.
 * - Running trials are fantasised at the GP's mean ("kriging believer"), so concurrent
 *   suggestions spread out. Seeded; `snapshot()`/`restore()` carry every observation.
 * - Cost grows as n³ in the number of finished trials: meant for up to a few hundred trials.
 *
 * @param options start-up trials, noise, acquisition effort, points to try first, seed.
 * @returns a searcher named `"gp"` (YAML `bayes` or `gp`).
 * @throws {TypeError} on an unknown option or a value of the wrong type.
 * @throws {RangeError} on a value out of range (e.g. `candidates: 0`).
 * @example
 * ```ts
 * import { gpSearcher } from "./mod.ts";
 * import { uniform } from "../../../core/space.ts";
 * const s = gpSearcher({ initialPoints: 5 });
 * s.setup?.({ space: { x: uniform(-5, 5) }, metric: "loss", mode: "min", seed: 1, numSamples: 12 });
 * for (let i = 0; i < 12; i++) {
 *   const c = s.suggest(`t${i}`) as { x: number };
 *   s.onComplete?.(`t${i}`, {
 *     loss: (c.x - 2) ** 2, training_iteration: 1, time_total_s: 0, time_this_iter_s: 0,
 *     timestamp: 0, trial_id: `t${i}`,
 *   });
 * }
 * ```
 */
export function gpSearcher(options: GpSearcherOptions = {}): Searcher {
  const F = "gpSearcher";
  const o = checkOptionKeys(F, options, OPTION_KEYS);
  const initialPoints = intOption(F, "initialPoints", o.initialPoints, 10, 1);
  const deterministic = boolOption(F, "deterministic", o.deterministic, false);
  const warpOutput = boolOption(F, "warpOutput", o.warpOutput, true);
  const candidates = intOption(F, "candidates", o.candidates, 512, 1);
  const localSearches = intOption(F, "localSearches", o.localSearches, 10, 1);
  const points = checkPoints(F, o.pointsToEvaluate);
  const seed = checkSeed(F, o.seed);
  return recordSpec(
    "gp",
    options,
    modelSearcher({
      name: "gp",
      factory: F,
      points,
      ...(seed !== undefined ? { seed } : {}),
      makeModel: (params) =>
        gpModel(params, { initialPoints, deterministic, warpOutput, candidates, localSearches }),
    }),
  );
}

/** The settings of {@linkcode gpModel}. */
export interface GpModelSettings {
  /** Finished trials before the model is ready. */
  readonly initialPoints: number;
  /** No noise. */
  readonly deterministic: boolean;
  /** Box–Cox-warp the losses ({@linkcode GpSearcherOptions.warpOutput}). */
  readonly warpOutput: boolean;
  /** Random acquisition points. */
  readonly candidates: number;
  /** Local searches. */
  readonly localSearches: number;
}

/** The GP model of a space (exported for tests and for benchmarks). */
export function gpModel(params: readonly ParamInfo[], settings: GpModelSettings): SearchModel {
  const inputs: Input[] = [];
  for (const p of params) {
    if (!isDrawable(p) || p.condition) continue;
    const d = p.domain;
    if (d.kind === "choice") inputs.push({ key: p.key, options: d.options.length });
    else if (d.kind === "float" || d.kind === "int") {
      inputs.push({ key: p.key, num: makeDim(p, undefined, "gpSearcher") as NumDim, options: 0 });
    }
  }
  const D = inputs.length;
  const isCat = Uint8Array.from(inputs, (i) => (i.options ? 1 : 0));
  const optionsArr = Int32Array.from(inputs, (i) => i.options);
  // The rest (conditional and normal parameters) by a univariate TPE given the GP's values.
  const fallback = new TpeModel(params, tpeSettings("gpSearcher", { multivariate: false }));
  const X: number[] = [];
  const losses: number[] = [];
  const history: JsonValue[] = [];
  let cache: GpParams | undefined;
  let fittedAt = 0;
  // The last GP of the finished trials: the next one extends its factor by the new trials.
  let lastGp: GaussianProcess | undefined;

  const encode = (a: ReadonlyMap<string, unknown>, out: number[] | Float64Array, at = 0) => {
    for (let i = 0; i < D; i++) {
      const inp = inputs[i];
      const v = a.get(inp.key);
      if (typeof v !== "number") out[at + i] = 0.5;
      else if (inp.options) out[at + i] = v;
      else {
        const d = inp.num!;
        out[at + i] = (toInternal(d, v) - d.lo) / (d.hi - d.lo);
      }
    }
  };

  const decodeInto = (x: Float64Array, a: Assignment) => {
    for (let i = 0; i < D; i++) {
      const inp = inputs[i];
      if (a.has(inp.key)) continue;
      if (inp.options) a.set(inp.key, Math.round(x[i]));
      else {
        const d = inp.num!;
        a.set(inp.key, toExternal(d, d.lo + Math.min(1, Math.max(0, x[i])) * (d.hi - d.lo)));
      }
    }
  };

  const observe = (a: ReadonlyMap<string, unknown>, loss: number, it: number, st: boolean) => {
    const row = new Array<number>(D);
    encode(a, row);
    X.push(...row);
    losses.push(loss);
    fallback.obs.add(fallback.internalOf(a), loss, it, st);
    history.push([assignmentToJson(a), Number.isFinite(loss) ? loss : null, it, st]);
  };

  const suggestGp = (rng: Rng, running: readonly Assignment[]): Float64Array | undefined => {
    const n = losses.length;
    let lo = Infinity, hi = -Infinity;
    for (const l of losses) if (Number.isFinite(l)) [lo, hi] = [Math.min(lo, l), Math.max(hi, l)];
    if (!Number.isFinite(lo)) return undefined; // nothing finite to learn from
    const y = Float64Array.from(losses, (l) => (Number.isFinite(l) ? l : hi));
    let mean = 0;
    for (const v of y) mean += v;
    mean /= n;
    let sd = 0;
    for (const v of y) sd += (v - mean) ** 2;
    sd = Math.max(Math.sqrt(sd / n), 1e-12);
    for (let j = 0; j < n; j++) y[j] = (y[j] - mean) / sd;
    if (settings.warpOutput) warpLosses(y);
    const data: GpData = { X: Float64Array.from(X), n, D, isCat, y };
    // The kernel is refitted (warm-started from the last fit) at every suggestion up to 100
    // trials, as Optuna's GPSampler does at every one, then whenever the trials grew by 10 % since
    // the last fit (each fit costs O(n³) per step; the GP itself always conditions on every trial).
    // Past 100 trials a refit starts from a fit on 90 % of the data and takes at most 10 L-BFGS
    // steps (a cold one ~25, each O(n³)): it keeps the mean time per suggestion at 200 trials in
    // 10-D near its median (BENCHMARKS.md).
    if (!cache || n <= REFIT_ALWAYS || n >= fittedAt * 1.1) {
      cache = fitGp(data, cache, {
        minNoise: MIN_NOISE,
        deterministic: settings.deterministic,
        ...(cache && n > REFIT_ALWAYS ? { maxIter: 10 } : {}),
      });
      fittedAt = n;
    }
    let gp = new GaussianProcess(data, cache, lastGp);
    lastGp = gp;
    let best = Infinity, bestJ = 0;
    for (let j = 0; j < n; j++) if (y[j] < best) [best, bestJ] = [y[j], j];
    if (running.length) {
      // Kriging believer: running trials return the GP's mean there.
      const m = running.length;
      const Xa = new Float64Array((n + m) * D);
      Xa.set(data.X);
      const ya = new Float64Array(n + m);
      ya.set(y);
      for (let r = 0; r < m; r++) {
        encode(running[r], Xa, (n + r) * D);
        ya[n + r] = gp.predict(Xa.subarray((n + r) * D, (n + r + 1) * D)).mean;
        best = Math.min(best, ya[n + r]);
      }
      gp = new GaussianProcess({ X: Xa, n: n + m, D, isCat, y: ya }, cache, gp);
    }
    const R = maximizeLogEI(gp, best, { D, options: optionsArr }, rng, {
      samples: settings.candidates,
      localSearches: settings.localSearches,
      warmStarts: [data.X.slice(bestJ * D, bestJ * D + D)],
    }).x;
    return R;
  };

  return {
    ready: () => losses.length >= settings.initialPoints,
    observe,
    suggest(rng, fixed, running) {
      const a: Assignment = new Map(fixed);
      if (D > 0) {
        const x = suggestGp(rng, running);
        if (x) decodeInto(x, a);
      }
      const pend = running.map((r) => fallback.internalOf(r));
      return fallback.assignInto(fallback.suggest(rng, a, pend), a);
    },
    snapshot: () => ({
      history: history.slice(),
      cache: cache
        ? { invLs2: Array.from(cache.invLs2), scale: cache.scale, noise: cache.noise }
        : null,
      fittedAt,
    }),
    restore(state) {
      const s = state as Record<string, JsonValue> | null;
      if (s === null || typeof s !== "object" || !Array.isArray(s.history)) {
        throw new TypeError("gpSearcher: restore() expects the object snapshot() returned");
      }
      X.length = losses.length = history.length = 0;
      fallback.obs.reset();
      lastGp = undefined;
      for (const h of s.history as JsonValue[][]) {
        const [a, l, it, st] = h as [JsonValue, number | null, number, boolean];
        observe(assignmentFromJson(a), l ?? Infinity, it, st);
      }
      const c = s.cache as { invLs2: number[]; scale: number; noise: number } | null;
      cache = c && Array.isArray(c.invLs2) && c.invLs2.length === D
        ? { invLs2: Float64Array.from(c.invLs2), scale: c.scale, noise: c.noise }
        : undefined;
      fittedAt = typeof s.fittedAt === "number" ? s.fittedAt : 0;
    },
  };
}
