/**
 * Normal-distribution helpers for the TPE searcher: CDF, log mass of an interval, inverse CDF and
 * truncated sampling.
 *
 * @module
 */

/** log(sqrt(2π)). */
export const LOG_SQRT_2PI: number = 0.5 * Math.log(2 * Math.PI);

/**
 * The complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7
 * everywhere), which keeps its relative accuracy in the tails.
 */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(
    -z * z - 1.26551223 +
      t * (1.00002368 +
          t * (0.37409196 +
              t * (0.09678418 +
                  t * (-0.18628806 +
                      t * (0.27886807 +
                          t *
                            (-1.13520398 +
                              t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
  );
  return x >= 0 ? r : 2 - r;
}

/** The standard normal CDF. */
export function ndtr(x: number): number {
  return 0.5 * erfc(-x * Math.SQRT1_2);
}

/** log(Φ(b) − Φ(a)) for a < b, accurate in both tails. */
export function logMass(a: number, b: number): number {
  // Work in the tail where the CDF differences do not cancel.
  if (a > 0) {
    const d = ndtr(-a) - ndtr(-b);
    return d > 0 ? Math.log(d) : tailLogMass(a, b);
  }
  const d = ndtr(b) - ndtr(a);
  return d > 0 ? Math.log(d) : tailLogMass(-b, -a);
}

// Both bounds deep in the upper tail (a >= 0): log of the Mills-ratio approximation.
function tailLogMass(a: number, b: number): number {
  const lead = -0.5 * a * a - LOG_SQRT_2PI - Math.log(Math.max(a, 1e-300));
  const rest = 1 - Math.exp(-0.5 * (b * b - a * a)) * (a / Math.max(b, 1e-300));
  return lead + Math.log(Math.max(rest, 1e-300));
}

/** The inverse standard normal CDF (Acklam's algorithm plus one Halley step). */
export function ndtri(p: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  const a = [
    -3.969683028665376e1,
    2.209460984245205e2,
    -2.759285104469687e2,
    1.38357751867269e2,
    -3.066479806614716e1,
    2.506628277459239,
  ];
  const b = [
    -5.447609879822406e1,
    1.615858368580409e2,
    -1.556989798598866e2,
    6.680131188771972e1,
    -1.328068155288572e1,
  ];
  const c = [
    -7.784894002430293e-3,
    -3.223964580411365e-1,
    -2.400758277161838,
    -2.549732539343734,
    4.374664141464968,
    2.938163982698783,
  ];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  let x: number;
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - 0.02425) {
    const q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
      (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const e = ndtr(x) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp(0.5 * x * x);
  return x - u / (1 + 0.5 * x * u);
}

/**
 * A draw from N(mu, sigma²) truncated to [lo, hi], by inverse CDF (exact, no rejection loop);
 * `u` is a uniform number in [0, 1).
 */
export function truncNormal(mu: number, sigma: number, lo: number, hi: number, u: number): number {
  let a = (lo - mu) / sigma, b = (hi - mu) / sigma;
  let flip = false;
  if (a > 0) {
    // Sample the mirrored interval in the lower tail, where Φ keeps its precision.
    [a, b] = [-b, -a];
    flip = true;
  }
  const pa = ndtr(a), pb = ndtr(b);
  let z: number;
  if (!(pb - pa > 1e-300)) z = a + (b - a) * u;
  else z = ndtri(pa + u * (pb - pa));
  if (!Number.isFinite(z)) z = a + (b - a) * u;
  z = Math.min(b, Math.max(a, z));
  const x = mu + sigma * (flip ? -z : z);
  return Math.min(hi, Math.max(lo, x));
}
