import { deepEqual, equal, ok as assert, throws } from "#assert";
import { uniform } from "../../core/space.ts";
import type { Config, SearcherContext } from "../../core/plugin.ts";
import { findPluginFactory } from "../../tuner/plugin_table.ts";
import { hypervolume } from "../../core/pareto.ts";
import { nsga2Searcher, randomSearcher, tpeSearcher } from "../../plugins/searchers/mod.ts";
import { crowding } from "../../plugins/searchers/nsga2.ts";
import { drive, searcherContract } from "../contract/searcher.ts";
import { ResultGrid, Tuner } from "../../mod.ts";
import { tempStorage } from "../_helpers.ts";

searcherContract("nsga2Searcher", () => nsga2Searcher());
searcherContract("nsga2Searcher(population 6)", () => nsga2Searcher({ populationSize: 6 }));

const N = 5;
const zdtSpace = Object.fromEntries(Array.from({ length: N }, (_, i) => [`x${i}`, uniform(0, 1)]));
/** ZDT1 in 5 variables: a convex front f2 = 1 - sqrt(f1) at g = 1. */
export function zdt1(c: Config): { f1: number; f2: number } {
  const x = Array.from({ length: N }, (_, i) => c[`x${i}`] as number);
  const g = 1 + 9 * x.slice(1).reduce((a, b) => a + b, 0) / (N - 1);
  return { f1: x[0], f2: g * (1 - Math.sqrt(x[0] / g)) };
}
const moCtx = (seed: number, n: number): SearcherContext => ({
  space: zdtSpace,
  metric: "f1",
  mode: "min",
  metrics: ["f1", "f2"],
  modes: ["min", "min"],
  seed,
  numSamples: n,
});

/** Hypervolume of what a searcher found on ZDT1 after `n` evaluations, reference (1.1, 11). */
export function zdtHypervolume(
  make: () => import("../../core/plugin.ts").Searcher,
  seed: number,
  n: number,
): number {
  const s = make();
  s.setup?.(moCtx(seed, n));
  const { configs } = drive(s, n, { results: zdt1, metric: "f1" });
  return hypervolume(
    configs.map((c) => {
      const r = zdt1(c);
      return [r.f1, r.f2];
    }),
    [1.1, 11],
  );
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];

Deno.test("nsga2Searcher and MOTPE find a larger ZDT1 hypervolume than random search", () => {
  const seeds = [1, 2, 3];
  const rnd = median(seeds.map((s) => zdtHypervolume(() => randomSearcher(), s, 150)));
  const nsga = median(
    seeds.map((s) => zdtHypervolume(() => nsga2Searcher({ populationSize: 20 }), s, 150)),
  );
  const motpe = median(seeds.map((s) => zdtHypervolume(() => tpeSearcher(), s, 150)));
  assert(nsga > rnd, `NSGA-II ${nsga} vs random ${rnd}`);
  assert(motpe > rnd, `MOTPE ${motpe} vs random ${rnd}`);
});

Deno.test("nsga2Searcher breeds each generation from the elite of the last (no crossover, no mutation)", () => {
  const s = nsga2Searcher({ populationSize: 4, crossoverProb: 0, mutationProb: 0 });
  s.setup?.({ space: { x: uniform(0, 1) }, metric: "f", mode: "min", seed: 3, numSamples: 12 });
  const f = (c: Config) => ((c.x as number) - 0.3) ** 2;
  const { configs } = drive(s, 12, { objective: f, metric: "f" });
  const xs = configs.map((c) => c.x as number);
  const gen0 = xs.slice(0, 4), gen1 = xs.slice(4, 8), gen2 = xs.slice(8);
  for (const x of gen1) assert(gen0.includes(x), `${x} is not a copy of a generation-0 trial`);
  // The elite after generation 1: the best 4 of the 8 trials so far.
  const elite = xs.slice(0, 8).sort((a, b) => f({ x: a }) - f({ x: b })).slice(0, 4);
  for (const x of gen2) assert(elite.includes(x), `${x} is not one of the elite ${elite}`);
});

Deno.test("nsga2Searcher with crossover takes each parameter from a parent", () => {
  const space = { a: uniform(0, 1), b: uniform(0, 1), c: uniform(0, 1) };
  const s = nsga2Searcher({ populationSize: 6, crossoverProb: 1, mutationProb: 0 });
  s.setup?.({ space, metric: "f", mode: "min", seed: 9, numSamples: 12 });
  const { configs } = drive(s, 12, {
    objective: (c) => (c.a as number) + (c.b as number) * (c.c as number),
    metric: "f",
  });
  for (const child of configs.slice(6)) {
    for (const k of ["a", "b", "c"]) {
      assert(
        configs.slice(0, 6).some((p) => p[k] === child[k]),
        `${k} of ${JSON.stringify(child)}`,
      );
    }
  }
});

/**
 * Generation 0 of 100 trials with the loss vectors `loss(i)` of the i-th, then generation 1 (each
 * child an exact copy of one parent, or with `swappingProb: 0` its first parent's values): how
 * many children came from a parent `inSet(i)`.
 */
function copiesFrom(
  options: { crossoverProb: number; swappingProb?: number },
  loss: (i: number) => [number, number],
  inSet: (i: number) => boolean,
): number {
  const s = nsga2Searcher({ populationSize: 100, mutationProb: 0, ...options });
  s.setup?.({ ...moCtx(4, 200), space: { x: uniform(0, 1) } });
  const base = { training_iteration: 1, time_total_s: 0, time_this_iter_s: 0, timestamp: 0 };
  const indexOf = new Map<number, number>();
  for (let i = 0; i < 100; i++) {
    indexOf.set((s.suggest(`t${i}`) as Config).x as number, i);
    const [f1, f2] = loss(i);
    s.onComplete?.(`t${i}`, { ...base, trial_id: `t${i}`, f1, f2 }, {});
  }
  let n = 0;
  for (let i = 100; i < 200; i++) {
    const parent = indexOf.get((s.suggest(`t${i}`) as Config).x as number);
    if (parent === undefined) throw new Error(`child ${i} is not a copy of a generation-0 trial`);
    if (inSet(parent)) n++;
  }
  return n;
}

// Trials 0-49 on front 0, (j, 49 - j); trials 50-99 on front 1, each dominated by exactly one
// front-0 trial: (j + 0.5, 49.5 - j). A front-1 parent wins a tournament only against another
// front-1 trial: a quarter of the children. Optuna's operator (the dominating one, else the second
// drawn) lets it win against 49 of the 50 front-0 trials too: about half.
const twoFronts = (i: number): [number, number] =>
  i < 50 ? [i, 49 - i] : [i - 50 + 0.5, 49.5 - (i - 50)];

Deno.test("nsga2Searcher copies tournament winners: the lower front wins", () => {
  const n = copiesFrom({ crossoverProb: 0 }, twoFronts, (i) => i >= 50);
  assert(n > 10 && n < 38, `${n} of 100 copies are of front-1 trials (expected about 25)`);
});

Deno.test("nsga2Searcher picks crossover parents by tournament: the lower front wins", () => {
  // swappingProb 0: the child takes every parameter from its first parent.
  const n = copiesFrom({ crossoverProb: 1, swappingProb: 0 }, twoFronts, (i) => i >= 50);
  assert(n > 10 && n < 38, `${n} of 100 first parents are front-1 trials (expected about 25)`);
});

Deno.test("nsga2Searcher's tournament on one front prefers the larger crowding distance", () => {
  // One front on f1 + f2 = 1: trials 0-49 packed in [0.5, 0.505] (small crowding distances),
  // trials 50-99 spread over the rest of [0, 1]. A packed trial wins only against another.
  const t = (i: number) =>
    i < 50
      ? 0.5 + (i / 49) * 0.005
      : i < 75
      ? ((i - 50) / 25) * 0.49
      : 0.52 + ((i - 75) / 24) * 0.48;
  const n = copiesFrom({ crossoverProb: 0 }, (i) => [t(i), 1 - t(i)], (i) => i < 50);
  assert(n > 10 && n < 38, `${n} of 100 copies are of packed trials (expected about 25)`);
});

Deno.test("nsga2Searcher keeps failed trials and missing objectives out of the parents", () => {
  const s = nsga2Searcher({ populationSize: 3, crossoverProb: 0, mutationProb: 0 });
  s.setup?.(moCtx(1, 20));
  const first = [0, 1, 2, 3, 4].map((i) => [`t${i}`, s.suggest(`t${i}`) as Config] as const);
  // t0 fails, t1 lacks f2: only t2..t4 complete generation 0.
  s.onComplete?.("t0", undefined, { error: true });
  const base = { training_iteration: 1, time_total_s: 0, time_this_iter_s: 0, timestamp: 0 };
  s.onComplete?.("t1", { ...base, trial_id: "t1", f1: 0 }, {});
  for (const [id, c] of first.slice(2)) {
    s.onComplete?.(id, { ...base, trial_id: id, ...zdt1(c) }, {});
  }
  const parents = first.slice(2).map(([, c]) => JSON.stringify(c));
  for (let i = 5; i < 11; i++) {
    const c = s.suggest(`t${i}`) as Config;
    assert(parents.includes(JSON.stringify(c)), `child ${i} copies a failed or incomplete trial`);
  }
});

Deno.test("crowding distance: boundary points infinite, inner ones by their neighbours' gap", () => {
  deepEqual(crowding([[0, 4], [1, 2], [2, 1], [4, 0]]), [Infinity, 1.25, 1.25, Infinity]);
  deepEqual(crowding([[0, 1], [1, 0]]), [Infinity, Infinity]);
  // An objective in which all are equal adds nothing (as Optuna): only f2's ends are infinite.
  deepEqual(crowding([[1, 2], [1, 0], [1, 1]]), [Infinity, Infinity, 1]);
  deepEqual(crowding([[3, 3]]), [0]);
});

Deno.test("nsga2Searcher refuses bad options with the option's name", () => {
  throws(() => nsga2Searcher({ populationSize: 1 }), /"populationSize" must be >= 2, got 1/);
  throws(() => nsga2Searcher({ mutationProb: 1.5 }), /"mutationProb" must be <= 1, got 1.5/);
  throws(
    () => nsga2Searcher({ crossoverProb: "a" as never }),
    /"crossoverProb" must be a finite number/,
  );
  throws(() => nsga2Searcher({ populaton_size: 3 } as never), /unknown option "populaton_size"/);
});

Deno.test("nsga2 is made by its YAML name and runs a multi-objective experiment", async () => {
  const s = (await findPluginFactory("searcher", "nsga2"))!({ populationSize: 8 }) as ReturnType<
    typeof nsga2Searcher
  >;
  equal(s.name, "nsga2");
  const storage = await tempStorage();
  const r = await new Tuner({
    trainable: async (c: Config, session) => {
      await session.report(zdt1(c));
    },
    space: zdtSpace,
    metric: ["f1", "f2"],
    mode: ["min", "min"],
    searcher: s,
    numSamples: 24,
    seed: 5,
    storage,
    name: "zdt",
    reporter: false,
  }).fit();
  equal(r.trials.length, 24);
  const front = r.paretoFront();
  assert(front.length >= 2);
  deepEqual(
    (await ResultGrid.load(`${storage}/zdt`)).paretoFront().map((t) => t.id),
    front.map((t) => t.id),
  );
});
