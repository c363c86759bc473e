/**
 * Log expected improvement (minimisation) and its maximisation over a mixed box: random
 * preliminary points, the best of them plus roulette-selected ones and given warm starts as
 * starting points, then local search (L-BFGS on the numeric inputs, preconditioned by the
 * lengthscales, alternating with trying every option of each categorical input), as Optuna's
 * GPSampler does.
 *
 * @module
 */

import type { Rng } from "../../../core/random.ts";
import { lbfgsMinimize } from "../_linalg.ts";
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
  const starts: Float64Array[] = [pts[bi]];
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
    starts.push(pts[s]);
    total -= probs[s];
    probs[s] = 0;
  }
  for (const w of opts.warmStarts) starts.push(Float64Array.from(w));
  let bestX = pts[bi], bestV = vals[bi];
  for (const x0 of starts) {
    const r = localSearch(gp, best, space, x0);
    if (r.value > bestV || !Number.isFinite(bestV)) [bestX, bestV] = [r.x, r.value];
  }
  return { x: bestX, value: bestV };
}

function localSearch(
  gp: GaussianProcess,
  best: number,
  space: AcqSpace,
  x0: Float64Array,
): { x: Float64Array; value: number } {
  const { D, options } = space;
  const num: number[] = [];
  for (let i = 0; i < D; i++) if (!options[i]) num.push(i);
  // Precondition: optimise u = x·√λ, so the acquisition is isotropic in u.
  const scale = num.map((i) => 1 / Math.sqrt(gp.params.invLs2[i]));
  const lo = new Float64Array(num.length), hi = num.map((_, j) => 1 / scale[j]);
  const hiArr = Float64Array.from(hi);
  const scratch = { dMean: new Float64Array(D), dVar: new Float64Array(D) };
  const full = new Float64Array(D);
  const x = Float64Array.from(x0);
  let value = logEI(gp, best, x);
  for (let round = 0; round < 3; round++) {
    let improved = false;
    if (num.length) {
      const u0 = Float64Array.from(num, (i, j) => x[i] / scale[j]);
      const xx = Float64Array.from(x);
      const r = lbfgsMinimize(
        (u, g) => {
          for (let j = 0; j < num.length; j++) xx[num[j]] = u[j] * scale[j];
          const v = logEI(gp, best, xx, full, scratch);
          for (let j = 0; j < num.length; j++) g[j] = -full[num[j]] * scale[j];
          return Number.isFinite(v) ? -v : Infinity;
        },
        u0,
        { lo, hi: hiArr, maxIter: 200, gtol: 1e-2 },
      );
      if (-r.f > value + 1e-9) {
        for (let j = 0; j < num.length; j++) {
          x[num[j]] = Math.min(1, Math.max(0, r.x[j] * scale[j]));
        }
        value = logEI(gp, best, x);
        improved = true;
      }
    }
    for (let i = 0; i < D; i++) {
      if (!options[i]) continue;
      const keep = x[i];
      let bo = keep;
      for (let o = 0; o < options[i]; o++) {
        if (o === keep) continue;
        x[i] = o;
        const v = logEI(gp, best, x);
        if (v > value + 1e-9) [value, bo, improved] = [v, o, true];
      }
      x[i] = bo;
    }
    if (!improved) break;
  }
  return { x, value };
}
