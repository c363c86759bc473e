/**
 * Dense linear algebra for the model-based searchers (row-major `Float64Array`s): Cholesky
 * factorisation, triangular solves, the inverse from a factor, and a bounded L-BFGS minimiser.
 *
 * @module
 */

/**
 * The dot product of `len` values of `a` from `ia` and of `b` from `ib`, with four partial sums
 * (shorter dependency chains than one running sum: the factorisations below are built on it).
 */
function dot(a: Float64Array, ia: number, b: Float64Array, ib: number, len: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, k = 0;
  for (; k + 3 < len; k += 4) {
    s0 += a[ia + k] * b[ib + k];
    s1 += a[ia + k + 1] * b[ib + k + 1];
    s2 += a[ia + k + 2] * b[ib + k + 2];
    s3 += a[ia + k + 3] * b[ib + k + 3];
  }
  for (; k < len; k++) s0 += a[ia + k] * b[ib + k];
  return (s0 + s1) + (s2 + s3);
}

/**
 * Factors a symmetric positive definite n×n matrix as L·Lᵀ (L lower triangular, returned in a
 * new array; the upper triangle is zero). Returns `undefined` when the matrix is not positive
 * definite to working precision.
 */
export function cholesky(a: Float64Array, n: number): Float64Array | undefined {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    const d = a[rj + j] - dot(l, rj, l, rj, j);
    if (!(d > 0) || !Number.isFinite(d)) return undefined;
    const ljj = Math.sqrt(d);
    l[rj + j] = ljj;
    const inv = 1 / ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      l[ri + j] = (a[ri + j] - dot(l, ri, l, rj, j)) * inv;
    }
  }
  return l;
}

/** Solves L·x = b (L lower triangular n×n); writes x into `out` (may be `b`). */
export function solveLower(
  l: Float64Array,
  n: number,
  b: Float64Array,
  out: Float64Array = new Float64Array(n),
): Float64Array {
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    out[i] = (b[i] - dot(l, ri, out, 0, i)) / l[ri + i];
  }
  return out;
}

/** Solves Lᵀ·x = b (L lower triangular n×n); writes x into `out` (may be `b`). */
export function solveUpperT(
  l: Float64Array,
  n: number,
  b: Float64Array,
  out: Float64Array = new Float64Array(n),
): Float64Array {
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i];
    for (let k = i + 1; k < n; k++) s -= l[k * n + i] * out[k];
    out[i] = s / l[i * n + i];
  }
  return out;
}

/** Solves (L·Lᵀ)·x = b. */
export function cholSolve(l: Float64Array, n: number, b: Float64Array): Float64Array {
  const y = solveLower(l, n, b);
  return solveUpperT(l, n, y, y);
}

/** The inverse (L·Lᵀ)⁻¹ of a factored matrix, as a full symmetric n×n array. */
export function cholInverse(l: Float64Array, n: number): Float64Array {
  // T = L⁻¹ is kept transposed (tt[j·n + k] = T[k][j], upper triangular), so that both steps are
  // dot products of contiguous rows: T[i][j] = −Σ_{j≤k<i} L[i][k]·T[k][j] / L[i][i], then
  // (L·Lᵀ)⁻¹ = Tᵀ·T, whose (i, j) entry is Σ_{k≥max(i,j)} T[k][i]·T[k][j].
  const tt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n, inv = 1 / l[ri + i];
    tt[ri + i] = inv;
    for (let j = 0; j < i; j++) tt[j * n + i] = -dot(l, ri + j, tt, j * n + j, i - j) * inv;
  }
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      const v = dot(tt, i * n + i, tt, j * n + i, n - i);
      out[i * n + j] = v;
      out[j * n + i] = v;
    }
  }
  return out;
}

/** What {@linkcode lbfgsMinimize} returns. */
export interface MinimizeResult {
  /** The best point found. */
  readonly x: Float64Array;
  /** Its value. */
  readonly f: number;
  /** Iterations taken. */
  readonly iterations: number;
}

/** Options of {@linkcode lbfgsMinimize} and {@linkcode lbfgsSteps}. */
export interface LbfgsOptions {
  /** Lower bounds (with `hi`: the search stays in the box). */
  readonly lo?: Float64Array;
  /** Upper bounds. */
  readonly hi?: Float64Array;
  /** Most iterations. @default 100 */
  readonly maxIter?: number;
  /** Stop when the projected gradient's largest component is below this. @default 1e-5 */
  readonly gtol?: number;
  /**
   * Stop when an iteration changes the value by at most `ftol`·max(1, |f|) (scipy's L-BFGS-B
   * stops at `factr`·eps = 2.2e-9 relative by default). @default 1e-12
   */
  readonly ftol?: number;
  /** Correction pairs kept. @default 8 */
  readonly m?: number;
}

/** A point {@linkcode lbfgsSteps} asks to be evaluated: write the gradient into `g`. */
export interface LbfgsRequest {
  /** The point (read only). */
  readonly x: Float64Array;
  /** Where the gradient at `x` goes. */
  readonly g: Float64Array;
}

/**
 * Minimises a smooth function by L-BFGS (memory `m`) with a backtracking Armijo line search,
 * inside the box [lo, hi] when bounds are given (steps are projected onto it and the gradient
 * components pushing against an active bound are dropped). `fg` returns the value and writes the
 * gradient into its second argument. Stops when the projected gradient's largest component is
 * below `gtol`, after `maxIter` iterations, when an iteration gains at most `ftol` (relative), or
 * when no step decreases the value.
 */
export function lbfgsMinimize(
  fg: (x: Float64Array, grad: Float64Array) => number,
  x0: Float64Array,
  opts: LbfgsOptions = {},
): MinimizeResult {
  const it = lbfgsSteps(x0, opts);
  let r = it.next();
  while (!r.done) r = it.next(fg(r.value.x, r.value.g));
  return r.value;
}

/**
 * {@linkcode lbfgsMinimize} as a generator: it yields each point to evaluate (with the array for
 * its gradient) and takes the value back from `next(f)`; its return value is the result. Several
 * minimisations can so advance in lockstep, their points evaluated together.
 */
export function* lbfgsSteps(
  x0: Float64Array,
  opts: LbfgsOptions = {},
): Generator<LbfgsRequest, MinimizeResult, number> {
  const n = x0.length;
  const { lo, hi } = opts;
  const maxIter = opts.maxIter ?? 100, gtol = opts.gtol ?? 1e-5, m = opts.m ?? 8;
  const ftol = opts.ftol ?? 1e-12;
  const project = (x: Float64Array) => {
    if (!lo || !hi) return;
    for (let i = 0; i < n; i++) x[i] = Math.min(hi[i], Math.max(lo[i], x[i]));
  };
  let x = Float64Array.from(x0);
  project(x);
  let g = new Float64Array(n);
  let f: number = yield { x, g };
  if (!Number.isFinite(f)) return { x, f, iterations: 0 };
  const S: Float64Array[] = [], Y: Float64Array[] = [], rho: number[] = [];
  const d = new Float64Array(n), alpha = new Float64Array(m);
  const free = new Uint8Array(n);
  let it = 0;
  for (; it < maxIter; it++) {
    // Free variables: not at a bound with the gradient pushing outwards.
    let pg = 0;
    for (let i = 0; i < n; i++) {
      const atLo = lo && hi && x[i] <= lo[i] && g[i] > 0;
      const atHi = lo && hi && x[i] >= hi[i] && g[i] < 0;
      free[i] = atLo || atHi ? 0 : 1;
      if (free[i]) pg = Math.max(pg, Math.abs(g[i]));
    }
    if (pg < gtol) break;
    // Two-loop recursion on the free variables.
    for (let i = 0; i < n; i++) d[i] = free[i] ? -g[i] : 0;
    const k = S.length;
    for (let j = k - 1; j >= 0; j--) {
      let s = 0;
      for (let i = 0; i < n; i++) if (free[i]) s += S[j][i] * d[i];
      alpha[j] = rho[j] * s;
      for (let i = 0; i < n; i++) if (free[i]) d[i] -= alpha[j] * Y[j][i];
    }
    if (k > 0) {
      let yy = 0, sy = 0;
      for (let i = 0; i < n; i++) {
        yy += Y[k - 1][i] * Y[k - 1][i];
        sy += S[k - 1][i] * Y[k - 1][i];
      }
      const gamma = sy / yy;
      for (let i = 0; i < n; i++) d[i] *= gamma;
    }
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let i = 0; i < n; i++) if (free[i]) s += Y[j][i] * d[i];
      const beta = rho[j] * s;
      for (let i = 0; i < n; i++) if (free[i]) d[i] += S[j][i] * (alpha[j] - beta);
    }
    let slope = 0;
    for (let i = 0; i < n; i++) slope += g[i] * d[i];
    if (!(slope < 0)) {
      // Not a descent direction: restart from steepest descent.
      S.length = Y.length = rho.length = 0;
      for (let i = 0; i < n; i++) d[i] = free[i] ? -g[i] : 0;
      slope = 0;
      for (let i = 0; i < n; i++) slope += g[i] * d[i];
      if (!(slope < 0)) break;
    }
    // First iteration: a step of at most 1 in the largest component.
    let step = 1;
    if (k === 0) {
      let dm = 0;
      for (let i = 0; i < n; i++) dm = Math.max(dm, Math.abs(d[i]));
      step = Math.min(1, 1 / Math.max(dm, 1e-12));
    }
    const xn = new Float64Array(n), gn = new Float64Array(n);
    let fn = Infinity, ok = false;
    for (let ls = 0; ls < 30; ls++) {
      for (let i = 0; i < n; i++) xn[i] = x[i] + step * d[i];
      project(xn);
      let dec = 0;
      for (let i = 0; i < n; i++) dec += g[i] * (xn[i] - x[i]);
      fn = yield { x: xn, g: gn };
      if (Number.isFinite(fn) && fn <= f + 1e-4 * Math.min(dec, 0)) {
        ok = true;
        break;
      }
      step *= 0.5;
    }
    if (!ok) break;
    const s = new Float64Array(n), y = new Float64Array(n);
    let sy = 0;
    for (let i = 0; i < n; i++) {
      s[i] = xn[i] - x[i];
      y[i] = gn[i] - g[i];
      sy += s[i] * y[i];
    }
    const fPrev = f;
    x = xn;
    g = gn;
    f = fn;
    if (sy > 1e-12) {
      S.push(s);
      Y.push(y);
      rho.push(1 / sy);
      if (S.length > m) {
        S.shift();
        Y.shift();
        rho.shift();
      }
    }
    if (Math.abs(fPrev - f) <= ftol * Math.max(1, Math.abs(f))) {
      it++;
      break;
    }
  }
  return { x, f, iterations: it };
}
