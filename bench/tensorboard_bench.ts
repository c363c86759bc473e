/**
 * Throughput of the TensorBoard logger: scalars written per second, and the time one report
 * spends in `tensorboardLogger().onReport` (encoding + one write to the event file).
 *
 * ```sh
 * deno run -A bench/tensorboard_bench.ts
 * ```
 *
 * Prints figures; asserts nothing about speed.
 *
 * @module
 */

import type { TrialResult, TrialSnapshot } from "../core/trial.ts";
import { EventFileWriter } from "../plugins/loggers/tensorboard/_event_file.ts";
import { tensorboardLogger } from "../plugins/loggers/tensorboard/mod.ts";

/** One measured figure. */
export interface BenchFigure {
  /** What was measured. */
  readonly name: string;
  /** The value. */
  readonly value: number;
  /** Its unit. */
  readonly unit: string;
}

function fmt(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toPrecision(3);
}

function writerThroughput(dir: string, tagsPerEvent: number, events: number, flushEvery: number) {
  const tags = Array.from({ length: tagsPerEvent }, (_, i) => `metric_${i}/value`);
  const values = new Float64Array(tagsPerEvent);
  const w = EventFileWriter.create(`${dir}/w_${tagsPerEvent}_${flushEvery}`);
  const t0 = performance.now();
  for (let e = 1; e <= events; e++) {
    for (let i = 0; i < tagsPerEvent; i++) values[i] = e * 0.001 + i;
    w.scalars(e, 1_700_000_000 + e, tags, values);
    if (e % flushEvery === 0) w.flush();
  }
  w.close();
  const s = (performance.now() - t0) / 1000;
  const bytes = Deno.statSync(w.path).size;
  return { scalarsPerSec: (tagsPerEvent * events) / s, mbPerSec: bytes / s / 1e6, bytes };
}

function reportLatency(dir: string, metrics: number, reports: number) {
  const logger = tensorboardLogger();
  const trial: TrialSnapshot = {
    id: "bench_00000",
    status: "running",
    config: { lr: 0.01, batch_size: 64 },
    iteration: 0,
    dir: `${dir}/report_${metrics}`,
  };
  logger.onTrialStart?.({ trial, resumed: false });
  const makeResult = (i: number): TrialResult => {
    const r: Record<string, number | string | Record<string, number>> = {};
    for (let m = 0; m < metrics; m++) r[`metric_${m}`] = i * 0.001 + m;
    r.train = { loss: 1 / i, acc: i / reports };
    return {
      ...r,
      training_iteration: i,
      time_total_s: i * 0.5,
      time_this_iter_s: 0.5,
      timestamp: 1_700_000_000 + i,
      trial_id: trial.id,
    } as TrialResult;
  };
  const lat = new Float64Array(reports);
  let inHook = 0;
  const t0 = performance.now();
  for (let i = 0; i < reports; i++) {
    // The runner builds each result anyway; only the hook is timed.
    const result = makeResult(i + 1);
    const a = performance.now();
    logger.onReport?.({ trial, result, decision: { kind: "continue" } });
    lat[i] = performance.now() - a;
    inHook += lat[i];
  }
  const total = (performance.now() - t0) / 1000;
  logger.onTrialEnd?.({ trial: { ...trial, status: "terminated" }, outcome: "completed" });
  lat.sort();
  // metrics + train/loss + train/acc + time_total_s + time_this_iter_s
  const perReport = metrics + 4;
  return {
    medianUs: lat[Math.floor(reports / 2)] * 1000,
    p99Us: lat[Math.floor(reports * 0.99)] * 1000,
    meanUs: (inHook / reports) * 1000,
    scalarsPerSec: (perReport * reports) / (inHook / 1000),
    wallS: total,
  };
}

/**
 * Runs the benchmark and prints its figures.
 *
 * @returns the figures.
 * @example
 * ```ts ignore
 * import { main } from "./tensorboard_bench.ts";
 * const figures = await main();
 * ```
 */
export async function main(): Promise<BenchFigure[]> {
  const dir = await Deno.makeTempDir({ prefix: "tunebox_tb_bench_" });
  const figures: BenchFigure[] = [];
  const add = (name: string, value: number, unit: string) => {
    figures.push({ name, value, unit });
    console.log(`${name.padEnd(58)} ${fmt(value).padStart(12)} ${unit}`);
  };
  try {
    // Warm up the JIT and the file system.
    writerThroughput(dir, 10, 20_000, 1);
    reportLatency(dir, 10, 2_000);

    for (const [tags, flushEvery] of [[10, 1], [100, 1], [10, 100], [100, 100]]) {
      const events = Math.floor(2_000_000 / tags);
      const r = writerThroughput(dir, tags, events, flushEvery);
      add(
        `writer: ${tags} scalars/event, write every ${flushEvery} event(s)`,
        r.scalarsPerSec,
        `scalars/s (${r.mbPerSec.toFixed(0)} MB/s)`,
      );
    }
    for (const metrics of [10, 100]) {
      const r = reportLatency(dir, metrics, 50_000);
      add(`onReport: ${metrics + 4} scalars/report, median`, r.medianUs, "µs/report");
      add(`onReport: ${metrics + 4} scalars/report, mean`, r.meanUs, "µs/report");
      add(`onReport: ${metrics + 4} scalars/report, p99`, r.p99Us, "µs/report");
      add(
        `onReport: ${metrics + 4} scalars/report, throughput in the hook`,
        r.scalarsPerSec,
        "scalars/s",
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return figures;
}

if (import.meta.main) await main();
