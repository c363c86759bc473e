#!/usr/bin/env -S deno run -A
/**
 * Time per suggestion of `gpSearcher` (the goal of issue 15: ≤ 50 ms at 200 trials in 10-D),
 * as `bench/searchers_bench.ts` measures it: a d-D sphere on [−5, 5]^d, n random finished trials,
 * then the median of 20 `suggest()` calls, each followed by its result. Also where the time
 * goes, from the same fitted model: conditioning the GP, the random acquisition points, and
 * the whole acquisition maximisation.
 *
 *   deno run -A bench/gp_latency_bench.ts                 # d = 10, n = 100 and 200
 *   deno run -A bench/gp_latency_bench.ts --d 2 --n 50,100,200
 *
 * Prints figures and asserts nothing about speed. On a loaded machine, compare runs made side by
 * side, not with figures from elsewhere.
 *
 * @module
 */

import { parseArgs } from "#flags";
import process from "node:process";
import type { Config } from "../core/trial.ts";
import { type Space, uniform } from "../core/space.ts";
import { gpSearcher } from "../plugins/searchers/gp/mod.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: { d: { type: "string", default: "10" }, n: { type: "string", default: "100,200" } },
});
const d = Number(flags.d);
const ns = flags.n.split(",").map(Number);

const space: Space = Object.fromEntries(
  Array.from({ length: d }, (_, i) => [`x${i}`, uniform(-5, 5)]),
);
const f = (c: Config) => Object.values(c).reduce((a: number, v) => a + (v as number) ** 2, 0);

/** Wall and CPU milliseconds of each of `reps` suggestions after `n` finished trials. */
function latency(n: number, reps: number): { wall: number[]; cpu: number[] } {
  const s = gpSearcher({ initialPoints: n });
  s.setup?.({ space, metric: "loss", mode: "min", seed: 1, numSamples: -1 });
  const done = (id: string, c: Config) =>
    s.onComplete?.(id, {
      loss: f(c),
      training_iteration: 1,
      time_total_s: 0,
      time_this_iter_s: 0,
      timestamp: 0,
      trial_id: id,
    });
  for (let i = 0; i < n; i++) done(`t${i}`, s.suggest(`t${i}`) as Config);
  const wall: number[] = [], cpu: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now(), c0 = process.cpuUsage();
    const c = s.suggest(`r${r}`) as Config;
    const c1 = process.cpuUsage(c0);
    wall.push(performance.now() - t0);
    cpu.push((c1.user + c1.system) / 1000);
    done(`r${r}`, c);
  }
  return { wall, cpu };
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
latency(30, 5); // warm up the JIT
console.log(
  `gpSearcher, ${d}-D sphere: ms per suggestion, median of 20 (CPU time: what a loaded machine ` +
    `inflates least; first: the one with the kernel fit, which comes back after 10 % more trials, so ` +
    `the mean of 21 holds one)`,
);
console.log(`| n | wall median | CPU median | CPU min | CPU mean of 21 | first: CPU, wall |`);
console.log(`|---|---|---|---|---|---|`);
for (const n of ns) {
  const { wall, cpu } = latency(n, 21);
  console.log(
    `| ${n} | ${median(wall.slice(1)).toFixed(1)} | ${median(cpu.slice(1)).toFixed(1)} | ${
      Math.min(...cpu.slice(1)).toFixed(1)
    } | ${(cpu.reduce((a, b) => a + b, 0) / cpu.length).toFixed(1)} | ${cpu[0].toFixed(0)}, ${
      wall[0].toFixed(0)
    } |`,
  );
}
console.log(`load average: ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
