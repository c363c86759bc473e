#!/usr/bin/env -S deno run -A
/**
 * MLflow logger throughput against a real `mlflow server` (started from the project's venv,
 * sqlite store, 127.0.0.1): the time a report spends in the logger's hook, the CPU the logger
 * adds per report (hooks plus its delivery worker, against a do-nothing callback), and how many
 * reports and metric points per second reach the server.
 *
 * Run: `deno run -A bench/mlflow_bench.ts [trials] [reportsPerTrial]` (default 8 x 250).
 * Prints figures; asserts nothing about speed.
 *
 * @module
 */

import process from "node:process";
import {
  type MlflowLogger,
  mlflowLogger,
  type TrialResult,
  type TrialSnapshot,
} from "../plugins/loggers/mlflow.ts";
import { freePort, startMlflowServer } from "../tests/peers/mlflow_server.ts";

const TRIALS = Number(Deno.args[0] ?? 8);
const REPORTS = Number(Deno.args[1] ?? 250);
const USER_METRICS = 5; // + training_iteration, time_total_s, time_this_iter_s
const POINTS_PER_REPORT = USER_METRICS + 3;
const N = TRIALS * REPORTS;

function result(id: string, i: number): TrialResult {
  const m: Record<string, number> = {};
  for (let k = 0; k < USER_METRICS; k++) m[`metric_${k}`] = Math.sin(i + k);
  return {
    ...m,
    training_iteration: i,
    time_total_s: i * 0.1,
    time_this_iter_s: 0.1,
    timestamp: Date.now() / 1000,
    trial_id: id,
  };
}

const noop: MlflowLogger = {
  name: "noop",
  onReport: () => {},
  flush: () => Promise.resolve({ delivered: 0, pending: 0 }),
};

interface Run {
  readonly hookUs: number[];
  readonly cpuUs: number;
  readonly wallMs: number;
  readonly pending: number;
}

/**
 * One experiment of TRIALS x REPORTS reports, the trials reporting in turn. `pace` yields to
 * the event loop (a timer) after every report, as a real runner does between reports; without
 * it every report is queued first (a burst).
 */
async function experiment(make: (dir: string) => MlflowLogger, pace: boolean): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "tunebox_mlflow_bench_" });
  const logger = make(dir);
  const trials: TrialSnapshot[] = Array.from({ length: TRIALS }, (_, t) => ({
    id: `bench_${String(t).padStart(5, "0")}`,
    status: "running",
    config: { lr: 10 ** -(t % 4), layers: t % 3 + 1, opt: t % 2 ? "adam" : "sgd" },
    iteration: 0,
    dir: `${dir}/t${t}`,
  }));
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await logger.onExperimentStart?.({
    name: "bench",
    dir,
    space: {},
    metric: "metric_0",
    mode: "min",
    searcher: "random",
    scheduler: "fifo",
    resumed: false,
  });
  for (const trial of trials) logger.onTrialStart?.({ trial, resumed: false });
  const hookUs: number[] = [];
  for (let i = 1; i <= REPORTS; i++) {
    for (const trial of trials) {
      const e = {
        trial: { ...trial, iteration: i },
        result: result(trial.id, i),
        decision: { kind: "continue" } as const,
      };
      const h0 = performance.now();
      logger.onReport!(e);
      hookUs.push((performance.now() - h0) * 1000);
      if (pace) await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
  for (const trial of trials) {
    logger.onTrialEnd?.({ trial: { ...trial, status: "terminated" }, outcome: "completed" });
  }
  await logger.onExperimentEnd?.({ trials, interrupted: false });
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  const { pending } = await logger.flush(0);
  await Deno.remove(dir, { recursive: true });
  return { hookUs, cpuUs: cpu.user + cpu.system, wallMs, pending };
}

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  const p = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))].toFixed(1);
  return `mean ${mean.toFixed(1)} µs, p50 ${p(0.5)} µs, p99 ${p(0.99)} µs`;
}

function print(label: string, r: Run, base: Run): void {
  const s = r.wallMs / 1000;
  console.log(
    `${label}\n  hook: ${stats(r.hookUs)} (a no-op callback: ${stats(base.hookUs)})\n` +
      `  CPU added per report (hooks + delivery worker, minus a no-op callback): ` +
      `${((r.cpuUs - base.cpuUs) / N).toFixed(1)} µs\n` +
      `  ${N} reports / ${N * POINTS_PER_REPORT} points on the server in ${s.toFixed(2)} s: ` +
      `${(N / s).toFixed(0)} reports/s, ${(N * POINTS_PER_REPORT / s).toFixed(0)} points/s` +
      (r.pending ? ` (${r.pending} items NOT delivered)` : ""),
  );
}

const server = await startMlflowServer();
try {
  console.log(
    `mlflow ${server.version} (sqlite store, 1 worker) on ${server.url}; Deno ${Deno.version.deno}; ` +
      `${TRIALS} trials x ${REPORTS} reports x ${POINTS_PER_REPORT} metrics`,
  );
  const real = (url: string, drainTimeoutMs = 120_000) => (dir: string) =>
    mlflowLogger({
      trackingUri: url,
      experiment: `bench-${dir.split("/").pop()}`,
      drainTimeoutMs,
      warn: () => {},
    });
  await experiment(real(server.url), false); // warms the server and the JIT
  const burstBase = await experiment(() => noop, false);
  print(
    "burst (every report queued, then drained)",
    await experiment(real(server.url), false),
    burstBase,
  );
  const pacedBase = await experiment(() => noop, true);
  print(
    "paced (event loop turns between reports)",
    await experiment(real(server.url), true),
    pacedBase,
  );
  const down = await experiment(real(`http://127.0.0.1:${freePort()}`, 0), false);
  console.log(
    `server unreachable (closed port)\n  hook: ${stats(down.hookUs)}; ${down.pending} items kept ` +
      `and spooled; onExperimentEnd returned after the drain limit (0 ms)`,
  );
} finally {
  await server.close();
}
