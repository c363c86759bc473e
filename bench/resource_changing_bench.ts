#!/usr/bin/env -S deno run -A
/**
 * What resource-changing trials buy: wall time of an experiment whose trials speed up with the
 * CPUs they hold, FIFO against `resourceChangingScheduler()` (Ray's `DistributeResources`).
 *
 * 4 trials of 2, 4, 8 and 16 iterations on `cpus: 4`, each starting with 1 CPU; an iteration
 * takes `work / cpu` ms (a perfectly parallel trainable, simulated by a sleep so that the
 * machine's load matters little), and every report checkpoints. The ideal is the total work
 * spread over 4 CPUs. In-process trials show the scheduling alone; sandboxed subprocess trials
 * add what a restart costs (a new process, a checkpoint restore).
 *
 *   deno run -A bench/resource_changing_bench.ts            # 3 runs each, work 400 ms
 *   deno run -A bench/resource_changing_bench.ts --quick    # 1 run each
 *
 * Prints medians; asserts nothing.
 *
 * @module
 */

import { grid, Tuner } from "../mod.ts";
import { fifoScheduler, resourceChangingScheduler } from "../plugins/schedulers/mod.ts";
import { parallelWork } from "./fixtures/parallel_work.ts";

const quick = Deno.args.includes("--quick");
const RUNS = quick ? 1 : 3;
const WORK = 400;
const LENGTHS = [2, 4, 8, 16];
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b), m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function run(
  kind: "inprocess" | "subprocess",
  changing: boolean,
): Promise<{ wall: number; restarts: number }> {
  const storage = await Deno.makeTempDir({ prefix: "tunebox_bench_rc_" });
  try {
    const t0 = performance.now();
    const r = await new Tuner({
      trainable: kind === "inprocess"
        ? parallelWork as never
        : new URL("./fixtures/parallel_work.ts", import.meta.url),
      space: { iters: grid(LENGTHS), work: WORK },
      metric: "i",
      mode: "max",
      cpus: 4,
      gpus: 0,
      scheduler: changing ? resourceChangingScheduler() : fifoScheduler(),
      storage,
      reporter: false,
    }).fit();
    const wall = (performance.now() - t0) / 1000;
    let restarts = 0;
    for (const t of r.trials) {
      const h = r.history(t.id);
      for (let i = 1; i < h.length; i++) if (h[i].cpu !== h[i - 1].cpu) restarts++;
    }
    return { wall, restarts };
  } finally {
    await Deno.remove(storage, { recursive: true }).catch(() => {});
  }
}

const total = LENGTHS.reduce((a, b) => a + b, 0) * WORK / 1000;
console.log(
  `Trials of ${LENGTHS.join(", ")} iterations of ${WORK} ms·CPU on 4 CPUs; ideal ${
    (total / 4).toFixed(1)
  } s, FIFO's bound (the longest trial on 1 CPU) ${
    (16 * WORK / 1000).toFixed(1)
  } s; median of ${RUNS}`,
);
console.log("| trials | scheduler | wall s | restarts |");
console.log("| --- | --- | --- | --- |");
for (const kind of ["inprocess", "subprocess"] as const) {
  for (const changing of [false, true]) {
    const rs = [];
    for (let i = 0; i < RUNS; i++) rs.push(await run(kind, changing));
    console.log(
      `| ${kind} | ${changing ? "resource_changing" : "FIFO"} | ${
        median(rs.map((r) => r.wall)).toFixed(2)
      } | ${median(rs.map((r) => r.restarts))} |`,
    );
  }
}
