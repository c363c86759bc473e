/**
 * CMA-ES (Hansen's covariance matrix adaptation evolution strategy) with IPOP restarts, as
 * Optuna's `CmaEsSampler` runs it, for the numeric parameters of a space; choices and
 * parameters inside choice branches are proposed by a univariate TPE.
 *
 * @module
 */

import { recordSpec } from "../../core/plugin.ts";
import type { Searcher } from "../../core/plugin.ts";
import type { Config, JsonValue } from "../../core/trial.ts";
import type { Rng } from "../../core/random.ts";
import type { ParamInfo } from "../../core/space.ts";
import {
  checkOptionKeys,
  checkPoints,
  checkSeed,
  isDrawable,
  sampleAssignment,
} from "./_assignment.ts";
import {
  type Assignment,
  assignmentFromJson,
  assignmentToJson,
  modelSearcher,
  type SearchModel,
} from "./_shell.ts";
import { intOption, numberOption, TpeModel, tpeSettings } from "./tpe/mod.ts";
import { makeDim, type NumDim, toExternal } from "./tpe/_dims.ts";

/** Options of {@linkcode cmaesSearcher}. */
export interface CmaesSearcherOptions {
  /**
   * Offspring per generation (λ); the default is 4 + ⌊3 ln n⌋ for n numeric parameters. IPOP
   * doubles it at every restart.
   */
  readonly popsize?: number;
  /** Initial step size, as a fraction of each parameter's range. @default 1/6 */
  readonly sigma0?: number;
  /**
   * Restart strategy when the search has converged: `"ipop"` restarts from a random mean with
   * twice the population (Auger & Hansen 2005), `"none"` keeps sampling the converged
   * distribution.
   * @default "ipop"
   */
  readonly restarts?: "ipop" | "none";
  /**
   * Finished trials a univariate TPE waits for before it models the parameters CMA-ES does not
   * (choices, parameters inside choice branches, normals); before that they are random.
   * @default 10
   */
  readonly initialPoints?: number;
  /** Configs to try first (partial ones are completed at random). @default [] */
  readonly pointsToEvaluate?: readonly Config[];
  /** Seed of this searcher's random stream. @default the experiment seed */
  readonly seed?: number;
}

const OPTION_KEYS = [
  "popsize",
  "sigma0",
  "restarts",
  "initialPoints",
  "pointsToEvaluate",
  "seed",
] as const;

/**
 * A CMA-ES searcher for continuous and integer parameters.
 *
 * - Works in [0, 1] per numeric parameter (log-scaled ones in log space); samples outside the
 *   box are redrawn (then clipped after 100 tries); integers and quantized floats are rounded in
 *   the config while CMA-ES learns from the continuous sample.
 * - Each suggestion is a fresh sample of the current generation, so any number of trials may
 *   run at once; a generation is updated from the first λ results that come back for it, and
 *   results of older generations only inform the TPE.
 * - Hansen's (2016) default weights: the best half moves the mean, the worst half gets negative
 *   weights in the covariance update (active CMA), as the `cmaes` library behind Optuna's.
 * - IPOP restarts on convergence (step size or objective range below tolerance, or an
 *   ill-conditioned covariance), each with twice the population.
 * - Choices, parameters inside a branch and normals are proposed by a univariate TPE given
 *   the CMA-ES values (Optuna uses its independent sampler there).
 * - Seeded; `snapshot()`/`restore()` carry the distribution and every observation.
 *
 * @param options population, step size, restarts, points to try first, seed.
 * @returns a searcher named `"cmaes"`.
 * @throws {TypeError} on an unknown option or a value of the wrong type.
 * @throws {RangeError} on a value out of range (e.g. `popsize: 1`).
 * @example
 * ```ts
 * import { cmaesSearcher } from "./cmaes.ts";
 * import { uniform } from "../../core/space.ts";
 * const s = cmaesSearcher();
 * s.setup?.({ space: { x: uniform(-5, 5), y: uniform(-5, 5) }, metric: "loss", mode: "min", seed: 1, numSamples: 30 });
 * for (let i = 0; i < 30; i++) {
 *   const c = s.suggest(`t${i}`) as { x: number; y: number };
 *   s.onComplete?.(`t${i}`, {
 *     loss: (c.x - 2) ** 2 + c.y ** 2, training_iteration: 1, time_total_s: 0,
 *     time_this_iter_s: 0, timestamp: 0, trial_id: `t${i}`,
 *   });
 * }
 * ```
 */
export function cmaesSearcher(options: CmaesSearcherOptions = {}): Searcher {
  const F = "cmaesSearcher";
  const o = checkOptionKeys(F, options, OPTION_KEYS);
  const popsize = o.popsize === undefined ? undefined : intOption(F, "popsize", o.popsize, 0, 2);
  const sigma0 = numberOption(F, "sigma0", o.sigma0, 1 / 6);
  if (!(sigma0 > 0 && sigma0 <= 1)) {
    throw new RangeError(`${F}: "sigma0" must be in (0, 1], got ${sigma0}`);
  }
  const restarts = o.restarts ?? "ipop";
  if (restarts !== "ipop" && restarts !== "none") {
    throw new TypeError(
      `${F}: "restarts" must be "ipop" or "none", got ${JSON.stringify(restarts)}`,
    );
  }
  const initialPoints = intOption(F, "initialPoints", o.initialPoints, 10, 0);
  const points = checkPoints(F, o.pointsToEvaluate);
  const seed = checkSeed(F, o.seed);
  return recordSpec(
    "cmaes",
    options,
    modelSearcher({
      name: "cmaes",
      factory: F,
      points,
      ...(seed !== undefined ? { seed } : {}),
      makeModel: (params) => cmaesModel(params, { popsize, sigma0, restarts, initialPoints }),
    }),
  );
}

interface Settings {
  readonly popsize: number | undefined;
  readonly sigma0: number;
  readonly restarts: "ipop" | "none";
  readonly initialPoints: number;
}

/** The evolving distribution (JSON-able). */
interface CmaState {
  gen: number;
  lambda: number;
  restarts: number;
  sigma: number;
  mean: number[];
  C: number[]; // n×n
  pc: number[];
  ps: number[];
  /** (x, f) of the current generation's returned samples. */
  told: [number[], number][];
  /** Best f of recent generations (for the tolfun criterion). */
  hist: number[];
}

/**
 * A standard normal draw by Box–Muller that keeps no spare value (`Rng.normal` caches one, which
 * `Rng.snapshot` does not carry, so a restored searcher would draw differently).
 */
function gauss(rng: Rng): number {
  const u = rng.next(), v = rng.next();
  return Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v);
}

/** Symmetric eigendecomposition by cyclic Jacobi: C = B·diag(d)·Bᵀ (B's columns). */
export function eigenSym(C: Float64Array, n: number): { d: Float64Array; B: Float64Array } {
  const A = Float64Array.from(C);
  const B = new Float64Array(n * n);
  for (let i = 0; i < n; i++) B[i * n + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += A[p * n + q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (A[q * n + q] - A[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = A[k * n + p], akq = A[k * n + q];
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k], aqk = A[q * n + k];
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const bkp = B[k * n + p], bkq = B[k * n + q];
          B[k * n + p] = c * bkp - s * bkq;
          B[k * n + q] = s * bkp + c * bkq;
        }
      }
    }
  }
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = Math.max(A[i * n + i], 0);
  return { d, B };
}

function cmaesModel(params: readonly ParamInfo[], settings: Settings): SearchModel {
  const dims: NumDim[] = [];
  for (const p of params) {
    if (!isDrawable(p) || p.condition) continue;
    if (p.domain.kind === "float" || p.domain.kind === "int") {
      dims.push(makeDim(p, undefined, "cmaesSearcher") as NumDim);
    }
  }
  const n = dims.length;
  // Grid step per dim in [0, 1] units (0: continuous), for the convergence test.
  const step = dims.map((d) => (d.disc ? (2 * d.half) / (d.hi - d.lo) : 0));
  const fallback = new TpeModel(params, tpeSettings("cmaesSearcher", { multivariate: false }));
  const history: JsonValue[] = [];
  /** Samples handed out: trial → [x, generation, restart]. */
  const issued = new Map<string, [number[], number, number]>();

  const lambda0 = settings.popsize ?? 4 + Math.floor(3 * Math.log(Math.max(n, 1)));
  let st: CmaState;
  let eig: { d: Float64Array; B: Float64Array } | undefined;

  const fresh = (rng: Rng | undefined, lambda: number, restarts: number): CmaState => ({
    gen: 0,
    lambda,
    restarts,
    sigma: settings.sigma0,
    mean: Array.from({ length: n }, () => (rng ? rng.next() : 0.5)),
    C: Array.from({ length: n * n }, (_, k) => (k % (n + 1) === 0 ? 1 : 0)),
    pc: new Array(n).fill(0),
    ps: new Array(n).fill(0),
    told: [],
    hist: [],
  });
  st = fresh(undefined, lambda0, 0);

  const eigen = () => (eig ??= eigenSym(Float64Array.from(st.C), n));

  const sample = (rng: Rng): number[] => {
    const { d, B } = eigen();
    const z = new Float64Array(n), y = new Float64Array(n);
    let x: number[] = [];
    for (let tries = 0; tries < 100; tries++) {
      for (let i = 0; i < n; i++) z[i] = Math.sqrt(d[i]) * gauss(rng);
      y.fill(0);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) y[i] += B[i * n + j] * z[j];
      x = st.mean.map((m, i) => m + st.sigma * y[i]);
      if (x.every((v) => v >= 0 && v <= 1)) return x;
    }
    return x.map((v) => Math.min(1, Math.max(0, v)));
  };

  const update = (rng: Rng): void => {
    const lambda = st.lambda, mu = Math.floor(lambda / 2);
    const told = st.told.slice().sort((a, b) => a[1] - b[1]);
    st.told = [];
    // Weights for all λ samples (Hansen's 2016 tutorial, as the `cmaes` library Optuna uses): the
    // best μ positive (they move the mean), the rest negative ("active" CMA: the worst samples
    // shrink the covariance along their directions).
    const wp = Array.from(
      { length: lambda },
      (_, i) => Math.log((lambda + 1) / 2) - Math.log(i + 1),
    );
    let sumPos = 0, sumPos2 = 0, sumNeg = 0, sumNeg2 = 0;
    for (const v of wp) {
      if (v > 0) [sumPos, sumPos2] = [sumPos + v, sumPos2 + v * v];
      else [sumNeg, sumNeg2] = [sumNeg - v, sumNeg2 + v * v];
    }
    const mueff = (sumPos * sumPos) / sumPos2;
    const mueffMinus = sumNeg2 > 0 ? (sumNeg * sumNeg) / sumNeg2 : 0;
    const cs = (mueff + 2) / (n + mueff + 5);
    const ds = 1 + 2 * Math.max(0, Math.sqrt((mueff - 1) / (n + 1)) - 1) + cs;
    const cc = (4 + mueff / n) / (n + 4 + (2 * mueff) / n);
    const c1 = 2 / ((n + 1.3) ** 2 + mueff);
    const cmu = Math.min(1 - c1 - 1e-8, (2 * (mueff - 2 + 1 / mueff)) / ((n + 2) ** 2 + mueff));
    const minAlpha = Math.min(
      1 + c1 / cmu,
      1 + (2 * mueffMinus) / (mueff + 2),
      (1 - c1 - cmu) / (n * cmu),
    );
    const w = wp.map((v) => (v >= 0 ? v / sumPos : (minAlpha * v) / Math.max(sumNeg, 1e-300)));
    const chiN = Math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n));
    const { d, B } = eigen();
    const old = st.mean;
    const ys = told.map(([x]) => x.map((v, i) => (v - old[i]) / st.sigma));
    const yw = new Array(n).fill(0);
    for (let k = 0; k < mu; k++) for (let i = 0; i < n; i++) yw[i] += w[k] * ys[k][i];
    st.mean = old.map((m, i) => m + st.sigma * yw[i]);
    // C^(-1/2)·v = B·diag(1/√d)·Bᵀ·v.
    const invSqrtC = (v: number[]): number[] => {
      const t = new Array(n).fill(0);
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let i = 0; i < n; i++) s += B[i * n + j] * v[i];
        t[j] = s / Math.sqrt(Math.max(d[j], 1e-300));
      }
      const out = new Array(n).fill(0);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i] += B[i * n + j] * t[j];
      return out;
    };
    const cy = invSqrtC(yw);
    const kps = Math.sqrt(cs * (2 - cs) * mueff);
    st.ps = st.ps.map((p, i) => (1 - cs) * p + kps * cy[i]);
    const psn = Math.hypot(...st.ps);
    const hs = psn / Math.sqrt(1 - (1 - cs) ** (2 * (st.gen + 1))) < (1.4 + 2 / (n + 1)) * chiN
      ? 1
      : 0;
    const kpc = Math.sqrt(cc * (2 - cc) * mueff);
    st.pc = st.pc.map((p, i) => (1 - cc) * p + hs * kpc * yw[i]);
    // Negative weights are rescaled by n / ‖C^(-1/2)·y‖² so that they cannot make C indefinite.
    const wc = w.map((wk, k) => {
      if (wk >= 0) return wk;
      const z = invSqrtC(ys[k]);
      let z2 = 0;
      for (const v of z) z2 += v * v;
      return (wk * n) / Math.max(z2, 1e-300);
    });
    let sumW = 0;
    for (const v of w) sumW += v;
    const decay = 1 + (1 - hs) * c1 * cc * (2 - cc) - c1 - cmu * sumW;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let rankMu = 0;
        for (let k = 0; k < told.length; k++) rankMu += wc[k] * ys[k][i] * ys[k][j];
        st.C[i * n + j] = decay * st.C[i * n + j] + c1 * st.pc[i] * st.pc[j] + cmu * rankMu;
      }
    }
    st.sigma *= Math.exp(Math.min(1, (cs / ds) * (psn / chiN - 1)));
    st.gen++;
    eig = undefined;
    st.hist.push(told[0][1]);
    const keep = 10 + Math.ceil((30 * n) / lambda);
    if (st.hist.length > keep) st.hist.shift();
    if (settings.restarts === "ipop" && converged(told)) {
      st = fresh(rng, st.lambda * 2, st.restarts + 1);
      eig = undefined;
    }
  };

  const converged = (told: [number[], number][]): boolean => {
    const { d } = eigen();
    let dmax = 0, dmin = Infinity;
    for (const v of d) [dmax, dmin] = [Math.max(dmax, v), Math.min(dmin, v)];
    if (dmax / Math.max(dmin, 1e-300) > 1e14) return true;
    // Every coordinate's spread below its grid step (or 1e-8 of the range).
    let small = true;
    for (let i = 0; i < n; i++) {
      const sd = st.sigma * Math.sqrt(st.C[i * n + i]);
      if (sd >= Math.max(step[i] / 4, 1e-8)) small = false;
    }
    if (small) return true;
    const fs = told.map(([, f]) => f).filter(Number.isFinite);
    const keep = 10 + Math.ceil((30 * n) / st.lambda);
    if (st.hist.length >= keep && fs.length) {
      const all = [...st.hist, ...fs];
      if (Math.max(...all) - Math.min(...all) < 1e-12) return true;
    }
    return false;
  };

  const observe = (
    a: ReadonlyMap<string, unknown>,
    loss: number,
    it: number,
    stopped: boolean,
    trialId: string,
    rng: Rng,
  ) => {
    fallback.obs.add(fallback.internalOf(a), loss, it, stopped);
    const iss = issued.get(trialId);
    issued.delete(trialId);
    history.push([assignmentToJson(a), Number.isFinite(loss) ? loss : null, it, stopped]);
    if (!iss || n === 0) return;
    const [x, gen, restart] = iss;
    if (gen !== st.gen || restart !== st.restarts) return; // an older generation
    // A failed trial ranks last.
    st.told.push([x, Number.isFinite(loss) ? loss : Number.MAX_VALUE]);
    if (st.told.length >= st.lambda) update(rng);
  };

  return {
    ready: () => true,
    suggest(rng, fixed, running, trialId) {
      const a: Assignment = new Map(fixed);
      if (n > 0) {
        const x = sample(rng);
        issued.set(trialId, [x, st.gen, st.restarts]);
        for (let i = 0; i < n; i++) {
          const d = dims[i];
          if (!a.has(d.key)) a.set(d.key, toExternal(d, d.lo + x[i] * (d.hi - d.lo)));
        }
      }
      if (fallback.obs.n < settings.initialPoints) return sampleAssignment(params, rng, a);
      const pend = running.map((r) => fallback.internalOf(r));
      return fallback.assignInto(fallback.suggest(rng, a, pend), a);
    },
    observe,
    snapshot: () => ({
      // Through JSON: plain data (−0 becomes 0, which computes the same).
      state: JSON.parse(JSON.stringify(st)) as JsonValue,
      issued: JSON.parse(JSON.stringify([...issued])) as JsonValue,
      history: history.slice(),
    }),
    restore(state) {
      const s = state as Record<string, JsonValue> | null;
      if (
        s === null || typeof s !== "object" || !Array.isArray(s.history) ||
        !Array.isArray(s.issued) || typeof s.state !== "object" || s.state === null
      ) {
        throw new TypeError("cmaesSearcher: restore() expects the object snapshot() returned");
      }
      const cs = s.state as unknown as CmaState;
      if (!Array.isArray(cs.mean) || cs.mean.length !== n) {
        throw new TypeError(
          `cmaesSearcher: the snapshot has ${
            Array.isArray(cs.mean) ? cs.mean.length : "?"
          } numeric parameters but the space has ${n}; restore with the same space`,
        );
      }
      fallback.obs.reset();
      history.length = 0;
      for (const h of s.history as JsonValue[][]) {
        const [a, l, it, stp] = h as [JsonValue, number | null, number, boolean];
        const asg = assignmentFromJson(a);
        fallback.obs.add(fallback.internalOf(asg), l ?? Infinity, it, stp);
        history.push(h);
      }
      st = structuredClone(cs);
      eig = undefined;
      issued.clear();
      for (const [id, v] of s.issued as [string, [number[], number, number]][]) issued.set(id, v);
    },
  };
}
