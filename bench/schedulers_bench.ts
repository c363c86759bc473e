#!/usr/bin/env -S deno run -A
/**
 * Scheduler benchmark, on the deterministic simulator of the scheduler contract suite (the
 * runner's decision loop, in memory; no subprocesses):
 *
 * 1. Simulated learning curves built from Hartmann6 (LC-H6): config x in [0, 1]^6, asymptote
 *    L(x) = H6(x) + 3.32237 (the regret), time constant 2 + 30 x0, so slow learners may end
 *    better; at epoch t = 1..81 a trial reports L + (3.5 - L) e^(-t/tau) + N(0, 0.05^2).
 *    64 trials, maxT 81, rf/eta 3, 4 at a time. Per scheduler: iterations run (the compute),
 *    their share of FIFO's, and the regret L of the best trial that reached maxT.
 * 3. BOHB against HyperBand + random search and ASHA + TPE on LC-H6, through the real runner
 *    (in-process trials): iterations run and regret.
 * 2. PB2 against PBT on the PBT paper's toy problem (Jaderberg et al. 2017, Fig. 2) with
 *    seeded random starting h and N(0, 0.01^2) observation noise (see tests/schedulers/pb2_test.ts
 *    for why): the best final Q, population 2 and 4, 40 steps, perturbation interval 4.
 *
 *   deno run -A bench/schedulers_bench.ts            # 10 seeds (5 through the runner)
 *   deno run -A bench/schedulers_bench.ts --quick    # 3 seeds (2 through the runner)
 *   deno run -A bench/schedulers_bench.ts --runner-only   # only the BOHB section
 *
 * Prints medians over seeds; asserts nothing.
 *
 * @module
 */

import type { Scheduler, Searcher } from "../core/plugin.ts";
import { type Session, Tuner } from "../mod.ts";
import { bohbSearcher, randomSearcher, tpeSearcher } from "../plugins/searchers/mod.ts";
import { Rng } from "../core/random.ts";
import { uniform } from "../core/space.ts";
import { type SimTrainable, simulate } from "../tests/contract/scheduler.ts";
import { NOISY_TOY } from "../tests/schedulers/_toy.ts";
import {
  ashaScheduler,
  fifoScheduler,
  hyperbandScheduler,
  medianStoppingScheduler,
  pb2Scheduler,
  pbtScheduler,
} from "../plugins/schedulers/mod.ts";
import { hartmann6 } from "./searchers_problems.ts";

const quick = Deno.args.includes("--quick");
// --runner-only: only the BOHB section (the simulated ones take seconds, this one minutes).
const runnerOnly = Deno.args.includes("--runner-only");
const SEEDS = quick ? 3 : 10;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b), m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// ------------------------------------------------------------------ LC-H6

const MAX_T = 81, TRIALS = 64;
const regretOf = (x: number[]) => hartmann6(x) + 3.32237;

const LC_H6: SimTrainable<null> = {
  iterations: MAX_T,
  init: () => null,
  step: (_s, config, iteration, rng) => {
    const x = config.x as number[], l = regretOf(x), tau = 2 + 30 * x[0], t = iteration + 1;
    return {
      state: null,
      metrics: { loss: l + (3.5 - l) * Math.exp(-t / tau) + rng.normal(0, 0.05) },
    };
  },
};

const SCHEDULERS: [string, () => Scheduler][] = [
  ["FIFO", () => fifoScheduler()],
  ["ASHA (stop)", () => ashaScheduler({ maxT: MAX_T, gracePeriod: 1, reductionFactor: 3 })],
  [
    "ASHA (promote)",
    () => ashaScheduler({ maxT: MAX_T, gracePeriod: 1, reductionFactor: 3, mode: "promote" }),
  ],
  ["HyperBand (Ray's halving)", () => hyperbandScheduler({ maxT: MAX_T, reductionFactor: 3 })],
  [
    "HyperBand (waitForFullBrackets)",
    () => hyperbandScheduler({ maxT: MAX_T, reductionFactor: 3, waitForFullBrackets: true }),
  ],
  [
    "median stopping",
    () =>
      medianStoppingScheduler({
        timeAttr: "training_iteration",
        gracePeriod: 3,
        minSamplesRequired: 3,
      }),
  ],
];

if (!runnerOnly) simulated();

function simulated(): void {
  console.log(
    `LC-H6: ${TRIALS} trials, maxT ${MAX_T}, rf/eta 3, 4 at a time, median of ${SEEDS} seeds`,
  );
  console.log("| scheduler | iterations run | share of FIFO | regret of best found |");
  console.log("| --- | --- | --- | --- |");
  let fifo = 0;
  for (const [name, make] of SCHEDULERS) {
    const its: number[] = [], regrets: number[] = [];
    for (let seed = 0; seed < SEEDS; seed++) {
      const rng = new Rng(seed + 500);
      const configs = Array.from({ length: TRIALS }, () => ({
        x: Array.from({ length: 6 }, () => rng.next()),
      }));
      const r = simulate(make(), LC_H6, { configs, concurrency: 4, seed, metric: "loss" });
      its.push(r.iterations);
      const done = r.trials.filter((t) => t.iteration >= MAX_T);
      const best = done.sort((a, b) =>
        (a.results.at(-1)!.loss as number) - (b.results.at(-1)!.loss as number)
      )[0];
      regrets.push(regretOf(best.config.x as number[]));
    }
    const m = median(its);
    if (name === "FIFO") fifo = m;
    console.log(
      `| ${name} | ${m.toLocaleString("en")} | ${(100 * m / fifo).toFixed(1)} % | ${
        median(regrets).toFixed(4)
      } |`,
    );
  }

  pbVsPbt();
}

// ------------------------------------------------------------------ PB2 vs PBT

function toy(which: "pb2" | "pbt" | "none", seed: number, workers: number): number {
  const common = {
    timeAttr: "training_iteration",
    perturbationInterval: 4,
    quantileFraction: which === "none" ? 0 : 0.5,
  };
  const scheduler = which === "pb2"
    ? pb2Scheduler({ ...common, hyperparamBounds: { h0: [0, 1], h1: [0, 1] } })
    : pbtScheduler({ ...common, hyperparamMutations: { h0: uniform(0, 1), h1: uniform(0, 1) } });
  const rng = new Rng(seed + 1000);
  const r = simulate(scheduler, NOISY_TOY, {
    configs: Array.from(
      { length: workers },
      () => ({ h0: 0.3 * rng.next(), h1: 0.3 * rng.next() }),
    ),
    metric: "Q",
    mode: "max",
    concurrency: workers,
    seed,
  });
  return Math.max(...r.trials.map((t) => t.results.at(-1)!.Q as number));
}

function pbVsPbt(): void {
  console.log(
    `\nPBT toy (h0, h1 from U(0, 0.3), 40 steps, noise 0.01, interval 4, quantile 0.5): ` +
      `median best final Q of ${SEEDS} seeds (optimum 1.2)`,
  );
  console.log("| population | no exploit | PBT | PB2 | PB2 ms/run |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const workers of [2, 4]) {
    const seeds = Array.from({ length: SEEDS }, (_, i) => i);
    const none = median(seeds.map((s) => toy("none", s, workers)));
    const pbt = median(seeds.map((s) => toy("pbt", s, workers)));
    const t0 = performance.now();
    const pb2 = median(seeds.map((s) => toy("pb2", s, workers)));
    const ms = (performance.now() - t0) / SEEDS;
    console.log(
      `| ${workers} | ${none.toFixed(3)} | ${pbt.toFixed(3)} | ${pb2.toFixed(3)} | ${
        ms.toFixed(0)
      } |`,
    );
  }
}

// ------------------------------------------------------------------ BOHB through the runner

/**
 * BOHB (HyperBand + the bohb searcher) against HyperBand + random search and ASHA + TPE on LC-H6,
 * through the real runner with in-process trials (the searchers need the runner's loop): 64
 * trials, maxT 81, eta 3, 4 at a time.
 */
async function lcH6Runner(
  scheduler: Scheduler,
  searcher: Searcher,
  seed: number,
): Promise<{ iterations: number; regret: number }> {
  const storage = await Deno.makeTempDir({ prefix: "tunebox_bench_" });
  try {
    const space = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`x${i}`, uniform(0, 1)]));
    const r = await new Tuner({
      trainable: async (c: Record<string, number>, s: Session<Record<string, number>>) => {
        const x = Array.from({ length: 6 }, (_, i) => c[`x${i}`]);
        const l = regretOf(x), tau = 2 + 30 * x[0];
        const noise = new Rng(Math.floor(x[1] * 1e9) + seed);
        for (let t = s.iteration + 1; t <= MAX_T; t++) {
          await s.report({ loss: l + (3.5 - l) * Math.exp(-t / tau) + noise.normal(0, 0.05) }, {
            checkpoint: (dir) => Deno.writeTextFile(`${dir}/t`, String(t)),
          });
        }
      },
      space,
      metric: "loss",
      mode: "min",
      numSamples: TRIALS,
      maxConcurrent: 4,
      seed,
      scheduler,
      searcher,
      storage,
      reporter: false,
    }).fit();
    const done = r.trials.filter((t) => t.iterations >= MAX_T);
    const loss = (t: (typeof done)[number]) => t.metrics?.loss as number;
    const best = done.sort((a, b) => loss(a) - loss(b))[0];
    const x = Array.from({ length: 6 }, (_, i) => best.config[`x${i}`] as number);
    return { iterations: r.trials.reduce((a, t) => a + t.iterations, 0), regret: regretOf(x) };
  } finally {
    await Deno.remove(storage, { recursive: true });
  }
}

const RUNNER_SEEDS = quick ? 2 : 5;
console.log(
  `\nBOHB on LC-H6 through the runner (in-process trials; ${TRIALS} trials, maxT ${MAX_T}, ` +
    `eta 3, 4 at a time), median of ${RUNNER_SEEDS} seeds`,
);
console.log("| scheduler + searcher | iterations run | regret of best found | wall s/run |");
console.log("| --- | --- | --- | --- |");
const COMBOS: [string, () => Scheduler, () => Searcher][] = [
  ["HyperBand + random", () => hyperbandScheduler({ maxT: MAX_T }), () => randomSearcher()],
  [
    "HyperBandForBOHB + BOHB",
    () => hyperbandScheduler({ maxT: MAX_T, waitForFullBrackets: true, largestBracketFirst: true }),
    () => bohbSearcher(),
  ],
  [
    "ASHA + TPE",
    () => ashaScheduler({ maxT: MAX_T, gracePeriod: 1, reductionFactor: 3 }),
    () => tpeSearcher(),
  ],
];
for (const [name, sch, sea] of COMBOS) {
  const its: number[] = [], regrets: number[] = [];
  const t0 = performance.now();
  for (let seed = 0; seed < RUNNER_SEEDS; seed++) {
    const r = await lcH6Runner(sch(), sea(), seed);
    its.push(r.iterations);
    regrets.push(r.regret);
  }
  const wall = (performance.now() - t0) / 1000 / RUNNER_SEEDS;
  console.log(
    `| ${name} | ${median(its).toLocaleString("en")} | ${median(regrets).toFixed(4)} | ${
      wall.toFixed(1)
    } |`,
  );
}
