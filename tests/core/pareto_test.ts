import { deepEqual, equal, ok as assert, throws } from "#assert";
import {
  dominates,
  hypervolume,
  hypervolumeContributions,
  hypervolumeSubset,
  lossVector,
  nonDominatedSort,
  referencePoint,
} from "../../core/pareto.ts";
import { Rng } from "../../core/random.ts";

/** Hypervolume by counting unit cells of an integer grid (points and reference on the grid). */
function cellCount(points: number[][], ref: number[]): number {
  const d = ref.length;
  let count = 0;
  const cell = new Array<number>(d).fill(0);
  const lo = Math.min(...points.flat(), 0);
  const walk = (k: number): void => {
    if (k === d) {
      // The cell [c, c+1)^d is dominated when some point is <= its lower corner.
      if (points.some((p) => p.every((v, j) => v <= cell[j]))) count++;
      return;
    }
    for (let c = lo; c < ref[k]; c++) {
      cell[k] = c;
      walk(k + 1);
    }
  };
  walk(0);
  return count;
}

Deno.test("dominates is strict Pareto dominance for minimisation", () => {
  assert(dominates([1, 1], [1, 2]));
  assert(!dominates([1, 2], [1, 2]));
  assert(!dominates([0, 3], [1, 2]));
});

Deno.test("nonDominatedSort puts equal points in one front and stops at the limit", () => {
  const pts = [[3, 3], [1, 3], [2, 2], [1, 3], [2, 3], [3, 1]];
  deepEqual(nonDominatedSort(pts), [[1, 2, 3, 5], [4], [0]]);
  deepEqual(nonDominatedSort(pts, 4), [[1, 2, 3, 5]]);
  deepEqual(nonDominatedSort([]), []);
});

Deno.test("nonDominatedSort's fronts match the definition on random points with ties", () => {
  const rng = new Rng(3);
  for (const d of [2, 3]) {
    const pts = Array.from({ length: 60 }, () => Array.from({ length: d }, () => rng.int(0, 6)));
    const fronts = nonDominatedSort(pts);
    deepEqual(fronts.flat().sort((a, b) => a - b), pts.map((_, i) => i));
    const rank = new Map<number, number>();
    fronts.forEach((f, k) => f.forEach((i) => rank.set(i, k)));
    for (let i = 0; i < pts.length; i++) {
      const k = rank.get(i)!;
      // Nothing in its own or a later front dominates it; something in the front before does.
      for (let j = 0; j < pts.length; j++) {
        if (rank.get(j)! >= k) assert(!dominates(pts[j], pts[i]), `${j} dominates ${i}`);
      }
      if (k > 0) assert(fronts[k - 1].some((j) => dominates(pts[j], pts[i])));
    }
  }
});

Deno.test("hypervolume equals a cell count in 2, 3 and 4 objectives", () => {
  const rng = new Rng(7);
  for (const d of [2, 3, 4]) {
    for (let rep = 0; rep < 6; rep++) {
      const pts = Array.from({ length: 8 }, () => Array.from({ length: d }, () => rng.int(0, 5)));
      const ref = new Array<number>(d).fill(6);
      equal(hypervolume(pts, ref), cellCount(pts, ref), `d=${d} ${JSON.stringify(pts)}`);
    }
  }
});

Deno.test("hypervolume ignores points outside the reference and checks dimensions", () => {
  equal(hypervolume([[5, 0], [0, 5]], [4, 4]), 0);
  equal(hypervolume([[1, 1], [9, 0]], [2, 2]), 1);
  throws(() => hypervolume([[1, 1, 1]], [2, 2]), /3 objectives but the reference has 2/);
});

Deno.test("hypervolume contributions and greedy subset selection", () => {
  deepEqual(hypervolumeContributions([[1, 2], [2, 1], [2, 2], [1, 2]], [3, 3]), [0, 1, 0, 0]);
  // The middle point alone covers most; then the one adding most to it.
  deepEqual(hypervolumeSubset([[0, 3], [1, 1], [3, 0], [2, 2]], 2, [4, 4]), [1, 0]);
});

Deno.test("referencePoint and lossVector follow Optuna's and the modes' signs", () => {
  deepEqual(referencePoint([[1, -2, 0], [2, -4, 0]]), [2.2, -1.8, 1e-12]);
  deepEqual(lossVector({ a: 1, b: 2 }, ["a", "b"], ["min", "max"]), [1, -2]);
  equal(lossVector({ a: 1, b: NaN }, ["a", "b"], ["min", "max"]), undefined);
  equal(lossVector({ a: 1 }, ["a", "b"], ["min", "max"]), undefined);
});
