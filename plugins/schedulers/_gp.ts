// PB2's Gaussian process: the time-varying squared exponential kernel of Bogunovic et al. 2016
// as Ray's `pb2_utils.TV_SquaredExp`, exact GP regression (Cholesky), hyperparameters fitted by
// maximising the log marginal likelihood, and the batch UCB acquisition of Ray's `UCB`.
// Private module (leading underscore): not part of the public API.

import type { Rng } from "../../core/random.ts";

/** Kernel hyperparameters: `variance * exp(-|x - y|^2 / lengthscale) * (1 - epsilon)^(|t - t'| / 2)`. */
export interface TvKernel {
  variance: number;
  lengthscale: number;
  epsilon: number;
}

/** Ray's bounds for the kernel hyperparameters. */
const BOUNDS: [number, number][] = [[1e-5, 1e5], [1e-5, 1e5], [1e-5, 0.5]];

/** One kernel value; column 0 of a point is time, the rest are the "spatial" inputs. */
export function kernel(k: TvKernel, a: readonly number[], b: readonly number[]): number {
  const eps = Math.min(Math.max(k.epsilon, 1e-5), 0.5);
  let d2 = 0;
  for (let i = 1; i < a.length; i++) d2 += (a[i] - b[i]) ** 2;
  return k.variance * Math.exp(-d2 / k.lengthscale) * (1 - eps) ** (0.5 * Math.abs(a[0] - b[0]));
}

/** A fitted GP: predicts the mean and variance at new points. */
export interface Gp {
  readonly x: readonly (readonly number[])[];
  readonly kernel: TvKernel;
  /** The log marginal likelihood of the training data. */
  readonly logLikelihood: number;
  /** Mean and variance at `p`. */
  predict(p: readonly number[]): { mean: number; variance: number };
}

/** Lower Cholesky factor of a symmetric positive definite matrix (row-major), or undefined. */
function cholesky(a: Float64Array, n: number): Float64Array | undefined {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      if (i === j) {
        if (!(s > 0)) return undefined;
        l[i * n + i] = Math.sqrt(s);
      } else l[i * n + j] = s / l[j * n + j];
    }
  }
  return l;
}

/** Solves L z = b (forward). */
function forward(l: Float64Array, n: number, b: readonly number[]): Float64Array {
  const z = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= l[i * n + k] * z[k];
    z[i] = s / l[i * n + i];
  }
  return z;
}

/** Solves L^T z = b (backward). */
function backward(l: Float64Array, n: number, b: Float64Array): Float64Array {
  const z = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i];
    for (let k = i + 1; k < n; k++) s -= l[k * n + i] * z[k];
    z[i] = s / l[i * n + i];
  }
  return z;
}

/** Fits a GP with fixed kernel hyperparameters; sklearn's `alpha` 1e-10 on the diagonal. */
export function fitGp(
  x: readonly (readonly number[])[],
  y: readonly number[],
  k: TvKernel,
): Gp | undefined {
  const n = x.length;
  // As Ray, which retries with jitter on a LinAlgError.
  for (const jitter of [1e-10, 1e-6, 1e-3]) {
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        const v = kernel(k, x[i], x[j]);
        a[i * n + j] = v;
        a[j * n + i] = v;
      }
      a[i * n + i] += jitter;
    }
    const l = cholesky(a, n);
    if (!l) continue;
    const alpha = backward(l, n, forward(l, n, y));
    let logDet = 0, fit = 0;
    for (let i = 0; i < n; i++) {
      logDet += Math.log(l[i * n + i]);
      fit += y[i] * alpha[i];
    }
    const logLikelihood = -0.5 * fit - logDet - 0.5 * n * Math.log(2 * Math.PI);
    return {
      x,
      kernel: k,
      logLikelihood,
      predict(p) {
        const ks = x.map((xi) => kernel(k, p, xi));
        let mean = 0;
        for (let i = 0; i < n; i++) mean += ks[i] * alpha[i];
        const v = forward(l, n, ks);
        let vv = 0;
        for (let i = 0; i < n; i++) vv += v[i] * v[i];
        return { mean, variance: Math.max(k.variance - vv, 0) };
      },
    };
  }
  return undefined;
}

/**
 * Fits the kernel hyperparameters by maximising the log marginal likelihood (Nelder-Mead in
 * log space inside Ray's bounds, from Ray's start `(1, 1, 0.1)` or from `from`), then the GP.
 */
export function fitGpMl(
  x: readonly (readonly number[])[],
  y: readonly number[],
  from?: TvKernel,
): Gp | undefined {
  const lo = BOUNDS.map((b) => Math.log(b[0])), hi = BOUNDS.map((b) => Math.log(b[1]));
  const clamp = (t: number[]) => t.map((v, i) => Math.min(Math.max(v, lo[i]), hi[i]));
  const make = (t: number[]): TvKernel => ({
    variance: Math.exp(t[0]),
    lengthscale: Math.exp(t[1]),
    epsilon: Math.exp(t[2]),
  });
  const cost = (t: number[]): number => {
    const gp = fitGp(x, y, make(clamp(t)));
    return gp ? -gp.logLikelihood : Infinity;
  };
  const start = from
    ? clamp([Math.log(from.variance), Math.log(from.lengthscale), Math.log(from.epsilon)])
    : [0, 0, Math.log(0.1)];
  const simplex = [start, ...start.map((_, i) => start.map((v, j) => (i === j ? v + 1 : v)))]
    .map((t) => ({ t, f: cost(t) }));
  for (let iter = 0; iter < 30; iter++) {
    simplex.sort((a, b) => a.f - b.f);
    const best = simplex[0], worst = simplex[3];
    if (Math.abs(worst.f - best.f) < 1e-4 * Math.max(1, Math.abs(best.f))) break;
    const centroid = [0, 1, 2].map((i) =>
      (simplex[0].t[i] + simplex[1].t[i] + simplex[2].t[i]) / 3
    );
    const along = (s: number) => centroid.map((c, i) => c + s * (worst.t[i] - c));
    const r = along(-1), fr = cost(r);
    if (fr < best.f) {
      const e = along(-2), fe = cost(e);
      simplex[3] = fe < fr ? { t: e, f: fe } : { t: r, f: fr };
    } else if (fr < simplex[2].f) simplex[3] = { t: r, f: fr };
    else {
      const c = along(0.5), fc = cost(c);
      if (fc < worst.f) simplex[3] = { t: c, f: fc };
      else {
        for (let i = 1; i < 4; i++) {
          const t = simplex[i].t.map((v, j) => best.t[j] + 0.5 * (v - best.t[j]));
          simplex[i] = { t, f: cost(t) };
        }
      }
    }
  }
  simplex.sort((a, b) => a.f - b.f);
  return fitGp(x, y, make(clamp(simplex[0].t))) ?? fitGp(x, y, make(start));
}

/**
 * Ray's PB2 `UCB`: the mean from `m`, the variance from `m1` (which also holds the points
 * chosen in this round, so a batch spreads out), `kappa = sqrt(0.2 + max(0, log(0.4 n)))`.
 * Ray adds `kappa * variance` (not the standard deviation); so does this.
 */
export function ucb(m: Gp, m1: Gp, fixed: readonly number[], h: readonly number[]): number {
  const kappa = Math.sqrt(0.2 + Math.max(0, Math.log(0.4 * m.x.length)));
  const p = [...fixed, ...h];
  return m.predict(p).mean + kappa * m1.predict(p).variance;
}

/**
 * Maximises `f` over `[0, 1]^d`: Ray starts L-BFGS-B from 10 random points; here 60 random
 * candidates are scored and the best 2 are refined by a shrinking coordinate pattern search
 * (no gradients needed).
 */
export function maximise(f: (h: number[]) => number, d: number, rng: Rng): number[] {
  const starts = Array.from({ length: 60 }, () => {
    const h = Array.from({ length: d }, () => rng.next());
    return { h, v: f(h) };
  }).sort((a, b) => b.v - a.v).slice(0, 2);
  let best = starts[0];
  for (let { h, v } of starts) {
    for (let step = 0.125; step > 4e-3; step /= 2) {
      let improved = true;
      while (improved) {
        improved = false;
        for (let i = 0; i < d; i++) {
          for (const s of [step, -step]) {
            const c = h.slice();
            c[i] = Math.min(1, Math.max(0, c[i] + s));
            const cv = f(c);
            if (cv > v) {
              h = c, v = cv, improved = true;
            }
          }
        }
      }
    }
    if (v > best.v) best = { h, v };
  }
  return best.h;
}
