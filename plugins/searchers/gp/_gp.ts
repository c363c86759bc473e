/**
 * A Gaussian-process regressor with a Matérn 5/2 ARD kernel over mixed inputs (squared
 * differences for numeric inputs in [0, 1], Hamming distance for categorical ones, as Optuna's
 * GPSampler), its hyperparameters fitted by maximising the marginal likelihood times Optuna's
 * priors, and the posterior mean and variance with their gradients.
 *
 * @module
 */

import { cholesky, cholInverse, lbfgsMinimize, solveLower, solveUpperT } from "../_linalg.ts";

const SQRT5 = Math.sqrt(5);

/** The Matérn 5/2 correlation as a function of the squared scaled distance r². */
export function matern52(r2: number): number {
  const s = SQRT5 * Math.sqrt(r2);
  return (1 + s + (5 / 3) * r2) * Math.exp(-s);
}

/** d matern52 / d r² (finite at r² = 0: −5/6). */
export function matern52Grad(r2: number): number {
  const s = SQRT5 * Math.sqrt(r2);
  return (-5 / 6) * (1 + s) * Math.exp(-s);
}

/** Kernel hyperparameters. */
export interface GpParams {
  /** 1 / lengthscale² per input. */
  readonly invLs2: Float64Array;
  /** Signal variance (the kernel's value at distance 0). */
  readonly scale: number;
  /** Observation noise variance. */
  readonly noise: number;
}

/** The training data: n inputs of D values (row-major), which inputs are categorical, targets. */
export interface GpData {
  /** n × D inputs. */
  readonly X: Float64Array;
  /** Number of points. */
  readonly n: number;
  /** Inputs per point. */
  readonly D: number;
  /** 1 where an input is categorical. */
  readonly isCat: Uint8Array;
  /** Targets (standardised). */
  readonly y: Float64Array;
}

/** The squared difference of input i between two values. */
function sqd(isCat: Uint8Array, i: number, a: number, b: number): number {
  return isCat[i] ? (a === b ? 0 : 1) : (a - b) * (a - b);
}

/** Optuna's log prior of the hyperparameters and its gradient in log space. */
function logPrior(p: GpParams, minNoise: number, grad: Float64Array): number {
  const D = p.invLs2.length;
  let lp = 0;
  for (let i = 0; i < D; i++) {
    const l = p.invLs2[i];
    lp -= 0.1 / l + 0.1 * l;
    grad[i] = 0.1 / l - 0.1 * l;
  }
  // Gamma(2, 1) on the scale, Gamma(1.1, 30) on the noise.
  lp += Math.log(p.scale) - p.scale;
  grad[D] = 1 - p.scale;
  lp += 0.1 * Math.log(p.noise) - 30 * p.noise;
  grad[D + 1] = (0.1 / p.noise - 30) * (p.noise - minNoise);
  return lp;
}

/**
 * Fits the hyperparameters by L-BFGS on log(1/ℓ²), log(scale) and log(noise − minNoise),
 * starting from `init` (a previous fit; else all ones, as Optuna), falling back to the default
 * start when that fails. With `deterministic`, the noise stays at `minNoise`.
 */
export function fitGp(
  data: GpData,
  init: GpParams | undefined,
  opts: { minNoise: number; deterministic: boolean; maxIter?: number },
): GpParams {
  const { X, n, D, isCat, y } = data;
  const { minNoise, deterministic } = opts;
  // Squared differences per pair (j < k) and input.
  const pairs = (n * (n - 1)) / 2;
  const S = new Float64Array(pairs * D);
  for (let j = 0, q = 0; j < n; j++) {
    for (let k = j + 1; k < n; k++, q++) {
      for (let i = 0; i < D; i++) S[q * D + i] = sqd(isCat, i, X[j * D + i], X[k * D + i]);
    }
  }
  const C = new Float64Array(n * n);
  const R2 = new Float64Array(pairs);
  const pgrad = new Float64Array(D + 2);
  const unpack = (raw: Float64Array): GpParams => ({
    invLs2: raw.slice(0, D).map(Math.exp),
    scale: Math.exp(raw[D]),
    noise: deterministic ? minNoise : minNoise + Math.exp(raw[D + 1]),
  });
  const fg = (raw: Float64Array, grad: Float64Array): number => {
    for (let i = 0; i < raw.length; i++) if (Math.abs(raw[i]) > 30) return Infinity;
    const p = unpack(raw);
    const lam = p.invLs2, s = p.scale;
    for (let j = 0, q = 0; j < n; j++) {
      C[j * n + j] = s + p.noise;
      for (let k = j + 1; k < n; k++, q++) {
        let r2 = 0;
        for (let i = 0; i < D; i++) r2 += lam[i] * S[q * D + i];
        R2[q] = r2;
        C[j * n + k] = C[k * n + j] = s * matern52(r2);
      }
    }
    const L = cholesky(C, n);
    if (!L) return Infinity;
    const alpha = solveUpperT(L, n, solveLower(L, n, y));
    let mll = 0;
    for (let j = 0; j < n; j++) mll -= Math.log(L[j * n + j]) + 0.5 * y[j] * alpha[j];
    const lp = logPrior(p, minNoise, pgrad);
    const Ci = cholInverse(L, n);
    // d mll / dθ = ½ tr((ααᵀ − C⁻¹) dC/dθ).
    grad.fill(0);
    let gScale = 0, gNoise = 0;
    for (let j = 0, q = 0; j < n; j++) {
      const wjj = alpha[j] * alpha[j] - Ci[j * n + j];
      gScale += 0.5 * wjj * s;
      gNoise += 0.5 * wjj;
      for (let k = j + 1; k < n; k++, q++) {
        const w = alpha[j] * alpha[k] - Ci[j * n + k];
        const kv = C[j * n + k];
        gScale += w * kv; // both triangles, halved
        const dm = w * s * matern52Grad(R2[q]);
        for (let i = 0; i < D; i++) grad[i] += dm * lam[i] * S[q * D + i];
      }
    }
    grad[D] = gScale;
    grad[D + 1] = deterministic ? 0 : gNoise * (p.noise - minNoise);
    for (let i = 0; i < D + 2; i++) grad[i] = -(grad[i] + pgrad[i]);
    if (deterministic) grad[D + 1] = 0;
    return -(mll + lp);
  };
  const start = (p: GpParams | undefined): Float64Array => {
    const raw = new Float64Array(D + 2);
    if (p && p.invLs2.length === D) {
      for (let i = 0; i < D; i++) raw[i] = Math.log(p.invLs2[i]);
      raw[D] = Math.log(p.scale);
      raw[D + 1] = Math.log(Math.max(p.noise - 0.99 * minNoise, 1e-12));
    } else raw[D + 1] = Math.log(1 - 0.99 * minNoise);
    return raw;
  };
  for (const s0 of init ? [start(init), start(undefined)] : [start(undefined)]) {
    const r = lbfgsMinimize(fg, s0, { maxIter: opts.maxIter ?? 50, gtol: 1e-2 });
    if (Number.isFinite(r.f)) return unpack(r.x);
  }
  return unpack(start(undefined));
}

/**
 * The Cholesky factor of `data`'s kernel matrix, reusing `prev`'s rows for the leading points the
 * two share (a leading block of a Cholesky factor is the factor of the leading block), or
 * undefined when it cannot (other parameters, a jittered factor, no shared points, or a pivot
 * that is not positive).
 */
function extendCholesky(
  prev: GaussianProcess,
  data: GpData,
  params: GpParams,
  kernel: (j: number, k: number) => number,
): Float64Array | undefined {
  const P = prev.factor();
  if (!P || prev.params !== params || prev.data.D !== data.D) return undefined;
  const { n, D, X } = data;
  const np = prev.data.n;
  let p = 0;
  const PX = prev.data.X;
  while (p < Math.min(n, np)) {
    let same = true;
    for (let i = 0; i < D; i++) {
      if (PX[p * D + i] !== X[p * D + i]) {
        same = false;
        break;
      }
    }
    if (!same) break;
    p++;
  }
  if (p === 0) return undefined;
  const L = new Float64Array(n * n);
  for (let i = 0; i < p; i++) L.set(P.subarray(i * np, i * np + i + 1), i * n);
  // Cholesky–Banachiewicz for the new rows.
  const diag = params.scale + params.noise;
  for (let i = p; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let sum = j === i ? diag : kernel(i, j);
      for (let k = 0; k < j; k++) sum -= L[ri + k] * L[rj + k];
      if (j < i) L[ri + j] = sum / L[rj + j];
      else {
        if (!(sum > 0) || !Number.isFinite(sum)) return undefined;
        L[ri + i] = Math.sqrt(sum);
      }
    }
  }
  return L;
}

/** A GP conditioned on data with fixed hyperparameters. */
export class GaussianProcess {
  private readonly L: Float64Array;
  private readonly alpha: Float64Array;
  private readonly k: Float64Array;
  private readonly dk: Float64Array;
  private readonly v: Float64Array;
  private readonly w: Float64Array;
  private Lt: Float64Array | undefined;
  /** Whether the factorisation needed jitter on the diagonal (then it is not extended). */
  private readonly jittered: boolean;

  /**
   * Conditions the GP. Adds jitter to the diagonal until the factorisation succeeds. With
   * `prev`, a GP of the same `params` whose first points are this one's first points (the
   * trials so far, before a new one finished or running ones were added), its Cholesky factor
   * is extended by the new rows: O(n²) per new point instead of O(n³) for all.
   *
   * @throws {Error} when the kernel matrix cannot be factored even with jitter.
   */
  constructor(readonly data: GpData, readonly params: GpParams, prev?: GaussianProcess) {
    const { X, n, D, isCat, y } = data;
    const lam = params.invLs2, s = params.scale;
    const kernel = (j: number, k: number): number => {
      let r2 = 0;
      for (let i = 0; i < D; i++) r2 += lam[i] * sqd(isCat, i, X[j * D + i], X[k * D + i]);
      return s * matern52(r2);
    };
    let L = prev ? extendCholesky(prev, data, params, kernel) : undefined;
    let jittered = false;
    if (!L) {
      const C = new Float64Array(n * n);
      for (let j = 0; j < n; j++) {
        C[j * n + j] = s + params.noise;
        for (let k = j + 1; k < n; k++) C[j * n + k] = C[k * n + j] = kernel(j, k);
      }
      L = cholesky(C, n);
      for (let jitter = 1e-8 * s; !L && jitter < s; jitter *= 10) {
        for (let j = 0; j < n; j++) C[j * n + j] += jitter;
        L = cholesky(C, n);
        jittered = true;
      }
    }
    if (!L) throw new Error("GaussianProcess: the kernel matrix is not positive definite");
    this.jittered = jittered;
    this.L = L;
    this.alpha = solveUpperT(L, n, solveLower(L, n, y));
    this.k = new Float64Array(n);
    this.dk = new Float64Array(n * D);
    this.v = new Float64Array(n);
    this.w = new Float64Array(n);
  }

  /** Lᵀ (row-major), made on first use by {@linkcode GaussianProcess.predict} with gradients. */
  private transposed(): Float64Array {
    if (!this.Lt) {
      const { L } = this, n = this.data.n;
      const Lt = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) Lt[j * n + i] = L[i * n + j];
      this.Lt = Lt;
    }
    return this.Lt;
  }

  /** The Cholesky factor (n × n, row-major) if it can be extended: no jitter was needed. */
  factor(): Float64Array | undefined {
    return this.jittered ? undefined : this.L;
  }

  /**
   * The posterior mean and variance at each of `m` points (`xs`: m × D, row-major), written into
   * `mean` and `variance`: the same values as {@linkcode GaussianProcess.predict}, with the
   * triangular solves done 8 points at a time (each row of the factor is read once per block).
   */
  predictMany(xs: Float64Array, m: number, mean: Float64Array, variance: Float64Array): void {
    const { X, n, D, isCat } = this.data;
    const lam = this.params.invLs2, s = this.params.scale;
    const { L, alpha } = this;
    const B = 8;
    // V holds the solves of the block, point-major per row: V[j * B + b].
    const V = new Float64Array(n * B), q = new Float64Array(B);
    for (let p0 = 0; p0 < m; p0 += B) {
      const nb = Math.min(B, m - p0);
      for (let b = 0; b < B; b++) {
        if (b >= nb) {
          for (let j = 0; j < n; j++) V[j * B + b] = 0;
          continue;
        }
        const p = p0 + b;
        let mu = 0;
        for (let j = 0; j < n; j++) {
          let r2 = 0;
          for (let i = 0; i < D; i++) r2 += lam[i] * sqd(isCat, i, xs[p * D + i], X[j * D + i]);
          const kj = s * matern52(r2);
          V[j * B + b] = kj;
          mu += kj * alpha[j];
        }
        mean[p] = mu;
      }
      forwardBlock(L, n, V, B);
      q.fill(0);
      for (let j = 0; j < n; j++) {
        const jb = j * B;
        for (let b = 0; b < B; b++) q[b] += V[jb + b] * V[jb + b];
      }
      for (let b = 0; b < nb; b++) variance[p0 + b] = Math.max(s - q[b], 1e-12 * s);
    }
  }

  /**
   * {@linkcode GaussianProcess.predictMany} with the gradients: the mean, variance and their
   * gradients with respect to the numeric inputs (`dMean`, `dVar`: m × D, categorical components
   * 0) at each of `m` points, the same values as {@linkcode GaussianProcess.predict} gives one
   * point at a time. Both triangular solves run 8 points at a time (each row of the factor read
   * once per block), and the gradients are accumulated as 2λᵢ·(xᵢ·Σⱼ cⱼ − Σⱼ cⱼ·Xⱼᵢ) with one
   * weight cⱼ per training point, without an n × D table per point.
   */
  predictManyGrad(
    xs: Float64Array,
    m: number,
    mean: Float64Array,
    variance: Float64Array,
    dMean: Float64Array,
    dVar: Float64Array,
  ): void {
    const { X, n, D, isCat } = this.data;
    const lam = this.params.invLs2, s = this.params.scale;
    const { L, alpha } = this;
    const Lt = this.transposed();
    // V: the forward solves, then (in place) the back solves; G: s·matern52'(r²) per point.
    const V = new Float64Array(n * 8), G = new Float64Array(n * 8);
    const q = new Float64Array(8);
    const sumA = new Float64Array(D), sumW = new Float64Array(D);
    for (let p0 = 0, B = 8; p0 < m; p0 += B) {
      // Blocks of 8 points, of 4 for the last 2–4 (a block costs its width), 1 for a last one.
      const rest = m - p0;
      B = rest > 4 ? 8 : rest > 1 ? 4 : 1;
      const nb = Math.min(B, rest);
      for (let b = 0; b < B; b++) {
        if (b >= nb) {
          // An empty column of a block: zeros solve to zeros.
          for (let j = 0; j < n; j++) V[j * B + b] = G[j * B + b] = 0;
          continue;
        }
        const p = p0 + b;
        let mu = 0;
        for (let j = 0; j < n; j++) {
          let r2 = 0;
          for (let i = 0; i < D; i++) r2 += lam[i] * sqd(isCat, i, xs[p * D + i], X[j * D + i]);
          const kj = s * matern52(r2);
          V[j * B + b] = kj;
          G[j * B + b] = s * matern52Grad(r2);
          mu += kj * alpha[j];
        }
        mean[p] = mu;
      }
      forwardBlock(L, n, V, B);
      q.fill(0);
      for (let j = 0; j < n; j++) {
        const jb = j * B;
        for (let b = 0; b < B; b++) q[b] += V[jb + b] * V[jb + b];
      }
      backBlock(Lt, n, V, B);
      for (let b = 0; b < nb; b++) {
        const p = p0 + b;
        const v = s - q[b];
        variance[p] = Math.max(v, 1e-12 * s);
        // d mean/dxᵢ = Σⱼ αⱼ·gⱼ·2λᵢ(xᵢ − Xⱼᵢ); d var/dxᵢ = −2·Σⱼ wⱼ·gⱼ·2λᵢ(xᵢ − Xⱼᵢ).
        let a = 0, w = 0;
        sumA.fill(0);
        sumW.fill(0);
        for (let j = 0; j < n; j++) {
          const gj = G[j * B + b];
          const aj = alpha[j] * gj, wj = V[j * B + b] * gj;
          a += aj;
          w += wj;
          const rj = j * D;
          for (let i = 0; i < D; i++) {
            sumA[i] += aj * X[rj + i];
            sumW[i] += wj * X[rj + i];
          }
        }
        const flat = v <= 1e-12 * s;
        for (let i = 0; i < D; i++) {
          const o = p * D + i;
          if (isCat[i]) {
            dMean[o] = dVar[o] = 0;
            continue;
          }
          const xi = xs[o], l2 = 2 * lam[i];
          dMean[o] = l2 * (xi * a - sumA[i]);
          dVar[o] = flat ? 0 : -2 * l2 * (xi * w - sumW[i]);
        }
      }
    }
  }

  /**
   * The posterior mean and variance of f at x; with `dMean`/`dVar`, also their gradients with
   * respect to the numeric inputs (categorical components are left at 0).
   */
  predict(
    x: Float64Array,
    dMean?: Float64Array,
    dVar?: Float64Array,
  ): { mean: number; variance: number } {
    const { X, n, D, isCat } = this.data;
    const lam = this.params.invLs2, s = this.params.scale;
    const { k, dk, v, L, alpha } = this;
    const withGrad = dMean !== undefined && dVar !== undefined;
    let mean = 0;
    for (let j = 0; j < n; j++) {
      let r2 = 0;
      for (let i = 0; i < D; i++) r2 += lam[i] * sqd(isCat, i, x[i], X[j * D + i]);
      k[j] = s * matern52(r2);
      mean += k[j] * alpha[j];
      if (withGrad) {
        const g = s * matern52Grad(r2);
        for (let i = 0; i < D; i++) {
          dk[j * D + i] = isCat[i] ? 0 : g * lam[i] * 2 * (x[i] - X[j * D + i]);
        }
      }
    }
    solveLower(L, n, k, v);
    let vv = 0;
    for (let j = 0; j < n; j++) vv += v[j] * v[j];
    const variance = Math.max(s - vv, 1e-12 * s);
    if (withGrad) {
      // w = C⁻¹ k = L⁻ᵀ v, by back substitution along the rows of Lᵀ (contiguous).
      const Lt = this.transposed();
      const w = this.w;
      for (let i = n - 1; i >= 0; i--) {
        const ri = i * n;
        let acc = v[i];
        for (let j = i + 1; j < n; j++) acc -= Lt[ri + j] * w[j];
        w[i] = acc / Lt[ri + i];
      }
      dMean.fill(0);
      dVar.fill(0);
      for (let j = 0; j < n; j++) {
        const aj = alpha[j], wj = -2 * w[j];
        for (let i = 0; i < D; i++) {
          dMean[i] += aj * dk[j * D + i];
          dVar[i] += wj * dk[j * D + i];
        }
      }
      if (s - vv <= 1e-12 * s) dVar.fill(0);
    }
    return { mean, variance };
  }
}

/**
 * Forward substitution L·v = k for B = 8, 4 or 1 right-hand sides at once, in place in `V`
 * (V[j·B + b] is row j of right-hand side b): each row of L is read once for the B, with B
 * running sums (unrolled: generic inner loops run at half the speed in V8).
 */
function forwardBlock(L: Float64Array, n: number, V: Float64Array, B: number): void {
  if (B === 8) {
    // Two rows of L at a time: each loaded block of V serves 16 running sums (the second row's
    // sums take the first row's result last, so every sum runs in the same order as one row at a
    // time: the same values to the bit, ~20 % faster).
    let j = 0;
    for (; j + 1 < n; j += 2) {
      const r0 = j * n, r1 = r0 + n, jb = j * 8;
      let a0 = V[jb], a1 = V[jb + 1], a2 = V[jb + 2], a3 = V[jb + 3];
      let a4 = V[jb + 4], a5 = V[jb + 5], a6 = V[jb + 6], a7 = V[jb + 7];
      let b0 = V[jb + 8], b1 = V[jb + 9], b2 = V[jb + 10], b3 = V[jb + 11];
      let b4 = V[jb + 12], b5 = V[jb + 13], b6 = V[jb + 14], b7 = V[jb + 15];
      for (let k = 0, kb = 0; k < j; k++, kb += 8) {
        const l = L[r0 + k], m = L[r1 + k];
        const v0 = V[kb], v1 = V[kb + 1], v2 = V[kb + 2], v3 = V[kb + 3];
        const v4 = V[kb + 4], v5 = V[kb + 5], v6 = V[kb + 6], v7 = V[kb + 7];
        a0 -= l * v0;
        a1 -= l * v1;
        a2 -= l * v2;
        a3 -= l * v3;
        a4 -= l * v4;
        a5 -= l * v5;
        a6 -= l * v6;
        a7 -= l * v7;
        b0 -= m * v0;
        b1 -= m * v1;
        b2 -= m * v2;
        b3 -= m * v3;
        b4 -= m * v4;
        b5 -= m * v5;
        b6 -= m * v6;
        b7 -= m * v7;
      }
      const inv = 1 / L[r0 + j];
      a0 *= inv;
      a1 *= inv;
      a2 *= inv;
      a3 *= inv;
      a4 *= inv;
      a5 *= inv;
      a6 *= inv;
      a7 *= inv;
      V[jb] = a0;
      V[jb + 1] = a1;
      V[jb + 2] = a2;
      V[jb + 3] = a3;
      V[jb + 4] = a4;
      V[jb + 5] = a5;
      V[jb + 6] = a6;
      V[jb + 7] = a7;
      const m = L[r1 + j], inv1 = 1 / L[r1 + j + 1];
      V[jb + 8] = (b0 - m * a0) * inv1;
      V[jb + 9] = (b1 - m * a1) * inv1;
      V[jb + 10] = (b2 - m * a2) * inv1;
      V[jb + 11] = (b3 - m * a3) * inv1;
      V[jb + 12] = (b4 - m * a4) * inv1;
      V[jb + 13] = (b5 - m * a5) * inv1;
      V[jb + 14] = (b6 - m * a6) * inv1;
      V[jb + 15] = (b7 - m * a7) * inv1;
    }
    if (j < n) {
      // The last row when n is odd.
      const rj = j * n, jb = j * 8;
      for (let b = 0; b < 8; b++) {
        let a = V[jb + b];
        for (let k = 0; k < j; k++) a -= L[rj + k] * V[k * 8 + b];
        V[jb + b] = a * (1 / L[rj + j]); // as the loops above: times the reciprocal
      }
    }
  } else if (B === 4) {
    for (let j = 0; j < n; j++) {
      const rj = j * n, jb = j * 4;
      let a0 = V[jb], a1 = V[jb + 1], a2 = V[jb + 2], a3 = V[jb + 3];
      for (let k = 0, kb = 0; k < j; k++, kb += 4) {
        const l = L[rj + k];
        a0 -= l * V[kb];
        a1 -= l * V[kb + 1];
        a2 -= l * V[kb + 2];
        a3 -= l * V[kb + 3];
      }
      const inv = 1 / L[rj + j];
      V[jb] = a0 * inv;
      V[jb + 1] = a1 * inv;
      V[jb + 2] = a2 * inv;
      V[jb + 3] = a3 * inv;
    }
  } else solveLower(L, n, V, V);
}

/**
 * Back substitution Lᵀ·w = v for B = 8, 4 or 1 right-hand sides at once, in place (`Lt` = Lᵀ,
 * row-major; layout as {@linkcode forwardBlock}).
 */
function backBlock(Lt: Float64Array, n: number, V: Float64Array, B: number): void {
  if (B === 8) {
    for (let i = n - 1; i >= 0; i--) {
      const ri = i * n, ib = i * 8;
      let a0 = V[ib], a1 = V[ib + 1], a2 = V[ib + 2], a3 = V[ib + 3];
      let a4 = V[ib + 4], a5 = V[ib + 5], a6 = V[ib + 6], a7 = V[ib + 7];
      for (let j = i + 1, jb = (i + 1) * 8; j < n; j++, jb += 8) {
        const l = Lt[ri + j];
        a0 -= l * V[jb];
        a1 -= l * V[jb + 1];
        a2 -= l * V[jb + 2];
        a3 -= l * V[jb + 3];
        a4 -= l * V[jb + 4];
        a5 -= l * V[jb + 5];
        a6 -= l * V[jb + 6];
        a7 -= l * V[jb + 7];
      }
      const inv = 1 / Lt[ri + i];
      V[ib] = a0 * inv;
      V[ib + 1] = a1 * inv;
      V[ib + 2] = a2 * inv;
      V[ib + 3] = a3 * inv;
      V[ib + 4] = a4 * inv;
      V[ib + 5] = a5 * inv;
      V[ib + 6] = a6 * inv;
      V[ib + 7] = a7 * inv;
    }
  } else if (B === 4) {
    for (let i = n - 1; i >= 0; i--) {
      const ri = i * n, ib = i * 4;
      let a0 = V[ib], a1 = V[ib + 1], a2 = V[ib + 2], a3 = V[ib + 3];
      for (let j = i + 1, jb = (i + 1) * 4; j < n; j++, jb += 4) {
        const l = Lt[ri + j];
        a0 -= l * V[jb];
        a1 -= l * V[jb + 1];
        a2 -= l * V[jb + 2];
        a3 -= l * V[jb + 3];
      }
      const inv = 1 / Lt[ri + i];
      V[ib] = a0 * inv;
      V[ib + 1] = a1 * inv;
      V[ib + 2] = a2 * inv;
      V[ib + 3] = a3 * inv;
    }
  } else {
    for (let i = n - 1; i >= 0; i--) {
      const ri = i * n;
      let acc = V[i];
      for (let j = i + 1; j < n; j++) acc -= Lt[ri + j] * V[j];
      V[i] = acc / Lt[ri + i];
    }
  }
}
