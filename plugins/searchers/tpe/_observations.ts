/**
 * The finished trials a TPE learns from, kept incrementally: values by parameter (NaN where
 * inactive), losses, a per-parameter index sorted by value, and the ranking that decides the
 * good/bad split (full-length trials by loss, then trials stopped early by progress and loss).
 *
 * @module
 */

import type { Dim } from "./_dims.ts";
import {
  hypervolume,
  hypervolumeSubset,
  nonDominatedSort,
  referencePoint,
} from "../../../core/pareto.ts";

/** The good/bad split of the observations. */
export interface Split {
  /** Good observations, oldest first. */
  readonly good: number[];
  /** The rest, oldest first. */
  readonly bad: number[];
  /** Loss of the best bad observation (Infinity when there is none). */
  readonly threshold: number;
}

/** The observations of a TPE (an explicit state object; {@linkcode Observations.reset} clears it). */
export class Observations {
  /** Number of parameters. */
  readonly D: number;
  /** Number of observations. */
  n = 0;
  /** n × D values in internal units, NaN where inactive. */
  vals: Float64Array = new Float64Array(0);
  /** Loss (sign-adjusted; Infinity for a failed metric) per observation. */
  readonly loss: number[] = [];
  /**
   * Multi-objective (MOTPE): the loss vector (sign-adjusted) per observation, undefined where an
   * objective was missing or not finite. Empty for one objective.
   */
  readonly lossVec: (number[] | undefined)[] = [];
  /** Whether the good set is chosen by Pareto fronts ({@linkcode Observations.splitMulti}). */
  multiObjective = false;
  /** Multi-objective: the weight of each good observation (its hypervolume contribution). */
  goodWeight: Float64Array = new Float64Array(0);
  /** Last training iteration per observation. */
  readonly iters: number[] = [];
  /** Whether a scheduler stopped the trial. */
  readonly stopped: boolean[] = [];
  /** Numeric dims: observation indices sorted by value (active ones). */
  sortedByDim: number[][] = [];
  /** Full-length trials by loss. */
  full: number[] = [];
  /** Trials stopped early, by (−iteration, loss). */
  early: number[] = [];
  /** Longest run seen. */
  maxIter = 0;
  /** 1 for members of the last split's good set. */
  isGood: Uint8Array = new Uint8Array(0);
  /** Scratch: an observation's kernel slot in the mixture being fitted. */
  slot: Int32Array = new Int32Array(0);
  /** Per (observation, parameter): the last kernel width and its truncation term. */
  cacheSig: Float64Array = new Float64Array(0);
  /** See {@linkcode Observations.cacheSig}. */
  cacheLz: Float64Array = new Float64Array(0);

  /** Observations over `dims`. */
  constructor(private readonly dims: readonly Dim[]) {
    this.D = dims.length;
    this.reset();
  }

  /** Forgets every observation. */
  reset(): void {
    this.n = 0;
    this.vals = new Float64Array(0);
    this.isGood = new Uint8Array(0);
    this.goodWeight = new Float64Array(0);
    this.slot = new Int32Array(0);
    this.cacheSig = new Float64Array(0);
    this.cacheLz = new Float64Array(0);
    this.loss.length =
      this.iters.length =
      this.stopped.length =
      this.lossVec.length =
        0;
    this.sortedByDim = this.dims.map(() => []);
    this.full = [];
    this.early = [];
    this.maxIter = 0;
  }

  /** The value of parameter `p` of observation `i`. */
  value(i: number, p: number): number {
    return this.vals[i * this.D + p];
  }

  /** Adds one finished trial (`vec`: its loss vector in a multi-objective search). */
  add(x: Float64Array, loss: number, iter: number, wasStopped: boolean, vec?: number[]): void {
    const D = this.D;
    const i = this.n++;
    this.ensureCapacity(this.n);
    this.vals.set(x, i * D);
    this.loss[i] = loss;
    this.lossVec[i] = vec;
    this.iters[i] = iter;
    this.stopped[i] = wasStopped;
    const vals = this.vals;
    for (let p = 0; p < D; p++) {
      if (this.dims[p].kind !== "num" || Number.isNaN(x[p])) continue;
      insertSorted(this.sortedByDim[p], i, (a, b) => vals[a * D + p] - vals[b * D + p] || a - b);
    }
    if (iter > this.maxIter) {
      this.maxIter = iter;
      // Stopped trials that were full length are now early ones.
      const keep: number[] = [];
      for (const j of this.full) {
        if (this.stopped[j] && this.iters[j] < iter) insertSorted(this.early, j, this.byProgress);
        else keep.push(j);
      }
      this.full = keep;
    }
    if (!wasStopped || iter >= this.maxIter) insertSorted(this.full, i, this.byLoss);
    else insertSorted(this.early, i, this.byProgress);
  }

  /** Splits the observations into the best `nBelow` (full-length trials first) and the rest. */
  split(nBelow: number): Split {
    const n = this.n, full = this.full, early = this.early;
    const k = Math.max(0, Math.min(n, Math.floor(nBelow)));
    const good: number[] = [];
    for (let i = 0; i < full.length && good.length < k; i++) good.push(full[i]);
    for (let i = 0; i < early.length && good.length < k; i++) good.push(early[i]);
    this.isGood.fill(0, 0, n);
    for (const g of good) this.isGood[g] = 1;
    const next = good.length < full.length ? full[good.length] : early[good.length - full.length];
    good.sort((a, b) => a - b);
    const bad: number[] = [];
    for (let i = 0; i < n; i++) if (!this.isGood[i]) bad.push(i);
    return { good, bad, threshold: next === undefined ? Infinity : this.loss[next] };
  }

  /**
   * The multi-objective split of Optuna's MOTPE: the good set is filled with whole
   * non-dominated fronts of the full-length trials, and the front that does not fit whole is cut
   * by greedy hypervolume subset selection. Each good observation is weighted by its share of the
   * good set's hypervolume (`goodWeight`). Failed and early-stopped trials are bad.
   */
  splitMulti(nBelow: number): Split {
    const n = this.n;
    const eligible = this.full.filter((i) => this.lossVec[i] !== undefined).sort((a, b) => a - b);
    const k = Math.max(0, Math.min(eligible.length, Math.floor(nBelow)));
    const points = eligible.map((i) => this.lossVec[i]!);
    const good: number[] = [];
    if (k > 0) {
      for (const front of nonDominatedSort(points, k)) {
        if (good.length + front.length <= k) {
          for (const f of front) good.push(eligible[f]);
          continue;
        }
        const sub = front.map((f) => points[f]);
        for (const j of hypervolumeSubset(sub, k - good.length, referencePoint(sub))) {
          good.push(eligible[front[j]]);
        }
        break;
      }
    }
    good.sort((a, b) => a - b);
    this.isGood.fill(0, 0, n);
    for (const g of good) this.isGood[g] = 1;
    const bad: number[] = [];
    for (let i = 0; i < n; i++) if (!this.isGood[i]) bad.push(i);
    // Optuna's weights: leave-one-out hypervolume contributions, scaled to the largest, ≥ 1e-12.
    const w = this.goodWeight;
    for (const g of good) w[g] = 1;
    if (good.length > 1) {
      const gp = good.map((g) => this.lossVec[g]!);
      const ref = referencePoint(gp);
      const total = hypervolume(gp, ref);
      if (Number.isFinite(total)) {
        const c = gp.map((_, i) => total - hypervolume(gp.filter((_, j) => j !== i), ref));
        const top = Math.max(1e-12, ...c);
        good.forEach((g, i) => (w[g] = Math.min(1, Math.max(1e-12, c[i] / top))));
      }
    }
    return { good, bad, threshold: Infinity };
  }

  private readonly byLoss = (a: number, b: number): number => this.loss[a] - this.loss[b] || a - b;
  private readonly byProgress = (a: number, b: number): number =>
    this.iters[b] - this.iters[a] || this.byLoss(a, b);

  private ensureCapacity(n: number): void {
    const D = Math.max(this.D, 1);
    if (this.vals.length >= n * this.D && this.isGood.length >= n) return;
    const cap = Math.max(16, n * 2);
    const nv = new Float64Array(cap * D);
    nv.set(this.vals);
    this.vals = nv;
    const ng = new Uint8Array(cap);
    ng.set(this.isGood);
    this.isGood = ng;
    const gw = new Float64Array(cap);
    gw.set(this.goodWeight);
    this.goodWeight = gw;
    this.slot = new Int32Array(cap);
    const cs = new Float64Array(cap * D).fill(NaN);
    cs.set(this.cacheSig);
    this.cacheSig = cs;
    const cl = new Float64Array(cap * D);
    cl.set(this.cacheLz);
    this.cacheLz = cl;
  }
}

/** Inserts `item` into a sorted list (after equal items). */
export function insertSorted(
  list: number[],
  item: number,
  cmp: (a: number, b: number) => number,
): void {
  let lo = 0, hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cmp(list[mid], item) <= 0) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, item);
}
