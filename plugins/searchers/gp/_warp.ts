/**
 * Output warping for the GP: a Box–Cox transform of the losses, its λ fitted by maximum
 * likelihood, that only ever compresses the bad (high) tail of a minimised objective.
 *
 * @module
 */

/** Box–Cox of v > 0: (v^λ − 1)/λ, log v at λ = 0. */
function boxCox(v: number, lam: number): number {
  return Math.abs(lam) < 1e-9 ? Math.log(v) : (Math.pow(v, lam) - 1) / lam;
}

/**
 * The profile log-likelihood of λ for Box–Cox on `v` (all > 0): −n/2·log σ²(λ) + (λ − 1)·Σ log v.
 */
function boxCoxLogLik(v: Float64Array, sumLog: number, lam: number): number {
  const n = v.length;
  let m = 0;
  for (let j = 0; j < n; j++) m += boxCox(v[j], lam);
  m /= n;
  let s2 = 0;
  for (let j = 0; j < n; j++) s2 += (boxCox(v[j], lam) - m) ** 2;
  s2 = Math.max(s2 / n, 1e-300);
  return -0.5 * n * Math.log(s2) + (lam - 1) * sumLog;
}

/**
 * Half the 95 % quantile of χ² with one degree of freedom (3.841 / 2): the gain in profile
 * log-likelihood over λ = 1 that the fitted λ must reach before the losses are warped.
 */
export const WARP_MIN_GAIN = 1.92;

/**
 * Warps standardised losses `y` (minimised) in place: v = 1 + (y − min y) ≥ 1, Box–Cox with the
 * maximum-likelihood λ in [`lo`, `hi`] (golden-section search), then standardised again. With
 * `hi` = 1 the transform never stretches the high (bad) tail: an objective whose bad values are
 * spread far above its good ones (Levy, Rosenbrock) is compressed there, so the GP resolves the
 * good region; one already roughly normal or long-tailed towards good values keeps λ = 1, the
 * identity up to standardisation. A likelihood-ratio test gates the warp: `y` is left as it is
 * unless the profile log-likelihood at the fitted λ beats λ = 1 by `minGain` (default
 * {@linkcode WARP_MIN_GAIN}: λ = 1 rejected at the 5 % level), so losses that are only mildly
 * skewed (Ackley's plateau) are not warped. Returns λ (1 when `y` is left as it is).
 */
export function warpLosses(y: Float64Array, lo = -2, hi = 1, minGain = WARP_MIN_GAIN): number {
  const n = y.length;
  if (n < 3) return 1;
  let min = Infinity;
  for (const v of y) min = Math.min(min, v);
  const v = Float64Array.from(y, (x) => 1 + (x - min));
  let sumLog = 0;
  for (const x of v) sumLog += Math.log(x);
  const f = (lam: number) => boxCoxLogLik(v, sumLog, lam);
  // Golden-section search for the maximum on [lo, hi] (the likelihood is unimodal in λ).
  const g = (Math.sqrt(5) - 1) / 2;
  let a = lo, b = hi;
  let c = b - g * (b - a), d = a + g * (b - a);
  let fc = f(c), fd = f(d);
  for (let it = 0; it < 40 && b - a > 1e-3; it++) {
    if (fc > fd) {
      [b, d, fd] = [d, c, fc];
      c = b - g * (b - a);
      fc = f(c);
    } else {
      [a, c, fc] = [c, d, fd];
      d = a + g * (b - a);
      fd = f(d);
    }
  }
  let lam = (a + b) / 2;
  if (f(hi) >= f(lam)) lam = hi;
  if (lam === 1 || !(f(lam) - f(1) >= minGain)) return 1;
  let mean = 0;
  for (let j = 0; j < n; j++) mean += y[j] = boxCox(v[j], lam);
  mean /= n;
  let sd = 0;
  for (let j = 0; j < n; j++) sd += (y[j] - mean) ** 2;
  sd = Math.max(Math.sqrt(sd / n), 1e-12);
  for (let j = 0; j < n; j++) y[j] = (y[j] - mean) / sd;
  return lam;
}
