/**
 * Multi-objective kernels: Pareto dominance, non-dominated sorting, hypervolume and greedy
 * hypervolume subset selection. Every function works on loss vectors, where smaller is better
 * in every objective (negate a maximised objective first, as {@linkcode lossVector} does).
 *
 * @module
 */

import type { Mode } from "./trial.ts";

/**
 * Whether loss vector `a` Pareto-dominates `b`: no worse in every objective and better in one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dominates } from "./pareto.ts";
 * assert.equal(dominates([1, 2], [1, 3]), true);
 * assert.equal(dominates([1, 2], [2, 1]), false);
 * ```
 */
export function dominates(a: readonly number[], b: readonly number[]): boolean {
  let better = false;
  for (let k = 0; k < a.length; k++) {
    if (a[k] > b[k]) return false;
    if (a[k] < b[k]) better = true;
  }
  return better;
}

/**
 * Sorts loss vectors into non-dominated fronts: front 0 holds the indices no point dominates, front 1 those only front 0 dominates, ...
 * Equal vectors share a front. Stops early once the fronts hold at least `limit` points.
 *
 * @param points loss vectors, all of the same length.
 * @param limit stop after the front that reaches this many points. @default all
 * @returns the fronts, each a list of indices in increasing order.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nonDominatedSort } from "./pareto.ts";
 * assert.deepEqual(nonDominatedSort([[1, 3], [2, 2], [2, 3], [3, 3]]), [[0, 1], [2], [3]]);
 * ```
 */
export function nonDominatedSort(
  points: readonly (readonly number[])[],
  limit: number = Infinity,
): number[][] {
  // Peel fronts in lexicographic order: a point can only be dominated by one before it, and a
  // point dominated by a later front's member is dominated by this front's too (transitivity),
  // so each point is checked against the current front only: O(n · front size) per front.
  let remaining = points.map((_, i) => i).sort((a, b) => {
    const p = points[a], q = points[b];
    for (let k = 0; k < p.length; k++) if (p[k] !== q[k]) return p[k] - q[k];
    return a - b;
  });
  const fronts: number[][] = [];
  let taken = 0;
  while (remaining.length && taken < limit) {
    const front: number[] = [], rest: number[] = [];
    for (const i of remaining) {
      const p = points[i];
      let dominated = false;
      for (const f of front) {
        if (dominates(points[f], p)) {
          dominated = true;
          break;
        }
      }
      (dominated ? rest : front).push(i);
    }
    fronts.push(front.sort((a, b) => a - b));
    taken += front.length;
    remaining = rest;
  }
  return fronts;
}

/**
 * The hypervolume (Lebesgue measure) dominated by `points` and bounded by `reference`, for
 * minimisation. Points not strictly better than the reference in every objective add nothing.
 * Exact: a sweep in 2 objectives, slicing along the last objective above that (fine for the few
 * hundred points of a tuning run in 3–4 objectives).
 *
 * @param points loss vectors.
 * @param reference the worst corner (a loss vector every counted point beats).
 * @returns the dominated volume (0 for no point).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hypervolume } from "./pareto.ts";
 * assert.equal(hypervolume([[1, 2], [2, 1]], [3, 3]), 3);
 * ```
 */
export function hypervolume(
  points: readonly (readonly number[])[],
  reference: readonly number[],
): number {
  const d = reference.length;
  const inside = points.filter((p) => {
    if (p.length !== d) {
      throw new RangeError(
        `hypervolume: a point has ${p.length} objectives but the reference has ${d}`,
      );
    }
    return p.every((v, k) => v < reference[k]);
  });
  if (!inside.length) return 0;
  if (d === 1) return reference[0] - Math.min(...inside.map((p) => p[0]));
  return hv(inside.map((p) => [...p]), [...reference]);
}

function hv(points: number[][], ref: number[]): number {
  const d = ref.length;
  if (d === 1) {
    let m = Infinity;
    for (const p of points) if (p[0] < m) m = p[0];
    return Math.max(0, ref[0] - m);
  }
  if (d === 2) {
    const s = points.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let vol = 0, y = ref[1];
    for (const p of s) {
      if (p[1] < y) {
        vol += (ref[0] - p[0]) * (y - p[1]);
        y = p[1];
      }
    }
    return vol;
  }
  // Slice along the last objective: between consecutive values, the (d-1)-dimensional volume
  // of the points at or below the slice.
  const s = points.slice().sort((a, b) => a[d - 1] - b[d - 1]);
  const sub = ref.slice(0, d - 1);
  let vol = 0;
  const acc: number[][] = [];
  for (let i = 0; i < s.length; i++) {
    acc.push(s[i].slice(0, d - 1));
    const top = i + 1 < s.length ? s[i + 1][d - 1] : ref[d - 1];
    const h = top - s[i][d - 1];
    if (h > 0) vol += h * hv(nonDominated(acc), sub);
  }
  return vol;
}

function nonDominated(points: number[][]): number[][] {
  return points.filter((p, i) =>
    !points.some((q, j) => j !== i && (dominates(q, p) || (j < i && q.every((v, k) => v === p[k]))))
  );
}

/**
 * How much each point alone adds to the hypervolume of `points` (0 for a dominated or duplicated
 * point): `hypervolume(points) − hypervolume(points without it)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hypervolumeContributions } from "./pareto.ts";
 * assert.deepEqual(hypervolumeContributions([[1, 2], [2, 1], [2, 2]], [3, 3]), [1, 1, 0]);
 * ```
 */
export function hypervolumeContributions(
  points: readonly (readonly number[])[],
  reference: readonly number[],
): number[] {
  const total = hypervolume(points, reference);
  return points.map((_, i) =>
    Math.max(0, total - hypervolume(points.filter((_, j) => j !== i), reference))
  );
}

/**
 * Picks `k` of `points` that greedily maximise their joint hypervolume (the hypervolume subset
 * selection Optuna's MOTPE uses to break ties in the last front it takes).
 *
 * @returns indices into `points`, in the order they were picked.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hypervolumeSubset } from "./pareto.ts";
 * assert.deepEqual(hypervolumeSubset([[0, 3], [1, 1], [3, 0]], 1, [4, 4]), [1]);
 * ```
 */
export function hypervolumeSubset(
  points: readonly (readonly number[])[],
  k: number,
  reference: readonly number[],
): number[] {
  const chosen: number[] = [];
  const left = new Set(points.keys());
  let base = 0;
  while (chosen.length < k && left.size) {
    let best = -1, bestGain = -Infinity;
    for (const i of left) {
      const gain = hypervolume([...chosen.map((c) => points[c]), points[i]], reference) - base;
      if (gain > bestGain) [best, bestGain] = [i, gain];
    }
    chosen.push(best);
    left.delete(best);
    base += bestGain;
  }
  return chosen;
}

/**
 * A reference point just worse than every point (Optuna's rule: the worst value of each
 * objective × 1.1, or × 0.9 when negative; a tiny step when 0).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { referencePoint } from "./pareto.ts";
 * assert.deepEqual(referencePoint([[1, -2], [2, -4]]), [2.2, -1.8]);
 * ```
 */
export function referencePoint(points: readonly (readonly number[])[]): number[] {
  const d = points[0]?.length ?? 0;
  const worst = new Array<number>(d).fill(-Infinity);
  for (const p of points) for (let k = 0; k < d; k++) worst[k] = Math.max(worst[k], p[k]);
  return worst.map((w) => (w > 0 ? w * 1.1 : w < 0 ? w * 0.9 : 1e-12));
}

/**
 * The loss vector of a result: each objective's value, negated where it is maximised; undefined
 * when one is missing or not a finite number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lossVector } from "./pareto.ts";
 * assert.deepEqual(lossVector({ acc: 0.9, size: 12 }, ["acc", "size"], ["max", "min"]), [-0.9, 12]);
 * ```
 */
export function lossVector(
  flat: Readonly<Record<string, unknown>>,
  metrics: readonly string[],
  modes: readonly Mode[],
): number[] | undefined {
  const out: number[] = [];
  for (let k = 0; k < metrics.length; k++) {
    const v = flat[metrics[k]];
    if (typeof v !== "number" || !Number.isFinite(v)) return undefined;
    out.push(modes[k] === "max" ? -v : v);
  }
  return out;
}
