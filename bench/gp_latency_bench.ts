#!/usr/bin/env -S deno run -A
/**
 * Time per suggestion of `gpSearcher` (the goal of issue 15: ≤ 50 ms at 200 trials in 10-D),
 * on a d-D sphere on [−5, 5]^d: every suggestion of one refit cycle at n finished trials (the
 * kernel is refitted whenever the trials grew by 10 %, so the mean over the cycle is what a run
 * pays per suggestion there), median and mean.
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

/**
 * Wall and CPU milliseconds of each suggestion made with n … ⌈1.1·n⌉ − 1 finished trials (one
 * refit cycle: the kernel is refitted, warm-started from the last fit, whenever the trials grew by
 * 10 %), after a GP that has been suggesting since ⌊n / 1.21⌋ random trials (so the refit in the
 * window starts from a previous fit, as in a real run).
 */
function latency(n: number): { wall: number[]; cpu: number[] } {
  const n0 = Math.max(10, Math.floor(n / 1.21));
  const s = gpSearcher({ initialPoints: n0 });
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
  for (let i = n; i < Math.ceil(1.1 * n); i++) {
    const t0 = performance.now(), c0 = process.cpuUsage();
    const c = s.suggest(`t${i}`) as Config;
    const c1 = process.cpuUsage(c0);
    wall.push(performance.now() - t0);
    cpu.push((c1.user + c1.system) / 1000);
    done(`t${i}`, c);
  }
  return { wall, cpu };
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
latency(30); // warm up the JIT
console.log(
  `gpSearcher, ${d}-D sphere: ms per suggestion with n … ⌈1.1·n⌉ − 1 finished trials (one refit ` +
    `cycle; CPU time is what a loaded machine inflates least)`,
);
console.log(
  `| n | suggestions | wall median | wall mean | CPU median | CPU mean | CPU max (the refit) |`,
);
console.log(`|---|---|---|---|---|---|---|`);
for (const n of ns) {
  const { wall, cpu } = latency(n);
  const fmt = (x: number) => x.toFixed(1);
  console.log(
    `| ${n} | ${cpu.length} | ${fmt(median(wall))} | ${fmt(mean(wall))} | ${fmt(median(cpu))} | ${
      fmt(mean(cpu))
    } | ${fmt(Math.max(...cpu))} |`,
  );
}
console.log(`load average: ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
