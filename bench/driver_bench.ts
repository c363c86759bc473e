/**
 * Driver overhead: 64 trials x 20 reports of a trivial objective, 2 at a time, in sandboxed
 * subprocesses (FIFO and ASHA) and in-process; 10,000 in-process trials x 1 report.
 *
 *     deno run -A bench/driver_bench.ts [--quick]
 */
import { Tuner, uniform } from "../mod.ts";
import { ashaScheduler } from "../plugins/schedulers/mod.ts";
import type { Scheduler } from "../core/plugin.ts";

const quick = Deno.args.includes("--quick");
const TRIALS = quick ? 8 : 64;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function denoStartupMs(): Promise<number> {
  const empty = new URL("./fixtures/empty.ts", import.meta.url).pathname;
  const times: number[] = [];
  for (let i = 0; i < (quick ? 3 : 10); i++) {
    const t0 = performance.now();
    await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--cached-only", "--no-config", "--allow-read=/tmp", empty],
    }).output();
    times.push(performance.now() - t0);
  }
  return median(times);
}

async function subprocessRun(scheduler?: Scheduler): Promise<number> {
  const storage = await Deno.makeTempDir();
  const t0 = performance.now();
  await new Tuner({
    trainable: new URL("./fixtures/trivial.ts", import.meta.url),
    space: { x: uniform(0, 1) },
    metric: "loss",
    mode: "min",
    numSamples: TRIALS,
    maxConcurrent: 2,
    seed: 1,
    storage,
    reporter: false,
    ...(scheduler ? { scheduler } : {}),
  }).fit();
  const wall = performance.now() - t0;
  await Deno.remove(storage, { recursive: true });
  return wall;
}

async function inprocessRun(
  trials: number,
  reports: number,
): Promise<{ wall: number; rssMb: number }> {
  const storage = await Deno.makeTempDir();
  const t0 = performance.now();
  await new Tuner({
    trainable: async (config, session) => {
      for (let i = 0; i < reports; i++) {
        await session.report({ loss: (config.x - 0.5) ** 2 + 1 / (i + 1) });
      }
    },
    space: { x: uniform(0, 1) },
    metric: "loss",
    mode: "min",
    numSamples: trials,
    maxConcurrent: 2,
    seed: 1,
    storage,
    reporter: false,
  }).fit();
  const wall = performance.now() - t0;
  const rssMb = Deno.memoryUsage().rss / 2 ** 20;
  await Deno.remove(storage, { recursive: true });
  return { wall, rssMb };
}

/** Runs the driver benchmarks and returns their figures. */
export async function driverBench(): Promise<Record<string, number>> {
  const startup = await denoStartupMs();
  const fifo = await subprocessRun();
  const asha = await subprocessRun(ashaScheduler({ maxT: 20, gracePeriod: 1, reductionFactor: 4 }));
  const inproc = await inprocessRun(TRIALS, 20);
  const big = await inprocessRun(quick ? 1000 : 10_000, 1);
  // With 2 trials at a time, each slot runs TRIALS/2 trials back to back.
  const perTrial = (wall: number) => (wall * 2) / TRIALS;
  return {
    deno_startup_ms: startup,
    subprocess_fifo_wall_s: fifo / 1000,
    subprocess_fifo_per_trial_ms: perTrial(fifo),
    subprocess_fifo_overhead_beyond_startup_ms: perTrial(fifo) - startup,
    subprocess_asha_wall_s: asha / 1000,
    subprocess_asha_per_trial_ms: perTrial(asha),
    inprocess_64x20_wall_s: inproc.wall / 1000,
    inprocess_10000x1_wall_s: big.wall / 1000,
    inprocess_10000x1_trials_per_s: (quick ? 1000 : 10_000) / (big.wall / 1000),
    driver_rss_mb_after_10000: big.rssMb,
  };
}

if (import.meta.main) {
  const figures = await driverBench();
  for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(46)} ${v.toFixed(2)}`);
}
