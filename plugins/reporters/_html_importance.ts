/**
 * Parameter importance for the report: a random forest of regression trees (bagging, a random
 * subset of parameters tried at each split) fitted to the trials' metric, and permutation
 * importance measured on each tree's out-of-bag trials: how much the forest's squared error grows
 * when one parameter's values are shuffled. Shares are clipped at 0 and sum to 1.
 *
 * Why this method: it needs no assumption about the shape of the objective, handles log-scale,
 * integer and categorical parameters alike (categories are ordinal codes here, which trees split
 * fine), is deterministic with a seed, and is a few hundred lines of TypeScript with no
 * dependency. fANOVA (Optuna's default) decomposes the variance of the same kind of forest; the
 * permutation measure ranks parameters the same way on the usual cases and is simpler to check.
 *
 * @module
 */

import { Rng } from "../../core/random.ts";

/** Options of {@linkcode forestImportance}. */
export interface ForestImportanceOptions {
  /** Trees in the forest. @default 64 */
  readonly trees?: number;
  /** Deepest a tree grows. @default 10 */
  readonly maxDepth?: number;
  /** Fewest samples in a leaf. @default 2 */
  readonly minLeaf?: number;
  /** Seed of the bootstrap samples, feature subsets and permutations. @default 0 */
  readonly seed?: number;
}

interface Leaf {
  readonly leaf: true;
  readonly value: number;
}
interface Split {
  readonly leaf: false;
  readonly feature: number;
  readonly threshold: number;
  readonly left: Node;
  readonly right: Node;
}
type Node = Leaf | Split;

function mean(ys: readonly number[], idx: readonly number[]): number {
  let s = 0;
  for (const i of idx) s += ys[i];
  return s / idx.length;
}

function grow(
  xs: readonly (readonly number[])[],
  ys: readonly number[],
  idx: number[],
  depth: number,
  o: Required<ForestImportanceOptions>,
  mtry: number,
  rng: Rng,
): Node {
  const value = mean(ys, idx);
  if (depth >= o.maxDepth || idx.length < 2 * o.minLeaf) return { leaf: true, value };
  let sse = 0;
  for (const i of idx) sse += (ys[i] - value) ** 2;
  if (sse <= 1e-12 * idx.length) return { leaf: true, value };
  const d = xs[0].length;
  const features = Array.from({ length: d }, (_, j) => j);
  for (let k = 0; k < mtry; k++) {
    const r = rng.int(k, d - 1);
    [features[k], features[r]] = [features[r], features[k]];
  }
  let best: { feature: number; threshold: number; sse: number } | undefined;
  for (const f of features.slice(0, mtry)) {
    const sorted = [...idx].sort((a, b) => xs[a][f] - xs[b][f]);
    let sumL = 0, sqL = 0;
    let sumR = 0, sqR = 0;
    for (const i of sorted) {
      sumR += ys[i];
      sqR += ys[i] * ys[i];
    }
    for (let k = 0; k < sorted.length - 1; k++) {
      const y = ys[sorted[k]];
      sumL += y;
      sqL += y * y;
      sumR -= y;
      sqR -= y * y;
      const nL = k + 1, nR = sorted.length - nL;
      const a = xs[sorted[k]][f], b = xs[sorted[k + 1]][f];
      if (a === b || nL < o.minLeaf || nR < o.minLeaf) continue;
      const s = sqL - sumL * sumL / nL + sqR - sumR * sumR / nR;
      if (!best || s < best.sse) best = { feature: f, threshold: (a + b) / 2, sse: s };
    }
  }
  if (!best || best.sse >= sse - 1e-12) return { leaf: true, value };
  const left = idx.filter((i) => xs[i][best.feature] <= best.threshold);
  const right = idx.filter((i) => xs[i][best.feature] > best.threshold);
  return {
    leaf: false,
    feature: best.feature,
    threshold: best.threshold,
    left: grow(xs, ys, left, depth + 1, o, mtry, rng),
    right: grow(xs, ys, right, depth + 1, o, mtry, rng),
  };
}

function predict(node: Node, x: readonly number[]): number {
  let n = node;
  while (!n.leaf) n = x[n.feature] <= n.threshold ? n.left : n.right;
  return n.value;
}

/**
 * Importance of each column of `xs` for predicting `ys`: random-forest permutation importance on
 * out-of-bag samples, as shares that sum to 1 (all 0 when nothing could be learnt).
 *
 * Missing values must be encoded by the caller (the report puts them below the column's range).
 *
 * @param xs one row per sample, one column per parameter (finite numbers).
 * @param ys the metric of each sample (finite numbers).
 * @returns one share per column.
 * @throws {RangeError} when rows and targets differ in number or rows differ in length.
 */
export function forestImportance(
  xs: readonly (readonly number[])[],
  ys: readonly number[],
  options: ForestImportanceOptions = {},
): number[] {
  if (xs.length !== ys.length) {
    throw new RangeError(`forestImportance: ${xs.length} rows but ${ys.length} targets`);
  }
  const d = xs[0]?.length ?? 0;
  if (xs.some((r) => r.length !== d)) {
    throw new RangeError(`forestImportance: every row must have ${d} columns`);
  }
  const o: Required<ForestImportanceOptions> = {
    trees: options.trees ?? 64,
    maxDepth: options.maxDepth ?? 10,
    minLeaf: options.minLeaf ?? 2,
    seed: options.seed ?? 0,
  };
  const n = xs.length;
  if (d === 0) return [];
  if (n < 4) return new Array(d).fill(0);
  // Scale targets so that thresholds on the sums of squares mean the same for every metric.
  const m = ys.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(ys.reduce((a, b) => a + (b - m) ** 2, 0) / n) || 1;
  const y = ys.map((v) => (v - m) / sd);
  const rng = new Rng(o.seed);
  const mtry = Math.max(1, Math.ceil(d / 2));
  const gain = new Array<number>(d).fill(0);
  let counted = 0;
  for (let t = 0; t < o.trees; t++) {
    const inBag = new Uint8Array(n);
    const sample: number[] = [];
    for (let k = 0; k < n; k++) {
      const i = rng.int(0, n - 1);
      inBag[i] = 1;
      sample.push(i);
    }
    const oob: number[] = [];
    for (let i = 0; i < n; i++) if (!inBag[i]) oob.push(i);
    if (oob.length < 2) continue;
    const tree = grow(xs, y, sample, 0, o, mtry, rng);
    let base = 0;
    for (const i of oob) base += (predict(tree, xs[i]) - y[i]) ** 2;
    for (let f = 0; f < d; f++) {
      const perm = [...oob];
      for (let k = perm.length - 1; k > 0; k--) {
        const r = rng.int(0, k);
        [perm[k], perm[r]] = [perm[r], perm[k]];
      }
      let err = 0;
      for (let k = 0; k < oob.length; k++) {
        const row = [...xs[oob[k]]];
        row[f] = xs[perm[k]][f];
        err += (predict(tree, row) - y[oob[k]]) ** 2;
      }
      gain[f] += (err - base) / oob.length;
    }
    counted++;
  }
  if (!counted) return new Array(d).fill(0);
  const clipped = gain.map((g) => Math.max(0, g / counted));
  const total = clipped.reduce((a, b) => a + b, 0);
  return total > 0 ? clipped.map((g) => g / total) : clipped;
}
