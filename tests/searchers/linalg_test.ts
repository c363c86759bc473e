import assert from "#assert";
import {
  cholesky,
  cholInverse,
  cholSolve,
  lbfgsMinimize,
  lbfgsSteps,
  solveLower,
  solveUpperT,
} from "../../plugins/searchers/_linalg.ts";

const close = (a: number, b: number, tol: number, what = "") =>
  assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b}`);

// A = [[4, 2, 0.4], [2, 5, 1], [0.4, 1, 3]] = L·Lᵀ.
const A = Float64Array.from([4, 2, 0.4, 2, 5, 1, 0.4, 1, 3]);

Deno.test("cholesky factors a positive definite matrix: L·Lᵀ = A, L lower triangular", () => {
  const L = cholesky(A, 3)!;
  assert.ok(L);
  close(L[0], 2, 1e-15, "L00");
  close(L[3], 1, 1e-15, "L10");
  assert.equal(L[1], 0);
  assert.equal(L[2], 0);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += L[i * 3 + k] * L[j * 3 + k];
      close(s, A[i * 3 + j], 1e-12, `(LLᵀ)[${i}][${j}]`);
    }
  }
});

Deno.test("cholesky says undefined for a matrix that is not positive definite", () => {
  assert.equal(cholesky(Float64Array.from([1, 2, 2, 1]), 2), undefined);
  assert.equal(cholesky(Float64Array.from([0, 0, 0, 1]), 2), undefined);
});

Deno.test("triangular solves, cholSolve and cholInverse agree with A", () => {
  const L = cholesky(A, 3)!;
  const b = Float64Array.from([1, -2, 0.5]);
  const x = cholSolve(L, 3, b);
  for (let i = 0; i < 3; i++) {
    let s = 0;
    for (let k = 0; k < 3; k++) s += A[i * 3 + k] * x[k];
    close(s, b[i], 1e-12, `(Ax)[${i}]`);
  }
  const y = solveLower(L, 3, b);
  const z = solveUpperT(L, 3, y);
  for (let i = 0; i < 3; i++) close(z[i], x[i], 1e-14);
  const inv = cholInverse(L, 3);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += A[i * 3 + k] * inv[k * 3 + j];
      close(s, i === j ? 1 : 0, 1e-12, `(A·A⁻¹)[${i}][${j}]`);
    }
  }
});

Deno.test("cholesky, solveLower (in place) and cholInverse on an 11×11 matrix (the unrolled dot products' remainders)", () => {
  // A = B·Bᵀ + I with a fixed pseudo-random B: positive definite, dense.
  const n = 11;
  const B = Float64Array.from({ length: n * n }, (_, i) => Math.sin(1.3 * i + 0.7));
  const M = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = i === j ? 1 : 0;
      for (let k = 0; k < n; k++) s += B[i * n + k] * B[j * n + k];
      M[i * n + j] = s;
    }
  }
  const L = cholesky(M, n)!;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (j > i) assert.equal(L[i * n + j], 0);
      let s = 0;
      for (let k = 0; k < n; k++) s += L[i * n + k] * L[j * n + k];
      close(s, M[i * n + j], 1e-10, `(LLᵀ)[${i}][${j}]`);
    }
  }
  const b = Float64Array.from({ length: n }, (_, i) => i - 5);
  const y = solveLower(L, n, Float64Array.from(b));
  const inPlace = Float64Array.from(b);
  solveLower(L, n, inPlace, inPlace);
  for (let i = 0; i < n; i++) {
    close(inPlace[i], y[i], 0, `in place [${i}]`);
    let s = 0;
    for (let k = 0; k <= i; k++) s += L[i * n + k] * y[k];
    close(s, b[i], 1e-10, `(Ly)[${i}]`);
  }
  const inv = cholInverse(L, n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      assert.equal(inv[i * n + j], inv[j * n + i]);
      let s = 0;
      for (let k = 0; k < n; k++) s += M[i * n + k] * inv[k * n + j];
      close(s, i === j ? 1 : 0, 1e-9, `(M·M⁻¹)[${i}][${j}]`);
    }
  }
});

Deno.test("lbfgsMinimize finds Rosenbrock's minimum and respects bounds", () => {
  const rosen = (x: Float64Array, g: Float64Array) => {
    const [a, b] = x;
    g[0] = -400 * a * (b - a * a) - 2 * (1 - a);
    g[1] = 200 * (b - a * a);
    return 100 * (b - a * a) ** 2 + (1 - a) ** 2;
  };
  const r = lbfgsMinimize(rosen, Float64Array.from([-1.2, 1]), { maxIter: 500, gtol: 1e-8 });
  close(r.x[0], 1, 1e-4, "x");
  close(r.x[1], 1, 1e-4, "y");
  assert.ok(r.f < 1e-8, `f = ${r.f}`);
  // The box [−2, 0.5]²: the constrained minimum has x on its upper bound.
  const b = lbfgsMinimize(rosen, Float64Array.from([-1.2, 1]), {
    lo: Float64Array.from([-2, -2]),
    hi: Float64Array.from([0.5, 0.5]),
    maxIter: 500,
    gtol: 1e-8,
  });
  close(b.x[0], 0.5, 1e-9, "x on the bound");
  close(b.x[1], 0.25, 1e-4, "y = x²");
});

Deno.test("lbfgsSteps, driven point by point, is lbfgsMinimize; ftol stops it sooner", () => {
  let evals = 0;
  const rosen = (x: Float64Array, g: Float64Array) => {
    evals++;
    const [a, b] = x;
    g[0] = -400 * a * (b - a * a) - 2 * (1 - a);
    g[1] = 200 * (b - a * a);
    return 100 * (b - a * a) ** 2 + (1 - a) ** 2;
  };
  const opts = { maxIter: 500, gtol: 1e-8 };
  const r = lbfgsMinimize(rosen, Float64Array.from([-1.2, 1]), opts);
  const full = evals;
  const it = lbfgsSteps(Float64Array.from([-1.2, 1]), opts);
  let step = it.next();
  let asked = 0;
  while (!step.done) {
    asked++;
    step = it.next(rosen(step.value.x, step.value.g));
  }
  assert.equal(asked, full);
  assert.deepEqual(Array.from(step.value.x), Array.from(r.x));
  assert.equal(step.value.f, r.f);
  assert.equal(step.value.iterations, r.iterations);
  // A loose relative tolerance on the value's change ends the run earlier, not far from 1.
  evals = 0;
  const loose = lbfgsMinimize(rosen, Float64Array.from([-1.2, 1]), { ...opts, ftol: 1e-3 });
  assert.ok(evals < full, `${evals} evaluations against ${full}`);
  assert.ok(loose.iterations < r.iterations);
  assert.ok(loose.f < 1, `f = ${loose.f}`);
});
