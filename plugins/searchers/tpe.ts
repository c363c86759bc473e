/**
 * A Tree-structured Parzen Estimator (Bergstra et al. 2011) in the manner of hyperopt and
 * Optuna 5, for every domain of a Tunebox space including conditional sub-spaces.
 *
 * @module
 */

import type { Searcher, SearcherContext } from "../../core/plugin.ts";
import type { Config, JsonValue, TrialResult } from "../../core/trial.ts";
import { Rng } from "../../core/random.ts";
import {
  type FloatDomain,
  type IntDomain,
  type NormalDomain,
  parameters,
  type ParamInfo,
  quantize,
  type Space,
} from "../../core/space.ts";
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
} from "./_assignment.ts";
import { LOG_SQRT_2PI, logMass, ndtr, truncNormal } from "./_math.ts";

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
   * @default 24
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
   * @default true
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
   * Kernel widths: `"gap"` is the larger distance to a neighbouring observation (hyperopt and
   * Optuna); `"scott"` is Scott's rule over each group (one width per parameter and group).
   * @default "gap"
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

interface Cond {
  readonly dim: number;
  readonly index: number;
}

interface NumDim {
  readonly kind: "num";
  readonly key: string;
  readonly cond?: Cond;
  readonly domain: FloatDomain | IntDomain | NormalDomain;
  readonly log: boolean;
  /** Kernel bounds in internal (log where log) units, widened by half a step for discrete ones. */
  readonly lo: number;
  readonly hi: number;
  readonly bounded: boolean;
  /** Discrete: the likelihood is the mass of the value's cell [v - half, v + half]. */
  readonly disc: boolean;
  readonly half: number;
  readonly priorMu: number;
  readonly priorSigma: number;
}

interface CatDim {
  readonly kind: "cat";
  readonly key: string;
  readonly cond?: Cond;
  readonly k: number;
}

type Dim = NumDim | CatDim;

/** One parameter's part of a mixture: kernel parameters by slot (the prior is the last slot). */
interface Part {
  mu: Float64Array;
  sig: Float64Array;
  inv: Float64Array;
  /** −log Z (truncation) per kernel. */
  lz: Float64Array;
  /** −log σ − log √(2π) − log Z per kernel. */
  cst: Float64Array;
  /** Categorical: the observed option per kernel (−1: uniform row). */
  cat: Int32Array;
  logHit: number;
  logMiss: number;
  logUni: number;
  /** Probability that a categorical kernel draws its own option outright. */
  pOwn: number;
}

interface Mixture {
  readonly n: number;
  readonly logw: Float64Array;
  readonly cumw: Float64Array;
  /** Parts by dim index (undefined for dims not in this mixture). */
  readonly parts: (Part | undefined)[];
}

interface PendingTrial {
  vals: Float64Array;
  lastIter?: number;
  lastValue?: number;
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
 * - Seeded and reproducible; `snapshot()`/`restore()` carry every observation and running trial.
 *
 * @param options model settings, points to try first, seed.
 * @returns a searcher named `"tpe"`.
 * @throws {TypeError} on an unknown option or a value of the wrong type.
 * @throws {RangeError} on a value out of range (e.g. `candidates: 0`).
 * @example
 * ```ts
 * import { tpeSearcher } from "./tpe.ts";
 * import { uniform } from "../../core/space.ts";
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
  const nCandidates = intOption(F, "candidates", o.candidates, 24, 1);
  const gammaFn = gammaOption(F, o.gamma);
  const priorWeight = numberOption(F, "priorWeight", o.priorWeight, 1);
  if (priorWeight <= 0) {
    throw new RangeError(`${F}: "priorWeight" must be > 0, got ${priorWeight}`);
  }
  const multivariate = boolOption(F, "multivariate", o.multivariate, true);
  const constantLiar = boolOption(F, "constantLiar", o.constantLiar, true);
  const considerEndpoints = boolOption(F, "considerEndpoints", o.considerEndpoints, false);
  const magicClip = boolOption(F, "considerMagicClip", o.considerMagicClip, true);
  const clipExponent = numberOption(F, "magicClipExponent", o.magicClipExponent, 1);
  if (clipExponent <= 0) {
    throw new RangeError(`${F}: "magicClipExponent" must be > 0, got ${clipExponent}`);
  }
  const weightsRule = o.weights ?? "ei";
  if (weightsRule !== "forgetting" && weightsRule !== "uniform" && weightsRule !== "ei") {
    throw new TypeError(
      `${F}: "weights" must be "forgetting", "uniform" or "ei", got ${JSON.stringify(weightsRule)}`,
    );
  }
  const bandwidthRule = o.bandwidth ?? "gap";
  if (bandwidthRule !== "gap" && bandwidthRule !== "scott") {
    throw new TypeError(
      `${F}: "bandwidth" must be "gap" or "scott", got ${JSON.stringify(bandwidthRule)}`,
    );
  }
  const minBandwidth = numberOption(F, "minBandwidth", o.minBandwidth, 0);
  if (minBandwidth < 0 || minBandwidth > 1) {
    throw new RangeError(`${F}: "minBandwidth" must be in [0, 1], got ${minBandwidth}`);
  }
  const points = checkPoints(F, o.pointsToEvaluate);
  const seedOption = checkSeed(F, o.seed);

  // Set up by setup().
  let space: Space | undefined;
  let params: ParamInfo[] = [];
  let dims: Dim[] = [];
  let dimOfKey = new Map<string, number>();
  let presets: Map<string, unknown>[] = [];
  let plan: GridPlan = { keys: [], values: [], size: 1 };
  let limit = -1; // suggestions before "done" (-1: none)
  let metric = "loss";
  let sign = 1;
  let rng = new Rng(0);
  let D = 0;

  // Bookkeeping.
  let count = 0;
  let nObs = 0;
  let vals = new Float64Array(0); // nObs × D, NaN where inactive
  const loss: number[] = [];
  const iters: number[] = [];
  const stopped: boolean[] = [];
  let sortedByDim: number[][] = []; // numeric dims: obs indices by value (active ones)
  let full: number[] = []; // full-length trials by loss
  let early: number[] = []; // stopped early, by (−iteration, loss)
  let maxIter = 0;
  let isGood = new Uint8Array(0);
  let slot = new Int32Array(0);
  let cacheSig = new Float64Array(0); // per (observation, parameter): last kernel width...
  let cacheLz = new Float64Array(0); // ...and its truncation term
  let pendOrder = new Int32Array(16);
  let priors: { lz: number; cst: number }[] = [];
  interface Buffer {
    mu: Float64Array;
    sig: Float64Array;
    inv: Float64Array;
    lz: Float64Array;
    cst: Float64Array;
    sv: Float64Array;
    sr: Int32Array;
  }
  const buffers: Buffer[][] = [[], []];
  const buffer = (good: boolean, p: number, n: number): Buffer => {
    const g = good ? 0 : 1;
    let b = buffers[g][p];
    if (!b || b.mu.length < n) {
      const cap = Math.max(32, n * 2);
      b = buffers[g][p] = {
        mu: new Float64Array(cap),
        sig: new Float64Array(cap),
        inv: new Float64Array(cap),
        lz: new Float64Array(cap),
        cst: new Float64Array(cap),
        sv: new Float64Array(cap),
        sr: new Int32Array(cap),
      };
    }
    return b;
  };
  const pending = new Map<string, PendingTrial>();
  let restored: Record<string, JsonValue> | undefined;

  let eiThreshold = Infinity; // loss of the best bad trial, for "ei" weights
  const weightsOf = (members: readonly number[], good: boolean): Float64Array => {
    const m = members.length;
    const w = new Float64Array(m).fill(1);
    if (weightsRule === "ei" && good && m > 0) {
      let worst = -Infinity;
      for (const r of members) if (loss[r] > worst) worst = loss[r];
      const thr = Number.isFinite(eiThreshold) ? eiThreshold : worst + 1e-12;
      let sum = 0;
      for (let i = 0; i < m; i++) sum += w[i] = Math.max(1e-12, thr - loss[members[i]]);
      if (!(sum > 0) || !Number.isFinite(sum)) w.fill(1);
      else for (let i = 0; i < m; i++) w[i] *= m / sum; // mean 1, as one observation
      return w;
    }
    if (weightsRule !== "uniform" && m >= 25) {
      const ramp = m - 25;
      for (let i = 0; i < ramp; i++) {
        w[i] = ramp === 1 ? 1 / m : 1 / m + (1 - 1 / m) * i / (ramp - 1);
      }
    }
    return w;
  };

  const active = (d: Dim, x: Float64Array): boolean => !d.cond || x[d.cond.dim] === d.cond.index;

  const toInternal = (d: Dim, v: number): number => {
    if (d.kind === "cat") return v;
    const x = d.log ? Math.log(v) : v;
    return d.bounded ? Math.min(d.hi, Math.max(d.lo, x)) : x;
  };

  const toExternal = (d: NumDim, x: number): number => {
    const dom = d.domain;
    const v = d.log ? Math.exp(x) : x;
    if (dom.kind === "float") {
      return dom.q ? quantize(v, dom.q, dom.min, dom.max) : Math.min(dom.max, Math.max(dom.min, v));
    }
    if (dom.kind === "int") {
      const k = Math.round((v - dom.min) / dom.q);
      return Math.min(dom.max, Math.max(dom.min, dom.min + k * dom.q));
    }
    return dom.q ? quantize(v, dom.q, -Infinity, Infinity) : v;
  };

  // ---- observations ------------------------------------------------------------------------

  const ensureCapacity = (n: number): void => {
    if (vals.length >= n * D && isGood.length >= n) return;
    const cap = Math.max(16, n * 2);
    const nv = new Float64Array(cap * Math.max(D, 1));
    nv.set(vals);
    vals = nv;
    const ng = new Uint8Array(cap);
    ng.set(isGood);
    isGood = ng;
    slot = new Int32Array(cap);
    const cs = new Float64Array(cap * Math.max(D, 1)).fill(NaN);
    cs.set(cacheSig);
    cacheSig = cs;
    const cl = new Float64Array(cap * Math.max(D, 1));
    cl.set(cacheLz);
    cacheLz = cl;
  };

  const byLoss = (a: number, b: number): number => loss[a] - loss[b] || a - b;
  const byProgress = (a: number, b: number): number => iters[b] - iters[a] || byLoss(a, b);

  const insertSorted = (list: number[], item: number, cmp: (a: number, b: number) => number) => {
    let lo = 0, hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cmp(list[mid], item) <= 0) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, item);
  };

  const addObservation = (x: Float64Array, l: number, iter: number, wasStopped: boolean): void => {
    const i = nObs++;
    ensureCapacity(nObs);
    vals.set(x, i * D);
    loss[i] = l;
    iters[i] = iter;
    stopped[i] = wasStopped;
    for (let p = 0; p < D; p++) {
      const d = dims[p];
      if (d.kind !== "num" || Number.isNaN(x[p])) continue;
      const list = sortedByDim[p];
      insertSorted(list, i, (a, b) => vals[a * D + p] - vals[b * D + p] || a - b);
    }
    if (iter > maxIter) {
      maxIter = iter;
      // Stopped trials that were full length are now early ones.
      const keep: number[] = [];
      for (const j of full) {
        if (stopped[j] && iters[j] < maxIter) insertSorted(early, j, byProgress);
        else keep.push(j);
      }
      full = keep;
    }
    if (!wasStopped || iter >= maxIter) insertSorted(full, i, byLoss);
    else insertSorted(early, i, byProgress);
  };

  // ---- fitting -----------------------------------------------------------------------------

  /**
   * Fits a mixture over `dimList` to `members` (obs indices ≥ 0, pending trials as −1 − index
   * into `pend`), in the order given (oldest first, for the forgetting weights).
   */
  const fit = (
    dimList: readonly number[],
    members: readonly number[],
    pend: readonly Float64Array[],
    good: boolean,
  ): Mixture => {
    const m = members.length;
    const n = m + 1;
    const w = weightsOf(members, good);
    const logw = new Float64Array(n), cumw = new Float64Array(n);
    let total = priorWeight;
    for (let i = 0; i < m; i++) total += w[i];
    let acc = 0;
    for (let i = 0; i < n; i++) {
      const wi = (i < m ? w[i] : priorWeight) / total;
      logw[i] = Math.log(wi);
      acc += wi;
      cumw[i] = acc;
    }
    cumw[n - 1] = 1;
    const pendSlot: number[] = [];
    for (let i = 0; i < m; i++) {
      const r = members[i];
      if (r >= 0) slot[r] = i;
      else pendSlot[-1 - r] = i;
    }
    const parts: (Part | undefined)[] = [];
    for (const p of dimList) parts[p] = fitPart(p, m, good, pend, pendSlot, members);
    return { n, logw, cumw, parts };
  };

  const valueOf = (r: number, p: number, pend: readonly Float64Array[]): number =>
    r >= 0 ? vals[r * D + p] : pend[-1 - r][p];

  const fitPart = (
    p: number,
    m: number,
    good: boolean,
    pend: readonly Float64Array[],
    pendSlot: readonly number[],
    members: readonly number[],
  ): Part => {
    const d = dims[p];
    const n = m + 1;
    const part: Part = {
      mu: new Float64Array(0),
      sig: new Float64Array(0),
      inv: new Float64Array(0),
      lz: new Float64Array(0),
      cst: new Float64Array(0),
      cat: new Int32Array(0),
      logHit: 0,
      logMiss: 0,
      logUni: 0,
      pOwn: 0,
    };
    if (d.kind === "cat") {
      const cat = new Int32Array(n).fill(-1);
      let c = 0;
      for (let i = 0; i < m; i++) {
        const v = valueOf(members[i], p, pend);
        if (!Number.isNaN(v)) {
          cat[i] = v;
          c++;
        }
      }
      // Optuna's categorical kernel: prior_weight / n_kernels on every option, +1 on its own.
      const eps = priorWeight / (c + 1);
      const z = 1 + d.k * eps;
      part.cat = cat;
      part.logHit = Math.log((1 + eps) / z);
      part.logMiss = Math.log(eps / z);
      part.logUni = -Math.log(d.k);
      part.pOwn = 1 / z;
      return part;
    }
    // Numeric: the members' values in ascending order (finished ones from the per-parameter
    // sorted index, running ones merged in), with their references.
    const b = buffer(good, p, n);
    const { sv, sr } = b;
    let np = 0;
    if (pendOrder.length < pend.length) pendOrder = new Int32Array(pend.length * 2);
    for (let i = 0; i < pend.length; i++) {
      if (pendSlot[i] === undefined || Number.isNaN(pend[i][p])) continue;
      pendOrder[np++] = i;
    }
    if (np > 1) {
      const sub = pendOrder.subarray(0, np);
      sub.sort((x, y) => pend[x][p] - pend[y][p]);
    }
    const list = sortedByDim[p];
    const want = good ? 1 : 0;
    let c = 0, k = 0;
    for (let t = 0; t < list.length; t++) {
      const r = list[t];
      if (isGood[r] !== want) continue;
      const v = vals[r * D + p];
      while (k < np && pend[pendOrder[k]][p] < v) {
        sv[c] = pend[pendOrder[k]][p];
        sr[c++] = -1 - pendOrder[k++];
      }
      sv[c] = v;
      sr[c++] = r;
    }
    while (k < np) {
      sv[c] = pend[pendOrder[k]][p];
      sr[c++] = -1 - pendOrder[k++];
    }
    const range = d.bounded ? d.hi - d.lo : d.priorSigma;
    const minSig = Math.max(
      magicClip ? range / Math.min(100, 2 + c) ** clipExponent : 1e-12,
      minBandwidth * range,
    );
    let scott = NaN;
    if (bandwidthRule === "scott" && c >= 2) {
      let mean = 0;
      for (let i = 0; i < c; i++) mean += sv[i];
      mean /= c;
      let varSum = 0;
      for (let i = 0; i < c; i++) varSum += (sv[i] - mean) ** 2;
      const sd = Math.sqrt(varSum / (c - 1));
      const iqr = quantileSorted(sv, c, 0.75) - quantileSorted(sv, c, 0.25);
      scott = 1.059 * (iqr > 0 ? Math.min(iqr / 1.34, sd) : sd) * c ** -0.2;
    }
    const { mu, sig, inv, lz, cst } = b;
    // Kernels of members without this parameter (conditional) and the prior use the prior.
    const prior = priors[p];
    mu.fill(d.priorMu, 0, n);
    sig.fill(d.priorSigma, 0, n);
    inv.fill(1 / d.priorSigma, 0, n);
    lz.fill(prior.lz, 0, n);
    cst.fill(prior.cst, 0, n);
    for (let i = 0; i < c; i++) {
      let s: number;
      if (scott > 0) s = scott;
      else if (c === 1) {
        s = d.bounded ? Math.max(sv[0] - d.lo, d.hi - sv[0]) : d.priorSigma;
      } else if (i === 0) {
        s = considerEndpoints && d.bounded ? Math.max(sv[0] - d.lo, sv[1] - sv[0]) : sv[1] - sv[0];
      } else if (i === c - 1) {
        s = considerEndpoints && d.bounded
          ? Math.max(d.hi - sv[i], sv[i] - sv[i - 1])
          : sv[i] - sv[i - 1];
      } else s = Math.max(sv[i] - sv[i - 1], sv[i + 1] - sv[i]);
      s = Math.min(range, Math.max(minSig, s));
      const r = sr[i];
      const j = r >= 0 ? slot[r] : pendSlot[-1 - r];
      const m0 = sv[i];
      mu[j] = m0;
      sig[j] = s;
      inv[j] = 1 / s;
      // A kernel's normaliser only changes with its width: finished observations cache it.
      const ci = r >= 0 ? r * D + p : -1;
      if (ci >= 0 && cacheSig[ci] === s) {
        lz[j] = cacheLz[ci];
      } else {
        lz[j] = d.bounded ? -logInside((d.lo - m0) / s, (d.hi - m0) / s) : 0;
        if (ci >= 0) {
          cacheSig[ci] = s;
          cacheLz[ci] = lz[j];
        }
      }
      cst[j] = lz[j] - Math.log(s) - LOG_SQRT_2PI;
    }
    part.mu = mu;
    part.sig = sig;
    part.inv = inv;
    part.lz = lz;
    part.cst = cst;
    return part;
  };

  /** Adds one parameter's log-density under every kernel of a mixture to `acc`. */
  const addLogPdf = (p: number, part: Part, x: number, acc: Float64Array, n: number): void => {
    const d = dims[p];
    if (d.kind === "cat") {
      const cat = part.cat;
      for (let j = 0; j < n; j++) {
        acc[j] += cat[j] < 0 ? part.logUni : cat[j] === x ? part.logHit : part.logMiss;
      }
      return;
    }
    const { mu, inv, cst, lz } = part;
    if (!d.disc) {
      for (let j = 0; j < n; j++) {
        const z = (x - mu[j]) * inv[j];
        acc[j] += cst[j] - 0.5 * z * z;
      }
      return;
    }
    // Discrete: the Gaussian mass of the value's cell.
    const v = d.log ? Math.exp(x) : x;
    const left = d.log ? Math.log(v - d.half) : v - d.half;
    const right = d.log ? Math.log(v + d.half) : v + d.half;
    const mid = 0.5 * (left + right);
    for (let j = 0; j < n; j++) {
      const zl = (left - mu[j]) * inv[j], zr = (right - mu[j]) * inv[j];
      const width = zr - zl;
      if (width < 0.25) {
        const zm = (mid - mu[j]) * inv[j];
        acc[j] += lz[j] - 0.5 * zm * zm - LOG_SQRT_2PI + Math.log(width);
      } else acc[j] += lz[j] + logMass(zl, zr);
    }
  };

  const logSumExp = (acc: Float64Array, n: number): number => {
    let max = -Infinity;
    for (let j = 0; j < n; j++) if (acc[j] > max) max = acc[j];
    if (max === -Infinity) return -Infinity;
    // Terms below e^-40 of the largest change nothing; skipping them also avoids slow
    // subnormal exponentials (most kernels of a large bad set are far from a candidate).
    const floor = max - 40;
    let s = 0;
    for (let j = 0; j < n; j++) if (acc[j] > floor) s += Math.exp(acc[j] - max);
    return max + Math.log(s);
  };

  const pickKernel = (cumw: Float64Array): number => {
    const u = rng.next();
    let lo = 0, hi = cumw.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumw[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };

  /** Draws parameter p from kernel j of a part; returns the internal value of the external one. */
  const drawFrom = (p: number, part: Part, j: number): number => {
    const d = dims[p];
    if (d.kind === "cat") {
      const own = part.cat[j];
      if (own >= 0 && rng.next() < part.pOwn) return own;
      return rng.int(0, d.k - 1);
    }
    const raw = d.bounded
      ? truncNormal(part.mu[j], part.sig[j], d.lo, d.hi, rng.next())
      : part.mu[j] + part.sig[j] * rng.normal();
    return toInternal(d, toExternal(d, raw));
  };

  // ---- suggesting --------------------------------------------------------------------------

  const split = (): { good: number[]; bad: number[] } => {
    const nBelow = Math.max(0, Math.min(nObs, Math.floor(gammaFn(nObs))));
    const good: number[] = [];
    for (let i = 0; i < full.length && good.length < nBelow; i++) good.push(full[i]);
    for (let i = 0; i < early.length && good.length < nBelow; i++) good.push(early[i]);
    isGood.fill(0, 0, nObs);
    for (const g of good) isGood[g] = 1;
    const next = good.length < full.length ? full[good.length] : early[good.length - full.length];
    eiThreshold = next === undefined ? Infinity : loss[next];
    good.sort((a, b) => a - b);
    const bad: number[] = [];
    for (let i = 0; i < nObs; i++) if (!isGood[i]) bad.push(i);
    return { good, bad };
  };

  const modelSuggest = (fixed: ReadonlyMap<string, unknown>): Float64Array => {
    const { good, bad } = split();
    const pend = constantLiar ? [...pending.values()].map((t) => t.vals) : [];
    const badMembers = [...bad, ...pend.map((_, i) => -1 - i)];
    const x = new Float64Array(D).fill(NaN);
    // Values a point or the grid fixed are taken as they are.
    const fixedDim = new Set<number>();
    for (const [key, v] of fixed) {
      const p = dimOfKey.get(key);
      if (p !== undefined) {
        x[p] = toInternal(dims[p], v as number);
        fixedDim.add(p);
      }
    }
    const all = dims.map((_, p) => p);
    if (multivariate) {
      const l = fit(all, good, [], true);
      const g = fit(all, badMembers, pend, false);
      const accL = new Float64Array(l.n), accG = new Float64Array(g.n);
      let best: Float64Array | undefined, bestScore = -Infinity;
      for (let c = 0; c < nCandidates; c++) {
        const j = pickKernel(l.cumw);
        const cand = Float64Array.from(x);
        for (let p = 0; p < D; p++) {
          if (fixedDim.has(p) || !active(dims[p], cand)) continue;
          cand[p] = drawFrom(p, l.parts[p]!, j);
        }
        accL.set(l.logw);
        accG.set(g.logw);
        for (let p = 0; p < D; p++) {
          if (Number.isNaN(cand[p]) || fixedDim.has(p) || !active(dims[p], cand)) continue;
          addLogPdf(p, l.parts[p]!, cand[p], accL, l.n);
          addLogPdf(p, g.parts[p]!, cand[p], accG, g.n);
        }
        const score = logSumExp(accL, l.n) - logSumExp(accG, g.n);
        if (score > bestScore || best === undefined) [best, bestScore] = [cand, score];
      }
      return best!;
    }
    // Univariate (hyperopt): one density per parameter, fitted on the trials where it was active,
    // decided in tree order so that a branch's parameters follow its choice.
    for (let p = 0; p < D; p++) {
      if (fixedDim.has(p) || !active(dims[p], x)) continue;
      const has = (r: number) => !Number.isNaN(r >= 0 ? vals[r * D + p] : pend[-1 - r][p]);
      const l = fit([p], good.filter(has), [], true);
      const g = fit([p], badMembers.filter(has), pend, false);
      const part = l.parts[p]!, gpart = g.parts[p]!;
      const accL = new Float64Array(l.n), accG = new Float64Array(g.n);
      let bestV = NaN, bestScore = -Infinity;
      for (let c = 0; c < nCandidates; c++) {
        const v = drawFrom(p, part, pickKernel(l.cumw));
        accL.set(l.logw);
        accG.set(g.logw);
        addLogPdf(p, part, v, accL, l.n);
        addLogPdf(p, gpart, v, accG, g.n);
        const score = logSumExp(accL, l.n) - logSumExp(accG, g.n);
        if (score > bestScore || Number.isNaN(bestV)) [bestV, bestScore] = [v, score];
      }
      x[p] = bestV;
    }
    return x;
  };

  const assignmentOf = (
    x: Float64Array,
    fixed: ReadonlyMap<string, unknown>,
  ): Map<string, unknown> => {
    const a = new Map<string, unknown>(fixed);
    for (let p = 0; p < D; p++) {
      const d = dims[p];
      if (Number.isNaN(x[p]) || a.has(d.key)) continue;
      a.set(d.key, d.kind === "cat" ? x[p] : toExternal(d, x[p]));
    }
    return a;
  };

  const internalOf = (a: ReadonlyMap<string, unknown>): Float64Array => {
    const x = new Float64Array(D).fill(NaN);
    for (let p = 0; p < D; p++) {
      const d = dims[p];
      if (!active(d, x)) continue;
      const v = a.get(d.key);
      if (typeof v === "number") x[p] = toInternal(d, v);
    }
    return x;
  };

  const applyState = (s: Record<string, JsonValue>): void => {
    const bad = () =>
      new TypeError(`${F}: restore() expects the object snapshot() returned (version 1)`);
    if (s.version !== 1 || !Array.isArray(s.rng) || !Array.isArray(s.obs)) throw bad();
    if (s.dims !== D) {
      throw new TypeError(
        `${F}: the snapshot has ${s.dims} parameters but the space has ${D}; restore with the same space`,
      );
    }
    rng.restore(s.rng as number[]);
    count = s.count as number;
    resetObservations();
    for (const ob of s.obs as JsonValue[][]) {
      const [v, l, it, st] = ob as [(number | null)[], number | null, number, boolean];
      addObservation(Float64Array.from(v, (y) => (y === null ? NaN : y)), l ?? Infinity, it, st);
    }
    pending.clear();
    for (const pr of s.pending as JsonValue[][]) {
      const [id, v, it, lv] = pr as [string, (number | null)[], number | null, number | null];
      pending.set(id, {
        vals: Float64Array.from(v, (y) => (y === null ? NaN : y)),
        ...(it !== null ? { lastIter: it } : {}),
        ...(lv !== null ? { lastValue: lv } : {}),
      });
    }
  };

  const resetObservations = (): void => {
    nObs = 0;
    vals = new Float64Array(0);
    isGood = new Uint8Array(0);
    slot = new Int32Array(0);
    cacheSig = new Float64Array(0);
    cacheLz = new Float64Array(0);
    buffers[0] = [];
    buffers[1] = [];
    loss.length = iters.length = stopped.length = 0;
    sortedByDim = dims.map(() => []);
    full = [];
    early = [];
    maxIter = 0;
  };

  const nullIfNaN = (v: number): number | null => (Number.isFinite(v) ? v : null);

  return {
    name: "tpe",
    setup(ctx: SearcherContext): void {
      space = ctx.space;
      params = parameters(space);
      plan = gridPlan(params);
      dims = [];
      dimOfKey = new Map();
      for (const p of params) {
        if (!isDrawable(p)) continue;
        const cond = p.condition
          ? { dim: dimOfKey.get(p.condition.key)!, index: p.condition.index }
          : undefined;
        dimOfKey.set(p.key, dims.length);
        dims.push(makeDim(p, cond));
      }
      D = dims.length;
      priors = dims.map((d) => {
        if (d.kind === "cat" || !d.bounded) {
          return { lz: 0, cst: d.kind === "cat" ? 0 : -Math.log(d.priorSigma) - LOG_SQRT_2PI };
        }
        const lz = -logInside((d.lo - d.priorMu) / d.priorSigma, (d.hi - d.priorMu) / d.priorSigma);
        return { lz, cst: lz - Math.log(d.priorSigma) - LOG_SQRT_2PI };
      });
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
      resetObservations();
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
      if (i < presets.length || nObs < initialPoints || D === 0) {
        a = sampleAssignment(params, rng, fixed);
      } else {
        a = assignmentOf(modelSuggest(fixed), fixed);
      }
      pending.set(trialId, { vals: internalOf(a) });
      return buildConfig(space, rng, a, i < points.length ? points[i] : undefined);
    },
    onReport(trialId: string, result: TrialResult): void {
      const t = pending.get(trialId);
      if (!t) return;
      const v = result[metric];
      t.lastIter = result.training_iteration;
      t.lastValue = typeof v === "number" ? v : NaN;
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
      let value: unknown = t.lastValue, iter = t.lastIter;
      if (final) {
        value = final[metric];
        iter = final.training_iteration;
      }
      if (iter === undefined) return; // never reported: nothing to learn
      const l = typeof value === "number" && Number.isFinite(value) ? sign * value : Infinity;
      addObservation(t.vals, l, typeof iter === "number" ? iter : 1, info?.stopped === true);
    },
    snapshot(): JsonValue {
      const obs: JsonValue[] = [];
      for (let i = 0; i < nObs; i++) {
        obs.push([
          Array.from(vals.subarray(i * D, i * D + D), nullIfNaN),
          nullIfNaN(loss[i]),
          iters[i],
          stopped[i],
        ]);
      }
      const pend: JsonValue[] = [];
      for (const [id, t] of pending) {
        pend.push([id, Array.from(t.vals, nullIfNaN), t.lastIter ?? null, t.lastValue ?? null]);
      }
      return { version: 1, dims: D, count, rng: rng.snapshot(), obs, pending: pend };
    },
    restore(state: JsonValue): void {
      const s = stateObject(F, state);
      if (s.version !== 1 || !Array.isArray(s.rng) || !Array.isArray(s.obs)) {
        throw new TypeError(`${F}: restore() expects the object snapshot() returned (version 1)`);
      }
      if (space) applyState(s);
      else restored = s;
    },
  };
}

/** log(Φ(b) − Φ(a)), skipping the work for a kernel well inside its bounds. */
function logInside(a: number, b: number): number {
  if (a < -9 && b > 9) return 0;
  if (a < -9) return b > 0 ? Math.log1p(-ndtr(-b)) : logMass(a, b);
  if (b > 9) return a < 0 ? Math.log1p(-ndtr(a)) : logMass(a, b);
  return logMass(a, b);
}

function quantileSorted(xs: Float64Array, n: number, q: number): number {
  const pos = (n - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo);
}

function makeDim(p: ParamInfo, cond: Cond | undefined): Dim {
  const d = p.domain;
  const base = { key: p.key, ...(cond ? { cond } : {}) };
  if (d.kind === "choice") return { kind: "cat", ...base, k: d.options.length };
  if (d.kind === "normal") {
    return {
      kind: "num",
      ...base,
      domain: d,
      log: false,
      lo: -Infinity,
      hi: Infinity,
      bounded: false,
      disc: false,
      half: 0,
      priorMu: d.mean,
      priorSigma: d.sd,
    };
  }
  if (d.kind === "float") {
    let lo = d.min, hi = d.max, disc = false, half = 0;
    if (d.q && !d.log) {
      // Cells of the multiples of q that lie in [min, max].
      half = d.q / 2;
      lo = quantize(d.min, d.q, d.min, d.max) - half;
      hi = quantize(d.max, d.q, d.min, d.max) + half;
      disc = true;
    }
    if (d.log) [lo, hi] = [Math.log(lo), Math.log(hi)];
    return numDim(base, d, d.log, lo, hi, disc, half);
  }
  if (d.kind === "int") {
    const half = d.q / 2;
    let lo = d.min - half, hi = d.max + half;
    if (d.log) [lo, hi] = [Math.log(lo), Math.log(hi)];
    return numDim(base, d, d.log, lo, hi, true, half);
  }
  throw new TypeError(`tpeSearcher: parameter "${p.key}" has an unsupported domain`);
}

function numDim(
  base: { key: string; cond?: Cond },
  domain: FloatDomain | IntDomain,
  log: boolean,
  lo: number,
  hi: number,
  disc: boolean,
  half: number,
): NumDim {
  return {
    kind: "num",
    ...base,
    domain,
    log,
    lo,
    hi,
    bounded: true,
    disc,
    half,
    priorMu: 0.5 * (lo + hi),
    priorSigma: hi - lo,
  };
}

function intOption(f: string, name: string, v: unknown, def: number, min: number): number {
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new TypeError(`${f}: "${name}" must be an integer, got ${JSON.stringify(v)}`);
  }
  if (v < min) throw new RangeError(`${f}: "${name}" must be >= ${min}, got ${v}`);
  return v;
}

function numberOption(f: string, name: string, v: unknown, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new TypeError(`${f}: "${name}" must be a finite number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function boolOption(f: string, name: string, v: unknown, def: boolean): boolean {
  if (v === undefined) return def;
  if (typeof v !== "boolean") {
    throw new TypeError(`${f}: "${name}" must be a boolean, got ${JSON.stringify(v)}`);
  }
  return v;
}

function gammaOption(f: string, v: unknown): (n: number) => number {
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
