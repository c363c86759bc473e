/**
 * Parzen estimators of a TPE: a mixture with one kernel per observation plus a prior kernel, a
 * truncated Gaussian per numeric parameter (its width from the gaps to neighbouring
 * observations, or Scott's rule) and a smoothed indicator per choice; log-densities and draws.
 *
 * @module
 */

import type { Rng } from "../../../core/random.ts";
import { LOG_SQRT_2PI, logMass, truncNormal } from "../_math.ts";
import {
  type Dim,
  logInside,
  type PriorTerms,
  priorTerms,
  toExternal,
  toInternal,
} from "./_dims.ts";
import type { Observations } from "./_observations.ts";

/** The estimator settings (see `TpeSearcherOptions` for their meaning). */
export interface ParzenSettings {
  /** Weight of the prior kernel. */
  readonly priorWeight: number;
  /** Floor kernel widths at range / min(100, observations + 2)^clipExponent. */
  readonly magicClip: boolean;
  /** Exponent of the magic clip. */
  readonly clipExponent: number;
  /** Let the domain bounds widen the outermost kernels. */
  readonly considerEndpoints: boolean;
  /** Observation weights. */
  readonly weights: "forgetting" | "uniform" | "ei";
  /** Kernel width rule. */
  readonly bandwidth: "gap" | "scott";
  /** Smallest width as a fraction of the range. */
  readonly minBandwidth: number;
}

/** One parameter's part of a mixture: kernel parameters by slot (the prior is the last slot). */
export interface Part {
  /** Kernel centres. */
  mu: Float64Array;
  /** Kernel widths. */
  sig: Float64Array;
  /** 1 / width. */
  inv: Float64Array;
  /** −log Z (truncation) per kernel. */
  lz: Float64Array;
  /** −log σ − log √(2π) − log Z per kernel. */
  cst: Float64Array;
  /** Categorical: the observed option per kernel (−1: uniform row). */
  cat: Int32Array;
  /** log-probability of a kernel's own option. */
  logHit: number;
  /** log-probability of another option. */
  logMiss: number;
  /** log-probability under a uniform row. */
  logUni: number;
  /** Probability that a categorical kernel draws its own option outright. */
  pOwn: number;
}

/** A fitted mixture. */
export interface Mixture {
  /** Number of kernels (members + prior). */
  readonly n: number;
  /** log weight per kernel. */
  readonly logw: Float64Array;
  /** Cumulative weights, for drawing a kernel. */
  readonly cumw: Float64Array;
  /** Parts by dim index (undefined for dims not in this mixture). */
  readonly parts: (Part | undefined)[];
}

interface Buffer {
  mu: Float64Array;
  sig: Float64Array;
  inv: Float64Array;
  lz: Float64Array;
  cst: Float64Array;
  sv: Float64Array;
  sr: Int32Array;
}

/** Fits and evaluates the Parzen estimators of one TPE (holds reusable buffers). */
export class Parzen {
  private readonly buffers: Buffer[][] = [[], []];
  private pendOrder = new Int32Array(16);
  private readonly priors: PriorTerms[];

  /** An estimator factory over `dims`, fed by `obs`. */
  constructor(
    private readonly dims: readonly Dim[],
    private readonly obs: Observations,
    private readonly settings: ParzenSettings,
  ) {
    this.priors = dims.map(priorTerms);
  }

  /**
   * Fits a mixture over `dimList` to `members` (obs indices ≥ 0, pending trials as −1 − index
   * into `pend`), in the order given (oldest first, for the forgetting weights). `threshold` is
   * the loss of the best bad observation ("ei" weights of the good set).
   */
  fit(
    dimList: readonly number[],
    members: readonly number[],
    pend: readonly Float64Array[],
    good: boolean,
    threshold: number,
  ): Mixture {
    const { priorWeight } = this.settings;
    const m = members.length;
    const n = m + 1;
    const w = this.weightsOf(members, good, threshold);
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
    const slot = this.obs.slot;
    for (let i = 0; i < m; i++) {
      const r = members[i];
      if (r >= 0) slot[r] = i;
      else pendSlot[-1 - r] = i;
    }
    const parts: (Part | undefined)[] = [];
    for (const p of dimList) parts[p] = this.fitPart(p, m, good, pend, pendSlot, members);
    return { n, logw, cumw, parts };
  }

  private weightsOf(members: readonly number[], good: boolean, threshold: number): Float64Array {
    const loss = this.obs.loss;
    const m = members.length;
    const w = new Float64Array(m).fill(1);
    const rule = this.settings.weights;
    if (rule === "ei" && good && m > 0 && this.obs.multiObjective) {
      // MOTPE: each good observation weighs its hypervolume contribution (mean 1).
      let sum = 0;
      for (let i = 0; i < m; i++) sum += w[i] = this.obs.goodWeight[members[i]];
      if (!(sum > 0) || !Number.isFinite(sum)) w.fill(1);
      else for (let i = 0; i < m; i++) w[i] *= m / sum;
      return w;
    }
    if (rule === "ei" && good && m > 0) {
      let worst = -Infinity;
      for (const r of members) if (loss[r] > worst) worst = loss[r];
      const thr = Number.isFinite(threshold) ? threshold : worst + 1e-12;
      let sum = 0;
      for (let i = 0; i < m; i++) sum += w[i] = Math.max(1e-12, thr - loss[members[i]]);
      if (!(sum > 0) || !Number.isFinite(sum)) w.fill(1);
      else for (let i = 0; i < m; i++) w[i] *= m / sum; // mean 1, as one observation
      return w;
    }
    if (rule !== "uniform" && m >= 25) {
      const ramp = m - 25;
      for (let i = 0; i < ramp; i++) {
        w[i] = ramp === 1 ? 1 / m : 1 / m + (1 - 1 / m) * i / (ramp - 1);
      }
    }
    return w;
  }

  private buffer(good: boolean, p: number, n: number): Buffer {
    const g = good ? 0 : 1;
    let b = this.buffers[g][p];
    if (!b || b.mu.length < n) {
      const cap = Math.max(32, n * 2);
      b = this.buffers[g][p] = {
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
  }

  private fitPart(
    p: number,
    m: number,
    good: boolean,
    pend: readonly Float64Array[],
    pendSlot: readonly number[],
    members: readonly number[],
  ): Part {
    const obs = this.obs, D = obs.D, vals = obs.vals;
    const s = this.settings;
    const d = this.dims[p];
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
        const r = members[i];
        const v = r >= 0 ? vals[r * D + p] : pend[-1 - r][p];
        if (!Number.isNaN(v)) {
          cat[i] = v;
          c++;
        }
      }
      // Optuna's categorical kernel: prior_weight / n_kernels on every option, +1 on its own.
      const eps = s.priorWeight / (c + 1);
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
    const b = this.buffer(good, p, n);
    const { sv, sr } = b;
    let np = 0;
    if (this.pendOrder.length < pend.length) this.pendOrder = new Int32Array(pend.length * 2);
    const pendOrder = this.pendOrder;
    for (let i = 0; i < pend.length; i++) {
      if (pendSlot[i] === undefined || Number.isNaN(pend[i][p])) continue;
      pendOrder[np++] = i;
    }
    if (np > 1) pendOrder.subarray(0, np).sort((x, y) => pend[x][p] - pend[y][p]);
    const list = obs.sortedByDim[p];
    const isGood = obs.isGood;
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
      s.magicClip ? range / Math.min(100, 2 + c) ** s.clipExponent : 1e-12,
      s.minBandwidth * range,
    );
    let scott = NaN;
    if (s.bandwidth === "scott" && c >= 2) {
      let mean = 0;
      for (let i = 0; i < c; i++) mean += sv[i];
      mean /= c;
      let varSum = 0;
      for (let i = 0; i < c; i++) varSum += (sv[i] - mean) ** 2;
      const sd = Math.sqrt(varSum / (c - 1));
      const iqr = quantileSorted(sv, c, 0.75) - quantileSorted(sv, c, 0.25);
      scott = 1.059 * (iqr > 0 ? Math.min(iqr / 1.34, sd) : sd) * c ** -0.2;
      // On a 1 % (log) grid, so that the width of a slowly changing group repeats and the
      // kernels' cached truncation terms stay valid.
      if (scott > 0) scott = Math.exp(Math.round(Math.log(scott) * 100) / 100);
    }
    const { mu, sig, inv, lz, cst } = b;
    // Kernels of members without this parameter (conditional) and the prior use the prior.
    const prior = this.priors[p];
    mu.fill(d.priorMu, 0, n);
    sig.fill(d.priorSigma, 0, n);
    inv.fill(1 / d.priorSigma, 0, n);
    lz.fill(prior.lz, 0, n);
    cst.fill(prior.cst, 0, n);
    const slot = obs.slot, cacheSig = obs.cacheSig, cacheLz = obs.cacheLz;
    const ends = s.considerEndpoints && d.bounded;
    for (let i = 0; i < c; i++) {
      const r = sr[i];
      let w: number;
      if (c === 1) w = d.bounded ? Math.max(sv[0] - d.lo, d.hi - sv[0]) : d.priorSigma;
      else if (i === 0) w = ends ? Math.max(sv[0] - d.lo, sv[1] - sv[0]) : sv[1] - sv[0];
      else if (i === c - 1) {
        w = ends ? Math.max(d.hi - sv[i], sv[i] - sv[i - 1]) : sv[i] - sv[i - 1];
      } else w = Math.max(sv[i] - sv[i - 1], sv[i + 1] - sv[i]);
      // Scott's width for finished trials; a running trial keeps the narrower gap width, so
      // that it repels concurrent suggestions (the constant liar) as with the gap rule.
      if (scott > 0) w = r >= 0 ? scott : Math.min(scott, w);
      w = Math.min(range, Math.max(minSig, w));
      const j = r >= 0 ? slot[r] : pendSlot[-1 - r];
      const m0 = sv[i];
      mu[j] = m0;
      sig[j] = w;
      inv[j] = 1 / w;
      // A kernel's normaliser only changes with its width: finished observations cache it.
      const ci = r >= 0 ? r * D + p : -1;
      if (ci >= 0 && cacheSig[ci] === w) {
        lz[j] = cacheLz[ci];
      } else {
        lz[j] = d.bounded ? -logInside((d.lo - m0) / w, (d.hi - m0) / w) : 0;
        if (ci >= 0) {
          cacheSig[ci] = w;
          cacheLz[ci] = lz[j];
        }
      }
      cst[j] = lz[j] - Math.log(w) - LOG_SQRT_2PI;
    }
    part.mu = mu;
    part.sig = sig;
    part.inv = inv;
    part.lz = lz;
    part.cst = cst;
    return part;
  }

  /** Adds one parameter's log-density under every kernel of a mixture to `acc`. */
  addLogPdf(p: number, part: Part, x: number, acc: Float64Array, n: number): void {
    const d = this.dims[p];
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
  }

  /** Draws parameter p from kernel j of a part; returns the internal value of the external one. */
  drawFrom(rng: Rng, p: number, part: Part, j: number): number {
    const d = this.dims[p];
    if (d.kind === "cat") {
      const own = part.cat[j];
      if (own >= 0 && rng.next() < part.pOwn) return own;
      return rng.int(0, d.k - 1);
    }
    const raw = d.bounded
      ? truncNormal(part.mu[j], part.sig[j], d.lo, d.hi, rng.next())
      : part.mu[j] + part.sig[j] * rng.normal();
    return toInternal(d, toExternal(d, raw));
  }
}

/** log Σ exp(acc[j]) over the first n entries. */
export function logSumExp(acc: Float64Array, n: number): number {
  let max = -Infinity;
  for (let j = 0; j < n; j++) if (acc[j] > max) max = acc[j];
  if (max === -Infinity) return -Infinity;
  // Terms below e^-40 of the largest change nothing; skipping them also avoids slow
  // subnormal exponentials (most kernels of a large bad set are far from a candidate).
  const floor = max - 40;
  let s = 0;
  for (let j = 0; j < n; j++) if (acc[j] > floor) s += Math.exp(acc[j] - max);
  return max + Math.log(s);
}

/** Draws a kernel index from cumulative weights. */
export function pickKernel(rng: Rng, cumw: Float64Array): number {
  const u = rng.next();
  let lo = 0, hi = cumw.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumw[mid] > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function quantileSorted(xs: Float64Array, n: number, q: number): number {
  const pos = (n - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo);
}
