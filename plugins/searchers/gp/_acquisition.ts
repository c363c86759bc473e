/**
 * Log expected improvement (minimisation) and its maximisation over a mixed box: random
 * preliminary points, the best of them plus roulette-selected ones and given warm starts as
 * starting points, then local search (L-BFGS on the numeric inputs, preconditioned by the
 * lengthscales, alternating with trying every option of each categorical input), as Optuna's
 * GPSampler does. The local searches run in lockstep, their points scored together in blocks
 * (as Optuna's batched L-BFGS-B), and stop where scipy's L-BFGS-B would (relative change
 * 2.2e-9, projected gradient 1e-2).
 *
 * @module
 */

import type { Rng } from "../../../core/random.ts";
import { type LbfgsRequest, lbfgsSteps, type MinimizeResult } from "../_linalg.ts";
import { LOG_SQRT_2PI, ndtr } from "../_math.ts";
import type { GaussianProcess } from "./_gp.ts";

/**
 * log h(z) with h(z) = φ(z) + z·Φ(z) (so EI = σ·h((best − μ)/σ)), and d log h / dz = Φ(z)/h(z);
 * accurate for very negative z (asymptotic series below −10).
 */
export function logH(z: number): { value: number; slope: number } {
  if (z > -10) {
    const phi = Math.exp(-0.5 * z * z - LOG_SQRT_2PI);
    const cdf = ndtr(z);
    const h = phi + z * cdf;
    if (h > 0) return { value: Math.log(h), slope: cdf / h };
  }
  const zz = Math.max(Math.abs(z), 10), u = 1 / (zz * zz);
  // h ≈ φ/z²·(1 − 3u + 15u² − 105u³ + 945u⁴), Φ ≈ φ/|z|·(1 − u + 3u² − 15u³ + 105u⁴).
  const b = 1 - 3 * u + 15 * u * u - 105 * u ** 3 + 945 * u ** 4;
  const a = 1 - u + 3 * u * u - 15 * u ** 3 + 105 * u ** 4;
  return {
    value: -0.5 * z * z - LOG_SQRT_2PI - 2 * Math.log(Math.abs(z)) + Math.log(b),
    slope: Math.abs(z) * a / b,
  };
}

/** log EI of minimising below `best` at x; writes the gradient (numeric inputs) when given. */
export function logEI(
  gp: GaussianProcess,
  best: number,
  x: Float64Array,
  grad?: Float64Array,
  scratch?: { dMean: Float64Array; dVar: Float64Array },
): number {
  if (!grad) {
    const { mean, variance } = gp.predict(x);
    const sd = Math.sqrt(variance);
    return Math.log(sd) + logH((best - mean) / sd).value;
  }
  const { dMean, dVar } = scratch!;
  const { mean, variance } = gp.predict(x, dMean, dVar);
  const sd = Math.sqrt(variance);
  const z = (best - mean) / sd;
  const { value, slope } = logH(z);
  for (let i = 0; i < x.length; i++) {
    const dsd = dVar[i] / (2 * sd);
    grad[i] = dsd / sd + slope * (-dMean[i] - z * dsd) / sd;
  }
  return Math.log(sd) + value;
}

/**
 * log EI below `best` at each of `m` points (`xs`: m × D) with its gradient (`grads`: m × D,
 * numeric inputs; categorical components 0), the same values as {@linkcode logEI} point by point,
 * from one batched posterior ({@linkcode GaussianProcess.predictManyGrad}).
 */
export function logEIMany(
  gp: GaussianProcess,
  best: number,
  xs: Float64Array,
  m: number,
  values: Float64Array,
  grads: Float64Array,
): void {
  const D = gp.data.D;
  const mean = new Float64Array(m), variance = new Float64Array(m);
  const dMean = new Float64Array(m * D), dVar = new Float64Array(m * D);
  gp.predictManyGrad(xs, m, mean, variance, dMean, dVar);
  for (let p = 0; p < m; p++) {
    const sd = Math.sqrt(variance[p]);
    const z = (best - mean[p]) / sd;
    const { value, slope } = logH(z);
    values[p] = Math.log(sd) + value;
    for (let i = p * D; i < p * D + D; i++) {
      const dsd = dVar[i] / (2 * sd);
      grads[i] = dsd / sd + slope * (-dMean[i] - z * dsd) / sd;
    }
  }
}

/** The box the acquisition is maximised over. */
export interface AcqSpace {
  /** Inputs per point. */
  readonly D: number;
  /** Options per input (0 for a numeric input in [0, 1]). */
  readonly options: Int32Array;
}

/** Settings of {@linkcode maximizeLogEI}. */
export interface AcqOptions {
  /** Random preliminary points. */
  readonly samples: number;
  /** Local searches (the best preliminary point, roulette picks and the warm starts). */
  readonly localSearches: number;
  /** Extra starting points (e.g. the best observed input). */
  readonly warmStarts: readonly Float64Array[];
}

/** Maximises log EI; returns the best input and its value. */
export function maximizeLogEI(
  gp: GaussianProcess,
  best: number,
  space: AcqSpace,
  rng: Rng,
  opts: AcqOptions,
): { x: Float64Array; value: number } {
  const { D, options } = space;
  const pts: Float64Array[] = [];
  const vals = new Float64Array(opts.samples);
  const all = new Float64Array(opts.samples * D);
  for (let s = 0; s < opts.samples; s++) {
    const x = all.subarray(s * D, s * D + D);
    for (let i = 0; i < D; i++) x[i] = options[i] ? rng.int(0, options[i] - 1) : rng.next();
    pts.push(Float64Array.from(x));
  }
  // The random points are scored together (batched solves), as logEI would one by one.
  const means = new Float64Array(opts.samples), vars = new Float64Array(opts.samples);
  gp.predictMany(all, opts.samples, means, vars);
  let bi = 0;
  for (let s = 0; s < opts.samples; s++) {
    const sd = Math.sqrt(vars[s]);
    vals[s] = Math.log(sd) + logH((best - means[s]) / sd).value;
    if (vals[s] > vals[bi] || Number.isNaN(vals[bi])) bi = s;
  }
  // Roulette over exp(value − max), without the best one.
  const picked = [bi];
  const probs = new Float64Array(opts.samples);
  let total = 0;
  for (let s = 0; s < opts.samples; s++) {
    probs[s] = s === bi || !Number.isFinite(vals[s]) ? 0 : Math.exp(vals[s] - vals[bi]);
    total += probs[s];
  }
  const extra = Math.max(0, opts.localSearches - 1 - opts.warmStarts.length);
  for (let e = 0; e < extra && total > 1e-300; e++) {
    let u = rng.next() * total, s = 0;
    for (; s < opts.samples - 1; s++) {
      u -= probs[s];
      if (u <= 0 && probs[s] > 0) break;
    }
    if (probs[s] === 0) break;
    picked.push(s);
    total -= probs[s];
    probs[s] = 0;
  }
  const starts = picked.map((s) => pts[s]), startVals = picked.map((s) => vals[s]);
  if (opts.warmStarts.length) {
    const w = opts.warmStarts.length;
    const wx = new Float64Array(w * D), wm = new Float64Array(w), wv = new Float64Array(w);
    opts.warmStarts.forEach((x, k) => wx.set(x, k * D));
    gp.predictMany(wx, w, wm, wv);
    for (let k = 0; k < w; k++) {
      const sd = Math.sqrt(wv[k]);
      starts.push(Float64Array.from(opts.warmStarts[k]));
      startVals.push(Math.log(sd) + logH((best - wm[k]) / sd).value);
    }
  }
  let bestX = pts[bi], bestV = vals[bi];
  for (const r of localSearches(gp, best, space, starts, startVals)) {
    if (r.value > bestV || !Number.isFinite(bestV)) [bestX, bestV] = [r.x, r.value];
  }
  return { x: bestX, value: bestV };
}

/**
 * Local searches from each of `starts` (whose log EI is `values`), in lockstep: L-BFGS on the
 * numeric inputs, preconditioned by the lengthscales (u = x·√λ, where the acquisition is
 * isotropic), every search's points scored in one batch; then every option of each categorical
 * input in turn. A search whose categorical sweep changed nothing has converged (so a purely
 * numeric space takes one L-BFGS run, as Optuna's `local_search_mixed`); at most 3 rounds.
 */
function localSearches(
  gp: GaussianProcess,
  best: number,
  space: AcqSpace,
  starts: readonly Float64Array[],
  values: readonly number[],
): { x: Float64Array; value: number }[] {
  const { D, options } = space;
  const num: number[] = [];
  for (let i = 0; i < D; i++) if (!options[i]) num.push(i);
  const hasCat = num.length < D;
  const scale = num.map((i) => 1 / Math.sqrt(gp.params.invLs2[i]));
  const lo = new Float64Array(num.length), hi = Float64Array.from(num, (_, j) => 1 / scale[j]);
  const res = starts.map((x, k) => ({ x: Float64Array.from(x), value: values[k] }));
  let active = res.map((_, k) => k);
  for (let round = 0; round < 3 && active.length; round++) {
    if (num.length) {
      const runs = active.map((k) => ({
        k,
        it: lbfgsSteps(Float64Array.from(num, (i, j) => res[k].x[i] / scale[j]), {
          lo,
          hi,
          maxIter: 200,
          gtol: 1e-2,
          ftol: 2.2e-9,
        }),
        req: undefined as LbfgsRequest | undefined,
        out: undefined as MinimizeResult | undefined,
      }));
      for (const r of runs) {
        const step = r.it.next();
        if (step.done) r.out = step.value;
        else r.req = step.value;
      }
      let live = runs.filter((r) => r.req);
      const xs = new Float64Array(runs.length * D);
      const fv = new Float64Array(runs.length), gr = new Float64Array(runs.length * D);
      while (live.length) {
        live.forEach((r, b) => {
          const x = xs.subarray(b * D, b * D + D);
          x.set(res[r.k].x);
          for (let j = 0; j < num.length; j++) x[num[j]] = r.req!.x[j] * scale[j];
        });
        logEIMany(gp, best, xs, live.length, fv, gr);
        live.forEach((r, b) => {
          for (let j = 0; j < num.length; j++) r.req!.g[j] = -gr[b * D + num[j]] * scale[j];
          const step = r.it.next(Number.isFinite(fv[b]) ? -fv[b] : Infinity);
          if (step.done) [r.out, r.req] = [step.value, undefined];
          else r.req = step.value;
        });
        live = live.filter((r) => r.req);
      }
      for (const r of runs) {
        const o = r.out!, cur = res[r.k];
        if (-o.f > cur.value + 1e-9) {
          for (let j = 0; j < num.length; j++) {
            cur.x[num[j]] = Math.min(1, Math.max(0, o.x[j] * scale[j]));
          }
          cur.value = -o.f;
        }
      }
    }
    if (!hasCat) break;
    const changed: number[] = [];
    for (const k of active) {
      const cur = res[k], x = cur.x;
      let moved = false;
      for (let i = 0; i < D; i++) {
        if (!options[i]) continue;
        const keep = x[i];
        let bo = keep;
        for (let o = 0; o < options[i]; o++) {
          if (o === keep) continue;
          x[i] = o;
          const v = logEI(gp, best, x);
          if (v > cur.value + 1e-9) [cur.value, bo, moved] = [v, o, true];
        }
        x[i] = bo;
      }
      if (moved) changed.push(k);
    }
    // Searches go on only where a choice changed (the numeric inputs then move again).
    active = changed;
  }
  return res;
}
