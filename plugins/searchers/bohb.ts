/**
 * BOHB's searcher half (Falkner et al., ICML 2018; Ray's `TuneBOHB`, hpbandster's config
 * generator): new configs come from a TPE-style pair of kernel density estimates fitted on the
 * results at the largest budget with enough observations. Pair it with HyperBand: YAML
 * `scheduler: { name: hyperband_for_bohb }` (Ray's `HyperBandForBOHB`, i.e. `hyperbandScheduler`
 * with `waitForFullBrackets` and `largestBracketFirst`) and `searcher: { name: bohb }`.
 *
 * @module
 */

import { requireSingleObjective, type Searcher, type SearcherContext } from "../../core/plugin.ts";
import type { Config, JsonValue, Mode, TrialResult } from "../../core/trial.ts";
import { Rng } from "../../core/random.ts";
import { type Domain, parameters, type ParamInfo, type Space } from "../../core/space.ts";
import {
  buildConfig,
  checkOptionKeys,
  checkSeed,
  isDrawable,
  sampleAssignment,
  stateObject,
} from "./_assignment.ts";
import { ndtr, ndtri, truncNormal } from "./_math.ts";

/** Options of {@linkcode bohbSearcher}; the defaults are hpbandster's (Ray's `TuneBOHB`). */
export interface BohbSearcherOptions {
  /** The result key that is the budget (HyperBand's `timeAttr`). @default "training_iteration" */
  readonly timeAttr?: string;
  /** Observations a budget needs beyond `minPointsInModel + 1` before it gets a model. @default the number of parameters + 1 */
  readonly minPointsInModel?: number;
  /** The best this percent of a budget's observations form the "good" density. @default 15 */
  readonly topNPercent?: number;
  /** Candidates drawn from the good density per suggestion. @default 64 */
  readonly numSamples?: number;
  /** The share of suggestions drawn at random, even with a model. @default 1/3 */
  readonly randomFraction?: number;
  /** Candidates are drawn with the good density's bandwidths times this. @default 3 */
  readonly bandwidthFactor?: number;
  /** The smallest bandwidth. @default 0.001 */
  readonly minBandwidth?: number;
  /** Seed. @default the experiment's seed */
  readonly seed?: number;
}

const FN = "bohbSearcher";
const KEYS = [
  "timeAttr",
  "minPointsInModel",
  "topNPercent",
  "numSamples",
  "randomFraction",
  "bandwidthFactor",
  "minBandwidth",
  "seed",
] as const;

/** One modelled dimension: an unconditional number or choice, mapped to [0, 1] or an index. */
interface Dim {
  readonly key: string;
  readonly domain: Domain;
  /** Number of categories (choice), 0 for a continuous dimension. */
  readonly categories: number;
}

function encode(d: Dim, v: unknown): number {
  const dom = d.domain;
  if (dom.kind === "choice") return v as number;
  const x = v as number;
  if (dom.kind === "normal") {
    return Math.min(1 - 1e-9, Math.max(1e-9, ndtr((x - dom.mean) / dom.sd)));
  }
  if (dom.kind !== "float" && dom.kind !== "int") return 0.5;
  const hi = dom.kind === "int" ? dom.max + dom.q : dom.max;
  const t = dom.log
    ? (Math.log(x) - Math.log(dom.min)) / (Math.log(hi) - Math.log(dom.min))
    : (x - dom.min) / (hi - dom.min);
  return Math.min(1, Math.max(0, t));
}

function decode(d: Dim, u: number): unknown {
  const dom = d.domain;
  if (dom.kind === "choice") return Math.round(u);
  if (dom.kind === "normal") {
    const x = dom.mean + dom.sd * ndtri(Math.min(1 - 1e-9, Math.max(1e-9, u)));
    return dom.q ? Math.round(x / dom.q) * dom.q : x;
  }
  if (dom.kind !== "float" && dom.kind !== "int") return u;
  const hi = dom.kind === "int" ? dom.max + dom.q : dom.max;
  let x = dom.log
    ? Math.exp(Math.log(dom.min) + u * (Math.log(hi) - Math.log(dom.min)))
    : dom.min + u * (hi - dom.min);
  if (dom.kind === "int") {
    x = Math.min(dom.max, Math.max(dom.min, dom.min + Math.floor((x - dom.min) / dom.q) * dom.q));
  } else if (dom.q) {
    x = Math.min(dom.max, Math.max(dom.min, Math.round(x / dom.q) * dom.q));
  } else x = Math.min(dom.max, x);
  return x;
}

/** statsmodels' `KDEMultivariate` with normal-reference bandwidths, as hpbandster fits it. */
interface Kde {
  readonly data: readonly number[][];
  readonly bw: readonly number[];
}

function fitKde(data: number[][], dims: readonly Dim[], minBw: number): Kde {
  const n = data.length, d = dims.length;
  const bw = dims.map((_, j) => {
    const xs = data.map((r) => r[j]);
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, n - 1));
    return Math.max(minBw, 1.06 * sd * n ** (-1 / (4 + d)));
  });
  return { data, bw };
}

function pdf(k: Kde, dims: readonly Dim[], x: readonly number[]): number {
  let total = 0;
  for (const row of k.data) {
    let p = 1;
    for (let j = 0; j < dims.length; j++) {
      const c = dims[j].categories, h = k.bw[j];
      if (c) {
        // Aitchison-Aitken: 1 - h on the same category, h / (c - 1) elsewhere.
        const lambda = Math.min(h, 1);
        p *= row[j] === x[j] ? 1 - lambda : lambda / Math.max(1, c - 1);
      } else {
        const z = (x[j] - row[j]) / h;
        p *= Math.exp(-0.5 * z * z) / (h * Math.sqrt(2 * Math.PI));
      }
    }
    total += p;
  }
  return total / k.data.length;
}

/**
 * BOHB's config generator (hpbandster's `BOHB` as Ray's `TuneBOHB` uses it).
 *
 * Every report is an observation of its trial's config at the budget `result[timeAttr]`. A
 * budget has a model once it holds more than `minPointsInModel + 1` observations: the best
 * `max(minPointsInModel, topNPercent%)` form the good density `l(x)`, the next
 * `max(minPointsInModel, (100 - topNPercent)%)` the bad density `g(x)` (kernel density
 * estimates, Gaussian kernels for numbers on their [0, 1] scale, Aitchison-Aitken for choices,
 * bandwidths at least `minBandwidth`). A suggestion uses the largest budget with a model: it
 * draws `numSamples` candidates around good points (bandwidths times `bandwidthFactor`) and
 * keeps the one with the largest `l(x) / g(x)`; with probability `randomFraction`, or with no
 * model yet, it samples the space at random.
 *
 * Differences from Ray (`TuneBOHB` over hpbandster): parameters inside a choice's branch are
 * drawn at random, not modelled (hpbandster models conditional spaces with imputation); a
 * `randn` parameter is modelled on its normal CDF scale; the budget is any reported value of
 * `timeAttr`, so it also works with ASHA; the space is Tunebox's (Ray needs a ConfigSpace);
 * Ray's `TuneBOHB` records a result only when HyperBandForBOHB pauses the trial at a milestone
 * (`on_pause`), here every report is an observation at its own budget (at HyperBand's
 * milestones the two agree).
 *
 * @param options see {@linkcode BohbSearcherOptions}; defaults are hpbandster's.
 * @returns a searcher named `"bohb"`.
 * @throws {TypeError} on an unknown option or a value of the wrong type.
 * @throws {RangeError} when a number is outside its range.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bohbSearcher } from "./bohb.ts";
 * import { uniform } from "../../core/space.ts";
 * const s = bohbSearcher();
 * s.setup?.({ space: { lr: uniform(0, 1) }, metric: "loss", mode: "min", seed: 1, numSamples: 4 });
 * assert.equal(typeof (s.suggest("t0") as { lr: number }).lr, "number");
 * ```
 */
export function bohbSearcher(options: BohbSearcherOptions = {}): Searcher {
  const o = checkOptionKeys(FN, options, KEYS) as BohbSearcherOptions;
  const num = (name: keyof BohbSearcherOptions, fallback: number, lo: number, hi: number) => {
    const v = o[name] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new TypeError(`${FN}: "${name}" must be a number, got ${JSON.stringify(v)}`);
    }
    if (v < lo || v > hi) {
      throw new RangeError(`${FN}: "${name}" must be between ${lo} and ${hi}, got ${v}`);
    }
    return v;
  };
  const timeAttr = o.timeAttr ?? "training_iteration";
  if (typeof timeAttr !== "string" || !timeAttr) {
    throw new TypeError(`${FN}: "timeAttr" must be a result key, got ${JSON.stringify(timeAttr)}`);
  }
  const topN = num("topNPercent", 15, 1, 99);
  const numSamples = Math.round(num("numSamples", 64, 1, 1e5));
  const randomFraction = num("randomFraction", 1 / 3, 0, 1);
  const bwFactor = num("bandwidthFactor", 3, 1e-6, 1e6);
  const minBw = num("minBandwidth", 1e-3, 1e-12, 1);
  const seedOption = checkSeed(FN, o.seed);

  let space: Space | undefined;
  let params: ParamInfo[] = [];
  let dims: Dim[] = [];
  let mode: Mode = "min";
  let metric = "";
  let minPoints = 0;
  let rng = new Rng(0);
  // trial id -> its encoded vector; budget -> trial id -> loss.
  let vectors = new Map<string, number[]>();
  let obs = new Map<number, Map<string, number>>();

  function observe(id: string, r: TrialResult | undefined): void {
    if (!r || !vectors.has(id)) return;
    const b = r[timeAttr], v = r[metric];
    if (typeof b !== "number" || !Number.isFinite(b)) return;
    const loss = typeof v === "number" && !Number.isNaN(v) ? (mode === "min" ? v : -v) : Infinity;
    let at = obs.get(b);
    if (!at) obs.set(b, at = new Map());
    at.set(id, loss);
  }

  function model(): { good: Kde; bad: Kde } | undefined {
    const budgets = [...obs.keys()].sort((a, b) => b - a);
    for (const b of budgets) {
      const at = obs.get(b)!;
      if (at.size <= minPoints + 1) continue;
      const ranked = [...at].sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1));
      const n = ranked.length;
      const nGood = Math.max(minPoints, Math.floor(topN * n / 100));
      const nBad = Math.max(minPoints, Math.floor((100 - topN) * n / 100));
      const good = ranked.slice(0, nGood).map(([id]) => vectors.get(id)!);
      const bad = ranked.slice(nGood, nGood + nBad).map(([id]) => vectors.get(id)!);
      if (!good.length || !bad.length) continue;
      return { good: fitKde(good, dims, minBw), bad: fitKde(bad, dims, minBw) };
    }
    return undefined;
  }

  function candidate(good: Kde): number[] {
    const row = good.data[rng.int(0, good.data.length - 1)];
    return dims.map((d, j) => {
      const bw = Math.max(good.bw[j], minBw) * bwFactor;
      if (d.categories) {
        return rng.next() < 1 - Math.min(bw, 1) ? row[j] : rng.int(0, d.categories - 1);
      }
      return truncNormal(row[j], bw, 0, 1, rng.next());
    });
  }

  return {
    name: "bohb",
    setup(ctx: SearcherContext) {
      requireSingleObjective("bohbSearcher", ctx);
      space = ctx.space;
      metric = ctx.metric;
      mode = ctx.mode;
      params = parameters(space);
      dims = params.filter((p) => isDrawable(p) && !p.condition).map((p) => ({
        key: p.key,
        domain: p.domain,
        categories: p.domain.kind === "choice" ? p.domain.options.length : 0,
      }));
      minPoints = o.minPointsInModel === undefined
        ? dims.length + 1
        : Math.round(num("minPointsInModel", 0, 0, 1e6));
      rng = new Rng(seedOption ?? ctx.seed);
    },
    suggest(trialId: string): Config {
      if (!space) throw new Error(`${FN}: suggest() was called before setup()`);
      let fixed = new Map<string, unknown>();
      const m = rng.next() < randomFraction ? undefined : model();
      if (m) {
        let best: number[] | undefined, bestScore = -Infinity;
        for (let i = 0; i < numSamples; i++) {
          const x = candidate(m.good);
          const score = Math.max(pdf(m.good, dims, x), 1e-32) /
            Math.max(pdf(m.bad, dims, x), 1e-32);
          if (score > bestScore) best = x, bestScore = score;
        }
        fixed = new Map(dims.map((d, j) => [d.key, decode(d, best![j])]));
      }
      const a = sampleAssignment(params, rng, fixed);
      vectors.set(trialId, dims.map((d) => encode(d, a.get(d.key))));
      return buildConfig(space, rng, a);
    },
    onReport(trialId, result) {
      observe(trialId, result);
    },
    onComplete(trialId, final) {
      observe(trialId, final);
    },
    snapshot(): JsonValue {
      return {
        name: "bohb",
        rng: rng.snapshot(),
        vectors: [...vectors],
        obs: [...obs].map((
          [b, at],
        ) => [b, [...at].map(([id, l]) => [id, Number.isFinite(l) ? l : null])]),
      } as unknown as JsonValue;
    },
    restore(state: JsonValue) {
      const raw = stateObject(FN, state);
      if (raw.name !== "bohb" || !Array.isArray(raw.rng) || !Array.isArray(raw.obs)) {
        throw new TypeError(
          `${FN}: restore() expects { name: "bohb", rng, vectors, obs } from snapshot()`,
        );
      }
      const s = raw as unknown as {
        rng: number[];
        vectors: [string, number[]][];
        obs: [number, [string, number | null][]][];
      };
      rng.restore(s.rng);
      vectors = new Map(s.vectors);
      obs = new Map(s.obs.map(([b, at]) => [b, new Map(at.map(([id, l]) => [id, l ?? Infinity]))]));
    },
  };
}
